namespace RnnFunctional.Kernels;

/// <summary>
/// What a cell contributes to the <see cref="Driver"/>: its gate layout, its weights stacked by gate, and the
/// element-wise math of one step, forward beside backward. Everything else — chunks, time blocks, the input
/// projection, the recurrent and weight-gradient products, ragged lengths, direction, read-out and checkpointing —
/// is the driver's.
/// </summary>
/// <remarks>
/// <para>A cell has G gates of n_a rows each. Per time block the driver computes U = Wx·X + bx (G·n_a rows per
/// column); per step either z = U⟨s⟩ + Wh·h⟨s−1⟩ in place (<see cref="RecurrentOntoInput"/>, the RNN and the LSTM) or
/// R = Wh·h⟨s−1⟩ + bh beside U (the GRU, whose candidate reads r⊙(W_hn·h + b_hn)). The cell turns these into the
/// step's parts.</para>
/// <para>A step keeps <see cref="Parts"/> blocks of n_a×m: part 0 is the output h⟨s⟩, the first
/// <see cref="CarryParts"/> parts are the carry (h, and c for the LSTM), the rest is what the backward reads (gates).
/// Backward, the cell turns dh (and the gradient of the other carry parts) into dU — the gradient of the input
/// pre-activations — and dR, that of the recurrent product; the driver then forms dh⟨s−1⟩ = Whᵀ·dR,
/// dWx = Σ dU·Xᵀ, dWh = Σ dR·H_prevᵀ, dbx = Σ dU and dbh = Σ dR.</para>
/// </remarks>
internal abstract class FusedCell
{
    /// <summary>A cell of the given sizes whose stacked weights are Wx (G·n_a×n_x), Wh (G·n_a×n_a), bx and, when present, bh.</summary>
    /// <remarks>
    /// The cell reads <see cref="Compute.Precision"/> here, on the thread that starts the call: with
    /// <see cref="RnnFunctional.Precision.Single"/> the operands its products read (<see cref="Projection"/>,
    /// <see cref="Recurrent"/>) get float32 twins, made once for the whole call.
    /// </remarks>
    protected FusedCell(int gates, int hidden, Block wx, Block wh, Block bx, Block bh)
    {
        Precision = Compute.Precision;
        (Gates, Hidden, Wx, Wh, Bx, Bh) = (gates, hidden, wx, wh, bx, bh);
        (Projection, Recurrent) = (wx.Padded(Precision == Precision.Single), wh.Padded(Precision == Precision.Single));
        Input = wx.Columns;
    }

    /// <summary>The precision of every product of the call (<see cref="Compute.Precision"/> when the cell was made).</summary>
    public Precision Precision { get; }

    /// <summary>G: gates of n_a rows each in U, R, dU and dR.</summary>
    public int Gates { get; }

    /// <summary>n_a.</summary>
    public int Hidden { get; }

    /// <summary>n_x.</summary>
    public int Input { get; }

    /// <summary>Input weights stacked by gate, G·n_a×n_x.</summary>
    public Block Wx { get; }

    /// <summary>Recurrent weights stacked by gate, G·n_a×n_a.</summary>
    public Block Wh { get; }

    /// <summary>
    /// <see cref="Wx"/> with a padded leading dimension (<see cref="Block.Padded"/>): the operand of the input
    /// projection U = Wx·X of a time block, whose result has the G·n_a rows of Wx.
    /// </summary>
    public Block Projection { get; }

    /// <summary>
    /// <see cref="Wh"/> with a padded leading dimension (<see cref="Block.Padded"/>): the operand of the per-step
    /// recurrent product, whose result has the G·n_a rows of Wh.
    /// </summary>
    public Block Recurrent { get; }

    /// <summary>Input bias, G·n_a.</summary>
    public Block Bx { get; }

    /// <summary>Recurrent bias added to R, G·n_a; default (no storage) when the cell has none.</summary>
    public Block Bh { get; }

    /// <summary>
    /// Rows of the output h⟨t⟩ that leave the cell, n_a unless the cell projects its output to fewer rows (the LSTM
    /// with a projection, n_p ≤ n_a): part 0 then holds h⟨t⟩ in its first rows with zeros below, and whatever reads
    /// the layer's outputs, or hands their gradient back, reads or writes those rows only.
    /// </summary>
    public virtual int OutputRows => Hidden;

    /// <summary>
    /// Whether the cell's gradients as parameters copy dWx, dWh, dbx and dbh out of the driver's sums rather than
    /// take their storage (the LSTM, whose gates are stacked only for the driver): the sums then live in the open
    /// <see cref="CallScratch"/>, if any, rather than in fresh arrays.
    /// </summary>
    public virtual bool CopiesWeightGradients => false;

    /// <summary>Blocks of n_a×m kept per step; part 0 is the output.</summary>
    public abstract int Parts { get; }

    /// <summary>The first parts that make the carry.</summary>
    public abstract int CarryParts { get; }

    /// <summary>Whether z = U + Wh·h is formed in place (dR = dU), rather than R = Wh·h + bh beside U.</summary>
    public abstract bool RecurrentOntoInput { get; }

    /// <summary>
    /// Whether Whᵀ·dR and Wxᵀ·dU are summed gate after gate, Σ_g W_gᵀ·d_g, as the cell's own backward does (the LSTM's,
    /// on separate gate matrices), rather than as one product over the stacked gates.
    /// </summary>
    public virtual bool GateWiseTransposedProducts => false;

    /// <summary>
    /// One step on m columns: from z (G·n_a×m, when <see cref="RecurrentOntoInput"/>; it may be overwritten) or from
    /// U and R, and the previous carry, writes every part of <paramref name="next"/>. <paramref name="scratch"/> holds
    /// at least G·n_a×m doubles.
    /// </summary>
    public abstract void Forward(Span<double> u, Span<double> r, Block[] prev, Block[] next, Span<double> scratch);

    /// <summary>
    /// The backward of one step on m columns. <paramref name="dOut"/> is the gradient the output receives from outside
    /// and <paramref name="dCarry"/> that of every carry part from the step after (dCarry[0] = dh_next, dCarry[1] = dc_next
    /// for the LSTM); the cell writes dU (and dR when not <see cref="RecurrentOntoInput"/>) and replaces every
    /// dCarry[k], k ≥ 1, by the gradient of the previous carry part k. dCarry[0] is left for the driver, which
    /// overwrites it with Whᵀ·dR and then calls <see cref="FinishCarry"/>.
    /// </summary>
    public abstract void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch);

    /// <summary>
    /// Length of the gradient of the cell's own parameters, those beside Wx, Wh, bx and bh (peephole weights,
    /// layer-norm gains and biases); 0, by default, for a cell that has none.
    /// </summary>
    public virtual int OwnParameters => 0;

    /// <summary>
    /// Whether the step's gradient of the cell's own parameters is a sum of one term per column, added column after
    /// column (peephole weights, layer-norm gains and biases): the driver then runs the backward in fixed bands of
    /// columns, each adding into a gradient of its own, and adds the bands in order, so that one thread and a team give
    /// the same bits. True by default; false for a cell whose own gradient is one product over the columns (the
    /// LSTM's projection), whose backward runs on one thread.
    /// </summary>
    public virtual bool ColumnWiseOwnGradient => true;

    /// <summary>
    /// The backward of one step that also adds the step's gradient of the cell's own parameters to
    /// <paramref name="own"/> (length <see cref="OwnParameters"/>; the driver sums it over steps and chunks in a fixed
    /// order and returns it as <see cref="Driver.Gradients.Own"/>). The driver calls this overload; by default it is
    /// the other one, for a cell without own parameters.
    /// </summary>
    public virtual void Backward(Block[] prev, Block[] next, ReadOnlySpan<double> dOut, Block[] dCarry, Span<double> dU, Span<double> dR,
        Span<double> scratch, Span<double> own) => Backward(prev, next, dOut, dCarry, dU, dR, scratch);

    /// <summary>Adds to dh⟨s−1⟩ = Whᵀ·dR what reaches h⟨s−1⟩ directly (the GRU's dh⊙z); nothing by default.</summary>
    public virtual void FinishCarry(Block[] next, Span<double> dhPrev, ReadOnlySpan<double> scratch)
    {
    }
}
