using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using LanguageExt;
using LanguageExt.Common;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RnnFunctional.Distributed;
using DistributedModel = RnnFunctional.Distributed.ModelSpec;

namespace RnnFunctional.Cli;

/// <summary>A failure of the cluster during a data-parallel run (a worker refused the run, or a step failed).</summary>
internal sealed class ClusterFailure(string message) : Exception(message);

/// <summary>
/// The coordinator of <c>rnnf train --workers N</c>: a silo listening on <c>--cluster</c> (a free loopback port when
/// not given), the N workers, and the training history computed by <see cref="Coordinator{T}"/>, bitwise that of one
/// process with the same pieces. On loopback this process is one of the N workers (its silo computes pieces too, with
/// no copy of the parameters or gradients between it and the coordinator) and starts the other N − 1 as
/// <c>rnnf worker</c> processes; with <c>--cluster</c> the N workers are started by hand and this process only
/// coordinates.
/// </summary>
internal sealed class DataParallel : IDisposable
{
    /// <summary>How long the workers have to join.</summary>
    public static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(60);

    private readonly IHost host;
    private readonly List<(Process Process, ConcurrentQueue<string> Errors, WorkerLog Log)> started = [];
    private readonly Terminal terminal;
    private readonly SiloDeath death;
    private readonly List<StepTimes> stepTimes = [];
    private RunSpec? run;
    private volatile bool ending;

    private DataParallel(IHost host, Terminal terminal, SiloDeath death) => (this.host, this.terminal, this.death) = (host, terminal, death);

    /// <summary>
    /// The file that keeps the standard output and error of local worker <paramref name="number"/> (from 1) of a run
    /// whose model is written to <paramref name="modelPath"/>: "MODEL.worker-K.log" next to the model.
    /// </summary>
    public static string WorkerLogPath(string modelPath, int number) =>
        Path.GetFullPath(modelPath) + $".worker-{number.ToString(System.Globalization.CultureInfo.InvariantCulture)}.log";

    /// <summary>The run the workers compute.</summary>
    public RunSpec Run => run ?? throw new InvalidOperationException("the cluster has not started");

    /// <summary>
    /// Starts the coordinator's silo and the workers and waits until N workers have joined; a failure is one line
    /// naming what failed (the address, a worker's own error, the time waited).
    /// </summary>
    public static Fin<DataParallel> Start(TrainOptions o, TrainingData data, string digest, Terminal terminal)
    {
        IPEndPoint listen;
        try
        {
            listen = o.Cluster ?? new IPEndPoint(IPAddress.Loopback, ClusterHosting.FreePort(IPAddress.Loopback));
        }
        catch (SocketException e)
        {
            return Fin<DataParallel>.Fail(Error.New($"cannot find a free loopback port for the coordinator: {e.Message}"));
        }
        // On loopback this process's silo computes pieces of the corpus it trains on (the one its digest was read from).
        var source = o.Cluster is null ? new CliRunSource(data.Corpus, digest) : null;
        var death = new SiloDeath();
        // This process's silo takes its share of the cores for its pieces, as each worker started here does; its own
        // evaluations between steps, when the workers wait, keep every core.
        var threads = WorkerThreads(Environment.GetEnvironmentVariable(ThreadsVariable), Environment.ProcessorCount, o.Workers);
        var cluster = new DataParallel(ClusterHosting.Build(listen, listen, o.ClusterId, source, death: death,
            threads: threads is null ? null : int.Parse(threads, System.Globalization.CultureInfo.InvariantCulture)), terminal, death);
        try
        {
            // The workers start while the coordinator's silo does: each tries to join for up to 20 s.
            if (o.Cluster is null)
                for (var k = 1; k < o.Workers; k++) cluster.Spawn(k, listen, o);
            cluster.host.StartAsync().GetAwaiter().GetResult();
            cluster.WaitForWorkers(o, listen, terminal);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            cluster.Dispose();
            return Fin<DataParallel>.Fail(Error.New(e is ClusterFailure ? e.Message : $"cannot start the coordinator on {listen}: {WorkerCommand.OneLine(e)}"));
        }
        cluster.run = new RunSpec($"{o.ClusterId}/{Guid.NewGuid():N}",
            new DistributedModel(o.Cell, data.Vocabulary.Size, o.Hidden, o.Layers),
            new DataSpec(o.Corpus is null ? CorpusSource.Embedded : Path.GetFullPath(o.Corpus), o.BatchSize, o.Epochs, o.Seed, digest, o.HeldOut),
            o.Pieces);
        return cluster;
    }

    /// <summary>Starts worker <paramref name="number"/> as a process of this program, watching this process.</summary>
    private void Spawn(int number, IPEndPoint cluster, TrainOptions o)
    {
        var apphost = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "rnnf.exe" : "rnnf");
        var start = File.Exists(apphost) ? new ProcessStartInfo(apphost) : new ProcessStartInfo(Environment.ProcessPath!) { ArgumentList = { typeof(Cli).Assembly.Location } };
        foreach (var a in (string[])["worker", "--cluster", cluster.ToString(), "--listen", $"{(cluster.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{cluster.Address}]" : cluster.Address)}:0",
                     "--cluster-id", o.ClusterId, "--parent", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)])
            start.ArgumentList.Add(a);
        if (o.Corpus is { } corpus) { start.ArgumentList.Add("--corpus"); start.ArgumentList.Add(Path.GetFullPath(corpus)); }
        (start.RedirectStandardError, start.RedirectStandardOutput, start.UseShellExecute) = (true, true, false);
        if (WorkerThreads(Environment.GetEnvironmentVariable(ThreadsVariable), Environment.ProcessorCount, o.Workers) is { } threads)
            start.Environment[ThreadsVariable] = threads;
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new ClusterFailure($"cannot start worker {number} ({start.FileName})");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ClusterFailure($"cannot start worker {number} ({start.FileName}): {e.Message}");
        }
        var errors = new ConcurrentQueue<string>();
        var log = WorkerLog.Open(WorkerLogPath(o.ModelPath, number), start);
        process.ErrorDataReceived += (_, line) =>
        {
            if (line.Data is not { } text) return;
            log.Line("stderr", text);
            if (text.Length > 0) errors.Enqueue(text);
        };
        process.OutputDataReceived += (_, line) => { if (line.Data is { } text) log.Line("stdout", text); };
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => { if (!ending) log.Line("exit", $"code {process.ExitCode}"); };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        started.Add((process, errors, log));
    }

    /// <summary>The environment variable that sets the kernels' threads of a process.</summary>
    public const string ThreadsVariable = "RNNFUNCTIONAL_THREADS";

    /// <summary>
    /// The kernels' threads of each of <paramref name="workers"/> workers started on a machine of
    /// <paramref name="processors"/> cores: the cores shared out among them, at least one each, so that the workers'
    /// kernels do not ask for more threads than the machine has; null when <c>RNNFUNCTIONAL_THREADS</c> is set
    /// (<paramref name="inherited"/> not empty), which the workers then inherit.
    /// </summary>
    public static string? WorkerThreads(string? inherited, int processors, int workers)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(processors, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        return string.IsNullOrEmpty(inherited) ? Math.Max(1, processors / workers).ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Waits until N silos hosting piece workers are in the coordinator's cluster manifest.</summary>
    private void WaitForWorkers(TrainOptions o, IPEndPoint listen, Terminal terminal)
    {
        var manifest = host.Services.GetRequiredService<IClusterManifestProvider>();
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (death.Declared.IsCompleted) throw DeclaredDead("while waiting for the workers");
            var joined = manifest.Current.Silos.Count(s => s.Value.Grains.Keys.Any(g => g.ToString() == PieceWorkerGrain.GrainTypeName));
            if (joined >= o.Workers) break;
            for (var k = 0; k < started.Count; k++)
                if (started[k].Process.HasExited)
                {
                    started[k].Process.WaitForExit();
                    var said = started[k].Errors.LastOrDefault(l => l.StartsWith("rnnf worker:", StringComparison.Ordinal)) ?? started[k].Errors.LastOrDefault() ?? "no message";
                    throw new ClusterFailure($"worker {k + 1} exited with code {started[k].Process.ExitCode} before joining: {said}");
                }
            if (clock.Elapsed > JoinTimeout)
                throw new ClusterFailure($"{joined} of --workers {o.Workers} joined cluster '{o.ClusterId}' at {listen} within {ClusterHosting.Seconds(JoinTimeout)}"
                    + (o.Cluster is null ? "" : $" (start them with: rnnf worker --cluster {listen} --cluster-id {o.ClusterId} --corpus FILE)"));
            terminal.Heartbeat.Pulse(() => $"waiting for workers: {joined} of {o.Workers} joined cluster '{o.ClusterId}' at {listen}");
            Thread.Sleep(100);
        }
    }

    /// <summary>
    /// The updates after <paramref name="from"/> up to update <paramref name="steps"/>, computed by the workers, each
    /// yielded when applied; stops after a non-finite step. A step that fails on the cluster throws <see cref="ClusterFailure"/>. A
    /// worker that refused the run (another corpus) while others computed its block is named on standard error once.
    /// </summary>
    public IEnumerable<TrainingStep<T>> History<T>(Optimizer<T> optimizer, Clipping clipping, TrainingCheckpoint<T> from, int steps) where T : IParameterTree<T>
    {
        var coordinator = new Coordinator<T>(host.Services.GetRequiredService<IGrainFactory>(), Run, optimizer, clipping, from.State, from.Step);
        var told = new System.Collections.Generic.HashSet<string>(StringComparer.Ordinal);
        for (var s = from.Step; s < steps; s++)
        {
            TrainingStep<T> step;
            try
            {
                var taking = coordinator.StepAsync();
                if (Task.WaitAny(taking, death.Declared) == 1 && !taking.IsCompleted) throw DeclaredDead($"during step {s + 1}");
                step = taking.GetAwaiter().GetResult();
            }
            catch (ClusterFailure)
            {
                throw;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new ClusterFailure($"step {s + 1} failed on the cluster: {WorkerCommand.OneLine(e)}");
            }
            stepTimes.Add(coordinator.LastStep!);
            foreach (var (silo, reason) in coordinator.Counters.Refusals)
                if (told.Add(silo)) terminal.Error.WriteLine($"rnnf train: the worker at {silo} refused the run and is left out: {reason}");
            yield return step;
            if (!step.IsFinite) yield break;
        }
    }

    /// <summary>Where the time of each step that <see cref="History{T}"/> has taken went.</summary>
    public IReadOnlyList<StepTimes> StepTimes => stepTimes;

    /// <summary>
    /// The failure of a run whose coordinator's silo the cluster declared dead (its workers missed its probes, on a
    /// machine too busy to answer them): the coordinator's silo holds the membership, so it cannot join again.
    /// </summary>
    private ClusterFailure DeclaredDead(string when) =>
        new($"the cluster declared the coordinator's silo dead {when} ({death.Declared.Result}); its probes went unanswered, the machine may be too busy");

    /// <summary>
    /// Ends the workers started here and stops the coordinator's silo. A worker that had exited before with a code
    /// other than 0 is named on standard error with its code and its log file.
    /// </summary>
    public void Dispose()
    {
        ending = true;
        for (var k = 0; k < started.Count; k++)
            if (started[k].Process is { HasExited: true, ExitCode: not 0 } gone)
                terminal.Error.WriteLine($"worker {k + 1} exited with code {gone.ExitCode} during the run; its output is in {started[k].Log.Path}");
        foreach (var (process, _, log) in started)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    if (process.WaitForExit(5000)) process.WaitForExit();
                    log.Line("exit", $"code {(process.HasExited ? process.ExitCode.ToString(System.Globalization.CultureInfo.InvariantCulture) : "unknown")} (ended by rnnf train at the end of the run)");
                }
            }
            catch (InvalidOperationException)
            {
                // It has ended already.
            }
            process.Dispose();
            log.Dispose();
        }
        try
        {
            host.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(2)).Token).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is OperationCanceledException or OrleansException or TimeoutException)
        {
            // Its workers are gone; there is nobody to say goodbye to.
        }
        host.Dispose();
    }
}
