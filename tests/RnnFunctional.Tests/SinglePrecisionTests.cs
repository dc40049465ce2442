using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;
using RnnFunctional.Testing;
using static RnnFunctional.Testing.Compare;
using GemmCase = RnnFunctional.Tests.GemmTests.GemmCase;

namespace RnnFunctional.Tests;

/// <summary>
/// <see cref="Precision.Single"/>: the product in single precision against the exact product within float32's error
/// bound, its laws (columns and rows alone, a float32 twin of A), and every cell and composition in single precision
/// against the double path to a relative 1e-4 (docs/performance.md, "Single precision", gives the bound's reasoning).
/// </summary>
public sealed class SinglePrecisionTests
{
    /// <summary>u = 2⁻²⁴, the unit roundoff of float32.</summary>
    private const double Unit = 1.0 / (1 << 24);

    /// <summary>The agreement asked of single against double: ‖single − double‖ ≤ 1e-4·‖double‖, per leaf, step or loss.</summary>
    private const double Agreement = 1e-4;

    private static double[] RunSingle(GemmCase g, bool twin)
    {
        var c = (double[])g.C.Clone();
        var a = twin ? Array.ConvertAll(g.A, v => (float)v) : null;
        Gemm.MultiplySingle(g.Path, g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, g.A, a, g.Lda, g.B, g.Ldb, g.Beta, c, g.Ldc);
        return c;
    }

    /// <summary>
    /// Each entry within |alpha|·(k + 3)·u·Σₚ|op(A)ᵢₚ·op(B)ₚⱼ| (with 0.1% for γₖ = k·u/(1 − k·u)) of the exact value, plus
    /// the double product's 1e-12: rounding both operands costs 2u per term and k float32 additions at most k·u; the
    /// rest is double. Storage of C outside the m×n block is unchanged.
    /// </summary>
    private static void AssertWithinSingleBound(GemmCase g, double[] c)
    {
        for (var j = 0; j < g.N; j++)
            for (var i = 0; i < g.M; i++)
            {
                double sum = 0, magnitude = 0;
                for (var p = 0; p < g.K; p++)
                {
                    var term = g.OpA(i, p) * g.OpB(p, j);
                    (sum, magnitude) = (sum + term, magnitude + Math.Abs(term));
                }
                var before = g.C[i + (j * g.Ldc)];
                var expected = g.Beta == 0 ? g.Alpha * sum : (g.Alpha * sum) + (g.Beta * before);
                var bound = (Math.Abs(g.Alpha) * magnitude * (((g.K + 3) * Unit * 1.001) + 1e-12)) + (g.Beta == 0 ? 0 : 1e-12 * Math.Abs(g.Beta * before));
                var actual = c[i + (j * g.Ldc)];
                Assert.True(Math.Abs(actual - expected) <= bound, $"C[{i},{j}] = {actual:R}, exact {expected:R} (bound {bound:R}) for {g}");
            }
        for (var index = 0; index < c.Length; index++)
            Assert.True(index % g.Ldc < g.M && index / g.Ldc < g.N || BitConverter.DoubleToInt64Bits(c[index]) == BitConverter.DoubleToInt64Bits(g.C[index]),
                $"Storage of C at {index}, outside the {g.M}×{g.N} block, was written for {g}");
    }

    [Property(MaxTest = 200)]
    public Property SingleProductsAreWithinFloat32sBoundOfTheExactProduct() =>
        Prop.ForAll(GemmTests.Cases(maxDimension: 70, maxPadding: 4).ToArbitrary(), Gen.Elements(false, true).ToArbitrary(),
            (g, twin) => AssertWithinSingleBound(g, RunSingle(g, twin)));

    [Property(MaxTest = 12)]
    public Property SingleProductsSpanningSeveralBlocksAreWithinFloat32sBound() =>
        Prop.ForAll(GemmTests.Cases(maxDimension: 300, maxPadding: 2).ToArbitrary(), Gen.Elements(false, true).ToArbitrary(),
            (g, twin) => AssertWithinSingleBound(g, RunSingle(g, twin)));

    [Fact]
    public void SingleProductsRoundTheirOperandsToFloat32()
    {
        var a = new[] { 1 + Math.Pow(2, -30) };                                           // not a float32: rounds to 1
        foreach (var path in GemmTests.AcceleratedPaths)
            foreach (var twin in new[] { false, true })
            {
                var c = new double[1];
                Gemm.MultiplySingle(path, false, false, 1, 1, 1, 1.0, a, twin ? [(float)a[0]] : null, 1, [1.0], 1, 0.0, c, 1);
                Assert.Equal(1.0, c[0]);
                Gemm.Multiply(path, false, false, 1, 1, 1, 1.0, a, 1, [1.0], 1, 0.0, c, 1);
                Assert.Equal(a[0], c[0]);
            }
    }

    [Property(MaxTest = 60)]
    public Property AFloat32TwinOfAGivesTheBitsOfRoundingAWhilePacking() =>
        Prop.ForAll(GemmTests.Cases(maxDimension: 300, maxPadding: 2).ToArbitrary(), g =>
            Assert.Equal(Bits(RunSingle(g, twin: false)), Bits(RunSingle(g, twin: true))));

    /// <summary>A sequence kernel multiplies many steps at once, and a team shares the rows of a product: both rely on these laws.</summary>
    [Property(MaxTest = 60)]
    public Property EachColumnAndEachBandOfRowsHasTheBitsOfItsProductAlone() =>
        Prop.ForAll(GemmTests.Cases(maxDimension: 300, maxPadding: 2).ToArbitrary(), Gen.Choose(0, 1000).Three().ToArbitrary(), (g, pick) =>
        {
            if (g.N == 0 || g.M == 0) return;
            var whole = RunSingle(g, twin: true);
            var twin = Array.ConvertAll(g.A, v => (float)v);
            var j = pick.Item1 % g.N;
            var column = (double[])g.C.Clone();
            Gemm.MultiplySingle(g.Path, g.TransA, g.TransB, g.M, 1, g.K, g.Alpha, g.A, twin, g.Lda, g.B.AsSpan(g.TransB ? j : j * g.Ldb), g.Ldb, g.Beta,
                column.AsSpan(j * g.Ldc), g.Ldc);
            Assert.Equal(Bits(whole.AsSpan(j * g.Ldc, g.M).ToArray()), Bits(column.AsSpan(j * g.Ldc, g.M).ToArray()));
            var (r0, r1) = (Math.Min(pick.Item2, pick.Item3) % g.M, (Math.Max(pick.Item2, pick.Item3) % g.M) + 1);
            if (r1 <= r0) return;
            var rows = (double[])g.C.Clone();
            var from = g.TransA ? r0 * g.Lda : r0;
            Gemm.MultiplySingle(g.Path, g.TransA, g.TransB, r1 - r0, g.N, g.K, g.Alpha, g.A.AsSpan(from), twin.AsSpan(from), g.Lda, g.B, g.Ldb, g.Beta,
                rows.AsSpan(r0), g.Ldc);
            for (var k = 0; k < g.N; k++)
                Assert.Equal(Bits(whole.AsSpan(k * g.Ldc + r0, r1 - r0).ToArray()), Bits(rows.AsSpan(k * g.Ldc + r0, r1 - r0).ToArray()));
        });

    // ---- sequences ----

    private static Gen<LayerSpec> Specs =>
        from cell in Gen.Elements(Enum.GetValues<CellKind>())
        from reverse in Gen.Elements(Enum.GetValues<CellKind>())
        from direction in Gen.Choose(0, 2)
        select direction == 0 ? LayerSpec.Bi(cell, reverse) : LayerSpec.Uni(cell);

    /// <summary>
    /// Stacks of one to three layers of every cell, one-direction or bidirectional, full or ragged, with products of up
    /// to a hundred rows: loss, gradients, dx, the gradients of the initial states and every layer's outputs in single
    /// precision agree with double to a relative 1e-4 (in 600 cases the largest difference stayed below 1e-5).
    /// </summary>
    [Property(MaxTest = 40)]
    public Property EveryCellAndCompositionInSinglePrecisionAgreesWithDouble() =>
        Prop.ForAll((from layers in Gen.Choose(1, 3)
                     from specs in Specs.ArrayOf(layers)
                     from ragged in Gen.Elements(false, true)
                     from nx in Gen.Choose(1, 40)
                     from na in Gen.Choose(1, 48)
                     from ny in Gen.Choose(2, 30)
                     from m in Gen.Choose(1, 40)
                     from t in Gen.Choose(1, 12)
                     from seed in Gen.Choose(0, int.MaxValue - 1)
                     select new StackCase(new Shaped(new Dims(nx, na, ny, m, t), seed), [.. specs], ragged)).ToArbitrary(), c =>
        {
            var lengths = c.LengthsArgument;
            var d = Stack.LossAndGradients(c.P, c.Xs, c.Labels, lengths, c.Initial);
            var s = Compute.With(Precision.Single, () => Stack.LossAndGradients(c.P, c.Xs, c.Labels, lengths, c.Initial));
            var fd = Stack.Forward(c.P, c.Xs, lengths, c.Initial);
            var fs = Compute.With(Precision.Single, () => Stack.Forward(c.P, c.Xs, lengths, c.Initial));
            return Agree("loss", [d.Loss], [s.Loss])
                .And(Agree(d.Gradients, s.Gradients))
                .And(Agree("dx", d.Dx, s.Dx))
                .And(Agree("dInitial", [.. d.DInitial.SelectMany(l => l)], [.. s.DInitial.SelectMany(l => l)]))
                .And(Agree("outputs", [.. fd.States.SelectMany(l => l)], [.. fs.States.SelectMany(l => l)]));
        });

    /// <summary>The sequence functions of the RNN, the LSTM and the GRU (forward, backward, loss, checkpointed) in single precision agree with double.</summary>
    [Property(MaxTest = 20)]
    public Property CellSequenceFunctionsInSinglePrecisionAgreeWithDouble() =>
        Prop.ForAll((from nx in Gen.Choose(1, 40)
                     from na in Gen.Choose(1, 64)
                     from ny in Gen.Choose(2, 30)
                     from m in Gen.Choose(1, 40)
                     from t in Gen.Choose(1, 12)
                     from seed in Gen.Choose(0, int.MaxValue - 1)
                     select new Shaped(new Dims(nx, na, ny, m, t), seed)).ToArbitrary(), shape =>
        {
            static T Single<T>(Func<T> f) => Compute.With(Precision.Single, f);
            var (r, l, g) = (new RnnCase(shape), new LstmCase(shape), new GruCase(shape));
            var every = Math.Max(1, r.Xs.Length / 2);
            Property Rnn(RnnLoss a, RnnLoss b) => Agree("loss", [a.Loss], [b.Loss]).And(Agree(a.Gradients, b.Gradients)).And(Agree("dx", a.Dx, b.Dx))
                .And(Agree("da0", [a.Da0], [b.Da0])).And((!Same(a.Gradients, b.Gradients)).Label("single precision gave double's bits"));
            Property Lstm(LstmLoss a, LstmLoss b) => Agree("loss", [a.Loss], [b.Loss]).And(Agree(a.Gradients, b.Gradients)).And(Agree("dx", a.Dx, b.Dx))
                .And(Agree("da0, dc0", [a.Da0, a.Dc0], [b.Da0, b.Dc0])).And((!Same(a.Gradients, b.Gradients)).Label("single precision gave double's bits"));
            Property Gru(GruLoss a, GruLoss b) => Agree("loss", [a.Loss], [b.Loss]).And(Agree(a.Gradients, b.Gradients)).And(Agree("dx", a.Dx, b.Dx))
                .And(Agree("da0", [a.Da0], [b.Da0])).And((!Same(a.Gradients, b.Gradients)).Label("single precision gave double's bits"));
            var rf = (RnnFunctional.Rnn.Forward(r.P, r.Xs, r.A0), Single(() => RnnFunctional.Rnn.Forward(r.P, r.Xs, r.A0)));
            var lf = (RnnFunctional.Lstm.Forward(l.P, l.Xs, l.A0, l.C0), Single(() => RnnFunctional.Lstm.Forward(l.P, l.Xs, l.A0, l.C0)));
            var gb = (RnnFunctional.Gru.Backward(RnnFunctional.Gru.Forward(g.P, g.Xs, g.A0), g.Da),
                Single(() => RnnFunctional.Gru.Backward(RnnFunctional.Gru.Forward(g.P, g.Xs, g.A0), g.Da)));
            return Rnn(RnnFunctional.Rnn.LossAndGradients(r.P, r.Xs, r.A0, r.Labels), Single(() => RnnFunctional.Rnn.LossAndGradients(r.P, r.Xs, r.A0, r.Labels)))
                .And(Lstm(RnnFunctional.Lstm.LossAndGradients(l.P, l.Xs, l.A0, l.C0, l.Labels),
                    Single(() => RnnFunctional.Lstm.LossAndGradients(l.P, l.Xs, l.A0, l.C0, l.Labels))))
                .And(Gru(RnnFunctional.Gru.LossAndGradientsCheckpointed(g.P, g.Xs, g.A0, g.Labels, every),
                    Single(() => RnnFunctional.Gru.LossAndGradientsCheckpointed(g.P, g.Xs, g.A0, g.Labels, every))))
                .And(Agree("RNN states", rf.Item1.States, rf.Item2.States))
                .And(Agree("LSTM states and cells", [.. lf.Item1.States, .. lf.Item1.Cells], [.. lf.Item2.States, .. lf.Item2.Cells]))
                .And(Agree(gb.Item1.Gradients, gb.Item2.Gradients)).And(Agree("GRU backward dx", gb.Item1.Dx, gb.Item2.Dx));
        });

    /// <summary>
    /// A layer of every cell, one-direction and bidirectional, computes in single precision when asked: its outputs
    /// differ from double's bits (a layer left in double would give them exactly), and so do the gradients of its
    /// backward from given output gradients, which runs in the precision of its forward wherever it is called.
    /// </summary>
    [Fact]
    public void ALayerOfEveryCellRunsInSinglePrecisionWhenAsked()
    {
        var kinds = Enum.GetValues<CellKind>();
        foreach (var (kind, k) in kinds.Select((kind, k) => (kind, k)))
            foreach (var spec in new[] { LayerSpec.Uni(kind), LayerSpec.Bi(kind, kind) })
            {
                var c = new StackCase(new Shaped(new Dims(7, 9, 5, 4, 5), k), [spec], ragged: true);
                var (d, s) = (Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial), Compute.With(Precision.Single, () => Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial)));
                Assert.False(Same(d.States[0], s.States[0]), $"{c}: the outputs have double's bits in single precision");
                var back = (Stack.Backward(d, c.DTop), Stack.Backward(s, c.DTop));                                       // a backward follows its forward
                Assert.False(Same(back.Item1.Gradients, back.Item2.Gradients), $"{c}: the backward has double's bits in single precision");
            }
    }

    [Fact]
    public void ComputeWithRestoresThePrecisionAndRefusesAnUndefinedOne()
    {
        Assert.Equal(Precision.Double, Compute.Precision);
        Assert.Equal(Precision.Single, Compute.With(Precision.Single, () => Compute.Precision));
        Assert.Throws<InvalidOperationException>(() => Compute.With<int>(Precision.Single, () => throw new InvalidOperationException()));
        Assert.Equal(Precision.Double, Compute.Precision);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Compute.With((Precision)7, () => 0));
        Assert.Equal("precision", e.ParamName);
    }

    // ---- agreement ----

    /// <summary>
    /// ‖b − a‖₂ ≤ 1e-4·‖a‖₂ over a whole group of values (every gradient of a tree, every step of a sequence): a norm-wise
    /// bound, since a single small entry or leaf made of cancelling terms carries a larger relative error.
    /// </summary>
    private static Property Agree(string what, IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        double difference = 0, reference = 0;
        for (var i = 0; i < a.Count; i++) (difference, reference) = (difference + (b[i] - a[i]) * (b[i] - a[i]), reference + a[i] * a[i]);
        var relative = Math.Sqrt(difference) / Math.Sqrt(reference);
        return (a.Count == b.Count && Math.Sqrt(difference) <= Agreement * Math.Sqrt(reference)).Label($"{what}: relative difference {relative:E2}");
    }

    private static Property Agree(string what, ImmutableArray<Matrix<double>> a, ImmutableArray<Matrix<double>> b) =>
        a.Length != b.Length ? false.Label($"{what}: {a.Length} against {b.Length} matrices")
        : Agree(what, [.. a.SelectMany(m => m.ToColumnMajorArray())], [.. b.SelectMany(m => m.ToColumnMajorArray())]);

    private static Property Agree<T>(T a, T b) where T : IParameterTree<T> =>
        Agree("gradients", [.. a.ToLeaves().SelectMany(l => l.Values)], [.. b.ToLeaves().SelectMany(l => l.Values)]);

    private static long[] Bits(double[] values) => Array.ConvertAll(values, BitConverter.DoubleToInt64Bits);
}
