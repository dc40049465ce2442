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
internal static partial class Driver
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
        /// <summary>The recurrent dropout mask in scan order (<see cref="ChunkRun.RecurrentMask"/>); default without one.</summary>
        public Block Mask { get; init; }

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
    /// let it escape), else in arrays of its own. With a <paramref name="recurrent"/> dropout mask (the rows of the first
    /// carry part × m), every step reads mask ⊙ h⟨t−1⟩ where the cell reads h⟨t−1⟩ (<see cref="ChunkRun.RecurrentMask"/>).
    /// </summary>
    public static (ImmutableArray<Matrix<double>> Outputs, ImmutableArray<Matrix<double>> Final, Tape Tape) Forward(FusedCell cell,
        ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init, ImmutableArray<int> lengths, bool reverse, int every, int threads,
        Workspace? storage = null, bool outputs = true, Matrix<double>? recurrent = null)
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
            var mask = recurrent is null ? default : Take(recurrent.RowCount, mc);
            if (recurrent is not null) s.GatherColumns(Block.Of(recurrent), mask.Span);
            using var team = Team.For(threads / chunks.Length, Work(cell, mc));
            using var c = new ChunkRun(cell, s, backward: false, head: null, team) { RecurrentMask = mask };
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
            tapes[index] = new(s, x, kept, segments == 1 ? parts : null) { Mask = mask };
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
        var head = new Head(cell.Precision == Precision.Single ? wy.WithSingle() : wy, by, labels, lossLengths, new double[xs.Length * xs[0].ColumnCount],
            xs[0].ColumnCount);
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
            using var c = new ChunkRun(cell, s, backward: true, head, team) { Sums = sums.Of(index), Weights = weights, RecurrentMask = t.Mask };
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

    /// <summary>The read-out of a loss call: Wy, by, the labels, the loss lengths and where the per-example losses go (T×m, step after step).</summary>
    internal sealed record Head(Block Wy, Block By, ImmutableArray<ImmutableArray<int>> Labels, ImmutableArray<int> Lengths, double[] Losses, int Batch);

    /// <summary>
    /// Whᵀ and Wxᵀ, stored once per call so that the per-step Whᵀ·dR and the Wxᵀ·dU of dX read them in place or pack them
    /// without transposing (the same bits as reading Wh and Wx transposed), with a padded leading dimension
    /// (<see cref="Block.Padded"/>: n_a or n_x rows and <see cref="Block.Padding"/> more); with float32 twins in single precision.
    /// </summary>
    internal sealed class BackwardWeights
    {
        public BackwardWeights(FusedCell cell, Workspace call)
        {
            WhT = Transposed(cell.Wh, call, cell.Precision);
            WxT = Transposed(cell.Wx, call, cell.Precision);
        }

        public Block WhT { get; }

        public Block WxT { get; }

        private static Block Transposed(Block w, Workspace call, Precision precision)
        {
            var t = call.Take(w.Columns + Block.Padding, w.Rows);                                               // padded (Block.Padded)
            const int tile = 32;                                                                                // tiles of 32×32: both sides' lines stay in cache
            Span<double> from = w.Span, into = t.Span;
            for (var i0 = 0; i0 < w.Rows; i0 += tile)
                for (var j0 = 0; j0 < w.Columns; j0 += tile)
                {
                    var (rows, columns) = (Math.Min(tile, w.Rows - i0), Math.Min(tile, w.Columns - j0));
                    for (var j = j0; j < j0 + columns; j++)                                                       // column j of w is row j of t
                    {
                        var column = from.Slice(j * w.Rows + i0, rows);
                        ref var first = ref into[i0 * t.Rows + j];
                        for (var i = 0; i < column.Length; i++) System.Runtime.CompilerServices.Unsafe.Add(ref first, i * t.Rows) = column[i];
                    }
                }
            for (var i = 0; i < w.Rows; i++) t.Data.AsSpan(i * t.Rows + w.Columns, Block.Padding).Clear();
            return precision == Precision.Single ? t.WithSingle() : t;
        }
    }

    /// <summary>The gradient sums of every chunk, the first being the result itself, and their total in chunk order.</summary>
    internal sealed class Sums
    {
        private readonly Chunk[] chunks;

        public Sums(FusedCell cell, Head? head, int count, Workspace call)
        {
            var (g, na, nx, ny) = (cell.Gates * cell.Hidden, cell.Hidden, cell.Input, head?.Wy.Rows ?? 0);
            // The first chunk's sums are the result; a cell that copies its weight gradients out of them (the LSTM's gates)
            // has them in the open CallScratch, which outlives that copy.
            Block Zero(int rows, int columns, int c) => c == 0 ? Block.Fresh(rows, columns).Block : call.Zeros(rows, columns);
            Block Weights(int rows, int columns, int c) => c == 0 && cell.CopiesWeightGradients ? CallScratch.Zeros(rows, columns) : Zero(rows, columns, c);
            chunks = [.. Enumerable.Range(0, count).Select(c => new Chunk(Weights(g, nx, c), Weights(g, na, c), Weights(g, 1, c),
                cell.Bh.Data is null ? default : Weights(g, 1, c), Zero(ny, na, c), Zero(ny, 1, c))
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

    // ---- a projected output (FusedCell.OutputRows < n_a) at the driver's edges ----

    /// <summary>The matrix with zero rows below it up to <paramref name="rows"/>; itself when it has them.</summary>
    internal static Matrix<double> Padded(Matrix<double> m, int rows) =>
        m.RowCount == rows ? m : m.Stack(Matrix<double>.Build.Dense(rows - m.RowCount, m.ColumnCount));

    /// <summary>Each matrix <see cref="Padded(Matrix{double}, int)"/>; the matrices themselves when every one has the rows.</summary>
    internal static ImmutableArray<Matrix<double>> Padded(ImmutableArray<Matrix<double>> ms, int rows) =>
        ms.All(m => m.RowCount == rows) ? ms : [.. ms.Select(m => Padded(m, rows))];

    /// <summary>The first <paramref name="rows"/> rows of a matrix; itself when it has no more.</summary>
    internal static Matrix<double> Top(Matrix<double> m, int rows) => m.RowCount == rows ? m : m.SubMatrix(0, rows, 0, m.ColumnCount);

    /// <summary>Each matrix cut to its first <paramref name="rows"/> rows; the matrices themselves when none has more.</summary>
    internal static ImmutableArray<Matrix<double>> Top(ImmutableArray<Matrix<double>> ms, int rows) =>
        ms.All(m => m.RowCount == rows) ? ms : [.. ms.Select(m => Top(m, rows))];

    /// <summary>Carry parts with the first (h) cut to <paramref name="rows"/> rows, the others as they are.</summary>
    internal static ImmutableArray<Matrix<double>> TopFirst(ImmutableArray<Matrix<double>> parts, int rows) =>
        parts[0].RowCount == rows ? parts : parts.SetItem(0, Top(parts[0], rows));

    /// <summary>Fresh matrices of rows×m with their storage as blocks.</summary>
    internal static (ImmutableArray<Matrix<double>> Matrices, Block[] Blocks) Fresh(int count, int rows, int m, bool zeroed)
    {
        var fresh = Enumerable.Range(0, count).Select(_ => zeroed ? Block.Fresh(rows, m) : Block.FreshUninitialized(rows, m)).ToArray();
        return (fresh.Select(f => f.Matrix).ToImmutableArray(), fresh.Select(f => f.Block).ToArray());
    }
}
