using System.Globalization;
using FsCheck;
using FsCheck.Fluent;

namespace RnnFunctional.Testing;

/// <summary>Gradient checks as FsCheck properties: a failing run says which leaf and which entry is wrong.</summary>
public static class GradientProperty
{
    /// <summary>The default bar: symmetric relative error below 1e-6.</summary>
    public const double Tolerance = 1e-6;

    /// <summary>
    /// A property that holds when every entry of <paramref name="report"/> has a relative error below
    /// <paramref name="tolerance"/>; labelled with the failing entries (leaf, row, column, analytic, numeric, error).
    /// </summary>
    /// <param name="report">The result of a <see cref="GradCheck"/> call.</param>
    /// <param name="tolerance">Largest acceptable relative error.</param>
    public static Property Holds(GradCheckReport report, double tolerance = Tolerance)
    {
        ArgumentNullException.ThrowIfNull(report);
        var failures = report.Failures(tolerance);
        var label = failures.IsEmpty
            ? $"all {report.Entries.Length} entries below {tolerance:E0}"
            : string.Join("; ", failures.Take(5).Select(e => string.Create(CultureInfo.InvariantCulture,
                $"{e.Leaf}[{e.Row},{e.Column}]: analytic {e.Analytic:E6} numeric {e.Numeric:E6} rel {e.RelativeError:E2}")))
              + (failures.Length > 5 ? $" (and {failures.Length - 5} more)" : "");
        return failures.IsEmpty.Label(label);
    }
}
