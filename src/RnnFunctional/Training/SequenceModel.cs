using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>The summed loss of a window of a batch, its gradients and the state the window ends in.</summary>
/// <typeparam name="TParams">The parameter record; gradients have the same type.</typeparam>
/// <typeparam name="TState">The model's recurrent state.</typeparam>
/// <param name="Loss">Σ over the real (unpadded) target tokens of −log ŷ[target].</param>
/// <param name="Tokens">Number of real target tokens.</param>
/// <param name="Gradients">The gradient of <paramref name="Loss"/> with respect to every parameter.</param>
/// <param name="Final">
/// The state after the window's last step, to carry into the next window. A column whose item ends before the window
/// does has no further target, so its state there is read by nothing: <see cref="LanguageModel.Stack"/> (a ragged
/// scan) freezes it at the item's end, <see cref="LanguageModel.FromCell"/> runs it on over the padding.
/// </param>
public sealed record SequenceLoss<TParams, TState>(double Loss, int Tokens, TParams Gradients, TState Final);

/// <summary>One step of a model: the next state and the logits of the next token.</summary>
/// <typeparam name="TState">The model's recurrent state.</typeparam>
/// <param name="State">The state after the step.</param>
/// <param name="Logits">n_y×m logits of the next token of each column.</param>
public sealed record SequenceStep<TState>(TState State, Matrix<double> Logits);

/// <summary>
/// A next-token model as a record of pure functions, the one abstraction that training, evaluation and sampling are
/// written against: any cell, stack or composition plugs in by providing these three functions.
/// </summary>
/// <typeparam name="TParams">The parameter record.</typeparam>
/// <typeparam name="TState">The recurrent state threaded through time (a⟨t⟩; a⟨t⟩ and c⟨t⟩; one per layer…).</typeparam>
/// <param name="VocabularySize">V: tokens are in [0, V) and logits have V rows.</param>
/// <param name="InitialState">(parameters, batch size m) → the state before the first step (zeros).</param>
/// <param name="Step">(parameters, state, m input tokens) → next state and the n_y×m logits of the next tokens.</param>
/// <param name="LossAndGradients">
/// (parameters, batch window, state before the window) → summed cross-entropy over the real targets, its exact
/// gradients (back-propagation through the window only) and the state after the window.
/// </param>
public sealed record SequenceModel<TParams, TState>(
    int VocabularySize,
    Func<TParams, int, TState> InitialState,
    Func<TParams, TState, ImmutableArray<int>, SequenceStep<TState>> Step,
    Func<TParams, TokenBatch, TState, SequenceLoss<TParams, TState>> LossAndGradients)
    where TParams : IParameterTree<TParams>
{
    /// <summary>
    /// Optional: (parameters, batch) → for each step of the batch, from the initial state, the summed cross-entropy of
    /// its real targets — the numbers <see cref="LanguageModel.Evaluate"/> sums, computed over the whole batch at once
    /// with the same bits as stepping through <see cref="Step"/>. Null: <see cref="LanguageModel.Evaluate"/> steps.
    /// </summary>
    public Func<TParams, TokenBatch, double[]>? Score { get; init; }

    /// <summary>
    /// The training loss of a model with dropout: (parameters, window, state before the window, random state) → the
    /// loss and exact gradients of the network under masks drawn from the random state (held fixed for the gradients);
    /// null for a model without dropout, whose training uses <see cref="LossAndGradients"/>. Evaluation and sampling
    /// use <see cref="Step"/>, which never drops.
    /// </summary>
    public Func<TParams, TokenBatch, TState, RandomState, SequenceLoss<TParams, TState>>? DropoutLoss { get; init; }
}

/// <summary>Builds <see cref="SequenceModel{TParams,TState}"/> values from cells with a softmax read-out.</summary>
public static class LanguageModel
{
    /// <summary>
    /// A next-token model from any cell: one-hot inputs, the cell scanned by <see cref="Recurrence"/>, a softmax
    /// read-out ŷ⟨t⟩ = softmax(Wy·h⟨t⟩ + by) and the cross-entropy of the real targets only: a column's steps past its
    /// length run on the padding but add nothing to the loss, and, since a step reads only the past, nothing to the
    /// gradients (the same as the RNN's sequence kernel).
    /// </summary>
    /// <param name="cell">The cell; its input size must be V.</param>
    /// <param name="vocabularySize">V ≥ 1.</param>
    /// <param name="initialCarry">(parameters, m) → the zero carry.</param>
    /// <param name="readOut">The read-out (Wy V×n_a, by V) inside the parameters.</param>
    /// <param name="withReadOutGradients">Gradients of the cell (read-out entries zero) with dWy and dby put in.</param>
    [Pure]
    public static SequenceModel<TParams, TCarry> FromCell<TParams, TCarry, TCache>(
        Cell<TParams, TCarry, TCache> cell,
        int vocabularySize,
        Func<TParams, int, TCarry> initialCarry,
        Func<TParams, (Matrix<double> Wy, Vector<double> By)> readOut,
        Func<TParams, Matrix<double>, Vector<double>, TParams> withReadOutGradients)
        where TParams : IParameterTree<TParams>
    {
        ArgumentNullException.ThrowIfNull(cell);
        if (vocabularySize < 1) throw new ArgumentOutOfRangeException(nameof(vocabularySize), vocabularySize, $"expected vocabularySize to be at least 1 but got {vocabularySize}");
        var v = vocabularySize;

        SequenceStep<TCarry> Step(TParams p, TCarry carry, ImmutableArray<int> tokens)
        {
            RequireTokens(nameof(tokens), [tokens], v);
            var step = cell.Step(p, carry, OneHot(tokens, v));
            var (wy, by) = readOut(p);
            return new(step.Carry, Ops.Affine(wy, step.Output, by));
        }

        SequenceLoss<TParams, TCarry> Loss(TParams p, TokenBatch batch, TCarry init)
        {
            ArgumentNullException.ThrowIfNull(batch);
            RequireTokens(nameof(batch), batch.Inputs, v);
            RequireTokens(nameof(batch), batch.Targets, v);
            var xs = batch.Inputs.Select(tokens => OneHot(tokens, v)).ToImmutableArray();
            var scanned = Recurrence.Forward(cell, p, xs, init);
            var (wy, by) = readOut(p);
            var head = Head(wy, by, scanned.Outputs, batch);                   // padding steps add nothing to the loss
            var dFinal = cell.Join([.. cell.Split(scanned.Final).Select(c => Matrix<double>.Build.Dense(c.RowCount, c.ColumnCount))]);
            var back = Recurrence.Backward(cell, Tree.ZerosLike(p), scanned.Caches, head.DOutputs, dFinal);
            var final = scanned.Final;
            return new(head.Loss, batch.Tokens, withReadOutGradients(back.Gradients, head.DWy, head.DBy), final);
        }

        return new(v, initialCarry, Step, Loss);
    }

    /// <summary>The vanilla RNN as a next-token model over V tokens (its n_x and n_y must both be V).</summary>
    /// <param name="vocabularySize">V ≥ 1.</param>
    [Pure]
    public static SequenceModel<RnnParameters, Matrix<double>> Rnn(int vocabularySize) =>
        FromCell(RnnFunctional.Rnn.Cell, vocabularySize,
            (p, m) => Matrix<double>.Build.Dense(p.HiddenSize, m),
            p => (p.Wya, p.By),
            (g, dWy, dBy) => g with { Wya = dWy, By = dBy })
        with
        {
            // The same loss as the generic fold, on the RNN's sequence kernel.
            LossAndGradients = (p, batch, init) =>
            {
                var xs = OneHotInputs(batch, vocabularySize);
                var (loss, gradients, final) = RnnFunctional.Rnn.NextTokenLossKernel(p, xs, init, batch.Targets, batch.Lengths, RnnFunctional.Rnn.DefaultThreads);
                return new(loss, batch.Tokens, gradients, final);
            },
            Score = (p, batch) =>                                               // evaluation: the whole batch on the kernel, the bits of stepping
            {
                var xs = OneHotInputs(batch, vocabularySize);
                return Scores(p.Wya, p.By, RnnFunctional.Rnn.ForwardKernel(p, xs, Zero(p.HiddenSize, batch.Size), RnnFunctional.Rnn.DefaultThreads).States, batch);
            },
        };

    /// <summary>The LSTM as a next-token model over V tokens (its n_x and n_y must both be V); the state is (a⟨t⟩, c⟨t⟩).</summary>
    /// <param name="vocabularySize">V ≥ 1.</param>
    [Pure]
    public static SequenceModel<LstmParameters, LstmState> Lstm(int vocabularySize) =>
        FromCell(RnnFunctional.Lstm.Cell, vocabularySize,
            (p, m) => new LstmState(Matrix<double>.Build.Dense(p.HiddenSize, m), Matrix<double>.Build.Dense(p.HiddenSize, m)),
            p => (p.Wy, p.By),
            (g, dWy, dBy) => g with { Wy = dWy, By = dBy })
        with
        {
            // The same loss as the generic fold, on the LSTM's sequence kernel.
            LossAndGradients = (p, batch, init) =>
            {
                var xs = OneHotInputs(batch, vocabularySize);
                var (loss, gradients, final) = RnnFunctional.Lstm.NextTokenLossKernel(p, xs, init, batch.Targets, batch.Lengths, RnnFunctional.Rnn.DefaultThreads);
                return new(loss, batch.Tokens, gradients, final);
            },
            Score = (p, batch) =>                                               // evaluation: the whole batch on the kernel, the bits of stepping
            {
                var xs = OneHotInputs(batch, vocabularySize);
                return Scores(p.Wy, p.By, RnnFunctional.Lstm.ForwardKernel(p, xs, Zero(p.HiddenSize, batch.Size), Zero(p.HiddenSize, batch.Size), RnnFunctional.Rnn.DefaultThreads).States, batch);
            },
        };

    /// <summary>The GRU as a next-token model over V tokens (its n_x and n_y must both be V).</summary>
    /// <param name="vocabularySize">V ≥ 1.</param>
    [Pure]
    public static SequenceModel<GruParameters, Matrix<double>> Gru(int vocabularySize) =>
        FromCell(RnnFunctional.Gru.Cell, vocabularySize,
            (p, m) => Matrix<double>.Build.Dense(p.HiddenSize, m),
            p => (p.Wy, p.By),
            (g, dWy, dBy) => g with { Wy = dWy, By = dBy })
        with
        {
            // The same loss as the generic fold, on the GRU's sequence kernel.
            LossAndGradients = (p, batch, init) =>
            {
                var xs = OneHotInputs(batch, vocabularySize);
                var (loss, gradients, final) = RnnFunctional.Gru.NextTokenLossKernel(p, xs, init, batch.Targets, batch.Lengths, RnnFunctional.Rnn.DefaultThreads);
                return new(loss, batch.Tokens, gradients, final);
            },
            Score = (p, batch) =>                                               // evaluation: the whole batch on the kernel, the bits of stepping
            {
                var xs = OneHotInputs(batch, vocabularySize);
                return Scores(p.Wy, p.By, RnnFunctional.Gru.ForwardKernel(p, xs, Zero(p.HiddenSize, batch.Size), RnnFunctional.Rnn.DefaultThreads).States, batch);
            },
        };

    /// <summary>n×m zeros: the initial state of an evaluation.</summary>
    private static Matrix<double> Zero(int rows, int columns) => Matrix<double>.Build.Dense(rows, columns);

    /// <summary>
    /// For each step, the summed cross-entropy of the batch's real targets under the read-out of the states h⟨t⟩ (every
    /// column run over every step): what <see cref="LanguageModel.Evaluate"/> sums when it steps, with the same bits.
    /// </summary>
    private static double[] Scores(Matrix<double> wy, Vector<double> by, ImmutableArray<Matrix<double>> states, TokenBatch batch) =>
        [.. states.Select((h, t) => Losses.CrossEntropyKernel(Ops.Affine(wy, h, by), batch.Targets[t], batch.Mask(t), Reduction.Sum).Loss)];

    /// <summary>The batch's inputs as one-hot matrices, after checking every token of the batch.</summary>
    private static ImmutableArray<Matrix<double>> OneHotInputs(TokenBatch batch, int vocabularySize)
    {
        ArgumentNullException.ThrowIfNull(batch);
        RequireTokens(nameof(batch), batch.Inputs, vocabularySize);
        RequireTokens(nameof(batch), batch.Targets, vocabularySize);
        return [.. batch.Inputs.Select(tokens => OneHot(tokens, vocabularySize))];
    }

    /// <summary>
    /// A stack of recurrent layers (<see cref="StackParameters"/>: any cells, bidirectional layers excepted, since a
    /// next-token model reads only the past) with its softmax read-out, as a next-token model over V tokens: the bottom
    /// layer reads one-hot tokens (its input size must be V) and the read-out has V rows. The state is every layer's
    /// state, <c>state[l][k]</c> = part k of layer l's state (<see cref="Layer.StateRows"/>×m).
    /// </summary>
    /// <param name="vocabularySize">V ≥ 1.</param>
    /// <param name="dropout">
    /// Dropout rates of training (<see cref="Dropout"/>); omitted or all zero, none. With a rate above zero the model's
    /// <see cref="SequenceModel{TParams,TState}.DropoutLoss"/> draws a window's masks (<see cref="Dropout.Draw"/>, T×m of
    /// the window) from the random state it is given; <see cref="SequenceModel{TParams,TState}.LossAndGradients"/> and
    /// <see cref="SequenceModel{TParams,TState}.Step"/> (evaluation, sampling) never drop.
    /// </param>
    [Pure]
    public static SequenceModel<StackParameters, ImmutableArray<ImmutableArray<Matrix<double>>>> Stack(int vocabularySize, Dropout? dropout = null)
    {
        if (vocabularySize < 1) throw new ArgumentOutOfRangeException(nameof(vocabularySize), vocabularySize, $"expected vocabularySize to be at least 1 but got {vocabularySize}");
        Shapes.ThrowIfAny(dropout is null ? [] : dropout.Validate().Match(_ => Array.Empty<Problem>(),
            errors => [.. errors.Select(e => new Problem(nameof(dropout), e.Message))]));
        var v = vocabularySize;

        static ImmutableArray<ImmutableArray<Matrix<double>>> Zeros(StackParameters p, int m) =>
            [.. p.Layers.Select(layer => layer.StateRows.Select(rows => Matrix<double>.Build.Dense(rows, m)).ToImmutableArray())];

        SequenceStep<ImmutableArray<ImmutableArray<Matrix<double>>>> Step(StackParameters p, ImmutableArray<ImmutableArray<Matrix<double>>> state, ImmutableArray<int> tokens)
        {
            RequireTokens(nameof(tokens), [tokens], v);
            var forward = RnnFunctional.Stack.Forward(p, [OneHot(tokens, v)], null, state);
            return new(forward.Final, Ops.Affine(p.Wy, forward.Top[0], p.By));
        }

        SequenceLoss<StackParameters, ImmutableArray<ImmutableArray<Matrix<double>>>> Loss(StackParameters p, TokenBatch batch, ImmutableArray<ImmutableArray<Matrix<double>>> init) =>
            MaskedLoss(p, batch, init, null);

        SequenceLoss<StackParameters, ImmutableArray<ImmutableArray<Matrix<double>>>> DropoutLoss(StackParameters p, TokenBatch batch,
            ImmutableArray<ImmutableArray<Matrix<double>>> init, RandomState random)
        {
            ArgumentNullException.ThrowIfNull(batch);
            return MaskedLoss(p, batch, init, dropout!.Draw(p, batch.Steps, batch.Size, random).Mask);
        }

        SequenceLoss<StackParameters, ImmutableArray<ImmutableArray<Matrix<double>>>> MaskedLoss(StackParameters p, TokenBatch batch,
            ImmutableArray<ImmutableArray<Matrix<double>>> init, DropoutMask? mask)
        {
            ArgumentNullException.ThrowIfNull(batch);
            RequireTokens(nameof(batch), batch.Inputs, v);
            RequireTokens(nameof(batch), batch.Targets, v);
            var xs = batch.Inputs.Select(tokens => OneHot(tokens, v)).ToImmutableArray();
            if (RnnFunctional.Stack.CheckedOnDriver(p, xs, Running(batch), init, (t, j) => t < batch.Lengths[j] ? batch.Targets[t][j] : Ragged.Ignored, mask) is { } fused)
                return new SequenceLoss<StackParameters, ImmutableArray<ImmutableArray<Matrix<double>>>>(Ops.SumPerStep(fused.Losses, batch.Size),
                    batch.Tokens, fused.Gradients, [.. fused.Final.Zip(init, (f, i) => KeepStarted(batch, f, i))]);
            return RnnFunctional.Stack.Scoped(p, xs, Running(batch), init, forward =>
            {
                var head = Head(p.Wy, p.By, RnnFunctional.Stack.Masked(forward.Top, forward.Dropout.ReadOut), batch);
                var back = RnnFunctional.Stack.Backward(forward, RnnFunctional.Stack.Masked(head.DOutputs, forward.Dropout.ReadOut));
                var final = forward.Final.Zip(init, (f, i) => KeepStarted(batch, f, i)).ToImmutableArray();
                return new SequenceLoss<StackParameters, ImmutableArray<ImmutableArray<Matrix<double>>>>(
                    head.Loss, batch.Tokens, back.Gradients with { Wy = head.DWy, By = head.DBy }, final);
            }, mask);
        }

        // Evaluation runs the whole batch through the stack at once (the weights are laid out once, not per step);
        // every column runs over the padding as the step-by-step evaluation does, and the padding's losses are masked.
        double[] Score(StackParameters p, TokenBatch batch)
        {
            ArgumentNullException.ThrowIfNull(batch);
            RequireTokens(nameof(batch), batch.Inputs, v);
            RequireTokens(nameof(batch), batch.Targets, v);
            var xs = batch.Inputs.Select(tokens => OneHot(tokens, v)).ToImmutableArray();
            return RnnFunctional.Stack.Top(p, xs, Zeros(p, batch.Size), top => Scores(p.Wy, p.By, top, batch));
        }

        return new(v, Zeros, Step, Loss) { Score = Score, DropoutLoss = dropout is null || dropout.IsNone ? null : DropoutLoss };
    }

    /// <summary>
    /// The lengths handed to a ragged scan: the batch's own, with a column that has no step in this window (an item
    /// that ended in an earlier window) run for one step, whose loss is masked and whose state is then put back.
    /// </summary>
    private static ImmutableArray<int> Running(TokenBatch batch) => [.. batch.Lengths.Select(n => Math.Max(1, n))];

    /// <summary>Each part of the final state, with the columns that have no step in this window taken from the initial state.</summary>
    private static ImmutableArray<Matrix<double>> KeepStarted(TokenBatch batch, ImmutableArray<Matrix<double>> final, ImmutableArray<Matrix<double>> init)
    {
        if (batch.Lengths.All(n => n > 0)) return final;
        return [.. final.Zip(init, (f, i) =>
        {
            var kept = f.Clone();
            for (var j = 0; j < batch.Size; j++)
                if (batch.Lengths[j] == 0) kept.SetColumn(j, i.Column(j));
            return kept;
        })];
    }

    /// <summary>
    /// The softmax read-out's masked cross-entropy over a batch's real targets (the stack's read-out, <see cref="StackDriver.ReadOut(Block, Block, ImmutableArray{Matrix{double}}, ImmutableArray{int}, Func{int, int, int}, int)"/>):
    /// loss = Σ_t Σ_{j running} −log softmax(Wy·h⟨t⟩ + by)[y, j], summed per step then over the steps as
    /// <see cref="Evaluate"/> does, with dWy, dby and the gradient of each output.
    /// </summary>
    private static (double Loss, Matrix<double> DWy, Vector<double> DBy, ImmutableArray<Matrix<double>> DOutputs) Head(
        Matrix<double> wy, Vector<double> by, ImmutableArray<Matrix<double>> outputs, TokenBatch batch)
    {
        var (losses, dWy, dBy, dOutputs) = StackDriver.ReadOut(Block.Of(wy), Block.Of(by), outputs, default,
            (t, j) => t < batch.Lengths[j] ? batch.Targets[t][j] : Ragged.Ignored, Summation.DefaultThreads);
        return (Ops.SumPerStep(losses, batch.Size), dWy.ToMatrix(), dBy.ToVector(), dOutputs);
    }

    /// <summary>One-hot columns: a V×m matrix with a 1 at (tokens[j], j).</summary>
    /// <param name="tokens">m tokens in [0, V).</param>
    /// <param name="vocabularySize">V.</param>
    [Pure]
    public static Matrix<double> OneHot(ImmutableArray<int> tokens, int vocabularySize)
    {
        RequireTokens(nameof(tokens), [tokens], vocabularySize);
        var values = new double[vocabularySize * tokens.Length];
        for (var j = 0; j < tokens.Length; j++) values[j * vocabularySize + tokens[j]] = 1.0;
        return Matrix<double>.Build.Dense(vocabularySize, tokens.Length, values);
    }

    /// <summary>
    /// The summed cross-entropy of a model over batches and the number of real target tokens, forward only (each
    /// batch starts from the model's initial state). Loss / Tokens is the per-token loss in nats.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="p">Its parameters.</param>
    /// <param name="batches">The batches to score.</param>
    [Pure]
    public static (double Loss, int Tokens) Evaluate<TParams, TState>(SequenceModel<TParams, TState> model, TParams p, IEnumerable<TokenBatch> batches)
        where TParams : IParameterTree<TParams>
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batches);
        var (losses, tokens) = (new List<double>(), 0);
        foreach (var batch in batches)
        {
            if (model.Score is { } score)
            {
                ArgumentNullException.ThrowIfNull(batch);
                losses.AddRange(score(p, batch));
                tokens += batch.Tokens;
                continue;
            }
            var state = model.InitialState(p, batch.Size);
            for (var t = 0; t < batch.Steps; t++)
            {
                var step = model.Step(p, state, batch.Inputs[t]);
                var head = Losses.CrossEntropyKernel(step.Logits, batch.Targets[t], batch.Mask(t), Reduction.Sum);
                losses.Add(head.Loss);
                state = step.State;
            }
            tokens += batch.Tokens;
        }
        return (Ops.CompensatedSum(losses), tokens);
    }

    private static void RequireTokens(string argument, ImmutableArray<ImmutableArray<int>> rows, int v)
    {
        Shapes.ThrowIfDefault(rows, argument, "rows of tokens");
        for (var t = 0; t < rows.Length; t++) Shapes.ThrowIfDefault(rows[t], argument, "tokens");
        for (var t = 0; t < rows.Length; t++)
            for (var j = 0; j < rows[t].Length; j++)
                if ((uint)rows[t][j] >= (uint)v)
                    throw new ArgumentException($"expected tokens of {argument} to be in [0, V) = [0, {v}) but got {rows[t][j]} at step {t}, column {j}", argument);
    }
}
