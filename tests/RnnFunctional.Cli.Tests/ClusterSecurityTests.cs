using System.Net;

namespace RnnFunctional.Cli.Tests;

/// <summary>
/// What a cluster of rnnf processes exposes: every silo listens on the one address it is given and on nothing else,
/// and a worker of another cluster id is refused. The listening sockets are read from the operating system
/// (<see cref="ProcessTable.Listening"/>), and 127.0.0.2 stands for "another address": on Linux every address of
/// 127.0.0.0/8 is the loopback interface, so the tests need no network.
/// </summary>
[Collection(ClusterProcesses.Name)]
public sealed class ClusterSecurityTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private readonly Scratch scratch = new();
    private readonly string corpus;

    public ClusterSecurityTests() =>
        corpus = scratch.Write("names.txt", string.Join("\n", ClusterProcesses.Names) + "\n");

    public void Dispose() => scratch.Dispose();

    /// <summary>
    /// A coordinator on 127.0.0.1:<paramref name="port"/> waiting for <paramref name="workers"/> workers of
    /// <paramref name="clusterId"/>, for a run that outlasts the test: 30,000 steps, with a learning rate so small
    /// that the held-out loss cannot rise enough for the run to end as diverged.
    /// </summary>
    private RnnfProcess Coordinator(int port, int workers, string clusterId) =>
        RnnfProcess.Start("train", "--corpus", corpus, "--hidden", "8", "--batch-size", "6", "--samples", "0", "--epochs", "10000", "--learning-rate", "1e-6",
            "--model", scratch["model.rnnf"], "--plot", scratch["loss.png"],
            "--workers", workers.ToString(System.Globalization.CultureInfo.InvariantCulture), "--cluster", $"127.0.0.1:{port}", "--cluster-id", clusterId);

    private RnnfProcess Worker(int port, string clusterId, params string[] extra) =>
        RnnfProcess.Start(["worker", "--cluster", $"127.0.0.1:{port}", "--cluster-id", clusterId, "--corpus", corpus, .. extra]);

    [Fact]
    public async Task EverySiloListensOnTheAddressItIsGivenAndOnNoOther()
    {
        var id = $"listen-{Guid.NewGuid():N}";
        var port = ProcessTable.FreePort(IPAddress.Loopback);
        var other = IPAddress.Parse("127.0.0.2");
        var otherPort = ProcessTable.FreePort(other);
        using var coordinator = Coordinator(port, 2, id);
        using var named = Worker(port, id, "--listen", $"{other}:{otherPort}");
        using var unnamed = Worker(port, id);
        // The run has started, so both workers have joined and the coordinator talks to them on their addresses.
        await coordinator.WaitForOutput(l => l.StartsWith("epoch", StringComparison.Ordinal), Patience);
        Assert.Equal([new IPEndPoint(IPAddress.Loopback, port)], ProcessTable.Listening(coordinator.Id));
        Assert.Equal([new IPEndPoint(other, otherPort)], ProcessTable.Listening(named.Id));
        // Without --listen a worker listens on the --cluster address, on a port of its own that it names.
        var joined = unnamed.Error[await unnamed.WaitForError(l => l.StartsWith("rnnf worker: listening on ", StringComparison.Ordinal), Patience)];
        var own = Assert.Single(ProcessTable.Listening(unnamed.Id));
        Assert.Equal(IPAddress.Loopback, own.Address);
        Assert.NotEqual(port, own.Port);
        Assert.StartsWith($"rnnf worker: listening on {own}, joined cluster '{id}'", joined);
    }

    [Fact]
    public async Task AWorkerOfAnotherClusterIdIsRefusedInOneLineAndTheRunGoesOn()
    {
        var (id, otherId) = ($"run-{Guid.NewGuid():N}", $"other-{Guid.NewGuid():N}");
        var port = ProcessTable.FreePort(IPAddress.Loopback);
        using var coordinator = Coordinator(port, 1, id);
        using var worker = Worker(port, id);
        await coordinator.WaitForOutput(l => l.StartsWith("epoch", StringComparison.Ordinal), Patience);
        using var stranger = Worker(port, otherId);
        Assert.Equal(Cli.BadInput, await stranger.WaitForExit(Patience));
        var line = Assert.Single(stranger.Error);
        Assert.StartsWith($"rnnf worker: error: cannot join cluster '{otherId}' at --cluster 127.0.0.1:{port} from 127.0.0.1:", line);
        // Orleans' handshake names both ids: the coordinator's, and the one this worker expected.
        Assert.EndsWith($": the silo there belongs to another cluster (Unexpected cluster id \"{id}\", expected \"{otherId}\"); give this worker the run's --cluster-id", line);
        Assert.Empty(stranger.Output);
        // The run was not disturbed: the coordinator goes on training with its own worker.
        var seen = coordinator.Output.Count;
        await coordinator.WaitForOutput(l => l.StartsWith("epoch", StringComparison.Ordinal), Patience, from: seen);
        Assert.False(coordinator.HasExited);
    }

    [Theory]
    [InlineData("Unexpected cluster id \"a\", expected \"b\"", "Unexpected cluster id \"a\", expected \"b\"")]
    [InlineData("Connection failed ---> System.InvalidOperationException: Unexpected cluster id \"a\", expected \"b\"\n   at Orleans.Runtime.Messaging.X()",
        "Unexpected cluster id \"a\", expected \"b\"")]
    [InlineData("outer ---> Orleans.Runtime.OrleansMessageRejectionException: Exception while sending message: refused\r\n   at Y()", "Exception while sending message: refused")]
    [InlineData("refused: this worker's corpus x has SHA-256 abc", "refused: this worker's corpus x has SHA-256 abc")]
    public void AnErrorIsItsLastCausesMessageWithoutTypeOrStackTrace(string inner, string shown) =>
        Assert.Equal(shown, WorkerCommand.OneLine(new OrleansException("a call failed", new InvalidOperationException(inner))));
}
