using System.Collections.Concurrent;
using System.Collections.Immutable;
using Orleans.Placement;

namespace RnnFunctional.Distributed;

/// <summary>
/// The worker of one block of pieces of a run (a node of <see cref="PieceTree"/>): the grain keyed
/// (<see cref="PieceTree.Key"/>(block, slot), run id); the key of piece i alone in slot 0 is i. It holds its shard of
/// the corpus, reads the parameters from its silo's <see cref="SiloParameters"/>, and computes its block of any step:
/// one partial sum of its pieces. Orleans places it by <see cref="PiecePlacement"/> (by the slot) and, when that silo
/// goes, activates it again on another one, which reads the shard from the corpus file again.
/// </summary>
public interface IPieceWorkerGrain : IGrainWithIntegerCompoundKey
{
    /// <summary>The loss and gradients of this grain's block of a step (its pieces summed by <see cref="PieceTree"/>), or why not.</summary>
    /// <param name="request">The run, the step and the parameter version (with the parameters when they are sent).</param>
    Task<PieceResult> Compute(PieceRequest request);
}

/// <summary>
/// <see cref="IPieceWorkerGrain"/>: each piece's loss and gradients by the model's own
/// <see cref="SequenceModel{TParams,TState}.LossAndGradients"/> from the model's initial state, summed over the block
/// by the nodes of <see cref="PieceTree"/> below it (<see cref="PartialSum.Add"/>, the left half first): a pure
/// function of (parameters, step, block), so a block computed again elsewhere gives the same bits.
/// </summary>
/// <param name="parameters">The silo's parameters, shared by its piece workers (<see cref="DistributedHosting.AddPieceWorkers"/>).</param>
/// <param name="source">Where the silo reads a run's batches.</param>
[PiecePlacement, GrainType(GrainTypeName)]
public sealed class PieceWorkerGrain(SiloParameters parameters, IRunSource source) : Grain, IPieceWorkerGrain
{
    /// <summary>The grain type of piece workers, as silos' grain manifests list it.</summary>
    public const string GrainTypeName = "pieceworker";

    /// <summary>How long a request without parameters waits for another piece's request to bring them to the silo.</summary>
    public static readonly TimeSpan ParameterWait = TimeSpan.FromSeconds(5);

    /// <summary>A parameter tree of each model spec, the structure that received values are read into (one per process).</summary>
    private static readonly ConcurrentDictionary<ModelSpec, object> Templates = new();

    private Shard? shard;
    private RunSpec? run;

    /// <inheritdoc />
    public async Task<PieceResult> Compute(PieceRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (block, _) = PieceTree.OfKey(this.GetPrimaryKeyLong(out var runId));
        if (request.Run.RunId != runId)
            throw new InvalidOperationException($"the worker of {block} of run {runId} was asked for run {request.Run.RunId}");
        if (run is null) (run, shard) = (request.Run, Load(request.Run, block));
        else if (run != request.Run)
            throw new InvalidOperationException($"the worker of {block} of run {runId} holds another configuration of that run: {run} but was asked for {request.Run}");
        var what = $"parameters version {request.Version} for model {run.Model}";
        if (request.Parameters is { } sent) parameters.Set(runId, request.Version, sent.Expect(ValuesOf(run.Model), what));
        var batch = shard!.At(request.Step);
        if (batch.All(piece => piece is null)) return new PieceResult(PieceStatus.Empty, 0, 0, null, RuntimeIdentity);
        var model = run.Model;
        // The payload read into the model's tree once per version for all the silo's pieces.
        if (await parameters.Lease(runId, request.Version, ParameterWait, (held, spare) => DistributedModels.Use(model, new TreeOf(model, held, spare, what))) is not { } lease)
            return new PieceResult(PieceStatus.NeedParameters, 0, 0, null, RuntimeIdentity);
        double loss;
        int tokens;
        FlatTree gradients;
        try
        {
            (loss, tokens, gradients) = await parameters.OneAtATime(() => DistributedModels.Use(model, new LossOfBlock(lease.Read!, block, batch, parameters.Buffers)));
        }
        finally
        {
            parameters.Release(runId, lease);
        }
        return new PieceResult(PieceStatus.Computed, loss, tokens, gradients, RuntimeIdentity) { Took = clock.Elapsed };
    }

    /// <summary>
    /// The shard of <paramref name="block"/> read from this silo's <see cref="IRunSource"/>; a source that cannot read
    /// the run (another corpus, another vocabulary, no such file) is a <see cref="PieceRefusedException"/> naming this
    /// silo, so that the coordinator can compute the block elsewhere.
    /// </summary>
    private Shard Load(RunSpec spec, PieceBlock block)
    {
        try
        {
            return Shard.Load(spec, block, source);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            throw new PieceRefusedException(RuntimeIdentity, e.Message);
        }
    }

    /// <summary>The number of parameter values of a model.</summary>
    private static long ValuesOf(ModelSpec spec) => DistributedModels.Use(spec, new CountOfValues(spec));

    /// <summary>The number of values of the model's parameter tree (of its template).</summary>
    private sealed class CountOfValues(ModelSpec spec) : IModelUse<long>
    {
        public long Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize) where TParams : IParameterTree<TParams> =>
            Tree.Count(Template(spec, initialize));
    }

    /// <summary>The parameter tree of <paramref name="spec"/> that received values are read into, built once per process.</summary>
    private static TParams Template<TParams>(ModelSpec spec, Func<int, TParams> initialize) => (TParams)Templates.GetOrAdd(spec, _ => initialize(0)!);

    /// <summary>
    /// A parameter payload (<paramref name="what"/>, for errors) read into the model's tree: <paramref name="spare"/>, a
    /// tree of an earlier version that nothing holds, overwritten in place when it can be, or a new tree.
    /// </summary>
    private sealed class TreeOf(ModelSpec spec, FlatTree parameters, object? spare, string what) : IModelUse<object>
    {
        public object Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize) where TParams : IParameterTree<TParams> =>
            spare is TParams scratch && BitConverter.IsLittleEndian
            && Tree.TryOverwrite(scratch, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>((parameters.Bytes ?? []).AsSpan()))
                ? scratch
                : parameters.Into(Template(spec, initialize), what);
    }

    /// <summary>
    /// The loss and gradients of a block's pieces summed by the tree, with the parameters <paramref name="tree"/> (the
    /// model's); each piece is computed when the sum reaches it, its gradients written into an array of the silo's
    /// <paramref name="buffers"/>, which gets back every array, the block's sum once it is written to the wire.
    /// </summary>
    private sealed class LossOfBlock(object tree, PieceBlock block, ImmutableArray<TokenBatch?> pieces, PayloadBuffers buffers)
        : IModelUse<(double, int, FlatTree)>
    {
        public (double, int, FlatTree) Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize)
            where TParams : IParameterTree<TParams>
        {
            var p = (TParams)tree;
            var sum = PieceTree.Reduce(block, static node => node.Count == 1, node =>
            {
                if (pieces[node.Start - block.Start] is not { } piece) return null;
                var result = model.LossAndGradients(p, piece, model.InitialState(p, piece.Size));
                return PartialSum.Of(result.Loss, result.Tokens, result.Gradients, buffers);
            }, (left, right) => PartialSum.Add(left, right, buffers)) ?? throw new InvalidOperationException($"{block} has no piece with a column");
            return (sum.Loss, sum.Tokens, sum.ToPayload(buffers));
        }
    }
}

/// <summary>
/// A piece worker's refusal of a run that its silo cannot read (its corpus is not the run's, or the model's vocabulary
/// is not the corpus'): <see cref="Silo"/> is the silo that refused, the message says why.
/// </summary>
[GenerateSerializer]
public sealed class PieceRefusedException : InvalidOperationException
{
    /// <summary>A refusal without a silo or reason.</summary>
    public PieceRefusedException()
    {
    }

    /// <summary>A refusal for <paramref name="message"/>.</summary>
    /// <param name="message">Why.</param>
    public PieceRefusedException(string message)
        : base(message)
    {
    }

    /// <summary>A refusal for <paramref name="message"/> caused by <paramref name="inner"/>.</summary>
    /// <param name="message">Why.</param>
    /// <param name="inner">The cause.</param>
    public PieceRefusedException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>The refusal of silo <paramref name="silo"/> for <paramref name="message"/>.</summary>
    /// <param name="silo">The silo that refused (its runtime identity).</param>
    /// <param name="message">Why.</param>
    public PieceRefusedException(string silo, string message)
        : base(message) => Silo = silo;

    /// <summary>The silo that refused (its runtime identity, as <see cref="PieceResult.Worker"/> names silos).</summary>
    [Id(0)]
    public string Silo { get; init; } = "";
}
