using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The layer-normalized LSTM on the <see cref="Driver"/>: gates i | f | g | o, U = Wx·X (the driver's bias is zero)
/// and R = Wh·a_prev (likewise) side by side, each gate block of each column normalized on its own. Parts of a step:
/// a, c (the carry), Γi, Γf, g, Γo, the four blocks of LN(U), the four of LN(R), LN(c), then the nine values
/// 1/√(σ² + ε) of each column (blocks of U, of R, of c) packed n_a to a part. Its own parameters are
/// [B | GainX | GainH | GainC | BiasC], 14n_a.
/// </summary>
internal sealed class LayerNormLstmFused : FusedCell
{
    private const int XHat = 6, HHat = 10, CHat = 14, Rstd = 15;
    private readonly double[] b, gainX, gainH, gainC, biasC;
    private readonly double epsilon;

    private LayerNormLstmFused(LayerNormLstmParameters p)
        : base(4, p.HiddenSize, Block.Of(p.Wx).Copy(), Block.Of(p.Wh).Copy(), Block.Fresh(4 * p.HiddenSize, 1).Block, Block.Fresh(4 * p.HiddenSize, 1).Block) =>
        (b, gainX, gainH, gainC, biasC, epsilon) = (p.B.ToArray(), p.GainX.ToArray(), p.GainH.ToArray(), p.GainC.ToArray(), p.BiasC.ToArray(), p.Epsilon);

    /// <summary>The cell of the given parameters, copied (their read-out is not read).</summary>
    public static LayerNormLstmFused Of(LayerNormLstmParameters p) => new(p);

    public override int Parts => Rstd + (9 + Hidden - 1) / Hidden;

    public override int CarryParts => 2;

    public override bool RecurrentOntoInput => false;

    public override int OwnParameters => 14 * Hidden;

    /// <summary>Where 1/√(σ² + ε) of block v of column j lives: blocks 0–3 of U, 4–7 of R, 8 of c.</summary>
    private (int Part, int Index) RstdAt(int j, int v) => (Rstd + v / Hidden, j * Hidden + v % Hidden);

    public override void Forward(Span<double> u, Span<double> r, Block[] prev, Block[] next, Span<double> scratch)
    {
        var (na, m) = (Hidden, next[0].Columns);
        Span<double> a = next[0].Span, c = next[1].Span, i = next[2].Span, f = next[3].Span, g = next[4].Span, o = next[5].Span, cHat = next[CHat].Span;
        var z = scratch[..(4 * na * m)];
        for (var j = 0; j < m; j++)
        {
            var k = j * na;
            for (var block = 0; block < 4; block++)
            {
                var (at, w) = (j * 4 * na + block * na, block * na);
                Span<double> xHat = next[XHat + block].Span.Slice(k, na), hHat = next[HHat + block].Span.Slice(k, na);
                var (px, ix) = RstdAt(j, block);
                next[px].Span[ix] = LayerNorm.Forward(u.Slice(at, na), xHat, epsilon);                      // x̂ = LN(Wx·x), per gate block
                var (ph, ih) = RstdAt(j, 4 + block);
                next[ph].Span[ih] = LayerNorm.Forward(r.Slice(at, na), hHat, epsilon);                      // ĥ = LN(Wh·a_prev)
                Lanes.SumOfProducts(gainX.AsSpan(w, na), xHat, gainH.AsSpan(w, na), hHat, b.AsSpan(w, na), z.Slice(at, na)); // z = GainX⊙x̂ + GainH⊙ĥ + B
            }
            var zj = z.Slice(j * 4 * na, 4 * na);
            Elementwise.Sigmoid(zj[..na], i.Slice(k, na));                                     // Γi = σ(z_i)
            Elementwise.Sigmoid(zj.Slice(na, na), f.Slice(k, na));                             // Γf = σ(z_f)
            Elementwise.Tanh(zj.Slice(2 * na, na), g.Slice(k, na));                            // g = tanh(z_g)
            Elementwise.Sigmoid(zj.Slice(3 * na, na), o.Slice(k, na));                         // Γo = σ(z_o)
        }
        Lanes.SumOfProducts(f, prev[1].Span, i, g, c);                                         // c = Γf⊙c_prev + Γi⊙g
        Span<double> s = scratch[..c.Length], tanhS = scratch.Slice(c.Length, c.Length);
        for (var j = 0; j < m; j++)
        {
            var k = j * na;
            var (pc, ic) = RstdAt(j, 8);
            next[pc].Span[ic] = LayerNorm.Forward(c.Slice(k, na), cHat.Slice(k, na), epsilon); // ĉ = LN(c)
            Lanes.MultiplyAdd(gainC, cHat.Slice(k, na), biasC, s.Slice(k, na));                // s = GainC⊙ĉ + BiasC
        }
        Elementwise.Tanh(s, tanhS);
        Lanes.Multiply(o, tanhS, a);                                                           // a = Γo⊙tanh(s)
    }

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch) => Backward(prev, next, dOut, dCarry, dU, dR, scratch, default, accumulate: false);

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch, Span<double> own) => Backward(prev, next, dOut, dCarry, dU, dR, scratch, own, accumulate: true);

    private void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch, Span<double> own, bool accumulate)
    {
        var (na, m) = (Hidden, next[0].Columns);
        for (var j = 0; j < m; j++)
        {
            var k = j * na;
            ReadOnlySpan<double> cHat = next[CHat].Span.Slice(k, na);
            var dz = dU.Slice(j * 4 * na, 4 * na);
            Span<double> tanhS = scratch.Slice(j * 4 * na, na), ds = scratch.Slice(j * 4 * na + na, na), dc = scratch.Slice(j * 4 * na + 2 * na, na);
            Lanes.MultiplyAdd(gainC, cHat, biasC, tanhS);                                      // s = GainC⊙ĉ + BiasC
            Elementwise.Tanh(tanhS, tanhS);
            OutputBackward(dCarry[0].Span.Slice(k, na), dOut.Slice(k, na), tanhS, next[5].Span.Slice(k, na), dz.Slice(3 * na, na), ds);
            if (accumulate) Lanes.AddWithProduct(ds, cHat, own.Slice(13 * na, na), own.Slice(12 * na, na)); // dBiasC += ds, dGainC += ds⊙ĉ
            Lanes.Multiply(ds, gainC, dc);                                                     // dĉ = ds⊙GainC
            var (pc, ic) = RstdAt(j, 8);
            LayerNorm.Backward(cHat, next[pc].Span[ic], dc, dc);                               // LNᵀ(dĉ)
            CellBackward(dCarry[1].Span.Slice(k, na), dc, next[2].Span.Slice(k, na), next[3].Span.Slice(k, na), next[4].Span.Slice(k, na),
                prev[1].Span.Slice(k, na), dz);
            for (var block = 0; block < 4; block++)
            {
                var (at, w) = (j * 4 * na + block * na, block * na);
                ReadOnlySpan<double> xHat = next[XHat + block].Span.Slice(k, na), hHat = next[HHat + block].Span.Slice(k, na);
                Span<double> du = dU.Slice(at, na), dr = dR.Slice(at, na);
                if (accumulate)                                                                // dB += dz, dGainX += dz⊙x̂, dGainH += dz⊙ĥ,
                    Lanes.GainsBackward(du, xHat, hHat, gainX.AsSpan(w, na), gainH.AsSpan(w, na), // dĥ = dz⊙GainH, dx̂ = dz⊙GainX
                        own.Slice(w, na), own.Slice(4 * na + w, na), own.Slice(8 * na + w, na), du, dr);
                else
                {
                    Lanes.Multiply(du, gainH.AsSpan(w, na), dr);                               // dĥ = dz⊙GainH
                    Lanes.Multiply(du, gainX.AsSpan(w, na), du);                               // dx̂ = dz⊙GainX
                }
                var (px, ix) = RstdAt(j, block);
                LayerNorm.Backward(xHat, next[px].Span[ix], du, du);                           // dU = LNᵀ(dx̂)
                var (ph, ih) = RstdAt(j, 4 + block);
                LayerNorm.Backward(hHat, next[ph].Span[ih], dr, dr);                           // dR = LNᵀ(dĥ)
            }
        }
    }

    /// <summary>From da = da_next + dOut through a = Γo⊙tanh(s) on one column: dz_o, and ds (its own parameters' and dĉ's source).</summary>
    private static void OutputBackward(ReadOnlySpan<double> daNext, ReadOnlySpan<double> dOut, ReadOnlySpan<double> tanhS, ReadOnlySpan<double> o,
        Span<double> dzo, Span<double> ds)
    {
        if (Lanes.IsWhole(ds.Length)) OutputBackward<Lanes.Whole>(daNext, dOut, tanhS, o, dzo, ds);
        else OutputBackward<Lanes.Padded>(daNext, dOut, tanhS, o, dzo, ds);
    }

    private static void OutputBackward<T>(ReadOnlySpan<double> daNext, ReadOnlySpan<double> dOut, ReadOnlySpan<double> tanhS, ReadOnlySpan<double> o,
        Span<double> dzo, Span<double> ds) where T : struct, Lanes.IAccess
    {
        var one = System.Numerics.Vector<double>.One;
        for (var row = 0; row < ds.Length; row += Lanes.Width)
        {
            var (t, gate) = (T.Load(tanhS, row), T.Load(o, row));
            var da = T.Load(daNext, row) + T.Load(dOut, row);
            var dO = da * t;                                                                   // dΓo = da⊙tanh(s)
            T.Store(dzo, row, dO * gate * (one - gate));                                       // dz_o = dΓo⊙Γo⊙(1 − Γo)
            T.Store(ds, row, da * gate * (one - t * t));                                       // ds = da⊙Γo⊙(1 − tanh²(s))
        }
    }

    /// <summary>
    /// From dc = dc_next + LNᵀ(dĉ) through c = Γf⊙c_prev + Γi⊙g on one column: dz_i, dz_f, dz_g into the column's dz,
    /// and dc_prev over dc_next.
    /// </summary>
    private static void CellBackward(Span<double> dcNext, ReadOnlySpan<double> dcHat, ReadOnlySpan<double> i, ReadOnlySpan<double> f,
        ReadOnlySpan<double> g, ReadOnlySpan<double> cPrev, Span<double> dz)
    {
        if (Lanes.IsWhole(dcNext.Length)) CellBackward<Lanes.Whole>(dcNext, dcHat, i, f, g, cPrev, dz);
        else CellBackward<Lanes.Padded>(dcNext, dcHat, i, f, g, cPrev, dz);
    }

    private static void CellBackward<T>(Span<double> dcNext, ReadOnlySpan<double> dcHat, ReadOnlySpan<double> i, ReadOnlySpan<double> f,
        ReadOnlySpan<double> g, ReadOnlySpan<double> cPrev, Span<double> dz) where T : struct, Lanes.IAccess
    {
        var (na, one) = (dcNext.Length, System.Numerics.Vector<double>.One);
        Span<double> dzi = dz[..na], dzf = dz.Slice(na, na), dzg = dz.Slice(2 * na, na);
        for (var row = 0; row < na; row += Lanes.Width)
        {
            var (gi, gf, gg) = (T.Load(i, row), T.Load(f, row), T.Load(g, row));
            var dc = T.Load(dcNext, row) + T.Load(dcHat, row);                         // dc ← dc_next + LNᵀ(dĉ)
            T.Store(dzi, row, dc * gg * gi * (one - gi));                                  // dz_i = dc⊙g⊙Γi⊙(1 − Γi)
            T.Store(dzf, row, dc * T.Load(cPrev, row) * gf * (one - gf));              // dz_f = dc⊙c_prev⊙Γf⊙(1 − Γf)
            T.Store(dzg, row, dc * gi * (one - gg * gg));                                  // dz_g = dc⊙Γi⊙(1 − g²)
            T.Store(dcNext, row, dc * gf);                                                 // dc_prev = dc⊙Γf
        }
    }

    /// <summary>The driver's stacked gradients as parameters of the cell: dWx, dWh and the cell's own [dB | dGainX | dGainH | dGainC | dBiasC].</summary>
    public static LayerNormLstmParameters Gradients(LayerNormLstmParameters p, Driver.Gradients g)
    {
        var na = p.HiddenSize;
        Vector<double> Own(int from, int length) => Vector<double>.Build.Dense(g.Own.Span.Slice(from, length).ToArray());
        return p with
        {
            Wx = g.Wx.ToMatrix(), Wh = g.Wh.ToMatrix(), B = Own(0, 4 * na), GainX = Own(4 * na, 4 * na), GainH = Own(8 * na, 4 * na),
            GainC = Own(12 * na, na), BiasC = Own(13 * na, na), Wy = g.Wy.ToMatrix(), By = g.By.ToVector(),
        };
    }
}
