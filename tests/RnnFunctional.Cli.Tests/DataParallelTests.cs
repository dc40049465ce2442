using System.Diagnostics;
using System.Net;

namespace RnnFunctional.Cli.Tests;

/// <summary>
/// rnnf train --workers N and rnnf worker end to end on loopback: the bits of one process with the same pieces, a
/// worker of another corpus refused, and no worker left behind when its coordinator dies.
/// </summary>
[Collection(ClusterProcesses.Name)]
public sealed class DataParallelTests : IDisposable
{
    private static readonly string[] Names = ClusterProcesses.Names;

    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private static RunResult Run(params string[] args) => RunResult.Of(args);

    private string[] Tiny(string model, params string[] extra) =>
        ["train", "--corpus", scratch.Write("names.txt", string.Join("\n", Names) + "\n"), "--hidden", "8", "--batch-size", "6",
         "--samples", "0", "--model", scratch[model], "--plot", scratch[model + ".png"], .. extra];

    private static Process Start(params string[] args)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "rnnf")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        return Process.Start(start)!;
    }

    [Fact]
    public void WorkersTrainTheDefaultStackWithoutDropout()
    {
        var distributed = Run(Tiny("workers.rnnf", "--steps", "2", "--workers", "2"));
        Assert.True(distributed.ExitCode == 0, distributed.Error);
        Assert.Contains("×2 layers", distributed.Out);
        Assert.DoesNotContain("dropout", distributed.Out);
        var single = Run(Tiny("single.rnnf", "--steps", "2", "--pieces", $"{TrainCommand.DefaultPieces}", "--dropout", "0", "--recurrent-dropout", "0"));
        Assert.True(single.ExitCode == 0, single.Error);
        Assert.Equal(File.ReadAllBytes(scratch["single.rnnf"]), File.ReadAllBytes(scratch["workers.rnnf"]));
    }

    [Fact]
    public void TrainingOnTwoWorkersWritesTheModelFileOfOneProcessWithTheSamePieces()
    {
        var distributed = Run(Tiny("workers.rnnf", "--layers", "1", "--steps", "3", "--workers", "2", "--pieces", "4"));
        Assert.True(distributed.ExitCode == 0, distributed.Error);
        Assert.Contains("held-out", distributed.Out);
        // Where the steps' time went, from the coordinator's counters.
        Assert.Matches(@"\nworkers: the median of 3 steps, \d+ ms a step: blocks \d+ \(the slowest computed in \d+, so -?\d+ on the way\), summing \d+, applying \d+\r?\n", distributed.Out);
        var single = Run(Tiny("single.rnnf", "--layers", "1", "--steps", "3", "--pieces", "4"));
        Assert.True(single.ExitCode == 0, single.Error);
        Assert.DoesNotContain("workers:", single.Out);
        var other = Run(Tiny("other.rnnf", "--layers", "1", "--steps", "3", "--pieces", "3"));
        Assert.True(other.ExitCode == 0, other.Error);
        Assert.Equal(File.ReadAllBytes(scratch["single.rnnf"]), File.ReadAllBytes(scratch["workers.rnnf"]));
        // The comparison sees the pieces: another cut of the same batches gives other bits.
        Assert.NotEqual(File.ReadAllBytes(scratch["single.rnnf"]), File.ReadAllBytes(scratch["other.rnnf"]));
    }

    [Fact]
    public void EachLocalWorkersOutputIsKeptInALogNextToTheModel()
    {
        // Three workers on loopback: this process and two started, each with its log.
        var distributed = Run(Tiny("logged.rnnf", "--layers", "1", "--steps", "2", "--workers", "3", "--pieces", "4"));
        Assert.True(distributed.ExitCode == 0, distributed.Error);
        Assert.DoesNotContain("exited with code", distributed.Error);
        foreach (var k in (int[])[1, 2])
        {
            var lines = File.ReadAllLines(scratch["logged.rnnf"] + $".worker-{k}.log");
            Assert.Contains(" start ", lines[0]);
            Assert.Contains(" worker --cluster ", lines[0]);
            Assert.Contains(lines, l => l.Contains(" stderr rnnf worker: listening on ", StringComparison.Ordinal));
            Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{3} exit code -?\d+ \(ended by rnnf train at the end of the run\)$", lines[^1]);
        }
        Assert.False(File.Exists(scratch["logged.rnnf"] + ".worker-3.log"));
    }

    [Fact]
    public void OnLoopbackTheTrainerIsOneOfItsWorkers()
    {
        // One worker on loopback is the trainer's own silo: no process started, the bits of one process with the same pieces.
        var id = $"alone-{Guid.NewGuid():N}";
        var alone = Run(Tiny("alone.rnnf", "--layers", "1", "--steps", "3", "--workers", "1", "--pieces", "4", "--cluster-id", id));
        Assert.True(alone.ExitCode == 0, alone.Error);
        Assert.Matches(@"\nworkers: the median of 3 steps, ", alone.Out);
        Assert.False(File.Exists(scratch["alone.rnnf"] + ".worker-1.log"), "a worker process was started");
        var single = Run(Tiny("single.rnnf", "--layers", "1", "--steps", "3", "--pieces", "4"));
        Assert.True(single.ExitCode == 0, single.Error);
        Assert.Equal(File.ReadAllBytes(scratch["single.rnnf"]), File.ReadAllBytes(scratch["alone.rnnf"]));
    }

    [Fact]
    public async Task AWorkerWithAnotherCorpusIsRefusedInOneLine()
    {
        var port = FreePort();
        var training = Task.Run(() => Run(Tiny("model.rnnf", "--steps", "3", "--workers", "1", "--cluster", $"127.0.0.1:{port}", "--cluster-id", "refusal")));
        var other = scratch.Write("other.txt", string.Join("\n", Names.Reverse()) + "\n");
        using var worker = Start("worker", "--cluster", $"127.0.0.1:{port}", "--cluster-id", "refusal", "--corpus", other);
        try
        {
            var result = await training.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(Cli.ClusterFailed, result.ExitCode);
            var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("rnnf train:", StringComparison.Ordinal));
            Assert.Contains("refused: this worker's corpus", line);
            Assert.False(File.Exists(scratch["model.rnnf"]));
            Assert.True(worker.WaitForExit(15_000), "the worker did not end after its coordinator");
        }
        finally
        {
            if (!worker.HasExited) worker.Kill();
        }
    }

    [Fact]
    public async Task WorkersEndWhenTheirCoordinatorIsKilled()
    {
        using var coordinator = Start(Tiny("model.rnnf", "--workers", "3", "--epochs", "10000"));
        try
        {
            string? line;
            do line = await coordinator.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            while (line is not null && !line.StartsWith("epoch", StringComparison.Ordinal));
            Assert.NotNull(line);
            var workers = Children(coordinator.Id);
            Assert.Equal(2, workers.Count);
            coordinator.Kill();
            var clock = Stopwatch.StartNew();
            while (workers.Any(Alive) && clock.Elapsed < TimeSpan.FromSeconds(15)) await Task.Delay(200);
            Assert.False(workers.Any(Alive), $"workers {string.Join(", ", workers.Where(Alive))} outlived their coordinator by 15 s");
        }
        finally
        {
            if (!coordinator.HasExited) coordinator.Kill(entireProcessTree: true);
        }
    }

    [Theory]
    [InlineData(new[] { "worker" }, "option --cluster is required")]
    [InlineData(new[] { "worker", "--cluster", "localhost" }, "--cluster must be an IP address and a port")]
    [InlineData(new[] { "train", "--cluster", "127.0.0.1:5000" }, "--cluster needs --workers N")]
    [InlineData(new[] { "train", "--workers", "2", "--bptt", "5" }, "--workers needs --bptt 0")]
    [InlineData(new[] { "train", "--workers", "2", "--dropout", "0.2" }, "--workers does not train with --dropout or --recurrent-dropout")]
    [InlineData(new[] { "train", "--pieces", "4", "--recurrent-dropout", "0.2" }, "--pieces does not train with --dropout or --recurrent-dropout")]
    [InlineData(new[] { "train", "--workers", "0" }, "--workers must be an integer in [1, 64] but got '0'")]
    public void BadClusterOptionsGetOneLineAndCode2(string[] args, string message)
    {
        var result = Run(args);
        Assert.Equal(Cli.BadInput, result.ExitCode);
        Assert.Contains(message, result.Error);
    }

    private static int FreePort() => ProcessTable.FreePort(IPAddress.Loopback);

    private static List<int> Children(int pid) => ProcessTable.Children(pid);

    private static bool Alive(int pid) => ProcessTable.Alive(pid);
}
