using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Testing;

/// <summary>
/// Inputs seen as named leaves (<c>xs[0]</c>, …, <c>a0</c>), so that gradients with respect to a sequence and an
/// initial state are checked by the same <see cref="GradCheck.Leaves"/> as parameter gradients.
/// </summary>
public static class SequenceLeaves
{
    /// <summary>One leaf per matrix, named <c>name[t]</c>.</summary>
    /// <param name="name">Name of the sequence.</param>
    /// <param name="xs">The matrices.</param>
    public static ImmutableArray<Leaf> Of(string name, ImmutableArray<Matrix<double>> xs) =>
        [.. xs.Select((x, t) => Leaf.Of($"{name}[{t}]", x))];

    /// <summary>The matrices of <paramref name="count"/> consecutive leaves starting at <paramref name="start"/>.</summary>
    /// <param name="leaves">Leaves produced by <see cref="Of"/> (possibly concatenated with others).</param>
    /// <param name="start">Index of the first leaf.</param>
    /// <param name="count">Number of leaves.</param>
    public static ImmutableArray<Matrix<double>> Read(ImmutableArray<Leaf> leaves, int start, int count) =>
        [.. leaves.Skip(start).Take(count).Select(l => l.ToMatrix())];
}
