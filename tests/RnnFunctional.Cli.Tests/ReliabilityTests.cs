using System.Collections.Immutable;
using System.Diagnostics;
using System.Text;

namespace RnnFunctional.Cli.Tests;

/// <summary>
/// Large corpora (progress lines when the output is not a terminal), corpora that are not regular files, diverged
/// trainings and outputs that are hard links to the corpus.
/// </summary>
public sealed class ReliabilityTests : IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private static RunResult Run(TimeSpan progressEvery, params string[] args) => RunResult.Of(args, progressEvery);

    private static RunResult Run(params string[] args) => Run(TimeSpan.FromSeconds(2), args);

    private string Corpus() => scratch.Write("names.txt", string.Join("\n", Enumerable.Range(0, 40).Select(i => $"Name{(char)('a' + i % 26)}{i}saurus")) + "\n");

    private static void FailsWith(RunResult r, int code, string fragment)
    {
        Assert.Equal(code, r.ExitCode);
        var lines = r.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("rnnf", lines[0]);
        Assert.Contains(fragment, lines[0]);
    }

    // ---- progress lines ----

    [Fact]
    public void ARedirectedRunWritesAPlainProgressLineForEveryPartOfTheWork()
    {
        var r = Run(TimeSpan.Zero, "train", "--corpus", Corpus(), "--hidden", "4", "--epochs", "2", "--batch-size", "8",
            "--model", scratch["m.rnnf"], "--plot", scratch["p.png"], "--samples", "1");
        Assert.True(r.ExitCode == 0, r.Error);
        foreach (var part in new[] { "reading corpus", "fitting the bigram baseline: ", "evaluating the bigram baseline: ",
                                     "evaluating the initial model on the held-out items: ", "step 1/", "epoch 1: evaluating the held-out items: ",
                                     "evaluating the trained model on the held-out items: " })
            Assert.Contains(part, r.Out);
        Assert.False(r.Out.Contains('\u001b', StringComparison.Ordinal), "an escape sequence in the redirected output");
        Assert.False(r.Out.Contains('\r', StringComparison.Ordinal), "a carriage return in the redirected output");
    }

    [Fact]
    public void ARunShorterThanTheIntervalWritesNoProgressLine()
    {
        var r = Run(TimeSpan.FromHours(1), "train", "--corpus", Corpus(), "--hidden", "4", "--epochs", "1", "--model", scratch["m.rnnf"], "--plot", scratch["p.png"]);
        Assert.Equal(0, r.ExitCode);
        Assert.DoesNotContain("reading corpus", r.Out);
        Assert.DoesNotContain("step 1/", r.Out);
    }

    // ---- a corpus that is not a regular file ----

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task AFifoWithNoWriterIsRefusedAtOnce()
    {
        var fifo = scratch["names.fifo"];
        using (var mkfifo = Process.Start("mkfifo", fifo)) await mkfifo.WaitForExitAsync();
        var run = Task.Run(() => Run("train", "--corpus", fifo, "--model", scratch["m.rnnf"], "--plot", scratch["p.png"]));
        var finished = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(30)));
        Assert.True(finished == run, "rnnf train --corpus FIFO still waits after 30 s");
        FailsWith(await run, 2, $"corpus {fifo} is a FIFO (named pipe), not a regular file");
        Assert.False(File.Exists(scratch["m.rnnf"]));
    }

    [Theory]
    [InlineData("/dev/zero", "is a character device, not a regular file")]
    [InlineData("/dev/null", "is a character device, not a regular file")]
    public void ADeviceIsRefusedAsACorpus(string device, string message)
    {
        if (!File.Exists(device)) return;
        FailsWith(Run("train", "--corpus", device, "--model", scratch["m.rnnf"], "--plot", scratch["p.png"]), 2, message);
    }

    // ---- a diverged training is not saved ----

    [Fact]
    public void ADivergedTrainingWritesNothingAndExitsWithThree()
    {
        File.WriteAllText(scratch["m.rnnf"], "previous model");
        var r = Run("train", "--corpus", Corpus(), "--hidden", "16", "--epochs", "3", "--learning-rate", "10", "--clip", "none",
            "--model", scratch["m.rnnf"], "--plot", scratch["p.png"]);
        FailsWith(r, Cli.Diverged, "training diverged");
        Assert.Contains("nothing was written", r.Error);
        Assert.Equal("previous model", File.ReadAllText(scratch["m.rnnf"]));
        Assert.False(File.Exists(scratch["p.png"]));
    }

    [Fact]
    public void TheExitCodeOfADivergedTrainingIsInTheHelp() => Assert.Contains("3 a training that diverged", Run("--help").Out);

    // ---- hard links ----

    [Theory]
    [InlineData("--model")]
    [InlineData("--plot")]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AnOutputThatIsAHardLinkToTheCorpusIsRefused(string option)
    {
        var corpus = Corpus();
        var before = File.ReadAllText(corpus);
        using (var ln = Process.Start("ln", [corpus, scratch["linked.out"]])) ln.WaitForExit();
        Assert.True(File.Exists(scratch["linked.out"]));
        var other = option == "--model" ? "--plot" : "--model";
        var r = Run("train", "--corpus", corpus, option, scratch["linked.out"], other, scratch["other.out"], "--epochs", "1", "--hidden", "4");
        FailsWith(r, 2, $"{option} {scratch["linked.out"]} is the corpus file");
        Assert.Equal("", r.Out);
        Assert.Equal(before, File.ReadAllText(corpus));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AModelAndPlotThatAreHardLinksToOneFileAreRefused()
    {
        File.WriteAllText(scratch["a.out"], "x");
        using (var ln = Process.Start("ln", [scratch["a.out"], scratch["b.out"]])) ln.WaitForExit();
        FailsWith(Run("train", "--corpus", Corpus(), "--model", scratch["a.out"], "--plot", scratch["b.out"]), 2, "are the same file");
        Assert.False(OutputFile.Same(scratch["a.out"], Corpus()));
    }
}
