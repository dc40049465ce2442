using System.Collections.Immutable;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

/// <summary>
/// <c>rnnf complete LINE [POSITION]</c>: the words that can follow the command line LINE (as a shell holds it, the
/// program's name first) at character POSITION (its end when omitted), one per line — the commands, a command's
/// options and the choices of an option's value (<c>--cell</c>, <c>--optimizer</c>, …), those that begin with the
/// word being typed. A shell's completion calls it; for bash (README.md):
/// <c>_rnnf() { mapfile -t COMPREPLY &lt; &lt;(rnnf complete "$COMP_LINE" "$COMP_POINT"); }; complete -F _rnnf rnnf</c>.
/// </summary>
internal static class Completion
{
    private static readonly ImmutableArray<(string Name, Func<Command> Command)> Commands =
    [
        ("train", () => TrainCommand.Command), ("sample", () => SampleCommand.Command),
        ("gradcheck", () => GradCheckCommand.Command), ("export", () => ExportCommand.Command), ("worker", () => WorkerCommand.Command),
    ];

    public static int Run(IReadOnlyList<string> args, Terminal terminal)
    {
        if (args.Count is < 1 or > 2)
            return Cli.Fail(terminal, "complete", Error.New($"expected LINE and an optional POSITION but got {args.Count} arguments"));
        var line = args[0];
        var position = line.Length;
        if (args.Count == 2 && !(int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out position) && position <= line.Length))
            return Cli.Fail(terminal, "complete", Error.New($"POSITION must be an integer in [0, {line.Length}] but got '{args[1]}'"));
        foreach (var word in Words(line[..position])) terminal.Out.WriteLine(word);
        return 0;
    }

    /// <summary>The completions of the text before the cursor.</summary>
    internal static IEnumerable<string> Words(string text)
    {
        var words = CommandLineParser.SplitCommandLine(text).Skip(1).ToList();    // the program's name first
        var typing = text.Length > 0 && !char.IsWhiteSpace(text[^1]);              // the last word is being typed
        if (words.Count == 0 || (words.Count == 1 && typing))
        {
            var prefix = words.Count == 1 ? words[0] : "";
            return Commands.Select(c => c.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal));
        }
        if (Commands.FirstOrDefault(c => c.Name == words[0]).Command is not { } command) return [];
        // The text from the command's name on, parsed as text so that the completion knows where the cursor stands
        // (after "--cell " it lists the cells, after "--ce" the options that begin so).
        var start = text.IndexOf(words[0], text.IndexOf(' ', StringComparison.Ordinal) is var space and >= 0 ? space : 0, StringComparison.Ordinal);
        var tail = text[start..];
        var result = command().Parse(tail, new ParserConfiguration { EnablePosixBundling = false });
        return result.GetCompletions(tail.Length).Select(c => c.Label).Where(l => l.StartsWith("--", StringComparison.Ordinal) || !l.StartsWith('-')).Distinct();
    }
}
