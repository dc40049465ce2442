using System.Buffers;
using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Kernels;

/// <summary>
/// A column-major matrix held in part of an array: <see cref="Rows"/>×<see cref="Columns"/> entries from
/// <see cref="Offset"/>, one column after another. The columns of a step, or of a chunk of a batch, are a contiguous
/// slice of a matrix laid out one column per example, so a block is how the sequence kernels see a time step of a
/// batch, a chunk of its columns, or many steps side by side.
/// </summary>
/// <param name="Data">The storage.</param>
/// <param name="Offset">Index of entry (0, 0).</param>
/// <param name="Rows">Number of rows, also the distance between consecutive columns.</param>
/// <param name="Columns">Number of columns.</param>
internal readonly record struct Block(double[] Data, int Offset, int Rows, int Columns)
{
    /// <summary>Rows × Columns.</summary>
    public int Length => Rows * Columns;

    /// <summary>The entries, column after column.</summary>
    public Span<double> Span => Data.AsSpan(Offset, Length);

    /// <summary>Columns <paramref name="start"/> to <paramref name="start"/> + <paramref name="count"/> − 1.</summary>
    public Block Slice(int start, int count)
    {
        Debug.Assert(start >= 0 && count >= 0 && start + count <= Columns, "Columns outside the block.");
        return new(Data, Offset + start * Rows, Rows, count) { Single = Single };
    }

    /// <summary>
    /// The entries rounded to float32, index for index with <see cref="Data"/>, when the block carries such a twin (a
    /// weight matrix of a call whose products run in <see cref="Precision.Single"/>); null otherwise.
    /// </summary>
    public float[]? Single { get; init; }

    /// <summary>The entries of <see cref="Single"/>, column after column; empty without a twin.</summary>
    public ReadOnlySpan<float> SingleSpan => Single is null ? default : Single.AsSpan(Offset, Length);

    /// <summary>
    /// The block with a float32 twin of its entries (storage of its own, from the open <see cref="CallScratch"/> if any;
    /// made once, and the block is only read).
    /// </summary>
    public Block WithSingle()
    {
        if (Single is not null || Data is null) return this;
        var twin = CallScratch.Floats(Offset + Length);
        System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<double, float>(Span, twin.AsSpan(Offset, Length)); // (float)x: round to nearest
        return this with { Single = twin };
    }

    /// <summary>Rows of zeros that <see cref="Padded"/> adds below a matrix.</summary>
    public const int Padding = 8;

    /// <summary>
    /// A copy of the block with <see cref="Padding"/> rows of zeros below its own (storage from the open
    /// <see cref="CallScratch"/> if any; with a float32 twin when <paramref name="single"/>), for an operand that a
    /// product reads in place with this leading dimension and as many rows as the product's result: the added rows are
    /// never read. Columns of a few hundred rows are otherwise often a multiple of 4 KB apart, so that the loads of
    /// consecutive depth steps compete for the same sets of the L1 cache. Only the addresses change, not the bits.
    /// </summary>
    public Block Padded(bool single)
    {
        var ld = Rows + Padding;
        var data = CallScratch.Doubles(checked(ld * Columns));
        for (var j = 0; j < Columns; j++)
        {
            Span.Slice(j * Rows, Rows).CopyTo(data.AsSpan(j * ld, Rows));
            data.AsSpan(j * ld + Rows, Padding).Clear();
        }
        var padded = new Block(data, 0, ld, Columns);
        return single ? padded.WithSingle() : padded;
    }

    /// <summary>The storage of a matrix (itself for a dense matrix, else a copy), to be read, never written.</summary>
    public static Block Of(Matrix<double> m) => new(m.AsColumnMajorArray() ?? m.ToColumnMajorArray(), 0, m.RowCount, m.ColumnCount);

    /// <summary>The storage of a vector as one column (itself for a dense vector, else a copy), to be read, never written.</summary>
    public static Block Of(MathNet.Numerics.LinearAlgebra.Vector<double> v) => new(v.AsArray() ?? v.ToArray(), 0, v.Count, 1);

    /// <summary>A fresh zero matrix and its storage, for a result that the caller will own.</summary>
    public static (Matrix<double> Matrix, Block Block) Fresh(int rows, int columns) => Wrap(new double[rows * columns], rows, columns);

    /// <summary>A fresh matrix of unspecified contents and its storage, for a result that a kernel overwrites entirely before returning it.</summary>
    public static (Matrix<double> Matrix, Block Block) FreshUninitialized(int rows, int columns) =>
        Wrap(GC.AllocateUninitializedArray<double>(rows * columns), rows, columns);

    /// <summary>A copy of the block in an array of its own.</summary>
    public Block Copy() => new(Span.ToArray(), 0, Rows, Columns);

    /// <summary>The block as a matrix of its own: its storage itself when the block is a whole array, else a copy.</summary>
    public Matrix<double> ToMatrix() =>
        Offset == 0 && Data.Length == Length ? Matrix<double>.Build.Dense(Rows, Columns, Data) : Matrix<double>.Build.Dense(Rows, Columns, Span.ToArray());

    /// <summary>A one-column block as a vector of its own: its storage itself when the block is a whole array, else a copy.</summary>
    public MathNet.Numerics.LinearAlgebra.Vector<double> ToVector() =>
        Offset == 0 && Data.Length == Length ? MathNet.Numerics.LinearAlgebra.Vector<double>.Build.Dense(Data) : MathNet.Numerics.LinearAlgebra.Vector<double>.Build.Dense(Span.ToArray());

    private static (Matrix<double> Matrix, Block Block) Wrap(double[] data, int rows, int columns) =>
        (Matrix<double>.Build.Dense(rows, columns, data), new(data, 0, rows, columns));
}

/// <summary>
/// Scratch for one call of a kernel, rented from the shared array pool and returned when disposed. Nothing taken from
/// a workspace may be reachable from a result: results are always freshly allocated.
/// </summary>
internal sealed class Workspace : IDisposable
{
    private readonly List<double[]> rented = [];

    /// <summary>Doubles taken so far: the working memory of the call, beyond its arguments and results.</summary>
    public long Doubles { get; private set; }

    /// <summary>A rows×columns block of unspecified contents.</summary>
    public Block Take(int rows, int columns)
    {
        var data = ArrayPool<double>.Shared.Rent(checked(rows * columns));
        lock (rented)
        {
            rented.Add(data);
            Doubles += (long)rows * columns;
        }
        return new(data, 0, rows, columns);
    }

    /// <summary>A rows×columns block of zeros.</summary>
    public Block Zeros(int rows, int columns)
    {
        var block = Take(rows, columns);
        block.Span.Clear();
        return block;
    }

    /// <summary>Returns every block to the pool.</summary>
    public void Dispose()
    {
        foreach (var data in rented) ArrayPool<double>.Shared.Return(data);
        rented.Clear();
    }
}

/// <summary>
/// Storage for what a call lays out from its weights before its products (the LSTM's gates stacked into one matrix,
/// float32 twins of the weights), rented from the shared pools while the scope is open on the calling thread and
/// returned when it is disposed; without an open scope the same requests get fresh arrays. A scope is opened only by
/// a call none of whose cells outlives it — a loss or gradient function, not a forward pass that returns a tape —
/// so nothing taken from it is reachable from a result. Reusing the arrays spares a wide layer's call the fresh pages
/// of several megabytes of weights each time (page faults and the collector's zeroing).
/// </summary>
internal sealed class CallScratch : IDisposable
{
    [ThreadStatic]
    private static CallScratch? current;

    private readonly CallScratch? outer;
    private readonly List<double[]> doubles = [];
    private readonly List<float[]> floats = [];

    private CallScratch(CallScratch? outer) => this.outer = outer;

    /// <summary>Opens a scope on the calling thread, inside any scope already open there.</summary>
    public static CallScratch Open() => current = new CallScratch(current);

    /// <summary>At least <paramref name="length"/> doubles of unspecified contents: rented if a scope is open on this thread, else fresh.</summary>
    public static double[] Doubles(int length)
    {
        if (current is not { } scope) return GC.AllocateUninitializedArray<double>(length);
        var data = ArrayPool<double>.Shared.Rent(length);
        scope.doubles.Add(data);
        return data;
    }

    /// <summary>At least <paramref name="length"/> floats of unspecified contents: rented if a scope is open on this thread, else fresh.</summary>
    public static float[] Floats(int length)
    {
        if (current is not { } scope) return GC.AllocateUninitializedArray<float>(length);
        var data = ArrayPool<float>.Shared.Rent(length);
        scope.floats.Add(data);
        return data;
    }

    /// <summary>A copy of <paramref name="source"/>: in rented storage if a scope is open on this thread, else fresh.</summary>
    public static Block Copy(Block source)
    {
        var data = Doubles(checked(source.Rows * source.Columns));
        source.Span.CopyTo(data);
        return new Block(data, 0, source.Rows, source.Columns);
    }

    /// <summary>A rows×columns block of zeros: rented if a scope is open on this thread, else fresh.</summary>
    public static Block Zeros(int rows, int columns)
    {
        if (current is null) return Block.Fresh(rows, columns).Block;
        var block = new Block(Doubles(checked(rows * columns)), 0, rows, columns);
        block.Span.Clear();
        return block;
    }

    /// <summary>Returns every array of the scope to its pool and closes it.</summary>
    public void Dispose()
    {
        Debug.Assert(current == this, "Scopes are closed in the reverse order of their opening, on the thread that opened them.");
        current = outer;
        foreach (var data in doubles) ArrayPool<double>.Shared.Return(data);
        foreach (var data in floats) ArrayPool<float>.Shared.Return(data);
        doubles.Clear();
        floats.Clear();
    }
}

/// <summary>
/// The fixed reduction order that makes a sequence kernel's sums deterministic. A batch of m columns is cut into
/// ⌊m / <see cref="ChunkColumns"/>⌋ chunks (at least one) of nearly equal width, whatever the number of threads;
/// within a chunk the steps are cut into time blocks of <see cref="BlockSteps"/> steps from t = 0. A weight gradient
/// is Σ over chunks in order of Σ over time blocks, last block first, of one product over the block's columns. The
/// same cuts are used by one thread or many, and by the full and the checkpointed backward, which is why their
/// results are bitwise identical.
/// </summary>
internal static class Summation
{
    /// <summary>
    /// Threads a public function may use: those of the innermost <see cref="WithThreads{T}"/> that it runs in, else the
    /// environment variable <c>RNNFUNCTIONAL_THREADS</c> when it holds a number from 1 on, else every core. Batches of
    /// 2·<see cref="ChunkColumns"/> columns or more are split into chunks over them; a batch of one chunk shares the
    /// rows of its products (<see cref="Team"/>). The results have the same bits whatever the number.
    /// </summary>
    public static int DefaultThreads =>
        Scoped.Value >= 1 ? Scoped.Value
        : int.TryParse(Environment.GetEnvironmentVariable("RNNFUNCTIONAL_THREADS"), out var threads) && threads >= 1
            ? Math.Min(threads, 64) : Environment.ProcessorCount;

    private static readonly AsyncLocal<int> Scoped = new();

    /// <summary>
    /// <paramref name="compute"/>'s result, its public functions given <paramref name="threads"/> threads (at most 64)
    /// whatever the environment says; the bits are those of any other number.
    /// </summary>
    public static T WithThreads<T>(int threads, Func<T> compute)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        var outer = Scoped.Value;
        Scoped.Value = Math.Min(threads, 64);
        try { return compute(); }
        finally { Scoped.Value = outer; }
    }

    /// <summary>Batch columns per chunk, below which a batch is not split.</summary>
    public const int ChunkColumns = 128;

    /// <summary>Columns (steps × chunk width) that a time block aims at: the depth of one panel of <see cref="Gemm"/>.</summary>
    public const int BlockColumns = 256;

    /// <summary>The chunks of a batch of <paramref name="m"/> columns: (first column, width), in order.</summary>
    public static (int Start, int Count)[] Chunks(int m)
    {
        var count = Math.Max(1, m / ChunkColumns);
        var chunks = new (int, int)[count];
        for (int c = 0, start = 0; c < count; c++)
        {
            var width = m / count + (c < m % count ? 1 : 0);
            chunks[c] = (start, width);
            start += width;
        }
        return chunks;
    }

    /// <summary>Steps per time block for a chunk of <paramref name="columns"/> columns.</summary>
    public static int BlockSteps(int columns) => Math.Max(1, BlockColumns / columns);

    /// <summary>
    /// The pieces of steps [<paramref name="s0"/>, <paramref name="s1"/>) cut at the time-block boundaries, last
    /// piece first: (start, end) of the piece and (start, end) of its time block, the block's end clipped to
    /// <paramref name="steps"/>.
    /// </summary>
    public static IEnumerable<(int Start, int End, int BlockStart, int BlockEnd)> PiecesBackward(int s0, int s1, int blockSteps, int steps)
    {
        for (var end = s1; end > s0;)
        {
            var blockStart = (end - 1) / blockSteps * blockSteps;
            var start = Math.Max(s0, blockStart);
            yield return (start, end, blockStart, Math.Min(blockStart + blockSteps, steps));
            end = start;
        }
    }

    /// <summary>Runs <paramref name="body"/>(first column, width, index) for every chunk, on up to <paramref name="threads"/> threads.</summary>
    public static void ForEachChunk((int Start, int Count)[] chunks, int threads, Action<int, int, int> body)
    {
        if (chunks.Length == 1 || threads <= 1)
        {
            for (var c = 0; c < chunks.Length; c++) body(chunks[c].Start, chunks[c].Count, c);
        }
        else
        {
            try
            {
                Parallel.For(0, chunks.Length, new ParallelOptions { MaxDegreeOfParallelism = threads }, c => body(chunks[c].Start, chunks[c].Count, c));
            }
            catch (AggregateException e) when (e.InnerExceptions.Count >= 1)
            {
                // The first chunk's exception, as one thread would have thrown it.
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            }
        }
    }
}
