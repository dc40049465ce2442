using System.Collections.Immutable;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using Xunit;
using Xunit.Abstractions;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace RnnFunctional.Distributed.Tests;

/// <summary>
/// Runs on in-process Orleans clusters (<see cref="TestCluster"/>) against the single-process reference
/// <see cref="PieceTraining.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, int, T, IEnumerable{TokenBatch})"/> with the same piece count.
/// </summary>
public sealed class ClusterTests(ITestOutputHelper output)
{
    private const int Pieces = 4;
    private const int Steps = 4;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task EveryStepIsBitwiseTheReference(int silos)
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = await ClusterHarness.Deploy(silos);
        var corpus = TestData.CorpusFile(24, silos);
        try
        {
            foreach (var (cell, layers) in TestData.Models)
            {
                var run = ClusterHarness.Run($"{cell}x{layers}-{silos}", corpus, cell, layers, Pieces);
                var counters = await DistributedModels.Use(run.Model, new ClusterHarness.CompareWithReference(cluster, run, Pieces, Steps, null));
                output.WriteLine($"{cell}×{layers} on {silos} silo(s): {ClusterHarness.Describe(counters)}");
                Assert.Equal(0, counters.Retries);
                // The first step asks for every piece alone, each request with the parameters; each later one asks
                // for one block per silo, one payload back each, and sends the parameters once per silo.
                var blocks = Pieces + (Steps - 1) * silos;
                Assert.Equal(silos, counters.Workers.Count);
                Assert.Equal(blocks, counters.ParameterSends);
                Assert.Equal(blocks, counters.Requests);
                Assert.Equal(blocks * (counters.DoublesSent / counters.ParameterSends), counters.DoublesReceived);
            }
        }
        finally { File.Delete(corpus); }
        output.WriteLine($"{silos} silo(s): {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task AnotherPieceCountIsNotTheReference()
    {
        await using var cluster = await ClusterHarness.Deploy(2);
        var corpus = TestData.CorpusFile(24, 5);
        try
        {
            var run = ClusterHarness.Run("lstm-other-count", corpus, "lstm", 1, Pieces);
            var error = await Assert.ThrowsAsync<Xunit.Sdk.TrueException>(() =>
                DistributedModels.Use(run.Model, new ClusterHarness.CompareWithReference(cluster, run, Pieces - 1, Steps, null)));
            output.WriteLine(error.Message);
        }
        finally { File.Delete(corpus); }
    }

    [Fact]
    public Task AnOptimizerOfTheUsersOwnIsAppliedThroughItsTreeUpdateToTheSameBits() =>
        CompareOnTwoSilos("own-optimizer", "lstm", compare => compare with { OwnOptimizer = true });

    [Fact]
    public Task ARunRestartedFromItsStateContinuesToTheSameBits() =>
        CompareOnTwoSilos("restarted", "gru", compare => compare with { RestartAfter = 2 });

    [Fact]
    public async Task TheStateOfAnEarlyStepReadAfterLaterStepsHoldsItsOwnParameters()
    {
        var times = await CompareOnTwoSilos("read-late", "rnn", compare => compare with { CompareAtTheEnd = true }, steps: 9);
        // Copies of the states, the coordinator's own records collected, read after later steps: the same bits.
        await CompareOnTwoSilos("copies-read-late", "lstm", compare => compare with { CompareAtTheEnd = true, KeepCopies = true }, steps: 9);
        // The coordinator's account of each step's time: each part within the step, the slowest block within the blocks.
        Assert.Equal(9, times.Count);
        foreach (var step in times)
        {
            Assert.InRange(step.SlowestBlock, TimeSpan.FromTicks(1), step.Blocks);
            Assert.InRange(step.Blocks + step.Summing + step.Applying, step.Blocks, step.Step);
        }
    }

    [Fact]
    public async Task ACoordinatorOnAWorkersSiloHandsItsOwnBlocksArraysBackToThatSilo()
    {
        // The coordinator on one of two silos: the block computed there comes by reference, never written to the wire,
        // and its array goes back to the silo, which then needs no new array after the first steps.
        await using var cluster = await ClusterHarness.Deploy(2);
        var corpus = TestData.CorpusFile(45, 6);
        try
        {
            var silo = Assert.IsType<InProcessSiloHandle>(cluster.Primary);
            var buffers = silo.ServiceProvider.GetRequiredService<SiloParameters>().Buffers;
            var run = ClusterHarness.Run("on-a-silo", corpus, "lstm", 1, 2);
            long? early = null;
            var compare = new ClusterHarness.CompareWithReference(cluster, run, 2, 8, (taken, _) =>
            {
                if (taken == 2) early = buffers.Allocated;
                return Task.CompletedTask;
            }) { Factory = silo.ServiceProvider.GetRequiredService<IGrainFactory>() };
            var counters = await DistributedModels.Use(run.Model, compare);
            output.WriteLine($"{ClusterHarness.Describe(counters)}; the coordinator's silo allocated {buffers.Allocated} arrays, {early} after two steps");
            Assert.Equal(2, counters.Workers.Count);
            Assert.InRange(early ?? 0, 1, 2);
            Assert.Equal(early, buffers.Allocated);
        }
        finally { File.Delete(corpus); }
    }

    [Fact]
    public void TheMedianStepTakesEachPartsMedianUnswayedByASlowStep()
    {
        static StepTimes Step(int ms) => new(TimeSpan.FromMilliseconds(10 * ms), TimeSpan.FromMilliseconds(8 * ms), TimeSpan.FromMilliseconds(5 * ms),
            TimeSpan.FromMilliseconds(ms), TimeSpan.FromMilliseconds(ms));
        Assert.Equal(Step(2), StepTimes.Median([Step(3), Step(1), Step(2)]));
        Assert.Equal(Step(2), StepTimes.Median([Step(3), Step(1), Step(2), Step(1_000), Step(1), Step(2)]));
        Assert.Equal("20 ms a step: blocks 16 (the slowest computed in 10, so 6 on the way), summing 2, applying 2", Step(2).ToString());
        Assert.Equal("steps", Assert.Throws<ArgumentException>(() => StepTimes.Median([])).ParamName);
    }

    /// <summary>
    /// A one-layer run of <paramref name="cell"/> in three pieces on two silos against the reference for
    /// <paramref name="steps"/> steps (batches of 5 items), as <paramref name="set"/> sets the comparison up.
    /// </summary>
    private async Task<IReadOnlyList<StepTimes>> CompareOnTwoSilos(string runId, string cell, Func<ClusterHarness.CompareWithReference, ClusterHarness.CompareWithReference> set,
        int steps = Steps)
    {
        await using var cluster = await ClusterHarness.Deploy(2);
        var corpus = TestData.CorpusFile(Math.Max(24, 5 * steps), 4);
        try
        {
            var run = ClusterHarness.Run(runId, corpus, cell, 1, 3);
            var compare = set(new ClusterHarness.CompareWithReference(cluster, run, 3, steps, null));
            output.WriteLine(ClusterHarness.Describe(await DistributedModels.Use(run.Model, compare)));
            output.WriteLine($"median step: {StepTimes.Median(compare.Times)}");
            return compare.Times;
        }
        finally { File.Delete(corpus); }
    }

    [Fact]
    public async Task AWorkerRefusesAnotherConfigurationOfItsRun()
    {
        await using var cluster = await ClusterHarness.Deploy(1);
        var corpus = TestData.CorpusFile(24, 6);
        try
        {
            var run = ClusterHarness.Run("refused", corpus, "gru", 1, 2);
            var worker = cluster.GrainFactory.GetGrain<IPieceWorkerGrain>(0, run.RunId);
            Assert.Equal(PieceStatus.NeedParameters, (await worker.Compute(new PieceRequest(run, 0, 0, null))).Status);
            var other = run with { Data = run.Data with { Seed = run.Data.Seed + 1 } };
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => worker.Compute(new PieceRequest(other, 0, 0, null)));
            Assert.Contains("another configuration", error.Message);
            var wrongVocabulary = run with { RunId = "wrong-vocabulary", Model = run.Model with { Vocabulary = run.Model.Vocabulary + 1 } };
            // A run the silo cannot read is refused naming the silo, so that the coordinator can go elsewhere.
            var load = await Assert.ThrowsAsync<PieceRefusedException>(() =>
                cluster.GrainFactory.GetGrain<IPieceWorkerGrain>(0, wrongVocabulary.RunId).Compute(new PieceRequest(wrongVocabulary, 0, 0, null)));
            Assert.Contains("vocabulary", load.Message);
            Assert.Equal(cluster.Primary!.SiloAddress.ToString(), load.Silo);
            var otherCorpus = run with { RunId = "other-corpus", Data = run.Data with { Digest = DataSpec.DigestOf([1, 2, 3]) } };
            var digest = await Assert.ThrowsAsync<PieceRefusedException>(() =>
                cluster.GrainFactory.GetGrain<IPieceWorkerGrain>(0, otherCorpus.RunId).Compute(new PieceRequest(otherCorpus, 0, 0, null)));
            Assert.Contains("SHA-256", digest.Message);
        }
        finally { File.Delete(corpus); }
    }

    [Fact]
    public async Task AWorkerRefusesParametersOfAnotherLengthAndKeepsNone()
    {
        await using var cluster = await ClusterHarness.Deploy(1);
        var corpus = TestData.CorpusFile(24, 7);
        try
        {
            var run = ClusterHarness.Run("short-parameters", corpus, "lstm", 1, 2);
            var parameters = WireTests.Initial(run.Model);
            var n = parameters.Count;
            var worker = cluster.GrainFactory.GetGrain<IPieceWorkerGrain>(0, run.RunId);
            var shorter = new FlatTree(parameters.Bytes[..^8]);
            var error = await Assert.ThrowsAsync<InvalidDataException>(() => worker.Compute(new PieceRequest(run, 0, 0, shorter)));
            output.WriteLine(error.Message);
            Assert.StartsWith($"expected {n} values ({8 * n} bytes) of parameters version 0 for model {run.Model} but got {8 * n - 8} bytes ({n - 1} values)", error.Message);
            Assert.Equal(PieceStatus.NeedParameters, (await worker.Compute(new PieceRequest(run, 0, 0, null))).Status);
            var odd = await Assert.ThrowsAsync<InvalidDataException>(() => worker.Compute(new PieceRequest(run, 0, 0, new FlatTree([.. parameters.Bytes, 0]))));
            Assert.Contains($"but got {8 * n + 1} bytes (not a whole number of 8-byte values)", odd.Message);
            Assert.Equal(PieceStatus.Computed, (await worker.Compute(new PieceRequest(run, 0, 0, parameters))).Status);
        }
        finally { File.Delete(corpus); }
    }
}
