using System.Collections.Immutable;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace RnnFunctional.Distributed;

/// <summary>
/// Runs a <see cref="RunSpec"/>'s updates data-parallel on the <see cref="IPieceWorkerGrain"/> workers of an Orleans
/// cluster. Each step is cut into blocks, nodes of <see cref="PieceTree"/>: every piece alone in a coordinator's first
/// step, then one block per silo hosting piece workers (<see cref="PieceTree.Blocks"/>), the silos asked of the cluster
/// before each step (<see cref="IPieceSilosGrain"/>), so a silo that joins mid-run computes a block from the next step
/// on and a silo that left is no longer counted. A silo whose worker refuses the run (<see cref="PieceRefusedException"/>:
/// another corpus) has its block computed on another silo and is left out of later steps. It asks the blocks'
/// workers at once, each of which sends one partial sum of its block's pieces, adds the partials by the nodes of the
/// tree above the blocks and applies the optimizer (<see cref="PieceTraining.Apply{T}"/>), so the parameters after
/// every step are bitwise those of <see cref="PieceTraining.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, int, T, IEnumerable{TokenBatch})"/> with the same P and k = 0, whatever the
/// blocks. Parameters go out versioned (version = number of updates applied) and are held per silo
/// (<see cref="SiloParameters"/>): each step they go with one block request per silo that computed blocks in the
/// previous step (with every request whose worker's silo is not known yet), and again only to a worker that answers
/// that its silo does not hold them (e.g. a grain activated anew on another silo). A call that fails in the cluster is
/// sent again; a block is a pure function of (parameters, step, block), so the result is unchanged.
/// </summary>
/// <typeparam name="T">The parameter record.</typeparam>
public sealed class Coordinator<T> where T : IParameterTree<T>
{
    private readonly IGrainFactory grains;
    private readonly Optimizer<T> optimizer;
    private readonly Clipping clipping;
    private readonly Dictionary<string, int> siloVersions = [];
    private readonly Dictionary<long, string> blockSilos = [];
    private readonly Stopwatch clock = new();
    private readonly HashSet<string> workers = [];
    private readonly Dictionary<string, string> refusals = new(StringComparer.Ordinal);
    private readonly string?[] lastWorkers;
    private readonly PayloadBuffers buffers = PayloadBuffers.Received;
    private readonly T like;
    private readonly ImmutableArray<LeafShape> shapes;
    private readonly long count;
    private readonly Queue<(byte[] Bytes, WeakReference<Lazy<T>>? Reader)> retired = new();
    private FlatTree? payload;
    private long requests, parameterSends, retries, doublesSent, doublesReceived;
    private int stepping;

    /// <summary>A coordinator at <paramref name="step"/> updates into the run with state <paramref name="state"/>.</summary>
    /// <param name="grains">The cluster (a client or a grain factory).</param>
    /// <param name="run">The run: model, data and piece count.</param>
    /// <param name="optimizer">The optimizer.</param>
    /// <param name="clipping">Gradient clipping.</param>
    /// <param name="state">The state after <paramref name="step"/> updates (a fresh start or a saved one).</param>
    /// <param name="step">Number of updates already applied; the next step reads batch number <paramref name="step"/> (from 0).</param>
    public Coordinator(IGrainFactory grains, RunSpec run, Optimizer<T> optimizer, Clipping clipping, TrainingState<T> state, int step = 0)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(clipping);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (run.Pieces is < 1 or > PieceTree.MaxPieces)
            throw new ArgumentException($"expected the run's piece count to be in [1, {PieceTree.MaxPieces}] but got {run.Pieces}", nameof(run));
        (this.grains, Run, this.optimizer, this.clipping, State, Step) = (grains, run, optimizer, clipping, state, step);
        (like, shapes) = (state.Parameters, state.Parameters.LeafShapes());
        count = Tree.Count(like);
        lastWorkers = new string?[run.Pieces];
    }

    /// <summary>The run.</summary>
    public RunSpec Run { get; }

    /// <summary>Parameters and optimizer state after <see cref="Step"/> updates: a value that can be saved and handed to a new coordinator.</summary>
    public TrainingState<T> State { get; private set; }

    /// <summary>Number of updates applied.</summary>
    public int Step { get; private set; }

    /// <summary>How many times a failed call may be sent again before the step fails.</summary>
    public int MaxRetries { get; init; } = 20;

    /// <summary>Where the time of the last step went (null before the first).</summary>
    public StepTimes? LastStep { get; private set; }

    /// <summary>What has been sent and retried so far.</summary>
    public CoordinatorCounters Counters
    {
        get
        {
            lock (workers)
                return new(Interlocked.Read(ref requests), Interlocked.Read(ref parameterSends), Interlocked.Read(ref retries),
                    Interlocked.Read(ref doublesSent), Interlocked.Read(ref doublesReceived), [.. workers],
                    refusals.ToImmutableSortedDictionary(StringComparer.Ordinal, StringComparer.Ordinal));
        }
    }

    /// <summary>The silo that computed each piece (within its block) of the last step (null before the first step).</summary>
    public ImmutableArray<string?> LastWorkers
    {
        get { lock (workers) return [.. lastWorkers]; }
    }

    /// <summary>
    /// One update: every block of the next batch from its worker, the blocks' partial sums added by the tree and the
    /// optimizer applied. When the loss or gradient is not finite the state is kept, as in <see cref="Training.Update"/>.
    /// Steps are taken one at a time: a call while another step is under way throws.
    /// </summary>
    /// <param name="cancellation">Stops the step before it is applied.</param>
    /// <returns>The step taken (<see cref="TrainingStep{T}.Batch"/> is its number too: one update per batch).</returns>
    public async Task<TrainingStep<T>> StepAsync(CancellationToken cancellation = default)
    {
        if (Interlocked.Exchange(ref stepping, 1) == 1)
            throw new InvalidOperationException($"step {Step + 1} of run {Run.RunId} was asked for while another step is under way");
        try { return await TakeStepAsync(cancellation); }
        finally { Volatile.Write(ref stepping, 0); }
    }

    private async Task<TrainingStep<T>> TakeStepAsync(CancellationToken cancellation)
    {
        clock.Start();
        var started = clock.Elapsed;
        var version = Step;
        var parameters = new Lazy<FlatTree>(() => payload ??= FlatTree.Of(State.Parameters));
        var (blocks, keys, silos) = await BlocksAsync(cancellation);
        var carriers = Carriers(version, keys);
        var asked = clock.Elapsed;
        // Task.WhenAll ends when every block has ended, so a failed step reports its failure after the others are in.
        var results = await Task.WhenAll(blocks.Select((block, k) => BlockAsync(block, keys[k], silos, version, carriers[k], parameters, cancellation)));
        cancellation.ThrowIfCancellationRequested();
        var answered = clock.Elapsed;
        var partials = new Dictionary<PieceBlock, PartialSum?>();
        for (var k = 0; k < blocks.Length; k++)
        {
            var (block, result) = (blocks[k], results[k]);
            var what = $"gradients of {block} of step {version + 1} of run {Run.RunId} (model {Run.Model}) from {result.Worker}";
            partials[block] = result.Status != PieceStatus.Computed ? null
                : PartialSum.Received(result.Loss, result.Tokens, result.Gradients ?? throw new InvalidDataException($"expected the {what} but got none"), count, what);
        }
        // The blocks' partial sums added by the nodes of the tree above them: the bits of PieceTraining.Sum.
        var sum = PieceTree.Reduce(new PieceBlock(0, Run.Pieces), partials.ContainsKey, block => partials[block], (left, right) => PartialSum.Add(left, right, buffers))
            ?? throw new InvalidOperationException($"step {Step} of run {Run.RunId} has no piece with a column");
        var summed = clock.Elapsed;
        var (next, nextPayload, loss, norm) = optimizer.Flat is { } flat && ReferenceEquals(flat.Of, optimizer.Update) && BitConverter.IsLittleEndian
            ? ApplyFlat(flat, sum)
            : ApplyTree(sum);
        var tokens = sum.Tokens;
        // The arrays of the sum and of the payloads serve the next step's payloads and sum; a block computed on this
        // process's own silo came by reference, never written to the wire, so its array goes back to that silo's lender.
        sum.Spend(buffers);
        foreach (var result in results)
            if (result.Gradients is { Bytes: { } bytes } gradients) (gradients.TakeLender() ?? buffers).Return(bytes);
        (State, payload, Step) = (next, nextPayload, Step + 1);
        var applied = clock.Elapsed;
        var slowest = results.Where(result => result.Status == PieceStatus.Computed).Select(result => result.Took).DefaultIfEmpty().Max();
        LastStep = new StepTimes(applied - started, answered - asked, slowest, summed - answered, applied - summed);
        return new TrainingStep<T>(Step, Step, next, loss, tokens, norm, applied);
    }

    /// <summary>
    /// The summed gradients applied as <see cref="PieceTraining.Apply{T}"/> does, on flat values: the sum's array is
    /// overwritten by its clipped mean (<see cref="Training.UpdateInPlace{T}"/>), and the new parameters are a new
    /// payload, sent as they are in the next step and read into the new state's tree only when a caller reads
    /// <see cref="TrainingState{T}.Parameters"/>. Same bits, no tree of the gradients, one copy of the parameters.
    /// </summary>
    private (TrainingState<T> State, FlatTree? Payload, double Loss, double Norm) ApplyFlat(FlatUpdate<T> flat, PartialSum sum)
    {
        var current = payload ?? FlatTree.Of(State.Parameters);
        var bytes = PayloadArray(current.Bytes.Length);
        current.Bytes.CopyTo(bytes, 0);
        var gradients = MemoryMarshal.Cast<byte, double>(sum.Writable(buffers));
        var (state, loss, norm) = Training.UpdateInPlace(flat, clipping, like, shapes, MemoryMarshal.Cast<byte, double>(bytes.AsSpan()), gradients,
            State.Optimizer, sum.Loss, sum.Tokens);
        if (state is null)
        {
            retired.Enqueue((bytes, null));
            return (State, current, loss, norm);
        }
        retired.Enqueue((current.Bytes, State.Pending is { } reader ? new WeakReference<Lazy<T>>(reader) : null));
        var template = like;
        return (new TrainingState<T>(() => Tree.Unflatten(template, MemoryMarshal.Cast<byte, double>(bytes.AsSpan())), state), new FlatTree(bytes), loss, norm);
    }

    /// <summary>
    /// How many payloads of earlier parameter versions are kept before the array of the oldest serves a new version: a
    /// payload is sent in the step after its version and no later (a silo asked for a later version never reads an
    /// earlier one), so two would do; a few more leave the collector time to drop the states that would read one
    /// lazily, so that it seldom has to be read into a tree first.
    /// </summary>
    private const int RetiredPayloads = 3;

    /// <summary>
    /// An array for the next parameter payload: once more than <see cref="RetiredPayloads"/> are retired, the array of
    /// the payload retired longest ago, after the build that reads it lazily (shared by its state and the state's
    /// copies, <see cref="TrainingState{T}.Pending"/>), if anything still holds that build, has read it into its tree
    /// (so no state's parameters change); otherwise a new one. A wide model's payload is about 10 MB, and a new one each
    /// step is a large object whose pages the kernel maps afresh.
    /// </summary>
    private byte[] PayloadArray(int length)
    {
        while (retired.Count > RetiredPayloads)
        {
            var (bytes, reader) = retired.Dequeue();
            if (bytes.Length != length) continue;
            if (reader is not null && reader.TryGetTarget(out var build)) _ = build.Value;
            return bytes;
        }
        return GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>The summed gradients read into a tree and applied by <see cref="PieceTraining.Apply{T}"/> (any optimizer).</summary>
    private (TrainingState<T> State, FlatTree? Payload, double Loss, double Norm) ApplyTree(PartialSum sum)
    {
        var (next, loss, norm) = PieceTraining.Apply(optimizer, clipping, State, sum.Result(like));
        return (next, ReferenceEquals(next, State) ? payload : null, loss, norm);
    }

    /// <summary>
    /// The blocks of the next step, their grain keys and the silos they were cut for: every piece alone (piece i in
    /// slot i, no silos) when no step of this coordinator has told which silos compute; otherwise
    /// <see cref="PieceTree.Blocks"/> for the silos hosting piece workers that the cluster names now
    /// (<see cref="IPieceSilosGrain"/>) less those that refused the run, the k-th block in the slot of the k-th of them
    /// (<see cref="PieceSilos.Slot"/>). When the cluster cannot be asked or names none, the blocks are cut for the
    /// number of silos that computed the last step, the k-th in slot k (no silos). Which blocks are asked for never
    /// changes the bits.
    /// </summary>
    private async Task<(ImmutableArray<PieceBlock> Blocks, long[] Keys, ImmutableArray<SiloAddress> Silos)> BlocksAsync(CancellationToken cancellation)
    {
        int computed;
        lock (workers) computed = lastWorkers.OfType<string>().Distinct(StringComparer.Ordinal).Count();
        if (computed == 0)
        {
            var singles = PieceTree.Singles(Run.Pieces);
            return (singles, [.. singles.Select(block => PieceTree.Key(block, block.Start))], []);
        }
        var silos = await SilosAsync(cancellation);
        var willing = Willing(silos);
        if (willing.IsEmpty)
        {
            var blocks = PieceTree.Blocks(Run.Pieces, computed);
            return (blocks, [.. blocks.Select((block, k) => PieceTree.Key(block, k))], []);
        }
        var cut = PieceTree.Blocks(Run.Pieces, willing.Length);
        return (cut, [.. cut.Select((block, k) => PieceTree.Key(block, PieceSilos.Slot(willing[k], silos)))], silos);
    }

    /// <summary>The indices in <paramref name="silos"/> of the silos that have not refused the run.</summary>
    private ImmutableArray<int> Willing(ImmutableArray<SiloAddress> silos)
    {
        lock (workers) return [.. Enumerable.Range(0, silos.Length).Where(i => !refusals.ContainsKey(silos[i].ToString()))];
    }

    /// <summary>The silos hosting piece workers as the cluster names them now; none when the cluster cannot be asked.</summary>
    private async Task<ImmutableArray<SiloAddress>> SilosAsync(CancellationToken cancellation)
    {
        try
        {
            var named = await grains.GetGrain<IPieceSilosGrain>(0).Current().WaitAsync(cancellation);
            return named.IsDefault ? [] : named;
        }
        catch (Exception e) when (IsClusterFailure(e))
        {
            return [];
        }
    }

    /// <summary>
    /// <paramref name="steps"/> updates one after the other, each yielded when applied; stops after a step whose loss or
    /// gradient is not finite, as <see cref="Training.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, T, IEnumerable{TokenBatch})"/> does.
    /// </summary>
    /// <param name="steps">Number of updates.</param>
    /// <param name="cancellation">Stops between or within steps (a step not applied is not yielded).</param>
    public async IAsyncEnumerable<TrainingStep<T>> RunAsync(int steps, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellation = default)
    {
        for (var s = 0; s < steps; s++)
        {
            var step = await StepAsync(cancellation);
            yield return step;
            if (!step.IsFinite) yield break;
        }
    }

    /// <summary>
    /// Which blocks carry the parameters at first: every block whose worker's silo is not known, and on each known silo
    /// not known to hold <paramref name="version"/>, its first block.
    /// </summary>
    private bool[] Carriers(int version, long[] keys)
    {
        lock (workers)
        {
            var carriers = new bool[keys.Length];
            var served = new HashSet<string>();
            for (var k = 0; k < keys.Length; k++)
                carriers[k] = !blockSilos.TryGetValue(keys[k], out var silo)
                    || (!(siloVersions.TryGetValue(silo, out var v) && v == version) && served.Add(silo));
            return carriers;
        }
    }

    /// <summary>
    /// Block <paramref name="block"/> of the current step from the worker of <paramref name="key"/>, with the
    /// parameters sent when it carries them or its worker asks for them. When the worker refuses the run, its silo is
    /// left out and the block is asked of the silo of another slot of <paramref name="silos"/> (the silos the step was
    /// cut for, or those the cluster names now); when every silo has refused, the step fails with the refusal.
    /// </summary>
    private async Task<PieceResult> BlockAsync(PieceBlock block, long key, ImmutableArray<SiloAddress> silos, int version, bool carrier,
        Lazy<FlatTree> parameters, CancellationToken cancellation)
    {
        var worker = grains.GetGrain<IPieceWorkerGrain>(key, Run.RunId);
        var withParameters = carrier;
        for (var attempt = 0; ; attempt++)
        {
            cancellation.ThrowIfCancellationRequested();
            var send = withParameters ? parameters.Value : null;
            PieceResult result;
            try
            {
                Interlocked.Increment(ref requests);
                result = await worker.Compute(new PieceRequest(Run, Step, version, send));
            }
            catch (Exception e) when (IsClusterFailure(e) && attempt < MaxRetries)
            {
                withParameters = true;
                Interlocked.Increment(ref retries);
                await Task.Delay(TimeSpan.FromMilliseconds(50 * Math.Min(attempt + 1, 10)), cancellation);
                continue;
            }
            catch (PieceRefusedException e) when (attempt < MaxRetries)
            {
                // The block goes to a silo that has not refused: a slot of the same set of silos on another silo.
                lock (workers) refusals[e.Silo] = e.Message;
                if (silos.IsDefaultOrEmpty) silos = await SilosAsync(cancellation);
                var willing = Willing(silos);
                if (willing.IsEmpty) throw new InvalidOperationException(e.Message, e);
                key = PieceTree.Key(block, PieceSilos.Slot(willing[block.Start % willing.Length], silos));
                worker = grains.GetGrain<IPieceWorkerGrain>(key, Run.RunId);
                withParameters = true;
                Interlocked.Increment(ref retries);
                continue;
            }
            if (send is not null)
            {
                lock (workers) siloVersions[result.Worker] = version;
                Interlocked.Increment(ref parameterSends);
                Interlocked.Add(ref doublesSent, send.Count);
            }
            if (result.Status == PieceStatus.NeedParameters)
            {
                if (send is not null)
                    throw new InvalidOperationException($"the worker of {block} of run {Run.RunId} asked again for parameters version {version} it was just sent");
                withParameters = true;
                continue;
            }
            if (result.Gradients is { } g) Interlocked.Add(ref doublesReceived, g.Count);
            lock (workers)
            {
                workers.Add(result.Worker);
                blockSilos[key] = result.Worker;
                for (var piece = block.Start; piece < block.End; piece++) lastWorkers[piece] = result.Worker;
            }
            return result;
        }
    }

    /// <summary>Failures of the cluster rather than of the computation: a silo gone, a message rejected, a call timed out.</summary>
    private static bool IsClusterFailure(Exception e) =>
        e is OrleansException or TimeoutException or OperationCanceledException { CancellationToken.IsCancellationRequested: false };
}
