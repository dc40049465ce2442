using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// A <see cref="GruCase"/>'s inputs, initial state, labels and outside gradients with layer-normalized GRU parameters drawn
/// from its seed: weights in ±1.5/√(n_a+n_x), biases in ±0.5, gains in 1 ± 0.5.
/// </summary>
public sealed record LayerNormGruCase(GruCase Gru)
{
    private static LayerNormGruParameters Draw(GruCase c)
    {
        var (random, d) = (new Random(c.Shape.Seed ^ 0x2545f491), c.Shape.Dims);
        var (na, nx, w) = (d.Na, d.Nx, 1.5 / Math.Sqrt(d.Na + d.Nx));
        Vector<double> Gain(int n) => Testing.Draw.Vector(random, n, 0.5).Add(1.0);
        return new(Testing.Draw.Matrix(random, 3 * na, nx, w), Testing.Draw.Matrix(random, 3 * na, na, w), Testing.Draw.Vector(random, 3 * na, 0.5),
            Testing.Draw.Vector(random, 3 * na, 0.5), Gain(3 * na), Gain(3 * na), c.P.Wy, c.P.By);
    }

    /// <summary>The parameters, with the default ε = 1e-5.</summary>
    public LayerNormGruParameters P { get; } = Draw(Gru);

    /// <summary>The parameters with ε = 1, for the finite differences (see <see cref="LayerNormLstmCase.Conditioned"/>).</summary>
    public LayerNormGruParameters Conditioned => P with { Epsilon = 1 };

    public static Arbitrary<LayerNormGruCase> Arbitrary(int max = 8) =>
        Arb.From(GruCase.Arbitrary(max).Generator.Select(c => new LayerNormGruCase(c)), c => GruCase.Arbitrary(max).Shrinker(c.Gru).Select(g => new LayerNormGruCase(g)));

    public override string ToString() => $"LayerNormGruCase({Gru.Shape})";
}

/// <summary>The layer-normalized GRU: its gradients against finite differences, alone and composed, and its laws.</summary>
public sealed class LayerNormGruTests
{
    private static readonly ImmutableArray<LayerSpec> Composed =
        [LayerSpec.Uni(CellKind.LayerNormGru), LayerSpec.Bi(CellKind.LayerNormGru, CellKind.LayerNormLstm)];

    private static GradCheckReport Inputs(Func<ImmutableArray<Matrix<double>>, Matrix<double>, double> f, GruCase g,
        ImmutableArray<Matrix<double>> dx, Matrix<double> da0)
    {
        var T = g.Xs.Length;
        return GradCheck.Leaves(leaves => f(SequenceLeaves.Read(leaves, 0, T), leaves[T].ToMatrix()),
            SequenceLeaves.Of("xs", g.Xs).Add(Leaf.Of("a0", g.A0)), SequenceLeaves.Of("xs", dx).Add(Leaf.Of("a0", da0)), GradCheckOptions.Precise);
    }

    [Property(MaxTest = 100)]
    public Property LossAndGradientsMatchesFiniteDifferences() =>
        Prop.ForAll(LayerNormGruCase.Arbitrary(), c =>
        {
            var (g, q) = (c.Gru, c.Conditioned);
            double F(LayerNormGruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) => LayerNormGru.LossAndGradients(p, xs, a0, g.Labels).Loss;
            var result = LayerNormGru.LossAndGradients(q, g.Xs, g.A0, g.Labels);
            return GradientProperty.Holds(GradCheck.Tree(p => F(p, g.Xs, g.A0), q, result.Gradients, GradCheckOptions.Precise))
                .And(GradientProperty.Holds(Inputs((xs, a0) => F(q, xs, a0), g, result.Dx, result.Da0)));
        });

    [Fact]
    public void AnEstimateFromALargeStepThatMissesABendIsNotKept()
    {
        // Along GainIh[3,0] of this case the tableau from first step 0.3 gives -9.441229821e-6 with an error estimate of
        // 3.8e-13, 3.2e-11 from the derivative that the steps 0.1 to 0.003 agree on to 1e-13 (-9.4412619e-6).
        var c = new LayerNormGruCase(new GruCase(new Shaped(new Dims(3, 4, 7, 3, 4), 507302457)));
        var (g, q) = (c.Gru, c.Conditioned);
        var result = LayerNormGru.LossAndGradients(q, g.Xs, g.A0, g.Labels);
        var report = GradCheck.Tree(p => LayerNormGru.LossAndGradients(p, g.Xs, g.A0, g.Labels).Loss, q, result.Gradients, GradCheckOptions.Precise);
        Assert.Empty(report.Failures(1e-6));
        var entry = Assert.Single(report.Entries, e => e is { Leaf: "GainIh", Row: 3, Column: 0 });
        Assert.NotEqual(0.3, entry.Step);
    }

    [Property(MaxTest = 100)]
    public Property BackwardMatchesFiniteDifferences() =>
        Prop.ForAll(LayerNormGruCase.Arbitrary(), c =>
        {
            var (g, q) = (c.Gru, c.Conditioned);
            double F(LayerNormGruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) =>
                GradientChecks.Inner(g.Da, LayerNormGru.Forward(p, xs, a0).States);
            var back = LayerNormGru.Backward(LayerNormGru.Forward(q, g.Xs, g.A0), g.Da);
            return GradientProperty.Holds(GradCheck.Tree(p => F(p, g.Xs, g.A0), q, back.Gradients, GradCheckOptions.Precise))
                .And(GradientProperty.Holds(Inputs((xs, a0) => F(q, xs, a0), g, back.Dx, back.Da0)));
        });

    [Property(MaxTest = 100)]
    public Property RaggedStackWithBidirectionalLayerLossMatchesFiniteDifferences() =>
        StackLaws.LossGradientsMatchFiniteDifferences(Composed, ragged: true);

    [Property(MaxTest = 100)]
    public Property RaggedStackBackwardMatchesFiniteDifferences() =>
        StackLaws.BackwardMatchesFiniteDifferences([LayerSpec.Bi(CellKind.LayerNormGru, CellKind.PeepholeLstm)], ragged: true);

    /// <summary>
    /// With n_a = 1, unit gains and zero biases every normalized value is 0 (v − μ = 0 on a one-unit block): r = z = σ(0) = ½,
    /// n = tanh(0 + ½·0) = 0, so h⟨t⟩ = h⟨t−1⟩/2 exactly, whatever x, Wih and Whh; dx and dWih, dWhh are 0 and dh⟨0⟩ = Σ_t da⟨t⟩/2^t.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property UnitGainZeroBiasOnOneUnitBlocksIsTheDefinition() =>
        Prop.ForAll(LayerNormGruCase.Arbitrary(), c =>
        {
            var (g, random) = (c.Gru, new Random(c.Gru.Shape.Seed));
            var (nx, m) = (c.P.InputSize, g.A0.ColumnCount);
            var (one, zero) = (Vector<double>.Build.Dense(3, 1.0), Vector<double>.Build.Dense(3));
            var p = new LayerNormGruParameters(Testing.Draw.Matrix(random, 3, nx), Testing.Draw.Matrix(random, 3, 1), zero, zero, one, one,
                Testing.Draw.Matrix(random, 3, 1), Vector<double>.Build.Dense(3));
            var a0 = Testing.Draw.Matrix(random, 1, m);
            var da = Testing.Draw.Sequence(random, g.Xs.Length, 1, m);
            var forward = LayerNormGru.Forward(p, g.Xs, a0);
            var back = LayerNormGru.Backward(forward, da);
            var expected = Enumerable.Range(1, g.Xs.Length).Select(t => a0 * Math.Pow(0.5, t)).ToImmutableArray();
            return Compare.Same(forward.States, expected).Label("h⟨t⟩ = h⟨0⟩/2^t exactly")
                .And((back.Dx.All(dx => dx.Enumerate().All(v => v == 0)) && back.Gradients.Wih.Enumerate().All(v => v == 0)
                      && back.Gradients.Whh.Enumerate().All(v => v == 0)).Label("dx, dWih and dWhh are 0"));
        });

    [Property(MaxTest = 100)]
    public Property FusedAgreesWithTheGenericFold() =>
        Prop.ForAll(LayerNormGruCase.Arbitrary(), c =>
        {
            var g = c.Gru;
            var fused = LayerNormGru.Forward(c.P, g.Xs, g.A0);
            var scanned = Recurrence.Forward(LayerNormGru.Cell, c.P, g.Xs, g.A0);
            var back = LayerNormGru.Backward(fused, g.Da);
            var fold = Recurrence.Backward(LayerNormGru.Cell, Tree.ZerosLike(c.P), scanned.Caches, g.Da, Matrix<double>.Build.Dense(g.A0.RowCount, g.A0.ColumnCount));
            return Compare.Same(fused.States, scanned.Outputs).Label("states: same bits")
                .And((Compare.Same(back.Dx, fold.Dx) && Compare.Same(back.Da0, fold.DInit)).Label("dx, dh0: same bits"))
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
        Prop.ForAll(LayerNormGruCase.Arbitrary(), Gen.Choose(1, 6).ToArbitrary(), (c, every) =>
        {
            var g = c.Gru;
            var (full, kept) = (LayerNormGru.LossAndGradients(c.P, g.Xs, g.A0, g.Labels), LayerNormGru.LossAndGradients(c.P, g.Xs, g.A0, g.Labels, every));
            return (Compare.Same(full.Loss, kept.Loss) && Compare.Same(full.Gradients, kept.Gradients) && Compare.Same(full.Dx, kept.Dx)
                    && Compare.Same(full.Da0, kept.Da0)).Label($"every {every}");
        });

    [Fact]
    public void ValidateReportsEveryInconsistentField()
    {
        var p = LayerNormGruParameters.Initialize(3, 5, 4, seed: 1) with { GainIh = Vector<double>.Build.Dense(14, 1.0), Epsilon = double.NaN };
        var messages = LayerNormGru.Validate(p).FailToSeq().Map(e => e.Message).ToList();
        Assert.Equal(["expected GainIh to have length 3n_a = 15 but got 14", "expected Epsilon to be finite and above 0 but got NaN"], messages);
    }
}
