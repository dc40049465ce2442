using System.Collections.Immutable;
using System.Diagnostics;
using Orleans.TestingHost;
using Xunit;
using Xunit.Abstractions;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace RnnFunctional.Distributed.Tests;

/// <summary>
/// Runs on in-process Orleans clusters (<see cref="TestCluster"/>) against the single-process reference
/// <see cref="PieceTraining.Fold"/> with the same piece count.
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
        await using var cluster = await Deploy(silos);
        var corpus = TestData.CorpusFile(24, silos);
        try
        {
            foreach (var (cell, layers) in TestData.Models)
            {
                var run = Run($"{cell}x{layers}-{silos}", corpus, cell, layers, Pieces);
                var counters = await DistributedModels.Use(run.Model, new CompareWithReference(cluster, run, Pieces, Steps, null));
                output.WriteLine($"{cell}×{layers} on {silos} silo(s): {Describe(counters)}");
                Assert.Equal(0, counters.Retries);
                Assert.Equal(Pieces * Steps, counters.ParameterSends);
                Assert.Equal(Pieces * Steps, counters.Requests);
            }
        }
        finally { File.Delete(corpus); }
        output.WriteLine($"{silos} silo(s): {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task AnotherPieceCountIsNotTheReference()
    {
        await using var cluster = await Deploy(2);
        var corpus = TestData.CorpusFile(24, 5);
        try
        {
            var run = Run("lstm-other-count", corpus, "lstm", 1, Pieces);
            var error = await Assert.ThrowsAsync<Xunit.Sdk.TrueException>(() =>
                DistributedModels.Use(run.Model, new CompareWithReference(cluster, run, Pieces - 1, Steps, null)));
            output.WriteLine(error.Message);
        }
        finally { File.Delete(corpus); }
    }

    [Fact]
    public async Task AWorkerRefusesAnotherConfigurationOfItsRun()
    {
        await using var cluster = await Deploy(1);
        var corpus = TestData.CorpusFile(24, 6);
        try
        {
            var run = Run("refused", corpus, "gru", 1, 2);
            var worker = cluster.GrainFactory.GetGrain<IPieceWorkerGrain>(0, run.RunId);
            Assert.Equal(PieceStatus.NeedParameters, (await worker.Compute(new PieceRequest(run, 0, 0, null))).Status);
            var other = run with { Data = run.Data with { Seed = run.Data.Seed + 1 } };
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => worker.Compute(new PieceRequest(other, 0, 0, null)));
            Assert.Contains("another configuration", error.Message);
            var wrongVocabulary = run with { RunId = "wrong-vocabulary", Model = run.Model with { Vocabulary = run.Model.Vocabulary + 1 } };
            var load = await Assert.ThrowsAsync<InvalidOperationException>(() =>
                cluster.GrainFactory.GetGrain<IPieceWorkerGrain>(0, wrongVocabulary.RunId).Compute(new PieceRequest(wrongVocabulary, 0, 0, null)));
            Assert.Contains("vocabulary", load.Message);
        }
        finally { File.Delete(corpus); }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ASiloStoppedMidRunLosesNoStepAndChangesNoBit(bool killed)
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = await Deploy(3);
        var corpus = TestData.CorpusFile(30, 8);
        try
        {
            const int pieces = 6;
            var run = Run(killed ? "killed" : "stopped", corpus, "lstm", 1, pieces);
            string? gone = null;
            var moved = ImmutableArray<int>.Empty;
            var counters = await DistributedModels.Use(run.Model, new CompareWithReference(cluster, run, pieces, 5, async (step, hosts) =>
            {
                if (step == 4) Assert.DoesNotContain(gone, hosts);
                if (step != 2) return;
                var victim = cluster.SecondarySilos.OrderByDescending(s => hosts.Count(h => h == s.SiloAddress.ToString())).First();
                gone = victim.SiloAddress.ToString();
                moved = [.. Enumerable.Range(0, pieces).Where(i => hosts[i] == gone)];
                output.WriteLine($"pieces by silo after step 2: {string.Join(", ", hosts)}; {(killed ? "killing" : "stopping")} {gone} before step 3");
                Assert.False(moved.IsEmpty, "no secondary silo computed a piece of step 2");
                if (killed) await cluster.KillSiloAsync(victim);
                else await cluster.StopSiloAsync(victim);
            }));
            output.WriteLine($"{Describe(counters)}; pieces {string.Join(", ", moved)} moved off {gone}; {clock.Elapsed.TotalSeconds:F1} s");
        }
        finally { File.Delete(corpus); }
    }

    private static string Describe(CoordinatorCounters c) =>
        $"{c.Requests} requests, {c.ParameterSends} with parameters, {c.Retries} retries, {c.DoublesSent} doubles sent, {c.DoublesReceived} received, pieces computed on {string.Join(" ", c.Workers)}";

    private static RunSpec Run(string id, string corpus, string cell, int layers, int pieces)
    {
        var vocabulary = RunData.Load(new DataSpec(corpus, 5, 1, 11)).Vocabulary;
        return new RunSpec(id, new ModelSpec(cell, vocabulary.Size, 6, layers), new DataSpec(corpus, 5, 1, 11), pieces);
    }

    private static async Task<TestCluster> Deploy(int silos)
    {
        var builder = new TestClusterBuilder((short)silos);
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>
    /// A coordinator on the cluster against <see cref="PieceTraining.Fold"/> with <see cref="ReferencePieces"/> pieces,
    /// Adam and clipping by norm: the step number, tokens, parameters and both optimizer slots bitwise equal after
    /// every step. <see cref="Before"/>, given the number of steps taken and the silos of the last step's pieces, runs
    /// before each step.
    /// </summary>
    private sealed record CompareWithReference(TestCluster Cluster, RunSpec Run, int ReferencePieces, int Steps,
        Func<int, ImmutableArray<string?>, Task>? Before) : IModelUse<Task<CoordinatorCounters>>
    {
        public async Task<CoordinatorCounters> Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize)
            where TParams : IParameterTree<TParams>
        {
            var initial = initialize(17);
            var (optimizer, clipping) = (Optimizers.Adam<TParams>(0.01), Clipping.ByGlobalNorm(1.0));
            var reference = PieceTraining.Fold(model, optimizer, new TrainingOptions(0, clipping), ReferencePieces, initial, RunData.Load(Run.Data).Windows)
                .Take(Steps).ToArray();
            Assert.Equal(Steps, reference.Length);
            var coordinator = new Coordinator<TParams>(Cluster.GrainFactory, Run, optimizer, clipping, new TrainingState<TParams>(initial, optimizer.Init(initial)));
            for (var s = 0; s < Steps; s++)
            {
                var (before, hosts) = (coordinator.Step, coordinator.LastWorkers);
                if (Before is not null) await Before(before, hosts);
                var step = await coordinator.StepAsync();
                Assert.Equal((s + 1, reference[s].Tokens), (step.Step, step.Tokens));
                var differs = TestData.FirstDifference(reference[s].Parameters, step.Parameters);
                Assert.True(differs is null, $"{Run.RunId}, step {s + 1}: parameters differ at {differs}");
                for (var k = 0; k < 2; k++)
                    Assert.Null(TestData.FirstDifference(reference[s].State.Optimizer.Slots[k], step.State.Optimizer.Slots[k]));
                Assert.Equal(BitConverter.DoubleToInt64Bits(reference[s].Loss), BitConverter.DoubleToInt64Bits(step.Loss));
            }
            Assert.Equal(Steps, coordinator.Step);
            return coordinator.Counters;
        }
    }
}
