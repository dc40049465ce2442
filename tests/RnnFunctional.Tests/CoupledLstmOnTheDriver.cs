using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// A cell added to the sequence driver with its math alone: the coupled-gate LSTM of the documentation (CIFG, the input
/// gate is 1 − the forget gate), three gates f | c̃ | o stacked, z = W_x·x + b + W_a·a_prev formed by the driver.
/// Parts of a step: a, c (the carry), then f, c̃, o.
/// </summary>
internal sealed class CoupledLstmFused(int na, Block wx, Block wh, Block b) : FusedCell(3, na, wx, wh, b, default)
{
    public static CoupledLstmFused Of(CoupledParameters p) => new(p.Wh.RowCount / 3, Block.Of(p.Wx), Block.Of(p.Wh), Block.Of(p.B));

    public override int Parts => 5;

    public override int CarryParts => 2;

    public override bool RecurrentOntoInput => true;

    public override void Forward(Span<double> z, Span<double> r, Block[] prev, Block[] next, Span<double> scratch)
    {
        var na = Hidden;
        Span<double> a = next[0].Span, c = next[1].Span, f = next[2].Span, cTilde = next[3].Span, o = next[4].Span;
        ReadOnlySpan<double> cPrev = prev[1].Span;
        for (var j = 0; j < next[0].Columns; j++)
        {
            var zj = z.Slice(j * 3 * na, 3 * na);
            for (var i = 0; i < na; i++)
            {
                var k = j * na + i;
                f[k] = 1 / (1 + Math.Exp(-zj[i]));                            // f = σ(z_f)
                cTilde[k] = Math.Tanh(zj[na + i]);                             // c̃ = tanh(z_c)
                o[k] = 1 / (1 + Math.Exp(-zj[2 * na + i]));                   // o = σ(z_o)
                c[k] = f[k] * cPrev[k] + (1 - f[k]) * cTilde[k];               // c = f⊙c_prev + (1−f)⊙c̃
                a[k] = o[k] * Math.Tanh(c[k]);                                 // a = o⊙tanh(c)
            }
        }
    }

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch)
    {
        var na = Hidden;
        ReadOnlySpan<double> c = next[1].Span, f = next[2].Span, cTilde = next[3].Span, o = next[4].Span, cPrev = prev[1].Span, daNext = dCarry[0].Span;
        var dcNext = dCarry[1].Span;
        for (var k = 0; k < c.Length; k++)
        {
            var (j, i) = (k / na, k % na);
            var dz = dU.Slice(j * 3 * na, 3 * na);
            var da = daNext[k] + dOut[k];                                      // a⟨t⟩ feeds the next step and the output
            var t = Math.Tanh(c[k]);
            var dO = da * t;                                                   // do = da⊙tanh(c)
            var dc = dcNext[k] + da * o[k] * (1 - t * t);                      // dc += da⊙o⊙(1 − tanh²c)
            dz[i] = dc * (cPrev[k] - cTilde[k]) * f[k] * (1 - f[k]);           // dzf = dc⊙(c_prev − c̃)⊙f⊙(1 − f)
            dz[na + i] = dc * (1 - f[k]) * (1 - cTilde[k] * cTilde[k]);        // dzc = dc⊙(1 − f)⊙(1 − c̃²)
            dz[2 * na + i] = dO * o[k] * (1 - o[k]);                           // dzo = do⊙o⊙(1 − o)
            dcNext[k] = dc * f[k];                                             // dc⟨t−1⟩ = dc⊙f
        }
    }
}

/// <summary>The coupled-gate LSTM's parameters in the driver's stacked layout: W_x 3n_a×n_x, W_a 3n_a×n_a, b 3n_a.</summary>
internal sealed record CoupledParameters(Matrix<double> Wx, Matrix<double> Wh, Vector<double> B) : IParameterTree<CoupledParameters>
{
    public ImmutableArray<Leaf> ToLeaves() => [Leaf.Of(nameof(Wx), Wx), Leaf.Of(nameof(Wh), Wh), Leaf.Of(nameof(B), B)];

    public CoupledParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(ToLeaves(), leaves, l => new CoupledParameters(l[0].ToMatrix(), l[1].ToMatrix(), l[2].ToVector()));
}

public sealed class CoupledLstmOnTheDriverTests
{
    private sealed record Case(Shaped Shape, CoupledParameters P, ImmutableArray<Matrix<double>> Xs, Matrix<double> A0, Matrix<double> C0,
        Matrix<double> Wy, Vector<double> By, ImmutableArray<ImmutableArray<int>> Labels, ImmutableArray<int> Lengths)
    {
        public static Case Of(Shaped s)
        {
            var (d, random) = (s.Dims, s.NewRandom());
            var scale = 1.5 / Math.Sqrt(d.Na + d.Nx);
            var p = new CoupledParameters(Draw.Matrix(random, 3 * d.Na, d.Nx, scale), Draw.Matrix(random, 3 * d.Na, d.Na, scale), Draw.Vector(random, 3 * d.Na, 0.5));
            var lengths = Enumerable.Range(0, d.M).Select(_ => random.Next(1, d.T + 1)).ToImmutableArray();
            return new(s, p, Draw.Sequence(random, d.T, d.Nx, d.M), Draw.Matrix(random, d.Na, d.M, 0.5), Draw.Matrix(random, d.Na, d.M, 0.5),
                Draw.Matrix(random, d.Ny, d.Na, 1.0), Draw.Vector(random, d.Ny, 0.5),
                [.. Enumerable.Range(0, d.T).Select(_ => Enumerable.Range(0, d.M).Select(_ => random.Next(d.Ny)).ToImmutableArray())], lengths);
        }

        public override string ToString() => $"Case({Shape})";
    }

    private static Arbitrary<Case> Cases() =>
        Arb.From(Shaped.Arbitrary(5).Generator.Select(Case.Of), c => Shaped.Arbitrary(5).Shrinker(c.Shape).Select(Case.Of));

    private static Driver.LossResult Loss(Case c, CoupledParameters p, int every = int.MaxValue) =>
        Driver.Loss(CoupledLstmFused.Of(p), c.Xs, [c.A0, c.C0], c.Labels, default, Block.Of(c.Wy), Block.Of(c.By), every, inputGradients: true, threads: 1);

    [Property(MaxTest = 40)]
    public Property ItsGradientsMatchFiniteDifferences() =>
        Prop.ForAll(Cases(), c =>
        {
            var result = Loss(c, c.P);
            var g = result.Gradients;
            var report = GradCheck.Tree(q => Ops.CompensatedSum(Loss(c, q).Losses), c.P,
                new CoupledParameters(g.Wx.ToMatrix(), g.Wh.ToMatrix(), g.Bx.ToVector()), GradCheckOptions.Precise);
            return report.Passes(1e-6).Label(report.Summary());
        });

    [Property(MaxTest = 40)]
    public Property ItGetsCheckpointingFromTheDriver() =>
        Prop.ForAll(Cases(), Gen.Choose(1, 5).ToArbitrary(), (c, every) =>
        {
            var (full, checkpointed) = (Loss(c, c.P), Loss(c, c.P, every));
            return (Compare.Same(full.Losses, checkpointed.Losses) && Compare.Same(full.Gradients.Wx.ToMatrix(), checkpointed.Gradients.Wx.ToMatrix())
                    && Compare.Same(full.Gradients.Wh.ToMatrix(), checkpointed.Gradients.Wh.ToMatrix()) && Compare.Same(full.Dx, checkpointed.Dx)
                    && Compare.Same(full.DInit, checkpointed.DInit)).Label($"every {every}: the bits of the full backward");
        });

    [Property(MaxTest = 40)]
    public Property ItGetsRaggedBatchesAndReverseScansFromTheDriver() =>
        Prop.ForAll(Cases(), Arb.From(Gen.Elements(false, true)), (c, reverse) =>
        {
            var cell = CoupledLstmFused.Of(c.P);
            var batch = Driver.Forward(cell, c.Xs, [c.A0, c.C0], c.Lengths, reverse, int.MaxValue, threads: 1);
            return Enumerable.Range(0, c.A0.ColumnCount).Select(j =>
            {
                var column = c.Xs.Take(c.Lengths[j]).Select(x => x.SubMatrix(0, x.RowCount, j, 1)).ToImmutableArray();
                var alone = Driver.Forward(cell, column, [c.A0.SubMatrix(0, c.A0.RowCount, j, 1), c.C0.SubMatrix(0, c.C0.RowCount, j, 1)],
                    default, reverse, int.MaxValue, threads: 1);
                return Enumerable.Range(0, c.Xs.Length).All(t => t < c.Lengths[j]
                        ? Compare.Same(batch.Outputs[t].Column(j), alone.Outputs[t].Column(0))
                        : batch.Outputs[t].Column(j).All(v => v == 0))
                    && Compare.Same(batch.Final[0].Column(j), alone.Final[0].Column(0)) && Compare.Same(batch.Final[1].Column(j), alone.Final[1].Column(0));
            }).All(same => same).Label("each column of a ragged batch has the bits of the column run alone; zero past its end");
        });
}
