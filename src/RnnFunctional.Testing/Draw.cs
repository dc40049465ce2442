using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Testing;

/// <summary>
/// Deterministic draws of matrices, sequences and labels from a seeded <see cref="Random"/>. Test cases are built
/// from a shape and a seed, so a case shrinks by shrinking its shape while the seed keeps the values reproducible.
/// </summary>
public static class Draw
{
    /// <summary>A rows×columns matrix with entries uniform in (−scale, scale).</summary>
    /// <param name="random">The generator (advanced by the draw).</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="columns">Number of columns.</param>
    /// <param name="scale">Half-width of the interval.</param>
    public static Matrix<double> Matrix(Random random, int rows, int columns, double scale = 1.0)
    {
        var values = new double[rows * columns];
        for (var k = 0; k < values.Length; k++) values[k] = (2 * random.NextDouble() - 1) * scale;
        return Matrix<double>.Build.Dense(rows, columns, values);
    }

    /// <summary>A vector of the given length with entries uniform in (−scale, scale).</summary>
    /// <param name="random">The generator.</param>
    /// <param name="length">Length.</param>
    /// <param name="scale">Half-width of the interval.</param>
    public static Vector<double> Vector(Random random, int length, double scale = 1.0) => Matrix(random, length, 1, scale).Column(0);

    /// <summary>T matrices of rows×columns.</summary>
    /// <param name="random">The generator.</param>
    /// <param name="steps">T.</param>
    /// <param name="rows">Rows of each matrix.</param>
    /// <param name="columns">Columns of each matrix (the batch size m).</param>
    /// <param name="scale">Half-width of the interval.</param>
    public static ImmutableArray<Matrix<double>> Sequence(Random random, int steps, int rows, int columns, double scale = 1.0) =>
        [.. Enumerable.Range(0, steps).Select(_ => Matrix(random, rows, columns, scale))];

    /// <summary>T rows of m class indices in [0, classes).</summary>
    /// <param name="random">The generator.</param>
    /// <param name="steps">T.</param>
    /// <param name="batch">m.</param>
    /// <param name="classes">n_y.</param>
    public static ImmutableArray<ImmutableArray<int>> Labels(Random random, int steps, int batch, int classes) =>
        [.. Enumerable.Range(0, steps).Select(_ => Enumerable.Range(0, batch).Select(_ => random.Next(classes)).ToImmutableArray())];

    /// <summary>A copy of a matrix's entries, for comparing a value before and after a call.</summary>
    /// <param name="m">Any matrix.</param>
    [Pure]
    public static double[] Snapshot(Matrix<double> m) => m.ToColumnMajorArray();
}
