using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Kernels;

/// <summary>
/// One chunk of a <see cref="StackDriver.Loss"/> call: every layer's forward bottom to top, the read-out, every
/// layer's backward top to bottom. Layer l reads inputs[l] (time order: the stack's inputs, or layer l−1's outputs,
/// times its dropout mask when it has one) and its backward writes the gradient of its inputs, the next layer
/// down's outside gradient.
/// </summary>
/// <remarks>
/// <para>On one thread the layers run one after another. Given P ≥ 2 threads, layer l runs on thread l mod P: forward,
/// a one-direction layer starts as soon as the first step of its inputs is there and forms the input projection of
/// the steps that have arrived; backward, it seeds the steps whose gradient has arrived from the layer above and
/// writes the gradient of each step's inputs as soon as the step is done. A bidirectional layer waits for all its
/// inputs (its reverse scan starts at the end) and hands its outputs over when both directions are done.</para>
/// <para>Every product and sum is the one the one-thread run computes, on the same columns in the same order (a column
/// of a product has the same bits whatever the other columns), so the bits do not depend on the threads.</para>
/// </remarks>
internal sealed class StackRun : IDisposable
{
    private readonly FusedCell[][] layers;
    private readonly Schedule[] schedules;
    private readonly int steps;
    private readonly int columns;
    private readonly Workspace scratch = new();
    private readonly List<Driver.ChunkRun> runs = [];
    private readonly ImmutableArray<ImmutableArray<Matrix<double>>> inputMasks;
    private readonly ImmutableArray<Matrix<double>> readOutMask;

    /// <summary>raw[l]: layer l's inputs before its mask (time order); raw[L] the top layer's outputs.</summary>
    private readonly Block[] raw;

    /// <summary>inputs[l]: what layer l reads (raw[l], or raw[l] ⊙ mask in a block of its own); inputs[L]: what the read-out reads.</summary>
    private readonly Block[] inputs;

    /// <summary>masks[l]: layer l's gathered input mask (default without one); masks[L] the read-out's.</summary>
    private readonly Block[] masks;

    /// <summary>down[l]: the gradient of raw[l] (default for l = 0 without input gradients); down[L] the read-out's.</summary>
    private readonly Block[] down;

    /// <summary>arrived[l]: the steps of raw[l] written so far, first to last.</summary>
    private readonly int[] arrived;

    /// <summary>from[l]: the first step from which down[l] is written (it is written last step first).</summary>
    private readonly int[] from;

    private readonly Block[][][] finals;
    private readonly Block[][][] dInits;
    private readonly (Driver.ChunkRun Run, Block X, Block[] Parts, Func<int, int, Block[]> State)[][] tapes;
    private volatile bool failed;

    /// <summary>
    /// The runs of each layer's directions on one chunk (forward and reverse <paramref name="schedules"/>), from the
    /// batch-wide inputs and initial carry parts, with their gradient sums and transposed weights, on
    /// <paramref name="team"/> (the rows of products shared) or none; each direction scatters its final carry parts into
    /// <paramref name="finals"/>[l][d] and the gradient of its initial ones into <paramref name="dInits"/>[l][d].
    /// </summary>
    public StackRun(FusedCell[][] layers, Schedule[] schedules, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<Matrix<double>>> init,
        Func<int, int, Driver.Sums.Chunk> sums, Func<int, int, Driver.BackwardWeights> weights, ImmutableArray<ImmutableArray<Matrix<double>>> inputMasks,
        ImmutableArray<Matrix<double>> readOutMask, ImmutableArray<ImmutableArray<Matrix<double>>> recurrentMasks, bool inputGradients, Team? team,
        Block[][][] finals, Block[][][] dInits)
    {
        (this.layers, this.schedules, this.inputMasks, this.readOutMask, this.finals, this.dInits) = (layers, schedules, inputMasks, readOutMask, finals, dInits);
        var (s, count) = (schedules[0], layers.Length);
        (steps, columns) = (s.Steps, s.Start[s.Steps]);
        (raw, inputs, masks, down) = (new Block[count + 1], new Block[count + 1], new Block[count + 1], new Block[count + 1]);
        (arrived, from) = (new int[count + 1], new int[count + 1]);
        Array.Fill(from, steps);
        raw[0] = scratch.Take(layers[0][0].Input, columns);
        for (var t = 0; t < steps; t++) s.Gather(t => Block.Of(xs[t]), t, raw[0].Rows, raw[0].Slice(s.Start[t], s.Active[t]).Span);
        arrived[0] = steps;
        tapes = new (Driver.ChunkRun, Block, Block[], Func<int, int, Block[]>)[count][];
        for (var l = 0; l < count; l++)
        {
            var rows = layers[l].Sum(c => c.OutputRows);
            raw[l + 1] = layers[l].Length == 1 ? default : scratch.Take(rows, columns);                     // one direction: its own output part
            down[l] = l > 0 || inputGradients ? scratch.Take(layers[l][0].Input, columns) : default;
            tapes[l] = new (Driver.ChunkRun, Block, Block[], Func<int, int, Block[]>)[layers[l].Length];
            for (int d = 0, part = 0; d < layers[l].Length; part += layers[l][d].CarryParts, d++)
            {
                var (cell, sd) = (layers[l][d], schedules[d]);
                var recurrent = recurrentMasks.IsDefault || recurrentMasks[l].IsDefault ? null : recurrentMasks[l][d];
                var mask = recurrent is null ? default : scratch.Take(recurrent.RowCount, s.M);
                if (recurrent is not null) sd.GatherColumns(Block.Of(recurrent), mask.Span);
                var run = new Driver.ChunkRun(cell, sd, backward: true, head: null, team) { Sums = sums(l, d), Weights = weights(l, d), RecurrentMask = mask };
                runs.Add(run);
                var parts = Enumerable.Range(0, cell.Parts).Select(_ => scratch.Take(cell.Hidden, columns)).ToArray();
                var initial = Enumerable.Range(0, cell.CarryParts).Select(_ => scratch.Take(cell.Hidden, s.M)).ToArray();
                for (var p = 0; p < cell.CarryParts; p++) sd.GatherColumns(Block.Of(init[l][part + p]), initial[p].Span);
                tapes[l][d] = (run, default, parts, Driver.State(sd, 0, initial, parts));
                if (layers[l].Length == 1)                                                                     // h_l, in time order already,
                    raw[l + 1] = cell.OutputRows == cell.Hidden ? parts[0] : scratch.Take(cell.OutputRows, columns); // or its first rows copied out
            }
        }
        down[count] = scratch.Take(raw[count].Rows, columns);
    }

    /// <summary>The gradient of the stack's inputs, in time order (default without input gradients).</summary>
    public Block InputGradient => down[0];

    /// <summary>
    /// Runs the chunk: the layers, the read-out (<paramref name="readOut"/>, given the top layer's outputs as read and
    /// where their gradient goes) and the backward, on up to <paramref name="threads"/> threads, one layer on each.
    /// </summary>
    public void Run(int threads, Action<Block, Block> readOut)
    {
        var count = layers.Length;
        using var team = threads >= 2 && count >= 2 ? Team.Of(Math.Min(threads, count)) : null;
        if (team is null)
        {
            for (var l = 0; l < count; l++) Forward(l, pipelined: false);
            ReadOut(readOut);
            for (var l = count - 1; l >= 0; l--) Backward(l, pipelined: false);
            return;
        }
        Exception? failure = null;
        team.Run(i =>
        {
            try
            {
                for (var l = i; l < count; l += team.Size) Forward(l, pipelined: true);
                if ((count - 1) % team.Size == i) ReadOut(readOut);
                for (var l = (count - 1 - i) / team.Size * team.Size + i; l >= 0; l -= team.Size) Backward(l, pipelined: true);
            }
            catch (Exception e)
            {
                failed = true;                                                                                 // the other threads stop waiting
                if (e is not OperationCanceledException) Interlocked.CompareExchange(ref failure, e, null);
            }
        });
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
    }

    /// <summary>Layer l forward; its outputs are handed over step after step (one direction, <paramref name="pipelined"/>) or at the end.</summary>
    private void Forward(int l, bool pipelined)
    {
        var masked = 0;
        int Arrive(int upTo)                                                                                   // waits for raw[l] up to step upTo, masks what arrived
        {
            var available = WaitFor(arrived, l, upTo);
            if (masks[l].Data is not null && available > masked)
                StackDriver.MaskSteps(schedules[0], masked, available, raw[l], inputMasks[l], masks[l], inputs[l]);
            masked = Math.Max(masked, available);
            return available;
        }
        if (!inputMasks.IsDefault && !inputMasks[l].IsDefault)
            (inputs[l], masks[l]) = (scratch.Take(raw[l].Rows, columns), scratch.Take(raw[l].Rows, columns));
        else inputs[l] = raw[l];
        if (layers[l].Length == 1)
        {
            var (cell, (run, _, parts, state)) = (layers[l][0], tapes[l][0]);
            tapes[l][0].X = inputs[l];
            var (s, output) = (schedules[0], raw[l + 1]);
            Action<int>? finished = cell.OutputRows != cell.Hidden
                ? t =>                                                                                         // h⟨t⟩'s rows out of the part, then handed over
                {
                    StackDriver.TopRows(parts[0], output, s.Start[t - 1], s.Active[t - 1]);
                    if (pipelined) Volatile.Write(ref arrived[l + 1], t);
                }
                : pipelined ? t => Volatile.Write(ref arrived[l + 1], t) : null;
            run.FoldForward(0, steps, inputs[l], state, tau => Arrive(tau + 1), finished);
            run.ScatterFinal(state, 0, steps, finals[l][0]);
            Volatile.Write(ref arrived[l + 1], steps);
            return;
        }
        Arrive(steps);
        for (var d = 0; d < layers[l].Length; d++)
        {
            var (run, _, _, state) = tapes[l][d];
            var x = d == 0 ? inputs[l] : StackDriver.Reordered(schedules[d], inputs[l], scratch);
            tapes[l][d].X = x;
            run.FoldForward(0, schedules[d].Steps, x, state);
            run.ScatterFinal(state, 0, schedules[d].Steps, finals[l][d]);
        }
        StackDriver.Join(schedules, layers[l], [.. tapes[l].Select(tape => tape.Parts[0])], raw[l + 1]);
        Volatile.Write(ref arrived[l + 1], steps);
    }

    /// <summary>The read-out over the top layer's outputs (times its mask), its gradient into down[L].</summary>
    private void ReadOut(Action<Block, Block> readOut)
    {
        var top = layers.Length;
        inputs[top] = raw[top];
        if (!readOutMask.IsDefault)                                                                            // the read-out reads R ⊙ h_L
        {
            (inputs[top], masks[top]) = (scratch.Take(raw[top].Rows, columns), scratch.Take(raw[top].Rows, columns));
            StackDriver.MaskSteps(schedules[0], 0, steps, raw[top], readOutMask, masks[top], inputs[top]);
        }
        readOut(inputs[top], down[top]);
        if (masks[top].Data is not null) StackDriver.Multiply(down[top], masks[top]);
        Volatile.Write(ref from[top], 0);
    }

    /// <summary>Layer l backward: the gradient of its inputs, step after step (one direction, <paramref name="pipelined"/>) or at the end.</summary>
    private void Backward(int l, bool pipelined)
    {
        var below = down[l];
        if (layers[l].Length == 1)
        {
            var (run, x, _, state) = tapes[l][0];
            var above = down[l + 1];
            run.DxScan = below;
            run.DxPerStep = pipelined;
            Action<int>? done = pipelined ? tau =>
            {
                if (below.Data is not null && masks[l].Data is not null)                                       // dh_{l−1}⟨τ⟩ = M_l⟨τ⟩ ⊙ dx⟨τ⟩
                    StackDriver.Multiply(below.Slice(schedules[0].Start[tau], schedules[0].Active[tau]), masks[l].Slice(schedules[0].Start[tau], schedules[0].Active[tau]));
                Volatile.Write(ref from[l], tau);
            } : null;
            run.FoldBackward(0, steps, x, state, (c, p0, p1, b0) => c.SeedFromScan(above, p0, p1, b0), null, tau => WaitFrom(l + 1, tau), done);
            ScatterDInit(l, 0);
            if (!pipelined && below.Data is not null && masks[l].Data is not null) StackDriver.Multiply(below, masks[l]);
            Volatile.Write(ref from[l], 0);
            return;
        }
        WaitFrom(l + 1, 0);
        var row = 0;
        for (var d = 0; d < layers[l].Length; d++)
        {
            var (cell, sd, (run, x, _, state)) = (layers[l][d], schedules[d], tapes[l][d]);
            var seed = StackDriver.Split(sd, down[l + 1], row, cell.OutputRows, scratch);
            row += cell.OutputRows;
            var dX = below.Data is null ? default : d == 0 ? below : scratch.Take(below.Rows, columns);
            run.DxScan = dX;
            run.FoldBackward(0, sd.Steps, x, state, (c, p0, p1, b0) => c.SeedFromScan(seed, p0, p1, b0), null);
            ScatterDInit(l, d);
            if (d > 0 && below.Data is not null) StackDriver.AddReordered(sd, dX, below);                       // dx = dx_f + dx_r
        }
        if (below.Data is not null && masks[l].Data is not null) StackDriver.Multiply(below, masks[l]);          // dh_{l−1} = M_l ⊙ dx
        Volatile.Write(ref from[l], 0);
    }

    private void ScatterDInit(int l, int d)
    {
        var run = tapes[l][d].Run;
        for (var p = 0; p < layers[l][d].CarryParts; p++) schedules[d].ScatterColumns(run.DCarry[p].Span, dInits[l][d][p]);
    }

    /// <summary>Waits until progress[index] ≥ <paramref name="atLeast"/> and returns it.</summary>
    private int WaitFor(int[] progress, int index, int atLeast)
    {
        var spin = new SpinWait();
        int value;
        while ((value = Volatile.Read(ref progress[index])) < atLeast)
        {
            if (failed) throw new OperationCanceledException("another layer of the stack failed");
            spin.SpinOnce(sleep1Threshold: -1);
        }
        return value;
    }

    /// <summary>Waits until from[index] ≤ <paramref name="atMost"/> and returns it.</summary>
    private int WaitFrom(int index, int atMost)
    {
        var spin = new SpinWait();
        int value;
        while ((value = Volatile.Read(ref from[index])) > atMost)
        {
            if (failed) throw new OperationCanceledException("another layer of the stack failed");
            spin.SpinOnce(sleep1Threshold: -1);
        }
        return value;
    }

    public void Dispose()
    {
        foreach (var run in runs) run.Dispose();
        scratch.Dispose();
    }
}
