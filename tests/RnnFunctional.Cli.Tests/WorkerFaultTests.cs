using System.Diagnostics;
using System.Net;

namespace RnnFunctional.Cli.Tests;

/// <summary>
/// A worker process of <c>rnnf train --workers 3</c> (the trainer and two worker processes) killed (SIGKILL, no
/// goodbye) in the middle of the run: the run finishes on the workers left and writes the model file of one process
/// with the same pieces, byte for byte.
/// </summary>
/// <remarks>
/// The run is held at a known point rather than raced: the trainer runs in this process and its standard output is a
/// <see cref="PausingWriter"/> that stops it at its first epoch line (four of eighteen steps applied, none under way)
/// until the worker has been killed and has exited. Each of the three silos holds a block of every step's four pieces
/// (placed by <c>PiecePlacement</c>), so the worker killed always holds pieces of every later step.
/// </remarks>
[Collection(ClusterProcesses.Name)]
public sealed class WorkerFaultTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private readonly Scratch scratch = new();
    private readonly string corpus;

    public WorkerFaultTests() => corpus = scratch.Write("names.txt", string.Join("\n", ClusterProcesses.Names) + "\n");

    public void Dispose() => scratch.Dispose();

    /// <summary>Six epochs of three batches (18 steps), every batch cut into four pieces.</summary>
    private string[] Train(string model, params string[] extra) =>
        ["train", "--corpus", corpus, "--hidden", "8", "--batch-size", "6", "--samples", "0", "--epochs", "6", "--pieces", "4",
         "--model", scratch[model], "--plot", scratch[model + ".png"], .. extra];

    [Fact]
    public async Task AWorkerProcessKilledMidRunLosesNoStepAndChangesNoBit()
    {
        var id = $"fault-{Guid.NewGuid():N}";
        using var output = new PausingWriter(l => l.StartsWith("epoch", StringComparison.Ordinal));
        var run = Task.Run(() => RunResult.Of(Train("workers.rnnf", "--workers", "3", "--cluster-id", id), output));
        try
        {
            await output.Paused.WaitAsync(Patience);
            Assert.StartsWith("epoch   1/6  step      3", output.ToString().Split('\n').Last(l => l.StartsWith("epoch", StringComparison.Ordinal)));
            var workers = ClusterProcesses.WorkersOf(id);
            Assert.Equal(2, workers.Count);
            // Started by rnnf train, the workers listen on loopback only.
            foreach (var worker in workers) Assert.Equal(IPAddress.Loopback, Assert.Single(ProcessTable.Listening(worker)).Address);
            using (var victim = Process.GetProcessById(workers[0]))
            {
                victim.Kill();
                Assert.True(victim.WaitForExit(30_000), $"worker {workers[0]} did not end within 30 s of SIGKILL");
            }
            Assert.False(ProcessTable.Alive(workers[0]));
            Assert.True(ProcessTable.Alive(workers[1]), "the other worker ended with the one killed");
            output.Resume();
            var distributed = await run.WaitAsync(Patience);
            Assert.True(distributed.ExitCode == 0, distributed.Error);
            var single = RunResult.Of(Train("single.rnnf"));
            Assert.True(single.ExitCode == 0, single.Error);
            Assert.Equal(File.ReadAllBytes(scratch["single.rnnf"]), File.ReadAllBytes(scratch["workers.rnnf"]));
            // Every step once: the held-out losses after each epoch are those of one process, and so is the count.
            Assert.Equal(HeldOutByEpoch(single.Out), HeldOutByEpoch(distributed.Out));
            Assert.Contains("done: epoch 6/6  step 18  ", distributed.Out);
            // The worker killed is named with its exit code and its log, whose last line is that code.
            var note = System.Text.RegularExpressions.Regex.Match(distributed.Error, @"worker ([12]) exited with code 137 during the run; its output is in (\S+)");
            Assert.True(note.Success, distributed.Error);
            Assert.Equal(scratch["workers.rnnf"] + $".worker-{note.Groups[1].Value}.log", note.Groups[2].Value);
            Assert.EndsWith(" exit code 137", File.ReadAllLines(note.Groups[2].Value)[^1]);
        }
        finally
        {
            output.Resume();
            foreach (var worker in ClusterProcesses.WorkersOf(id))
            {
                try
                {
                    using var left = Process.GetProcessById(worker);
                    left.Kill();
                }
                catch (ArgumentException)
                {
                    // It has ended already.
                }
            }
        }
    }

    /// <summary>"epoch N/E step S train loss T held-out L" of each epoch line: its first nine words, without the speed and time.</summary>
    private static string[] HeldOutByEpoch(string output) =>
        [.. output.Split('\n').Where(l => l.StartsWith("epoch", StringComparison.Ordinal)).Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(9)))];
}
