using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Kernels;

/// <summary>
/// A stack of layers on the <see cref="Driver"/>, a chunk of the batch at a time, without leaving the chunk's buffers:
/// layer l's outputs are kept in time order (the forward scan's order, n_l × Start[T]) and are layer l+1's inputs as
/// they are; a bidirectional layer runs both directions over the chunk and joins their outputs ([forward; reverse]
/// rows) once; the read-out's cross-entropy reads the top layer's outputs there; the backward runs top to bottom,
/// each layer's dX = Wxᵀ·dU written in place as the gradient of the outputs of the layer below.
/// </summary>
/// <remarks>
/// Every sum has the order of a layer run alone on the driver: per chunk, time blocks last first, chunks in order; a
/// bidirectional layer's dx is dx_f + dx_r. The tape lives in the call's scratch and never escapes.
/// </remarks>
internal static class StackDriver
{
    /// <summary>One layer's results: the gradients of each direction, then the gradients of its initial state and its final state, every direction's parts in order.</summary>
    internal sealed record LayerResult(Driver.Gradients[] Directions, ImmutableArray<Matrix<double>> DInit, ImmutableArray<Matrix<double>> Final);

    /// <summary>The per-example losses (T×m, step after step), dWy, dby, each layer's results, and dx when asked for.</summary>
    internal sealed record Result(double[] Losses, Block DWy, Block DBy, LayerResult[] Layers, ImmutableArray<Matrix<double>> Dx);

    /// <summary>
    /// The summed cross-entropy of ŷ = softmax(Wy·h_L + by) over a stack and its gradients: <paramref name="layers"/>[l]
    /// holds layer l's cells, one (a forward scan) or two (forward and reverse); <paramref name="init"/>[l] their
    /// initial carry parts, direction after direction; label(t, j) the class of column j at step t or
    /// <see cref="Ragged.Ignored"/>; <paramref name="lengths"/> per-column lengths (default: all T). Dropout:
    /// <paramref name="inputMasks"/>[l] (default, or T masks n_in×m) multiplies layer l's inputs in the chunk's buffer
    /// before the layer reads them, and the gradient of its inputs on the way down; <paramref name="readOutMask"/>
    /// (default, or T masks n_top×m) does the same for the read-out's inputs; <paramref name="recurrentMasks"/>[l]
    /// (default, or one mask a direction, the rows of its first carry part × m) masks h⟨t−1⟩ wherever the cell reads it
    /// (<see cref="Driver.ChunkRun.RecurrentMask"/>).
    /// </summary>
    public static Result Loss(FusedCell[][] layers, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<Matrix<double>>> init,
        ImmutableArray<int> lengths, Func<int, int, int> label, Block wy, Block by, bool inputGradients, int threads,
        ImmutableArray<ImmutableArray<Matrix<double>>> inputMasks = default, ImmutableArray<Matrix<double>> readOutMask = default,
        ImmutableArray<ImmutableArray<Matrix<double>>> recurrentMasks = default)
    {
        var (steps, m) = (xs.Length, xs[0].ColumnCount);
        (init, recurrentMasks) = (Padded(layers, init, masks: false), recurrentMasks.IsDefault ? default : Padded(layers, recurrentMasks, masks: true));
        var chunks = Summation.Chunks(m);
        var losses = new double[steps * m];
        var dx = inputGradients ? Driver.Fresh(steps, layers[0][0].Input, m, zeroed: !lengths.IsDefault) : default;
        var finals = layers.Select(l => l.Select(c => Driver.Fresh(c.CarryParts, c.Hidden, m, zeroed: false)).ToArray()).ToArray();
        var dInits = layers.Select(l => l.Select(c => Driver.Fresh(c.CarryParts, c.Hidden, m, zeroed: false)).ToArray()).ToArray();
        using var call = new Workspace();
        var sums = layers.Select(l => l.Select(c => new Driver.Sums(c, null, chunks.Length, call)).ToArray()).ToArray();
        var weights = layers.Select(l => l.Select(c => new Driver.BackwardWeights(c, call)).ToArray()).ToArray();
        var head = HeadSums(chunks.Length, wy, call);
        var precision = layers[^1][0].Precision;
        if (precision == Precision.Single) wy = wy.WithSingle();
        Summation.ForEachChunk(chunks, threads, (j0, mc, index) =>
        {
            var perChunk = threads / chunks.Length;
            var sideBySide = layers.Length >= Math.Max(2, perChunk);                                            // a layer for every thread
            using var team = sideBySide ? null : Team.For(perChunk, layers.SelectMany(l => l).Max(c => Driver.Work(c, mc)));   // else rows shared when large
            Schedule[] schedules = [new(j0, mc, steps, lengths, reverse: false), new(j0, mc, steps, lengths, reverse: true)];
            var s = schedules[0];
            using var run = new StackRun(layers, schedules, xs, init, (l, d) => sums[l][d].Of(index), (l, d) => weights[l][d], inputMasks, readOutMask,
                recurrentMasks, inputGradients, team, [.. finals.Select(l => l.Select(f => f.Blocks).ToArray())], [.. dInits.Select(l => l.Select(f => f.Blocks).ToArray())]);
            using var scratch = new Workspace();
            run.Run(team is null ? perChunk : 1, (top, dTop) => ReadOut(s, wy, by, top, dTop, label, losses, m, head[index], scratch, precision, team));   // else layers side by side
            if (inputGradients)
                for (var t = 0; t < s.Steps; t++) s.Scatter(run.InputGradient.Slice(s.Start[t], s.Active[t]).Span, t, layers[0][0].Input, t => dx.Blocks[t]);
        });
        var results = layers.Select((l, i) => new LayerResult(
            [.. sums[i].Select(x => x.Total())],
            [.. dInits[i].SelectMany((f, d) => Driver.TopFirst(f.Matrices, l[d].OutputRows))],
            [.. finals[i].SelectMany((f, d) => Driver.TopFirst(f.Matrices, l[d].OutputRows))])).ToArray();
        var (dWy, dBy) = Total(head);
        return new(losses, dWy, dBy, results, inputGradients ? dx.Matrices : default);
    }

    /// <summary>
    /// Each direction's first part (h) with zero rows below it up to the driver's n_a (<see cref="FusedCell.OutputRows"/>),
    /// in lists of each layer's initial carry parts, direction after direction, or, with <paramref name="masks"/>, of
    /// each layer's recurrent masks, one a direction; a layer's list as it is when it is default.
    /// </summary>
    private static ImmutableArray<ImmutableArray<Matrix<double>>> Padded(FusedCell[][] layers, ImmutableArray<ImmutableArray<Matrix<double>>> parts,
        bool masks) =>
        [.. parts.Select((l, i) =>
        {
            if (l.IsDefault) return l;
            var (padded, part) = (l.ToBuilder(), 0);
            foreach (var cell in layers[i])
            {
                padded[part] = Driver.Padded(padded[part], cell.Hidden);
                part += masks ? 1 : cell.CarryParts;
            }
            return padded.ToImmutable();
        })];

    /// <summary>
    /// The read-out of <see cref="Loss"/> over states given as matrices (T of n_top×m, time order): the same per-example
    /// losses, dWy and dby bit for bit, and the gradient of each state (zero past each column's end).
    /// </summary>
    public static (double[] Losses, Block DWy, Block DBy, ImmutableArray<Matrix<double>> DStates) ReadOut(Block wy, Block by,
        ImmutableArray<Matrix<double>> states, ImmutableArray<int> lengths, Func<int, int, int> label, int threads)
    {
        var (steps, m, n) = (states.Length, states[0].ColumnCount, states[0].RowCount);
        var chunks = Summation.Chunks(m);
        var losses = new double[steps * m];
        var dStates = Driver.Fresh(steps, n, m, zeroed: !lengths.IsDefault);
        using var call = new Workspace();
        var head = HeadSums(chunks.Length, wy, call);
        var precision = Compute.Precision;
        if (precision == Precision.Single) wy = wy.WithSingle();
        Summation.ForEachChunk(chunks, threads, (j0, mc, index) =>
        {
            using var scratch = new Workspace();
            using var team = Team.For(threads / chunks.Length, (long)wy.Rows * n * mc);                         // the read-out's rows shared when large
            var s = new Schedule(j0, mc, steps, lengths, reverse: false);
            var (h, dH) = (scratch.Take(n, s.Start[s.Steps]), scratch.Take(n, s.Start[s.Steps]));
            for (var t = 0; t < s.Steps; t++) s.Gather(t => Block.Of(states[t]), t, n, h.Slice(s.Start[t], s.Active[t]).Span);
            ReadOut(s, wy, by, h, dH, label, losses, m, head[index], scratch, precision, team);
            for (var t = 0; t < s.Steps; t++) s.Scatter(dH.Slice(s.Start[t], s.Active[t]).Span, t, n, t => dStates.Blocks[t]);
        });
        var (dWy, dBy) = Total(head);
        return (losses, dWy, dBy, dStates.Matrices);
    }

    /// <summary>dWy and dby of each chunk: the first chunk's are the result itself.</summary>
    private static (Block Wy, Block By)[] HeadSums(int chunks, Block wy, Workspace call) =>
        [.. Enumerable.Range(0, chunks).Select(c => c == 0
            ? (Block.Fresh(wy.Rows, wy.Columns).Block, Block.Fresh(wy.Rows, 1).Block)
            : (call.Zeros(wy.Rows, wy.Columns), call.Zeros(wy.Rows, 1)))];

    /// <summary>The first chunk's sums plus the others in chunk order.</summary>
    private static (Block Wy, Block By) Total((Block Wy, Block By)[] sums)
    {
        foreach (var (w, b) in sums.Skip(1))
        {
            System.Numerics.Tensors.TensorPrimitives.Add(sums[0].Wy.Span, w.Span, sums[0].Wy.Span);
            System.Numerics.Tensors.TensorPrimitives.Add(sums[0].By.Span, b.Span, sums[0].By.Span);
        }
        return sums[0];
    }

    /// <summary>
    /// The cross-entropy of the outputs <paramref name="h"/> (time order), per time block from the last: the losses, the
    /// gradient of each output into <paramref name="dH"/>, and dWy, dby summed as a layer's own read-out sums them.
    /// </summary>
    private static void ReadOut(Schedule s, Block wy, Block by, Block h, Block dH, Func<int, int, int> label, double[] losses, int m,
        (Block Wy, Block By) sums, Workspace scratch, Precision precision, Team? team)
    {
        if (s.Steps == 0) return;
        var blockSteps = Summation.BlockSteps(s.M);
        var dO = scratch.Take(wy.Rows, blockSteps * s.M);
        for (var b0 = (s.Steps - 1) / blockSteps * blockSteps; b0 >= 0; b0 -= blockSteps)
        {
            var b1 = Math.Min(b0 + blockSteps, s.Steps);
            var (from, columns) = (s.Start[b0], s.Start[b1] - s.Start[b0]);
            var (step, column) = (new int[columns], new int[columns]);
            for (var t = b0; t < b1; t++)
                for (var i = 0; i < s.Active[t]; i++) (step[s.Start[t] - from + i], column[s.Start[t] - from + i]) = (t, s.Column(i));
            var (hb, dOb) = (h.Slice(from, columns), dO.Slice(0, columns));
            Softmax.CrossEntropy(wy, by, hb, dOb, dH.Slice(from, columns), k => label(step[k], column[k]), (k, loss) => losses[step[k] * m + column[k]] = loss,
                precision, team);
            Softmax.AccumulateGradients(dOb, hb, sums.Wy, sums.By, precision, team);                                  // dWy += dO·Hᵀ, dby += Σ dO
        }
    }

    /// <summary>
    /// Steps [t0, t1) of a time-ordered block times the masks of those steps (gathered as the inputs are, into
    /// <paramref name="mask"/>), into <paramref name="result"/>: the block itself may be a layer's tape and is left untouched.
    /// </summary>
    internal static void MaskSteps(Schedule s, int t0, int t1, Block timeOrdered, ImmutableArray<Matrix<double>> masks, Block mask, Block result)
    {
        for (var t = t0; t < t1; t++) s.Gather(t => Block.Of(masks[t]), t, mask.Rows, mask.Slice(s.Start[t], s.Active[t]).Span);
        var (first, count) = (s.Start[t0], s.Start[t1] - s.Start[t0]);
        System.Numerics.Tensors.TensorPrimitives.Multiply(timeOrdered.Slice(first, count).Span, mask.Slice(first, count).Span, result.Slice(first, count).Span);
    }

    /// <summary>block ⊙= mask, in place (the chunk's own gradient buffer).</summary>
    internal static void Multiply(Block block, Block mask) => System.Numerics.Tensors.TensorPrimitives.Multiply(block.Span, mask.Span, block.Span);

    /// <summary>A layer's outputs in time order, into <paramref name="joined"/>: each step's column holds [forward; reverse], the reverse direction's from its own scan step.</summary>
    internal static void Join(Schedule[] schedules, FusedCell[] cells, Block[] outputs, Block joined)
    {
        for (int d = 0, row = 0; d < cells.Length; row += cells[d].OutputRows, d++) Copy(schedules[d], outputs[d], cells[d].OutputRows, joined, row);
    }

    /// <summary>
    /// Columns [first, first + count) of a cell's outputs (part 0, n_a rows) cut to their first destination.Rows rows
    /// (<see cref="FusedCell.OutputRows"/>), into the same columns of <paramref name="destination"/>.
    /// </summary>
    internal static void TopRows(Block source, Block destination, int first, int count)
    {
        for (var j = first; j < first + count; j++)
            source.Data.AsSpan(source.Offset + j * source.Rows, destination.Rows).CopyTo(destination.Slice(j, 1).Span);
    }

    /// <summary>Rows [row, row + rows) of a time-ordered block, in the scan order of <paramref name="s"/>.</summary>
    internal static Block Split(Schedule s, Block timeOrdered, int row, int rows, Workspace scratch)
    {
        var result = scratch.Take(rows, timeOrdered.Columns);
        for (var t = 0; t < s.Steps; t++)
            for (var i = 0; i < s.Active[t]; i++)
                timeOrdered.Data.AsSpan(timeOrdered.Offset + (s.Start[s.Time(t, i)] + i) * timeOrdered.Rows + row, rows)
                    .CopyTo(result.Slice(s.Start[t] + i, 1).Span);
        return result;
    }

    /// <summary>A time-ordered block in the scan order of <paramref name="s"/> (a reverse scan reads each column from its own last step).</summary>
    internal static Block Reordered(Schedule s, Block timeOrdered, Workspace scratch) => Split(s, timeOrdered, 0, timeOrdered.Rows, scratch);

    /// <summary>Copies the first <paramref name="rows"/> rows of a block in the scan order of <paramref name="s"/> into rows [row, row + rows) of a time-ordered block.</summary>
    private static void Copy(Schedule s, Block source, int rows, Block timeOrdered, int row)
    {
        for (var t = 0; t < s.Steps; t++)
            for (var i = 0; i < s.Active[t]; i++)
                source.Slice(s.Start[t] + i, 1).Span[..rows]
                    .CopyTo(timeOrdered.Data.AsSpan(timeOrdered.Offset + (s.Start[s.Time(t, i)] + i) * timeOrdered.Rows + row, rows));
    }

    /// <summary>timeOrdered += source, source being in the scan order of <paramref name="s"/>.</summary>
    internal static void AddReordered(Schedule s, Block source, Block timeOrdered)
    {
        var rows = source.Rows;
        for (var t = 0; t < s.Steps; t++)
            for (var i = 0; i < s.Active[t]; i++)
            {
                var target = timeOrdered.Slice(s.Start[s.Time(t, i)] + i, 1).Span;
                System.Numerics.Tensors.TensorPrimitives.Add(target, source.Slice(s.Start[t] + i, 1).Span, target);
            }
    }
}
