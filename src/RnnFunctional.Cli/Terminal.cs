using Spectre.Console;

namespace RnnFunctional.Cli;

/// <summary>
/// Where the program writes: plain writers for output and errors, and a Spectre console on the output writer.
/// When the output is not an interactive terminal (redirected, CI, tests) live widgets are replaced by plain lines.
/// </summary>
/// <param name="Out">Standard output.</param>
/// <param name="Error">Standard error.</param>
/// <param name="Interactive">True for a terminal that can redraw a live progress bar.</param>
internal sealed record Terminal(TextWriter Out, TextWriter Error, bool Interactive)
{
    /// <summary>The Spectre console writing to <see cref="Out"/>: colours and redraws only when interactive.</summary>
    public IAnsiConsole Ansi { get; } = AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(Out),
        Ansi = Interactive ? AnsiSupport.Detect : AnsiSupport.No,
        ColorSystem = Interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        Interactive = Interactive ? InteractionSupport.Yes : InteractionSupport.No,
    });

    /// <summary>The least time between two progress lines of <see cref="Heartbeat"/> (2 seconds unless set).</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(2);

    private Heartbeat? heartbeat;

    /// <summary>The plain progress lines of the long parts of a run, written to <see cref="Out"/>.</summary>
    public Heartbeat Heartbeat => heartbeat ??= new Heartbeat(Out, ProgressInterval);

    /// <summary>The process's console: interactive when standard output is a terminal and CI is not set.</summary>
    public static Terminal System() =>
        new(Console.Out, Console.Error,
            !Console.IsOutputRedirected
            && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"))
            && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb"));
}
