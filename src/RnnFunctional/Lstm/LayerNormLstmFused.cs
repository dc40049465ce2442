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
        ReadOnlySpan<double> cPrev = prev[1].Span;
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
                for (var row = 0; row < na; row++)
                    z[at + row] = gainX[w + row] * xHat[row] + gainH[w + row] * hHat[row] + b[w + row]; // z = GainX⊙x̂ + GainH⊙ĥ + B
            }
            var zj = z.Slice(j * 4 * na, 4 * na);
            Elementwise.Sigmoid(zj[..na], i.Slice(k, na));                                     // Γi = σ(z_i)
            Elementwise.Sigmoid(zj.Slice(na, na), f.Slice(k, na));                             // Γf = σ(z_f)
            Elementwise.Tanh(zj.Slice(2 * na, na), g.Slice(k, na));                            // g = tanh(z_g)
            Elementwise.Sigmoid(zj.Slice(3 * na, na), o.Slice(k, na));                         // Γo = σ(z_o)
        }
        for (var k = 0; k < c.Length; k++) c[k] = f[k] * cPrev[k] + i[k] * g[k];              // c = Γf⊙c_prev + Γi⊙g
        Span<double> s = scratch[..c.Length], tanhS = scratch.Slice(c.Length, c.Length);
        for (var j = 0; j < m; j++)
        {
            var k = j * na;
            var (pc, ic) = RstdAt(j, 8);
            next[pc].Span[ic] = LayerNorm.Forward(c.Slice(k, na), cHat.Slice(k, na), epsilon);             // ĉ = LN(c)
            for (var row = 0; row < na; row++) s[k + row] = gainC[row] * cHat[k + row] + biasC[row]; // s = GainC⊙ĉ + BiasC
        }
        Elementwise.Tanh(s, tanhS);
        for (var k = 0; k < a.Length; k++) a[k] = o[k] * tanhS[k];                             // a = Γo⊙tanh(s)
    }

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch) => Backward(prev, next, dOut, dCarry, dU, dR, scratch, default, accumulate: false);

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch, Span<double> own) => Backward(prev, next, dOut, dCarry, dU, dR, scratch, own, accumulate: true);

    private void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch, Span<double> own, bool accumulate)
    {
        var (na, m) = (Hidden, next[0].Columns);
        ReadOnlySpan<double> i = next[2].Span, f = next[3].Span, g = next[4].Span, o = next[5].Span, cHat = next[CHat].Span, cPrev = prev[1].Span;
        ReadOnlySpan<double> daNext = dCarry[0].Span;
        var dcNext = dCarry[1].Span;
        var (dGainX, dGainH, dGainC, dBiasC) = (4 * na, 8 * na, 12 * na, 13 * na);                   // where each lies in own, after dB
        for (var j = 0; j < m; j++)
        {
            var k = j * na;
            var dz = dU.Slice(j * 4 * na, 4 * na);
            Span<double> t = scratch.Slice(j * 4 * na, na), dcHat = scratch.Slice(j * 4 * na + na, na);
            for (var row = 0; row < na; row++) t[row] = gainC[row] * cHat[k + row] + biasC[row]; // s = GainC⊙ĉ + BiasC
            Elementwise.Tanh(t, t);
            for (var row = 0; row < na; row++)
            {
                var da = daNext[k + row] + dOut[k + row];
                var dO = da * t[row];                                                          // dΓo = da⊙tanh(s)
                dz[3 * na + row] = dO * o[k + row] * (1.0 - o[k + row]);                       // dz_o = dΓo⊙Γo⊙(1 − Γo)
                var ds = da * o[k + row] * (1.0 - t[row] * t[row]);                            // ds = da⊙Γo⊙(1 − tanh²(s))
                dcHat[row] = ds * gainC[row];                                                  // dĉ = ds⊙GainC
                if (!accumulate) continue;
                own[dBiasC + row] += ds;                                                       // dBiasC += ds
                own[dGainC + row] += ds * cHat[k + row];                                       // dGainC += ds⊙ĉ
            }
            var (pc, ic) = RstdAt(j, 8);
            LayerNorm.Backward(cHat.Slice(k, na), next[pc].Span[ic], dcHat, dcHat);            // dc from dĉ through LN
            for (var row = 0; row < na; row++)
            {
                var kk = k + row;
                var dc = dcNext[kk] + dcHat[row];                                              // dc ← dc_next + LNᵀ(dĉ)
                dz[row] = dc * g[kk] * i[kk] * (1.0 - i[kk]);                                  // dz_i = dc⊙g⊙Γi⊙(1 − Γi)
                dz[na + row] = dc * cPrev[kk] * f[kk] * (1.0 - f[kk]);                         // dz_f = dc⊙c_prev⊙Γf⊙(1 − Γf)
                dz[2 * na + row] = dc * i[kk] * (1.0 - g[kk] * g[kk]);                         // dz_g = dc⊙Γi⊙(1 − g²)
                dcNext[kk] = dc * f[kk];                                                       // dc_prev = dc⊙Γf
            }
            for (var block = 0; block < 4; block++)
            {
                var (at, w) = (j * 4 * na + block * na, block * na);
                ReadOnlySpan<double> xHat = next[XHat + block].Span.Slice(k, na), hHat = next[HHat + block].Span.Slice(k, na);
                for (var row = 0; row < na; row++)
                {
                    var d = dU[at + row];
                    if (accumulate)
                    {
                        own[w + row] += d;                                                     // dB += dz
                        own[dGainX + w + row] += d * xHat[row];                                // dGainX += dz⊙x̂
                        own[dGainH + w + row] += d * hHat[row];                                // dGainH += dz⊙ĥ
                    }
                    dR[at + row] = d * gainH[w + row];                                         // dĥ = dz⊙GainH
                    dU[at + row] = d * gainX[w + row];                                         // dx̂ = dz⊙GainX
                }
                var (px, ix) = RstdAt(j, block);
                LayerNorm.Backward(xHat, next[px].Span[ix], dU.Slice(at, na), dU.Slice(at, na));  // dU = LNᵀ(dx̂)
                var (ph, ih) = RstdAt(j, 4 + block);
                LayerNorm.Backward(hHat, next[ph].Span[ih], dR.Slice(at, na), dR.Slice(at, na));  // dR = LNᵀ(dĥ)
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
