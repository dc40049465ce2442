using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>An <see cref="LstmCase"/>'s inputs, c⟨0⟩ and labels with an LSTM with a projection of n_p ∈ [1, n_a] drawn from its seed.</summary>
public sealed record ProjectedLstmCase(LstmCase Lstm)
{
    private static ProjectedLstmParameters Draw(LstmCase c)
    {
        var (random, d) = (new Random(c.Shape.Seed ^ 0x1b873593), c.Shape.Dims);
        var (na, nx, w) = (d.Na, d.Nx, 1.5 / Math.Sqrt(d.Na + d.Nx));
        var np = 1 + c.Shape.Seed % na;
        return new(Testing.Draw.Matrix(random, 4 * na, nx, w), Testing.Draw.Matrix(random, 4 * na, np, w), Testing.Draw.Vector(random, 4 * na, 0.5),
            Testing.Draw.Vector(random, 4 * na, 0.5), Testing.Draw.Matrix(random, np, na, 1.5 / Math.Sqrt(na)),
            Testing.Draw.Matrix(random, d.Ny, np, 1.5 / Math.Sqrt(np)), Testing.Draw.Vector(random, d.Ny, 0.5));
    }

    /// <summary>The parameters.</summary>
    public ProjectedLstmParameters P { get; } = Draw(Lstm);

    /// <summary>h⟨0⟩, n_p×m.</summary>
    public Matrix<double> H0 => Lstm.A0.SubMatrix(0, P.ProjectionSize, 0, Lstm.A0.ColumnCount);

    /// <summary>Outside gradients of h⟨1⟩..h⟨T⟩, n_p×m each.</summary>
    public ImmutableArray<Matrix<double>> Dh => [.. Lstm.Da.Select(d => d.SubMatrix(0, P.ProjectionSize, 0, d.ColumnCount))];

    public static Arbitrary<ProjectedLstmCase> Arbitrary(int max = 8) =>
        Arb.From(LstmCase.Arbitrary(max).Generator.Select(c => new ProjectedLstmCase(c)), c => LstmCase.Arbitrary(max).Shrinker(c.Lstm).Select(l => new ProjectedLstmCase(l)));

    public override string ToString() => $"ProjectedLstmCase({Lstm.Shape}, n_p={P.ProjectionSize})";
}

/// <summary>The LSTM with a projection: its gradients against finite differences and its laws.</summary>
public sealed class ProjectedLstmTests
{
    private static GradCheckReport Inputs(Func<ImmutableArray<Matrix<double>>, ImmutableArray<Matrix<double>>, double> f, ProjectedLstmCase c,
        ImmutableArray<Matrix<double>> dx, Matrix<double> dh0, Matrix<double> dc0)
    {
        var T = c.Lstm.Xs.Length;
        return GradCheck.Leaves(leaves => f(SequenceLeaves.Read(leaves, 0, T), SequenceLeaves.Read(leaves, T, 2)),
            SequenceLeaves.Of("xs", c.Lstm.Xs).AddRange(Leaf.Of("h0", c.H0), Leaf.Of("c0", c.Lstm.C0)),
            SequenceLeaves.Of("xs", dx).AddRange(Leaf.Of("h0", dh0), Leaf.Of("c0", dc0)), GradCheckOptions.Precise);
    }

    [Property(MaxTest = 100)]
    public Property LossAndGradientsMatchesFiniteDifferences() =>
        Prop.ForAll(ProjectedLstmCase.Arbitrary(), c =>
        {
            var l = c.Lstm;
            double F(ProjectedLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> h0, Matrix<double> c0) =>
                ProjectedLstm.LossAndGradients(p, xs, h0, c0, l.Labels).Loss;
            var g = ProjectedLstm.LossAndGradients(c.P, l.Xs, c.H0, l.C0, l.Labels);
            return GradientProperty.Holds(GradCheck.Tree(p => F(p, l.Xs, c.H0, l.C0), c.P, g.Gradients, GradCheckOptions.Precise))
                .And(GradientProperty.Holds(Inputs((xs, s) => F(c.P, xs, s[0], s[1]), c, g.Dx, g.Dh0, g.Dc0)));
        });

    [Property(MaxTest = 100)]
    public Property BackwardMatchesFiniteDifferences() =>
        Prop.ForAll(ProjectedLstmCase.Arbitrary(), c =>
        {
            var l = c.Lstm;
            double F(ProjectedLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> h0, Matrix<double> c0) =>
                GradientChecks.Inner(c.Dh, ProjectedLstm.Forward(p, xs, h0, c0).States);
            var g = ProjectedLstm.Backward(ProjectedLstm.Forward(c.P, l.Xs, c.H0, l.C0), c.Dh);
            return GradientProperty.Holds(GradCheck.Tree(p => F(p, l.Xs, c.H0, l.C0), c.P, g.Gradients, GradCheckOptions.Precise))
                .And(GradientProperty.Holds(Inputs((xs, s) => F(c.P, xs, s[0], s[1]), c, g.Dx, g.Dh0, g.Dc0)));
        });

    /// <summary>
    /// n_p = n_a and Whr = I: h = I·m sums m_i with n_a − 1 products 0·m_k = 0, exactly m_i, and Whrᵀ·dh = dh likewise, so
    /// every state, cell, the loss and every gradient have the bits of the plain LSTM of the same gates
    /// (Wf = [W_hf | W_if], bf = b_if + b_hf, as docs/cells.md maps PyTorch's nn.LSTM).
    /// </summary>
    [Property(MaxTest = 100)]
    public Property IdentityProjectionIsBitwiseThePlainLstm() =>
        Prop.ForAll(LstmCase.Arbitrary(), l =>
        {
            var (na, random) = (l.P.HiddenSize, new Random(l.Shape.Seed));
            var d = l.Shape.Dims;
            var w = 1.5 / Math.Sqrt(na + d.Nx);
            var p = new ProjectedLstmParameters(Testing.Draw.Matrix(random, 4 * na, d.Nx, w), Testing.Draw.Matrix(random, 4 * na, na, w),
                Testing.Draw.Vector(random, 4 * na, 0.5), Testing.Draw.Vector(random, 4 * na, 0.5), Matrix<double>.Build.DenseIdentity(na), l.P.Wy, l.P.By);
            Matrix<double> Gate(Matrix<double> m, int k) => m.SubMatrix(k * na, na, 0, m.ColumnCount);
            Vector<double> Bias(int k) => p.Bih.SubVector(k * na, na) + p.Bhh.SubVector(k * na, na);
            var lstm = new LstmParameters(Gate(p.Whh, 1).Append(Gate(p.Wih, 1)), Bias(1), Gate(p.Whh, 0).Append(Gate(p.Wih, 0)), Bias(0),
                Gate(p.Whh, 2).Append(Gate(p.Wih, 2)), Bias(2), Gate(p.Whh, 3).Append(Gate(p.Wih, 3)), Bias(3), l.P.Wy, l.P.By);
            var (projected, plain) = (ProjectedLstm.Forward(p, l.Xs, l.A0, l.C0), Lstm.Forward(lstm, l.Xs, l.A0, l.C0));
            var (back, backPlain) = (ProjectedLstm.Backward(projected, l.Da), Lstm.Backward(plain, l.Da));
            var (loss, lossPlain) = (ProjectedLstm.LossAndGradients(p, l.Xs, l.A0, l.C0, l.Labels), Lstm.LossAndGradients(lstm, l.Xs, l.A0, l.C0, l.Labels));
            Matrix<double> Stacked(LstmParameters g, int from, int count) =>
                Matrix<double>.Build.DenseOfMatrixArray(new[,] { { g.Wi.SubMatrix(0, na, from, count) }, { g.Wf.SubMatrix(0, na, from, count) },
                    { g.Wc.SubMatrix(0, na, from, count) }, { g.Wo.SubMatrix(0, na, from, count) } });
            bool SameGradients(ProjectedLstmParameters g, LstmParameters h) =>
                Compare.Same(g.Whh, Stacked(h, 0, na)) && Compare.Same(g.Wih, Stacked(h, na, d.Nx))
                && Compare.Same(g.Bih, Vector<double>.Build.DenseOfEnumerable(h.Bi.Concat(h.Bf).Concat(h.Bc).Concat(h.Bo)));
            return (Compare.Same(projected.States, plain.States) && Compare.Same(projected.Cells, plain.Cells)).Label("states and cells: the LSTM's bits")
                .And((Compare.Same(back.Dx, backPlain.Dx) && Compare.Same(back.Dh0, backPlain.Da0) && Compare.Same(back.Dc0, backPlain.Dc0)
                      && SameGradients(back.Gradients, backPlain.Gradients)).Label("Backward: the LSTM's bits"))
                .And((Compare.Same(loss.Loss, lossPlain.Loss) && Compare.Same(loss.Dx, lossPlain.Dx) && Compare.Same(loss.Dh0, lossPlain.Da0)
                      && SameGradients(loss.Gradients, lossPlain.Gradients) && Compare.Same(loss.Gradients.Wy, lossPlain.Gradients.Wy))
                    .Label("LossAndGradients: the LSTM's bits"));
        });

    /// <summary>The fused cell against the same cell on the generic fold (<see cref="ProjectedLstm.Cell"/>, <see cref="Recurrence"/>).</summary>
    [Property(MaxTest = 100)]
    public Property FusedAgreesWithTheGenericFold() =>
        Prop.ForAll(ProjectedLstmCase.Arbitrary(), c =>
        {
            var l = c.Lstm;
            var fused = ProjectedLstm.Forward(c.P, l.Xs, c.H0, l.C0);
            var scanned = Recurrence.Forward(ProjectedLstm.Cell, c.P, l.Xs, new LstmState(c.H0, l.C0));
            var back = ProjectedLstm.Backward(fused, c.Dh);
            var fold = Recurrence.Backward(ProjectedLstm.Cell, Tree.ZerosLike(c.P), scanned.Caches, c.Dh,
                new LstmState(Matrix<double>.Build.Dense(c.H0.RowCount, c.H0.ColumnCount), Matrix<double>.Build.Dense(l.C0.RowCount, l.C0.ColumnCount)));
            return (Compare.Same(fused.States, scanned.Outputs) && Compare.Same(fused.Cells, [.. scanned.Caches.Select(k => k.C)]))
                    .Label("states and cells: same bits")
                .And((Compare.Same(back.Dx, fold.Dx) && Compare.Same(back.Dh0, fold.DInit.A) && Compare.Same(back.Dc0, fold.DInit.C))
                    .Label("dx, dh0, dc0: same bits"))
                .And(Compare.Close(back.Gradients, fold.Gradients, 1e-12).Label("parameter gradients to 1e-12 (summed over time in another order)"));
        });

    [Property(MaxTest = 60)]
    public Property CheckpointingChangesNoBit() =>
        Prop.ForAll(ProjectedLstmCase.Arbitrary(), Gen.Choose(1, 6).ToArbitrary(), (c, every) =>
        {
            var l = c.Lstm;
            var (full, kept) = (ProjectedLstm.LossAndGradients(c.P, l.Xs, c.H0, l.C0, l.Labels), ProjectedLstm.LossAndGradients(c.P, l.Xs, c.H0, l.C0, l.Labels, every));
            return (Compare.Same(full.Loss, kept.Loss) && Compare.Same(full.Gradients, kept.Gradients) && Compare.Same(full.Dx, kept.Dx)
                    && Compare.Same(full.Dh0, kept.Dh0) && Compare.Same(full.Dc0, kept.Dc0)).Label($"every {every}");
        });

    [Property(MaxTest = 100)]
    public Property RaggedStackWithBidirectionalLayerLossMatchesFiniteDifferences() =>
        StackLaws.LossGradientsMatchFiniteDifferences([LayerSpec.Uni(CellKind.ProjectedLstm), LayerSpec.Bi(CellKind.ProjectedLstm, CellKind.PeepholeLstm)], ragged: true);

    /// <summary>A case whose estimates from a first step of 1 strayed past the resolution of 8·ε·|f|/h of that step.</summary>
    [Property(Replay = "10929249432562248068,7714261230771925403,76", MaxTest = 1)]
    public Property RaggedStackWithBidirectionalLayerLossMatchesFiniteDifferencesWhereAStepOfOneStrays() =>
        StackLaws.LossGradientsMatchFiniteDifferences([LayerSpec.Uni(CellKind.ProjectedLstm), LayerSpec.Bi(CellKind.ProjectedLstm, CellKind.PeepholeLstm)], ragged: true);

    [Property(MaxTest = 100)]
    public Property RaggedStackBackwardMatchesFiniteDifferences() =>
        StackLaws.BackwardMatchesFiniteDifferences([LayerSpec.Bi(CellKind.LayerNormLstm, CellKind.ProjectedLstm)], ragged: true);

    [Fact]
    public void ValidateRejectsAProjectionLargerThanTheCell()
    {
        var p = ProjectedLstmParameters.Initialize(3, 4, 2, 5, seed: 1) with { Whr = Matrix<double>.Build.Dense(6, 4), Whh = Matrix<double>.Build.Dense(16, 6) };
        var messages = ProjectedLstm.Validate(p).FailToSeq().Map(e => e.Message).ToList();
        Assert.Equal(["expected the projection size n_p (the rows of Whr) to be at most n_a = 4 but got 6"], messages);
    }

    [Fact]
    public void ForwardRejectsAnInitialStateOfTheCellsSize()
    {
        var p = ProjectedLstmParameters.Initialize(3, 4, 2, 5, seed: 1);
        var xs = Testing.Draw.Sequence(new Random(2), 3, 3, 2);
        var e = Assert.Throws<ArgumentException>(() => ProjectedLstm.Forward(p, xs, Matrix<double>.Build.Dense(4, 2), Matrix<double>.Build.Dense(4, 2)));
        Assert.Equal("h0", e.ParamName);
        Assert.Contains("expected h0 to be n_p×m = 2×2 but got 4×2", e.Message);
    }
}
