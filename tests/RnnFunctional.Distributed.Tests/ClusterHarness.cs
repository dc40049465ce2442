using System.Collections.Immutable;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.TestingHost;
using Xunit;

namespace RnnFunctional.Distributed.Tests;

/// <summary>In-process clusters, runs over a corpus file and the comparison of a coordinator with the reference.</summary>
internal static class ClusterHarness
{
    public static string Describe(CoordinatorCounters c) =>
        $"{c.Requests} requests, {c.ParameterSends} with parameters, {c.Retries} retries, {c.DoublesSent} doubles sent, {c.DoublesReceived} received, pieces computed on {string.Join(" ", c.Workers)}";

    public static RunSpec Run(string id, string corpus, string cell, int layers, int pieces, int batchSize = 5)
    {
        var data = DataSpec.Of(corpus, batchSize, 1, 11);
        return new RunSpec(id, new ModelSpec(cell, RunData.Load(data).Vocabulary.Size, 6, layers), data, pieces);
    }

    /// <summary>
    /// A cluster of <paramref name="silos"/> silos whose calls may be held (<see cref="HoldPiece"/>) and which declare a
    /// killed silo dead within seconds; with <paramref name="shortTimeout"/> its client gives up on a call after 5 s
    /// (Orleans' default is 30 s), the time after which a call held on a killed silo fails.
    /// </summary>
    public static async Task<TestCluster> Deploy(int silos, bool shortTimeout = false)
    {
        var builder = new TestClusterBuilder((short)silos);
        builder.AddSiloBuilderConfigurator<WithHold>();
        if (shortTimeout) builder.AddClientBuilderConfigurator<WithShortTimeout>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        await EverySiloKnowsEveryWorker(cluster);
        return cluster;
    }

    /// <summary>
    /// Waits until the cluster manifest of every silo lists exactly the cluster's running silos (all host piece
    /// workers): a silo's manifest takes in a silo once its membership view holds it active and lets it go once it
    /// holds it dead, so the placements and the coordinator's count of silos (<see cref="IPieceSilosGrain"/>) then
    /// see the whole cluster, and <see cref="PiecePlacement"/> puts the pieces where the tests expect them.
    /// </summary>
    public static async Task EverySiloKnowsEveryWorker(TestCluster cluster)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        var silos = cluster.Silos.Select(s => s.SiloAddress).ToHashSet();
        while (!cluster.Silos.OfType<InProcessSiloHandle>().All(s =>
                   silos.SetEquals(s.ServiceProvider.GetRequiredService<IClusterManifestProvider>().Current.Silos.Keys.Where(a => !a.IsClient))))
        {
            Assert.True(DateTime.UtcNow < deadline, "the silos' cluster manifests did not list exactly the running silos within 30 s");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// A coordinator on the cluster against <see cref="PieceTraining.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, int, T, IEnumerable{TokenBatch})"/> with <see cref="ReferencePieces"/> pieces,
    /// Adam and clipping by norm (every step clipped): the step number, tokens, parameters and both optimizer slots bitwise equal after
    /// every step. <see cref="Before"/>, given the number of steps taken and the silos of the last step's pieces, runs
    /// before each step.
    /// </summary>
    public sealed record CompareWithReference(TestCluster Cluster, RunSpec Run, int ReferencePieces, int Steps,
        Func<int, ImmutableArray<string?>, Task>? Before) : IModelUse<Task<CoordinatorCounters>>
    {
        /// <summary>After this many steps the coordinator is replaced by a new one built from its state and step number alone.</summary>
        public int? RestartAfter { get; init; }

        /// <summary>
        /// Adam behind an update delegate of the test's own, as a user's optimizer would be: the coordinator then
        /// applies the sum through the tree update (<see cref="PieceTraining.Apply{T}"/>) rather than its flat path.
        /// </summary>
        public bool OwnOptimizer { get; init; }

        /// <summary>
        /// Every step is kept and compared only after the last one, so that the states of early steps are read after
        /// the coordinator has taken later ones (their parameters must not change meanwhile).
        /// </summary>
        public bool CompareAtTheEnd { get; init; }

        /// <summary>
        /// Only a copy of each step (<c>with</c>, its state copied too) is kept, and the garbage collected after each
        /// step, so that the coordinator's own step and state records are gone when the copies are read.
        /// </summary>
        public bool KeepCopies { get; init; }

        /// <summary>
        /// The grain factory the coordinator calls the workers through (default: the cluster's client, whose calls all go
        /// over the wire); a silo's own makes the calls to its workers local.
        /// </summary>
        public IGrainFactory? Factory { get; init; }

        /// <summary>Each step's times as the coordinator gave them (<see cref="Coordinator{T}.LastStep"/>), filled by the comparison.</summary>
        public List<StepTimes> Times { get; } = [];

        public async Task<CoordinatorCounters> Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize)
            where TParams : IParameterTree<TParams>
        {
            var initial = initialize(17);
            // A bound below the norms of these models' mean gradients, so that every step is clipped (checked below).
            var (optimizer, clipping) = (Optimizers.Adam<TParams>(0.01), Clipping.ByGlobalNorm(0.02));
            if (OwnOptimizer)
            {
                var adam = optimizer.Update;
                optimizer = optimizer with { Name = "own-adam", Update = (p, g, state) => adam(p, g, state) };
            }
            var reference = PieceTraining.Fold(model, optimizer, new TrainingOptions(0, clipping), ReferencePieces, initial, RunData.Load(Run.Data).Windows)
                .Take(Steps).ToArray();
            Assert.Equal(Steps, reference.Length);
            var coordinator = new Coordinator<TParams>(Factory ?? Cluster.GrainFactory, Run, optimizer, clipping, new TrainingState<TParams>(initial, optimizer.Init(initial)));
            var taken = new List<TrainingStep<TParams>>();
            for (var s = 0; s < Steps; s++)
            {
                var (before, hosts) = (coordinator.Step, coordinator.LastWorkers);
                if (Before is not null) await Before(before, hosts);
                if (s == RestartAfter)
                    coordinator = new Coordinator<TParams>(Factory ?? Cluster.GrainFactory, Run, optimizer, clipping, coordinator.State, coordinator.Step);
                taken.Add(KeepCopies ? Copy(await coordinator.StepAsync()) : await coordinator.StepAsync());
                Times.Add(coordinator.LastStep!);
                if (KeepCopies)
                {
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    GC.Collect();
                }
                if (!CompareAtTheEnd) Compare(s, taken[s]);
            }
            if (CompareAtTheEnd)
                for (var s = 0; s < Steps; s++) Compare(s, taken[s]);
            Assert.Equal(Steps, coordinator.Step);
            return coordinator.Counters;

            static TrainingStep<TParams> Copy(TrainingStep<TParams> step) => step with { State = step.State with { } };

            void Compare(int s, TrainingStep<TParams> step)
            {
                Assert.Equal((s + 1, reference[s].Tokens), (step.Step, step.Tokens));
                var differs = TestData.FirstDifference(reference[s].Parameters, step.Parameters);
                Assert.True(differs is null, $"{Run.RunId}, step {s + 1}: parameters differ at {differs}");
                for (var k = 0; k < 2; k++)
                    Assert.Null(TestData.FirstDifference(reference[s].State.Optimizer.Slots[k], step.State.Optimizer.Slots[k]));
                Assert.Equal(BitConverter.DoubleToInt64Bits(reference[s].Loss), BitConverter.DoubleToInt64Bits(step.Loss));
                Assert.True(step.GradientNorm > clipping.Threshold, $"{Run.RunId}, step {s + 1}: the gradient norm {step.GradientNorm} was not clipped");
            }
        }
    }

    private sealed class WithHold : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) =>
            siloBuilder.AddPieceWorkers().AddIncomingGrainCallFilter<HoldPiece>()
                .ConfigureServices(services => services.AddSingleton<IRunSource>(sp => new RefusingSource(sp.GetRequiredService<ILocalSiloDetails>())))
                .Configure<ClusterMembershipOptions>(o =>
            {
                // A killed silo is declared dead after two missed probes of one second by any one silo.
                o.ProbeTimeout = TimeSpan.FromSeconds(1);
                o.NumMissedProbesLimit = 2;
                o.NumVotesForDeathDeclaration = 1;
            });
    }

    private sealed class WithShortTimeout : IClientBuilderConfigurator
    {
        public void Configure(Microsoft.Extensions.Configuration.IConfiguration configuration, IClientBuilder clientBuilder) =>
            clientBuilder.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(5));
    }
}

/// <summary>Which piece request to hold: the one of step <see cref="Step"/> (from 0) arriving at silo <see cref="Silo"/>.</summary>
internal sealed record Hold(string Silo, int Step)
{
    /// <summary>Completed when the held request has arrived.</summary>
    public TaskCompletionSource Arrived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Cancelled at the end of the test, to let a held call of a dead silo end.</summary>
    public CancellationTokenSource Release { get; } = new();
}

/// <summary>
/// A grain call filter of the test silos: a <see cref="IPieceWorkerGrain.Compute"/> call that matches
/// <see cref="Current"/> waits there (its worker "hangs") until released, so a silo can be killed while it computes.
/// </summary>
internal sealed class HoldPiece(ILocalSiloDetails silo) : IIncomingGrainCallFilter
{
    /// <summary>The request to hold, if any (the silos of a test cluster share this process).</summary>
    public static volatile Hold? Current;

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (Current is { } hold && context.InterfaceMethod?.Name == nameof(IPieceWorkerGrain.Compute)
            && context.Request.GetArgument(0) is PieceRequest request && request.Step == hold.Step && silo.SiloAddress.ToString() == hold.Silo)
        {
            hold.Arrived.TrySetResult();
            await Task.Delay(Timeout.Infinite, hold.Release.Token);
        }
        await context.Invoke();
    }
}

/// <summary>
/// The run source of the test silos: <see cref="FileRunSource"/>, except on the silos listed in <see cref="Refusing"/>,
/// which refuse every run as a worker with another corpus does.
/// </summary>
internal sealed class RefusingSource(ILocalSiloDetails silo) : IRunSource
{
    /// <summary>The silos that refuse (their addresses' text; the silos of a test cluster share this process).</summary>
    public static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> Refusing = new();

    public (int VocabularySize, IEnumerable<TokenBatch> Windows) Load(DataSpec data) =>
        Refusing.ContainsKey(silo.SiloAddress.ToString())
            ? throw new InvalidOperationException($"refused: this silo's corpus is not {data.Path}")
            : new FileRunSource().Load(data);
}
