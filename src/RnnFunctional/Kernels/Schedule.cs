using System.Collections.Immutable;

namespace RnnFunctional.Kernels;

/// <summary>
/// Which columns of a chunk run at each step of a scan, and which time step each of them reads. The chunk's columns
/// are taken longest first (a stable order, so a full batch keeps its own order): at scan step τ the running columns
/// are the first <see cref="Active"/>[τ] of them, a prefix, so a finished column costs nothing — no product, no
/// element-wise work — and the steps of a time block lie side by side, <see cref="Start"/>[τ] columns from the
/// scan's first. Column i reads time step τ first to last, or len_i − 1 − τ when scanning in reverse, so a reverse
/// scan starts every column at its own last step.
/// </summary>
internal sealed class Schedule
{
    private readonly int[] order;
    private readonly int[] length;

    /// <summary>The schedule of columns [<paramref name="j0"/>, <paramref name="j0"/> + <paramref name="m"/>) of a batch.</summary>
    /// <param name="j0">First column of the chunk in the batch.</param>
    /// <param name="m">Columns of the chunk.</param>
    /// <param name="steps">T.</param>
    /// <param name="lengths">len_j ∈ [1, T] of every column of the batch; default when every column runs T steps.</param>
    /// <param name="reverse">Whether the scan runs last to first.</param>
    public Schedule(int j0, int m, int steps, ImmutableArray<int> lengths, bool reverse)
    {
        (J0, M, Reverse) = (j0, m, reverse);
        order = [.. Enumerable.Range(0, m)];
        length = [.. Enumerable.Repeat(steps, m)];
        if (!lengths.IsDefault)
        {
            order = [.. order.OrderByDescending(i => lengths[j0 + i])];                  // stable: equal lengths keep their order
            length = [.. order.Select(i => lengths[j0 + i])];
        }
        Steps = m == 0 ? 0 : length[0];
        Uniform = length.All(l => l == steps) && order.Select((o, i) => o == i).All(same => same);
        Active = new int[Steps + 1];
        Start = new int[Steps + 1];
        for (var t = 0; t < Steps; t++)
        {
            Active[t] = length.Count(l => l > t);
            Start[t + 1] = Start[t] + Active[t];
        }
    }

    /// <summary>First column of the chunk in the batch.</summary>
    public int J0 { get; }

    /// <summary>Columns of the chunk.</summary>
    public int M { get; }

    /// <summary>Scan steps: the longest column's length.</summary>
    public int Steps { get; }

    /// <summary>Whether the scan runs last to first.</summary>
    public bool Reverse { get; }

    /// <summary>Every column runs every step, in the batch's order: each step's columns are one contiguous slice.</summary>
    public bool Uniform { get; }

    /// <summary>Active[τ]: the columns running at scan step τ (the first ones); Active[Steps] = 0.</summary>
    public int[] Active { get; }

    /// <summary>Start[τ]: the running columns of the scan steps before τ.</summary>
    public int[] Start { get; }

    /// <summary>len of the i-th column of the scan.</summary>
    public int Length(int i) => length[i];

    /// <summary>The batch column of the i-th column of the scan.</summary>
    public int Column(int i) => J0 + order[i];

    /// <summary>The time step that column i reads at scan step τ.</summary>
    public int Time(int tau, int i) => Reverse ? length[i] - 1 - tau : tau;

    /// <summary>Copies the running columns of scan step τ out of the batch-wide matrices <paramref name="source"/>(t), rows each, into <paramref name="destination"/>.</summary>
    public void Gather(Func<int, Block> source, int tau, int rows, Span<double> destination)
    {
        if (Uniform)
        {
            source(Time(tau, 0)).Slice(J0, M).Span.CopyTo(destination);
            return;
        }
        for (var i = 0; i < Active[tau]; i++)
            source(Time(tau, i)).Slice(Column(i), 1).Span.CopyTo(destination.Slice(i * rows, rows));
    }

    /// <summary>Copies the running columns of scan step τ, rows each, into their places in the batch-wide matrices <paramref name="destination"/>(t).</summary>
    public void Scatter(ReadOnlySpan<double> source, int tau, int rows, Func<int, Block> destination)
    {
        if (Uniform)
        {
            source[..(rows * M)].CopyTo(destination(Time(tau, 0)).Slice(J0, M).Span);
            return;
        }
        for (var i = 0; i < Active[tau]; i++)
            source.Slice(i * rows, rows).CopyTo(destination(Time(tau, i)).Slice(Column(i), 1).Span);
    }

    /// <summary>Copies the chunk's columns of a batch-wide matrix into scan order.</summary>
    public void GatherColumns(Block source, Span<double> destination)
    {
        var rows = source.Rows;
        for (var i = 0; i < M; i++) source.Slice(Column(i), 1).Span.CopyTo(destination.Slice(i * rows, rows));
    }

    /// <summary>Copies columns in scan order to their places in a batch-wide matrix.</summary>
    public void ScatterColumns(ReadOnlySpan<double> source, Block destination)
    {
        var rows = destination.Rows;
        for (var i = 0; i < M; i++) source.Slice(i * rows, rows).CopyTo(destination.Slice(Column(i), 1).Span);
    }
}
