using System.Collections.Immutable;

namespace RnnFunctional.Testing;

/// <summary>
/// Ridders' finite differences (<see cref="GradCheckOptions.Ridders"/>, from h = 0.01) with a second look at the
/// entries whose estimate may be too imprecise to judge at the bar. Each estimate's error is bounded by the larger of
/// Ridders' own error estimate (the truncation error, from the tableau) and the round-off of a central difference of
/// f from first step h, κ·ε·|f(θ)|/h (ε = 2⁻⁵², κ = <see cref="RoundOffFactor"/>), which Ridders' estimate does not
/// see. Entries whose bound is not below a tenth of the tolerance times the estimate are estimated again from the
/// first steps <see cref="LargerSteps"/>, and the estimate with the smallest bound is kept. The choice never looks at
/// the analytic gradient; the comparison, its tolerance and its floor are those of <see cref="GradCheck"/>.
/// </summary>
/// <remarks>
/// For a deep stack with a loss near 100, the round-off from h = 0.01 is near 1e-12, so an entry of 1e-7 (a sum of
/// terms that cancel, a product of many small factors) cannot be judged at a relative error of 1e-6 from that step:
/// there an exact derivative (complex step, or the sum written out) agrees with the analytic entry to 1e-9 or better
/// while the estimate from h = 0.01 is off by 2e-6, with an error estimate of its own a hundred times too small. A
/// larger first step divides the round-off by its ratio; where the loss curves within that step, the truncation error
/// shows in Ridders' estimate and the smaller step is kept.
/// </remarks>
public static class PreciseGradCheck
{
    /// <summary>The larger first steps of the second look.</summary>
    public static ImmutableArray<double> LargerSteps { get; } = [0.1, 1.0];

    /// <summary>κ in the round-off bound κ·ε·|f(θ)|/h of a Ridders estimate from first step h.</summary>
    public const double RoundOffFactor = 4.0;

    /// <summary><see cref="GradCheck.Tree{T}"/> with the second look.</summary>
    /// <param name="f">The function; it must not depend on anything but its argument.</param>
    /// <param name="at">The point θ.</param>
    /// <param name="gradient">The claimed ∇f(θ).</param>
    /// <param name="tolerance">The relative error at which entries are judged.</param>
    public static GradCheckReport Tree<T>(Func<T, double> f, T at, T gradient, double tolerance = GradientProperty.Tolerance)
        where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(at);
        ArgumentNullException.ThrowIfNull(gradient);
        return Leaves(leaves => f(at.FromLeaves(leaves)), at.ToLeaves(), gradient.ToLeaves(), tolerance);
    }

    /// <summary>
    /// <see cref="GradCheck.Leaves"/> with the second look. Each entry's <see cref="GradCheckEntry.NumericError"/> is
    /// the bound described above.
    /// </summary>
    /// <param name="f">The function.</param>
    /// <param name="at">The point, as leaves.</param>
    /// <param name="gradient">The claimed gradient, leaves of the same names and shapes.</param>
    /// <param name="tolerance">The relative error at which entries are judged.</param>
    public static GradCheckReport Leaves(Func<ImmutableArray<Leaf>, double> f, ImmutableArray<Leaf> at, ImmutableArray<Leaf> gradient,
        double tolerance = GradientProperty.Tolerance)
    {
        ArgumentNullException.ThrowIfNull(f);
        var ridders = GradCheckOptions.Ridders;
        var roundOff = RoundOffFactor * Math.Pow(2, -52) * Math.Abs(f(at));
        GradCheckEntry Bounded(GradCheckEntry e, double h) => e with { NumericError = Math.Max(e.NumericError, roundOff / h) };
        var index = at.Select((leaf, i) => (leaf.Name, i)).ToDictionary(p => p.Name, p => p.i);
        return new([.. GradCheck.Leaves(f, at, gradient, ridders).Entries.Select(e => Bounded(e, ridders.Epsilon)).Select(e =>
            e.NumericError < 0.1 * tolerance * Math.Max(Math.Abs(e.Numeric), ridders.Floor)
                ? e
                : LargerSteps.Select(h => Bounded(Again(f, at, gradient, index[e.Leaf], e, h), h)).Append(e).MinBy(x => x.NumericError)!)]);
    }

    /// <summary>Ridders' estimate of one entry from first step <paramref name="h"/>.</summary>
    private static GradCheckEntry Again(Func<ImmutableArray<Leaf>, double> f, ImmutableArray<Leaf> at, ImmutableArray<Leaf> gradient,
        int leaf, GradCheckEntry entry, double h)
    {
        var k = entry.Column * at[leaf].Rows + entry.Row;
        var values = at[leaf].Values;
        double Along(ImmutableArray<Leaf> one)
        {
            var moved = values.ToArray();
            moved[k] = one[0].Values[0];
            return f(at.SetItem(leaf, at[leaf].WithValues(moved)));
        }
        var again = GradCheck.Leaves(Along, [new Leaf(entry.Leaf, 1, 1, [values[k]])], [new Leaf(entry.Leaf, 1, 1, [gradient[leaf].Values[k]])],
                                     GradCheckOptions.Ridders with { Epsilon = h }).Entries[0];
        return again with { Row = entry.Row, Column = entry.Column };
    }
}
