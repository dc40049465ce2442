using System.Globalization;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

/// <summary>One option of a command: its name, what its value looks like, what it does and its default.</summary>
/// <param name="Name">Long name without dashes, e.g. <c>hidden</c>.</param>
/// <param name="Placeholder">What the value looks like, e.g. <c>N</c>.</param>
/// <param name="Description">One line for --help.</param>
/// <param name="Default">The default shown in --help, or null when the option has none.</param>
internal sealed record OptionSpec(string Name, string Placeholder, string Description, string? Default = null);

/// <summary>
/// The options of one command line, read against a list of <see cref="OptionSpec"/>. Every typed read checks its
/// range and records a one-line problem instead of throwing; <see cref="Build{T}"/> turns the problems, if any,
/// into a failed <see cref="Validation{FAIL,SUCCESS}"/>.
/// </summary>
internal sealed class Arguments
{
    private readonly Dictionary<string, string> values;
    private readonly List<Error> problems = [];

    private Arguments(Dictionary<string, string> values) => this.values = values;

    /// <summary>Reads <c>--name value</c> and <c>--name=value</c> pairs; unknown, repeated or valueless options are errors.</summary>
    public static Validation<Error, Arguments> Parse(IReadOnlyList<string> args, IReadOnlyList<OptionSpec> specs)
    {
        var known = specs.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var errors = new List<Error>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                errors.Add(Error.New($"unexpected argument '{arg}' (options look like --name value)"));
                continue;
            }
            var (name, value) = arg.IndexOf('=') is var eq and > 0 ? (arg[2..eq], arg[(eq + 1)..]) : (arg[2..], (string?)null);
            if (!known.ContainsKey(name))
            {
                errors.Add(Error.New($"unknown option --{name}"));
                if (value is null && i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) i++;
                continue;
            }
            if (value is null)
            {
                if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    errors.Add(Error.New($"option --{name} needs a value ({known[name].Placeholder})"));
                    continue;
                }
                value = args[++i];
            }
            if (!values.TryAdd(name, value)) errors.Add(Error.New($"option --{name} is given twice"));
        }
        return errors.Count == 0
            ? Validation<Error, Arguments>.Success(new Arguments(values))
            : Validation<Error, Arguments>.Fail(errors.ToSeq());
    }

    /// <summary>Whether the option was given.</summary>
    public bool Has(string name) => values.ContainsKey(name);

    /// <summary>An integer in [min, max].</summary>
    public int Int(string name, int fallback, int min, int max)
    {
        if (!values.TryGetValue(name, out var text)) return fallback;
        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max) return v;
        problems.Add(Error.New($"--{name} must be an integer in [{min}, {max}] but got '{text}'"));
        return fallback;
    }

    /// <summary>A finite number in [min, max] (or (min, max] when <paramref name="exclusiveMin"/>).</summary>
    public double Double(string name, double fallback, double min, double max, bool exclusiveMin = false)
    {
        if (!values.TryGetValue(name, out var text)) return fallback;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
            && (exclusiveMin ? v > min : v >= min) && v <= max)
            return v;
        var low = exclusiveMin ? "(" : "[";
        problems.Add(Error.New(string.Create(CultureInfo.InvariantCulture, $"--{name} must be a number in {low}{min}, {max}] but got '{text}'")));
        return fallback;
    }

    /// <summary>One of a fixed set of words (case-insensitive).</summary>
    public string Choice(string name, string fallback, IReadOnlyList<string> choices)
    {
        if (!values.TryGetValue(name, out var text)) return fallback;
        var match = choices.FirstOrDefault(c => string.Equals(c, text, StringComparison.OrdinalIgnoreCase));
        if (match is not null) return match;
        problems.Add(Error.New($"--{name} must be one of {string.Join(", ", choices)} but got '{text}'"));
        return fallback;
    }

    /// <summary>A non-empty string, or the fallback.</summary>
    public string? Text(string name, string? fallback)
    {
        if (!values.TryGetValue(name, out var text)) return fallback;
        if (!string.IsNullOrWhiteSpace(text)) return text;
        problems.Add(Error.New($"--{name} must not be empty"));
        return fallback;
    }

    /// <summary>Records a problem found while combining options.</summary>
    public void Problem(string message) => problems.Add(Error.New(message));

    /// <summary>The built value, or every problem recorded by the reads (those made while building included).</summary>
    public Validation<Error, T> Build<T>(Func<T> build)
    {
        var value = build();
        return problems.Count == 0 ? Validation<Error, T>.Success(value) : Validation<Error, T>.Fail(problems.ToSeq());
    }

    /// <summary>The help text of a command.</summary>
    public static string Help(string usage, string summary, IReadOnlyList<OptionSpec> specs)
    {
        var width = specs.Max(s => s.Name.Length + s.Placeholder.Length) + 6;
        var lines = specs.Select(s =>
            $"  {$"--{s.Name} {s.Placeholder}".PadRight(width)}{s.Description}{(s.Default is null ? "" : $" (default: {s.Default})")}");
        return $"Usage: {usage}{Environment.NewLine}{Environment.NewLine}{summary}{Environment.NewLine}{Environment.NewLine}Options:{Environment.NewLine}"
               + string.Join(Environment.NewLine, lines) + Environment.NewLine
               + $"  {"--help".PadRight(width)}Show this help.{Environment.NewLine}";
    }
}
