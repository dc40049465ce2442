using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The LSTM on the <see cref="Driver"/>: four gates stacked f | i | c̃ | o, z = W_x·x + b + W_a·a_prev formed in place.
/// Parts of a step: a, c (the carry), then Γf, Γi, c̃, Γo.
/// </summary>
internal sealed class LstmFused : FusedCell
{
    private LstmFused(int na, Block wx, Block wh, Block b) : base(4, na, wx, wh, b, default)
    {
    }

    /// <summary>
    /// The cell of the given parameters, their gate matrices stacked once (their read-out is not read), in storage of
    /// the open <see cref="CallScratch"/> if any.
    /// </summary>
    public static LstmFused Of(LstmParameters p)
    {
        var (wx, wh, b) = Stacked(p);
        return new(p.HiddenSize, wx, wh, b);
    }

    /// <summary>
    /// The gate matrices of <paramref name="p"/> stacked f | i | c̃ | o: W_x (4n_a×n_x), W_a (4n_a×n_a) and b (4n_a), in
    /// storage of the open <see cref="CallScratch"/> if any.
    /// </summary>
    public static (Block Wx, Block Wh, Block B) Stacked(LstmParameters p)
    {
        var (na, nx) = (p.HiddenSize, p.InputSize);
        var gates = new[] { p.Wf, p.Wi, p.Wc, p.Wo };
        var biases = new[] { p.Bf, p.Bi, p.Bc, p.Bo };
        var (wx, wh, b) = (CallScratch.Doubles(4 * na * nx), CallScratch.Doubles(4 * na * na), CallScratch.Doubles(4 * na)); // every entry written below
        for (var g = 0; g < 4; g++)
        {
            var w = Block.Of(gates[g]);
            for (var j = 0; j < na; j++) w.Span.Slice(j * na, na).CopyTo(wh.AsSpan(j * 4 * na + g * na, na));       // W_a: the first n_a columns
            for (var j = 0; j < nx; j++) w.Span.Slice((na + j) * na, na).CopyTo(wx.AsSpan(j * 4 * na + g * na, na)); // W_x: the last n_x
            Block.Of(biases[g]).Span.CopyTo(b.AsSpan(g * na, na));
        }
        return (new(wx, 0, 4 * na, nx), new(wh, 0, 4 * na, na), new(b, 0, 4 * na, 1));
    }

    public override int Parts => 6;

    /// <inheritdoc />
    public override bool CopiesWeightGradients => true;

    public override int CarryParts => 2;

    public override bool RecurrentOntoInput => true;

    public override bool GateWiseTransposedProducts => true;

    public override void Forward(Span<double> z, Span<double> r, Block[] prev, Block[] next, Span<double> scratch)
    {
        var na = Hidden;
        Span<double> a = next[0].Span, c = next[1].Span, f = next[2].Span, i = next[3].Span, cTilde = next[4].Span, o = next[5].Span;
        ReadOnlySpan<double> cPrev = prev[1].Span;
        for (var j = 0; j < next[0].Columns; j++)
        {
            var zj = z.Slice(j * 4 * na, 4 * na);
            var k = j * na;
            Elementwise.Sigmoid(zj[..na], f.Slice(k, na));                             // Γf = σ(z_f)
            Elementwise.Sigmoid(zj.Slice(na, na), i.Slice(k, na));                     // Γi = σ(z_i)
            Elementwise.Tanh(zj.Slice(2 * na, na), cTilde.Slice(k, na));               // c̃ = tanh(z_c)
            Elementwise.Sigmoid(zj.Slice(3 * na, na), o.Slice(k, na));                 // Γo = σ(z_o)
        }
        var tanhC = scratch[..c.Length];
        Lanes.SumOfProducts(f, cPrev, i, cTilde, c);                                   // c = Γf⊙c_prev + Γi⊙c̃
        Elementwise.Tanh(c, tanhC);
        Lanes.Multiply(o, tanhC, a);                                                   // a = Γo⊙tanh(c)
    }

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch)
    {
        var na = Hidden;
        ReadOnlySpan<double> c = next[1].Span, f = next[2].Span, i = next[3].Span, cTilde = next[4].Span, o = next[5].Span, cPrev = prev[1].Span;
        ReadOnlySpan<double> daNext = dCarry[0].Span;
        var dcNext = dCarry[1].Span;
        var tanhC = scratch[..c.Length];
        Elementwise.Tanh(c, tanhC);
        for (var j = 0; j < next[0].Columns; j++)
        {
            var k = j * na;
            ColumnBackward(daNext.Slice(k, na), dOut.Slice(k, na), tanhC.Slice(k, na), cPrev.Slice(k, na), f.Slice(k, na), i.Slice(k, na),
                cTilde.Slice(k, na), o.Slice(k, na), dcNext.Slice(k, na), dU.Slice(j * 4 * na, 4 * na));
        }
    }

    /// <summary>The backward of one column: dz = [dz_f; dz_i; dz_c; dz_o] from da and dc_next, and dc_prev over dc_next.</summary>
    private static void ColumnBackward(ReadOnlySpan<double> daNext, ReadOnlySpan<double> dOut, ReadOnlySpan<double> tanhC, ReadOnlySpan<double> cPrev,
        ReadOnlySpan<double> f, ReadOnlySpan<double> i, ReadOnlySpan<double> cTilde, ReadOnlySpan<double> o, Span<double> dcNext, Span<double> dz)
    {
        if (Lanes.IsWhole(dcNext.Length)) ColumnBackward<Lanes.Whole>(daNext, dOut, tanhC, cPrev, f, i, cTilde, o, dcNext, dz);
        else ColumnBackward<Lanes.Padded>(daNext, dOut, tanhC, cPrev, f, i, cTilde, o, dcNext, dz);
    }

    private static void ColumnBackward<T>(ReadOnlySpan<double> daNext, ReadOnlySpan<double> dOut, ReadOnlySpan<double> tanhC, ReadOnlySpan<double> cPrev,
        ReadOnlySpan<double> f, ReadOnlySpan<double> i, ReadOnlySpan<double> cTilde, ReadOnlySpan<double> o, Span<double> dcNext, Span<double> dz)
        where T : struct, Lanes.IAccess
    {
        var (na, one) = (dcNext.Length, System.Numerics.Vector<double>.One);
        Span<double> dzf = dz[..na], dzi = dz.Slice(na, na), dzc = dz.Slice(2 * na, na), dzo = dz.Slice(3 * na, na);
        for (var row = 0; row < na; row += Lanes.Width)
        {
            var (t, gf, gi, gc, go) = (T.Load(tanhC, row), T.Load(f, row), T.Load(i, row), T.Load(cTilde, row), T.Load(o, row));
            var da = T.Load(daNext, row) + T.Load(dOut, row);
            var dO = da * t;                                                          // dΓo = da⊙tanh(c)
            var dC = T.Load(dcNext, row) + da * go * (one - t * t);                   // dc ← dc + da⊙Γo⊙(1 − tanh²(c))
            T.Store(dzf, row, dC * T.Load(cPrev, row) * gf * (one - gf));             // dz_f = dc⊙c_prev⊙Γf⊙(1 − Γf)
            T.Store(dzi, row, dC * gc * gi * (one - gi));                             // dz_i = dc⊙c̃⊙Γi⊙(1 − Γi)
            T.Store(dzc, row, dC * gi * (one - gc * gc));                             // dz_c = dc⊙Γi⊙(1 − c̃²)
            T.Store(dzo, row, dO * go * (one - go));                                  // dz_o = dΓo⊙Γo⊙(1 − Γo)
            T.Store(dcNext, row, dC * gf);                                            // dc_prev = dc⊙Γf
        }
    }

    /// <summary>The driver's stacked gradients as parameters of the cell: each gate's rows of [dW_a | dW_x] and of db.</summary>
    public static LstmParameters Gradients(LstmParameters p, Driver.Gradients g)
    {
        var (na, nx) = (p.HiddenSize, p.InputSize);
        Matrix<double> Gate(int k)
        {
            var w = GC.AllocateUninitializedArray<double>(na * (na + nx));                                  // every entry written below
            for (var j = 0; j < na; j++) g.Wh.Span.Slice(j * 4 * na + k * na, na).CopyTo(w.AsSpan(j * na, na));
            for (var j = 0; j < nx; j++) g.Wx.Span.Slice(j * 4 * na + k * na, na).CopyTo(w.AsSpan((na + j) * na, na));
            return Matrix<double>.Build.Dense(na, na + nx, w);
        }
        Vector<double> Bias(int k) => Vector<double>.Build.Dense(g.Bx.Span.Slice(k * na, na).ToArray());
        return p with
        {
            Wf = Gate(0), Bf = Bias(0), Wi = Gate(1), Bi = Bias(1), Wc = Gate(2), Bc = Bias(2), Wo = Gate(3), Bo = Bias(3),
            Wy = g.Wy.ToMatrix(), By = g.By.ToVector(),
        };
    }
}
