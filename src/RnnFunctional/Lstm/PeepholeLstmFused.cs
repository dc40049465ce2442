using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The peephole LSTM on the <see cref="Driver"/>: the gates of <see cref="LstmFused"/> (f | i | c̃ | o stacked,
/// z = W_x·x + b + W_a·a_prev formed in place) plus pf⊙c_prev and pi⊙c_prev on z_f and z_i and po⊙c on z_o. Parts of
/// a step: a, c (the carry), then Γf, Γi, c̃, Γo. Its own parameters are [pf | pi | po], 3n_a.
/// </summary>
internal sealed class PeepholeLstmFused : FusedCell
{
    private readonly double[] pf, pi, po;

    private PeepholeLstmFused((Block Wx, Block Wh, Block B) gates, PeepholeLstmParameters p) : base(4, p.HiddenSize, gates.Wx, gates.Wh, gates.B, default) =>
        (pf, pi, po) = (p.Pf.ToArray(), p.Pi.ToArray(), p.Po.ToArray());

    /// <summary>The cell of the given parameters, their gate matrices stacked once (<see cref="LstmFused.Stacked"/>) and their peephole weights copied (their read-out is not read).</summary>
    public static PeepholeLstmFused Of(PeepholeLstmParameters p) => new(LstmFused.Stacked(p.WithoutPeepholes), p);

    public override int Parts => 6;

    /// <inheritdoc />
    public override bool CopiesWeightGradients => true;

    public override int CarryParts => 2;

    public override bool RecurrentOntoInput => true;

    public override bool GateWiseTransposedProducts => true;

    public override int OwnParameters => 3 * Hidden;

    public override void Forward(Span<double> z, Span<double> r, Block[] prev, Block[] next, Span<double> scratch)
    {
        var na = Hidden;
        Span<double> a = next[0].Span, c = next[1].Span, f = next[2].Span, i = next[3].Span, cTilde = next[4].Span, o = next[5].Span;
        ReadOnlySpan<double> cPrev = prev[1].Span;
        for (var j = 0; j < next[0].Columns; j++)
        {
            var zj = z.Slice(j * 4 * na, 4 * na);
            var k = j * na;
            for (var row = 0; row < na; row++)
            {
                zj[row] += pf[row] * cPrev[k + row];                                    // z_f + pf⊙c_prev
                zj[na + row] += pi[row] * cPrev[k + row];                               // z_i + pi⊙c_prev
            }
            Elementwise.Sigmoid(zj[..na], f.Slice(k, na));                             // Γf = σ(z_f + pf⊙c_prev)
            Elementwise.Sigmoid(zj.Slice(na, na), i.Slice(k, na));                     // Γi = σ(z_i + pi⊙c_prev)
            Elementwise.Tanh(zj.Slice(2 * na, na), cTilde.Slice(k, na));               // c̃ = tanh(z_c)
        }
        for (var k = 0; k < c.Length; k++) c[k] = f[k] * cPrev[k] + i[k] * cTilde[k]; // c = Γf⊙c_prev + Γi⊙c̃
        for (var j = 0; j < next[0].Columns; j++)
        {
            var zo = z.Slice(j * 4 * na + 3 * na, na);
            var k = j * na;
            for (var row = 0; row < na; row++) zo[row] += po[row] * c[k + row];        // z_o + po⊙c
            Elementwise.Sigmoid(zo, o.Slice(k, na));                                   // Γo = σ(z_o + po⊙c)
        }
        var tanhC = scratch[..c.Length];
        Elementwise.Tanh(c, tanhC);
        for (var k = 0; k < a.Length; k++) a[k] = o[k] * tanhC[k];                     // a = Γo⊙tanh(c)
    }

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch) => Backward(prev, next, dOut, dCarry, dU, scratch, own: default, accumulate: false);

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch, Span<double> own) => Backward(prev, next, dOut, dCarry, dU, scratch, own, accumulate: true);

    private void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> scratch,
        Span<double> own, bool accumulate)
    {
        var na = Hidden;
        ReadOnlySpan<double> c = next[1].Span, f = next[2].Span, i = next[3].Span, cTilde = next[4].Span, o = next[5].Span, cPrev = prev[1].Span;
        ReadOnlySpan<double> daNext = dCarry[0].Span;
        var dcNext = dCarry[1].Span;
        var tanhC = scratch[..c.Length];
        Elementwise.Tanh(c, tanhC);
        for (var k = 0; k < c.Length; k++)
        {
            var (j, row) = (k / na, k % na);
            var dz = dU.Slice(j * 4 * na, 4 * na);
            var da = daNext[k] + dOut[k];
            var t = tanhC[k];
            var dO = da * t;                                                          // dΓo = da⊙tanh(c)
            var dzo = dO * o[k] * (1.0 - o[k]);                                       // dz_o = dΓo⊙Γo⊙(1 − Γo)
            var dC = dcNext[k] + da * o[k] * (1.0 - t * t) + dzo * po[row];           // dc ← dc + da⊙Γo⊙(1 − tanh²(c)) + dz_o⊙po
            var dzf = dC * cPrev[k] * f[k] * (1.0 - f[k]);                            // dz_f = dc⊙c_prev⊙Γf⊙(1 − Γf)
            var dzi = dC * cTilde[k] * i[k] * (1.0 - i[k]);                           // dz_i = dc⊙c̃⊙Γi⊙(1 − Γi)
            (dz[row], dz[na + row]) = (dzf, dzi);
            dz[2 * na + row] = dC * i[k] * (1.0 - cTilde[k] * cTilde[k]);             // dz_c = dc⊙Γi⊙(1 − c̃²)
            dz[3 * na + row] = dzo;
            dcNext[k] = dC * f[k] + dzf * pf[row] + dzi * pi[row];                    // dc_prev = dc⊙Γf + dz_f⊙pf + dz_i⊙pi
            if (!accumulate) continue;
            own[row] += dzf * cPrev[k];                                               // dpf += dz_f⊙c_prev
            own[na + row] += dzi * cPrev[k];                                          // dpi += dz_i⊙c_prev
            own[2 * na + row] += dzo * c[k];                                          // dpo += dz_o⊙c
        }
    }

    /// <summary>The driver's stacked gradients as parameters of the cell: the LSTM's gates (<see cref="LstmFused.Gradients"/>) and the peepholes.</summary>
    public static PeepholeLstmParameters Gradients(PeepholeLstmParameters p, Driver.Gradients g)
    {
        var na = p.HiddenSize;
        Vector<double> Own(int k) => Vector<double>.Build.Dense(g.Own.Span.Slice(k * na, na).ToArray());
        return PeepholeLstmParameters.Of(LstmFused.Gradients(p.WithoutPeepholes, g), Own(0), Own(1), Own(2));
    }
}
