using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace RnnFunctional.Cli.Tests;

/// <summary>
/// A process of the rnnf program (the apphost next to the tests) whose standard output and error are read line by
/// line as they come, so that a test can wait for a line (observable progress) rather than for a fixed time.
/// Disposing it kills it and its children if it is still running.
/// </summary>
public sealed class RnnfProcess : IDisposable
{
    private readonly Process process;
    private readonly List<string> output = [];
    private readonly List<string> error = [];

    private RnnfProcess(Process process) => this.process = process;

    /// <summary>Starts <c>rnnf <paramref name="args"/></c>.</summary>
    public static RnnfProcess Start(params string[] args)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "rnnf"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        var process = new Process { StartInfo = start };
        var started = new RnnfProcess(process);
        process.OutputDataReceived += (_, line) => { if (line.Data is { } text) lock (started.output) started.output.Add(text); };
        process.ErrorDataReceived += (_, line) => { if (line.Data is { } text) lock (started.error) started.error.Add(text); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return started;
    }

    /// <summary>The process id.</summary>
    public int Id => process.Id;

    /// <summary>Whether the process has ended.</summary>
    public bool HasExited => process.HasExited;

    /// <summary>The lines of standard output read so far.</summary>
    public IReadOnlyList<string> Output { get { lock (output) return [.. output]; } }

    /// <summary>The lines of standard error read so far.</summary>
    public IReadOnlyList<string> Error { get { lock (error) return [.. error]; } }

    /// <summary>
    /// The index of the first line of standard output from line <paramref name="from"/> on that satisfies
    /// <paramref name="match"/>, waiting for it up to <paramref name="timeout"/>; fails the test if none comes.
    /// </summary>
    public Task<int> WaitForOutput(Func<string, bool> match, TimeSpan timeout, int from = 0) => WaitFor(() => Output, match, timeout, from);

    /// <summary>As <see cref="WaitForOutput"/>, on standard error.</summary>
    public Task<int> WaitForError(Func<string, bool> match, TimeSpan timeout, int from = 0) => WaitFor(() => Error, match, timeout, from);

    private async Task<int> WaitFor(Func<IReadOnlyList<string>> stream, Func<string, bool> match, TimeSpan timeout, int from)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            // Whether it had ended is read before the lines, and its streams are read to their end, so that the
            // lines read include its last ones.
            var ended = process.HasExited;
            if (ended) process.WaitForExit();
            var lines = stream();
            for (var k = from; k < lines.Count; k++)
                if (match(lines[k])) return k;
            Assert.False(ended, $"rnnf {string.Join(' ', process.StartInfo.ArgumentList)} ended before the line awaited; it wrote:\n{Written()}");
            Assert.True(clock.Elapsed < timeout, $"no line awaited within {timeout.TotalSeconds} s; rnnf wrote:\n{Written()}");
            await Task.Delay(50);
        }
    }

    private string Written() => string.Join('\n', Output) + "\n" + string.Join('\n', Error);

    /// <summary>The exit code, once the process has ended and its streams are read; fails the test if it runs longer than <paramref name="timeout"/>.</summary>
    public async Task<int> WaitForExit(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"rnnf {string.Join(' ', process.StartInfo.ArgumentList)} still ran after {timeout.TotalSeconds} s");
        }
        return process.ExitCode;
    }

    /// <summary>Kills the process and its children if it still runs.</summary>
    public void Dispose()
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // It has ended already.
        }
        process.Dispose();
    }
}

/// <summary>What the operating system says about processes and their sockets (Linux: read from /proc).</summary>
public static class ProcessTable
{
    /// <summary>A TCP port of <paramref name="address"/> free at the moment of asking.</summary>
    public static int FreePort(IPAddress address)
    {
        using var listener = new TcpListener(address, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The processes whose parent is <paramref name="pid"/>.</summary>
    public static List<int> Children(int pid) =>
        [.. Directory.GetDirectories("/proc").Select(Path.GetFileName).Where(d => d!.All(char.IsAsciiDigit)).Select(d => int.Parse(d!, CultureInfo.InvariantCulture))
            .Where(p => ParentOf(p) == pid)];

    /// <summary>The parent of process <paramref name="pid"/>, or null when it has gone.</summary>
    public static int? ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The arguments of process <paramref name="pid"/> (empty when it has gone).</summary>
    public static string[] CommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (IOException)
        {
            return [];
        }
    }

    /// <summary>Whether process <paramref name="pid"/> runs (exists and is not a zombie).</summary>
    public static bool Alive(int pid)
    {
        try
        {
            return !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// The TCP endpoints process <paramref name="pid"/> listens on: the sockets among its open files
    /// (<c>/proc/PID/fd</c>) that <c>/proc/PID/net/tcp</c> and <c>tcp6</c> list in the LISTEN state, with the address
    /// each is bound to (0.0.0.0 or :: for every address).
    /// </summary>
    public static HashSet<IPEndPoint> Listening(int pid)
    {
        var sockets = new HashSet<string>();
        foreach (var fd in Directory.GetFiles($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal)) sockets.Add(target[8..^1]);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Closed while listed.
            }
        }
        var listening = new HashSet<IPEndPoint>();
        foreach (var table in (string[])["tcp", "tcp6"])
            foreach (var line in File.ReadAllLines($"/proc/{pid}/net/{table}").Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                const string Listen = "0A";
                if (fields[3] == Listen && sockets.Contains(fields[9])) listening.Add(EndpointOf(fields[1]));
            }
        return listening;
    }

    /// <summary>"ADDRESS:PORT" of /proc/net/tcp: the address as 32-bit words in the machine's byte order, the port big-endian, both in hex.</summary>
    private static IPEndPoint EndpointOf(string field)
    {
        var (address, port) = (field[..field.IndexOf(':', StringComparison.Ordinal)], field[(field.IndexOf(':', StringComparison.Ordinal) + 1)..]);
        var bytes = Enumerable.Range(0, address.Length / 8)
            .SelectMany(w => BitConverter.GetBytes(uint.Parse(address.AsSpan(8 * w, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture))).ToArray();
        return new IPEndPoint(new IPAddress(bytes), int.Parse(port, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
    }
}

/// <summary>
/// The tests that run clusters of rnnf processes: one collection, so that they run one after the other rather than
/// side by side on the machine's cores, and the small corpus they train on.
/// </summary>
public static class ClusterProcesses
{
    /// <summary>The name of the collection.</summary>
    public const string Name = "cluster processes";

    /// <summary>Fourteen names: with the default tenth held out, 13 items, so 3 batches of 6 per epoch.</summary>
    public static readonly string[] Names =
    [
        "Aachenosaurus", "Abelisaurus", "Brachiosaurus", "Camarasaurus", "Diplodocus", "Edmontosaurus", "Gallimimus",
        "Iguanodon", "Kentrosaurus", "Maiasaura", "Ornithomimus", "Pachycephalosaurus", "Stegosaurus", "Triceratops",
    ];

    /// <summary>The worker processes of cluster <paramref name="clusterId"/> that this process started (through an in-process <c>rnnf train --workers N</c>).</summary>
    public static List<int> WorkersOf(string clusterId) =>
        [.. ProcessTable.Children(Environment.ProcessId).Where(p => ProcessTable.CommandLine(p) is var args && args.Contains("worker") && args.Contains(clusterId))];
}

/// <summary>
/// Standard output that holds the program at the first line satisfying a condition until <see cref="Resume"/> is
/// called: the writing thread waits inside <see cref="WriteLine(string?)"/>, so a run is stopped at a known point
/// (between two steps, at a progress line) for as long as the test needs. It waits five minutes at most, so that a
/// test that fails before resuming cannot hang the run for ever.
/// </summary>
/// <param name="at">Which line to stop at.</param>
public sealed class PausingWriter(Func<string, bool> at) : StringWriter(System.Globalization.CultureInfo.InvariantCulture)
{
    private readonly TaskCompletionSource paused = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ManualResetEventSlim resumed = new();

    /// <summary>Completed when the program has written the line and waits.</summary>
    public Task Paused => paused.Task;

    /// <summary>Lets the program go on.</summary>
    public void Resume() => resumed.Set();

    /// <inheritdoc />
    public override void WriteLine(string? value)
    {
        base.WriteLine(value);
        if (value is null || paused.Task.IsCompleted || !at(value)) return;
        paused.TrySetResult();
        resumed.Wait(TimeSpan.FromMinutes(5));
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) resumed.Dispose();
        base.Dispose(disposing);
    }
}
