using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The LSTM with a projection on the <see cref="Driver"/>: the gates of <see cref="LstmFused"/> (PyTorch's blocks
/// reordered f | i | g | o, z = Wx·x + (Bih + Bhh) + Wh·h_prev formed in place) and h = Whr·(Γo⊙tanh(c)). The driver's
/// parts have n_a rows, so h⟨t⟩ (n_p ≤ n_a rows) is kept in its first n_p rows with zeros below, and Wh (4n_a×n_a) reads
/// h through Whh's n_p columns followed by zero columns. Parts of a step: h, c (the carry), then Γf, Γi, g, Γo. Its own
/// parameters are Whr, n_p×n_a column after column.
/// </summary>
internal sealed class ProjectedLstmFused : FusedCell
{
    private static readonly int[] Order = [1, 0, 2, 3];                                // the driver's block k is PyTorch's block Order[k]
    private readonly double[] whr;
    private readonly int projection;

    private ProjectedLstmFused(int na, int np, Block wx, Block wh, Block b, double[] whr) : base(4, na, wx, wh, b, default) =>
        (this.whr, whrSingle, projection) = (whr, Precision == Precision.Single ? new Block(whr, 0, np, na).WithSingle().Single : null, np);

    /// <summary>Whr rounded to float32 for a call in <see cref="Precision.Single"/>; null otherwise.</summary>
    private readonly float[]? whrSingle;

    /// <summary>The cell of the given parameters, stacked once in the driver's order (their read-out is not read).</summary>
    public static ProjectedLstmFused Of(ProjectedLstmParameters p)
    {
        var (na, np, nx) = (p.HiddenSize, p.ProjectionSize, p.InputSize);
        var (wx, wh, b) = (new double[4 * na * nx], new double[4 * na * na], new double[4 * na]);
        for (var k = 0; k < 4; k++)
        {
            var from = Order[k] * na;
            for (var j = 0; j < nx; j++)
                for (var i = 0; i < na; i++) wx[j * 4 * na + k * na + i] = p.Wih[from + i, j];
            for (var j = 0; j < np; j++)
                for (var i = 0; i < na; i++) wh[j * 4 * na + k * na + i] = p.Whh[from + i, j];                // columns n_p.. stay zero
            for (var i = 0; i < na; i++) b[k * na + i] = p.Bih[from + i] + p.Bhh[from + i];
        }
        return new(na, np, new(wx, 0, 4 * na, nx), new(wh, 0, 4 * na, na), new(b, 0, 4 * na, 1), p.Whr.ToColumnMajorArray());
    }

    public override int Parts => 6;

    public override int CarryParts => 2;

    public override int OutputRows => projection;

    public override bool RecurrentOntoInput => true;

    public override bool GateWiseTransposedProducts => true;

    public override int OwnParameters => projection * Hidden;

    /// <summary>dWhr = Σ dh·mᵀ is one product over a step's columns, not a sum column after column.</summary>
    public override bool ColumnWiseOwnGradient => false;

    public override void Forward(Span<double> z, Span<double> r, Block[] prev, Block[] next, Span<double> scratch)
    {
        var (na, width) = (Hidden, next[0].Columns);
        Span<double> h = next[0].Span, c = next[1].Span, f = next[2].Span, i = next[3].Span, g = next[4].Span, o = next[5].Span;
        ReadOnlySpan<double> cPrev = prev[1].Span;
        for (var j = 0; j < width; j++)
        {
            var zj = z.Slice(j * 4 * na, 4 * na);
            var k = j * na;
            Elementwise.Sigmoid(zj[..na], f.Slice(k, na));                             // Γf = σ(z_f)
            Elementwise.Sigmoid(zj.Slice(na, na), i.Slice(k, na));                     // Γi = σ(z_i)
            Elementwise.Tanh(zj.Slice(2 * na, na), g.Slice(k, na));                    // g = tanh(z_g)
            Elementwise.Sigmoid(zj.Slice(3 * na, na), o.Slice(k, na));                 // Γo = σ(z_o)
        }
        Span<double> tanhC = scratch[..c.Length], m = scratch.Slice(c.Length, c.Length);
        for (var k = 0; k < c.Length; k++) c[k] = f[k] * cPrev[k] + i[k] * g[k];      // c = Γf⊙c_prev + Γi⊙g
        Elementwise.Tanh(c, tanhC);
        for (var k = 0; k < m.Length; k++) m[k] = o[k] * tanhC[k];                     // m = Γo⊙tanh(c)
        h.Clear();
        Gemm.Multiply(Precision, false, false, projection, width, na, 1.0, whr, whrSingle, projection, m, na, 0.0, h, na); // h = Whr·m (rows n_p.. zero)
    }

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch) => Backward(prev, next, dOut, dCarry, dU, scratch, default, accumulate: false);

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch, Span<double> own) => Backward(prev, next, dOut, dCarry, dU, scratch, own, accumulate: true);

    private void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> scratch,
        Span<double> own, bool accumulate)
    {
        var (na, width) = (Hidden, next[0].Columns);
        ReadOnlySpan<double> c = next[1].Span, f = next[2].Span, i = next[3].Span, g = next[4].Span, o = next[5].Span, cPrev = prev[1].Span;
        ReadOnlySpan<double> dhNext = dCarry[0].Span;
        var dcNext = dCarry[1].Span;
        var n = c.Length;
        Span<double> tanhC = scratch[..n], m = scratch.Slice(n, n), dh = scratch.Slice(2 * n, n), dm = scratch.Slice(3 * n, n);
        Elementwise.Tanh(c, tanhC);
        for (var k = 0; k < n; k++)
        {
            m[k] = o[k] * tanhC[k];                                                    // m = Γo⊙tanh(c)
            dh[k] = dhNext[k] + dOut[k];
        }
        Gemm.Multiply(Precision, true, false, na, width, projection, 1.0, whr, whrSingle, projection, dh, na, 0.0, dm, na);      // dm = Whrᵀ·dh
        if (accumulate) Gemm.Multiply(Precision, false, true, projection, na, width, 1.0, dh, default, na, m, na, 1.0, own, projection); // dWhr += dh·mᵀ
        for (var k = 0; k < n; k++)
        {
            var (j, row) = (k / na, k % na);
            var dz = dU.Slice(j * 4 * na, 4 * na);
            var da = dm[k];
            var t = tanhC[k];
            var dO = da * t;                                              // dΓo = dm⊙tanh(c)
            var dC = dcNext[k] + da * o[k] * (1.0 - t * t);                // dc ← dc + dm⊙Γo⊙(1 − tanh²(c))
            dz[row] = dC * cPrev[k] * f[k] * (1.0 - f[k]);                 // dz_f = dc⊙c_prev⊙Γf⊙(1 − Γf)
            dz[na + row] = dC * g[k] * i[k] * (1.0 - i[k]);               // dz_i = dc⊙g⊙Γi⊙(1 − Γi)
            dz[2 * na + row] = dC * i[k] * (1.0 - g[k] * g[k]);           // dz_g = dc⊙Γi⊙(1 − g²)
            dz[3 * na + row] = dO * o[k] * (1.0 - o[k]);                   // dz_o = dΓo⊙Γo⊙(1 − Γo)
            dcNext[k] = dC * f[k];                                         // dc_prev = dc⊙Γf
        }
    }

    /// <summary>The driver's stacked gradients as parameters of the cell, back in PyTorch's order; dBih = dBhh = Σ dz.</summary>
    public static ProjectedLstmParameters Gradients(ProjectedLstmParameters p, Driver.Gradients g)
    {
        var (na, np, nx) = (p.HiddenSize, p.ProjectionSize, p.InputSize);
        var (wih, whh, b) = (Matrix<double>.Build.Dense(4 * na, nx), Matrix<double>.Build.Dense(4 * na, np), Vector<double>.Build.Dense(4 * na));
        for (var k = 0; k < 4; k++)
        {
            var to = Order[k] * na;
            for (var i = 0; i < na; i++)
            {
                for (var j = 0; j < nx; j++) wih[to + i, j] = g.Wx.Span[j * 4 * na + k * na + i];
                for (var j = 0; j < np; j++) whh[to + i, j] = g.Wh.Span[j * 4 * na + k * na + i];
                b[to + i] = g.Bx.Span[k * na + i];
            }
        }
        var wy = g.Wy.ToMatrix();
        return p with
        {
            Wih = wih, Whh = whh, Bih = b, Bhh = b.Clone(), Whr = Matrix<double>.Build.Dense(np, na, g.Own.Span.ToArray()),
            Wy = wy.SubMatrix(0, wy.RowCount, 0, np), By = g.By.ToVector(),
        };
    }
}
