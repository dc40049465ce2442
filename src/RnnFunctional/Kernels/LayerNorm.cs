using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using MathNet.Numerics.LinearAlgebra;
using Vector = System.Numerics.Vector<double>;

namespace RnnFunctional.Kernels;

/// <summary>
/// Layer normalization of one block of n values (Ba, Kiros and Hinton 2016), without its gain and bias:
/// μ = Σ v / n, σ² = Σ (v − μ)² / n, v̂ = (v − μ) / √(σ² + ε), and its backward
/// dv = (dv̂ − mean(dv̂) − v̂⊙mean(dv̂⊙v̂)) / √(σ² + ε). The fused cells and their generic folds both call these, so a
/// normalization has the same bits on both paths; its sums are taken in one fixed order (<see cref="Dot"/>), so it has
/// the same bits on every machine too.
/// </summary>
internal static class LayerNorm
{
    /// <summary>The default ε added to the variance: PyTorch's for nn.LayerNorm.</summary>
    public const double Epsilon = 1e-5;

    /// <summary>Writes v̂ of <paramref name="v"/> to <paramref name="vHat"/> (which may be <paramref name="v"/>) and returns 1/√(σ² + ε).</summary>
    public static double Forward(ReadOnlySpan<double> v, Span<double> vHat, double epsilon)
    {
        var n = v.Length;
        var mean = Sum(v) / n;                                                      // μ = Σ v / n
        var rstd = 1.0 / Math.Sqrt(Centered(v, mean, vHat) / n + epsilon);         // v − μ; 1/√(σ² + ε), σ² = Σ (v − μ)² / n
        Lanes.Multiply(vHat, rstd, vHat);                                           // v̂ = (v − μ) / √(σ² + ε)
        return rstd;
    }

    /// <summary>
    /// Writes dv = rstd·(dv̂ − mean(dv̂) − v̂⊙mean(dv̂⊙v̂)) to <paramref name="dv"/> (which may be <paramref name="dvHat"/>),
    /// the gradient of the block's values from that of its v̂.
    /// </summary>
    public static void Backward(ReadOnlySpan<double> vHat, double rstd, ReadOnlySpan<double> dvHat, Span<double> dv)
    {
        var n = vHat.Length;
        var (sum, dot) = SumAndDot(dvHat, vHat);
        var (mean, meanTimesHat) = (sum / n, dot / n);
        if (Lanes.IsWhole(n)) Backward<Lanes.Whole>(vHat, rstd, dvHat, dv, mean, meanTimesHat);
        else Backward<Lanes.Padded>(vHat, rstd, dvHat, dv, mean, meanTimesHat);
    }

    private static void Backward<T>(ReadOnlySpan<double> vHat, double rstd, ReadOnlySpan<double> dvHat, Span<double> dv, double mean, double meanTimesHat)
        where T : struct, Lanes.IAccess
    {
        var (m, mt, r) = (new Vector(mean), new Vector(meanTimesHat), new Vector(rstd));
        for (var k = 0; k < vHat.Length; k += Lanes.Width)
            T.Store(dv, k, (T.Load(dvHat, k) - m - T.Load(vHat, k) * mt) * r);          // dv = (dv̂ − mean(dv̂) − v̂⊙mean(dv̂⊙v̂))·rstd
    }

    /// <summary>
    /// Writes d = x − a, element-wise, to <paramref name="d"/> (which may be <paramref name="x"/>) and returns Σ d⊙d in
    /// the order of <see cref="Dot"/>, in one pass: the bits of the subtraction followed by Dot(d, d).
    /// </summary>
    internal static double Centered(ReadOnlySpan<double> x, double a, Span<double> d)
    {
        var n = x.Length;
        if (d.Length < n) throw new ArgumentException($"expected d to have at least the {n} elements of x but got {d.Length}", nameof(d));
        var (p0, p1, p2, p3) = (Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero);
        var v = Vector256.Create(a);
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var dr = ref MemoryMarshal.GetReference(d);
        var i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var (d0, d1) = (Vector256.LoadUnsafe(ref xr, (nuint)i) - v, Vector256.LoadUnsafe(ref xr, (nuint)i + 4) - v);
            var (d2, d3) = (Vector256.LoadUnsafe(ref xr, (nuint)i + 8) - v, Vector256.LoadUnsafe(ref xr, (nuint)i + 12) - v);
            d0.StoreUnsafe(ref dr, (nuint)i);
            d1.StoreUnsafe(ref dr, (nuint)i + 4);
            d2.StoreUnsafe(ref dr, (nuint)i + 8);
            d3.StoreUnsafe(ref dr, (nuint)i + 12);
            (p0, p1, p2, p3) = (p0 + d0 * d0, p1 + d1 * d1, p2 + d2 * d2, p3 + d3 * d3);
        }
        if (i < n)
        {
            Span<double> t = stackalloc double[16];
            t.Clear();
            for (var k = i; k < n; k++) t[k - i] = x[k] - a;                          // the padded lanes stay zero, as Dot pads them
            t[..(n - i)].CopyTo(d[i..n]);
            var (t0, t1, t2, t3) = (Vector256.Create(t[..4]), Vector256.Create(t.Slice(4, 4)), Vector256.Create(t.Slice(8, 4)), Vector256.Create(t.Slice(12, 4)));
            (p0, p1, p2, p3) = (p0 + t0 * t0, p1 + t1 * t1, p2 + t2 * t2, p3 + t3 * t3);
        }
        return Total(p0, p1, p2, p3);
    }

    /// <summary>(Σ x, Σ x⊙y) in one pass, each in the order of <see cref="Dot"/>: the bits of <see cref="Sum"/> and <see cref="Dot"/>.</summary>
    internal static (double Sum, double Dot) SumAndDot(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        var n = x.Length;
        if (y.Length < n) throw new ArgumentException($"expected y to have at least the {n} elements of x but got {y.Length}", nameof(y));
        var (s0, s1, s2, s3) = (Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero);
        var (p0, p1, p2, p3) = (Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero);
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var yr = ref MemoryMarshal.GetReference(y);
        var i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var (x0, x1) = (Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256.LoadUnsafe(ref xr, (nuint)i + 4));
            var (x2, x3) = (Vector256.LoadUnsafe(ref xr, (nuint)i + 8), Vector256.LoadUnsafe(ref xr, (nuint)i + 12));
            (s0, s1, s2, s3) = (s0 + x0, s1 + x1, s2 + x2, s3 + x3);
            p0 += x0 * Vector256.LoadUnsafe(ref yr, (nuint)i);
            p1 += x1 * Vector256.LoadUnsafe(ref yr, (nuint)i + 4);
            p2 += x2 * Vector256.LoadUnsafe(ref yr, (nuint)i + 8);
            p3 += x3 * Vector256.LoadUnsafe(ref yr, (nuint)i + 12);
        }
        if (i < n)
        {
            Span<double> a = stackalloc double[16], b = stackalloc double[16];
            a.Clear();
            b.Clear();
            x[i..].CopyTo(a);
            y[i..n].CopyTo(b);
            var (x0, x1, x2, x3) = (Vector256.Create(a[..4]), Vector256.Create(a.Slice(4, 4)), Vector256.Create(a.Slice(8, 4)), Vector256.Create(a.Slice(12, 4)));
            (s0, s1, s2, s3) = (s0 + x0, s1 + x1, s2 + x2, s3 + x3);
            p0 += x0 * Vector256.Create(b[..4]);
            p1 += x1 * Vector256.Create(b.Slice(4, 4));
            p2 += x2 * Vector256.Create(b.Slice(8, 4));
            p3 += x3 * Vector256.Create(b.Slice(12, 4));
        }
        return (Total(s0, s1, s2, s3), Total(p0, p1, p2, p3));
    }

    /// <summary>Σ x, in the order of <see cref="Dot"/>.</summary>
    internal static double Sum(ReadOnlySpan<double> x)
    {
        var (p0, p1, p2, p3) = (Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero);
        ref var xr = ref MemoryMarshal.GetReference(x);
        var i = 0;
        for (; i + 16 <= x.Length; i += 16)
        {
            p0 += Vector256.LoadUnsafe(ref xr, (nuint)i);
            p1 += Vector256.LoadUnsafe(ref xr, (nuint)i + 4);
            p2 += Vector256.LoadUnsafe(ref xr, (nuint)i + 8);
            p3 += Vector256.LoadUnsafe(ref xr, (nuint)i + 12);
        }
        if (i < x.Length)
        {
            Span<double> a = stackalloc double[16];
            a.Clear();
            x[i..].CopyTo(a);
            p0 += Vector256.Create(a[..4]);
            p1 += Vector256.Create(a.Slice(4, 4));
            p2 += Vector256.Create(a.Slice(8, 4));
            p3 += Vector256.Create(a.Slice(12, 4));
        }
        return Total(p0, p1, p2, p3);
    }

    /// <summary>
    /// Σ x⊙y in one fixed order, whatever the hardware: sixteen interleaved partial sums (element i goes to sum i mod 16,
    /// the last, shorter stretch padded with zeros), kept as four Vector256 p₀..p₃ and added as (p₀ + p₁) + (p₂ + p₃),
    /// whose four lanes are then added as (l₀ + l₁) + (l₂ + l₃).
    /// </summary>
    internal static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        var (p0, p1, p2, p3) = (Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero);
        if (y.Length < x.Length) throw new ArgumentException($"expected y to have at least the {x.Length} elements of x but got {y.Length}", nameof(y));
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var yr = ref MemoryMarshal.GetReference(y);
        var i = 0;
        for (; i + 16 <= x.Length; i += 16)
        {
            p0 += Vector256.LoadUnsafe(ref xr, (nuint)i) * Vector256.LoadUnsafe(ref yr, (nuint)i);
            p1 += Vector256.LoadUnsafe(ref xr, (nuint)i + 4) * Vector256.LoadUnsafe(ref yr, (nuint)i + 4);
            p2 += Vector256.LoadUnsafe(ref xr, (nuint)i + 8) * Vector256.LoadUnsafe(ref yr, (nuint)i + 8);
            p3 += Vector256.LoadUnsafe(ref xr, (nuint)i + 12) * Vector256.LoadUnsafe(ref yr, (nuint)i + 12);
        }
        if (i < x.Length)
        {
            Span<double> a = stackalloc double[16], b = stackalloc double[16];
            a.Clear();
            b.Clear();
            x[i..].CopyTo(a);
            y[i..x.Length].CopyTo(b);
            p0 += Vector256.Create(a[..4]) * Vector256.Create(b[..4]);
            p1 += Vector256.Create(a.Slice(4, 4)) * Vector256.Create(b.Slice(4, 4));
            p2 += Vector256.Create(a.Slice(8, 4)) * Vector256.Create(b.Slice(8, 4));
            p3 += Vector256.Create(a.Slice(12, 4)) * Vector256.Create(b.Slice(12, 4));
        }
        return Total(p0, p1, p2, p3);
    }

    private static double Total(Vector256<double> p0, Vector256<double> p1, Vector256<double> p2, Vector256<double> p3)
    {
        var p = (p0 + p1) + (p2 + p3);
        return (p[0] + p[1]) + (p[2] + p[3]);
    }

    /// <summary>v̂ of every block of n = v.RowCount / blocks rows of every column of <paramref name="v"/>, and 1/√(σ² + ε) of each (blocks×m).</summary>
    public static (Matrix<double> Hat, Matrix<double> Rstd) Rows(Matrix<double> v, int blocks, double epsilon)
    {
        var (n, m) = (v.RowCount / blocks, v.ColumnCount);
        var (values, hat, rstd) = (Block.Of(v), new double[v.RowCount * m], new double[blocks * m]);
        for (var j = 0; j < m; j++)
            for (var b = 0; b < blocks; b++)
                rstd[j * blocks + b] = Forward(values.Span.Slice(j * v.RowCount + b * n, n), hat.AsSpan(j * v.RowCount + b * n, n), epsilon);
        return (Matrix<double>.Build.Dense(v.RowCount, m, hat), Matrix<double>.Build.Dense(blocks, m, rstd));
    }

    /// <summary>The backward of <see cref="Rows"/>: dv of every block of every column from v̂, 1/√(σ² + ε) and dv̂.</summary>
    public static Matrix<double> RowsBackward(Matrix<double> hat, Matrix<double> rstd, Matrix<double> dHat)
    {
        var (blocks, m) = (rstd.RowCount, hat.ColumnCount);
        var n = hat.RowCount / blocks;
        var (h, d, dv) = (Block.Of(hat), Block.Of(dHat), new double[hat.RowCount * m]);
        for (var j = 0; j < m; j++)
            for (var b = 0; b < blocks; b++)
            {
                var at = j * hat.RowCount + b * n;
                Backward(h.Span.Slice(at, n), rstd[b, j], d.Span.Slice(at, n), dv.AsSpan(at, n));
            }
        return Matrix<double>.Build.Dense(hat.RowCount, m, dv);
    }
}
