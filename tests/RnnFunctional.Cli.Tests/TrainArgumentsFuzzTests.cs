using System.CommandLine;
using System.Globalization;
using FsCheck;
using FsCheck.Fluent;
using LanguageExt.Common;

namespace RnnFunctional.Cli.Tests;

/// <summary>
/// <c>rnnf train</c>'s argument parsing fuzzed with random argument vectors built from the real option names, their
/// misspellings and random values (out of range, NaN, infinities, empty and blank strings, huge numbers, Unicode,
/// <c>--</c>, <c>--name=value</c>, repeated options, options without a value, response files that do not exist). The
/// parse never throws; it either succeeds with every value inside its documented range, or the program fails with exit
/// code 2 and one line whose every message names an option or an argument, or it shows the help. Only the parse runs,
/// never a training. The number of cases is 500 in CI (about a second); <c>RNNF_FUZZ_CASES=100000 dotnet test
/// tests/RnnFunctional.Cli.Tests --filter FullyQualifiedName~TrainArgumentsFuzzTests</c> runs a longer fuzz.
/// </summary>
public sealed class TrainArgumentsFuzzTests
{
    private static int Cases => int.TryParse(Environment.GetEnvironmentVariable("RNNF_FUZZ_CASES"), out var n) && n > 0 ? n : 500;

    /// <summary>
    /// The options fuzzed: all but --help, the cluster options (--workers, --cluster, --cluster-id), which start
    /// processes and depend on each other (DataParallelTests covers them), and the dropout rates, which depend on
    /// --layers (DropoutOptionTests covers them).
    /// </summary>
    private static readonly string[] Names =
        [.. TrainCommand.Command.Options.Select(o => o.Name)
            .Where(n => n is not ("--help" or "--workers" or "--cluster" or "--cluster-id" or "--dropout" or "--recurrent-dropout"))];

    private static readonly string[] Values =
    [
        "0", "1", "-1", "2", "4", "5", "96", "1024", "1025", "10000", "10001", "4096", "4097", "0.5", "0.51", "0.1", "1e-300", "10", "10.000001",
        "2147483647", "2147483648", "-2147483648", "-2147483649", "99999999999999999999999", "1e400", "-1e400", "NaN", "nan", "Infinity",
        "-Infinity", "∞", "", " ", "\t", "0x10", "1,5", "1_000", "+3", "٣", "１２", "😀", "é", "日本", "\u0000", "a\nb", "value:5", "VALUE:0.5",
        "norm:1", "norm:0", "norm:-1", "value:NaN", "value:", ":5", "value:5:5", "none", "None", "lstm", "GRU", "rnn", "cnn", "adam", "SGD",
        "rmsprop", "lbfgs", "x", "-", "--", "---", "-x", "@", "@rnnf-fuzz-no-such-file.txt", "out/fuzz.rnnf", "model.rnnf", "/dev/null",
    ];

    private static readonly string[] Strays = ["--", "--bogus", "-h", "--help", "-?", "-", "@rnnf-fuzz-no-such-file.txt", "train", "--=5", "--hidden=", "="];

    /// <summary>A name misspelt: a letter dropped, two swapped, doubled, changed, upper-cased, a single dash or an underscore.</summary>
    private static Gen<string> Misspelt =>
        from name in Gen.Elements(Names)
        from kind in Gen.Choose(0, 6)
        from at in Gen.Choose(2, name.Length - 1)
        select kind switch
        {
            0 => name.Remove(at, 1),
            1 when at + 1 < name.Length => name[..at] + name[at + 1] + name[at] + name[(at + 2)..],
            2 => name.Insert(at, name[at].ToString()),
            3 => name[..at] + 'q' + name[(at + 1)..],
            4 => name.ToUpperInvariant(),
            5 => name[1..],
            _ => name.Replace('-', '_'),
        };

    private static Gen<string> Value =>
        Gen.Frequency(
            (6, Gen.Elements(Values)),
            (2, Gen.Choose(int.MinValue, int.MaxValue).Select(i => i.ToString(CultureInfo.InvariantCulture))),
            (2, from m in Gen.Choose(-1000, 1000) from e in Gen.Choose(-5, 400) select string.Create(CultureInfo.InvariantCulture, $"{m}e{e}")),
            (1, Gen.ArrayOf(Gen.Choose(0x20, 0x2FFF).Select(c => (char)c), 3).Select(cs => new string(cs))));

    /// <summary>The values of <see cref="Values"/> that each option takes.</summary>
    private static readonly Dictionary<string, string[]> Valid =
        Names.ToDictionary(n => n, n => Values.Where(v => TrainCommand.Parse([n, v]).IsSuccess).DefaultIfEmpty("1").ToArray());

    /// <summary>One or two arguments: an option and its value (apart or joined by = or :), an option alone, a misspelling, a value or a stray.</summary>
    private static Gen<string[]> Piece =>
        Gen.Frequency(
            (8, from name in Gen.Elements(Names) from value in Gen.Elements(Valid[name]) select new[] { name, value }),
            (6, from name in Gen.Elements(Names) from value in Value select new[] { name, value }),
            (2, from name in Gen.Elements(Names) from sep in Gen.Elements("=", ":") from value in Value select new[] { name + sep + value }),
            (2, Gen.Elements(Names).Select(name => new[] { name })),
            (2, from name in Misspelt from value in Value select new[] { name, value }),
            (1, Value.Select(value => new[] { value })),
            (1, Gen.Elements(Strays).Select(stray => new[] { stray })));

    private static Gen<string[]> Vector =>
        from valid in Gen.Choose(0, 4)
        from good in Gen.ArrayOf(Gen.Elements(Names).SelectMany(name => Gen.Elements(Valid[name]).Select(value => new[] { name, value })), valid)
        from count in Gen.Choose(0, 6)
        from pieces in Gen.ArrayOf(Piece, count)
        from order in Gen.Shuffle(good.Concat(pieces).ToArray())
        select order.SelectMany(p => p).ToArray();

    /// <summary>Shorter vectors first: each argument left out in turn.</summary>
    private static IEnumerable<string[]> Shrink(string[] args) => Enumerable.Range(0, args.Length).Select(i => args.Where((_, j) => j != i).ToArray());

    private static string Show(string[] args) => "[" + string.Join(" ", args.Select(a => $"«{a}»")) + "]";

    private static bool InRange(TrainOptions o) =>
        (o.Corpus is null || !string.IsNullOrWhiteSpace(o.Corpus))
        && Models.Cells.Contains(o.Cell) && o.Hidden is >= 1 and <= 1024 && o.Layers >= 1 && o.Layers <= Models.MaxLayers
        && TrainCommand.OptimizerNames.Contains(o.Optimizer) && double.IsFinite(o.LearningRate) && o.LearningRate is > 0 and <= 10
        && o.Epochs is >= 1 and <= 10000 && o.BatchSize is >= 1 and <= 4096 && o.Bptt is >= 0 and <= 10000
        && (o.Clipping == Clipping.None || (o.Clipping.Kind != ClippingKind.None && double.IsFinite(o.Clipping.Threshold) && o.Clipping.Threshold > 0))
        && double.IsFinite(o.HeldOut) && o.HeldOut is > 0 and <= 0.5 && o.Steps >= 0 && !string.IsNullOrWhiteSpace(o.ModelPath)
        && !string.IsNullOrWhiteSpace(o.PlotPath) && o.Samples is >= 0 and <= 1000 && double.IsFinite(o.Temperature)
        && o.Temperature is >= 0 and <= 10 && o.MaxLength is >= 1 and <= 1000 && o.Pieces is >= 0 and <= 4096;

    private static readonly TrainOptions Defaults = TrainCommand.Parse([]).Match(o => o, _ => throw new InvalidOperationException("no defaults"));

    /// <summary>The field of <see cref="TrainOptions"/> that each option sets.</summary>
    private static readonly Dictionary<string, Func<TrainOptions, object?>> Field = new()
    {
        ["--corpus"] = o => o.Corpus, ["--cell"] = o => o.Cell, ["--hidden"] = o => o.Hidden, ["--layers"] = o => o.Layers,
        ["--optimizer"] = o => o.Optimizer, ["--learning-rate"] = o => o.LearningRate, ["--epochs"] = o => o.Epochs,
        ["--batch-size"] = o => o.BatchSize, ["--bptt"] = o => o.Bptt, ["--seed"] = o => o.Seed, ["--clip"] = o => o.Clipping,
        ["--held-out"] = o => o.HeldOut, ["--steps"] = o => o.Steps, ["--model"] = o => o.ModelPath, ["--plot"] = o => o.PlotPath,
        ["--samples"] = o => o.Samples, ["--temperature"] = o => o.Temperature, ["--max-length"] = o => o.MaxLength,
        ["--pieces"] = o => o.Pieces, ["--precision"] = o => o.Precision, ["--resume"] = o => o.Resume,
    };

    /// <summary>
    /// Whether an accepted vector is made of settings only (<c>--name value</c>, <c>--name=value</c>, <c>--name:value</c>,
    /// each name once, a <c>--</c> at the end; <c>--name= value</c> reads as <c>--name value</c>) and the options hold what each setting alone gives, the defaults elsewhere:
    /// nothing was ignored or mixed up.
    /// </summary>
    private static bool EveryArgumentIsASettingThatWasApplied(string[] args, TrainOptions o)
    {
        var given = new Dictionary<string, string[]>();
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a == "--" && i == args.Length - 1) continue;
            // "--name=" with nothing after the sign is the name alone, as the library reads it: the value follows.
            var bare = a.Length > 0 && a[^1] is '=' or ':' && Names.Contains(a[..^1]) ? a[..^1] : a;
            var (name, setting) = Names.Contains(bare) && i + 1 < args.Length ? (bare, new[] { bare, args[++i] })
                : Names.FirstOrDefault(n => a.StartsWith(n + "=", StringComparison.Ordinal) || a.StartsWith(n + ":", StringComparison.Ordinal)) is { } n
                    ? (n, new[] { a }) : (null, []);
            if (name is null || !given.TryAdd(name, setting)) return false;
        }
        return Names.All(n => Equals(Field[n](o), given.TryGetValue(n, out var setting)
            ? TrainCommand.Parse(setting).Match(alone => Field[n](alone), _ => "(rejected alone)") : Field[n](Defaults)));
    }

    /// <summary>Whether a message names an option of train, or holds an argument of the command line (a response file's without its @).</summary>
    private static bool NamesAnOptionOrArgument(string message, string[] args) =>
        Names.Any(n => message.Contains(n, StringComparison.Ordinal))
        || args.Any(a => message.Contains($"'{a}'", StringComparison.Ordinal)
                         || (a.Trim().Length > 0 && message.Contains(a.TrimStart('@'), StringComparison.Ordinal)));

    private static RunResult Run(string[] args) => RunResult.Of(["train", .. args]);

    /// <summary>The outcome of one argument vector: "options", "help" or the messages of the problems.</summary>
    private static (string Kind, IReadOnlyList<string> Messages, TrainOptions? Options) Outcome(string[] args)
    {
        var parsed = CommandParser.Parse(TrainCommand.Command, args);
        if (CommandParser.AsksForHelp(parsed)) return ("help", [], null);
        return TrainCommand.Parse(parsed).Match(
            o => ("options", (IReadOnlyList<string>)[], (TrainOptions?)o),
            errors => ("problems", errors.Map(e => e.Message).ToList(), null));
    }

    private static Property Holds(string[] args)
    {
        (string Kind, IReadOnlyList<string> Messages, TrainOptions? Options) outcome;
        try
        {
            outcome = Outcome(args);
        }
        catch (Exception e)
        {
            return false.Label($"{Show(args)}: the parse threw {e.GetType().Name}: {e.Message}");
        }
        switch (outcome.Kind)
        {
            case "options":
                return InRange(outcome.Options!).Label($"{Show(args)}: values outside their ranges: {outcome.Options}")
                    .And(EveryArgumentIsASettingThatWasApplied(args, outcome.Options!).Label($"{Show(args)}: an argument ignored or misapplied: {outcome.Options}"));
            case "help":
                var help = Run(args);
                return (help.ExitCode == 0 && help.Error == "" && help.Out.Contains("Usage:", StringComparison.Ordinal) && help.Out.Contains("--hidden <N>", StringComparison.Ordinal))
                    .Label($"{Show(args)}: help with exit code 0, got {help.ExitCode}: {help.Error}");
            default:
                var r = Run(args);
                var lines = r.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                var unnamed = outcome.Messages.Where(m => !NamesAnOptionOrArgument(m, args)).ToList();
                return (r.ExitCode == Cli.BadInput).Label($"{Show(args)}: exit code 2, got {r.ExitCode}: {r.Error}")
                    .And((lines.Length == 1 && lines[0].StartsWith("rnnf train: error: ", StringComparison.Ordinal) && r.Out == "").Label($"{Show(args)}: one error line, got {r.Error}"))
                    .And((outcome.Messages.Count > 0 && unnamed.Count == 0).Label($"{Show(args)}: messages naming no option or argument: {string.Join(" | ", unnamed)}"))
                    .And((!r.Error.Contains("internal error", StringComparison.Ordinal)).Label($"{Show(args)}: an internal error: {r.Error}"));
        }
    }

    [Fact]
    public void EveryArgumentVectorParsesIntoRangeOrFailsWithNamedProblemsAndExitCode2() =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(Cases), Prop.ForAll(Arb.From(Vector, Shrink), Holds));

    [Fact]
    public void TheFuzzReachesEveryKindOfOutcome()
    {
        var outcomes = Vector.Sample(2000, 200).Select(Outcome).ToList();                        // enough vectors that each kind turns up
        var messages = outcomes.SelectMany(o => o.Messages).ToList();
        Assert.Contains(outcomes, o => o.Kind == "options");
        Assert.Contains(outcomes, o => o.Kind == "help");
        foreach (var expected in new[] { "must be an integer in", "must be a number in", "must be one of", "must not be empty", "--clip must be",
                                         "is given twice", "needs a value", "(did you mean --", "unexpected argument", "Response file not found" })
            Assert.True(messages.Any(m => m.Contains(expected, StringComparison.Ordinal)), $"no argument vector of the fuzz gave \"{expected}\"");
    }

    [Fact]
    public void TheFuzzPropertyRejectsAValueOutsideItsRange() =>
        Assert.False(InRange(TrainCommand.Parse([]).Match(o => o with { Hidden = 1025 }, _ => throw new InvalidOperationException())));

    [Fact]
    public void TheFuzzPropertyRejectsAnIgnoredOrMisappliedArgument()
    {
        Assert.True(EveryArgumentIsASettingThatWasApplied(["--hidden", "7", "--clip=norm:2", "--"], Defaults with { Hidden = 7, Clipping = Clipping.ByGlobalNorm(2) }));
        Assert.False(EveryArgumentIsASettingThatWasApplied(["--hidden", "7"], Defaults));
        Assert.False(EveryArgumentIsASettingThatWasApplied(["--hidden", "7", "stray"], Defaults with { Hidden = 7 }));
        Assert.False(EveryArgumentIsASettingThatWasApplied(["--hidden", "7", "--hidden", "7"], Defaults with { Hidden = 7 }));
    }

    [Fact]
    public void TheFuzzPropertyRejectsAMessageThatNamesNothing() =>
        Assert.False(NamesAnOptionOrArgument("something went wrong", ["--hidden", "5"]));
}
