using System.Collections.Immutable;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

/// <summary>The options of <c>rnnf sample</c>.</summary>
internal sealed record SampleOptions(string Model, int Count, double Temperature, int Seed, int MaxLength);

/// <summary><c>rnnf sample</c>: loads a model file and prints sampled names, one per line.</summary>
internal static class SampleCommand
{
    public static readonly ImmutableArray<OptionSpec> Specs =
    [
        new("model", "FILE", "a model file written by rnnf train, or a .safetensors file written by rnnf export (required)"),
        new("count", "N", "number of names, in [1, 100000]", "10"),
        new("temperature", "T", "sampling temperature, in [0, 10] (0 = always the likeliest character)", "0.8"),
        new("seed", "S", "seed of the sampler; the same seed gives the same names", "1"),
        new("max-length", "N", "longest name, in [1, 1000]", "40"),
    ];

    public static string Help => Arguments.Help("rnnf sample --model FILE [options]",
        "Samples names from a trained model file and prints them, one per line.", Specs);

    public static Validation<Error, SampleOptions> Parse(IReadOnlyList<string> args) =>
        Arguments.Parse(args, Specs).Bind(a =>
        {
            if (!a.Has("model")) a.Problem("--model FILE is required");
            return a.Build(() => new SampleOptions(a.Text("model", "")!, a.Int("count", 10, 1, 100000), a.Double("temperature", 0.8, 0, 10),
                a.Int("seed", 1, int.MinValue, int.MaxValue), a.Int("max-length", 40, 1, 1000)));
        });

    public static int Run(IReadOnlyList<string> args, Terminal terminal)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            terminal.Out.Write(Help);
            return 0;
        }
        var result =
            from options in Parse(args).ToFin()
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
