using System.Collections.Immutable;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

/// <summary>The <c>rnnf</c> program: dispatches to its commands and turns every failure into one line and an exit code.</summary>
public static class Cli
{
    /// <summary>Exit code of a bad input (options, corpus, model file, output path).</summary>
    public const int BadInput = 2;

    /// <summary>
    /// Exit code of a training that diverged (a non-finite loss or gradient, or a held-out loss far above the initial
    /// model's): nothing is written, an existing model file is left as it was.
    /// </summary>
    public const int Diverged = 3;

    /// <summary>Exit code of a data-parallel training whose cluster failed during the run (a worker refused the run, a step could not be computed).</summary>
    public const int ClusterFailed = 4;

    private static string Usage =>
        """
        Usage: rnnf <command> [options]

        Commands:
          train      train a character-level language model (default corpus: dinosaur names)
          sample     sample names from a trained model file
          gradcheck  check each cell's gradients against finite differences on a small random model
          export     write a trained model file as a safetensors file
          worker     compute pieces for a data-parallel 'rnnf train --workers N --cluster ADDR:PORT'

        Run 'rnnf <command> --help' for the options of a command, 'rnnf --version' for the version.

        Options are written '--name value', '--name=value' or '--name:value'; '--' ends them. An argument '@FILE' is
        replaced by the arguments in FILE (a response file: one or more per line, quotes keep spaces, '#' starts a
        comment), e.g. 'rnnf train @args.txt --epochs 5'. A misspelt option is reported with the nearest known one.
        'rnnf complete LINE [POSITION]' lists the words that can follow LINE at the cursor, for a shell's completion.

        Exit codes: 0 success; 1 a failed gradient check or an internal error; 2 bad input (an option, the corpus,
        a model file, an output path, a worker that failed to start or join); 3 a training that diverged (nothing written);
        4 a data-parallel training whose cluster failed during the run; 130 Ctrl-C; 143 SIGTERM.

        """;

    /// <summary>Runs the program on the process's console.</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <returns>0 on success, 1 when a gradient check fails or on an internal error, 2 on bad input, 3 when a training diverged.</returns>
    public static int Main(string[] args)
    {
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupted);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupted);
        return Run(args, Console.Out, Console.Error, interactive: null);
    }

    /// <summary>Exit code after Ctrl-C (SIGINT): 128 + 2, as shells report it.</summary>
    public const int InterruptedExitCode = 130;

    /// <summary>Exit code after SIGTERM: 128 + 15.</summary>
    public const int TerminatedExitCode = 143;

    /// <summary>
    /// Ctrl-C or SIGTERM: shows the cursor again (a live progress bar hides it), says so in one line on standard
    /// error and exits with 130 (143 for SIGTERM). A model or plot being written is abandoned: its temporary file is
    /// removed on exit, and if the process is killed outright, by the next write to the same path.
    /// </summary>
    private static void Interrupted(PosixSignalContext context)
    {
        context.Cancel = true;
        try
        {
            if (!Console.IsOutputRedirected) Console.Out.Write("\u001b[?25h\u001b[0m");
            Console.Out.Flush();
        }
        catch (IOException)
        {
            // The output is gone; there is nothing to restore.
        }
        var (name, code) = context.Signal == PosixSignal.SIGINT ? ("Ctrl-C", InterruptedExitCode) : ("SIGTERM", TerminatedExitCode);
        try
        {
            Console.Error.WriteLine($"{Environment.NewLine}rnnf: interrupted ({name})");
        }
        catch (IOException)
        {
            // Standard error is gone too.
        }
        Environment.Exit(code);
    }

    /// <summary>Runs the program with the given writers (for tests and embedding).</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <param name="output">Standard output.</param>
    /// <param name="error">Standard error.</param>
    /// <param name="interactive">Whether to draw live widgets; null to detect from the console.</param>
    /// <returns>The exit code.</returns>
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error, bool? interactive = false) =>
        Run(args, output, error, interactive, TimeSpan.FromSeconds(2));

    /// <summary>Runs the program with the given writers and the given least time between two progress lines.</summary>
    internal static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error, bool? interactive, TimeSpan progressInterval)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var guarded = new GuardedWriter(output);
        output = guarded;
        var terminal = new Terminal(output, error, interactive ?? Terminal.System().Interactive) { ProgressInterval = progressInterval };
        try
        {
            var rest = args.Skip(1).ToImmutableArray();
            var code = args.Count == 0 ? Help(terminal, 0)
                : args[0] switch
                {
                    "train" => TrainCommand.Run(rest, terminal),
                    "worker" => WorkerCommand.Run(rest, terminal),
                    "sample" => SampleCommand.Run(rest, terminal),
                    "gradcheck" => GradCheckCommand.Run(rest, terminal),
                    "export" => ExportCommand.Run(rest, terminal),
                    "complete" => Completion.Run(rest, terminal),
                    "--help" or "-h" or "help" => Help(terminal, 0),
                    "--version" or "version" => args.Count == 1 ? PrintVersion(terminal)
                        : Fail(terminal, null, Error.New($"--version takes no arguments but got '{args[1]}'")),
                    var other => Fail(terminal, null, Error.New($"unknown command '{other}' (expected train, sample, gradcheck, export or worker{
                        (CommandParser.Suggest(other, Commands) is { } near ? $"; did you mean {near}?" : "; see rnnf --help")})")),
                };
            // A command that reported its own output failure (train) has said so; any other gets one line here.
            return guarded.Failure is { } failure && code == 0
                ? Fail(terminal, args[0], Error.New($"cannot write to standard output: {failure.Message}"))
                : code;
        }
        catch (NonFiniteException e)
        {
            error.WriteLine($"rnnf: error: {e.Message.ReplaceLineEndings(" ")} (a diverging training: try a smaller --learning-rate, or --clip)");
            return args[0] == "train" ? Diverged : BadInput;
        }
        catch (Exception e)
        {
            error.WriteLine($"rnnf: internal error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
            return 1;
        }
    }

    /// <summary>
    /// Writes one line "rnnf [command]: error: …" (every problem, separated by semicolons) and returns
    /// <paramref name="code"/> (<see cref="BadInput"/> unless given).
    /// </summary>
    internal static int Fail(Terminal terminal, string? command, Error error, int code = BadInput)
    {
        IEnumerable<string> messages = error is ManyErrors many ? many.Errors.Map(e => e.Message) : new[] { error.Message };
        terminal.Error.WriteLine($"rnnf{(command is null ? "" : " " + command)}: error: {string.Join("; ", messages).ReplaceLineEndings(" ")}");
        return code;
    }

    /// <summary>
    /// The package version, as set once in Directory.Build.props (e.g. <c>0.1.0</c>): the assembly's informational
    /// version without the <c>+commit</c> suffix the SDK appends.
    /// </summary>
    public static string Version { get; } = ReadVersion();

    private static string ReadVersion()
    {
        var informational = typeof(Cli).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                            ?? typeof(Cli).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
        return informational.Split('+')[0];
    }

    /// <summary><c>rnnf --version</c>: the package version alone on one line, exit code 0.</summary>
    private static int PrintVersion(Terminal terminal)
    {
        terminal.Out.WriteLine(Version);
        return 0;
    }

    /// <summary>The names of the commands.</summary>
    private static readonly string[] Commands = ["train", "sample", "gradcheck", "export", "worker"];

    /// <summary>
    /// The help of a command (<c>rnnf COMMAND --help</c>), exit code 0: wrapped at the terminal's width when it is one,
    /// at 100 columns otherwise.
    /// </summary>
    internal static int Help(Terminal terminal, System.CommandLine.ParseResult parsed)
    {
        var width = 100;
        if (terminal.Interactive && !Console.IsOutputRedirected)
        {
            try
            {
                width = Math.Clamp(Console.WindowWidth, 60, 200);
            }
            catch (IOException)
            {
                // No window to measure: keep 100 columns.
            }
        }
        terminal.Out.Write(CommandParser.Help(parsed, width));
        return 0;
    }

    private static int Help(Terminal terminal, int code)
    {
        terminal.Out.Write(Usage);
        return code;
    }

    /// <summary>A number for messages, in the invariant culture.</summary>
    internal static string Show(double x, string format = "G4") => x.ToString(format, CultureInfo.InvariantCulture);
}
