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
        var (na, m, width) = (Hidden, next[0].Columns, Lanes.Width);
        Span<double> a = next[0].Span, c = next[1].Span, i = next[2].Span, f = next[3].Span, g = next[4].Span, o = next[5].Span, cHat = next[CHat].Span;
        ReadOnlySpan<double> cPrev = prev[1].Span;
        var z = scratch[..(4 * na * m)];
        for (var j = 0; j < m; j++)
        {
            var k = j * na;
            for (var block = 0; block < 4; block++)
            {
                var (at, w) = (j * 4 * na + block * na, block * na);
                Span<double> xHat = next[XHat + block].Span.Slice(k, na), hHat = next[HHat + block].Span.Slice(k, na), zb = z.Slice(at, na);
                ReadOnlySpan<double> gx = gainX.AsSpan(w, na), gh = gainH.AsSpan(w, na), bias = b.AsSpan(w, na);
                var (px, ix) = RstdAt(j, block);
                next[px].Span[ix] = LayerNorm.Forward(u.Slice(at, na), xHat, epsilon);                      // x̂ = LN(Wx·x), per gate block
                var (ph, ih) = RstdAt(j, 4 + block);
                next[ph].Span[ih] = LayerNorm.Forward(r.Slice(at, na), hHat, epsilon);                      // ĥ = LN(Wh·a_prev)
                for (var row = 0; row < na; row += width)
                    Lanes.Store(zb, row, Lanes.Load(gx, row) * Lanes.Load(xHat, row)
                        + Lanes.Load(gh, row) * Lanes.Load(hHat, row) + Lanes.Load(bias, row));    // z = GainX⊙x̂ + GainH⊙ĥ + B
            }
            var zj = z.Slice(j * 4 * na, 4 * na);
            Elementwise.Sigmoid(zj[..na], i.Slice(k, na));                                     // Γi = σ(z_i)
            Elementwise.Sigmoid(zj.Slice(na, na), f.Slice(k, na));                             // Γf = σ(z_f)
            Elementwise.Tanh(zj.Slice(2 * na, na), g.Slice(k, na));                            // g = tanh(z_g)
            Elementwise.Sigmoid(zj.Slice(3 * na, na), o.Slice(k, na));                         // Γo = σ(z_o)
        }
        for (var k = 0; k < c.Length; k += width)
            Lanes.Store(c, k, Lanes.Load(f, k) * Lanes.Load(cPrev, k) + Lanes.Load(i, k) * Lanes.Load(g, k)); // c = Γf⊙c_prev + Γi⊙g
        Span<double> s = scratch[..c.Length], tanhS = scratch.Slice(c.Length, c.Length);
        for (var j = 0; j < m; j++)
        {
            var k = j * na;
            var (pc, ic) = RstdAt(j, 8);
            next[pc].Span[ic] = LayerNorm.Forward(c.Slice(k, na), cHat.Slice(k, na), epsilon);             // ĉ = LN(c)
            Span<double> sj = s.Slice(k, na), cHatJ = cHat.Slice(k, na);
            for (var row = 0; row < na; row += width)
                Lanes.Store(sj, row, Lanes.Load(gainC, row) * Lanes.Load(cHatJ, row) + Lanes.Load(biasC, row)); // s = GainC⊙ĉ + BiasC
        }
        Elementwise.Tanh(s, tanhS);
        for (var k = 0; k < a.Length; k += width) Lanes.Store(a, k, Lanes.Load(o, k) * Lanes.Load(tanhS, k)); // a = Γo⊙tanh(s)
    }

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch) => Backward(prev, next, dOut, dCarry, dU, dR, scratch, default, accumulate: false);

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch, Span<double> own) => Backward(prev, next, dOut, dCarry, dU, dR, scratch, own, accumulate: true);

    private void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch, Span<double> own, bool accumulate)
    {
        var (na, m, width, one) = (Hidden, next[0].Columns, Lanes.Width, System.Numerics.Vector<double>.One);
        Span<double> dBiasC = accumulate ? own.Slice(13 * na, na) : default, dGainC = accumulate ? own.Slice(12 * na, na) : default;
        for (var j = 0; j < m; j++)
        {
            var k = j * na;
            ReadOnlySpan<double> i = next[2].Span.Slice(k, na), f = next[3].Span.Slice(k, na), g = next[4].Span.Slice(k, na), o = next[5].Span.Slice(k, na);
            ReadOnlySpan<double> cHat = next[CHat].Span.Slice(k, na), cPrev = prev[1].Span.Slice(k, na), daNext = dCarry[0].Span.Slice(k, na), dOutJ = dOut.Slice(k, na);
            var dcNext = dCarry[1].Span.Slice(k, na);
            var dz = dU.Slice(j * 4 * na, 4 * na);
            Span<double> dzi = dz[..na], dzf = dz.Slice(na, na), dzg = dz.Slice(2 * na, na), dzo = dz.Slice(3 * na, na);
            Span<double> t = scratch.Slice(j * 4 * na, na), dcHat = scratch.Slice(j * 4 * na + na, na);
            for (var row = 0; row < na; row += width)
                Lanes.Store(t, row, Lanes.Load(gainC, row) * Lanes.Load(cHat, row) + Lanes.Load(biasC, row)); // s = GainC⊙ĉ + BiasC
            Elementwise.Tanh(t, t);
            for (var row = 0; row < na; row += width)
            {
                var (tanhS, gate) = (Lanes.Load(t, row), Lanes.Load(o, row));
                var da = Lanes.Load(daNext, row) + Lanes.Load(dOutJ, row);
                var dO = da * tanhS;                                                           // dΓo = da⊙tanh(s)
                Lanes.Store(dzo, row, dO * gate * (one - gate));                               // dz_o = dΓo⊙Γo⊙(1 − Γo)
                var ds = da * gate * (one - tanhS * tanhS);                                    // ds = da⊙Γo⊙(1 − tanh²(s))
                Lanes.Store(dcHat, row, ds * Lanes.Load(gainC, row));                          // dĉ = ds⊙GainC
                if (!accumulate) continue;
                Lanes.Store(dBiasC, row, Lanes.Load(dBiasC, row) + ds);                        // dBiasC += ds
                Lanes.Store(dGainC, row, Lanes.Load(dGainC, row) + ds * Lanes.Load(cHat, row)); // dGainC += ds⊙ĉ
            }
            var (pc, ic) = RstdAt(j, 8);
            LayerNorm.Backward(cHat, next[pc].Span[ic], dcHat, dcHat);                         // dc from dĉ through LN
            for (var row = 0; row < na; row += width)
            {
                var (gi, gf, gg) = (Lanes.Load(i, row), Lanes.Load(f, row), Lanes.Load(g, row));
                var dc = Lanes.Load(dcNext, row) + Lanes.Load(dcHat, row);                     // dc ← dc_next + LNᵀ(dĉ)
                Lanes.Store(dzi, row, dc * gg * gi * (one - gi));                              // dz_i = dc⊙g⊙Γi⊙(1 − Γi)
                Lanes.Store(dzf, row, dc * Lanes.Load(cPrev, row) * gf * (one - gf));          // dz_f = dc⊙c_prev⊙Γf⊙(1 − Γf)
                Lanes.Store(dzg, row, dc * gi * (one - gg * gg));                              // dz_g = dc⊙Γi⊙(1 − g²)
                Lanes.Store(dcNext, row, dc * gf);                                             // dc_prev = dc⊙Γf
            }
            for (var block = 0; block < 4; block++)
            {
                var (at, w) = (j * 4 * na + block * na, block * na);
                ReadOnlySpan<double> xHat = next[XHat + block].Span.Slice(k, na), hHat = next[HHat + block].Span.Slice(k, na);
                ReadOnlySpan<double> gx = gainX.AsSpan(w, na), gh = gainH.AsSpan(w, na);
                Span<double> du = dU.Slice(at, na), dr = dR.Slice(at, na);
                if (accumulate)
                {
                    Span<double> dB = own.Slice(w, na), dGainX = own.Slice(4 * na + w, na), dGainH = own.Slice(8 * na + w, na);
                    for (var row = 0; row < na; row += width)
                    {
                        var d = Lanes.Load(du, row);
                        Lanes.Store(dB, row, Lanes.Load(dB, row) + d);                                 // dB += dz
                        Lanes.Store(dGainX, row, Lanes.Load(dGainX, row) + d * Lanes.Load(xHat, row)); // dGainX += dz⊙x̂
                        Lanes.Store(dGainH, row, Lanes.Load(dGainH, row) + d * Lanes.Load(hHat, row)); // dGainH += dz⊙ĥ
                    }
                }
                for (var row = 0; row < na; row += width)
                {
                    var d = Lanes.Load(du, row);
                    Lanes.Store(dr, row, d * Lanes.Load(gh, row));                             // dĥ = dz⊙GainH
                    Lanes.Store(du, row, d * Lanes.Load(gx, row));                             // dx̂ = dz⊙GainX
                }
                var (px, ix) = RstdAt(j, block);
                LayerNorm.Backward(xHat, next[px].Span[ix], du, du);                           // dU = LNᵀ(dx̂)
                var (ph, ih) = RstdAt(j, 4 + block);
                LayerNorm.Backward(hHat, next[ph].Span[ih], dr, dr);                           // dR = LNᵀ(dĥ)
            }
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
