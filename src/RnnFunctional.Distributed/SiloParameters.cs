using Microsoft.Extensions.DependencyInjection;

namespace RnnFunctional.Distributed;

/// <summary>
/// The parameters one silo holds for its piece workers: the latest version of each run, shared by every
/// <see cref="PieceWorkerGrain"/> of the silo, so that a step's parameters reach a silo once however many of its pieces
/// it computes. Registered by <see cref="DistributedHosting.AddPieceWorkers"/>. The silo's piece workers also take
/// turns here to compute (<see cref="OneAtATime{TResult}"/>): one piece at a time, each with the kernels' threads (<see cref="Threads"/>),
/// rather than all of a silo's pieces at once on the thread pool that the silo's messaging also runs on.
/// </summary>
public sealed class SiloParameters
{
    private readonly Lock gate = new();
    private readonly SemaphoreSlim turns;
    private readonly Dictionary<string, Held> held = [];
    private readonly Dictionary<string, object> spares = [];
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

    /// <summary>
    /// The kernels' threads of each computation run by <see cref="OneAtATime{TResult}"/>, at least 1 (null, the default:
    /// the process's, <c>RNNFUNCTIONAL_THREADS</c> or every core), so that a silo sharing its process with other work
    /// takes only its share of the cores. The bits do not depend on it.
    /// </summary>
    public int? Threads
    {
        get;
        init => field = value is null or >= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(Threads), value, $"expected the kernels' threads to be at least 1 but got {value}");
    }

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
        try { return Threads is { } threads ? RnnFunctional.Kernels.Summation.WithThreads(threads, compute) : compute(); }
        finally { turns.Release(); }
    }

    /// <summary>
    /// Keeps version <paramref name="version"/> of run <paramref name="runId"/>'s parameters in place of the run's
    /// previous ones. The previous payload's array goes back to <see cref="PayloadBuffers.Received"/> when it was read
    /// off the wire and never handed out by <see cref="Get"/>: then only <see cref="Lease"/> has read it, under this
    /// object's lock, and nothing reads it again. The previous version's tree, once no computation holds it, is kept
    /// to be overwritten by the next version's values (<see cref="Lease"/>).
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
            if (previous is not null)
            {
                previous.Replaced = true;
                if (previous.Users == 0) Spare(runId, previous);
            }
            held[runId] = new Held(version, values);
            (signal, changed) = (changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }
        signal.TrySetResult();
    }

    /// <summary>
    /// Version <paramref name="version"/> of the run's parameters, waiting up to <paramref name="wait"/> for it to
    /// arrive (with another piece's request); null when it has not. The payload is the caller's to keep: the silo never
    /// hands its array back for reuse.
    /// </summary>
    /// <param name="runId">The run.</param>
    /// <param name="version">The version wanted.</param>
    /// <param name="wait">How long to wait.</param>
    public async Task<FlatTree?> Get(string runId, int version, TimeSpan wait) =>
        (FlatTree?)await Use(runId, version, wait, held => { held.HandedOut = true; return held.Values; });

    /// <summary>
    /// Version <paramref name="version"/> of the run's parameters read by <paramref name="read"/> into a model's
    /// parameter tree once for all the silo's pieces of that version, and leased to the caller until
    /// <see cref="Release"/>; waits up to <paramref name="wait"/> for the version to arrive, null when it has not.
    /// <paramref name="read"/> gets the payload and a tree of an earlier version of the run that no computation holds any
    /// more (or null), which it may overwrite rather than build a new one: a leased tree is never overwritten, so a
    /// computation's parameters do not change under it. It runs under this object's lock and must not keep the payload.
    /// </summary>
    /// <param name="runId">The run.</param>
    /// <param name="version">The version wanted.</param>
    /// <param name="wait">How long to wait.</param>
    /// <param name="read">(payload, a spare tree or null) → the tree the pieces use (not null).</param>
    internal async Task<Held?> Lease(string runId, int version, TimeSpan wait, Func<FlatTree, object?, object> read) =>
        (Held?)await Use(runId, version, wait, held =>
        {
            held.Read ??= read(held.Values, spares.Remove(runId, out var spare) ? spare : null);
            held.Users++;
            return held;
        });

    /// <summary>Ends a lease of <see cref="Lease"/>: once a replaced version's tree is held by no computation, it is the run's spare.</summary>
    /// <param name="runId">The run.</param>
    /// <param name="lease">The lease.</param>
    internal void Release(string runId, Held lease)
    {
        lock (gate)
        {
            if (lease.Users <= 0) throw new InvalidOperationException($"expected a lease of version {lease.Version} of run {runId} to release but it has none");
            if (--lease.Users == 0 && lease.Replaced) Spare(runId, lease);
        }
    }

    /// <summary>Keeps the tree of a replaced version that no computation holds as the run's spare (called under the lock).</summary>
    private void Spare(string runId, Held replaced)
    {
        if (replaced.Read is not { } tree || replaced.Spared) return;
        replaced.Spared = true;
        spares[runId] = tree;
    }

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

    /// <summary>
    /// A version held: its payload, the tree <see cref="Lease"/> read it into and the computations holding that tree,
    /// whether <see cref="Get"/> handed the payload out, and whether a later version has replaced it.
    /// </summary>
    internal sealed class Held(int version, FlatTree values)
    {
        public int Version { get; } = version;

        public FlatTree Values { get; } = values;

        /// <summary>The tree the pieces use, once read.</summary>
        public object? Read { get; set; }

        public int Users { get; set; }

        public bool HandedOut { get; set; }

        public bool Replaced { get; set; }

        public bool Spared { get; set; }
    }
}

/// <summary>Hosting of piece workers in a silo.</summary>
public static class DistributedHosting
{
    /// <summary>Registers what <see cref="PieceWorkerGrain"/> needs in a silo: the silo's <see cref="SiloParameters"/> and the director of <see cref="PiecePlacement"/>.</summary>
    /// <param name="silo">The silo being built.</param>
    /// <param name="source">Where its piece workers read a run's batches (default: <see cref="FileRunSource"/>).</param>
    /// <param name="piecesAtOnce">How many pieces the silo computes at once (<see cref="SiloParameters.OneAtATime{TResult}"/>), at least 1.</param>
    /// <param name="threads">The kernels' threads of each piece (<see cref="SiloParameters.Threads"/>; default: the process's).</param>
    public static ISiloBuilder AddPieceWorkers(this ISiloBuilder silo, IRunSource? source = null, int piecesAtOnce = 1, int? threads = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        var parameters = new SiloParameters(piecesAtOnce) { Threads = threads };
        silo.Services.AddSingleton(parameters);
        silo.Services.AddSingleton<IRunSource>(source ?? new FileRunSource());
        silo.Services.AddPiecePlacement();
        return silo;
    }
}
