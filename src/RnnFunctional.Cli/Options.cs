using System.Globalization;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;

/// <summary>
/// The options of rnnf's commands as System.CommandLine options. Each option parses its one value with a parser that
/// checks the range and, instead of throwing, records a one-line problem naming the option, what was expected and what
/// was given (<c>--hidden must be an integer in [1, 1024] but got '0'</c>); the parse then goes on, so that every
/// problem of a command line is reported at once.
/// </summary>
internal static class Options
{
    /// <summary>An integer in [min, max].</summary>
    public static Option<int> Int(string name, string placeholder, string description, int fallback, int min, int max) =>
        Make(name, placeholder, description, fallback, (string text, out int v) =>
            int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out v) && v >= min && v <= max,
            string.Create(CultureInfo.InvariantCulture, $"an integer in [{min}, {max}]"));

    /// <summary>A finite number in [min, max] (or (min, max] when <paramref name="exclusiveMin"/>).</summary>
    public static Option<double> Number(string name, string placeholder, string description, double fallback, double min, double max, bool exclusiveMin = false) =>
        Make(name, placeholder, description, fallback, (string text, out double v) =>
            double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out v) && double.IsFinite(v)
            && (exclusiveMin ? v > min : v >= min) && v <= max,
            string.Create(CultureInfo.InvariantCulture, $"a number in {(exclusiveMin ? "(" : "[")}{min}, {max}]"));

    /// <summary>
    /// A finite number in [min, max], or null when the option is not given: for an option whose default depends on
    /// other options (the help shows no fixed default; the description states it).
    /// </summary>
    public static Option<double?> OptionalNumber(string name, string placeholder, string description, double min, double max) =>
        Make<double?>(name, placeholder, description, null, (string text, out double? v) =>
            (v = double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && double.IsFinite(x) && x >= min && x <= max ? x : null) is not null,
            string.Create(CultureInfo.InvariantCulture, $"a number in [{min}, {max}]"));

    /// <summary>
    /// One of a fixed set of words (case-insensitive); the value is the word as listed, <paramref name="fallback"/> when
    /// the option is not given (null: no default).
    /// </summary>
    public static Option<string?> Choice(string name, string placeholder, string description, string? fallback, IReadOnlyList<string> choices)
    {
        var option = Make(name, placeholder, description, fallback,
            (string text, out string? v) => (v = choices.FirstOrDefault(c => string.Equals(c, text, StringComparison.OrdinalIgnoreCase))) is not null,
            $"one of {string.Join(", ", choices)}");
        option.CompletionSources.Add([.. choices]);
        return option;
    }

    /// <summary>A non-empty string; <paramref name="fallback"/> when the option is not given (null: no default).</summary>
    public static Option<string?> Text(string name, string placeholder, string description, string? fallback = null) =>
        Make(name, placeholder, description, fallback, (string text, out string? v) => !string.IsNullOrWhiteSpace(v = text), "", "must not be empty");

    /// <summary>
    /// An option of any type: <paramref name="read"/> gives the value of a text, or false when the text is not one, and
    /// then the problem is "NAME must be EXPECTED but got 'TEXT'" (or "NAME PROBLEM" when <paramref name="problem"/>
    /// is given). A missing value or a repeated option is reported by <see cref="CommandParser.Check"/>.
    /// </summary>
    public static Option<T> Make<T>(string name, string placeholder, string description, T fallback, TryRead<T> read, string expected, string? problem = null)
    {
        var option = new Option<T>(name) { HelpName = placeholder, Description = description };
        if (fallback is not null) option.DefaultValueFactory = _ => fallback;
        option.CustomParser = result =>
        {
            if (result.Tokens.Count != 1) return fallback;
            var text = result.Tokens[0].Value;
            if (read(text, out var value)) return value;
            result.AddError(problem is null ? $"{name} must be {expected} but got '{text}'" : $"{name} {problem}");
            return fallback;
        };
        return option;
    }
}

/// <summary>Reads the value of an option from its text; false when the text is not a value of the option.</summary>
internal delegate bool TryRead<T>(string text, out T value);

/// <summary>
/// Parsing a command's arguments with System.CommandLine: response files (<c>@file</c>, one or more arguments per line,
/// <c>#</c> comments), <c>--name value</c>, <c>--name=value</c> and <c>--name:value</c>, <c>--</c> ending the options,
/// the standard <c>--help</c>, and every problem as one message that names the option or argument (an unknown option
/// with the known one it is closest to: <c>unknown option --hiden (did you mean --hidden?)</c>).
/// </summary>
internal static class CommandParser
{
    /// <summary>
    /// No POSIX bundling: rnnf has no one-letter options but <c>-h</c>, and with bundling <c>-hidden</c> would read as
    /// <c>-h</c> followed by <c>idden</c> and show the help instead of reporting the misspelt option.
    /// </summary>
    private static readonly ParserConfiguration Configuration = new() { EnablePosixBundling = false };

    /// <summary>The command <c>rnnf</c> that each command belongs to, so that its usage line reads <c>rnnf NAME [options]</c>.</summary>
    private static readonly Command Program = new("rnnf");

    /// <summary>A command of rnnf with the given options and the standard help option.</summary>
    public static Command Command(string name, string description, params Option[] options)
    {
        var command = new Command(name, description);
        foreach (var option in options) command.Add(option);
        command.Add(new HelpOption());
        Program.Add(command);
        return command;
    }

    /// <summary>
    /// The arguments after the command's name, parsed; never throws. The name is put back in front: the library takes
    /// a first argument equal to the command's name as the command itself, so that <c>rnnf train train</c> would pass.
    /// </summary>
    public static ParseResult Parse(Command command, IReadOnlyList<string> args) => command.Parse([command.Name, .. args], Configuration);

    /// <summary>Whether the arguments ask for help (<c>--help</c>, <c>-h</c> or <c>-?</c>), whatever else they hold.</summary>
    public static bool AsksForHelp(ParseResult result) => result.Action is HelpAction;

    /// <summary>
    /// The help of the parsed command: its description, usage and every option with its value's placeholder and its
    /// default, wrapped at <paramref name="width"/> columns.
    /// </summary>
    public static string Help(ParseResult result, int width = 100)
    {
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        if (result.Action is HelpAction help)
        {
            help.MaxWidth = width;
            result.Invoke(new InvocationConfiguration { Output = writer, Error = writer });
        }
        return writer.ToString();
    }

    /// <summary>
    /// The parse result when it has no problem, or every problem: the options' own (a value out of range, not a number,
    /// not one of the choices), a missing value, a repeated option, an unreadable response file, then the unknown
    /// options (each with a suggestion when one is close) and unexpected arguments.
    /// </summary>
    /// <param name="result">The parse.</param>
    /// <param name="more">Problems the command finds in the parse (a required option missing, options that do not go together), put first.</param>
    public static Validation<Error, ParseResult> Check(ParseResult result, IEnumerable<string>? more = null)
    {
        var unmatched = Unmatched(result).ToList();
        var problems = more?.ToList() ?? [];
        foreach (var error in result.Errors)
        {
            var message = error.SymbolResult switch
            {
                OptionResult { IdentifierTokenCount: > 1 } o => $"option {o.Option.Name} is given twice",
                OptionResult { Tokens.Count: 0 } o => $"option {o.Option.Name} needs a value ({o.Option.HelpName})",
                ArgumentResult { Parent: OptionResult { IdentifierTokenCount: > 1 } o } => $"option {o.Option.Name} is given twice",
                CommandResult when result.UnmatchedTokens.Any(t => error.Message.Contains($"'{t}'", StringComparison.Ordinal)) => null,
                _ => error.Message,
            };
            if (message is not null && !problems.Contains(message)) problems.Add(message);
        }
        // An option given twice is a problem even when the library takes it (the second time without a value).
        foreach (var option in result.CommandResult.Command.Options)
            if (result.GetResult(option) is { IdentifierTokenCount: > 1 } repeated && $"option {repeated.Option.Name} is given twice" is var twice && !problems.Contains(twice))
                problems.Add(twice);
        problems.AddRange(unmatched);
        return problems.Count == 0
            ? Validation<Error, ParseResult>.Success(result)
            : Validation<Error, ParseResult>.Fail(problems.Select(Error.New).ToSeq());
    }

    /// <summary>
    /// The arguments that no option took: an unknown option (and the value after it) or a stray argument. After
    /// <c>--</c> every argument is a stray one.
    /// </summary>
    private static IEnumerable<string> Unmatched(ParseResult result)
    {
        var unmatched = result.UnmatchedTokens;
        if (unmatched.Count == 0) yield break;
        var tokens = result.Tokens;
        var doubleDash = tokens.ToList().FindIndex(t => t.Type == TokenType.DoubleDash);
        // Where each unmatched argument stands among the tokens: the unmatched ones are the arguments no option took,
        // in order, so the first argument token of the same text from where the last one stood is the one.
        var positions = new int[unmatched.Count];
        for (int k = 0, i = 0; k < unmatched.Count; k++)
        {
            while (i < tokens.Count && !(tokens[i].Type == TokenType.Argument && tokens[i].Value == unmatched[k])) i++;
            positions[k] = i < tokens.Count ? i++ : -1;
        }
        var names = result.CommandResult.Command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal)).Distinct().ToList();
        for (var k = 0; k < unmatched.Count; k++)
        {
            var token = unmatched[k];
            var afterDoubleDash = doubleDash >= 0 && positions[k] > doubleDash;
            if (afterDoubleDash || !LooksLikeOption(token))
            {
                yield return $"unexpected argument '{token}' (options look like --name value)";
                continue;
            }
            yield return Suggest(token, names) is { } near ? $"unknown option {token} (did you mean {near}?)" : $"unknown option {token}";
            // The value after an unknown option is its own, not one more problem.
            if (k + 1 < unmatched.Count && !LooksLikeOption(unmatched[k + 1]) && positions[k] >= 0 && positions[k + 1] == positions[k] + 1
                && !(doubleDash >= 0 && positions[k + 1] > doubleDash) && !token.Contains('=', StringComparison.Ordinal))
                k++;
        }
    }

    /// <summary>Whether an argument is written like an option: a dash and more, and not a number such as <c>-1</c>.</summary>
    private static bool LooksLikeOption(string token) =>
        token.Length > 1 && token[0] == '-' && !double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    /// <summary>
    /// The name among <paramref name="names"/> that <paramref name="token"/> (its dashes and any <c>=value</c> left
    /// out, case ignored) most likely misspells: one edit away (two for words of six letters or more), or a name it
    /// begins (of three letters or more); null when none is.
    /// </summary>
    public static string? Suggest(string token, IEnumerable<string> names)
    {
        var word = token.TrimStart('-').Split('=', ':')[0].ToLowerInvariant();
        if (word.Length == 0) return null;
        return names
            .Select(name => (Name: name, Distance: EditDistance(word, name.TrimStart('-').ToLowerInvariant())))
            .Where(c => c.Distance <= (word.Length >= 6 ? 2 : 1)
                        || (word.Length >= 3 && c.Name.TrimStart('-').StartsWith(word, StringComparison.OrdinalIgnoreCase)))
            .OrderBy(c => c.Distance).ThenBy(c => c.Name, StringComparer.Ordinal)
            .Select(c => c.Name).FirstOrDefault();
    }

    /// <summary>
    /// The number of single-character insertions, deletions, substitutions and swaps of two neighbours between two
    /// words (the optimal string alignment distance: <c>trian</c> is one edit from <c>train</c>).
    /// </summary>
    internal static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
            for (var j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
