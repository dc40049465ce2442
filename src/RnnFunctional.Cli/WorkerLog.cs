using System.Diagnostics;
using System.Globalization;

namespace RnnFunctional.Cli;

/// <summary>
/// The log file of a worker process started by <c>rnnf train --workers N</c>: every line of its standard output and
/// error, and its exit code, each line prefixed with the UTC time and the stream ("stderr", "stdout", "exit"). It is
/// written as the lines arrive (flushed at each), so it outlives a worker that the runtime aborts. A log that cannot be
/// opened (an unwritable directory) keeps nothing and does not stop the run.
/// </summary>
internal sealed class WorkerLog : IDisposable
{
    private readonly Lock gate = new();
    private StreamWriter? writer;

    private WorkerLog(string path, StreamWriter? writer) => (Path, this.writer) = (path, writer);

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Creates (or replaces) the log at <paramref name="path"/> and writes the worker's command line first.</summary>
    public static WorkerLog Open(string path, ProcessStartInfo start)
    {
        StreamWriter? writer;
        try
        {
            if (System.IO.Path.GetDirectoryName(path) is { Length: > 0 } directory) Directory.CreateDirectory(directory);
            writer = new StreamWriter(path, append: false) { AutoFlush = true };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            writer = null;
        }
        var log = new WorkerLog(path, writer);
        log.Line("start", $"{start.FileName} {string.Join(' ', start.ArgumentList)}");
        return log;
    }

    /// <summary>Appends one line of <paramref name="stream"/>.</summary>
    public void Line(string stream, string text)
    {
        lock (gate)
        {
            try
            {
                writer?.WriteLine($"{DateTime.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} {stream} {text}");
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                writer = null;
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (gate)
        {
            writer?.Dispose();
            writer = null;
        }
    }
}
