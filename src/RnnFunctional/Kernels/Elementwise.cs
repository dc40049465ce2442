using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RnnFunctional.Kernels;

/// <summary>
/// Element-wise kernels on spans of doubles. The transcendental maps (tanh, the logistic sigmoid, exp) have a
/// Vector512, a Vector256 and a scalar path, the fastest chosen once at start-up. A span whose length is not a
/// multiple of the vector width has its tail computed in a zero-padded vector, so every element of every span goes
/// through the same instructions: the value computed for an element never depends on the length of the span it sits
/// in, which keeps a step-by-step fold and a kernel over many steps bitwise identical. The arithmetic maps use only
/// correctly rounded operations and give the same bits on every path.
/// </summary>
internal static class Elementwise
{
    /// <summary>The widest path this machine accelerates.</summary>
    public static SimdPath BestPath { get; } =
        IsAccelerated(SimdPath.Vector512) ? SimdPath.Vector512
        : IsAccelerated(SimdPath.Vector256) ? SimdPath.Vector256
        : SimdPath.Scalar;

    /// <summary>Whether <paramref name="path"/> runs on hardware instructions here (a forced path still computes the same values).</summary>
    public static bool IsAccelerated(SimdPath path) => path switch
    {
        SimdPath.Scalar => true,
        SimdPath.Vector256 => Vector256.IsHardwareAccelerated,
        SimdPath.Vector512 => Vector512.IsHardwareAccelerated,
        _ => false,
    };

    /// <summary>y = tanh(x), element-wise (x and y may be the same span), to within 2 ulp.</summary>
    public static void Tanh(ReadOnlySpan<double> x, Span<double> y) => Map<TanhMap>(BestPath, x, y);

    /// <summary>y = tanh(x) on the given path.</summary>
    public static void Tanh(SimdPath path, ReadOnlySpan<double> x, Span<double> y) => Map<TanhMap>(path, x, y);

    /// <summary>y = 1/(1 + e^−x), element-wise, without overflow for large |x|.</summary>
    public static void Sigmoid(ReadOnlySpan<double> x, Span<double> y) => Map<SigmoidMap>(BestPath, x, y);

    /// <summary>y = 1/(1 + e^−x) on the given path.</summary>
    public static void Sigmoid(SimdPath path, ReadOnlySpan<double> x, Span<double> y) => Map<SigmoidMap>(path, x, y);

    /// <summary>y = e^x, element-wise.</summary>
    public static void Exp(SimdPath path, ReadOnlySpan<double> x, Span<double> y) => Map<ExpMap>(path, x, y);

    /// <summary>y = max(0, x), element-wise.</summary>
    public static void Relu(ReadOnlySpan<double> x, Span<double> y)
    {
        for (var i = 0; i < x.Length; i++) y[i] = x[i] > 0 ? x[i] : 0.0;
    }

    /// <summary>
    /// The softmax of one column, written into <paramref name="probabilities"/> (which may be
    /// <paramref name="logits"/> itself): e^(x − max) / Σ e^(x − max). Returns log Σ_i e^(x_i), computed as
    /// max + log Σ e^(x − max) so that it stays finite for logits of any size.
    /// </summary>
    public static double SoftmaxColumn(ReadOnlySpan<double> logits, Span<double> probabilities) =>
        SoftmaxColumn(BestPath, logits, probabilities);

    /// <summary><see cref="SoftmaxColumn(ReadOnlySpan{double}, Span{double})"/> on the given path.</summary>
    public static double SoftmaxColumn(SimdPath path, ReadOnlySpan<double> logits, Span<double> probabilities)
    {
        var (max, logSum) = ShiftedSoftmaxColumn(path, logits, probabilities);
        return max + logSum;
    }

    /// <summary>
    /// The softmax of one column, as <see cref="SoftmaxColumn(ReadOnlySpan{double}, Span{double})"/>, returning its
    /// log-sum-exp in two terms, max and log Σ e^(x − max) ∈ [0, log n], so that a caller can subtract a logit from
    /// the max first (a cross-entropy then keeps every digit however large the logits).
    /// </summary>
    public static (double Max, double LogSum) ShiftedSoftmaxColumn(SimdPath path, ReadOnlySpan<double> logits, Span<double> probabilities)
    {
        var max = TensorPrimitives.Max(logits);
        TensorPrimitives.Subtract(logits, max, probabilities);
        Map<ExpMap>(path, probabilities, probabilities);
        var sum = Sum(probabilities);
        TensorPrimitives.Divide(probabilities, sum, probabilities);
        return (max, Math.Log(sum));
    }

    /// <summary>Σ x in a fixed order that does not depend on the path: four interleaved partial sums, then (s₀ + s₁) + (s₂ + s₃).</summary>
    public static double Sum(ReadOnlySpan<double> x)
    {
        var (s0, s1, s2, s3) = (0.0, 0.0, 0.0, 0.0);
        var i = 0;
        for (; i <= x.Length - 4; i += 4)
        {
            s0 += x[i];
            s1 += x[i + 1];
            s2 += x[i + 2];
            s3 += x[i + 3];
        }
        if (i < x.Length) s0 += x[i];
        if (i + 1 < x.Length) s1 += x[i + 1];
        if (i + 2 < x.Length) s2 += x[i + 2];
        return (s0 + s1) + (s2 + s3);
    }

    /// <summary>Adds <paramref name="bias"/> to each column of the column-major <paramref name="block"/> (bias.Length rows).</summary>
    public static void AddToColumns(Span<double> block, ReadOnlySpan<double> bias)
    {
        for (var j = 0; j < block.Length; j += bias.Length)
            TensorPrimitives.Add(block.Slice(j, bias.Length), bias, block.Slice(j, bias.Length));
    }

    /// <summary>
    /// Adds every column of the column-major <paramref name="block"/> (sums.Length rows) to <paramref name="sums"/>,
    /// first column first: the row sums, in the same order as a sequential loop over the columns.
    /// </summary>
    public static void AddColumnsTo(ReadOnlySpan<double> block, Span<double> sums)
    {
        for (var j = 0; j < block.Length; j += sums.Length)
            TensorPrimitives.Add(sums, block.Slice(j, sums.Length), sums);
    }

    /// <summary>dz = (1 − a²) ⊙ (d + n), written over <paramref name="d"/>: the gradient through a = tanh(z) given da = d + n.</summary>
    public static void TanhBackward(ReadOnlySpan<double> a, Span<double> d, ReadOnlySpan<double> n)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var one = Vector<double>.One;
            var width = Vector<double>.Count;
            for (; i <= a.Length - width; i += width)
            {
                var av = new Vector<double>(a[i..]);
                ((one - av * av) * (new Vector<double>(d[i..]) + new Vector<double>(n[i..]))).CopyTo(d[i..]);
            }
        }
        for (; i < a.Length; i++) d[i] = (1.0 - a[i] * a[i]) * (d[i] + n[i]);
    }

    /// <summary>dz = [a &gt; 0] ⊙ (d + n), written over <paramref name="d"/>: the gradient through a = max(0, z) given da = d + n.</summary>
    public static void ReluBackward(ReadOnlySpan<double> a, Span<double> d, ReadOnlySpan<double> n)
    {
        for (var i = 0; i < a.Length; i++) d[i] = (a[i] > 0 ? 1.0 : 0.0) * (d[i] + n[i]);
    }

    // ---- the transcendental maps, one formula per path ----

    private interface IMap
    {
        static abstract Vector512<double> Apply(Vector512<double> x);

        static abstract Vector256<double> Apply(Vector256<double> x);

        static abstract double Apply(double x);
    }

    /// <summary>Applies <typeparamref name="TMap"/> to every element; the tail shorter than a vector is computed in a zero-padded vector.</summary>
    private static void Map<TMap>(SimdPath path, ReadOnlySpan<double> x, Span<double> y) where TMap : struct, IMap
    {
        if (y.Length < x.Length) throw new ArgumentException("destination shorter than source", nameof(y));
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var yr = ref MemoryMarshal.GetReference(y);
        var n = x.Length;
        var i = 0;
        switch (path)
        {
            case SimdPath.Vector512:
                for (; i <= n - 8; i += 8)
                    TMap.Apply(Vector512.LoadUnsafe(ref xr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
                if (i < n)
                {
                    Span<double> pad = stackalloc double[8];
                    pad.Clear();
                    x[i..].CopyTo(pad);
                    TMap.Apply(Vector512.Create<double>(pad)).CopyTo(pad);
                    pad[..(n - i)].CopyTo(y[i..]);
                }
                break;
            case SimdPath.Vector256:
                for (; i <= n - 4; i += 4)
                    TMap.Apply(Vector256.LoadUnsafe(ref xr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
                if (i < n)
                {
                    Span<double> pad = stackalloc double[4];
                    pad.Clear();
                    x[i..].CopyTo(pad);
                    TMap.Apply(Vector256.Create<double>(pad)).CopyTo(pad);
                    pad[..(n - i)].CopyTo(y[i..]);
                }
                break;
            default:
                for (; i < n; i++) y[i] = TMap.Apply(x[i]);
                break;
        }
    }

    /// <summary>
    /// tanh as in Cephes: for |x| ≤ 0.625 the rational approximation x + x·x²·P(x²)/Q(x²); above,
    /// sign(x)·(1 − e)/(1 + e) with e = e^−2|x|. Both branches share one division; e is not computed for a vector
    /// whose lanes all take the first branch, which changes no lane's value.
    /// </summary>
    private readonly struct TanhMap : IMap
    {
        private const double P0 = -9.64399179425052238628E-1, P1 = -9.92877231001918586564E1, P2 = -1.61468768441708447952E3;
        private const double Q0 = 1.12811678491632931402E2, Q1 = 2.23548839060100448583E3, Q2 = 4.84406305325125486048E3;
        private const double Threshold = 0.625;

        public static Vector512<double> Apply(Vector512<double> x)
        {
            var z = Vector512.Abs(x);
            var s = x * x;
            var p = ((Vector512.Create(P0) * s) + Vector512.Create(P1)) * s + Vector512.Create(P2);
            var q = (((s + Vector512.Create(Q0)) * s) + Vector512.Create(Q1)) * s + Vector512.Create(Q2);
            var large = Vector512.GreaterThan(z, Vector512.Create(Threshold));
            var e = Vector512.GreaterThanAny(z, Vector512.Create(Threshold)) ? ExpMap.Apply(-(z + z)) : Vector512<double>.Zero;
            var d = Vector512.ConditionalSelect(large, Vector512<double>.One - e, x * s * p)
                  / Vector512.ConditionalSelect(large, Vector512<double>.One + e, q);
            return Vector512.ConditionalSelect(large, d | (x & Vector512.Create(-0.0)), x + d);
        }

        public static Vector256<double> Apply(Vector256<double> x)
        {
            var z = Vector256.Abs(x);
            var s = x * x;
            var p = ((Vector256.Create(P0) * s) + Vector256.Create(P1)) * s + Vector256.Create(P2);
            var q = (((s + Vector256.Create(Q0)) * s) + Vector256.Create(Q1)) * s + Vector256.Create(Q2);
            var large = Vector256.GreaterThan(z, Vector256.Create(Threshold));
            var e = Vector256.GreaterThanAny(z, Vector256.Create(Threshold)) ? ExpMap.Apply(-(z + z)) : Vector256<double>.Zero;
            var d = Vector256.ConditionalSelect(large, Vector256<double>.One - e, x * s * p)
                  / Vector256.ConditionalSelect(large, Vector256<double>.One + e, q);
            return Vector256.ConditionalSelect(large, d | (x & Vector256.Create(-0.0)), x + d);
        }

        public static double Apply(double x)
        {
            var z = Math.Abs(x);
            var s = x * x;
            if (z > Threshold)
            {
                var e = ExpMap.Apply(-(z + z));
                return Math.CopySign((1.0 - e) / (1.0 + e), x);
            }
            var p = ((P0 * s) + P1) * s + P2;
            var q = (((s + Q0) * s) + Q1) * s + Q2;
            return x + x * s * p / q;
        }
    }

    /// <summary>σ(x) from e = e^−|x| ∈ (0, 1]: 1/(1 + e) for x ≥ 0 and e/(1 + e) below, so nothing overflows.</summary>
    private readonly struct SigmoidMap : IMap
    {
        public static Vector512<double> Apply(Vector512<double> x)
        {
            var e = ExpMap.Apply(-Vector512.Abs(x));
            var numerator = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512<double>.Zero), Vector512<double>.One, e);
            return numerator / (Vector512<double>.One + e);
        }

        public static Vector256<double> Apply(Vector256<double> x)
        {
            var e = ExpMap.Apply(-Vector256.Abs(x));
            var numerator = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<double>.Zero), Vector256<double>.One, e);
            return numerator / (Vector256<double>.One + e);
        }

        public static double Apply(double x)
        {
            var e = ExpMap.Apply(-Math.Abs(x));
            return (x >= 0 ? 1.0 : e) / (1.0 + e);
        }
    }

    /// <summary>
    /// e^x without a branch on the vector (the library's vector exponential falls back to scalar code for a whole
    /// vector when one lane is out of range, which would make a lane's bits depend on its neighbours). x is clamped to
    /// [−746, 710], beyond which e^x is 0 or ∞; n = round(x/ln 2) by adding 1.5·2⁵², r = x − n·ln 2 in two fused
    /// steps (|r| ≤ ln 2 / 2), e^r by its Taylor polynomial of degree 13, and 2ⁿ applied as 2^⌊n/2⌋·2^(n−⌊n/2⌋)
    /// so that results between the smallest normal and the smallest subnormal double round only once. Every
    /// operation is correctly rounded or fused, so all three paths give the same bits.
    /// </summary>
    private readonly struct ExpMap : IMap
    {
        private const double Lowest = -746, Highest = 710;
        private const double Log2E = 1.4426950408889634, Ln2High = 6.93147180369123816490e-01, Ln2Low = 1.90821492927058770002e-10;
        private const double Shifter = 6755399441055744.0; // 1.5·2⁵²: adding it rounds to an integer held in the low bits
        private const long ShifterBits = 0x4338_0000_0000_0000;
        private const double C2 = 1.0 / 2, C3 = 1.0 / 6, C4 = 1.0 / 24, C5 = 1.0 / 120, C6 = 1.0 / 720, C7 = 1.0 / 5040,
            C8 = 1.0 / 40320, C9 = 1.0 / 362880, C10 = 1.0 / 3628800, C11 = 1.0 / 39916800, C12 = 1.0 / 479001600, C13 = 1.0 / 6227020800;

        public static Vector512<double> Apply(Vector512<double> x)
        {
            x = Vector512.Min(Vector512.Max(x, Vector512.Create(Lowest)), Vector512.Create(Highest));
            var n = Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2E), Vector512.Create(Shifter)) - Vector512.Create(Shifter);
            var r = Vector512.FusedMultiplyAdd(-n, Vector512.Create(Ln2High), x);
            r = Vector512.FusedMultiplyAdd(-n, Vector512.Create(Ln2Low), r);
            var p = Vector512.FusedMultiplyAdd(Vector512.Create(C13), r, Vector512.Create(C12));
            p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C11));
            p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C10));
            p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C9));
            p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C8));
            p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C7));
            p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C6));
            p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C5));
            p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C4));
            p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C3));
            p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C2));
            p = Vector512.FusedMultiplyAdd(p, r, Vector512<double>.One);
            p = Vector512.FusedMultiplyAdd(p, r, Vector512<double>.One);
            var half = Vector512.Floor(n * Vector512.Create(0.5));
            return p * PowerOfTwo(half) * PowerOfTwo(n - half);

            static Vector512<double> PowerOfTwo(Vector512<double> k) =>
                Vector512.ShiftLeft((k + Vector512.Create(Shifter)).AsInt64() - Vector512.Create(ShifterBits - 1023), 52).AsDouble();
        }

        public static Vector256<double> Apply(Vector256<double> x)
        {
            x = Vector256.Min(Vector256.Max(x, Vector256.Create(Lowest)), Vector256.Create(Highest));
            var n = Vector256.FusedMultiplyAdd(x, Vector256.Create(Log2E), Vector256.Create(Shifter)) - Vector256.Create(Shifter);
            var r = Vector256.FusedMultiplyAdd(-n, Vector256.Create(Ln2High), x);
            r = Vector256.FusedMultiplyAdd(-n, Vector256.Create(Ln2Low), r);
            var p = Vector256.FusedMultiplyAdd(Vector256.Create(C13), r, Vector256.Create(C12));
            p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C11));
            p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C10));
            p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C9));
            p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C8));
            p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C7));
            p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C6));
            p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C5));
            p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C4));
            p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C3));
            p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C2));
            p = Vector256.FusedMultiplyAdd(p, r, Vector256<double>.One);
            p = Vector256.FusedMultiplyAdd(p, r, Vector256<double>.One);
            var half = Vector256.Floor(n * Vector256.Create(0.5));
            return p * PowerOfTwo(half) * PowerOfTwo(n - half);

            static Vector256<double> PowerOfTwo(Vector256<double> k) =>
                Vector256.ShiftLeft((k + Vector256.Create(Shifter)).AsInt64() - Vector256.Create(ShifterBits - 1023), 52).AsDouble();
        }

        public static double Apply(double x)
        {
            x = Math.Min(Math.Max(x, Lowest), Highest);
            var n = Math.FusedMultiplyAdd(x, Log2E, Shifter) - Shifter;
            var r = Math.FusedMultiplyAdd(-n, Ln2High, x);
            r = Math.FusedMultiplyAdd(-n, Ln2Low, r);
            var p = Math.FusedMultiplyAdd(C13, r, C12);
            foreach (var c in (ReadOnlySpan<double>)[C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, 1.0, 1.0])
                p = Math.FusedMultiplyAdd(p, r, c);
            var half = Math.Floor(n * 0.5);
            return p * PowerOfTwo(half) * PowerOfTwo(n - half);

            static double PowerOfTwo(double k) =>
                BitConverter.Int64BitsToDouble((BitConverter.DoubleToInt64Bits(k + Shifter) - (ShifterBits - 1023)) << 52);
        }
    }
}
