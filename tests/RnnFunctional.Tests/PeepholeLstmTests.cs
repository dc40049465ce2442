using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using static RnnFunctional.Tests.GradientChecks;

namespace RnnFunctional.Tests;

/// <summary>An <see cref="LstmCase"/> with peephole weights drawn in ±1 from its seed.</summary>
public sealed record PeepholeCase(LstmCase Lstm)
{
    private static PeepholeLstmParameters Draw(LstmCase c)
    {
        var random = new Random(c.Shape.Seed ^ 0x3c6ef372);
        var na = c.P.HiddenSize;
        return PeepholeLstmParameters.Of(c.P, Testing.Draw.Vector(random, na), Testing.Draw.Vector(random, na), Testing.Draw.Vector(random, na));
    }

    /// <summary>The parameters: the case's LSTM plus peepholes.</summary>
    public PeepholeLstmParameters P { get; } = Draw(Lstm);

    public static Arbitrary<PeepholeCase> Arbitrary(int max = 8) =>
        Arb.From(LstmCase.Arbitrary(max).Generator.Select(c => new PeepholeCase(c)), c => LstmCase.Arbitrary(max).Shrinker(c.Lstm).Select(l => new PeepholeCase(l)));

    public override string ToString() => $"PeepholeCase({Lstm.Shape})";
}

/// <summary>The peephole LSTM: its gradients against finite differences, alone and composed, and its laws.</summary>
public sealed class PeepholeLstmTests
{
    private static readonly ImmutableArray<LayerSpec> Composed =
        [LayerSpec.Uni(CellKind.PeepholeLstm), LayerSpec.Bi(CellKind.PeepholeLstm, CellKind.Lstm)];

    [Property(MaxTest = 100)]
    public Property LossAndGradientsMatchesFiniteDifferences() =>
        Prop.ForAll(PeepholeCase.Arbitrary(), c =>
        {
            var l = c.Lstm;
            double F(PeepholeLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
                PeepholeLstm.LossAndGradients(p, xs, a0, c0, l.Labels).Loss;
            var g = PeepholeLstm.LossAndGradients(c.P, l.Xs, l.A0, l.C0, l.Labels);
            return GradientProperty.Holds(TreeCheck(p => F(p, l.Xs, l.A0, l.C0), c.P, g.Gradients))
                .And(GradientProperty.Holds(InputCheck((xs, s) => F(c.P, xs, s[0], s[1]), l.Xs, g.Dx, ("a0", l.A0, g.Da0), ("c0", l.C0, g.Dc0))));
        });

    [Property(MaxTest = 100)]
    public Property BackwardMatchesFiniteDifferences() =>
        Prop.ForAll(PeepholeCase.Arbitrary(), c =>
        {
            var l = c.Lstm;
            double F(PeepholeLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
                Inner(l.Da, PeepholeLstm.Forward(p, xs, a0, c0).States);
            var g = PeepholeLstm.Backward(PeepholeLstm.Forward(c.P, l.Xs, l.A0, l.C0), l.Da);
            return GradientProperty.Holds(TreeCheck(p => F(p, l.Xs, l.A0, l.C0), c.P, g.Gradients))
                .And(GradientProperty.Holds(InputCheck((xs, s) => F(c.P, xs, s[0], s[1]), l.Xs, g.Dx, ("a0", l.A0, g.Da0), ("c0", l.C0, g.Dc0))));
        });

    [Property(MaxTest = 100)]
    public Property RaggedStackWithBidirectionalLayerLossMatchesFiniteDifferences() =>
        StackLaws.LossGradientsMatchFiniteDifferences(Composed, ragged: true);

    [Property(MaxTest = 100)]
    public Property RaggedStackBackwardMatchesFiniteDifferences() =>
        StackLaws.BackwardMatchesFiniteDifferences([LayerSpec.Bi(CellKind.Gru, CellKind.PeepholeLstm)], ragged: true);

    /// <summary>pf = pi = po = 0 adds 0·c to each pre-activation and 0·dz to dc and dc_prev: every bit of the LSTM's.</summary>
    [Property(MaxTest = 100)]
    public Property ZeroPeepholesAreBitwiseThePlainLstm() =>
        Prop.ForAll(LstmCase.Arbitrary(), l =>
        {
            var zero = Vector<double>.Build.Dense(l.P.HiddenSize);
            var p = PeepholeLstmParameters.Of(l.P, zero, zero, zero);
            var (peephole, plain) = (PeepholeLstm.Forward(p, l.Xs, l.A0, l.C0), Lstm.Forward(l.P, l.Xs, l.A0, l.C0));
            var (back, backPlain) = (PeepholeLstm.Backward(peephole, l.Da), Lstm.Backward(plain, l.Da));
            var (loss, lossPlain) = (PeepholeLstm.LossAndGradients(p, l.Xs, l.A0, l.C0, l.Labels), Lstm.LossAndGradients(l.P, l.Xs, l.A0, l.C0, l.Labels));
            return (Compare.Same(peephole.States, plain.States) && Compare.Same(peephole.Cells, plain.Cells) && Compare.Same(peephole.Predictions, plain.Predictions))
                    .Label("states, cells and predictions: the LSTM's bits")
                .And((Compare.Same(back.Dx, backPlain.Dx) && Compare.Same(back.Da0, backPlain.Da0) && Compare.Same(back.Dc0, backPlain.Dc0)
                      && Compare.Same(back.Gradients.WithoutPeepholes, backPlain.Gradients)).Label("Backward: the LSTM's bits"))
                .And((Compare.Same(loss.Loss, lossPlain.Loss) && Compare.Same(loss.Dx, lossPlain.Dx) && Compare.Same(loss.Da0, lossPlain.Da0)
                      && Compare.Same(loss.Dc0, lossPlain.Dc0) && Compare.Same(loss.Gradients.WithoutPeepholes, lossPlain.Gradients))
                    .Label("LossAndGradients: the LSTM's bits"));
        });

    /// <summary>The fused cell against the same cell on the generic fold (<see cref="PeepholeLstm.Cell"/>, <see cref="Recurrence"/>).</summary>
    [Property(MaxTest = 100)]
    public Property FusedAgreesWithTheGenericFold() =>
        Prop.ForAll(PeepholeCase.Arbitrary(), c =>
        {
            var l = c.Lstm;
            var fused = PeepholeLstm.Forward(c.P, l.Xs, l.A0, l.C0);
            var scanned = Recurrence.Forward(PeepholeLstm.Cell, c.P, l.Xs, new LstmState(l.A0, l.C0));
            var back = PeepholeLstm.Backward(fused, l.Da);
            var fold = Recurrence.Backward(PeepholeLstm.Cell, Tree.ZerosLike(c.P), scanned.Caches, l.Da,
                new LstmState(Matrix<double>.Build.Dense(l.A0.RowCount, l.A0.ColumnCount), Matrix<double>.Build.Dense(l.A0.RowCount, l.A0.ColumnCount)));
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
        Prop.ForAll(PeepholeCase.Arbitrary(), Gen.Choose(1, 6).ToArbitrary(), (c, every) =>
        {
            var l = c.Lstm;
            var (full, kept) = (PeepholeLstm.LossAndGradients(c.P, l.Xs, l.A0, l.C0, l.Labels), PeepholeLstm.LossAndGradients(c.P, l.Xs, l.A0, l.C0, l.Labels, every));
            return (Compare.Same(full.Loss, kept.Loss) && Compare.Same(full.Gradients, kept.Gradients) && Compare.Same(full.Dx, kept.Dx)
                    && Compare.Same(full.Da0, kept.Da0) && Compare.Same(full.Dc0, kept.Dc0)).Label($"every {every}");
        });

    [Fact]
    public void RejectsPeepholeOfWrongLength()
    {
        var p = PeepholeLstmParameters.Initialize(3, 5, 4, seed: 1) with { Pi = Vector<double>.Build.Dense(4) };
        var xs = Testing.Draw.Sequence(new Random(2), 3, 3, 2);
        var e = Assert.Throws<ArgumentException>(() => PeepholeLstm.Forward(p, xs, Matrix<double>.Build.Dense(5, 2), Matrix<double>.Build.Dense(5, 2)));
        Assert.Equal("p", e.ParamName);
        Assert.Contains("expected Pi to have length n_a = 5 but got 4", e.Message);
        var layer = Assert.Throws<ArgumentException>(() => Layer.PeepholeLstm(p));
        Assert.Contains("expected Pi to have length n_a = 5 but got 4", layer.Message);
    }

    [Fact]
    public void TryLossAndGradientsListsEveryProblem()
    {
        var p = PeepholeLstmParameters.Initialize(3, 5, 4, seed: 1) with { Pf = Vector<double>.Build.Dense(6), Po = Vector<double>.Build.Dense(5, double.NaN) };
        var xs = Testing.Draw.Sequence(new Random(2), 3, 3, 2);
        var result = PeepholeLstm.TryLossAndGradients(p, xs, Matrix<double>.Build.Dense(5, 2), Matrix<double>.Build.Dense(5, 2), [[0, 1], [0, 1], [0, 1]]);
        var messages = result.FailToSeq().Map(e => e.Message).ToList();
        Assert.Equal(["expected Pf to have length n_a = 5 but got 6", "expected Po to be finite but entry 0 is NaN"], messages);
    }
}
