using System.Collections.Immutable;
using System.Globalization;
using LanguageExt;
using Spectre.Console;

namespace RnnFunctional.Cli;

/// <summary><c>rnnf gradcheck</c>: a finite-difference table for each cell type on a small random model.</summary>
internal static class GradCheckCommand
{
    public static readonly ImmutableArray<OptionSpec> Specs =
    [
        new("seed", "S", "seed of the random model and batch", "1"),
    ];

    private const double Tolerance = 1e-6;

    public static string Help => Arguments.Help("rnnf gradcheck [options]",
        "For each cell type, draws a small random character model and a ragged batch, and compares the gradients of its\n"
        + "summed cross-entropy with Ridders-extrapolated central differences, leaf by leaf (worst entry shown).", Specs);

    public static int Run(IReadOnlyList<string> args, Terminal terminal)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            terminal.Out.Write(Help);
            return 0;
        }
        return Arguments.Parse(args, Specs).Bind(a => a.Build(() => a.Int("seed", 1, int.MinValue, int.MaxValue))).ToFin()
            .Match(seed =>
            {
                var checks = Models.GradientChecks(seed);
                var table = new Table().Border(TableBorder.Rounded)
                    .Title("Gradients vs finite differences (worst entry per leaf)")
                    .AddColumn("cell").AddColumn("leaf").AddColumn(new TableColumn("entries").RightAligned())
                    .AddColumn(new TableColumn("analytic").RightAligned()).AddColumn(new TableColumn("numeric").RightAligned())
                    .AddColumn(new TableColumn("relative error").RightAligned()).AddColumn("");
                foreach (var (cell, report) in checks)
                    foreach (var group in report.Entries.GroupBy(e => e.Leaf))
                    {
                        var worst = group.MaxBy(e => e.RelativeError)!;
                        string E(double x) => x.ToString("0.000e+00", CultureInfo.InvariantCulture);
                        table.AddRow(cell, Markup.Escape(group.Key), group.Count().ToString(CultureInfo.InvariantCulture), E(worst.Analytic), E(worst.Numeric),
                            E(worst.RelativeError), worst.RelativeError < Tolerance ? "pass" : "FAIL");
                    }
                terminal.Ansi.Write(table);
                var passes = checks.All(c => c.Report.Passes(Tolerance));
                terminal.Out.WriteLine(passes
                    ? $"all gradients agree with finite differences to a relative error below {Tolerance:E0}"
                    : $"some gradients disagree with finite differences (relative error ≥ {Tolerance:E0})");
                return passes ? 0 : 1;
            }, e => Cli.Fail(terminal, "gradcheck", e));
    }
}
