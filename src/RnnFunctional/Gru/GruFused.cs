using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The GRU on the <see cref="Driver"/>, in PyTorch's formulation: gates r | z | n, U = W_ih·x + b_ih and
/// R = W_hh·h_prev + b_hh side by side, n = tanh(U_n + r⊙R_n). Parts of a step: h (the carry), then r, z, n and
/// hn = R_n. Backward, dU = [dr; dz; dn] and dR = [dr; dz; r⊙dn] differ in the candidate's rows, and h_prev also
/// receives dh⊙z directly.
/// </summary>
internal sealed class GruFused : FusedCell
{
    private GruFused(GruParameters p)
        : base(3, p.HiddenSize, CallScratch.Copy(Block.Of(p.Wih)), CallScratch.Copy(Block.Of(p.Whh)), CallScratch.Copy(Block.Of(p.Bih)), CallScratch.Copy(Block.Of(p.Bhh)))
    {
    }

    /// <summary>The cell of the given parameters, copied into storage of the open <see cref="CallScratch"/> if any (their read-out is not read).</summary>
    public static GruFused Of(GruParameters p) => new(p);

    public override int Parts => 5;

    public override int CarryParts => 1;

    public override bool RecurrentOntoInput => false;

    public override void Forward(Span<double> gi, Span<double> gh, Block[] prev, Block[] next, Span<double> scratch)
    {
        var na = Hidden;
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
                hn[k] = gh[j + i];                                                     // hn = W_hn·h_prev + b_hn
                sum[k] = gi[j + i] + r[k] * hn[k];
            }
        Elementwise.Tanh(sum, n);                                                      // n = tanh(gi_n + r⊙hn)
        for (var k = 0; k < h.Length; k++) h[k] = (1.0 - z[k]) * n[k] + z[k] * hPrev[k]; // h = (1 − z)⊙n + z⊙h_prev
    }

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dgi, Span<double> dgh,
        Span<double> scratch)
    {
        var na = Hidden;
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
    }

    public override void FinishCarry(Block[] next, Span<double> dhPrev, ReadOnlySpan<double> scratch)
    {
        ReadOnlySpan<double> z = next[2].Span;
        for (var k = 0; k < dhPrev.Length; k++) dhPrev[k] += scratch[k] * z[k];      // dh_prev = Whhᵀ·dgh + dh⊙z
    }

    /// <summary>The driver's stacked gradients as parameters of the cell.</summary>
    public static GruParameters Gradients(GruParameters p, Driver.Gradients g) =>
        p with { Wih = g.Wx.ToMatrix(), Whh = g.Wh.ToMatrix(), Bih = g.Bx.ToVector(), Bhh = g.Bh.ToVector(), Wy = g.Wy.ToMatrix(), By = g.By.ToVector() };
}
