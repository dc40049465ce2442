using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>How a loss combines its terms.</summary>
public enum Reduction
{
    /// <summary>The sum of the terms.</summary>
    Sum,

    /// <summary>The mean of the terms (over the counted ones when a mask is given).</summary>
    Mean,
}

/// <summary>A loss and its gradient with respect to the loss's input.</summary>
/// <param name="Loss">The reduced loss.</param>
/// <param name="Count">Number of terms that entered the loss (unmasked columns, or matrix entries).</param>
/// <param name="Gradient">d loss / d input, shaped like the input.</param>
public sealed record LossGradient(double Loss, int Count, Matrix<double> Gradient);

/// <summary>A loss over a sequence and its gradient with respect to every step's input.</summary>
/// <param name="Loss">The reduced loss.</param>
/// <param name="Count">Number of terms that entered the loss.</param>
/// <param name="Gradients">d loss / d input⟨t⟩ for every step, each shaped like the input.</param>
public sealed record SequenceLossGradient(double Loss, int Count, ImmutableArray<Matrix<double>> Gradients);

/// <summary>
/// Losses as pure functions returning the value and its exact gradient. Sums are compensated (Neumaier), so the
/// value is accurate to the last bit whatever the number of terms.
/// </summary>
public static class Losses
{
    /// <summary>
    /// Softmax cross-entropy of each column, −log softmax(logits)[labels[j], j], computed from the logits with a
    /// per-column log-sum-exp; gradient softmax(logits) − onehot(labels) (divided by the count for the mean).
    /// </summary>
    /// <param name="logits">n_y×m logits, one column per example, finite.</param>
    /// <param name="labels">m class indices in [0, n_y).</param>
    /// <param name="reduction">Sum or mean over the counted columns.</param>
    /// <param name="mask">
    /// Optional m flags: a column whose flag is false adds nothing to the loss and gets a zero gradient (padding of a
    /// ragged batch). Default: every column counts.
    /// </param>
    [Pure]
    public static LossGradient SoftmaxCrossEntropy(Matrix<double> logits, ImmutableArray<int> labels,
        Reduction reduction = Reduction.Sum, ImmutableArray<bool> mask = default)
    {
        var m = logits?.ColumnCount ?? 0;
        Shapes.ThrowIfAny(Shapes.All(
            Shapes.Matrix(nameof(logits), nameof(logits), logits, logits?.RowCount ?? 0, m, "n_y×m"),
            Shapes.Labels(nameof(labels), labels.IsDefault ? default : [labels], 1, m, logits?.RowCount ?? 0),
            MaskCheck(mask, m)));
        return CrossEntropyKernel(logits!, labels, mask, reduction);
    }

    /// <summary>
    /// Mean squared error of a regression sequence: Σ_t Σ (ŷ⟨t⟩ − y⟨t⟩)² (sum) or that sum divided by the number of
    /// entries (mean, as PyTorch's MSELoss); gradient 2(ŷ⟨t⟩ − y⟨t⟩) (divided by the count for the mean).
    /// </summary>
    /// <param name="predictions">ŷ⟨1⟩..ŷ⟨T⟩, T ≥ 1, each n_y×m.</param>
    /// <param name="targets">y⟨1⟩..y⟨T⟩, each n_y×m.</param>
    /// <param name="reduction">Sum or mean over all entries.</param>
    [Pure]
    public static SequenceLossGradient MeanSquaredError(ImmutableArray<Matrix<double>> predictions, ImmutableArray<Matrix<double>> targets,
        Reduction reduction = Reduction.Mean)
    {
        var (rows, columns) = !predictions.IsDefaultOrEmpty && predictions[0] is { } p0 ? (p0.RowCount, p0.ColumnCount) : (0, 0);
        Shapes.ThrowIfAny(Shapes.All(
            Shapes.Sequence(nameof(predictions), predictions, rows, columns, "n_y×m"),
            Shapes.Sequence(nameof(targets), targets, rows, columns, "n_y×m", predictions.IsDefault ? null : predictions.Length)));
        var count = predictions.Length * rows * columns;
        var scale = reduction == Reduction.Mean ? 1.0 / count : 1.0;
        var differences = predictions.Zip(targets, (p, y) => p - y).ToImmutableArray();
        var loss = Ops.CompensatedSum(differences.SelectMany(d => d.Enumerate().Select(v => v * v))) * scale;
        return new(loss, count, [.. differences.Select(d => d * (2 * scale))]);
    }

    /// <summary>Cross-entropy with arguments already checked; masked columns contribute nothing.</summary>
    internal static LossGradient CrossEntropyKernel(Matrix<double> logits, ImmutableArray<int> labels, ImmutableArray<bool> mask, Reduction reduction)
    {
        var (losses, dLogits) = Softmax.CrossEntropy(logits, labels);
        var count = 0;
        for (var j = 0; j < labels.Length; j++)
        {
            if (mask.IsDefault || mask[j]) { count++; continue; }
            losses[j] = 0;
            for (var i = 0; i < dLogits.RowCount; i++) dLogits[i, j] = 0;
        }
        var scale = reduction == Reduction.Mean && count > 0 ? 1.0 / count : 1.0;
        var loss = Ops.CompensatedSum(losses) * scale;
        return new(loss, count, scale == 1.0 ? dLogits : dLogits * scale);
    }

    private static IEnumerable<Problem> MaskCheck(ImmutableArray<bool> mask, int m)
    {
        if (!mask.IsDefault && mask.Length != m)
            yield return new(nameof(mask), $"expected mask to have one flag per column, m = {m}, but got {mask.Length}");
    }
}
