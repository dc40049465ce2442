using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// An <see cref="LstmCase"/>'s inputs, initial states, labels and outside gradients with layer-normalized LSTM parameters
/// drawn from its seed: weights in ±1.5/√(n_a+n_x), biases in ±0.5, gains in 1 ± 0.5.
/// </summary>
public sealed record LayerNormLstmCase(LstmCase Lstm)
{
    private static LayerNormLstmParameters Draw(LstmCase c)
    {
        var (random, d) = (new Random(c.Shape.Seed ^ 0x2545f491), c.Shape.Dims);
        var (na, nx, w) = (d.Na, d.Nx, 1.5 / Math.Sqrt(d.Na + d.Nx));
        Vector<double> Gain(int n) => Testing.Draw.Vector(random, n, 0.5).Add(1.0);
        return new(Testing.Draw.Matrix(random, 4 * na, nx, w), Testing.Draw.Matrix(random, 4 * na, na, w), Testing.Draw.Vector(random, 4 * na, 0.5),
            Gain(4 * na), Gain(4 * na), Gain(na), Testing.Draw.Vector(random, na, 0.5), c.P.Wy, c.P.By);
    }

    /// <summary>The parameters, with the default ε = 1e-5.</summary>
    public LayerNormLstmParameters P { get; } = Draw(Lstm);

    /// <summary>
    /// The parameters with ε = 1, for the finite differences. A block whose values nearly coincide multiplies what
    /// reaches it by up to 1/√ε (316 at ε = 1e-5, 10 at 1e-2), and through a few steps the loss then bends within 1e-3 of
    /// a parameter, far inside the first step 0.01 of <see cref="GradCheckOptions.Precise"/>, where Ridders' tableau
    /// misses (see <see cref="LayerNormLstmTests.AtTheDefaultEpsilonCentralDifferencesConvergeToTheGradient"/>); with ε = 1 no
    /// normalization amplifies. ε enters the forward only, through 1/√(σ² + ε); the backward reads that and v̂ whatever ε is.
    /// </summary>
    public LayerNormLstmParameters Conditioned => P with { Epsilon = 1 };

    public static Arbitrary<LayerNormLstmCase> Arbitrary(int max = 8) =>
        Arb.From(LstmCase.Arbitrary(max).Generator.Select(c => new LayerNormLstmCase(c)), c => LstmCase.Arbitrary(max).Shrinker(c.Lstm).Select(l => new LayerNormLstmCase(l)));

    public override string ToString() => $"LayerNormLstmCase({Lstm.Shape})";
}

/// <summary>The layer-normalized LSTM: its gradients against finite differences, alone and composed, and its laws.</summary>
public sealed class LayerNormLstmTests
{
    private static readonly ImmutableArray<LayerSpec> Composed =
        [LayerSpec.Uni(CellKind.LayerNormLstm), LayerSpec.Bi(CellKind.LayerNormLstm, CellKind.Gru)];

    [Property(MaxTest = 100)]
    public Property LossAndGradientsMatchesFiniteDifferences() =>
        Prop.ForAll(LayerNormLstmCase.Arbitrary(), c =>
        {
            var (l, q) = (c.Lstm, c.Conditioned);
            double F(LayerNormLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
                LayerNormLstm.LossAndGradients(p, xs, a0, c0, l.Labels).Loss;
            var g = LayerNormLstm.LossAndGradients(q, l.Xs, l.A0, l.C0, l.Labels);
            return GradientProperty.Holds(GradCheck.Tree(p => F(p, l.Xs, l.A0, l.C0), q, g.Gradients, GradCheckOptions.Precise))
                .And(GradientProperty.Holds(Inputs((xs, s) => F(q, xs, s[0], s[1]), l, g.Dx, g.Da0, g.Dc0, GradCheckOptions.Precise)));
        });

    [Property(MaxTest = 100)]
    public Property BackwardMatchesFiniteDifferences() =>
        Prop.ForAll(LayerNormLstmCase.Arbitrary(), c =>
        {
            var (l, q) = (c.Lstm, c.Conditioned);
            double F(LayerNormLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
                GradientChecks.Inner(l.Da, LayerNormLstm.Forward(p, xs, a0, c0).States);
            var g = LayerNormLstm.Backward(LayerNormLstm.Forward(q, l.Xs, l.A0, l.C0), l.Da);
            return GradientProperty.Holds(GradCheck.Tree(p => F(p, l.Xs, l.A0, l.C0), q, g.Gradients, GradCheckOptions.Precise))
                .And(GradientProperty.Holds(Inputs((xs, s) => F(q, xs, s[0], s[1]), l, g.Dx, g.Da0, g.Dc0, GradCheckOptions.Precise)));
        });

    [Property(MaxTest = 100)]
    public Property RaggedStackWithBidirectionalLayerLossMatchesFiniteDifferences() =>
        StackLaws.LossGradientsMatchFiniteDifferences(Composed, ragged: true);

    [Property(MaxTest = 100)]
    public Property RaggedStackBackwardMatchesFiniteDifferences() =>
        StackLaws.BackwardMatchesFiniteDifferences([LayerSpec.Bi(CellKind.PeepholeLstm, CellKind.LayerNormLstm)], ragged: true);

    /// <summary>The check over xs, a0 and c0 of <see cref="GradientChecks.InputCheck"/>, with the given finite differences.</summary>
    private static GradCheckReport Inputs(Func<ImmutableArray<Matrix<double>>, ImmutableArray<Matrix<double>>, double> f, LstmCase l,
        ImmutableArray<Matrix<double>> dx, Matrix<double> da0, Matrix<double> dc0, GradCheckOptions o)
    {
        var T = l.Xs.Length;
        return GradCheck.Leaves(leaves => f(SequenceLeaves.Read(leaves, 0, T), SequenceLeaves.Read(leaves, T, 2)),
            SequenceLeaves.Of("xs", l.Xs).AddRange(Leaf.Of("a0", l.A0), Leaf.Of("c0", l.C0)),
            SequenceLeaves.Of("xs", dx).AddRange(Leaf.Of("a0", da0), Leaf.Of("c0", dc0)), o);
    }

    /// <summary>
    /// On a one-unit block v − μ = 0, so LN(v) with unit gain and zero bias is 0 whatever v: with n_a = 1, GainX = GainH = 1
    /// and B = 0 every gate pre-activation is 0, so Γi = Γf = Γo = σ(0) = ½ and g = tanh(0) = 0, c⟨t⟩ = c⟨t−1⟩/2, and with
    /// GainC = 1, BiasC = 0, a⟨t⟩ = ½·tanh(0) = 0, whatever x, Wx and Wh; nothing reaches x, a⟨0⟩, Wx or Wh.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property UnitGainZeroBiasOnOneUnitBlocksIsTheDefinition() =>
        Prop.ForAll(LayerNormLstmCase.Arbitrary(), c =>
        {
            var (l, random) = (c.Lstm, new Random(c.Lstm.Shape.Seed));
            var (nx, m) = (c.P.InputSize, l.A0.ColumnCount);
            var (one, zero) = (Vector<double>.Build.Dense(4, 1.0), Vector<double>.Build.Dense(4));
            var p = new LayerNormLstmParameters(Testing.Draw.Matrix(random, 4, nx), Testing.Draw.Matrix(random, 4, 1), zero, one, one,
                Vector<double>.Build.Dense(1, 1.0), Vector<double>.Build.Dense(1), Testing.Draw.Matrix(random, 3, 1), Vector<double>.Build.Dense(3));
            var (a0, c0) = (Testing.Draw.Matrix(random, 1, m), Testing.Draw.Matrix(random, 1, m));
            var da = Testing.Draw.Sequence(random, l.Xs.Length, 1, m);
            var forward = LayerNormLstm.Forward(p, l.Xs, a0, c0);
            var back = LayerNormLstm.Backward(forward, da);
            var expectedC = Enumerable.Range(1, l.Xs.Length).Select(t => c0 * Math.Pow(0.5, t)).ToImmutableArray();
            return (forward.States.All(a => a.Enumerate().All(v => v == 0)) && Compare.Same(forward.Cells, expectedC)).Label("a⟨t⟩ = 0, c⟨t⟩ = c⟨0⟩/2^t exactly")
                .And((back.Dx.All(dx => dx.Enumerate().All(v => v == 0)) && back.Da0.Enumerate().All(v => v == 0)
                      && back.Gradients.Wx.Enumerate().All(v => v == 0) && back.Gradients.Wh.Enumerate().All(v => v == 0))
                    .Label("dx, da⟨0⟩, dWx and dWh are 0"));
        });

    /// <summary>LN of a block of n ≥ 2 values has mean 0 and variance σ²/(σ² + ε), to 1e-12.</summary>
    [Property(MaxTest = 200)]
    public Property LayerNormHasZeroMeanAndTheVarianceOfItsDefinition() =>
        Prop.ForAll(Gen.Choose(2, 40).ToArbitrary(), Gen.Choose(0, int.MaxValue).ToArbitrary(), (n, seed) =>
        {
            var v = Testing.Draw.Vector(new Random(seed), n, 3.0).ToArray();
            var hat = new double[n];
            LayerNorm.Forward(v, hat, LayerNormLstm.DefaultEpsilon);
            var (mean, variance) = (v.Average(), v.Select(x => (x - v.Average()) * (x - v.Average())).Average());
            var (hatMean, hatVariance) = (hat.Average(), hat.Select(x => x * x).Average() - hat.Average() * hat.Average());
            return (Math.Abs(hatMean) < 1e-12 && Math.Abs(hatVariance - variance / (variance + LayerNormLstm.DefaultEpsilon)) < 1e-12)
                .Label($"mean {hatMean:R}, variance {hatVariance:R} against {variance / (variance + LayerNormLstm.DefaultEpsilon):R}");
        });

    /// <summary>
    /// At the default ε = 1e-5, the cases (n_x, n_a, n_y, m, T, seed) where the finite differences of Ridders' method
    /// missed: a block of two nearly equal values (√(σ² + ε) down to 3.2e-3) bends the loss within 1e-4 of the parameter.
    /// Central differences at h = 1e-6 and 1e-7, below that scale, agree with the analytic gradient to 1e-6 (a difference
    /// of the loss of about 30 is then known to 1e-9).
    /// </summary>
    [Theory]
    [InlineData(1, 8, 7, 7, 4, 2002132970, "a0", 1)]
    [InlineData(8, 2, 5, 6, 4, 1512439506, "Wh", 0)]
    [InlineData(4, 2, 3, 6, 2, 647429553, "B", 4)]
    public void AtTheDefaultEpsilonCentralDifferencesConvergeToTheGradient(int nx, int na, int ny, int m, int steps, int seed, string leaf, int row)
    {
        var c = new LayerNormLstmCase(new LstmCase(new Shaped(new Dims(nx, na, ny, m, steps), seed)));
        var l = c.Lstm;
        var g = LayerNormLstm.LossAndGradients(c.P, l.Xs, l.A0, l.C0, l.Labels);
        double F(double h) => leaf switch
        {
            "a0" => LayerNormLstm.LossAndGradients(c.P, l.Xs, l.A0 + Unit(l.A0, row, h), l.C0, l.Labels).Loss,
            "Wh" => LayerNormLstm.LossAndGradients(c.P with { Wh = c.P.Wh + Unit(c.P.Wh, row, h) }, l.Xs, l.A0, l.C0, l.Labels).Loss,
            _ => LayerNormLstm.LossAndGradients(c.P with { B = c.P.B + Unit(c.P.B.ToColumnMatrix(), row, h).Column(0) }, l.Xs, l.A0, l.C0, l.Labels).Loss,
        };
        var analytic = leaf switch { "a0" => g.Da0[row, 0], "Wh" => g.Gradients.Wh[row, 0], _ => g.Gradients.B[row] };
        foreach (var h in new[] { 1e-6, 1e-7 })
        {
            var numeric = (F(h) - F(-h)) / (2 * h);
            Assert.True(Math.Abs(numeric - analytic) < 1e-6 * Math.Abs(analytic), $"h = {h}: {numeric:R} against {analytic:R}");
        }
    }

    private static Matrix<double> Unit(Matrix<double> like, int row, double h)
    {
        var e = Matrix<double>.Build.Dense(like.RowCount, like.ColumnCount);
        e[row, 0] = h;
        return e;
    }

    /// <summary>The fused cell against the same cell on the generic fold (<see cref="LayerNormLstm.Cell"/>, <see cref="Recurrence"/>).</summary>
    [Property(MaxTest = 100)]
    public Property FusedAgreesWithTheGenericFold() =>
        Prop.ForAll(LayerNormLstmCase.Arbitrary(), c =>
        {
            var l = c.Lstm;
            var fused = LayerNormLstm.Forward(c.P, l.Xs, l.A0, l.C0);
            var scanned = Recurrence.Forward(LayerNormLstm.Cell, c.P, l.Xs, new LstmState(l.A0, l.C0));
            var back = LayerNormLstm.Backward(fused, l.Da);
            var zero = Matrix<double>.Build.Dense(l.A0.RowCount, l.A0.ColumnCount);
            var fold = Recurrence.Backward(LayerNormLstm.Cell, Tree.ZerosLike(c.P), scanned.Caches, l.Da, new LstmState(zero, zero));
            return (Compare.Same(fused.States, scanned.Outputs) && Compare.Same(fused.Cells, [.. scanned.Caches.Select(k => k.C)]))
                    .Label("states and cells: same bits")
                .And((Compare.Same(back.Dx, fold.Dx) && Compare.Same(back.Da0, fold.DInit.A) && Compare.Same(back.Dc0, fold.DInit.C))
                    .Label("dx, da0, dc0: same bits"))
                .And(Compare.Close(back.Gradients, fold.Gradients, 1e-12).Label("parameter gradients to 1e-12 (summed over time, and over columns in the driver's bands of 8, in another order)"));
        });

    [Property(MaxTest = 60)]
    public Property FusedStacksAgreeWithTheGenericFold() =>
        Prop.ForAll(StackCase.Arbitrary(Composed, ragged: true, max: 6), c =>
        {
            var q = NewCells.Generic(c.P);
            var (fused, fold) = (Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial),
                                 Stack.LossAndGradients(q, c.Xs, c.Labels, c.LengthsArgument, c.Initial));
            var (forward, forwardFold) = (Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial), Stack.Forward(q, c.Xs, c.LengthsArgument, c.Initial));
            return (Compare.Same(forward.States, forwardFold.States) && Compare.Same(forward.Final, forwardFold.Final)).Label("states and final states: same bits")
                .And((Compare.Same(fused.Loss, fold.Loss) && Compare.Same(fused.Dx, fold.Dx) && Compare.Same(fused.DInitial, fold.DInitial))
                    .Label("loss, dx and dInitial: same bits"))
                .And(Compare.Close(fused.Gradients, fold.Gradients, 1e-12).Label("parameter gradients to 1e-12"));
        });

    [Property(MaxTest = 60)]
    public Property CheckpointingChangesNoBit() =>
        Prop.ForAll(LayerNormLstmCase.Arbitrary(), Gen.Choose(1, 6).ToArbitrary(), (c, every) =>
        {
            var l = c.Lstm;
            var (full, kept) = (LayerNormLstm.LossAndGradients(c.P, l.Xs, l.A0, l.C0, l.Labels), LayerNormLstm.LossAndGradients(c.P, l.Xs, l.A0, l.C0, l.Labels, every));
            return (Compare.Same(full.Loss, kept.Loss) && Compare.Same(full.Gradients, kept.Gradients) && Compare.Same(full.Dx, kept.Dx)
                    && Compare.Same(full.Da0, kept.Da0) && Compare.Same(full.Dc0, kept.Dc0)).Label($"every {every}");
        });

    [Fact]
    public void ValidateReportsEveryInconsistentField()
    {
        var p = LayerNormLstmParameters.Initialize(3, 5, 4, seed: 1) with { GainH = Vector<double>.Build.Dense(19, 1.0), BiasC = Vector<double>.Build.Dense(4), Epsilon = 0 };
        var messages = LayerNormLstm.Validate(p).FailToSeq().Map(e => e.Message).ToList();
        Assert.Equal(["expected GainH to have length 4n_a = 20 but got 19", "expected BiasC to have length n_a = 5 but got 4",
                      "expected Epsilon to be finite and above 0 but got 0"], messages);
    }

    [Fact]
    public void LayerRejectsWrongRecurrentWeights()
    {
        var p = LayerNormLstmParameters.Initialize(3, 5, 4, seed: 1) with { Wh = Matrix<double>.Build.Dense(20, 4) };
        var e = Assert.Throws<ArgumentException>(() => Layer.LayerNormLstm(p));
        Assert.Equal("p", e.ParamName);
        Assert.Contains("expected Wh to be 4n_a×n_a = 20×5 but got 20×4", e.Message);
    }
}
