using System.Net;

namespace RnnFunctional.Cli.Tests;

/// <summary>
/// A <c>rnnf worker</c> started by hand in the middle of a <c>rnnf train --workers 1 --cluster …</c>: it is given
/// pieces of the steps after it joined, or, when its corpus is not the run's, refuses them and is left out; either way
/// the run writes the model file of one process with the same pieces.
/// </summary>
/// <remarks>
/// The trainer runs in this process and its standard output is a <see cref="PausingWriter"/> that holds it at its first
/// epoch line (three of thirty steps applied, all on the first worker) while the second worker joins. A worker says
/// on its standard error each time a block of a run is placed on it for the first time (it then reads its shard).
/// </remarks>
[Collection(ClusterProcesses.Name)]
public sealed class WorkerJoinTests : IDisposable
{
    private const string ShardRead = "rnnf worker: a block of the run on ";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private readonly Scratch scratch = new();
    private readonly string corpus;

    public WorkerJoinTests() => corpus = scratch.Write("names.txt", string.Join("\n", ClusterProcesses.Names) + "\n");

    public void Dispose() => scratch.Dispose();

    /// <summary>Ten epochs of three batches (30 steps), every batch cut into four pieces.</summary>
    private string[] Train(string model, params string[] extra) =>
        ["train", "--corpus", corpus, "--hidden", "8", "--batch-size", "6", "--samples", "0", "--epochs", "10", "--pieces", "4",
         "--model", scratch[model], "--plot", scratch[model + ".png"], .. extra];

    private RnnfProcess Worker(int port, string clusterId, string? otherCorpus = null) =>
        RnnfProcess.Start(["worker", "--cluster", $"127.0.0.1:{port}", "--cluster-id", clusterId, "--corpus", otherCorpus ?? corpus]);

    [Fact]
    public async Task AWorkerStartedMidRunComputesPiecesAndChangesNoBit()
    {
        var id = $"join-{Guid.NewGuid():N}";
        var port = ProcessTable.FreePort(IPAddress.Loopback);
        using var output = new PausingWriter(l => l.StartsWith("epoch", StringComparison.Ordinal));
        var run = Task.Run(() => RunResult.Of(Train("workers.rnnf", "--workers", "1", "--cluster", $"127.0.0.1:{port}", "--cluster-id", id), output));
        using var first = Worker(port, id);
        try
        {
            await output.Paused.WaitAsync(Patience);
            Assert.StartsWith("epoch   1/10  step      3", output.ToString().Split('\n').Last(l => l.StartsWith("epoch", StringComparison.Ordinal)));
            await first.WaitForError(l => l.StartsWith(ShardRead, StringComparison.Ordinal), Patience);
            using var second = Worker(port, id);
            await second.WaitForError(l => l.StartsWith("rnnf worker: listening on ", StringComparison.Ordinal), Patience);
            Assert.DoesNotContain(second.Error, l => l.StartsWith(ShardRead, StringComparison.Ordinal));
            // Slack for the coordinator's silo to take in the new silo's manifest; a later step would count it too.
            await Task.Delay(TimeSpan.FromSeconds(2));
            output.Resume();
            var distributed = await run.WaitAsync(Patience);
            Assert.True(distributed.ExitCode == 0, distributed.Error);
            Assert.Contains("done: epoch 10/10  step 30  ", distributed.Out);
            var placed = second.Error[await second.WaitForError(l => l.StartsWith(ShardRead, StringComparison.Ordinal), Patience)];
            Assert.EndsWith($" was placed here; reading its shard of {corpus}", placed);
            var single = RunResult.Of(Train("single.rnnf"));
            Assert.True(single.ExitCode == 0, single.Error);
            Assert.Equal(File.ReadAllBytes(scratch["single.rnnf"]), File.ReadAllBytes(scratch["workers.rnnf"]));
        }
        finally
        {
            output.Resume();
        }
    }

    [Fact]
    public async Task AWorkerWithAnotherCorpusStartedMidRunIsLeftOutAndChangesNoBit()
    {
        var id = $"stranger-{Guid.NewGuid():N}";
        var port = ProcessTable.FreePort(IPAddress.Loopback);
        var other = scratch.Write("other.txt", string.Join("\n", ClusterProcesses.Names.Reverse()) + "\n");
        using var output = new PausingWriter(l => l.StartsWith("epoch", StringComparison.Ordinal));
        var run = Task.Run(() => RunResult.Of(Train("workers.rnnf", "--workers", "1", "--cluster", $"127.0.0.1:{port}", "--cluster-id", id), output));
        using var first = Worker(port, id);
        try
        {
            await output.Paused.WaitAsync(Patience);
            using var stranger = Worker(port, id, other);
            await stranger.WaitForError(l => l.StartsWith("rnnf worker: listening on ", StringComparison.Ordinal), Patience);
            // Slack for the coordinator's silo to take in the new silo's manifest; a later step would count it too.
            await Task.Delay(TimeSpan.FromSeconds(2));
            output.Resume();
            var distributed = await run.WaitAsync(Patience);
            Assert.True(distributed.ExitCode == 0, distributed.Error);
            Assert.Contains("done: epoch 10/10  step 30  ", distributed.Out);
            var line = Assert.Single(distributed.Error.Split('\n'), l => l.StartsWith("rnnf train: the worker at ", StringComparison.Ordinal));
            Assert.Contains($" refused the run and is left out: refused: this worker's corpus {other} has SHA-256 ", line);
            Assert.DoesNotContain(stranger.Error, l => l.StartsWith(ShardRead, StringComparison.Ordinal));
            var single = RunResult.Of(Train("single.rnnf"));
            Assert.True(single.ExitCode == 0, single.Error);
            Assert.Equal(File.ReadAllBytes(scratch["single.rnnf"]), File.ReadAllBytes(scratch["workers.rnnf"]));
        }
        finally
        {
            output.Resume();
        }
    }
}
