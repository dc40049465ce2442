using System.Collections.Immutable;
using System.Diagnostics;
using System.Diagnostics.Contracts;

namespace RnnFunctional.Distributed;

/// <summary>
/// Training whose every update cuts its window into a fixed number of pieces, computes the loss and gradients of each
/// piece with the model's own <see cref="SequenceModel{TParams,TState}.LossAndGradients"/>, sums them in the fixed
/// order of <see cref="PieceTree"/> (<see cref="Sum{T}"/>) and applies the optimizer: the single-process reference of the distributed run, which computes the same pieces and
/// sums them in the same order.
/// </summary>
public static class PieceTraining
{
    /// <summary>
    /// The columns of <paramref name="window"/> cut into <paramref name="count"/> pieces: P groups of contiguous
    /// columns, group k holding the columns [⌊k·m/P⌋, ⌊(k+1)·m/P⌋) with all T steps of the window, dealt to the
    /// pieces' positions by <see cref="PieceTree.Deal"/>, so that every node of the tree, and so every block a worker
    /// computes, holds groups from all over the window. A batch whose columns are sorted by length (as
    /// <see cref="Corpus"/> makes them) then gives the blocks of a step about the same work, where blocks of
    /// contiguous groups would give the last one the longest sequences. A piece with no column (P &gt; m) is null.
    /// The cut depends on m and P only.
    /// </summary>
    /// <param name="window">A window of a batch.</param>
    /// <param name="count">P ≥ 1.</param>
    [Pure]
    public static ImmutableArray<TokenBatch?> Cut(TokenBatch window, int count)
    {
        ArgumentNullException.ThrowIfNull(window);
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, $"expected the piece count to be at least 1 but got {count}");
        if (count == 1) return [window];
        var m = window.Size;
        var groups = PieceTree.Deal(count);
        return [.. groups.Select(k => Columns(window, (int)((long)k * m / count), (int)((long)(k + 1) * m / count)))];
    }

    /// <summary>Columns [start, end) of a batch as a batch of its own; null when the range is empty.</summary>
    private static TokenBatch? Columns(TokenBatch batch, int start, int end) =>
        end <= start
            ? null
            : new TokenBatch(
                [.. batch.Inputs.Select(row => row[start..end])],
                [.. batch.Targets.Select(row => row[start..end])],
                batch.Lengths[start..end]);

    /// <summary>
    /// The losses, token counts and gradients of the P pieces of a step summed in the fixed order of
    /// <see cref="PieceTree"/>: a balanced binary tree over the pieces' positions, each node the sum of its halves,
    /// left plus right, a piece with no column (null) left out. One piece is returned as it is (the sum does not
    /// start from zeros). Floating-point addition is not associative: the grouping is part of the result, and depends
    /// on P alone.
    /// </summary>
    /// <param name="pieces">The pieces' results in piece order, one per piece of the step, null for a piece with no column; at least one not null.</param>
    [Pure]
    public static (double Loss, int Tokens, T Gradients) Sum<T>(IReadOnlyList<(double Loss, int Tokens, T Gradients)?> pieces)
        where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(pieces);
        if (pieces.Count == 0) throw new ArgumentException("expected at least one piece but got none", nameof(pieces));
        var sum = PieceTree.Reduce(new PieceBlock(0, pieces.Count), static node => node.Count == 1,
            node => pieces[node.Start] is { } piece ? new Node<T>(piece.Loss, piece.Tokens, piece.Gradients) : null,
            static (left, right) => new Node<T>(left.Loss + right.Loss, left.Tokens + right.Tokens, Tree.Add(left.Gradients, right.Gradients)));
        return sum is null
            ? throw new ArgumentException($"expected at least one of the {pieces.Count} pieces to have a column but got none", nameof(pieces))
            : (sum.Loss, sum.Tokens, sum.Gradients);
    }

    /// <summary>A node's sum in <see cref="Sum{T}"/>.</summary>
    private sealed record Node<T>(double Loss, int Tokens, T Gradients);

    /// <summary>
    /// <see cref="Training.Update"/> applied to summed pieces: the model whose loss is <paramref name="summed"/>
    /// handed to <see cref="Training.Update"/>, which divides by the tokens, clips and calls the optimizer exactly as
    /// for an undivided window. The distributed coordinator applies its sums with this function too.
    /// </summary>
    /// <param name="optimizer">The optimizer.</param>
    /// <param name="clipping">Gradient clipping.</param>
    /// <param name="state">Parameters and optimizer state before the update.</param>
    /// <param name="summed">The summed loss, tokens and gradients of the pieces (<see cref="Sum{T}"/>).</param>
    /// <returns>The state after the update (the same state when the loss is not finite), the mean loss and the gradient norm.</returns>
    [Pure]
    public static (TrainingState<T> State, double Loss, double GradientNorm) Apply<T>(
        Optimizer<T> optimizer, Clipping clipping, TrainingState<T> state, (double Loss, int Tokens, T Gradients) summed)
        where T : IParameterTree<T>
    {
        var summedModel = new SequenceModel<T, int>(1, (_, _) => 0, (_, _, _) => throw new NotSupportedException("a summed model has no step"),
            (_, _, _) => new SequenceLoss<T, int>(summed.Loss, summed.Tokens, summed.Gradients, 0));
        var (next, _, loss, _, norm) = Training.Update(summedModel, optimizer, clipping, state, Placeholder, 0);
        return (next, loss, norm);
    }

    /// <summary>The window handed to <see cref="Training.Update"/> by <see cref="Apply{T}"/>, whose model does not read it.</summary>
    private static readonly TokenBatch Placeholder = new([], [], [0]);

    /// <summary>
    /// One update on one window cut into <paramref name="pieces"/> pieces: each piece's loss and gradients from the
    /// model (starting from that piece's carry), summed by <see cref="Sum{T}"/> and applied (<see cref="Apply{T}"/>).
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="optimizer">The optimizer.</param>
    /// <param name="clipping">Gradient clipping.</param>
    /// <param name="pieces">P ≥ 1, the number of pieces.</param>
    /// <param name="state">Parameters and optimizer state before the update.</param>
    /// <param name="window">The window of a batch.</param>
    /// <param name="carries">The recurrent state of each piece before the window (null for a piece with no column).</param>
    /// <returns>The state after the update, each piece's state after the window, the mean loss, the tokens and the gradient norm.</returns>
    [Pure]
    public static (TrainingState<T> State, ImmutableArray<TState?> Carries, double Loss, int Tokens, double GradientNorm) Update<T, TState>(
        SequenceModel<T, TState> model, Optimizer<T> optimizer, Clipping clipping, int pieces, TrainingState<T> state, TokenBatch window,
        ImmutableArray<TState?> carries)
        where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(state);
        var cut = Cut(window, pieces);
        if (carries.IsDefault || carries.Length != cut.Length)
            throw new ArgumentException($"expected one carry per piece ({cut.Length}) but got {(carries.IsDefault ? "none" : carries.Length)}", nameof(carries));
        var results = cut.Select((piece, i) => piece is null ? null : model.LossAndGradients(state.Parameters, piece, carries[i]!)).ToImmutableArray();
        if (results.All(r => r is null)) throw new ArgumentException("expected a window with at least one column but got none", nameof(window));
        var summed = Sum([.. results.Select(r => r is null ? ((double, int, T)?)null : (r.Loss, r.Tokens, r.Gradients))]);
        var (next, loss, norm) = Apply(optimizer, clipping, state, summed);
        return (next, [.. results.Select(r => r is null ? default : r.Final)], loss, summed.Tokens, norm);
    }

    /// <summary>
    /// <see cref="Training.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, T, IEnumerable{TokenBatch})"/> with every update cut into <paramref name="pieces"/> pieces
    /// (<see cref="Update{T,TState}"/>): the same lazy history, each piece carrying its own recurrent state from window
    /// to window within a batch and starting each batch from the model's initial state.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="optimizer">The optimizer.</param>
    /// <param name="options">Window and clipping.</param>
    /// <param name="pieces">P ≥ 1, the number of pieces of every update.</param>
    /// <param name="initial">Initial parameters (left untouched).</param>
    /// <param name="batches">The mini-batches.</param>
    [Pure]
    public static IEnumerable<TrainingStep<T>> Fold<T, TState>(SequenceModel<T, TState> model, Optimizer<T> optimizer,
        TrainingOptions options, int pieces, T initial, IEnumerable<TokenBatch> batches)
        where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(initial);
        return Fold(model, optimizer, options, pieces, TrainingCheckpoint<T>.Start(optimizer, initial), batches);
    }

    /// <summary>
    /// <see cref="Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, int, T, IEnumerable{TokenBatch})"/>
    /// continued from a checkpoint at the end of a batch, as <see cref="Training.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, TrainingCheckpoint{T}, IEnumerable{TokenBatch})"/>
    /// continues <see cref="Training.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, T, IEnumerable{TokenBatch})"/>:
    /// <paramref name="batches"/> from the run's first, the first <c>from.Batch</c> passed over, the steps bitwise those
    /// of the uninterrupted run.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="optimizer">The optimizer.</param>
    /// <param name="options">Window and clipping.</param>
    /// <param name="pieces">P ≥ 1, the number of pieces of every update.</param>
    /// <param name="from">The checkpoint.</param>
    /// <param name="batches">The run's mini-batches from its first.</param>
    /// <exception cref="ArgumentException">Raised while enumerating, before any update, for a checkpoint that is not the end of one of the batches.</exception>
    [Pure]
    public static IEnumerable<TrainingStep<T>> Fold<T, TState>(SequenceModel<T, TState> model, Optimizer<T> optimizer,
        TrainingOptions options, int pieces, TrainingCheckpoint<T> from, IEnumerable<TokenBatch> batches)
        where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(options);
        Training.RequireCheckpoint(from);
        ArgumentNullException.ThrowIfNull(batches);
        if (pieces < 1) throw new ArgumentOutOfRangeException(nameof(pieces), pieces, $"expected the piece count to be at least 1 but got {pieces}");
        return Iterate();

        IEnumerable<TrainingStep<T>> Iterate()
        {
            var clock = Stopwatch.StartNew();
            var state = from.State;
            var (step, batchNumber) = (from.Step, from.Batch);
            foreach (var batch in Training.Continued(batches, from.Step, from.Batch, options.Window))
            {
                batchNumber++;
                var p = state.Parameters;
                var carries = Cut(batch, pieces).Select(piece => piece is null ? default : model.InitialState(p, piece.Size)).ToImmutableArray();
                foreach (var window in batch.Windows(options.Window))
                {
                    (state, carries, var loss, var tokens, var norm) = Update(model, optimizer, options.Clipping, pieces, state, window, carries);
                    var entry = new TrainingStep<T>(++step, batchNumber, state, loss, tokens, norm, clock.Elapsed);
                    yield return entry;
                    if (!entry.IsFinite) yield break;
                }
            }
        }
    }
}
