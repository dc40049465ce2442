using System.Collections.Immutable;
using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace RnnFunctional.Distributed.Tests;

/// <summary>Silos that leave a run: the run goes on on the others with the bits of the fault-free reference.</summary>
/// <remarks>
/// Nine pieces on three silos: the first step asks for each piece alone, the later ones for the three blocks of
/// <see cref="PieceTree.Blocks"/> ([0, 4), [4, 6), [6, 9)), the k-th placed by <see cref="PiecePlacement"/> on silo k
/// in address order. The tests check that placement before taking a secondary silo away, so the silo that leaves
/// always holds a block, and after it that the step after the fault asks for two blocks ([0, 4), [4, 9)) placed on
/// the two silos left.
/// </remarks>
public sealed class FaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ASiloStoppedMidRunLosesNoStepAndChangesNoBit()
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = await ClusterHarness.Deploy(3);
        var corpus = TestData.CorpusFile(50, 8);
        try
        {
            const int pieces = 9;
            var run = ClusterHarness.Run("stopped", corpus, "lstm", 1, pieces, batchSize: 10);
            string? gone = null;
            var moved = ImmutableArray<int>.Empty;
            var counters = await DistributedModels.Use(run.Model, new ClusterHarness.CompareWithReference(cluster, run, pieces, 5, async (step, hosts) =>
            {
                if (step == 4)
                {
                    Assert.DoesNotContain(gone, hosts);
                    AssertPlaced(hosts, PieceTree.Blocks(pieces, 2), cluster.Silos.Select(s => s.SiloAddress));
                }
                if (step != 2) return;
                AssertPlaced(hosts, PieceTree.Blocks(pieces, 3), cluster.Silos.Select(s => s.SiloAddress));
                var victim = cluster.SecondarySilos[^1];
                gone = victim.SiloAddress.ToString();
                moved = [.. Enumerable.Range(0, pieces).Where(i => hosts[i] == gone)];
                output.WriteLine($"pieces by silo after step 2: {string.Join(", ", hosts)}; stopping {gone} before step 3");
                Assert.NotEmpty(moved);
                await cluster.StopSiloAsync(victim);
            }));
            output.WriteLine($"{ClusterHarness.Describe(counters)}; pieces {string.Join(", ", moved)} moved off {gone}; {clock.Elapsed.TotalSeconds:F1} s");
        }
        finally { File.Delete(corpus); }
    }

    [Fact]
    public async Task ASiloKilledWhileComputingAPieceLosesNoStepAndChangesNoBit()
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = await ClusterHarness.Deploy(3, shortTimeout: true);
        var corpus = TestData.CorpusFile(50, 9);
        Hold? hold = null;
        Task? killing = null;
        try
        {
            const int pieces = 9;
            var run = ClusterHarness.Run("killed", corpus, "lstm", 1, pieces, batchSize: 10);
            var counters = await DistributedModels.Use(run.Model, new ClusterHarness.CompareWithReference(cluster, run, pieces, 5, (step, hosts) =>
            {
                if (step != 2) return Task.CompletedTask;
                AssertPlaced(hosts, PieceTree.Blocks(pieces, 3), cluster.Silos.Select(s => s.SiloAddress));
                var victim = cluster.SecondarySilos[^1];
                Assert.Contains(victim.SiloAddress.ToString(), hosts);
                hold = new Hold(victim.SiloAddress.ToString(), 2);
                HoldPiece.Current = hold;
                killing = Task.Run(async () =>
                {
                    await hold.Arrived.Task;
                    HoldPiece.Current = null;
                    await cluster.KillSiloAsync(victim);
                });
                output.WriteLine($"pieces by silo after step 2: {string.Join(", ", hosts)}; killing {victim.SiloAddress} while it computes a piece of step 3");
                return Task.CompletedTask;
            }));
            Assert.NotNull(killing);
            await killing;
            output.WriteLine($"{ClusterHarness.Describe(counters)}; {clock.Elapsed.TotalSeconds:F1} s");
            Assert.True(counters.Retries > 0, "no piece was sent again after its silo was killed");
        }
        finally
        {
            HoldPiece.Current = null;
            hold?.Release.Cancel();
            File.Delete(corpus);
        }
    }

    /// <summary>
    /// Each piece was computed within its block of <paramref name="blocks"/>, the k-th block on the silo
    /// <see cref="PiecePlacement.SiloOf"/> names for slot k among <paramref name="silos"/>.
    /// </summary>
    internal static void AssertPlaced(ImmutableArray<string?> hosts, ImmutableArray<PieceBlock> blocks, IEnumerable<SiloAddress> silos)
    {
        var live = silos.ToArray();
        var expected = Enumerable.Range(0, hosts.Length).Select(i => PiecePlacement.SiloOf(blocks.IndexOf(blocks.Single(b => b.Start <= i && i < b.End)), live).ToString()).ToArray();
        Assert.True(expected.SequenceEqual(hosts), $"expected the pieces on {string.Join(", ", expected)} but they were on {string.Join(", ", hosts)}");
    }
}
