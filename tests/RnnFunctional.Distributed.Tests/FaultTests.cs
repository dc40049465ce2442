using System.Collections.Immutable;
using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace RnnFunctional.Distributed.Tests;

/// <summary>Silos that leave a run: the run goes on on the others with the bits of the fault-free reference.</summary>
/// <remarks>
/// The nine piece grains are placed at random on three silos; the tests stop the secondary silo that computed the most
/// pieces, and need one to have computed any (all nine on the primary silo has probability 3⁻⁹).
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
                if (step == 4) Assert.DoesNotContain(gone, hosts);
                if (step != 2) return;
                var victim = cluster.SecondarySilos.OrderByDescending(s => hosts.Count(h => h == s.SiloAddress.ToString())).First();
                gone = victim.SiloAddress.ToString();
                moved = [.. Enumerable.Range(0, pieces).Where(i => hosts[i] == gone)];
                output.WriteLine($"pieces by silo after step 2: {string.Join(", ", hosts)}; stopping {gone} before step 3");
                Assert.False(moved.IsEmpty, "no secondary silo computed a piece of step 2");
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
                var victim = cluster.SecondarySilos.OrderByDescending(s => hosts.Count(h => h == s.SiloAddress.ToString())).First();
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
}
