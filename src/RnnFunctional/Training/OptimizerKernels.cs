using System.Numerics;
using System.Runtime.InteropServices;

namespace RnnFunctional;

/// <summary>
/// The element-wise updates of <see cref="Optimizers"/> over flat spans, each written once with
/// <see cref="Vector{T}"/> over whole vectors and once as a scalar loop for the tail. Both evaluate the same
/// expression with the same operations in the same order (products, sums, quotients and square roots, each rounded
/// once; no fused multiply-add), so every entry has the bits of the scalar formula whatever the vector width. The
/// slots are read from the old arrays and written to new ones: the old state is never written.
/// </summary>
internal static class OptimizerKernels
{
    /// <summary>p ← p − lr·g.</summary>
    public static void Sgd(double lr, Span<double> p, ReadOnlySpan<double> g)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && p.Length >= Vector<double>.Count)
        {
            var vp = Cast(p);
            var vg = Cast(g);
            var vlr = new Vector<double>(lr);
            for (var k = 0; k < vp.Length; k++) vp[k] -= vlr * vg[k];
            i = vp.Length * Vector<double>.Count;
        }
        for (; i < p.Length; i++) p[i] -= lr * g[i];
    }

    /// <summary>v′ ← μ·v + g, p ← p − lr·v′.</summary>
    public static void Momentum(double lr, double mu, Span<double> p, ReadOnlySpan<double> g, ReadOnlySpan<double> v, Span<double> vNext)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && p.Length >= Vector<double>.Count)
        {
            var vp = Cast(p);
            var vg = Cast(g);
            var vv = Cast(v);
            var vn = Cast(vNext);
            var (vlr, vmu) = (new Vector<double>(lr), new Vector<double>(mu));
            for (var k = 0; k < vp.Length; k++)
            {
                vn[k] = vmu * vv[k] + vg[k];
                vp[k] -= vlr * vn[k];
            }
            i = vp.Length * Vector<double>.Count;
        }
        for (; i < p.Length; i++)
        {
            vNext[i] = mu * v[i] + g[i];
            p[i] -= lr * vNext[i];
        }
    }

    /// <summary>G′ ← G + g², p ← p − lr·g / √(G′ + ε).</summary>
    public static void Adagrad(double lr, double eps, Span<double> p, ReadOnlySpan<double> g, ReadOnlySpan<double> sum, Span<double> sumNext)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && p.Length >= Vector<double>.Count)
        {
            var vp = Cast(p);
            var vg = Cast(g);
            var vs = Cast(sum);
            var vn = Cast(sumNext);
            var (vlr, veps) = (new Vector<double>(lr), new Vector<double>(eps));
            for (var k = 0; k < vp.Length; k++)
            {
                vn[k] = vs[k] + vg[k] * vg[k];
                vp[k] -= vlr * vg[k] / Vector.SquareRoot(vn[k] + veps);
            }
            i = vp.Length * Vector<double>.Count;
        }
        for (; i < p.Length; i++)
        {
            sumNext[i] = sum[i] + g[i] * g[i];
            p[i] -= lr * g[i] / Math.Sqrt(sumNext[i] + eps);
        }
    }

    /// <summary>v′ ← ρ·v + (1 − ρ)·g², p ← p − lr·g / (√v′ + ε).</summary>
    public static void RmsProp(double lr, double rho, double eps, Span<double> p, ReadOnlySpan<double> g, ReadOnlySpan<double> v, Span<double> vNext)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && p.Length >= Vector<double>.Count)
        {
            var vp = Cast(p);
            var vg = Cast(g);
            var vv = Cast(v);
            var vn = Cast(vNext);
            var (vlr, vrho, vkeep, veps) = (new Vector<double>(lr), new Vector<double>(rho), new Vector<double>(1 - rho), new Vector<double>(eps));
            for (var k = 0; k < vp.Length; k++)
            {
                vn[k] = vrho * vv[k] + vkeep * vg[k] * vg[k];
                vp[k] -= vlr * vg[k] / (Vector.SquareRoot(vn[k]) + veps);
            }
            i = vp.Length * Vector<double>.Count;
        }
        for (; i < p.Length; i++)
        {
            vNext[i] = rho * v[i] + (1 - rho) * g[i] * g[i];
            p[i] -= lr * g[i] / (Math.Sqrt(vNext[i]) + eps);
        }
    }

    /// <summary>
    /// m′ ← β₁·m + (1 − β₁)·g, v′ ← β₂·v + (1 − β₂)·g², p ← p − lr·(m′/c₁) / (√(v′/c₂) + ε), with the bias
    /// corrections c₁ = 1 − β₁ᵗ and c₂ = 1 − β₂ᵗ computed by the caller.
    /// </summary>
    public static void Adam(double lr, double beta1, double beta2, double eps, double c1, double c2, Span<double> p, ReadOnlySpan<double> g,
        ReadOnlySpan<double> m, ReadOnlySpan<double> v, Span<double> mNext, Span<double> vNext)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && p.Length >= Vector<double>.Count)
        {
            var vp = Cast(p);
            var vg = Cast(g);
            var vm = Cast(m);
            var vv = Cast(v);
            var mn = Cast(mNext);
            var vn = Cast(vNext);
            var (vlr, b1, keep1, b2, keep2) = (new Vector<double>(lr), new Vector<double>(beta1), new Vector<double>(1 - beta1),
                new Vector<double>(beta2), new Vector<double>(1 - beta2));
            var (vc1, vc2, veps) = (new Vector<double>(c1), new Vector<double>(c2), new Vector<double>(eps));
            for (var k = 0; k < vp.Length; k++)
            {
                var gk = vg[k];
                var mk = b1 * vm[k] + keep1 * gk;
                var vk = b2 * vv[k] + keep2 * gk * gk;
                (mn[k], vn[k]) = (mk, vk);
                vp[k] -= vlr * (mk / vc1) / (Vector.SquareRoot(vk / vc2) + veps);
            }
            i = vp.Length * Vector<double>.Count;
        }
        for (; i < p.Length; i++)
        {
            mNext[i] = beta1 * m[i] + (1 - beta1) * g[i];
            vNext[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
            p[i] -= lr * (mNext[i] / c1) / (Math.Sqrt(vNext[i] / c2) + eps);
        }
    }

    /// <summary>The index of the first entry that is NaN or infinite, or −1 when every entry is finite.</summary>
    public static int FirstNonFinite(ReadOnlySpan<double> values)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && values.Length >= Vector<double>.Count)
        {
            var whole = Cast(values);
            // x − x is 0 for a finite x and NaN for NaN and ±∞, and NaN is not equal to 0.
            for (var k = 0; k < whole.Length; k++)
                if (!Vector.EqualsAll(whole[k] - whole[k], Vector<double>.Zero)) break;
                else i += Vector<double>.Count;
        }
        for (; i < values.Length; i++)
            if (!double.IsFinite(values[i])) return i;
        return -1;
    }

    private static Span<Vector<double>> Cast(Span<double> values) => MemoryMarshal.Cast<double, Vector<double>>(values);

    private static ReadOnlySpan<Vector<double>> Cast(ReadOnlySpan<double> values) => MemoryMarshal.Cast<double, Vector<double>>(values);
}
