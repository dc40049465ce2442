using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Kernels;

/// <summary>
/// The one sequence driver of every fused cell: it owns the chunks of the batch and their threads, the time blocks,
/// the input projection U = Wx·X + bx of a time block in one product, the recurrent product of each step, the weight
/// gradients of a time block in one product each, the fixed order of every sum (<see cref="Summation"/>), ragged
/// lengths and the direction of the scan (<see cref="Schedule"/>), the read-out and its cross-entropy, and
/// checkpointing. A <see cref="FusedCell"/> supplies only its element-wise step and its backward.
/// </summary>
/// <remarks>
/// Results are freshly allocated; scratch comes from a <see cref="Workspace"/> and never escapes. The tape of a
/// forward (<see cref="Tape"/>) holds copies of what its backward reads, so nothing a caller does to the matrices it
/// passed in or got back changes a later backward.
/// </remarks>
internal static class Driver
{
    /// <summary>The stacked parameter gradients of a call: dWx, dWh, dbx, dbh (default when the cell has no bh), and the read-out's dWy, dby.</summary>
    internal sealed record Gradients(Block Wx, Block Wh, Block Bx, Block Bh, Block Wy, Block By)
    {
        /// <summary>The gradient of the cell's own parameters (<see cref="FusedCell.OwnParameters"/>); default when it has none.</summary>
        public Block Own { get; init; }
    }

    /// <summary>
    /// What a forward keeps for its backward: per chunk, its schedule, its inputs, and either every step's parts (a
    /// whole tape) or, when checkpointed every <see cref="Every"/> &lt; T steps, only the carry before each segment.
    /// </summary>
    internal sealed record Tape(FusedCell Cell, int Steps, int M, int Every, ChunkTape[] Chunks);

    /// <summary>
    /// One chunk's tape: inputs X in scan order (n_x × Start[Steps]), the carry parts before each segment's first step
    /// (Kept[0] is the initial carry; n_a×M each), and for a whole tape the parts of every step (n_a × Start[Steps]).
    /// </summary>
    internal sealed record ChunkTape(Schedule Schedule, Block X, Block[][] Kept, Block[]? Parts)
    {
        /// <summary>The parts of scan step τ (τ = −1: the initial carry) on the first <paramref name="width"/> columns, from a whole tape.</summary>
        public Block[] At(int tau, int width) => State(Schedule, 0, Kept[0], Parts!)(tau, width);
    }

    /// <summary>The loss of a read-out over a forward and its gradients.</summary>
    internal sealed record LossResult(double[] Losses, Gradients Gradients, ImmutableArray<Matrix<double>> Dx, ImmutableArray<Matrix<double>> DInit,
        ImmutableArray<Matrix<double>> Final);

    // ---- entry points ----

    /// <summary>
    /// Runs the cell over xs (T steps, n_x×m each) from <paramref name="init"/> (the carry parts, n_a×m each): the outputs
    /// h⟨t⟩ (n_a×m, zero past each column's end; default unless <paramref name="outputs"/>), the final carry parts (each
    /// column's after its own last step) and the tape. With <paramref name="every"/> &lt; T the tape keeps the carry
    /// every <paramref name="every"/> steps only, and the backward recomputes each segment just before running over it:
    /// the same bits, O(T/k + k) states. The tape lives in <paramref name="storage"/> when given (a call that does not
    /// let it escape), else in arrays of its own.
    /// </summary>
    public static (ImmutableArray<Matrix<double>> Outputs, ImmutableArray<Matrix<double>> Final, Tape Tape) Forward(FusedCell cell,
        ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init, ImmutableArray<int> lengths, bool reverse, int every, int threads,
        Workspace? storage = null, bool outputs = true)
    {
        var (steps, m, na) = (xs.Length, xs[0].ColumnCount, cell.Hidden);
        var output = outputs ? Fresh(steps, na, m, zeroed: !lengths.IsDefault) : default;
        var final = Fresh(cell.CarryParts, na, m, zeroed: false);
        var k = Math.Min(every, steps);
        var chunks = Summation.Chunks(m);
        var tapes = new ChunkTape[chunks.Length];
        Block Take(int rows, int columns) => storage?.Take(rows, columns) ?? Block.FreshUninitialized(rows, columns).Block;
        Summation.ForEachChunk(chunks, threads, (j0, mc, index) =>
        {
            var s = new Schedule(j0, mc, steps, lengths, reverse);
            var x = Take(cell.Input, s.Start[s.Steps]);
            for (var t = 0; t < s.Steps; t++) s.Gather(t => Block.Of(xs[t]), t, cell.Input, x.Slice(s.Start[t], s.Active[t]).Span);
            var segments = (s.Steps + k - 1) / k;
            var kept = Enumerable.Range(0, segments).Select(_ => Enumerable.Range(0, cell.CarryParts).Select(_ => Take(na, mc)).ToArray()).ToArray();
            for (var p = 0; p < cell.CarryParts; p++) s.GatherColumns(Block.Of(init[p]), kept[0][p].Span);
            using var team = Team.For(threads / chunks.Length, Work(cell, mc));
            using var c = new ChunkRun(cell, s, backward: false, head: null, team);
            var parts = Enumerable.Range(0, cell.Parts).Select(_ => segments == 1 ? Take(na, s.Start[s.Steps]) : c.Scratch.Take(na, k * mc)).ToArray();
            for (var s0 = 0; s0 < s.Steps; s0 += k)
            {
                var s1 = Math.Min(s0 + k, s.Steps);
                var state = State(s, s0, kept[s0 / k], parts);
                c.FoldForward(s0, s1, x, state);
                if (outputs)
                    for (var t = s0; t < s1; t++) s.Scatter(state(t, s.Active[t])[0].Span, t, na, t => output.Blocks[t]);
                c.ScatterFinal(state, s0, s1, final.Blocks);
                if (s1 < s.Steps)
                    for (var p = 0; p < cell.CarryParts; p++) state(s1 - 1, s.Active[s1 - 1])[p].Span.CopyTo(kept[s1 / k][p].Span);
            }
            tapes[index] = new(s, x, kept, segments == 1 ? parts : null);
        });
        return (outputs ? output.Matrices : default, final.Matrices, new(cell, steps, m, k, tapes));
    }

    /// <summary>
    /// Back-propagation through a forward's tape: <paramref name="dOutputs"/> (T, n_a×m; entries past a column's end are
    /// ignored) and <paramref name="dFinal"/> (the gradient of each final carry part) give dx (n_x×m, zero past each
    /// column's end), the gradient of each initial carry part and the stacked parameter gradients.
    /// </summary>
    public static (ImmutableArray<Matrix<double>> Dx, ImmutableArray<Matrix<double>> DInit, Gradients Gradients) Backward(Tape tape,
        ImmutableArray<Matrix<double>> dOutputs, ImmutableArray<Matrix<double>> dFinal, int threads) =>
        Backward(tape, null, dOutputs, dFinal, inputGradients: true, threads);

    /// <summary>
    /// The read-out's summed cross-entropy over a forward from <paramref name="init"/> and its gradients, in one call:
    /// ŷ = softmax(Wy·h + by); example j costs nothing at steps t ≥ lossLengths[j] (its states still run). With
    /// <paramref name="every"/> &lt; T, checkpointed as in <see cref="Forward"/>.
    /// </summary>
    public static LossResult Loss(FusedCell cell, ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init,
        ImmutableArray<ImmutableArray<int>> labels, ImmutableArray<int> lossLengths, Block wy, Block by, int every, bool inputGradients, int threads)
    {
        var head = new Head(wy, by, labels, lossLengths, new double[xs.Length * xs[0].ColumnCount], xs[0].ColumnCount);
        using var storage = new Workspace();
        var run = Forward(cell, xs, init, default, reverse: false, every, threads, storage, outputs: false);
        var back = Backward(run.Tape, head, default, default, inputGradients, threads);
        return new(head.Losses, back.Gradients, back.Dx, back.DInit, run.Final);
    }

    /// <summary>
    /// Back-propagation of outside gradients <paramref name="dOutputs"/> through a forward from <paramref name="init"/> in
    /// one call, checkpointed every <paramref name="every"/> steps as in <see cref="Forward"/>: bitwise the backward of a
    /// whole tape.
    /// </summary>
    public static LossResult Checkpointed(FusedCell cell, ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init,
        ImmutableArray<Matrix<double>> dOutputs, int every, int threads)
    {
        using var storage = new Workspace();
        var run = Forward(cell, xs, init, default, reverse: false, every, threads, storage, outputs: false);
        var back = Backward(run.Tape, null, dOutputs, default, inputGradients: true, threads);
        return new([], back.Gradients, back.Dx, back.DInit, run.Final);
    }

    private static (ImmutableArray<Matrix<double>> Dx, ImmutableArray<Matrix<double>> DInit, Gradients Gradients) Backward(Tape tape, Head? head,
        ImmutableArray<Matrix<double>> dOutputs, ImmutableArray<Matrix<double>> dFinal, bool inputGradients, int threads)
    {
        var (cell, steps, m, k) = (tape.Cell, tape.Steps, tape.M, tape.Every);
        var ragged = tape.Chunks.Any(c => !c.Schedule.Uniform);
        var dx = inputGradients ? Fresh(steps, cell.Input, m, zeroed: ragged) : default;
        var dInit = Fresh(cell.CarryParts, cell.Hidden, m, zeroed: false);
        using var call = new Workspace();
        var sums = new Sums(cell, head, tape.Chunks.Length, call);
        var weights = new BackwardWeights(cell, call);
        Seed seed = head is null ? (c, p0, p1, b0) => c.SeedFrom(dOutputs, p0, p1, b0) : (c, p0, p1, b0) => c.SeedFromHead(p0, p1, b0);
        Summation.ForEachChunk(Summation.Chunks(m), threads, (j0, mc, index) =>
        {
            var (t, s) = (tape.Chunks[index], tape.Chunks[index].Schedule);
            using var team = Team.For(threads / tape.Chunks.Length, Work(cell, mc));
            using var c = new ChunkRun(cell, s, backward: true, head, team) { Sums = sums.Of(index), WhT = weights.WhT };
            if (!dFinal.IsDefault)
                for (var p = 0; p < cell.CarryParts; p++) s.GatherColumns(Block.Of(dFinal[p]), c.DCarry[p].Span);
            if (t.Parts is { } whole)
                c.FoldBackward(0, s.Steps, t.X, State(s, 0, t.Kept[0], whole), seed, dx.Blocks);
            else
            {
                var parts = Enumerable.Range(0, cell.Parts).Select(_ => c.Scratch.Take(cell.Hidden, k * mc)).ToArray();
                for (var s0 = (s.Steps - 1) / k * k; s0 >= 0; s0 -= k)                           // last segment first, each recomputed from its carry
                {
                    var state = State(s, s0, t.Kept[s0 / k], parts);
                    c.FoldForward(s0, Math.Min(s0 + k, s.Steps), t.X, state);
                    c.FoldBackward(s0, Math.Min(s0 + k, s.Steps), t.X, state, seed, dx.Blocks);
                }
            }
            for (var p = 0; p < cell.CarryParts; p++) s.ScatterColumns(c.DCarry[p].Span, dInit.Blocks[p]);
        });
        return (inputGradients ? dx.Matrices : default, dInit.Matrices, sums.Total());
    }

    /// <summary>The multiply-adds of one step's recurrent product on a chunk of <paramref name="columns"/> columns: what decides whether a team pays.</summary>
    internal static long Work(FusedCell cell, int columns) => (long)cell.Gates * cell.Hidden * cell.Hidden * columns;

    /// <summary>
    /// The parts of scan step τ on its first width columns, from a segment's parts that start at scan step
    /// <paramref name="s0"/>; τ &lt; s0 gives the carry kept before the segment.
    /// </summary>
    internal static Func<int, int, Block[]> State(Schedule s, int s0, Block[] before, Block[] parts) => (tau, width) =>
    {
        var source = tau < s0 ? before : parts;
        var result = new Block[source.Length];
        for (var k = 0; k < result.Length; k++)
        {
            var b = source[k];
            result[k] = tau < s0 ? b.Slice(0, width) : new Block(b.Data, b.Offset + (s.Start[tau] - s.Start[s0]) * b.Rows, b.Rows, width);
        }
        return result;
    };

    /// <summary>
    /// The tape of a forward given as matrices (a caller's caches): inputs x⟨t⟩, the initial carry parts and, for every
    /// step, every part; copied, so that the backward reads what they hold now.
    /// </summary>
    public static Tape TapeOf(FusedCell cell, ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init,
        Func<int, ImmutableArray<Matrix<double>>> parts)
    {
        var (steps, m, na) = (xs.Length, xs[0].ColumnCount, cell.Hidden);
        var stepParts = Enumerable.Range(0, steps).Select(parts).ToArray();
        var tapes = Summation.Chunks(m).Select(chunk =>
        {
            var s = new Schedule(chunk.Start, chunk.Count, steps, default, reverse: false);
            var x = Block.FreshUninitialized(cell.Input, steps * chunk.Count).Block;
            for (var t = 0; t < steps; t++) s.Gather(t => Block.Of(xs[t]), t, cell.Input, x.Slice(t * chunk.Count, chunk.Count).Span);
            var initial = init.Select(i => Block.Of(i).Slice(chunk.Start, chunk.Count).Copy()).ToArray();
            var kept = Enumerable.Range(0, cell.Parts).Select(k =>
            {
                var b = Block.FreshUninitialized(na, steps * chunk.Count).Block;
                for (var t = 0; t < steps; t++) s.Gather(_ => Block.Of(stepParts[t][k]), t, na, b.Slice(t * chunk.Count, chunk.Count).Span);
                return b;
            }).ToArray();
            return new ChunkTape(s, x, [initial], kept);
        }).ToArray();
        return new(cell, steps, m, steps, tapes);
    }

    /// <summary>Part k of every step of a tape, as fresh T matrices of n_a×m (zero past each column's end).</summary>
    public static ImmutableArray<Matrix<double>> Part(Tape tape, int k)
    {
        var ragged = tape.Chunks.Any(c => !c.Schedule.Uniform);
        var result = Fresh(tape.Steps, tape.Cell.Hidden, tape.M, zeroed: ragged);
        foreach (var c in tape.Chunks)
            for (var t = 0; t < c.Schedule.Steps; t++) c.Schedule.Scatter(c.At(t, c.Schedule.Active[t])[k].Span, t, tape.Cell.Hidden, t => result.Blocks[t]);
        return result.Matrices;
    }

    /// <summary>The inputs a tape holds, as fresh T matrices of n_x×m (zero past each column's end).</summary>
    public static ImmutableArray<Matrix<double>> Inputs(Tape tape)
    {
        var ragged = tape.Chunks.Any(c => !c.Schedule.Uniform);
        var result = Fresh(tape.Steps, tape.Cell.Input, tape.M, zeroed: ragged);
        foreach (var c in tape.Chunks)
            for (var t = 0; t < c.Schedule.Steps; t++)
                c.Schedule.Scatter(c.X.Slice(c.Schedule.Start[t], c.Schedule.Active[t]).Span, t, tape.Cell.Input, t => result.Blocks[t]);
        return result.Matrices;
    }

    /// <summary>The initial carry parts a tape holds, as fresh n_a×m matrices.</summary>
    public static ImmutableArray<Matrix<double>> Initial(Tape tape)
    {
        var result = Fresh(tape.Cell.CarryParts, tape.Cell.Hidden, tape.M, zeroed: false);
        foreach (var c in tape.Chunks)
            for (var k = 0; k < result.Blocks.Length; k++) c.Schedule.ScatterColumns(c.Kept[0][k].Span, result.Blocks[k]);
        return result.Matrices;
    }

    /// <summary>n_a×m zeros for each carry part: the gradient of a final carry that nothing reads.</summary>
    public static ImmutableArray<Matrix<double>> ZeroCarry(FusedCell cell, int m) => Fresh(cell.CarryParts, cell.Hidden, m, zeroed: true).Matrices;

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
            if (head is null) return;
            (HB, DO) = (Scratch.Take(na, columns), Scratch.Take(head.Wy.Rows, columns));
        }

        public Workspace Scratch { get; } = new();
        public Sums.Chunk Sums { get; init; } = null!;
        public Block WhT { get; init; }

        /// <summary>Where dX goes when it stays in scan order (n_x × Start[Steps], the layer below's buffer) rather than in per-step matrices.</summary>
        public Block DxScan { get; set; }
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

        /// <summary>Columns of scan steps [b0, τ) in a time block from b0.</summary>
        private int Offset(int b0, int tau) => s.Start[tau] - s.Start[b0];

        /// <summary>
        /// Scan steps [s0, s1), a time block at a time: U = Wx·X + bx for the block, then per step the recurrent product
        /// and the cell, reading the carry of step τ − 1 and writing the parts of step τ through <paramref name="state"/>.
        /// <paramref name="x"/> holds the inputs of every scan step side by side.
        /// </summary>
        public void FoldForward(int s0, int s1, Block x, Func<int, int, Block[]> state)
        {
            for (var b0 = s0; b0 < s1; b0 += blockSteps)
            {
                var b1 = Math.Min(b0 + blockSteps, s1);
                var columns = Offset(b0, b1);
                if (columns == 0) break;
                var u = U.Slice(0, columns);
                Ops.Multiply(team, u, cell.Wx, false, x.Slice(s.Start[b0], columns), false);                         // U = Wx·X
                Elementwise.AddToColumns(u.Span, cell.Bx.Span);                                                                       //     + bx
                for (var tau = b0; tau < b1; tau++)
                {
                    var width = s.Active[tau];
                    var (prev, next) = (state(tau - 1, width), state(tau, width));
                    var z = U.Slice(Offset(b0, tau), width);
                    if (cell.RecurrentOntoInput)
                    {
                        Ops.Multiply(team, z, cell.Wh, false, prev[0], false, beta: 1);                           // z = U⟨τ⟩ + Wh·h_prev
                        cell.Forward(z.Span, default, prev, next, Temp.Span);
                    }
                    else
                    {
                        var r = R.Slice(0, width);
                        Ops.Multiply(team, r, cell.Wh, false, prev[0], false);                                    // R = Wh·h_prev
                        Elementwise.AddToColumns(r.Span, cell.Bh.Span);                                           //     + bh
                        cell.Forward(z.Span, r.Span, prev, next, Temp.Span);
                    }
                }
            }
        }

        /// <summary>
        /// Scan steps [s0, s1) backward, last first, a piece of a time block at a time: the piece's inputs and states are
        /// gathered, <paramref name="seed"/> puts the outside gradient of its outputs in DA, then per step the cell's
        /// backward and dh⟨τ−1⟩ = Whᵀ·dR. A time block is reduced once all its steps are done.
        /// </summary>
        public void FoldBackward(int s0, int s1, Block x, Func<int, int, Block[]> state, Seed seed, Block[]? dx)
        {
            foreach (var (p0, p1, b0, b1) in Summation.PiecesBackward(s0, s1, blockSteps, s.Steps))
            {
                var (from, columns) = (Offset(b0, p0), Offset(p0, p1));
                if (columns > 0)
                {
                    x.Slice(s.Start[p0], columns).Span.CopyTo(XB.Slice(from, columns).Span);
                    for (var tau = p0; tau < p1; tau++)
                    {
                        var width = s.Active[tau];
                        state(tau - 1, width)[0].Span.CopyTo(HP.Slice(Offset(b0, tau), width).Span);
                        if (head is not null) state(tau, width)[0].Span.CopyTo(HB.Slice(Offset(b0, tau), width).Span);
                    }
                    seed(this, p0, p1, b0);
                }
                for (var tau = p1 - 1; tau >= p0; tau--)
                {
                    var width = s.Active[tau];
                    if (width == 0) continue;
                    var (prev, next) = (state(tau - 1, width), state(tau, width));
                    var dCarry = new Block[DCarry.Length];
                    for (var k = 0; k < dCarry.Length; k++) dCarry[k] = DCarry[k].Slice(0, width);
                    var (du, dr) = (DU.Slice(Offset(b0, tau), width), DR.Slice(Offset(b0, tau), width));
                    cell.Backward(prev, next, DA.Slice(Offset(b0, tau), width).Span, dCarry, du.Span, dr.Span, Temp.Span, Sums.Own.Span);
                    TransposedProduct(dCarry[0], WhT, false, dr);                                                 // dh_prev = Whᵀ·dR
                    cell.FinishCarry(next, dCarry[0].Span, Temp.Span);
                }
                if (p0 == b0) Reduce(b0, b1, dx);
            }
        }

        /// <summary>
        /// The sums over one time block: dWx += dU·Xᵀ, dWh += dR·H_prevᵀ, dbx += Σ dU, dbh += Σ dR (and for a read-out
        /// dWy += dO·Hᵀ, dby += Σ dO), and dX = Wxᵀ·dU scattered to its steps when <paramref name="dx"/> is given.
        /// </summary>
        private void Reduce(int b0, int b1, Block[]? dx)
        {
            var columns = Offset(b0, Math.Min(b1, s.Steps));
            if (columns == 0) return;
            var (du, dr, xb, hp) = (DU.Slice(0, columns), DR.Slice(0, columns), XB.Slice(0, columns), HP.Slice(0, columns));
            Ops.Multiply(team, Sums.Wx, du, false, xb, true, beta: 1);                                            // dWx += dU·Xᵀ
            Ops.Multiply(team, Sums.Wh, dr, false, hp, true, beta: 1);                                            // dWh += dR·H_prevᵀ
            Elementwise.AddColumnsTo(du.Span, Sums.Bx.Span);                                                      // dbx += Σ_columns dU
            if (Sums.Bh.Data is not null) Elementwise.AddColumnsTo(dr.Span, Sums.Bh.Span);                      // dbh += Σ_columns dR
            if (head is not null) Softmax.AccumulateGradients(DO.Slice(0, columns), HB.Slice(0, columns), Sums.Wy, Sums.By); // dWy += dO·Hᵀ, dby += Σ dO
            if (DxScan.Data is not null)
            {
                TransposedProduct(DxScan.Slice(s.Start[b0], columns), cell.Wx, true, du);                      // dX = Wxᵀ·dU, in place
                return;
            }
            if (dx is null) return;
            var dX = DX.Slice(0, columns);
            TransposedProduct(dX, cell.Wx, true, du);                                                            // dX = Wxᵀ·dU
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
                Gemm.Multiply(transposeW, false, r1 - r0, c.Columns, d.Rows, 1.0, w.Span[(transposeW ? r0 * w.Rows : r0)..], w.Rows, d.Span, d.Rows, 0,
                    c.Span[r0..], c.Rows);
                return;
            }
            var (na, g) = (cell.Hidden, cell.Gates * cell.Hidden);
            for (var gate = 0; gate < cell.Gates; gate++)
            {
                var a = transposeW ? w.Span[(gate * na + r0 * w.Rows)..] : w.Span[(gate * na * w.Rows + r0)..];
                Gemm.Multiply(transposeW, false, r1 - r0, c.Columns, na, 1.0, a, w.Rows, d.Span[(gate * na)..], g, gate == 0 ? 0 : 1, c.Span[r0..], c.Rows);
            }
        }

        /// <summary>The outside gradients given by the caller, gathered into scan order.</summary>
        public void SeedFrom(ImmutableArray<Matrix<double>> dOutputs, int p0, int p1, int b0)
        {
            for (var tau = p0; tau < p1; tau++)
                s.Gather(t => Block.Of(dOutputs[t]), tau, cell.Hidden, DA.Slice(Offset(b0, tau), s.Active[tau]).Span);
        }

        /// <summary>The outside gradients held in scan order (n_a × Start[Steps]): a block's columns copied as they are.</summary>
        public void SeedFromScan(Block source, int p0, int p1, int b0) =>
            source.Slice(s.Start[p0], Offset(p0, p1)).Span.CopyTo(DA.Slice(Offset(b0, p0), Offset(p0, p1)).Span);

        /// <summary>The outside gradients from the read-out's cross-entropy (<see cref="Softmax.CrossEntropy(Block, Block, Block, Block, Block, Func{int, int}, Action{int, double})"/>).</summary>
        public void SeedFromHead(int p0, int p1, int b0)
        {
            var (h, (from, columns)) = (head!, (Offset(b0, p0), Offset(p0, p1)));
            var (step, column) = (new int[columns], new int[columns]);
            for (var tau = p0; tau < p1; tau++)
                for (var i = 0; i < s.Active[tau]; i++) (step[Offset(p0, tau) + i], column[Offset(p0, tau) + i]) = (s.Time(tau, i), s.Column(i));
            Softmax.CrossEntropy(h.Wy, h.By, HB.Slice(from, columns), DO.Slice(from, columns), DA.Slice(from, columns),
                k => h.Lengths.IsDefault || step[k] < h.Lengths[column[k]] ? h.Labels[step[k]][column[k]] : Ragged.Ignored,
                (k, loss) => h.Losses[step[k] * h.Batch + column[k]] = loss);
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

    /// <summary>The read-out of a loss call: Wy, by, the labels, the loss lengths and where the per-example losses go (T×m, step after step).</summary>
    internal sealed record Head(Block Wy, Block By, ImmutableArray<ImmutableArray<int>> Labels, ImmutableArray<int> Lengths, double[] Losses, int Batch);

    /// <summary>Whᵀ, stored once per call so that the per-step Whᵀ·dR reads it in place (the same bits as reading Wh transposed).</summary>
    internal sealed class BackwardWeights
    {
        public BackwardWeights(FusedCell cell, Workspace call)
        {
            var wh = cell.Wh;
            WhT = call.Take(wh.Columns, wh.Rows);
            for (var i = 0; i < wh.Rows; i++)
                for (var j = 0; j < wh.Columns; j++) WhT.Data[i * WhT.Rows + j] = wh.Data[wh.Offset + j * wh.Rows + i];
        }

        public Block WhT { get; }
    }

    /// <summary>The gradient sums of every chunk, the first being the result itself, and their total in chunk order.</summary>
    internal sealed class Sums
    {
        private readonly Chunk[] chunks;

        public Sums(FusedCell cell, Head? head, int count, Workspace call)
        {
            var (g, na, nx, ny) = (cell.Gates * cell.Hidden, cell.Hidden, cell.Input, head?.Wy.Rows ?? 0);
            Block Zero(int rows, int columns, int c) => c == 0 ? Block.Fresh(rows, columns).Block : call.Zeros(rows, columns);
            chunks = [.. Enumerable.Range(0, count).Select(c => new Chunk(Zero(g, nx, c), Zero(g, na, c), Zero(g, 1, c),
                cell.Bh.Data is null ? default : Zero(g, 1, c), Zero(ny, na, c), Zero(ny, 1, c))
                { Own = cell.OwnParameters == 0 ? default : Zero(cell.OwnParameters, 1, c) })];
        }

        public Chunk Of(int index) => chunks[index];

        /// <summary>The first chunk's sums plus the others in chunk order.</summary>
        public Gradients Total()
        {
            var total = chunks[0];
            foreach (var other in chunks.Skip(1))
                foreach (var (t, o) in total.All.Zip(other.All))
                    if (t.Data is not null) System.Numerics.Tensors.TensorPrimitives.Add(t.Span, o.Span, t.Span);
            return new(total.Wx, total.Wh, total.Bx, total.Bh, total.Wy, total.By) { Own = total.Own };
        }

        /// <summary>One chunk's sums.</summary>
        internal sealed record Chunk(Block Wx, Block Wh, Block Bx, Block Bh, Block Wy, Block By)
        {
            /// <summary>The gradient of the cell's own parameters; default when it has none.</summary>
            public Block Own { get; init; }

            public IEnumerable<Block> All => [Wx, Wh, Bx, Bh, Wy, By, Own];
        }
    }

    /// <summary>Fresh matrices of rows×m with their storage as blocks.</summary>
    internal static (ImmutableArray<Matrix<double>> Matrices, Block[] Blocks) Fresh(int count, int rows, int m, bool zeroed)
    {
        var fresh = Enumerable.Range(0, count).Select(_ => zeroed ? Block.Fresh(rows, m) : Block.FreshUninitialized(rows, m)).ToArray();
        return (fresh.Select(f => f.Matrix).ToImmutableArray(), fresh.Select(f => f.Block).ToArray());
    }
}
