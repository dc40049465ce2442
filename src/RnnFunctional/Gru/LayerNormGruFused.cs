using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The layer-normalized GRU on the <see cref="Driver"/>: U = Wih·X and R = Whh·h_prev (the driver's biases are zero)
/// normalized per gate block and column, then gi = GainIh⊙LN(U) + Bih and gh = GainHh⊙LN(R) + Bhh written over U and R,
/// then the GRU of <see cref="GruFused"/>. Parts of a step: h (the carry), r, z, n, hn = gh_n, the three blocks of LN(U),
/// the three of LN(R), then the six values 1/√(σ² + ε) of each column packed n_a to a part. Its own parameters are
/// [Bih | Bhh | GainIh | GainHh], 12n_a.
/// </summary>
internal sealed class LayerNormGruFused : FusedCell
{
    private const int XHat = 5, HHat = 8, Rstd = 11;
    private readonly double[] bih, bhh, gainIh, gainHh;
    private readonly double epsilon;

    private LayerNormGruFused(LayerNormGruParameters p)
        : base(3, p.HiddenSize, Block.Of(p.Wih).Copy(), Block.Of(p.Whh).Copy(), Block.Fresh(3 * p.HiddenSize, 1).Block, Block.Fresh(3 * p.HiddenSize, 1).Block) =>
        (bih, bhh, gainIh, gainHh, epsilon) = (p.Bih.ToArray(), p.Bhh.ToArray(), p.GainIh.ToArray(), p.GainHh.ToArray(), p.Epsilon);

    /// <summary>The cell of the given parameters, copied (their read-out is not read).</summary>
    public static LayerNormGruFused Of(LayerNormGruParameters p) => new(p);

    public override int Parts => Rstd + (6 + Hidden - 1) / Hidden;

    public override int CarryParts => 1;

    public override bool RecurrentOntoInput => false;

    public override int OwnParameters => 12 * Hidden;

    /// <summary>Where 1/√(σ² + ε) of block v of column j lives: blocks 0–2 of U, 3–5 of R.</summary>
    private (int Part, int Index) RstdAt(int j, int v) => (Rstd + v / Hidden, j * Hidden + v % Hidden);

    public override void Forward(Span<double> gi, Span<double> gh, Block[] prev, Block[] next, Span<double> scratch)
    {
        var (na, m) = (Hidden, next[0].Columns);
        for (var j = 0; j < m; j++)
            for (var block = 0; block < 3; block++)
            {
                var (at, w, k) = (j * 3 * na + block * na, block * na, j * na);
                Span<double> xHat = next[XHat + block].Span.Slice(k, na), hHat = next[HHat + block].Span.Slice(k, na);
                var (px, ix) = RstdAt(j, block);
                next[px].Span[ix] = LayerNorm.Forward(gi.Slice(at, na), xHat, epsilon);                // x̂ = LN(Wih·x), per gate block
                var (ph, ih) = RstdAt(j, 3 + block);
                next[ph].Span[ih] = LayerNorm.Forward(gh.Slice(at, na), hHat, epsilon);                // ĥ = LN(Whh·h_prev)
                for (var row = 0; row < na; row++)
                {
                    gi[at + row] = gainIh[w + row] * xHat[row] + bih[w + row];                         // gi = GainIh⊙x̂ + Bih
                    gh[at + row] = gainHh[w + row] * hHat[row] + bhh[w + row];                         // gh = GainHh⊙ĥ + Bhh
                }
            }
        Span<double> h = next[0].Span, r = next[1].Span, z = next[2].Span, n = next[3].Span, hn = next[4].Span;
        ReadOnlySpan<double> hPrev = prev[0].Span;
        var sum = scratch[..h.Length];
        for (int j = 0, k = 0; k < sum.Length; j += 3 * na)
            for (var i = 0; i < na; i++, k++) sum[k] = gi[j + i] + gh[j + i];
        Elementwise.Sigmoid(sum, r);                                                   // r = σ(gi_r + gh_r)
        for (int j = na, k = 0; k < sum.Length; j += 3 * na)
            for (var i = 0; i < na; i++, k++) sum[k] = gi[j + i] + gh[j + i];
        Elementwise.Sigmoid(sum, z);                                                   // z = σ(gi_z + gh_z)
        for (int j = 2 * na, k = 0; k < sum.Length; j += 3 * na)
            for (var i = 0; i < na; i++, k++)
            {
                hn[k] = gh[j + i];                                                     // hn = gh_n
                sum[k] = gi[j + i] + r[k] * hn[k];
            }
        Elementwise.Tanh(sum, n);                                                      // n = tanh(gi_n + r⊙hn)
        for (var k = 0; k < h.Length; k++) h[k] = (1.0 - z[k]) * n[k] + z[k] * hPrev[k]; // h = (1 − z)⊙n + z⊙h_prev
    }

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch) => Backward(prev, next, dOut, dCarry, dU, dR, scratch, default, accumulate: false);

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch, Span<double> own) => Backward(prev, next, dOut, dCarry, dU, dR, scratch, own, accumulate: true);

    private void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dgi, Span<double> dgh,
        Span<double> scratch, Span<double> own, bool accumulate)
    {
        var (na, m) = (Hidden, next[0].Columns);
        ReadOnlySpan<double> r = next[1].Span, z = next[2].Span, n = next[3].Span, hn = next[4].Span, hPrev = prev[0].Span, dhNext = dCarry[0].Span;
        var dh = scratch[..r.Length];
        for (int j = 0, k = 0; k < dh.Length; j += 3 * na)
            for (var i = 0; i < na; i++, k++)
            {
                var d = dh[k] = dhNext[k] + dOut[k];
                var dn = d * (1.0 - z[k]);                                 // dn = dh⊙(1 − z)
                var dz = d * (hPrev[k] - n[k]);                            // dz = dh⊙(h_prev − n)
                var dgn = dn * (1.0 - n[k] * n[k]);                        // dgi_n = dn⊙(1 − n²)
                var dr = dgn * hn[k];                                      // dr = dgi_n⊙hn
                var dgr = dr * r[k] * (1.0 - r[k]);                        // dgi_r = dgh_r = dr⊙r⊙(1 − r)
                var dgz = dz * z[k] * (1.0 - z[k]);                        // dgi_z = dgh_z = dz⊙z⊙(1 − z)
                (dgi[j + i], dgi[j + na + i], dgi[j + 2 * na + i]) = (dgr, dgz, dgn);
                (dgh[j + i], dgh[j + na + i], dgh[j + 2 * na + i]) = (dgr, dgz, dgn * r[k]); // dgh_n = dgi_n⊙r
            }
        var (dBhh, dGainIh, dGainHh) = (3 * na, 6 * na, 9 * na);                         // where each lies in own, after dBih
        for (var j = 0; j < m; j++)
            for (var block = 0; block < 3; block++)
            {
                var (at, w, k) = (j * 3 * na + block * na, block * na, j * na);
                ReadOnlySpan<double> xHat = next[XHat + block].Span.Slice(k, na), hHat = next[HHat + block].Span.Slice(k, na);
                for (var row = 0; row < na; row++)
                {
                    var (di, dhh) = (dgi[at + row], dgh[at + row]);
                    if (accumulate)
                    {
                        own[w + row] += di;                                                   // dBih += dgi
                        own[dBhh + w + row] += dhh;                                           // dBhh += dgh
                        own[dGainIh + w + row] += di * xHat[row];                             // dGainIh += dgi⊙x̂
                        own[dGainHh + w + row] += dhh * hHat[row];                            // dGainHh += dgh⊙ĥ
                    }
                    dgi[at + row] = di * gainIh[w + row];                                     // dx̂ = dgi⊙GainIh
                    dgh[at + row] = dhh * gainHh[w + row];                                    // dĥ = dgh⊙GainHh
                }
                var (px, ix) = RstdAt(j, block);
                LayerNorm.Backward(xHat, next[px].Span[ix], dgi.Slice(at, na), dgi.Slice(at, na));   // dU = LNᵀ(dx̂)
                var (ph, ih) = RstdAt(j, 3 + block);
                LayerNorm.Backward(hHat, next[ph].Span[ih], dgh.Slice(at, na), dgh.Slice(at, na));   // dR = LNᵀ(dĥ)
            }
    }

    public override void FinishCarry(Block[] next, Span<double> dhPrev, ReadOnlySpan<double> scratch)
    {
        ReadOnlySpan<double> z = next[2].Span;
        for (var k = 0; k < dhPrev.Length; k++) dhPrev[k] += scratch[k] * z[k];      // dh_prev = Whhᵀ·dR + dh⊙z
    }

    /// <summary>The driver's stacked gradients as parameters of the cell: dWih, dWhh and the cell's own [dBih | dBhh | dGainIh | dGainHh].</summary>
    public static LayerNormGruParameters Gradients(LayerNormGruParameters p, Driver.Gradients g)
    {
        var na = p.HiddenSize;
        Vector<double> Own(int k) => Vector<double>.Build.Dense(g.Own.Span.Slice(k * 3 * na, 3 * na).ToArray());
        return p with { Wih = g.Wx.ToMatrix(), Whh = g.Wh.ToMatrix(), Bih = Own(0), Bhh = Own(1), GainIh = Own(2), GainHh = Own(3), Wy = g.Wy.ToMatrix(), By = g.By.ToVector() };
    }
}
