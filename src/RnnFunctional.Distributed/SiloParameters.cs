using Microsoft.Extensions.DependencyInjection;

namespace RnnFunctional.Distributed;

/// <summary>
/// The parameters one silo holds for its piece workers: the latest version of each run, shared by every
/// <see cref="PieceWorkerGrain"/> of the silo, so that a step's parameters reach a silo once however many of its pieces
/// it computes. Registered by <see cref="DistributedHosting.AddPieceWorkers"/>. The silo's piece workers also take
/// turns here to compute (<see cref="OneAtATime{TResult}"/>): one piece at a time, each with the kernels' own threads,
/// rather than all of a silo's pieces at once on the thread pool that the silo's messaging also runs on.
/// </summary>
public sealed class SiloParameters
{
    private readonly Lock gate = new();
    private readonly SemaphoreSlim turns;
    private readonly Dictionary<string, Held> held = [];
    private TaskCompletionSource changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The parameters of a silo whose piece workers compute one piece at a time.</summary>
    public SiloParameters()
        : this(1)
    {
    }

    /// <summary>The parameters of a silo whose piece workers compute up to <paramref name="piecesAtOnce"/> pieces at a time.</summary>
    /// <param name="piecesAtOnce">How many pieces the silo computes at once, at least 1.</param>
    public SiloParameters(int piecesAtOnce)
    {
        if (piecesAtOnce < 1)
            throw new ArgumentOutOfRangeException(nameof(piecesAtOnce), piecesAtOnce, $"expected the number of pieces computed at once to be at least 1 but got {piecesAtOnce}");
        (PiecesAtOnce, turns) = (piecesAtOnce, new SemaphoreSlim(piecesAtOnce, piecesAtOnce));
    }

    /// <summary>How many pieces the silo computes at once.</summary>
    public int PiecesAtOnce { get; }

    /// <summary>The arrays of the silo's partial sums, reused from block to block (<see cref="PartialSum"/>).</summary>
    internal PayloadBuffers Buffers { get; } = new();

    /// <summary>
    /// <paramref name="compute"/>'s result, computed when fewer than <see cref="PiecesAtOnce"/> computations of the
    /// silo are under way (waiting for its turn without holding a thread).
    /// </summary>
    /// <param name="compute">The computation of a piece.</param>
    public async Task<TResult> OneAtATime<TResult>(Func<TResult> compute)
    {
        ArgumentNullException.ThrowIfNull(compute);
        await turns.WaitAsync();
        try { return compute(); }
        finally { turns.Release(); }
    }

    /// <summary>
    /// Keeps version <paramref name="version"/> of run <paramref name="runId"/>'s parameters in place of the run's
    /// previous ones. The previous payload's array goes back to <see cref="PayloadBuffers.Received"/> when it was read
    /// off the wire and never handed out by <see cref="Get"/>: then only <see cref="Read"/> has read it, under this
    /// object's lock, and nothing reads it again.
    /// </summary>
    /// <param name="runId">The run.</param>
    /// <param name="version">Number of updates applied to the parameters.</param>
    /// <param name="values">The parameters.</param>
    public void Set(string runId, int version, FlatTree values)
    {
        ArgumentNullException.ThrowIfNull(runId);
        ArgumentNullException.ThrowIfNull(values);
        TaskCompletionSource signal;
        lock (gate)
        {
            if (held.TryGetValue(runId, out var previous) && previous is { HandedOut: false, Values: { FromWire: true, Bytes: { } array } }
                && !ReferenceEquals(array, values.Bytes))
                PayloadBuffers.Received.Return(array);
            held[runId] = new Held(version, values);
            (signal, changed) = (changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }
        signal.TrySetResult();
    }

    /// <summary>
    /// Version <paramref name="version"/> of the run's parameters, waiting up to <paramref name="wait"/> for it to
    /// arrive (with another piece's request); null when it has not. The payload is the caller's to keep: its array is
    /// never handed back for reuse.
    /// </summary>
    /// <param name="runId">The run.</param>
    /// <param name="version">The version wanted.</param>
    /// <param name="wait">How long to wait.</param>
    public async Task<FlatTree?> Get(string runId, int version, TimeSpan wait) =>
        (FlatTree?)await Use(runId, version, wait, held => { held.HandedOut = true; return held.Values; });

    /// <summary>
    /// Version <paramref name="version"/> of the run's parameters read by <paramref name="read"/> (e.g. into a model's
    /// parameter tree) once for all the silo's pieces of that version, waiting up to <paramref name="wait"/> for it to
    /// arrive; null when it has not. <paramref name="read"/> runs under this object's lock and must not keep the payload.
    /// </summary>
    /// <param name="runId">The run.</param>
    /// <param name="version">The version wanted.</param>
    /// <param name="wait">How long to wait.</param>
    /// <param name="read">The payload → what the pieces use (not null).</param>
    internal async Task<object?> Read(string runId, int version, TimeSpan wait, Func<FlatTree, object> read) =>
        await Use(runId, version, wait, held => held.Read ??= read(held.Values));

    private async Task<object?> Use(string runId, int version, TimeSpan wait, Func<Held, object> use)
    {
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            Task next;
            lock (gate)
            {
                if (held.TryGetValue(runId, out var current) && current.Version == version) return use(current);
                next = changed.Task;
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || await Task.WhenAny(next, Task.Delay(left)) != next) return null;
        }
    }

    /// <summary>A version held: its payload, what <see cref="Read"/> made of it, and whether <see cref="Get"/> handed the payload out.</summary>
    private sealed class Held(int version, FlatTree values)
    {
        public int Version { get; } = version;

        public FlatTree Values { get; } = values;

        public object? Read { get; set; }

        public bool HandedOut { get; set; }
    }
}

/// <summary>Hosting of piece workers in a silo.</summary>
public static class DistributedHosting
{
    /// <summary>Registers what <see cref="PieceWorkerGrain"/> needs in a silo: the silo's <see cref="SiloParameters"/> and the director of <see cref="PiecePlacement"/>.</summary>
    /// <param name="silo">The silo being built.</param>
    /// <param name="source">Where its piece workers read a run's batches (default: <see cref="FileRunSource"/>).</param>
    /// <param name="piecesAtOnce">How many pieces the silo computes at once (<see cref="SiloParameters.OneAtATime{TResult}"/>), at least 1.</param>
    public static ISiloBuilder AddPieceWorkers(this ISiloBuilder silo, IRunSource? source = null, int piecesAtOnce = 1)
    {
        ArgumentNullException.ThrowIfNull(silo);
        var parameters = new SiloParameters(piecesAtOnce);
        silo.Services.AddSingleton(parameters);
        silo.Services.AddSingleton<IRunSource>(source ?? new FileRunSource());
        silo.Services.AddPiecePlacement();
        return silo;
    }
}
