using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>The softmax read-out ŷ = softmax(Wy·a + by) shared by every cell, and its cross-entropy loss.</summary>
public static class Softmax
{
    /// <summary>
    /// Softmax of each column. Each column is shifted by its own maximum, so columns never underflow to 0/0 and
    /// logits of ±1e4 stay finite.
    /// </summary>
    /// <param name="logits">n_y×m logits, one column per example.</param>
    /// <returns>n_y×m probabilities; each column is positive and sums to 1.</returns>
    [Pure]
    public static Matrix<double> Columns(Matrix<double> logits)
    {
        ArgumentNullException.ThrowIfNull(logits);
        Shapes.ThrowIfAny(Shapes.All(Shapes.Matrix(nameof(logits), nameof(logits), logits, logits.RowCount, logits.ColumnCount, "n_y×m")));
        return Ops.SoftmaxColumns(logits);
    }

    /// <summary>
    /// The losses −log softmax(logits)[labels[j], j] of each column, computed with a per-column log-sum-exp, and
    /// their gradient with respect to the logits, softmax(logits) − onehot(labels).
    /// </summary>
    /// <param name="logits">n_y×m logits.</param>
    /// <param name="labels">m class indices in [0, n_y).</param>
    [Pure]
    internal static (double[] Losses, Matrix<double> DLogits) CrossEntropy(Matrix<double> logits, ImmutableArray<int> labels)
    {
        var (rows, values) = (logits.RowCount, logits.ToColumnMajorArray());
        var losses = new double[labels.Length];
        for (var j = 0; j < labels.Length; j++) losses[j] = CrossEntropyColumn(values.AsSpan(j * rows, rows), labels[j]);
        return (losses, Matrix<double>.Build.Dense(rows, labels.Length, values));
    }

    /// <summary>
    /// The loss −log softmax(o)[label] = log Σ e^(o − max) − (o[label] − max) of one column o of logits, which is
    /// overwritten by the gradient softmax(o) − onehot(label). Both terms are computed from the logits shifted by their
    /// maximum, so the loss keeps its digits at any scale (four equal logits of 1e16 cost ln 4, as four zeros do). A
    /// column whose logits are not all finite (an overflowed read-out) has no defined loss: it throws.
    /// </summary>
    /// <param name="logits">n_y logits; on return, their gradient.</param>
    /// <param name="label">The class, in [0, n_y).</param>
    internal static double CrossEntropyColumn(Span<double> logits, int label)
    {
        foreach (var value in logits)
            if (!double.IsFinite(value))
                throw new NonFiniteException($"expected the read-out's logits Wy·h + by to be finite but got {value}: the read-out or the states have grown too large for double precision");
        var logit = logits[label];
        var (max, logSum) = Elementwise.ShiftedSoftmaxColumn(Elementwise.BestPath, logits, logits);
        logits[label] -= 1.0;
        return logSum - (logit - max);
    }

    // ---- the read-out on blocks, for the sequence kernels: the same arithmetic, column by column ----

    /// <summary>y = softmax(wy·a + by) for every column of the block a (n_a × columns), into y (n_y × columns).</summary>
    /// <summary>
    /// ŷ⟨t⟩ = softmax(wy·a⟨t⟩ + by) for every state, in fresh matrices, computed when first read (once, thread-safe):
    /// the predictions of a forward pass, with the bits of <see cref="Predict(Block, Block, Block, Block)"/> step by step.
    /// </summary>
    internal static Lazy<ImmutableArray<Matrix<double>>> PredictionsWhenRead(Matrix<double> wy, Vector<double> by, ImmutableArray<Matrix<double>> states) =>
        new(() =>
        {
            var (w, b) = (Block.Of(wy), Block.Of(by));
            return [.. states.Select(a =>
            {
                var (y, block) = Block.FreshUninitialized(wy.RowCount, a.ColumnCount);
                Predict(w, b, Block.Of(a), block);
                return y;
            })];
        });

    internal static void Predict(Block wy, Block by, Block a, Block y)
    {
        Ops.Multiply(y, wy, false, a, false);
        Elementwise.AddToColumns(y.Span, by.Span);
        var ny = wy.Rows;
        for (var j = 0; j < y.Columns; j++) Elementwise.SoftmaxColumn(y.Span.Slice(j * ny, ny), y.Span.Slice(j * ny, ny));
    }

    /// <summary>
    /// The read-out's cross-entropy over a block of columns, the one form every loss of the library goes through:
    /// o = wy·h + by into <paramref name="dO"/>; for each column k whose <paramref name="label"/>(k) is a class,
    /// ℓ = log Σ e^o − o[label] goes to <paramref name="loss"/>(k, ℓ) and dO = softmax(o) − onehot(label); a column
    /// labelled <see cref="Ragged.Ignored"/> costs nothing (dO = 0, no loss reported); then <paramref name="dH"/> = wyᵀ·dO.
    /// </summary>
    internal static void CrossEntropy(Block wy, Block by, Block h, Block dO, Block dH, Func<int, int> label, Action<int, double> loss,
        Precision precision = Precision.Double, Team? team = null)
    {
        Ops.Multiply(team, precision, dO, wy, false, h, false);                                 // o = wy·h
        var ny = wy.Rows;
        void Columns(int k0, int k1)
        {
            for (var k = k0; k < k1; k++)
            {
                var column = dO.Span.Slice(k * ny, ny);
                System.Numerics.Tensors.TensorPrimitives.Add(column, by.Span, column);          //     + by
                var y = label(k);
                if (y == Ragged.Ignored) column.Clear();
                else loss(k, CrossEntropyColumn(column, y));                                    // ℓ, and dO in place
            }
        }
        if (team is null || dO.Columns < team.Size) Columns(0, dO.Columns);
        else team.Run(i => Columns(dO.Columns * i / team.Size, dO.Columns * (i + 1) / team.Size));  // a column's bits do not depend on its band
        Ops.Multiply(team, precision, dH, wy, true, dO, false);                                 // dh = wyᵀ·dO
    }

    /// <summary>dWy += dO·aᵀ and dby += Σ_columns dO over a block of columns.</summary>
    internal static void AccumulateGradients(Block dO, Block a, Block dWy, Block dBy, Precision precision = Precision.Double, Team? team = null)
    {
        Ops.Multiply(team, precision, dWy, dO, false, a, true, beta: 1);
        Ops.AddColumnsTo(team, dO, dBy);
    }

    /// <summary>ŷ = softmax(wy·a + by).</summary>
    /// <param name="wy">n_y×n_a.</param>
    /// <param name="by">n_y.</param>
    /// <param name="a">n_a×m hidden state.</param>
    [Pure]
    internal static Matrix<double> Predict(Matrix<double> wy, Vector<double> by, Matrix<double> a) =>
        Ops.SoftmaxColumns(Ops.Affine(wy, a, by));

    /// <summary>
    /// The summed cross-entropy of the read-out over all steps (a compensated sum, accurate to the last bit of the
    /// total whatever the number of terms) and its gradients: dWy = Σ do·aᵀ, dby = Σ_columns do,
    /// and the gradient Wyᵀ·do that each state a⟨t⟩ receives from the head.
    /// </summary>
    /// <param name="wy">n_y×n_a.</param>
    /// <param name="by">n_y.</param>
    /// <param name="states">a⟨1⟩..a⟨T⟩, each n_a×m.</param>
    /// <param name="labels">labels[t][j] ∈ [0, n_y), or <see cref="Ragged.Ignored"/> for an example that costs nothing.</param>
    [Pure]
    internal static HeadGradient LossAndGradients(
        Matrix<double> wy, Vector<double> by, ImmutableArray<Matrix<double>> states, ImmutableArray<ImmutableArray<int>> labels)
    {
        var (losses, dWy, dBy, dStates) = StackDriver.ReadOut(Block.Of(wy), Block.Of(by), states, default, (t, j) => labels[t][j], Summation.DefaultThreads);
        return new(Ops.CompensatedSum(losses), dWy.ToMatrix(), dBy.ToVector(), dStates);
    }
}

/// <summary>The loss of a softmax read-out over a sequence and its gradients.</summary>
/// <param name="Loss">Σ_t Σ_j −log ŷ⟨t⟩[label, j].</param>
/// <param name="DWy">n_y×n_a.</param>
/// <param name="DBy">n_y.</param>
/// <param name="DStates">The gradient each a⟨t⟩ receives from the head, each n_a×m.</param>
internal sealed record HeadGradient(double Loss, Matrix<double> DWy, Vector<double> DBy, ImmutableArray<Matrix<double>> DStates);
