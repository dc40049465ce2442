using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnFunctional.Kernels;

namespace RnnFunctional.Tests;

/// <summary>
/// The vector loops of <see cref="Lanes"/> and the sums of <see cref="LayerNorm"/> against scalar loops of the formulas
/// they document, bit for bit, on spans of random lengths (whole vectors and zero-padded tails alike); the elements past
/// the output's length are never written.
/// </summary>
public sealed class LanesTests
{
    /// <summary>Six spans of one random length 0–70 (most not a multiple of the vector width), each with a sentinel after it.</summary>
    private static Gen<double[][]> Spans =>
        from length in Gen.Choose(0, 70)
        from spans in Gen.ArrayOf(Gen.Choose(-1_000_000, 1_000_000).Select(i => i * 3.7e-6), length + 1).ArrayOf(6)
        select spans;

    private const double Sentinel = 12345.0;

    /// <summary>Runs a kernel on the spans (the last one is written, with its sentinel past the end) and compares every element with a scalar formula.</summary>
    private static Property Agrees(Action<double[][], Span<double>> kernel, Func<double[][], int, double> formula) =>
        Prop.ForAll(Spans.ToArbitrary(), s =>
        {
            var n = s[0].Length - 1;
            var y = (double[])s[5].Clone();
            y[n] = Sentinel;
            var expected = Enumerable.Range(0, n).Select(k => formula(s, k)).ToArray();
            kernel(s, y.AsSpan(0, n));
            var bad = Enumerable.Range(0, n).FirstOrDefault(k => BitConverter.DoubleToInt64Bits(y[k]) != BitConverter.DoubleToInt64Bits(expected[k]), -1);
            return (bad < 0).Label(bad < 0 ? "same bits" : $"n = {n}, element {bad}: {y[bad]:R} against {expected[bad]:R}")
                .And((y[n] == Sentinel).Label("nothing written past the end"));
        });

    private static ReadOnlySpan<double> In(double[][] s, int k) => s[k].AsSpan(0, s[k].Length - 1);

    [Property(MaxTest = 200)]
    public Property MultiplyIsTheProduct() => Agrees((s, y) => Lanes.Multiply(In(s, 0), In(s, 1), y), (s, k) => s[0][k] * s[1][k]);

    [Property(MaxTest = 200)]
    public Property MultiplyByANumberIsTheProduct() => Agrees((s, y) => Lanes.Multiply(In(s, 0), s[1][^1], y), (s, k) => s[0][k] * s[1][^1]);

    [Property(MaxTest = 200)]
    public Property MultiplyAddRoundsTheProductFirst() =>
        Agrees((s, y) => Lanes.MultiplyAdd(In(s, 0), In(s, 1), In(s, 2), y), (s, k) => s[0][k] * s[1][k] + s[2][k]);

    [Property(MaxTest = 200)]
    public Property SumOfTwoProducts() =>
        Agrees((s, y) => Lanes.SumOfProducts(In(s, 0), In(s, 1), In(s, 2), In(s, 3), y), (s, k) => s[0][k] * s[1][k] + s[2][k] * s[3][k]);

    [Property(MaxTest = 200)]
    public Property SumOfTwoProductsAndATerm() =>
        Agrees((s, y) => Lanes.SumOfProducts(In(s, 0), In(s, 1), In(s, 2), In(s, 3), In(s, 4), y),
            (s, k) => s[0][k] * s[1][k] + s[2][k] * s[3][k] + s[4][k]);

    [Property(MaxTest = 200)]
    public Property AddProductAccumulates() =>
        Agrees((s, y) => Lanes.AddProduct(In(s, 0), In(s, 1), y), (s, k) => s[5][k] + s[0][k] * s[1][k]);

    /// <summary>Both sums of <see cref="Lanes.AddWithProduct"/>: the first is checked through the kernel's output, the second here.</summary>
    [Property(MaxTest = 200)]
    public Property AddWithProductAccumulatesBoth() =>
        Agrees((s, y) =>
        {
            var times = s[4][..^1];
            Lanes.AddWithProduct(In(s, 0), In(s, 1), y, times);
            for (var k = 0; k < times.Length; k++)
                if (BitConverter.DoubleToInt64Bits(times[k]) != BitConverter.DoubleToInt64Bits(s[4][k] + s[0][k] * s[1][k])) y[k] = double.NaN;
        }, (s, k) => s[5][k] + s[0][k]);

    /// <summary>
    /// All five outputs of <see cref="Lanes.GainsBackward"/> (three sums, dĥ, and dx̂ written over dz): dz is checked
    /// through the kernel's output, the others here; a wrong one turns that element to NaN.
    /// </summary>
    [Property(MaxTest = 200)]
    public Property GainsBackwardIsItsFormula() =>
        Agrees((s, y) =>
        {
            var n = y.Length;
            var (db, dgx, dgh, dhHat) = (s[2][..n], s[3][..n], s[4][..n], new double[n + 1]);
            dhHat[n] = Sentinel;
            var dz = y.ToArray();
            Lanes.GainsBackward(y, In(s, 0), In(s, 1), In(s, 2), In(s, 3), db, dgx, dgh, y, dhHat.AsSpan(0, n));
            static bool Same(double a, double b) => BitConverter.DoubleToInt64Bits(a) == BitConverter.DoubleToInt64Bits(b);
            for (var k = 0; k < n; k++)
                if (!Same(db[k], s[2][k] + dz[k]) || !Same(dgx[k], s[3][k] + dz[k] * s[0][k]) || !Same(dgh[k], s[4][k] + dz[k] * s[1][k])
                    || !Same(dhHat[k], dz[k] * s[3][k]))
                    y[k] = double.NaN;
            if (dhHat[n] != Sentinel && n > 0) y[0] = double.NaN;
        }, (s, k) => s[5][k] * s[2][k]);

    /// <summary>
    /// LayerNorm.Forward is μ = Σ v / n, d = v − μ, rstd = 1/√(Σ d⊙d / n + ε), v̂ = d·rstd, element by element, with
    /// both sums in the documented order; the returned rstd is checked too (a wrong one turns every element to NaN).
    /// </summary>
    [Property(MaxTest = 200)]
    public Property LayerNormForwardIsItsFormula() =>
        Agrees((s, y) =>
        {
            var rstd = LayerNorm.Forward(In(s, 0), y, 1e-5);
            if (BitConverter.DoubleToInt64Bits(rstd) != BitConverter.DoubleToInt64Bits(Rstd(s))) y.Fill(double.NaN);
        }, (s, k) => (s[0][k] - Mean(s)) * Rstd(s));

    private static double Mean(double[][] s) => Ordered(i => s[0][i], s[0].Length - 1) / (s[0].Length - 1);

    private static double Rstd(double[][] s)
    {
        var (n, mean) = (s[0].Length - 1, Mean(s));
        return 1.0 / Math.Sqrt(Ordered(i => (s[0][i] - mean) * (s[0][i] - mean), n) / n + 1e-5);
    }

    /// <summary>The documented order: element i into partial sum i mod 16, the sixteen as four vectors added pairwise, then their lanes pairwise.</summary>
    private static double Ordered(Func<int, double> term, int n)
    {
        var p = new double[16];
        for (var i = 0; i < n; i++) p[i % 16] += term(i);
        var lanes = Enumerable.Range(0, 4).Select(l => (p[l] + p[4 + l]) + (p[8 + l] + p[12 + l])).ToArray();
        return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }

    [Property(MaxTest = 300)]
    public Property LayerNormSumsInItsDocumentedOrder() =>
        Prop.ForAll(Spans.ToArbitrary(), s =>
        {
            var (x, y, n) = (In(s, 0).ToArray(), In(s, 1).ToArray(), s[0].Length - 1);
            var (sum, dot) = (LayerNorm.Sum(x), LayerNorm.Dot(x, y));
            var (expectedSum, expectedDot) = (Ordered(i => x[i], n), Ordered(i => x[i] * y[i], n));
            var (both, a) = (LayerNorm.SumAndDot(x, y), s[2][^1]);
            var (d, expectedD) = (new double[n], x.Select(v => v - a).ToArray());
            var centered = LayerNorm.Centered(x, a, d);
            var expectedCentered = Ordered(i => expectedD[i] * expectedD[i], n);
            static bool Same(double p, double q) => BitConverter.DoubleToInt64Bits(p) == BitConverter.DoubleToInt64Bits(q);
            return Same(sum, expectedSum).Label($"Σ x: {sum:R} against {expectedSum:R}")
                .And(Same(dot, expectedDot).Label($"Σ x⊙y: {dot:R} against {expectedDot:R}"))
                .And((Same(both.Sum, expectedSum) && Same(both.Dot, expectedDot)).Label($"SumAndDot: {both} against ({expectedSum:R}, {expectedDot:R})"))
                .And((Same(centered, expectedCentered) && Enumerable.Range(0, n).All(k => Same(d[k], expectedD[k])))
                    .Label($"Centered: Σ (x − a)² {centered:R} against {expectedCentered:R}, and x − a element-wise"));
        });

    /// <summary>
    /// LayerNorm.Backward is dv = (dv̂ − mean(dv̂) − v̂⊙mean(dv̂⊙v̂))·rstd element by element, in this order, with the means
    /// from its sums.
    /// </summary>
    [Property(MaxTest = 200)]
    public Property LayerNormBackwardIsItsFormula() =>
        Agrees((s, y) => LayerNorm.Backward(In(s, 0), s[2][^1], In(s, 1), y), (s, k) =>
        {
            var n = s[0].Length - 1;
            var (mean, meanTimesHat) = (LayerNorm.Sum(In(s, 1)) / n, LayerNorm.Dot(In(s, 1), In(s, 0)) / n);
            return (s[1][k] - mean - s[0][k] * meanTimesHat) * s[2][^1];
        });

    [Fact]
    public void DotRefusesAShorterSecondSpan()
    {
        var e = Assert.Throws<ArgumentException>(() => LayerNorm.Dot(new double[5], new double[4]));
        Assert.Equal("y", e.ParamName);
        Assert.Contains("expected y to have at least the 5 elements of x but got 4", e.Message);
    }
}
