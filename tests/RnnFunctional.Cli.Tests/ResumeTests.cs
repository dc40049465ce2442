namespace RnnFunctional.Cli.Tests;

/// <summary>
/// rnnf train --resume: a run continued from its model file writes the model file of the uninterrupted run, byte for
/// byte (parameters, optimizer state and metadata), in this process and on workers; what cannot continue the saved run
/// is refused with one line naming it, and nothing is written.
/// </summary>
[Collection(ClusterProcesses.Name)]
public sealed class ResumeTests : IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private string Corpus => File.Exists(scratch["names.txt"]) ? scratch["names.txt"] : scratch.Write("names.txt", string.Join("\n", ClusterProcesses.Names) + "\n");

    private string[] Train(string model, params string[] extra) =>
        ["train", "--corpus", Corpus, "--hidden", "8", "--batch-size", "6", "--samples", "0", "--model", scratch[model], "--plot", scratch[model + ".png"], .. extra];

    private void Succeeds(params string[] args)
    {
        var run = RunResult.Of(args);
        Assert.True(run.ExitCode == 0, run.Error);
    }

    /// <summary>The saved run stops at <paramref name="stop"/>, is continued to <paramref name="end"/>, and the result is the uninterrupted run's file.</summary>
    private void ContinuesToTheSameFile(string[] options, string[] stop, string[] end, string[]? resumeOptions = null)
    {
        Succeeds(Train("saved.rnnf", [.. options, .. stop]));
        Succeeds(Train("resumed.rnnf", ["--resume", scratch["saved.rnnf"], .. resumeOptions ?? [], .. end]));
        Succeeds(Train("whole.rnnf", [.. options, .. end]));
        Assert.Equal(File.ReadAllBytes(scratch["whole.rnnf"]), File.ReadAllBytes(scratch["resumed.rnnf"]));
        Assert.NotEqual(File.ReadAllBytes(scratch["saved.rnnf"]), File.ReadAllBytes(scratch["resumed.rnnf"]));
    }

    [Theory]
    [InlineData("--steps", "3", "--steps", "7")]                                                     // the default stack, with its dropout
    [InlineData("--layers 1 --cell gru --optimizer momentum --clip norm:0.5 --steps", "4", "--steps", "9")]
    [InlineData("--layers 1 --cell rnn --pieces 3 --steps", "2", "--steps", "5")]
    [InlineData("--layers 1 --bptt 3 --epochs", "1", "--epochs", "2")]                               // one epoch: the end of a batch
    public void ARunContinuedFromItsModelFileWritesTheUninterruptedRunsFile(string options, string stop, string endOption, string end)
    {
        var split = options.Split(' ');
        ContinuesToTheSameFile(split[..^1], [split[^1], stop], [endOption, end]);
    }

    [Fact]
    public void ARunOfWorkersContinuesOnWorkersOrInThisProcessToTheSameFile()
    {
        ContinuesToTheSameFile(["--layers", "1", "--workers", "2", "--pieces", "4"], ["--steps", "2"], ["--steps", "4"], ["--workers", "2"]);
        Succeeds(Train("here.rnnf", "--resume", scratch["saved.rnnf"], "--steps", "4"));
        Assert.Equal(File.ReadAllBytes(scratch["whole.rnnf"]), File.ReadAllBytes(scratch["here.rnnf"]));
        // A run of this process has no pieces: it continues on workers with one piece, the same bits, on one worker.
        Succeeds(Train("single.rnnf", "--layers", "1", "--steps", "2"));
        var onWorkers = RunResult.Of(Train("single-workers.rnnf", "--resume", scratch["single.rnnf"], "--steps", "4", "--workers", "2"));
        Assert.True(onWorkers.ExitCode == 0, onWorkers.Error);
        Assert.Contains("every update is cut into 1 piece (the saved run's), so at most 1 of the 2 workers compute", onWorkers.Error);
        Succeeds(Train("single-here.rnnf", "--resume", scratch["single.rnnf"], "--steps", "4"));
        var (a, b) = (ModelFile.Load(scratch["single-workers.rnnf"]), ModelFile.Load(scratch["single-here.rnnf"]));
        Assert.True(a.Match(x => b.Match(y => x.Leaves.SequenceEqual(y.Leaves, LeafBits.Instance) && x.OptimizerSlots.SequenceEqual(y.OptimizerSlots, LeafBits.Instance), _ => false), _ => false),
            "the run continued on workers has other parameters or optimizer state than the one continued here");
    }

    [Fact]
    public void WhatCannotContinueTheSavedRunIsRefusedWithOneLineAndNothingIsWritten()
    {
        Succeeds(Train("saved.rnnf", "--layers", "1", "--bptt", "3", "--steps", "1"));   // batch 1 has more than one window
        Succeeds(Train("whole.rnnf", "--layers", "1", "--epochs", "1"));
        var otherCorpus = scratch.Write("other.txt", string.Join("\n", ClusterProcesses.Names.Reverse()) + "\n");
        string Refusal(params string[] args)
        {
            var run = RunResult.Of(args);
            Assert.Equal(2, run.ExitCode);
            Assert.False(File.Exists(scratch["out.rnnf"]), "a refused run wrote a model");
            return run.Error;
        }
        string[] Resume(string saved, params string[] extra) =>
            ["train", "--resume", scratch[saved], "--samples", "0", "--model", scratch["out.rnnf"], "--plot", scratch["out.png"], .. extra];
        Assert.Contains("the saved run stopped within batch 1 (after update 1; the batch ends at update ", Refusal([.. Resume("saved.rnnf", "--corpus", Corpus)]));
        Assert.Contains("the corpus gives other training items than the saved run's", Refusal([.. Resume("whole.rnnf", "--corpus", otherCorpus, "--epochs", "2")]));
        Assert.Contains("the corpus gives another vocabulary", Refusal([.. Resume("whole.rnnf", "--epochs", "2")]));   // the embedded corpus
        Assert.Contains("--hidden 9 differs from the saved run's 8; --seed 2 differs from the saved run's 1",
            Refusal([.. Resume("whole.rnnf", "--corpus", Corpus, "--hidden", "9", "--seed", "2")]));
        Assert.Contains("--steps 3 is not after the saved run's", Refusal([.. Resume("whole.rnnf", "--corpus", Corpus, "--steps", "3")]));
        Assert.Contains("has already taken its", Refusal([.. Resume("whole.rnnf", "--corpus", Corpus)]));
        Assert.Contains("--workers needs --bptt 0, and the saved run trained with --bptt 3",
            Refusal([.. Resume("saved.rnnf", "--corpus", Corpus, "--steps", "8", "--workers", "2")]));
        Assert.Contains("is the file to resume from", Refusal(["train", "--resume", scratch["whole.rnnf"], "--corpus", Corpus, "--plot", scratch["whole.rnnf"]]));
        Assert.Contains($"--resume {scratch["missing.rnnf"]}: model file {scratch["missing.rnnf"]} does not exist", Refusal([.. Resume("missing.rnnf")]));

        // A model file of parameters alone, and one whose saved options are not valid, are refused as files.
        var document = ModelFile.Load(scratch["whole.rnnf"]).Match(d => d, e => throw new InvalidOperationException(e.Message));
        ModelFile.Save(scratch["plain.rnnf"], document with { Metadata = document.Metadata.Remove("batch").Remove("optimizer-step"), OptimizerSlots = [] });
        Assert.Contains("not saved by a run that can be continued (it has no 'batch', 'optimizer-step' entry)", Refusal([.. Resume("plain.rnnf")]));
        ModelFile.Save(scratch["crafted.rnnf"], document with { Metadata = document.Metadata.SetItem("hidden", "0").SetItem("batch-size", "x") });
        var crafted = Refusal([.. Resume("crafted.rnnf")]);
        Assert.Contains("the file's options are not valid", crafted);
        Assert.Contains("--hidden", crafted);
        Assert.Contains("--batch-size", crafted);
    }
}

/// <summary>Leaves equal in name, shape and every bit.</summary>
internal sealed class LeafBits : IEqualityComparer<Leaf>
{
    public static readonly LeafBits Instance = new();

    public bool Equals(Leaf? a, Leaf? b) =>
        a is not null && b is not null && a.Name == b.Name && a.Rows == b.Rows && a.Columns == b.Columns
        && a.Values.Select(BitConverter.DoubleToInt64Bits).SequenceEqual(b.Values.Select(BitConverter.DoubleToInt64Bits));

    public int GetHashCode(Leaf leaf) => leaf.Name.GetHashCode(StringComparison.Ordinal);
}
