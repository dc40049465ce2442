using System.Globalization;
using LanguageExt;
using Spectre.Console;

namespace RnnFunctional.Cli;

using System.CommandLine;

/// <summary><c>rnnf gradcheck</c>: a finite-difference table for each cell type on a small random model.</summary>
internal static class GradCheckCommand
{
    private static readonly Option<int> SeedOption = Options.Int("--seed", "S", "seed of the random model and batch", 1, int.MinValue, int.MaxValue);

    /// <summary>The command <c>rnnf gradcheck</c> and its options.</summary>
    public static readonly Command Command = CommandParser.Command("gradcheck",
        "For each cell type, draws a small random character model and a ragged batch, and compares the gradients of its "
        + "summed cross-entropy with Ridders-extrapolated central differences, leaf by leaf (worst entry shown).", SeedOption);

    private const double Tolerance = 1e-6;

    public static int Run(IReadOnlyList<string> args, Terminal terminal)
    {
        var parsed = CommandParser.Parse(Command, args);
        if (CommandParser.AsksForHelp(parsed)) return Cli.Help(terminal, parsed);
        return CommandParser.Check(parsed).Map(r => r.GetValue(SeedOption)).ToFin()
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
