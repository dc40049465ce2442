using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>The comparisons of the testing package: bits for Same, τ·max(1, min(|a|, |b|)) for Close, and the entry named.</summary>
public sealed class CompareTests
{
    private static Matrix<double> M(params double[] columnMajor) => Matrix<double>.Build.Dense(2, columnMajor.Length / 2, columnMajor);

    [Fact]
    public void SameComparesBitPatterns()
    {
        Assert.True(Compare.Same(M(1, 2, 3, 4), M(1, 2, 3, 4)));
        Assert.False(Compare.Same(M(0.0, 1), M(-0.0, 1)));
        Assert.True(Compare.Same(double.NaN, double.NaN));
        Assert.False(Compare.Same(double.NaN, BitConverter.Int64BitsToDouble(BitConverter.DoubleToInt64Bits(double.NaN) ^ 1)));
        Assert.False(Compare.Same(M(1, 2, 3, 4), M(1, 2, 3, Math.BitIncrement(4))));
        Assert.False(Compare.Same(M(1, 2, 3, 4), Matrix<double>.Build.Dense(4, 1, [1.0, 2, 3, 4])));
    }

    [Fact]
    public void CloseIsAbsoluteUpToOneAndRelativeAbove()
    {
        Assert.True(Compare.Close(0.5, 0.5 + 0.9e-12, 1e-12));
        Assert.False(Compare.Close(0.5, 0.5 + 1.1e-12, 1e-12));
        Assert.True(Compare.Close(1000.0, 1000.0 + 0.9e-9, 1e-12));
        Assert.False(Compare.Close(1000.0, 1000.0 + 1.1e-9, 1e-12));
        Assert.Equal(Compare.Close(3.0, 3.0 + 3.2e-12, 1e-12), Compare.Close(3.0 + 3.2e-12, 3.0, 1e-12));
        Assert.False(Compare.Close(double.NaN, double.NaN, 1e-12));
        Assert.False(Compare.Close(double.PositiveInfinity, double.PositiveInfinity, 1e-12));
        Assert.Throws<ArgumentOutOfRangeException>(() => Compare.Close(1.0, 1.0, -1));
    }

    [Fact]
    public void FirstDifferenceNamesTheStepAndTheEntry()
    {
        ImmutableArray<Matrix<double>> a = [M(1, 2, 3, 4), M(5, 6, 7, 8)], b = [M(1, 2, 3, 4), M(5, 6, 7.5, 8)];
        Assert.Null(Compare.FirstDifference(a, a));
        Assert.Equal("[1] (0, 1): a = 7, b = 7.5 (different bits)", Compare.FirstDifference(a, b));
        Assert.StartsWith("[1] (0, 1): a = 7, b = 7.5 (|a − b| = 0.5 > 0.05", Compare.FirstDifference(a, b, 0.05));
        Assert.Null(Compare.FirstDifference(a, b, 0.1)); // 0.5 ≤ 0.1·max(1, min(7, 7.5))
        Assert.Equal("2 values against 1", Compare.FirstDifference(a, [a[0]]));
    }

    [Fact]
    public void FirstDifferenceNamesTheLeafOfATree()
    {
        var p = RnnParameters.Initialize(2, 3, 4, seed: 1);
        var q = p with { Ba = p.Ba.MapIndexed((i, v) => i == 2 ? v + 1 : v) };
        Assert.True(Compare.Same(p, p));
        Assert.StartsWith("Ba (2): a = ", Compare.FirstDifference(p, q));
        Assert.False(Compare.Close(p, q, 1e-12));
    }
}
