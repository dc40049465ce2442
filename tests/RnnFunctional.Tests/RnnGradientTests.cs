using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

public sealed class RnnArbitraries
{
    public static Arbitrary<RnnCase> Cases() => RnnCase.Arbitrary(8);
}

/// <summary>Every gradient of the vanilla RNN against central finite differences.</summary>
public sealed class RnnGradientTests
{
    private static readonly GradCheckOptions Numeric = GradCheckOptions.Precise;

    /// <summary>Σ_t ⟨w⟨t⟩, v⟨t⟩⟩, summed with compensation so that its round-off stays at one ulp.</summary>
    private static double Inner(ImmutableArray<Matrix<double>> weights, ImmutableArray<Matrix<double>> values) =>
        Kernels.Ops.CompensatedSum(weights.Zip(values, (w, v) => w.PointwiseMultiply(v).Enumerate()).SelectMany(x => x));

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 100)]
    public Property CellBackwardMatchesFiniteDifferences(RnnCase c)
    {
        var (xt, da) = (c.Xs[0], c.Da[0]);
        double F(RnnParameters p, Matrix<double> x, Matrix<double> a) => Inner([da], [Rnn.CellForward(p, x, a).A]);
        var g = Rnn.CellBackward(da, Rnn.CellForward(c.P, xt, c.A0).Cache);

        return GradientProperty.Tree(p => F(p, xt, c.A0), c.P, g.Gradients, Numeric)
            .And(GradientProperty.Holds(GradCheck.Matrix(x => F(c.P, x, c.A0), xt, g.Dxt, "xt", Numeric)))
            .And(GradientProperty.Holds(GradCheck.Matrix(a => F(c.P, xt, a), c.A0, g.DaPrev, "aPrev", Numeric)));
    }

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 100)]
    public Property BackwardMatchesFiniteDifferences(RnnCase c)
    {
        double F(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) => Inner(c.Da, Rnn.Forward(p, xs, a0).States);
        var g = Rnn.Backward(Rnn.Forward(c.P, c.Xs, c.A0), c.Da);
        return GradientProperty.Tree(p => F(p, c.Xs, c.A0), c.P, g.Gradients, Numeric)
            .And(InputCheck(c, (xs, a0) => F(c.P, xs, a0), g.Dx, g.Da0));
    }

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 100)]
    public Property LossAndGradientsMatchesFiniteDifferences(RnnCase c)
    {
        double F(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) => Rnn.LossAndGradients(p, xs, a0, c.Labels).Loss;
        var g = Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);

        return GradientProperty.Tree(p => F(p, c.Xs, c.A0), c.P, g.Gradients, Numeric)
            .And(InputCheck(c, (xs, a0) => F(c.P, xs, a0), g.Dx, g.Da0));
    }

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 100)]
    public Property HeadGradientsOfBackwardAreZero(RnnCase c)
    {
        var g = Rnn.Backward(Rnn.Forward(c.P, c.Xs, c.A0), c.Da).Gradients;
        return (g.Wya.Enumerate().All(v => v == 0) && g.By.All(v => v == 0)).Label("dWya and dby are zero");
    }

    /// <summary>The gradient with respect to every x⟨t⟩ and a⟨0⟩ as one check over leaves xs[0..T−1], a0.</summary>
    private static Property InputCheck(RnnCase c, Func<ImmutableArray<Matrix<double>>, Matrix<double>, double> f,
        ImmutableArray<Matrix<double>> dx, Matrix<double> da0)
    {
        var T = c.Xs.Length;
        return GradientProperty.Leaves(
            leaves => f(SequenceLeaves.Read(leaves, 0, T), leaves[T].ToMatrix()),
            SequenceLeaves.Of("xs", c.Xs).Add(Leaf.Of("a0", c.A0)),
            SequenceLeaves.Of("xs", dx).Add(Leaf.Of("a0", da0)),
            Numeric);
    }
}
