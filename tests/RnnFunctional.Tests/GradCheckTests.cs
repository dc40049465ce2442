using MathNet.Numerics.LinearAlgebra;
using Xunit;

namespace RnnFunctional.Tests;

/// <summary>The finite-difference checker itself: its resolution, and that it still catches wrong entries below the floor.</summary>
public sealed class GradCheckTests
{
    /// <summary>f(X) = 50 + 1e-9·x₀ + x₁² / 2: a large value, one entry far below the floor, one ordinary entry.</summary>
    private static double F(Matrix<double> x) => 50 + 1e-9 * x[0, 0] + 0.5 * x[1, 0] * x[1, 0];

    private static readonly Matrix<double> At = Matrix<double>.Build.DenseOfArray(new[,] { { 0.3 }, { 0.7 } });

    private static Matrix<double> Claimed(double d0, double d1) => Matrix<double>.Build.DenseOfArray(new[,] { { d0 }, { d1 } });

    [Fact]
    public void PreciseResolutionDependsOnTheFunctionOnly()
    {
        var expected = GradCheck.ResolutionFactor * Math.Pow(2, -52) * F(At) / 1.0;
        var right = GradCheck.Matrix(F, At, Claimed(1e-9, 0.7), options: GradCheckOptions.Precise);
        var wrong = GradCheck.Matrix(F, At, Claimed(-3, 12), options: GradCheckOptions.Precise);
        Assert.All(right.Entries.Concat(wrong.Entries), e => Assert.Equal(expected, e.Resolution));
    }

    [Fact]
    public void WithoutLargerStepsTheResolutionIsZero()
    {
        var report = GradCheck.Matrix(F, At, Claimed(1e-9, 0.7), options: GradCheckOptions.Ridders);
        Assert.All(report.Entries, e => Assert.Equal(0, e.Resolution));
    }

    [Fact]
    public void RightGradientPassesAndEntriesWrongBelowTheFloorFail()
    {
        Assert.True(GradCheck.Matrix(F, At, Claimed(1e-9, 0.7), options: GradCheckOptions.Precise).Passes(1e-6));
        foreach (var wrong in new[] { 2e-9, 0.0, -1e-9, 1.001e-9 })
        {
            var report = GradCheck.Matrix(F, At, Claimed(wrong, 0.7), options: GradCheckOptions.Precise);
            Assert.Equal([(0, 0)], report.Failures(1e-6).Select(e => (e.Row, e.Column)));
        }
    }

    [Fact]
    public void OrdinaryEntriesAreJudgedAtTheBar()
    {
        var report = GradCheck.Matrix(F, At, Claimed(1e-9, 0.7 * (1 + 3e-6)), options: GradCheckOptions.Precise);
        Assert.Equal([(1, 0)], report.Failures(1e-6).Select(e => (e.Row, e.Column)));
    }

    [Fact]
    public void RejectsLargerStepsWithAFixedStencil() =>
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            GradCheck.Matrix(F, At, Claimed(1e-9, 0.7), options: GradCheckOptions.Central with { LargerSteps = [1.0] }));
}
