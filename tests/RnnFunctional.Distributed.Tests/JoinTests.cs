using System.Collections.Immutable;
using System.Diagnostics;
using Orleans.TestingHost;
using Xunit;
using Xunit.Abstractions;

namespace RnnFunctional.Distributed.Tests;

/// <summary>Silos that join a run: from the next step on they compute a block, with the bits of the reference.</summary>
public sealed class JoinTests(ITestOutputHelper output)
{
    private const int Pieces = 9;

    /// <remarks>
    /// Three silos A &lt; B &lt; C (in address order), nine pieces: step 2 is cut into [0, 4) [4, 6) [6, 9) on A, B, C.
    /// B is stopped before step 3, which is cut into [0, 4) [4, 9) on A and C; D joins before step 4, which is cut into
    /// [0, 4) [4, 6) [6, 9) on A, C and D. In step 4 the blocks [4, 6) and [6, 9) of step 2 come back; had they kept
    /// their keys of step 2, [6, 9) would still be computed by C, where it was activated, and D would get no block.
    /// </remarks>
    [Fact]
    public async Task ASiloJoinedMidRunComputesABlockFromTheNextStepOnAndChangesNoBit()
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = await ClusterHarness.Deploy(3);
        var corpus = TestData.CorpusFile(50, 10);
        try
        {
            const int steps = 5;
            var run = ClusterHarness.Run("joined", corpus, "lstm", 1, Pieces, batchSize: 10);
            string? gone = null, joined = null;
            var counters = await DistributedModels.Use(run.Model, new ClusterHarness.CompareWithReference(cluster, run, Pieces, steps, async (step, hosts) =>
            {
                var silos = cluster.Silos.Select(s => s.SiloAddress).ToArray();
                output.WriteLine($"after step {step}: pieces on {string.Join(", ", hosts)}");
                switch (step)
                {
                    case 2:
                        FaultTests.AssertPlaced(hosts, PieceTree.Blocks(Pieces, 3), silos);
                        var middle = PiecePlacement.Ordered(silos)[1];
                        Assert.NotEqual(cluster.Primary!.SiloAddress, middle);
                        gone = middle.ToString();
                        await cluster.StopSiloAsync(cluster.Silos.Single(s => s.SiloAddress == middle));
                        await ClusterHarness.EverySiloKnowsEveryWorker(cluster);
                        break;
                    case 3:
                        Assert.DoesNotContain(gone, hosts);
                        FaultTests.AssertPlaced(hosts, PieceTree.Blocks(Pieces, 2), silos);
                        var added = await cluster.StartAdditionalSiloAsync();
                        joined = added.SiloAddress.ToString();
                        Assert.Equal(joined, PiecePlacement.Ordered(cluster.Silos.Select(s => s.SiloAddress)).Last().ToString());
                        await ClusterHarness.EverySiloKnowsEveryWorker(cluster);
                        break;
                    case 4:
                        Assert.Contains(joined, hosts);
                        FaultTests.AssertPlaced(hosts, PieceTree.Blocks(Pieces, 3), silos);
                        break;
                }
            }));
            output.WriteLine($"{ClusterHarness.Describe(counters)}; {gone} stopped before step 3, {joined} joined before step 4; {clock.Elapsed.TotalSeconds:F1} s");
            Assert.Contains(joined!, counters.Workers);
            // Every block is asked for with the parameters (each block of a new set of silos is a new worker, and each
            // silo computes one block), so none is asked for again without a failed call: step 1 asks for the nine
            // pieces alone, then 3, 2, 3 and 3 blocks. A call that failed (a stopped silo that was a gateway of the
            // client) is counted as a request and a retry.
            const int blocks = Pieces + 3 + 2 + 3 + 3;
            Assert.Equal(blocks, counters.ParameterSends);
            Assert.Equal(blocks + counters.Retries, counters.Requests);
        }
        finally { File.Delete(corpus); }
    }

    /// <remarks>
    /// Two silos A &lt; B, nine pieces: step 2 is cut into [0, 4) [4, 9) on A and B. A silo C whose worker refuses every
    /// run (as a worker with another corpus does) joins before step 3, which is cut into three blocks, [6, 9) on C: C
    /// refuses it, and it is computed on A or B. Step 4 is cut into [0, 4) [4, 9) on A and B again.
    /// </remarks>
    [Fact]
    public async Task ASiloThatJoinsAndRefusesTheRunIsLeftOutAndChangesNoBit()
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = await ClusterHarness.Deploy(2);
        var corpus = TestData.CorpusFile(50, 11);
        string? refusing = null;
        try
        {
            var run = ClusterHarness.Run("refusing", corpus, "gru", 1, Pieces, batchSize: 10);
            var willing = cluster.Silos.Select(s => s.SiloAddress).ToArray();
            var counters = await DistributedModels.Use(run.Model, new ClusterHarness.CompareWithReference(cluster, run, Pieces, 5, async (step, hosts) =>
            {
                output.WriteLine($"after step {step}: pieces on {string.Join(", ", hosts)}");
                if (step == 2)
                {
                    FaultTests.AssertPlaced(hosts, PieceTree.Blocks(Pieces, 2), willing);
                    var added = await cluster.StartAdditionalSiloAsync();
                    refusing = added.SiloAddress.ToString();
                    RefusingSource.Refusing[refusing] = true;
                    await ClusterHarness.EverySiloKnowsEveryWorker(cluster);
                }
                else if (step == 3)
                {
                    Assert.DoesNotContain(refusing, hosts);
                    Assert.Equal(2, hosts.Distinct().Count());
                }
                else if (step == 4) FaultTests.AssertPlaced(hosts, PieceTree.Blocks(Pieces, 2), willing);
            }));
            output.WriteLine($"{ClusterHarness.Describe(counters)}; {refusing} refused; {clock.Elapsed.TotalSeconds:F1} s");
            var (silo, reason) = Assert.Single(counters.Refusals);
            Assert.Equal(refusing, silo);
            Assert.StartsWith("refused: this silo's corpus is not ", reason);
            Assert.DoesNotContain(refusing!, counters.Workers);
            Assert.True(counters.Retries > 0, "no block was asked for again after the refusal");
        }
        finally
        {
            if (refusing is not null) RefusingSource.Refusing.TryRemove(refusing, out _);
            File.Delete(corpus);
        }
    }
}
