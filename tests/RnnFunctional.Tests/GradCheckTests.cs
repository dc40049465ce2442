using MathNet.Numerics.LinearAlgebra;
using Xunit;
using RnnFunctional.Testing;

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
        // The entry far below the floor is estimated again from h = 0.3, the largest step (a linear direction: no
        // truncation); the ordinary entry keeps its estimate from h = 0.01. Whatever the claim, the same steps and
        // resolutions, each at least that of a plain central difference from its step.
        var right = GradCheck.Matrix(F, At, Claimed(1e-9, 0.7), options: GradCheckOptions.Precise);
        var wrong = GradCheck.Matrix(F, At, Claimed(-3, 12), options: GradCheckOptions.Precise);
        Assert.Equal([0.3, 0.01], right.Entries.Select(e => e.Step));
        Assert.Equal(right.Entries.Select(e => e.Step), wrong.Entries.Select(e => e.Step));
        Assert.Equal(right.Entries.Select(e => e.Resolution), wrong.Entries.Select(e => e.Resolution));
        Assert.All(right.Entries, e => Assert.True(e.Resolution >= Resolution(F(At), e.Step), $"resolution {e.Resolution} from h = {e.Step}"));
    }

    /// <summary>
    /// f(x) = 50 + 1e-9·x + 0.5·ε·50·u(x), u(x) in [−1, 1] a hash of the bits of x: a derivative of 1e-9 under an error
    /// of up to 0.5·ε·|f| in each evaluation (and the rounding of the sum, 0.32·ε·|f|), which no step of a finite
    /// difference averages away.
    /// </summary>
    private static double Noisy(Matrix<double> x, ulong seed)
    {
        var bits = (ulong)BitConverter.DoubleToInt64Bits(x[0, 0]) ^ seed;
        bits = (bits ^ (bits >> 31)) * 0x9E3779B97F4A7C15UL;
        bits = (bits ^ (bits >> 29)) * 0xBF58476D1CE4E5B9UL;
        var u = (bits >> 11) * Math.Pow(2, -52) - 1;
        return 50 + 1e-9 * x[0, 0] + 0.5 * Math.Pow(2, -52) * 50 * u;
    }

    [Fact]
    public void TheResolutionBoundsWhatAnErrorInEachEvaluationOfFDoesToTheEstimate()
    {
        // The estimate kept combines differences at steps down to h/1.4¹¹; the resolution carries that combination's
        // gain, so an error of under ε·|f| in each value of f never moves the estimate past it.
        var x = Matrix<double>.Build.Dense(1, 1, 0.3);
        for (var seed = 1UL; seed <= 300; seed++)
        {
            var entry = GradCheck.Matrix(m => Noisy(m, seed), x, Matrix<double>.Build.Dense(1, 1, 1e-9), options: GradCheckOptions.Precise).Entries.Single();
            Assert.True(Math.Abs(entry.Numeric - 1e-9) < entry.Resolution,
                $"seed {seed}: numeric {entry.Numeric:E6}, difference {Math.Abs(entry.Numeric - 1e-9):E2}, resolution {entry.Resolution:E2} from h = {entry.Step}");
        }
    }

    /// <summary>f(x) = 50 + 1e-9·sin(30x): a large value and an entry near the floor that curves within a step of 0.3.</summary>
    private static double Curved(Matrix<double> x) => 50 + 1e-9 * Math.Sin(30 * x[0, 0]);

    [Fact]
    public void ResolutionIsThatOfTheStepKept()
    {
        // From h = 0.3 the tableau sees the curvature and its bound exceeds that of a smaller first step, which is
        // kept: the resolution is that step's, not the largest step's.
        var x = Matrix<double>.Build.Dense(1, 1, 0.3);
        var derivative = 30e-9 * Math.Cos(30 * 0.3);
        var entry = GradCheck.Matrix(Curved, x, Matrix<double>.Build.Dense(1, 1, derivative), options: GradCheckOptions.Precise).Entries.Single();
        Assert.True(entry.Step < 0.3, $"kept step {entry.Step}");
        Assert.True(entry.Resolution >= Resolution(Curved(x), entry.Step), $"resolution {entry.Resolution} from h = {entry.Step}");
        Assert.True(Math.Abs(entry.Numeric - derivative) < entry.Resolution, $"numeric {entry.Numeric} against {derivative}");
        foreach (var wrong in new[] { 0.0, derivative * (1 + 1e-3), derivative + 4 * entry.Resolution })
            Assert.False(GradCheck.Matrix(Curved, x, Matrix<double>.Build.Dense(1, 1, wrong), options: GradCheckOptions.Precise).Passes(1e-6),
                $"a claim of {wrong} passed");
    }

    private static double Resolution(double f, double step) => GradCheck.ResolutionFactor * Math.Pow(2, -52) * Math.Abs(f) / step;

    /// <summary>
    /// f(x) = (1000 + 1e-9·sin x) − 1000: a value near 1e-9 whose evaluation rounds at the size of its terms, ε·1000, a
    /// million times ε·|f|, as a loss of cancelling terms does.
    /// </summary>
    private static double Cancelling(Matrix<double> x) => 1000 + 1e-9 * Math.Sin(x[0, 0]) - 1000;

    [Fact]
    public void AFunctionWhoseTermsCancelIsResolvedAtTheNoiseOfItsTerms()
    {
        // Judged at ε·|f| the right derivative would fail: every estimate strays by the terms' round-off. The measured
        // noise sets the resolution; a claim of 0 or twice the derivative still fails.
        var x = Matrix<double>.Build.Dense(1, 1, 0.4);
        var derivative = 1e-9 * Math.Cos(0.4);
        GradCheckReport Check(double claim) =>
            GradCheck.Matrix(Cancelling, x, Matrix<double>.Build.Dense(1, 1, claim), options: GradCheckOptions.Precise);
        var entry = Check(derivative).Entries.Single();
        Assert.True(entry.Passes(1e-6), $"numeric {entry.Numeric:E6}, resolution {entry.Resolution:E2} from h = {entry.Step}");
        Assert.True(entry.Resolution > 1e3 * Resolution(Cancelling(x), entry.Step), $"resolution {entry.Resolution:E2}");
        foreach (var wrong in new[] { 0.0, 2 * derivative, -derivative })
            Assert.False(Check(wrong).Passes(1e-6), $"a claim of {wrong} passed");
    }

    [Fact]
    public void TheMeasuredNoiseIsThatOfTheErrorsOfOneEvaluation()
    {
        // f(x) = 1 + x² plus an error of standard deviation 1e-10 in each evaluation (uniform, from a hash of x's bits):
        // the estimate is the injected σ to within the spread of five fourth differences, far from 0 and from ε·|f|.
        for (var seed = 1UL; seed <= 20; seed++)
        {
            var s = seed;
            var sigma = FunctionNoise.Along(t => 1 + (0.3 + t) * (0.3 + t) + 1e-10 * Math.Sqrt(3) * Uniform(0.3 + t, s));
            Assert.InRange(sigma, 0.25e-10, 2.5e-10);
        }
        Assert.InRange(FunctionNoise.Along(t => 1 + t * t), 0, 1e-15);
    }

    private static double Uniform(double x, ulong seed)
    {
        var bits = (ulong)BitConverter.DoubleToInt64Bits(x) ^ (seed * 0x9E3779B97F4A7C15UL);
        bits = (bits ^ (bits >> 31)) * 0xBF58476D1CE4E5B9UL;
        bits ^= bits >> 29;
        return (bits >> 11) * Math.Pow(2, -52) - 1;
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
    /// <summary>
    /// A direction along which Ridders' tableau from h = 0.01 settles on an estimate 4.6e-4 off (and says so, with an
    /// error bound of 7e-4): the second look's smaller first steps resolve the derivative, which the per-entry check of
    /// the same stack confirms; without them the check fails on a correct gradient.
    /// </summary>
    [Fact]
    public void ASecondLookFromSmallerStepsResolvesADirectionTheFirstStepMisreads()
    {
        var c = new StackCase(new Shaped(new Dims(3, 3, 4, 5, 8), 1559339277), [LayerSpec.Uni(CellKind.Lstm), LayerSpec.Bi(CellKind.Gru, CellKind.RnnTanh)], ragged: true);
        double F(StackParameters p) => Stack.Loss(p, c.Xs, c.Labels, c.LengthsArgument, c.Initial);
        var g = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial).Gradients;
        var v = GradientProperty.RandomDirection(c.P, c.Shape.Seed);
        var larger = GradCheck.Directional(F, c.P, g, v, GradCheckOptions.Precise with { SmallerSteps = [] });
        Assert.False(larger.Passes(1e-6), $"{larger.Numeric:R} against {larger.Analytic:R}: the case no longer misleads the first step");
        var precise = GradCheck.Directional(F, c.P, g, v, GradCheckOptions.Precise);
        Assert.True(precise.Passes(1e-6), $"{precise.Numeric:R} against {precise.Analytic:R}");
        Assert.True(precise.Step < 0.01);
    }
}
