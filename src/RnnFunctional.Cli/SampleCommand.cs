using System.Collections.Immutable;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

using System.CommandLine;

/// <summary>The options of <c>rnnf sample</c>.</summary>
internal sealed record SampleOptions(string Model, int Count, double Temperature, int Seed, int MaxLength);

/// <summary><c>rnnf sample</c>: loads a model file and prints sampled names, one per line.</summary>
internal static class SampleCommand
{
    private static readonly Option<string?> ModelOption = Options.Text("--model", "FILE",
        "a model file written by rnnf train, or a .safetensors file written by rnnf export (required)");
    private static readonly Option<int> CountOption = Options.Int("--count", "N", "number of names, in [1, 100000]", 10, 1, 100000);
    private static readonly Option<double> TemperatureOption = Options.Number("--temperature", "T", "sampling temperature, in [0, 10] (0 = always the likeliest character)", 0.8, 0, 10);
    private static readonly Option<int> SeedOption = Options.Int("--seed", "S", "seed of the sampler; the same seed gives the same names", 1, int.MinValue, int.MaxValue);
    private static readonly Option<int> MaxLengthOption = Options.Int("--max-length", "N", "longest name, in [1, 1000]", 40, 1, 1000);

    /// <summary>The command <c>rnnf sample</c> and its options.</summary>
    public static readonly Command Command = CommandParser.Command("sample",
        "Samples names from a trained model file and prints them, one per line.",
        ModelOption, CountOption, TemperatureOption, SeedOption, MaxLengthOption);

    /// <summary>The options of a parse; every problem is reported, a missing --model too.</summary>
    public static Validation<Error, SampleOptions> Parse(ParseResult parsed) =>
        CommandParser.Check(parsed, parsed.GetResult(ModelOption) is null or { Implicit: true } ? ["--model FILE is required"] : [])
            .Map(r => new SampleOptions(r.GetRequiredValue(ModelOption)!, r.GetValue(CountOption), r.GetValue(TemperatureOption),
                r.GetValue(SeedOption), r.GetValue(MaxLengthOption)));

    public static int Run(IReadOnlyList<string> args, Terminal terminal)
    {
        var parsed = CommandParser.Parse(Command, args);
        if (CommandParser.AsksForHelp(parsed)) return Cli.Help(terminal, parsed);
        var result =
            from options in Parse(parsed).ToFin()
            from document in ExportCommand.LoadAny(options.Model)
            from names in Models.Load(document, new Sample(options))
            select names;
        return result.Match(names =>
        {
            foreach (var name in names) terminal.Out.WriteLine(name);
            return 0;
        }, e => Cli.Fail(terminal, "sample", e));
    }

    private sealed class Sample(SampleOptions o) : IModelUse<ImmutableArray<string>>
    {
        public ImmutableArray<string> Use<TParams, TState>(ModelSpec spec, SequenceModel<TParams, TState> model, TParams parameters)
            where TParams : IParameterTree<TParams> =>
            Sampler.Texts(model, parameters, spec.Vocabulary, o.Count, new SamplingOptions(o.Temperature, o.MaxLength), RandomState.Seeded(o.Seed)).Texts;
    }
}
