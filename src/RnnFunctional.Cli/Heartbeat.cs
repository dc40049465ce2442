using System.Diagnostics;

namespace RnnFunctional.Cli;

/// <summary>
/// Plain progress lines for the long parts of a run (reading a large corpus, fitting the baseline, training,
/// evaluating): whoever does the work calls <see cref="Pulse"/> often, and a line saying what is being done is written
/// when <see cref="Interval"/> has passed since the last one. The lines are whole lines with no cursor movement, so a
/// run whose output goes to a file or a pipe is never silent for longer than about one interval.
/// </summary>
/// <param name="output">Where the lines go.</param>
/// <param name="interval">The least time between two lines.</param>
internal sealed class Heartbeat(TextWriter output, TimeSpan interval)
{
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private TimeSpan last = TimeSpan.Zero;

    /// <summary>The least time between two lines.</summary>
    public TimeSpan Interval => interval;

    /// <summary>Whether lines are written (false while a live progress bar owns the terminal).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Writes <paramref name="status"/>'s line if an interval has passed since the last line.</summary>
    /// <param name="status">What is being done, computed only when a line is due.</param>
    public void Pulse(Func<string> status)
    {
        if (!Enabled || clock.Elapsed - last < interval) return;
        output.WriteLine(status());
        last = clock.Elapsed;
    }

    /// <summary>Notes that a line was written by someone else (the interval restarts).</summary>
    public void Wrote() => last = clock.Elapsed;

    /// <summary>
    /// The items of <paramref name="source"/>, pulsing after each with <paramref name="status"/> told how many have
    /// been enumerated.
    /// </summary>
    public IEnumerable<T> Track<T>(IEnumerable<T> source, Func<long, string> status)
    {
        var done = 0L;
        foreach (var item in source)
        {
            yield return item;
            done++;
            Pulse(() => status(done));
        }
    }
}
