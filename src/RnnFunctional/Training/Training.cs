using System.Buffers;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Diagnostics.Contracts;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>Truncated back-propagation through time over the windows of a batch.</summary>
public static class TruncatedBptt
{
    /// <summary>
    /// The loss and gradients of a batch cut into windows of <paramref name="k"/> steps: a fold over the windows that
    /// carries the recurrent state forward as a value while each window's gradient stops at the window's start.
    /// The gradients of the windows are summed. With k ≤ 0 or k ≥ T this is full back-propagation through time.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="p">Its parameters (the same for every window).</param>
    /// <param name="batch">The batch.</param>
    /// <param name="k">Window length; 0 for the whole batch.</param>
    /// <param name="init">The state before the first step.</param>
    [Pure]
    public static SequenceLoss<TParams, TState> LossAndGradients<TParams, TState>(
        SequenceModel<TParams, TState> model, TParams p, TokenBatch batch, int k, TState init)
        where TParams : IParameterTree<TParams>
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        var ((final, losses, tokens, gradients), _) = Scan.Fold(
            (State: init, Losses: ImmutableList<double>.Empty, Tokens: 0, Gradients: Tree.ZerosLike(p)),
            batch.Windows(k),
            (acc, window) =>
            {
                var w = model.LossAndGradients(p, window, acc.State);
                return ((w.Final, acc.Losses.Add(w.Loss), acc.Tokens + w.Tokens, Tree.Add(acc.Gradients, w.Gradients)), w.Loss);
            });
        return new(Ops.CompensatedSum(losses), tokens, gradients, final);
    }
}

/// <summary>What training carries from one update to the next.</summary>
/// <typeparam name="T">The parameter record.</typeparam>
public sealed record TrainingState<T> where T : IParameterTree<T>
{
    private readonly Lazy<T>? build;
    private readonly T? parameters;

    /// <summary>A state of the given parameters and optimizer state.</summary>
    /// <param name="Parameters">The current parameters.</param>
    /// <param name="Optimizer">The optimizer's state.</param>
    public TrainingState(T Parameters, OptimizerState<T> Optimizer) => (parameters, this.Optimizer) = (Parameters, Optimizer);

    /// <summary>
    /// A state whose parameters are built by <paramref name="build"/> when first read, once, whatever the threads (and
    /// the state's copies, which share the build: <see cref="Pending"/>): a pure function of values that are not written
    /// before it has run or nothing holds it any more (a distributed run's flat parameters, which it sends as they are,
    /// read into a tree only when a caller asks for it).
    /// </summary>
    internal TrainingState(Func<T> build, OptimizerState<T> optimizer) =>
        (this.build, Optimizer) = (new Lazy<T>(build, LazyThreadSafetyMode.ExecutionAndPublication), optimizer);

    /// <summary>
    /// The build of the parameters of a state made by <see cref="TrainingState(Func{T}, OptimizerState{T})"/>, which this
    /// state and its copies share (null for a state given its parameters): whoever would write the values it reads holds
    /// it weakly and runs it first while anything holds it.
    /// </summary>
    internal Lazy<T>? Pending => build;

    /// <summary>The current parameters.</summary>
    public T Parameters
    {
        get => parameters ?? build!.Value;
        init => (parameters, build) = (value, null);
    }

    /// <summary>The optimizer's state.</summary>
    public OptimizerState<T> Optimizer { get; init; }

    /// <summary>The parameters and the optimizer's state.</summary>
    /// <param name="Parameters">The current parameters.</param>
    /// <param name="Optimizer">The optimizer's state.</param>
    public void Deconstruct(out T Parameters, out OptimizerState<T> Optimizer) => (Parameters, Optimizer) = (this.Parameters, this.Optimizer);

    /// <summary>Equal parameters and equal optimizer states, as the records compare them.</summary>
    /// <param name="other">Another state.</param>
    public bool Equals(TrainingState<T>? other) =>
        other is not null && (ReferenceEquals(this, other)
            || (EqualityComparer<T>.Default.Equals(Parameters, other.Parameters) && EqualityComparer<OptimizerState<T>>.Default.Equals(Optimizer, other.Optimizer)));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Parameters, Optimizer);
}

/// <summary>How to train.</summary>
/// <param name="Window">Truncated BPTT window k: one update per window of k steps, the state carried across windows of a batch; 0 for one update per batch.</param>
/// <param name="Clipping">Gradient clipping applied to the per-token mean gradient before the optimizer.</param>
public sealed record TrainingOptions(int Window, Clipping Clipping)
{
    /// <summary>
    /// Seed of training's randomness (a model's dropout masks): update k (from 1) draws from
    /// <c>RandomState.Seeded(Seed).Fork(k)</c>, so the masks differ from step to step and a run is a function of the seed.
    /// </summary>
    public long Seed { get; init; }

    /// <summary>Full back-propagation through time and no clipping.</summary>
    public static TrainingOptions Default { get; } = new(0, Clipping.None);
}

/// <summary>One entry of the training history: the update just taken.</summary>
/// <typeparam name="T">The parameter record.</typeparam>
/// <param name="Step">Number of the update, from 1.</param>
/// <param name="Batch">Number of the batch the update came from, from 1.</param>
/// <param name="State">Parameters and optimizer state after the update.</param>
/// <param name="Loss">Mean cross-entropy per real target token of the window, in nats, before the update.</param>
/// <param name="Tokens">Number of real target tokens in the window.</param>
/// <param name="GradientNorm">Global norm of the per-token mean gradient before clipping.</param>
/// <param name="Elapsed">Time since the history started being enumerated.</param>
public sealed record TrainingStep<T>(int Step, int Batch, TrainingState<T> State, double Loss, int Tokens, double GradientNorm, TimeSpan Elapsed)
    where T : IParameterTree<T>
{
    /// <summary>The parameters after this update.</summary>
    public T Parameters => State.Parameters;

    /// <summary>
    /// The checkpoint of this step: a run continues from it to the same bits when the step is the last window of its
    /// batch (always so with one update per batch; <see cref="Training.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, TrainingCheckpoint{T}, IEnumerable{TokenBatch})"/>
    /// refuses one within a batch).
    /// </summary>
    public TrainingCheckpoint<T> Checkpoint => new(Step, Batch, State);

    /// <summary>False when the loss or the gradient was NaN or infinite; the history ends at such a step, whose state is the one before it.</summary>
    public bool IsFinite => double.IsFinite(Loss) && double.IsFinite(GradientNorm);
}

/// <summary>
/// Where a training run stands at the end of a batch: what a run saves so that another one continues from it to the
/// same bits (<see cref="Training.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, TrainingCheckpoint{T}, IEnumerable{TokenBatch})"/>).
/// </summary>
/// <typeparam name="T">The parameter record.</typeparam>
/// <param name="Step">Number of updates taken (0 before the first).</param>
/// <param name="Batch">Number of batches whose every window has been trained on (0 before the first).</param>
/// <param name="State">Parameters and optimizer state after those updates.</param>
public sealed record TrainingCheckpoint<T>(int Step, int Batch, TrainingState<T> State) where T : IParameterTree<T>
{
    /// <summary>The start of a run: no update taken, the optimizer's initial state for <paramref name="parameters"/>.</summary>
    /// <param name="optimizer">The optimizer.</param>
    /// <param name="parameters">The initial parameters.</param>
    [Pure]
    public static TrainingCheckpoint<T> Start(Optimizer<T> optimizer, T parameters)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(parameters);
        return new(0, 0, new TrainingState<T>(parameters, optimizer.Init(parameters)));
    }
}

/// <summary>Training as a fold over mini-batches that yields a lazy, immutable history of steps.</summary>
public static class Training
{
    /// <summary>
    /// One update on one window: the summed loss and its gradients from the model, divided by the number of real
    /// tokens (a per-token mean), clipped, and handed to the optimizer. Nothing is mutated: the new state is returned.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="optimizer">The optimizer.</param>
    /// <param name="clipping">Gradient clipping.</param>
    /// <param name="state">Parameters and optimizer state before the update.</param>
    /// <param name="window">The window of a batch.</param>
    /// <param name="carry">The recurrent state before the window.</param>
    /// <param name="random">
    /// The random state of the update's dropout masks: with it, a model with <see cref="SequenceModel{TParams,TState}.DropoutLoss"/>
    /// trains under masks drawn from it; omitted, the model's loss without dropout.
    /// </param>
    /// <returns>The state after the update (the same state when the loss is not finite), the recurrent state after the window, the mean loss, the tokens and the gradient norm.</returns>
    [Pure]
    public static (TrainingState<T> State, TState Carry, double Loss, int Tokens, double GradientNorm) Update<T, TState>(
        SequenceModel<T, TState> model, Optimizer<T> optimizer, Clipping clipping, TrainingState<T> state, TokenBatch window, TState carry,
        RandomState? random = null)
        where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(clipping);
        ArgumentNullException.ThrowIfNull(state);
        var result = model.DropoutLoss is { } dropped && random is { } r
            ? dropped(state.Parameters, window, carry, r)
            : model.LossAndGradients(state.Parameters, window, carry);
        var tokens = Math.Max(1, result.Tokens);
        if (optimizer.Flat is { } flat && ReferenceEquals(flat.Of, optimizer.Update))
            return FlatUpdate(flat, clipping, state, result, tokens);
        var gradients = Tree.Scale(1.0 / tokens, result.Gradients);
        var (loss, norm) = (result.Loss / tokens, Tree.Norm(gradients));
        if (!double.IsFinite(loss) || !double.IsFinite(norm)) return (state, result.Final, loss, result.Tokens, norm);
        var (parameters, optimizerState) = optimizer.Update(state.Parameters, clipping.Apply(gradients), state.Optimizer);
        return (new TrainingState<T>(parameters, optimizerState), result.Final, loss, result.Tokens, norm);
    }

    /// <summary>
    /// <see cref="Update"/> for an optimizer of <see cref="Optimizers"/>: the gradients are scaled, measured, clipped
    /// and handed on as one flat span of a pooled array that nothing keeps, with the same arithmetic in the same order
    /// as the tree functions (same bits).
    /// </summary>
    private static (TrainingState<T> State, TState Carry, double Loss, int Tokens, double GradientNorm) FlatUpdate<T, TState>(
        FlatUpdate<T> flat, Clipping clipping, TrainingState<T> state, SequenceLoss<T, TState> result, int tokens)
        where T : IParameterTree<T>
    {
        var shapes = state.Parameters.LeafShapes();
        if (result.Gradients is IFlatTree) Tree.RequireSameShapes(shapes, result.Gradients.LeafShapes(), "gradients");  // the library's trees: shapes, then one copy
        var leaves = result.Gradients is IFlatTree ? default : result.Gradients.ToLeaves();
        if (!leaves.IsDefault) Tree.RequireSameStructure(shapes, leaves, "gradients");
        var count = 0;
        foreach (var shape in shapes) count += shape.Count;
        var pooled = ArrayPool<double>.Shared.Rent(count);                                                      // scratch: read by the step, kept by nothing
        try
        {
            var gradients = pooled.AsSpan(0, count);
            var written = leaves.IsDefault ? Tree.Write(result.Gradients, gradients) : Tree.Write(leaves, gradients);
            if (written != count) throw new ArgumentException($"expected gradients to have {count} entries but got {written}", "gradients");
            var (loss, norm) = ClippedMean(gradients, result.Loss, tokens, clipping);
            if (!double.IsFinite(loss) || !double.IsFinite(norm)) return (state, result.Final, loss, result.Tokens, norm);
            var (parameters, optimizerState) = flat.Step(state.Parameters, shapes, gradients, state.Optimizer);
            return (new TrainingState<T>(parameters, optimizerState), result.Final, loss, result.Tokens, norm);
        }
        finally
        {
            ArrayPool<double>.Shared.Return(pooled);
        }
    }

    /// <summary>
    /// The per-token mean of summed gradients, in place (g ← g / tokens entry by entry, in leaf order), clipped by
    /// <paramref name="clipping"/> when the mean loss and the mean gradient's norm (its squares summed in the same
    /// order) are finite, with that loss and norm: the bits of every flat update.
    /// </summary>
    internal static (double Loss, double Norm) ClippedMean(Span<double> gradients, double loss, int tokens, Clipping clipping)
    {
        var scale = 1.0 / tokens;
        var sum = 0.0;
        for (var i = 0; i < gradients.Length; i++)
        {
            gradients[i] = scale * gradients[i];
            sum += gradients[i] * gradients[i];
        }
        var (mean, norm) = (loss / tokens, Math.Sqrt(sum));
        if (double.IsFinite(mean) && double.IsFinite(norm)) clipping.ApplyInPlace(gradients, norm);
        return (mean, norm);
    }

    /// <summary>
    /// <see cref="Update"/>'s flat path on values already flat: summed gradients (in leaf order, overwritten by their
    /// clipped mean) applied to the parameters' entries in place, with the bits <see cref="Update"/> gives for a model
    /// whose loss is <paramref name="loss"/> over <paramref name="tokens"/> tokens with those gradients. The new
    /// optimizer state is null, and the parameters untouched, when the loss or the gradient is not finite.
    /// </summary>
    internal static (OptimizerState<T>? State, double Loss, double Norm) UpdateInPlace<T>(FlatUpdate<T> flat, Clipping clipping, T like,
        ImmutableArray<LeafShape> shapes, Span<double> parameters, Span<double> gradients, OptimizerState<T> state, double loss, int tokens)
        where T : IParameterTree<T>
    {
        var (mean, norm) = ClippedMean(gradients, loss, Math.Max(1, tokens), clipping);
        if (!double.IsFinite(mean) || !double.IsFinite(norm)) return (null, mean, norm);
        return (flat.InPlace(like, shapes, parameters, gradients, state), mean, norm);
    }

    /// <summary>
    /// Trains by folding <see cref="Update"/> over the windows of the batches, lazily: each enumeration starts
    /// afresh from <paramref name="initial"/>, and every yielded step is an immutable record (so progress is observed by
    /// enumerating, and the final parameters are those of the last step). Within a batch the recurrent state is
    /// carried from window to window; each batch starts from the model's initial state. The history stops after a
    /// step whose loss or gradient is not finite. A model with dropout draws update k's masks from
    /// <c>RandomState.Seeded(options.Seed).Fork(k)</c> (see <see cref="TrainingOptions.Seed"/>).
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="optimizer">The optimizer.</param>
    /// <param name="options">Window and clipping.</param>
    /// <param name="initial">Initial parameters (left untouched).</param>
    /// <param name="batches">The mini-batches, e.g. <see cref="Corpus.Epochs(System.Collections.Generic.IReadOnlyList{System.Collections.Immutable.ImmutableArray{int}}, int, int, RandomState, int)"/>.</param>
    [Pure]
    public static IEnumerable<TrainingStep<T>> Fold<T, TState>(SequenceModel<T, TState> model, Optimizer<T> optimizer,
        TrainingOptions options, T initial, IEnumerable<TokenBatch> batches)
        where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(initial);
        return Fold(model, optimizer, options, TrainingCheckpoint<T>.Start(optimizer, initial), batches);
    }

    /// <summary>
    /// <see cref="Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, T, IEnumerable{TokenBatch})"/>
    /// continued from a checkpoint: <paramref name="batches"/> is the run's whole sequence of batches, from its first;
    /// the first <c>from.Batch</c> are passed over (their windows must number <c>from.Step</c>, so that the checkpoint is
    /// the end of a batch), and the updates go on from <c>from.State</c>, numbered from <c>from.Step + 1</c>, with the
    /// dropout masks of those numbers. The steps are bitwise those the uninterrupted run takes after the checkpoint.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="optimizer">The optimizer (the one whose state the checkpoint holds).</param>
    /// <param name="options">Window and clipping (those of the run that made the checkpoint).</param>
    /// <param name="from">The checkpoint, e.g. a <see cref="TrainingStep{T}"/>'s at the end of a batch.</param>
    /// <param name="batches">The run's batches from its first, e.g. <see cref="Corpus.Epochs(System.Collections.Generic.IReadOnlyList{System.Collections.Immutable.ImmutableArray{int}}, int, int, RandomState, int)"/>.</param>
    /// <exception cref="ArgumentException">
    /// Raised while enumerating, before any update: the batches end before <c>from.Batch</c>, or the windows of the
    /// first <c>from.Batch</c> batches are not <c>from.Step</c> updates (a checkpoint within a batch, or another window).
    /// </exception>
    [Pure]
    public static IEnumerable<TrainingStep<T>> Fold<T, TState>(SequenceModel<T, TState> model, Optimizer<T> optimizer,
        TrainingOptions options, TrainingCheckpoint<T> from, IEnumerable<TokenBatch> batches)
        where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(options);
        RequireCheckpoint(from);
        ArgumentNullException.ThrowIfNull(batches);
        return Iterate();

        IEnumerable<TrainingStep<T>> Iterate()
        {
            var clock = Stopwatch.StartNew();
            var state = from.State;
            var (step, batchNumber) = (from.Step, from.Batch);
            foreach (var batch in Continued(batches, from.Step, from.Batch, options.Window))
            {
                batchNumber++;
                var carry = model.InitialState(state.Parameters, batch.Size);
                foreach (var window in batch.Windows(options.Window))
                {
                    (state, carry, var loss, var tokens, var norm) = Update(model, optimizer, options.Clipping, state, window, carry,
                        RandomState.Seeded(options.Seed).Fork(step + 1));
                    var entry = new TrainingStep<T>(++step, batchNumber, state, loss, tokens, norm, clock.Elapsed);
                    yield return entry;
                    if (!entry.IsFinite) yield break;
                }
            }
        }
    }

    /// <summary>A checkpoint with a state that counts at least one update per batch, or an exception naming <c>from</c>.</summary>
    internal static void RequireCheckpoint<T>(TrainingCheckpoint<T> from) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(from.State, nameof(from));
        if (from.Step < 0 || from.Batch < 0 || from.Step < from.Batch)
            throw new ArgumentException($"expected from to count at least one update per batch (Step ≥ Batch ≥ 0) but got step {from.Step} of batch {from.Batch}", nameof(from));
    }

    /// <summary>
    /// The batches of a run continued after <paramref name="batch"/> batches and <paramref name="step"/> updates: those
    /// after the first <paramref name="batch"/>, which are passed over once checked to hold <paramref name="step"/>
    /// windows of <paramref name="window"/> steps (the check is made before the next batch is handed out).
    /// </summary>
    internal static IEnumerable<TokenBatch> Continued(IEnumerable<TokenBatch> batches, int step, int batch, int window)
    {
        var (seen, windows) = (0, 0L);
        foreach (var b in batches)
        {
            if (seen < batch)
            {
                (seen, windows) = (seen + 1, windows + b.Windows(window).Length);
                continue;
            }
            if (windows != step) break;
            yield return b;
        }
        if (seen < batch)
            throw new ArgumentException($"expected the batches to reach the checkpoint's batch {batch} but they end after {seen}", "batches");
        if (windows != step)
            throw new ArgumentException(windows > step
                ? $"expected the checkpoint to be the end of a batch but its {step} updates end within batch {batch} (whose windows end at update {windows})"
                : $"expected the first {batch} batches to hold the checkpoint's {step} updates but their windows number {windows}", "from");
    }
}
