namespace RnnFunctional.Cli.Tests;

/// <summary>
/// How rnnf reads its command line: response files, the forms of an option, suggestions for a misspelt option or
/// command, and the problems of a command line each named and all reported at once.
/// </summary>
public sealed class ArgumentTests : IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private static RunResult Run(params string[] args) => RunResult.Of(args);

    /// <summary>Exit code 2 and one line "rnnf …: error: …" holding every fragment.</summary>
    private static void FailsWith(RunResult r, params string[] fragments)
    {
        Assert.Equal(Cli.BadInput, r.ExitCode);
        Assert.Equal("", r.Out);
        var lines = r.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("rnnf", lines[0]);
        Assert.All(fragments, f => Assert.Contains(f, lines[0]));
        Assert.DoesNotContain("internal error", r.Error);
    }

    private static TrainOptions Train(params string[] args) =>
        TrainCommand.Parse(args).Match(o => o, errors => throw new Xunit.Sdk.XunitException(string.Join("; ", errors.Map(e => e.Message))));

    // ---- response files ----

    [Fact]
    public void AResponseFileStandsForTheArgumentsItHolds()
    {
        var file = scratch.Write("args.txt", "--hidden 12 --layers 2\n# a comment line\n--optimizer sgd\n--model \"with space/m.rnnf\"\n--clip norm:2.5\n");
        var o = Train($"@{file}", "--epochs", "3");
        Assert.Equal((12, 2, "sgd", "with space/m.rnnf", 3), (o.Hidden, o.Layers, o.Optimizer, o.ModelPath, o.Epochs));
        Assert.Equal(Clipping.ByGlobalNorm(2.5), o.Clipping);
        Assert.Equal(160, Train().Hidden);
    }

    [Fact]
    public void TrainRunsWithTheOptionsOfAResponseFile()
    {
        var corpus = scratch.Write("names.txt", string.Join("\n", Enumerable.Range(0, 24).Select(i => $"Name{(char)('a' + i % 26)}{i}saurus")) + "\n");
        var file = scratch.Write("args.txt", $"--corpus {corpus}\n--hidden 5 --cell gru\n--epochs 1 --batch-size 4 --held-out 0.25 --samples 1\n--model {scratch["m.rnnf"]} --plot {scratch["p.png"]}\n");
        var r = Run("train", $"@{file}");
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.Contains("gru n_a=5", r.Out);
        Assert.True(File.Exists(scratch["m.rnnf"]));
    }

    [Fact]
    public void AProblemInAResponseFileNamesTheOption()
    {
        var file = scratch.Write("args.txt", "--hidden 0\n--epochs many\n");
        FailsWith(Run("train", $"@{file}"), "--hidden must be an integer in [1, 1024] but got '0'", "; --epochs must be an integer in [1, 10000] but got 'many'");
    }

    [Fact]
    public void AMissingResponseFileIsNamed() =>
        FailsWith(Run("train", $"@{scratch["absent.txt"]}"), scratch["absent.txt"]);

    // ---- forms of an option ----

    [Fact]
    public void AValueMayFollowAnEqualsSignOrAColon()
    {
        var o = Train("--hidden=7", "--learning-rate:0.5", "--cell", "GRU", "--seed", "-3");
        Assert.Equal((7, 0.5, "gru", -3), (o.Hidden, o.LearningRate, o.Cell, o.Seed));
    }

    [Fact]
    public void EveryDefaultIsTheDocumentedOne()
    {
        var o = Train();
        Assert.Equal(new TrainOptions(null, "lstm", 160, 2, "adam", 0.006, 20, 32, 0, 1, Clipping.ByValue(5), 0.1, 0, "out/model.rnnf", "out/loss.png", 10, 0.8, 40)
        {
            Dropout = new Dropout(Between: 0.2, Recurrent: 0.2, ReadOut: 0.2),
        }, o);
    }

    [Fact]
    public void AnOptionGivenTwiceIsAProblem() => FailsWith(Run("train", "--hidden", "5", "--hidden", "6"), "option --hidden is given twice");

    [Fact]
    public void ArgumentsAfterDoubleDashAreUnexpected() =>
        FailsWith(Run("train", "--hidden", "5", "--", "--epochs"), "unexpected argument '--epochs'");

    [Fact]
    public void TheCommandsNameAgainIsUnexpected() => FailsWith(Run("train", "train", "--hidden", "5"), "unexpected argument 'train'");

    [Fact]
    public void AnOptionGivenTwiceTheSecondTimeWithoutAValueIsAProblem() =>
        FailsWith(Run("train", "--bptt", "3", "--hidden", "5", "--bptt"), "option --bptt is given twice");

    [Fact]
    public void AStrayWordIsUnexpected() => FailsWith(Run("train", "lstm"), "unexpected argument 'lstm' (options look like --name value)");

    [Theory]
    [InlineData("--hidden", "")]
    [InlineData("--model", " ")]
    public void AnEmptyValueIsAProblem(string option, string value) => FailsWith(Run("train", option, value), $"{option} must");

    // ---- suggestions ----

    [Theory]
    [InlineData("--hiden", "--hidden")]
    [InlineData("--epoch", "--epochs")]
    [InlineData("--learning_rate", "--learning-rate")]
    [InlineData("--learnig-rate", "--learning-rate")]
    [InlineData("-hidden", "--hidden")]
    [InlineData("--Hidden", "--hidden")]
    [InlineData("--temp", "--temperature")]
    [InlineData("--max-lenght", "--max-length")]
    [InlineData("--hiden=5", "--hidden")]
    public void AMisspeltOptionIsReportedWithTheNearestKnownOne(string misspelt, string known)
    {
        var r = Run(misspelt.Contains('=') ? ["train", misspelt] : ["train", misspelt, "5"]);
        FailsWith(r, $"unknown option {misspelt} (did you mean {known}?)");
        Assert.DoesNotContain("'5'", r.Error);
    }

    [Fact]
    public void AnOptionFarFromEveryKnownOneGetsNoSuggestion()
    {
        var r = Run("train", "--bogus", "1", "--zzz");
        FailsWith(r, "unknown option --bogus; unknown option --zzz");
        Assert.DoesNotContain("did you mean", r.Error);
    }

    [Fact]
    public void SuggestionsAreForTheCommandsOwnOptions()
    {
        FailsWith(Run("sample", "--model", scratch["m.rnnf"], "--cont", "3"), "unknown option --cont (did you mean --count?)");
        FailsWith(Run("export", "--model", scratch["m.rnnf"], "--formt", "onnx", "--output", scratch["m.onnx"]), "unknown option --formt (did you mean --format?)");
        FailsWith(Run("gradcheck", "--sed", "3"), "unknown option --sed (did you mean --seed?)");
    }

    [Theory]
    [InlineData("trian", "train")]
    [InlineData("sampel", "sample")]
    [InlineData("exprot", "export")]
    [InlineData("gradchek", "gradcheck")]
    public void AMisspeltCommandIsReportedWithTheNearestCommand(string misspelt, string known) =>
        FailsWith(Run(misspelt), $"unknown command '{misspelt}'", $"did you mean {known}?");

    [Fact]
    public void EveryKindOfProblemIsReportedAtOnce()
    {
        var r = Run("train", "--hidden", "0", "--hiden", "5", "--learning-rate", "NaN", "--epochs", "1", "--epochs", "2", "--cell", "cnn", "stray", "--seed");
        FailsWith(r, "--hidden must be an integer in [1, 1024] but got '0'", "--learning-rate must be a number in (0, 10] but got 'NaN'",
            "option --epochs is given twice", "--cell must be one of rnn, lstm, gru but got 'cnn'", "option --seed needs a value (S)",
            "unknown option --hiden (did you mean --hidden?)", "unexpected argument 'stray'");
    }

    [Fact]
    public void HelpIsShownWhateverElseTheArgumentsHold()
    {
        foreach (var help in new[] { "--help", "-h", "-?" })
        {
            var r = Run("train", "--hidden", "0", help, "--bogus");
            Assert.Equal((0, ""), (r.ExitCode, r.Error));
            Assert.Contains("Usage:", r.Out);
            Assert.Contains("--hidden <N>", r.Out);
        }
    }

    [Theory]
    [InlineData("hiden", "hidden", 1)]
    [InlineData("trian", "train", 1)]
    [InlineData("", "abc", 3)]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("same", "same", 0)]
    public void TheEditDistanceCountsInsertionsDeletionsSubstitutionsAndSwaps(string a, string b, int distance)
    {
        Assert.Equal(distance, CommandParser.EditDistance(a, b));
        Assert.Equal(distance, CommandParser.EditDistance(b, a));
    }

    [Theory]
    [InlineData("rnnf ", "train sample gradcheck export worker")]
    [InlineData("rnnf tr", "train")]
    [InlineData("rnnf train --hi", "--hidden")]
    [InlineData("rnnf train --cell ", "gru lstm rnn")]
    [InlineData("rnnf train --cell l", "lstm")]
    [InlineData("rnnf train --hidden 5 --ep", "--epochs")]
    [InlineData("rnnf export --format ", "onnx safetensors")]
    [InlineData("rnnf nothing --", "")]
    [InlineData("rnnf worker --clu", "--cluster --cluster-id")]
    public void CompletionListsTheWordsThatCanFollowTheCursor(string line, string expected)
    {
        var r = Run("complete", line);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(expected, string.Join(' ', r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public void CompletionAtAPositionReadsOnlyTheTextBeforeIt()
    {
        var r = Run("complete", "rnnf train --cell  --hidden 8", "18");
        Assert.Equal("gru lstm rnn", string.Join(' ', r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        FailsWith(Run("complete", "rnnf train", "11"), "POSITION must be an integer in [0, 10] but got '11'");
    }
}
