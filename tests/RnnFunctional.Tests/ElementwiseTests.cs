using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnFunctional.Kernels;

namespace RnnFunctional.Tests;

/// <summary>
/// Every accelerated path of the element-wise kernels against plain System.Math references, on spans of random
/// lengths (most not a multiple of any vector width), and the property the sequence kernels rely on: the value of an
/// element does not depend on the span it is computed in.
/// </summary>
public sealed class ElementwiseTests
{
    private const double RelativeTolerance = 1e-12;

    /// <summary>2⁻¹⁰²², the smallest positive normal double.</summary>
    private static readonly double SmallestNormal = BitConverter.Int64BitsToDouble(0x0010_0000_0000_0000);

    private static readonly SimdPath[] Paths = Enum.GetValues<SimdPath>().Where(Elementwise.IsAccelerated).ToArray();

    /// <summary>A path, and values from every regime of the maps: tiny, around the tanh threshold 0.625, large, saturating.</summary>
    private static Gen<(SimdPath Path, double[] Values)> Spans =>
        from path in Gen.Elements(Paths)
        from length in Gen.Choose(0, 70)
        from values in Gen.ArrayOf(Gen.OneOf(
            Gen.Choose(-1_000_000, 1_000_000).Select(i => i * 1e-6),
            Gen.Choose(-1_000_000, 1_000_000).Select(i => i * 1e-11),
            Gen.Choose(-1_000_000, 1_000_000).Select(i => 0.625 + i * 1e-7),
            Gen.Choose(-1_000_000, 1_000_000).Select(i => i * 4e-5),
            Gen.Choose(-1_000, 1_000).Select(i => i * 0.8),
            Gen.Elements(0.0, -0.0, 0.625, -0.625, 1e-300, -1e-300, 709.0, -745.0)), length)
        select (path, values);

    /// <summary>
    /// The accuracy asked of an element-wise kernel against its scalar reference: within 1e-12 relative, with no
    /// absolute floor (so not RnnFunctional.Testing.Compare.Close); below the smallest normal double,
    /// where a double has lost its relative precision, both subnormal or zero.
    /// </summary>
    private static bool Accurate(double actual, double expected) =>
        actual == expected
        || Math.Abs(actual - expected) <= RelativeTolerance * Math.Abs(expected)
        || (Math.Abs(expected) < SmallestNormal && Math.Abs(actual) < SmallestNormal);

    private static Property AgreesWithReference(Action<SimdPath, ReadOnlySpan<double>, Span<double>> map, Func<double, double> reference) =>
        Prop.ForAll(Spans.ToArbitrary(), c =>
        {
            var y = new double[c.Values.Length];
            map(c.Path, c.Values, y);
            var bad = Enumerable.Range(0, y.Length).FirstOrDefault(i => !Accurate(y[i], reference(c.Values[i])), -1);
            return (bad < 0).Label(bad < 0 ? "all close" : $"{c.Path}: f({c.Values[bad]:R}) = {y[bad]:R}, reference {reference(c.Values[bad]):R}");
        });

    [Property(MaxTest = 300)]
    public Property TanhAgreesWithMathTanhOnEveryPath() => AgreesWithReference(Elementwise.Tanh, Math.Tanh);

    [Property(MaxTest = 300)]
    public Property SigmoidAgreesWithTheLogisticFunctionOnEveryPath() =>
        AgreesWithReference(Elementwise.Sigmoid, x => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x)));

    [Property(MaxTest = 300)]
    public Property ExpAgreesWithMathExpOnEveryPath() => AgreesWithReference(Elementwise.Exp, Math.Exp);

    [Property(MaxTest = 300)]
    public Property SoftmaxColumnAgreesWithTheReferenceOnEveryPath() =>
        Prop.ForAll(Spans.Where(c => c.Values.Length > 0).ToArbitrary(), c =>
        {
            var p = new double[c.Values.Length];
            var logSumExp = Elementwise.SoftmaxColumn(c.Path, c.Values, p);
            var max = c.Values.Max();
            var sum = c.Values.Sum(v => Math.Exp(v - max));
            var expected = c.Values.Select(v => Math.Exp(v - max) / sum).ToArray();
            // log-sum-exp is max + log Σ e^(x − max). The first term is exact; the second is the log of a sum whose terms
            // are each accurate to 1e-12 relative and which any order of summation gets to (n − 1)·ε relative, so its log
            // is accurate to 1e-12 + 2n·ε ABSOLUTE (d log s = ds / s), however near 0 it is: with max = 0 and the other
            // logits near −30 the log is about 2e-9, and two orders of summation give sums 3 ulps apart, 1.3e-15 in the
            // log (LogSumExpOfASumNearOneIsAccurateToItsUlps). Measured against its own size it failed about one run in
            // a few hundred.
            var reference = max + Math.Log(sum);
            var bound = RelativeTolerance * Math.Abs(max) + RelativeTolerance + 2 * c.Values.Length * (Math.BitIncrement(1.0) - 1.0);
            return p.Zip(expected).All(t => Accurate(t.Item1, t.Item2)).Label("probabilities")
                .And((Math.Abs(logSumExp - reference) <= bound).Label($"log-sum-exp {logSumExp:R} against {reference:R}, bound {bound:R}"));
        });

    [Fact]
    public void LogSumExpOfASumNearOneIsAccurateToItsUlps()
    {
        // max = 0 and 38 logits between −20 and −51.2: Σ e^(x − max) is 1 plus about 1e-9, so its log is known to a few
        // ulps of 1 (2n·ε absolute), not to 1e-12 of its own size; each path is within that of the sequential reference.
        var random = new Random(5);
        var values = Enumerable.Range(0, 39).Select(i => i == 0 ? 0.0 : -(20 + random.Next(0, 40) * 0.8)).ToArray();
        var reference = Math.Log(values.Sum(Math.Exp));
        foreach (var path in Paths)
        {
            var logSumExp = Elementwise.SoftmaxColumn(path, values, new double[values.Length]);
            Assert.InRange(Math.Abs(logSumExp - reference), 0, 2 * values.Length * (Math.BitIncrement(1.0) - 1.0));
            Assert.InRange(Math.Abs(logSumExp - reference), 0, 1e-12 * Math.Abs(reference) + 1e-12);
        }
    }

    [Fact]
    public void LogSumExpNearZeroIsMeasuredAgainstItsTerms()
    {
        // Seven logits of −log 7 (to the grid of the generator): log-sum-exp is about 1e-7 while its terms are about 1.95.
        var values = Enumerable.Repeat(-1.945910, 7).Select((v, i) => v + i * 1e-6).ToArray();
        foreach (var path in Paths)
        {
            var logSumExp = Elementwise.SoftmaxColumn(path, values, new double[values.Length]);
            var max = values.Max();
            var reference = max + Math.Log(values.Sum(v => Math.Exp(v - max)));
            Assert.True(Math.Abs(logSumExp - reference) <= RelativeTolerance * 2 * Math.Abs(max), $"{path}: {logSumExp:R} against {reference:R}");
            Assert.True(Math.Abs(reference) < 1e-5, $"the case sits where log-sum-exp cancels: {reference:R}");
        }
    }

    [Property(MaxTest = 300)]
    public Property AnElementHasTheSameBitsInAnySpan() =>
        Prop.ForAll(Spans.Where(c => c.Values.Length > 0).ToArbitrary(), Gen.Choose(0, 1000).ToArbitrary(), Gen.Choose(0, 1000).ToArbitrary(), (c, a, b) =>
        {
            var (start, end) = (a % c.Values.Length, b % c.Values.Length);
            (start, end) = (Math.Min(start, end), Math.Max(start, end) + 1);
            var maps = new Action<SimdPath, ReadOnlySpan<double>, Span<double>>[] { Elementwise.Tanh, Elementwise.Sigmoid, Elementwise.Exp };
            return maps.All(map =>
            {
                var whole = new double[c.Values.Length];
                var part = new double[end - start];
                map(c.Path, c.Values, whole);
                map(c.Path, c.Values.AsSpan(start, end - start), part);
                return part.Select(BitConverter.DoubleToInt64Bits).SequenceEqual(whole[start..end].Select(BitConverter.DoubleToInt64Bits));
            }).Label($"elements {start}..{end - 1} of {c.Values.Length} on {c.Path}");
        });

    [Property(MaxTest = 300)]
    public Property EveryPathGivesTheBitsOfTheScalarPath() =>
        Prop.ForAll(Spans.ToArbitrary(), c =>
        {
            var maps = new Action<SimdPath, ReadOnlySpan<double>, Span<double>>[] { Elementwise.Tanh, Elementwise.Sigmoid, Elementwise.Exp };
            return maps.All(map =>
            {
                var (vector, scalar) = (new double[c.Values.Length], new double[c.Values.Length]);
                map(c.Path, c.Values, vector);
                map(SimdPath.Scalar, c.Values, scalar);
                return vector.Select(BitConverter.DoubleToInt64Bits).SequenceEqual(scalar.Select(BitConverter.DoubleToInt64Bits));
            }).Label($"{c.Path} against scalar");
        });

    [Property(MaxTest = 200)]
    public Property TanhBackwardIsTheFormulaToTheLastBit() =>
        Prop.ForAll(Gen.Choose(0, 70).SelectMany(n => Gen.ArrayOf(Gen.Choose(-1000, 1000).Select(i => i / 999.0), 3 * n)).ToArbitrary(), v =>
        {
            var n = v.Length / 3;
            var (a, d, next) = (v[..n], v[n..(2 * n)], v[(2 * n)..]);
            var expected = Enumerable.Range(0, n).Select(i => (1.0 - a[i] * a[i]) * (d[i] + next[i])).ToArray();
            Elementwise.TanhBackward(a, d, next);
            return d.SequenceEqual(expected).Label("(1 − a²) ⊙ (d + n)");
        });

    [Fact]
    public void BestPathIsTheWidestAcceleratedPath() => Assert.Equal(Paths.Max(), Elementwise.BestPath);
}
