using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The vanilla RNN on the <see cref="Driver"/>: one gate, z = Wax·x + ba + Waa·a_prev formed in place, a = φ(z);
/// backward dz = φ'(a) ⊙ (da + da_next), and dz is both dU and dR.
/// </summary>
internal sealed class RnnFused : FusedCell
{
    private readonly Activation activation;

    private RnnFused(RnnParameters p)
        : base(1, p.HiddenSize, CallScratch.Copy(Block.Of(p.Wax)), CallScratch.Copy(Block.Of(p.Waa)), CallScratch.Copy(Block.Of(p.Ba)), default) => activation = p.Activation;

    /// <summary>The cell of the given parameters, copied into storage of the open <see cref="CallScratch"/> if any (their read-out is not read).</summary>
    public static RnnFused Of(RnnParameters p) => new(p);

    public override int Parts => 1;

    public override int CarryParts => 1;

    public override bool RecurrentOntoInput => true;

    public override void Forward(Span<double> z, Span<double> r, Block[] prev, Block[] next, Span<double> scratch)
    {
        if (activation == Activation.Tanh) Elementwise.Tanh(z, next[0].Span);          // a = tanh(z)
        else Elementwise.Relu(z, next[0].Span);                                         //  or max(0, z)
    }

    public override void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch)
    {
        if (!dOut.Overlaps(dU)) dOut.CopyTo(dU);                                    // the driver hands one gate's dU in place of dOut
        if (activation == Activation.Tanh) Elementwise.TanhBackward(next[0].Span, dU, dCarry[0].Span); // dz = (1 − a²) ⊙ (da + da_next)
        else Elementwise.ReluBackward(next[0].Span, dU, dCarry[0].Span);                                //  or [a > 0] ⊙ (da + da_next)
    }

    /// <summary>The driver's stacked gradients as parameters of the cell (read-out entries from <paramref name="g"/>, or zero-sized when it has none).</summary>
    public static RnnParameters Gradients(RnnParameters p, Driver.Gradients g) =>
        p with { Wax = g.Wx.ToMatrix(), Waa = g.Wh.ToMatrix(), Ba = g.Bx.ToVector(), Wya = g.Wy.ToMatrix(), By = g.By.ToVector() };
}
