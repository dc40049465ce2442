using Microsoft.Extensions.DependencyInjection;

namespace RnnFunctional.Distributed;

/// <summary>
/// The parameters one silo holds for its piece workers: the latest version of each run, shared by every
/// <see cref="PieceWorkerGrain"/> of the silo, so that a step's parameters reach a silo once however many of its pieces
/// it computes. Registered by <see cref="DistributedHosting.AddPieceWorkers"/>.
/// </summary>
public sealed class SiloParameters
{
    private readonly Lock gate = new();
    private readonly Dictionary<string, (int Version, FlatTree Values)> held = [];
    private TaskCompletionSource changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Keeps version <paramref name="version"/> of run <paramref name="runId"/>'s parameters in place of the run's previous ones.</summary>
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
            held[runId] = (version, values);
            (signal, changed) = (changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }
        signal.TrySetResult();
    }

    /// <summary>
    /// Version <paramref name="version"/> of the run's parameters, waiting up to <paramref name="wait"/> for it to
    /// arrive (with another piece's request); null when it has not.
    /// </summary>
    /// <param name="runId">The run.</param>
    /// <param name="version">The version wanted.</param>
    /// <param name="wait">How long to wait.</param>
    public async Task<FlatTree?> Get(string runId, int version, TimeSpan wait)
    {
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            Task next;
            lock (gate)
            {
                if (held.TryGetValue(runId, out var current) && current.Version == version) return current.Values;
                next = changed.Task;
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || await Task.WhenAny(next, Task.Delay(left)) != next) return null;
        }
    }
}

/// <summary>Hosting of piece workers in a silo.</summary>
public static class DistributedHosting
{
    /// <summary>Registers what <see cref="PieceWorkerGrain"/> needs in a silo: the silo's <see cref="SiloParameters"/> and the director of <see cref="PiecePlacement"/>.</summary>
    /// <param name="silo">The silo being built.</param>
    /// <param name="source">Where its piece workers read a run's batches (default: <see cref="FileRunSource"/>).</param>
    public static ISiloBuilder AddPieceWorkers(this ISiloBuilder silo, IRunSource? source = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        silo.Services.AddSingleton<SiloParameters>();
        silo.Services.AddSingleton<IRunSource>(source ?? new FileRunSource());
        silo.Services.AddPiecePlacement();
        return silo;
    }
}
