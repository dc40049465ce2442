using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Kernels;

/// <summary>The per-chunk work of the <see cref="Driver"/>: the forward and backward folds over one chunk's scan steps.</summary>
internal static partial class Driver
{
    // ---- per-chunk work ----

    /// <summary>Puts the gradient the outputs of scan steps [p0, p1) receive from outside into DA (from the time block starting at b0).</summary>
    internal delegate void Seed(ChunkRun c, int p0, int p1, int b0);

    /// <summary>One chunk of one call: its schedule, its scratch, its gradient sums, and the forward and backward folds.</summary>
    internal sealed class ChunkRun : IDisposable
    {
        private readonly FusedCell cell;
        private readonly Schedule s;
        private readonly Head? head;
        private readonly Team? team;
        private readonly int blockSteps;

        public ChunkRun(FusedCell cell, Schedule schedule, bool backward, Head? head, Team? team = null)
        {
            (this.cell, s, this.head, this.team) = (cell, schedule, head, team);
            blockSteps = Summation.BlockSteps(s.M);
            var (nx, na, g, columns) = (cell.Input, cell.Hidden, cell.Gates * cell.Hidden, blockSteps * s.M);
            U = Scratch.Take(g, columns);
            R = cell.RecurrentOntoInput ? default : Scratch.Take(g, s.M);
            Temp = Scratch.Take(g, s.M);
            if (!backward) return;
            (XB, HP, DA, DX) = (Scratch.Take(nx, columns), Scratch.Take(na, columns), Scratch.Take(na, columns), Scratch.Take(nx, columns));
            DU = cell.Gates == 1 ? DA : Scratch.Take(g, columns);                   // one gate: dU overwrites the outside gradient it is made from
            DR = cell.RecurrentOntoInput ? DU : Scratch.Take(g, columns);
            DCarry = [.. Enumerable.Range(0, cell.CarryParts).Select(_ => Scratch.Zeros(na, s.M))];
            if (cell.OwnParameters > 0 && cell.ColumnWiseOwnGradient)
                OwnBands = Scratch.Zeros(cell.OwnParameters, (s.M + OwnBandColumns - 1) / OwnBandColumns);
            if (head is null) return;
            (HB, DO) = (Scratch.Take(na, columns), Scratch.Take(head.Wy.Rows, columns));
        }

        public Workspace Scratch { get; } = new();
        public Sums.Chunk Sums { get; init; } = null!;
        public BackwardWeights Weights { get; init; } = null!;

        /// <summary>
        /// The recurrent dropout mask in scan order (rows of the first carry part × M; default without one): every step
        /// reads mask ⊙ h⟨τ−1⟩ wherever the cell reads h⟨τ−1⟩, and the gradient of h⟨τ−1⟩ is mask ⊙ that of its masked
        /// value. The carry itself is not masked.
        /// </summary>
        public Block RecurrentMask { get; init; }

        /// <summary>
        /// The carry of step τ − 1 as the cell reads it: without a recurrent mask the carry itself; with one, part 0
        /// replaced by <paramref name="masked"/>, into which mask ⊙ h⟨τ−1⟩ is written first unless it holds it already
        /// (<paramref name="write"/> false: the backward's copy of the step's input, HP).
        /// </summary>
        private Block[] Read(Block[] prev, Block masked, bool write = true)
        {
            if (RecurrentMask.Data is null) return prev;
            if (write) System.Numerics.Tensors.TensorPrimitives.Multiply(prev[0].Span, RecurrentMask.Slice(0, masked.Columns).Span, masked.Span);
            var read = (Block[])prev.Clone();
            read[0] = masked;
            return read;
        }

        /// <summary>mask ⊙ h⟨τ−1⟩ of the current forward step.</summary>
        private Block MaskedCarry => maskedCarry.Data is not null ? maskedCarry : maskedCarry = Scratch.Take(RecurrentMask.Rows, s.M);

        private Block maskedCarry;

        /// <summary>Where dX goes when it stays in scan order (n_x × Start[Steps], the layer below's buffer) rather than in per-step matrices.</summary>
        public Block DxScan { get; set; }

        /// <summary>Whether <see cref="DxScan"/> is written step after step, as each step's dU is known, rather than a time block at a time (the same bits).</summary>
        public bool DxPerStep { get; set; }
        public Block[] DCarry { get; } = [];
        private Block U { get; }
        private Block R { get; }
        private Block Temp { get; }
        private Block XB { get; }
        private Block HP { get; }
        private Block HB { get; }
        private Block DA { get; }
        private Block DU { get; }
        private Block DR { get; }
        private Block DO { get; }
        private Block DX { get; }

        /// <summary>
        /// The current time block's inputs, carries read (H_prev) and outputs (H) side by side, as the sums over the block
        /// read them: XB, HP and HB, into which a block's columns are copied, or, for a block the backward runs in one
        /// piece, the tape's own columns when they lie side by side (<see cref="Adjacent"/>).
        /// </summary>
        private Block xb, hp, hb;

        /// <summary>
        /// The first carry part of scan steps [t0, t1) as one block when a uniform schedule holds them side by side in
        /// one buffer (steps of the segment from <paramref name="s0"/> on, in its parts); default otherwise.
        /// </summary>
        private Block Adjacent(Func<int, int, Block[]> state, int s0, int t0, int t1)
        {
            if (!s.Uniform || t0 < s0) return default;
            var (first, last, columns) = (state(t0, s.M)[0], state(t1 - 1, s.M)[0], (t1 - t0) * s.M);
            return first.Data == last.Data && last.Offset == first.Offset + (columns - s.M) * first.Rows ? new Block(first.Data, first.Offset, first.Rows, columns) : default;
        }

        /// <summary>
        /// Columns of a band of the backward of a cell with a column-wise gradient of its own parameters: band b holds
        /// columns [8b, 8b + 8) of a step, whatever the number of threads.
        /// </summary>
        internal const int OwnBandColumns = 8;

        /// <summary>
        /// The own-parameter gradient of each band of <see cref="OwnBandColumns"/> columns over the steps of the current
        /// time block, a column of <see cref="FusedCell.OwnParameters"/> rows per band (⌈M / 8⌉ bands); added to
        /// Sums.Own in band order when the time block is reduced. Default for a cell without own parameters or whose
        /// own gradient is not a sum over columns.
        /// </summary>
        private Block OwnBands { get; }

        /// <summary>Columns of scan steps [b0, τ) in a time block from b0.</summary>
        private int Offset(int b0, int tau) => s.Start[tau] - s.Start[b0];

        /// <summary>
        /// Scan steps [s0, s1), a time block at a time: U = Wx·X + bx for the block, then per step the recurrent product
        /// and the cell, reading the carry of step τ − 1 and writing the parts of step τ through <paramref name="state"/>.
        /// <paramref name="x"/> holds the inputs of every scan step side by side. When <paramref name="available"/> is
        /// given, the inputs arrive while the fold runs (a stack's layer below, on another thread): available(τ) returns,
        /// once scan step τ's inputs are there, the first step whose inputs are not, and U is formed for the steps that
        /// have arrived — a column of a product has the same bits whatever the others, so the bits do not change.
        /// <paramref name="finished"/>(τ + 1) is called once step τ's parts are written.
        /// </summary>
        public void FoldForward(int s0, int s1, Block x, Func<int, int, Block[]> state, Func<int, int>? available = null, Action<int>? finished = null)
        {
            for (var b0 = s0; b0 < s1; b0 += blockSteps)
            {
                var b1 = Math.Min(b0 + blockSteps, s1);
                if (Offset(b0, b1) == 0) break;
                var projected = b0;
                void Project(int upTo)                                                                                 // U = Wx·X + bx for steps [projected, upTo)
                {
                    var (from, columns) = (Offset(b0, projected), Offset(projected, upTo));
                    var u = U.Slice(from, columns);
                    Ops.Multiply(team, cell.Precision, u, cell.Projection, false, x.Slice(s.Start[projected], columns), false, bias: cell.Bx);    // U = Wx·X + bx
                    projected = upTo;
                }
                if (available is null) Project(b1);
                for (var tau = b0; tau < b1; tau++)
                {
                    if (tau >= projected) Project(Math.Min(available!(tau), b1));
                    var width = s.Active[tau];
                    var (prev, next) = (Read(state(tau - 1, width), MaskedCarry.Slice(0, width)), state(tau, width));
                    var z = U.Slice(Offset(b0, tau), width);
                    if (cell.RecurrentOntoInput)
                    {
                        Ops.Multiply(team, cell.Precision, z, cell.Recurrent, false, prev[0], false, beta: 1);                           // z = U⟨τ⟩ + Wh·h_prev
                        Step(z, default, prev, next);
                    }
                    else
                    {
                        var r = R.Slice(0, width);
                        Ops.Multiply(team, cell.Precision, r, cell.Recurrent, false, prev[0], false, bias: cell.Bh);                     // R = Wh·h_prev + bh
                        Step(z, r, prev, next);
                    }
                    finished?.Invoke(tau + 1);
                }
            }
        }

        /// <summary>
        /// Scan steps [s0, s1) backward, last first, a piece of a time block at a time: the piece's inputs and states are
        /// gathered, <paramref name="seed"/> puts the outside gradient of its outputs in DA, then per step the cell's
        /// backward and dh⟨τ−1⟩ = Whᵀ·dR. A time block is reduced once all its steps are done. When
        /// <paramref name="arrived"/> is given, the outside gradients arrive while the fold runs (a stack's layer above, on
        /// another thread): arrived(τ) returns, once step τ's gradient is there, the first step from which all have
        /// arrived, and only those are seeded before step τ. <paramref name="finished"/>(τ) is called once step τ is done,
        /// and then, with <see cref="DxPerStep"/>, its part of <see cref="DxScan"/> is written too.
        /// </summary>
        public void FoldBackward(int s0, int s1, Block x, Func<int, int, Block[]> state, Seed seed, Block[]? dx, Func<int, int>? arrived = null,
            Action<int>? finished = null)
        {
            foreach (var (p0, p1, b0, b1) in Summation.PiecesBackward(s0, s1, blockSteps, s.Steps))
            {
                var (from, columns) = (Offset(b0, p0), Offset(p0, p1));
                var seeded = p1;
                if (columns > 0)
                {
                    var whole = p0 == b0 && p1 == b1;                                                            // a block in one piece may read its operands in place
                    xb = whole && !ReferenceEquals(DxScan.Data, x.Data) ? x.Slice(s.Start[b0], columns) : XB;
                    hp = whole && RecurrentMask.Data is null ? Adjacent(state, s0, b0 - 1, b1 - 1) : default;
                    hb = whole && head is not null ? Adjacent(state, s0, b0, b1) : default;
                    (hp, hb) = (hp.Data is null ? HP : hp, hb.Data is null ? HB : hb);
                    if (xb.Data == XB.Data) x.Slice(s.Start[p0], columns).Span.CopyTo(XB.Slice(from, columns).Span);
                    for (var tau = p0; tau < p1; tau++)
                    {
                        var width = s.Active[tau];
                        if (hp.Data == HP.Data)
                        {
                            var (prev, into) = (state(tau - 1, width), HP.Slice(Offset(b0, tau), width));    // H_prev as the step read it
                            if (RecurrentMask.Data is null) prev[0].Span.CopyTo(into.Span);
                            else Read(prev, into);
                        }
                        if (head is not null && hb.Data == HB.Data) state(tau, width)[0].Span.CopyTo(HB.Slice(Offset(b0, tau), width).Span);
                    }
                    if (arrived is null)
                    {
                        seed(this, p0, p1, b0);
                        seeded = p0;
                    }
                }
                for (var tau = p1 - 1; tau >= p0; tau--)
                {
                    var width = s.Active[tau];
                    if (width == 0) continue;
                    if (tau < seeded)
                    {
                        var first = Math.Max(arrived!(tau), p0);                                             // steps [first, seeded) have arrived
                        seed(this, first, seeded, b0);
                        seeded = first;
                    }
                    var (prev, next) = (Read(state(tau - 1, width), hp.Slice(Offset(b0, tau), width), write: false), state(tau, width));
                    var dCarry = new Block[DCarry.Length];
                    for (var k = 0; k < dCarry.Length; k++) dCarry[k] = DCarry[k].Slice(0, width);
                    var (du, dr) = (DU.Slice(Offset(b0, tau), width), DR.Slice(Offset(b0, tau), width));
                    var da = DA.Slice(Offset(b0, tau), width);
                    if (OwnBands.Data is not null)                                                                   // in the fixed bands of the own sums
                        InOwnBands(width, (c0, n, b) => cell.Backward(Cut(prev, c0, n), Cut(next, c0, n), da.Slice(c0, n).Span, Cut(dCarry, c0, n),
                            du.Slice(c0, n).Span, dr.Slice(c0, n).Span, Temp.Slice(c0, n).Span, OwnBands.Slice(b, 1).Span));
                    else if (Bands(width) is { } bands)                                                               // the cell's backward in bands of columns
                        bands.Run(i => Band(width, i, (c0, n) => cell.Backward(Cut(prev, c0, n), Cut(next, c0, n), da.Slice(c0, n).Span, Cut(dCarry, c0, n),
                            du.Slice(c0, n).Span, dr.Slice(c0, n).Span, Temp.Slice(c0, n).Span, Sums.Own.Span)));
                    else cell.Backward(prev, next, da.Span, dCarry, du.Span, dr.Span, Temp.Span, Sums.Own.Span);
                    TransposedProduct(dCarry[0], Weights.WhT, false, dr);                                                 // dh_prev = Whᵀ·dR
                    if (OwnBands.Data is not null)                                                                   // reads the scratch its band's backward wrote
                        InOwnBands(width, (c0, n, _) => cell.FinishCarry(Cut(next, c0, n), dCarry[0].Slice(c0, n).Span, Temp.Slice(c0, n).Span));
                    else if (Bands(width) is { } again)
                        again.Run(i => Band(width, i, (c0, n) => cell.FinishCarry(Cut(next, c0, n), dCarry[0].Slice(c0, n).Span, Temp.Slice(c0, n).Span)));
                    else cell.FinishCarry(next, dCarry[0].Span, Temp.Span);
                    if (RecurrentMask.Data is not null)                                                            // dh_prev = mask ⊙ d(mask ⊙ h_prev)
                        System.Numerics.Tensors.TensorPrimitives.Multiply(dCarry[0].Span, RecurrentMask.Slice(0, width).Span, dCarry[0].Span);
                    if (DxPerStep && DxScan.Data is not null) TransposedProduct(DxScan.Slice(s.Start[tau], width), Weights.WxT, false, du); // dX⟨τ⟩ = Wxᵀ·dU⟨τ⟩
                    finished?.Invoke(tau);
                }
                if (p0 == b0) Reduce(b0, b1, dx);
            }
        }

        /// <summary>
        /// The cell's step on a step's columns: on a team, in bands of columns, one a thread (an element's value depends
        /// on its own column only, and the element-wise maps give an element the same bits in any span, so the bits are
        /// those of one thread).
        /// </summary>
        private void Step(Block z, Block r, Block[] prev, Block[] next)
        {
            var width = z.Columns;
            if (Bands(width, forward: true) is { } bands)
                bands.Run(i => Band(width, i, (c0, n) =>
                    cell.Forward(z.Slice(c0, n).Span, r.Data is null ? default : r.Slice(c0, n).Span, Cut(prev, c0, n), Cut(next, c0, n), Temp.Slice(c0, n).Span)));
            else cell.Forward(z.Span, r.Data is null ? default : r.Span, prev, next, Temp.Span);
        }

        /// <summary>
        /// The team when a step of <paramref name="width"/> columns is cut into bands of columns, one a thread: at least a
        /// column a thread, and, backward, a cell without parameters of its own (a cell whose own gradient is summed
        /// column by column runs its backward in the fixed bands of <see cref="InOwnBands"/> instead; any other, such as
        /// the projection's product, on the calling thread).
        /// </summary>
        private Team? Bands(int width, bool forward = false) =>
            team is not null && width >= team.Size && (forward || cell.OwnParameters == 0) ? team : null;

        /// <summary>Thread <paramref name="i"/>'s band of columns, [c0, c0 + n), given to <paramref name="body"/> unless empty.</summary>
        private void Band(int width, int i, Action<int, int> body)
        {
            var (c0, c1) = (width * i / team!.Size, width * (i + 1) / team.Size);
            if (c1 > c0) body(c0, c1 - c0);
        }

        /// <summary>
        /// <paramref name="body"/>(c0, n, b) for each band b of <see cref="OwnBandColumns"/> columns of a step of
        /// <paramref name="width"/> columns, [c0, c0 + n), the last one shorter: on a team of T threads, of ⌈width / 8⌉
        /// bands thread i takes bands [⌈width / 8⌉·i / T, ⌈width / 8⌉·(i + 1) / T) in order. A band's columns and the
        /// order of its sums are those of one thread, whatever T.
        /// </summary>
        private void InOwnBands(int width, Action<int, int, int> body)
        {
            var count = (width + OwnBandColumns - 1) / OwnBandColumns;
            void Run(int b0, int b1)
            {
                for (var b = b0; b < b1; b++)
                {
                    var c0 = b * OwnBandColumns;
                    body(c0, Math.Min(OwnBandColumns, width - c0), b);
                }
            }
            if (team is not null && count >= 2) team.Run(i => Run(count * i / team.Size, count * (i + 1) / team.Size));
            else Run(0, count);
        }

        /// <summary>Sums.Own += each band's own-parameter gradient, in band order; the bands start again from zero.</summary>
        private void ReduceOwnBands()
        {
            var own = Sums.Own.Span;
            for (var b = 0; b < OwnBands.Columns; b++) System.Numerics.Tensors.TensorPrimitives.Add(own, OwnBands.Slice(b, 1).Span, own);
            OwnBands.Span.Clear();
        }

        /// <summary>Columns [c0, c0 + n) of each part.</summary>
        private static Block[] Cut(Block[] parts, int c0, int n)
        {
            var cut = new Block[parts.Length];
            for (var k = 0; k < parts.Length; k++) cut[k] = parts[k].Slice(c0, n);
            return cut;
        }

        /// <summary>
        /// The least chunk width for which a uniform schedule's dX is one product per step, written straight into the
        /// result's columns, rather than one product per time block copied out (the bits are the same: an entry of a
        /// product does not depend on how many columns are computed with it).
        /// </summary>
        private const int DirectDxColumns = 16;

        /// <summary>
        /// The sums over one time block: dWx += dU·Xᵀ, dWh += dR·H_prevᵀ, dbx += Σ dU, dbh += Σ dR (and for a read-out
        /// dWy += dO·Hᵀ, dby += Σ dO), and dX = Wxᵀ·dU scattered to its steps when <paramref name="dx"/> is given.
        /// </summary>
        private void Reduce(int b0, int b1, Block[]? dx)
        {
            var columns = Offset(b0, Math.Min(b1, s.Steps));
            if (OwnBands.Data is not null) ReduceOwnBands();                                                       // dOwn += Σ_bands, in band order
            if (columns == 0) return;
            var (du, dr, xb, hp) = (DU.Slice(0, columns), DR.Slice(0, columns), this.xb.Slice(0, columns), this.hp.Slice(0, columns));
            Ops.Multiply(team, cell.Precision, Sums.Wx, du, false, xb, true, beta: 1);                                            // dWx += dU·Xᵀ
            Ops.Multiply(team, cell.Precision, Sums.Wh, dr, false, hp, true, beta: 1);                                            // dWh += dR·H_prevᵀ
            Ops.AddColumnsTo(team, du, Sums.Bx);                                                                  // dbx += Σ_columns dU
            if (Sums.Bh.Data is not null) Ops.AddColumnsTo(team, dr, Sums.Bh);                                  // dbh += Σ_columns dR
            if (head is not null) Softmax.AccumulateGradients(DO.Slice(0, columns), hb.Slice(0, columns), Sums.Wy, Sums.By, cell.Precision, team); // dWy += dO·Hᵀ, dby += Σ dO
            if (DxScan.Data is not null)
            {
                if (!DxPerStep) TransposedProduct(DxScan.Slice(s.Start[b0], columns), Weights.WxT, false, du);     // dX = Wxᵀ·dU, in place
                return;
            }
            if (dx is null) return;
            if (s.Uniform && s.M >= DirectDxColumns)                                                          // each step's dX into its result's columns
            {
                for (var tau = b0; tau < Math.Min(b1, s.Steps); tau++)
                    TransposedProduct(dx[s.Time(tau, 0)].Slice(s.J0, s.M), Weights.WxT, false, du.Slice(Offset(b0, tau), s.M));   // dX⟨τ⟩ = Wxᵀ·dU⟨τ⟩
                return;
            }
            var dX = DX.Slice(0, columns);
            TransposedProduct(dX, Weights.WxT, false, du);                                                            // dX = Wxᵀ·dU
            for (var tau = b0; tau < Math.Min(b1, s.Steps); tau++)
                s.Scatter(dX.Slice(Offset(b0, tau), s.Active[tau]).Span, tau, cell.Input, t => dx[t]);
        }

        /// <summary>
        /// c = Wᵀ·d for weights W stacked by gate (given as Wᵀ, n×G·n_a, or as W, G·n_a×n, transposed) and d of G·n_a rows:
        /// one product, or, for a cell that sums its gates one after another (<see cref="FusedCell.GateWiseTransposedProducts"/>),
        /// Σ_g W_gᵀ·d_g accumulated gate after gate.
        /// </summary>
        private void TransposedProduct(Block c, Block w, bool transposeW, Block d)
        {
            if (team is null || c.Rows < 32)
            {
                TransposedRows(c, w, transposeW, d, 0, c.Rows);
                return;
            }
            team.Run(i =>
            {
                var (r0, r1) = team.Band(c.Rows, i);
                if (r1 > r0) TransposedRows(c, w, transposeW, d, r0, r1);
            });
        }

        /// <summary>Rows [r0, r1) of <see cref="TransposedProduct"/>.</summary>
        private void TransposedRows(Block c, Block w, bool transposeW, Block d, int r0, int r1)
        {
            if (!cell.GateWiseTransposedProducts)
            {
                var from = transposeW ? r0 * w.Rows : r0;
                Gemm.Multiply(cell.Precision, transposeW, false, r1 - r0, c.Columns, d.Rows, 1.0, w.Span[from..], Ops.From(w.SingleSpan, from), w.Rows,
                    d.Span, d.Rows, 0, c.Span[r0..], c.Rows);
                return;
            }
            var (na, g) = (cell.Hidden, cell.Gates * cell.Hidden);
            for (var gate = 0; gate < cell.Gates; gate++)
            {
                var from = transposeW ? gate * na + r0 * w.Rows : gate * na * w.Rows + r0;
                Gemm.Multiply(cell.Precision, transposeW, false, r1 - r0, c.Columns, na, 1.0, w.Span[from..], Ops.From(w.SingleSpan, from), w.Rows,
                    d.Span[(gate * na)..], g, gate == 0 ? 0 : 1, c.Span[r0..], c.Rows);
            }
        }

        /// <summary>The outside gradients given by the caller, gathered into scan order.</summary>
        public void SeedFrom(ImmutableArray<Matrix<double>> dOutputs, int p0, int p1, int b0)
        {
            for (var tau = p0; tau < p1; tau++)
                s.Gather(t => Block.Of(dOutputs[t]), tau, cell.Hidden, DA.Slice(Offset(b0, tau), s.Active[tau]).Span);
        }

        /// <summary>
        /// The outside gradients held in scan order (<see cref="FusedCell.OutputRows"/> × Start[Steps]): a block's
        /// columns copied as they are, or, for outputs of fewer rows than n_a, into the first rows of each column with
        /// zeros below.
        /// </summary>
        public void SeedFromScan(Block source, int p0, int p1, int b0)
        {
            var (from, da) = (source.Slice(s.Start[p0], Offset(p0, p1)), DA.Slice(Offset(b0, p0), Offset(p0, p1)));
            if (source.Rows == cell.Hidden)
            {
                from.Span.CopyTo(da.Span);
                return;
            }
            da.Span.Clear();
            for (var j = 0; j < from.Columns; j++) from.Slice(j, 1).Span.CopyTo(da.Slice(j, 1).Span);
        }

        /// <summary>The outside gradients from the read-out's cross-entropy (<see cref="Softmax.CrossEntropy(Block, Block, Block, Block, Block, Func{int, int}, Action{int, double}, Precision, Team)"/>).</summary>
        public void SeedFromHead(int p0, int p1, int b0)
        {
            var (h, (from, columns)) = (head!, (Offset(b0, p0), Offset(p0, p1)));
            var (step, column) = (new int[columns], new int[columns]);
            for (var tau = p0; tau < p1; tau++)
                for (var i = 0; i < s.Active[tau]; i++) (step[Offset(p0, tau) + i], column[Offset(p0, tau) + i]) = (s.Time(tau, i), s.Column(i));
            Softmax.CrossEntropy(h.Wy, h.By, hb.Slice(from, columns), DO.Slice(from, columns), DA.Slice(from, columns),
                k => h.Lengths.IsDefault || step[k] < h.Lengths[column[k]] ? h.Labels[step[k]][column[k]] : Ragged.Ignored,
                (k, loss) => h.Losses[step[k] * h.Batch + column[k]] = loss, cell.Precision, team);
        }

        /// <summary>The carry of each column whose last step lies in scan steps [s0, s1), into the batch-wide final carry parts.</summary>
        public void ScatterFinal(Func<int, int, Block[]> state, int s0, int s1, Block[] final)
        {
            for (var i = 0; i < s.M; i++)
            {
                var end = s.Length(i) - 1;
                if (end < s0 || end >= s1) continue;
                var last = state(end, s.Active[end]);
                for (var k = 0; k < final.Length; k++) last[k].Slice(i, 1).Span.CopyTo(final[k].Slice(s.Column(i), 1).Span);
            }
        }

        public void Dispose() => Scratch.Dispose();
    }
}
