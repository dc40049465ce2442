using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Globalization;
using System.Text;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>How a numerical derivative is taken.</summary>
public enum DifferenceMethod
{
    /// <summary>One central stencil of a fixed step and order.</summary>
    Central,

    /// <summary>
    /// Ridders' method: central differences at steps h, h/1.4, h/1.4², … extrapolated to step 0 in a Neville
    /// tableau, keeping the estimate whose own error estimate is smallest and stopping when the error grows. It
    /// finds, per entry, the step that balances truncation against round-off.
    /// </summary>
    Ridders,
}

/// <summary>How numerical derivatives are taken and compared.</summary>
/// <param name="Epsilon">Step h of the central differences (the first and largest step for Ridders' method).</param>
/// <param name="Order">
/// For <see cref="DifferenceMethod.Central"/>, the order of accuracy of the stencil: 2 is the textbook
/// (f(θ+h) − f(θ−h)) / 2h with error O(h²); 4, 6 and 8 use 2, 3 and 4 points on each side.
/// </param>
/// <param name="Floor">Lower bound of the denominator of <see cref="GradCheck.RelativeError"/>.</param>
/// <param name="Method">Fixed stencil or adaptive extrapolation.</param>
public sealed record GradCheckOptions(double Epsilon = 1e-6, int Order = 2, double Floor = 1e-8, DifferenceMethod Method = DifferenceMethod.Central)
{
    /// <summary>
    /// For <see cref="DifferenceMethod.Ridders"/>, the larger first steps of a second look (none by default). An
    /// estimate's error is bounded by the larger of Ridders' own estimate (the truncation error, read from the tableau)
    /// and its round-off, κ·δ·ν (δ = max(ε·|f(θ)|, 4σ) for ε = 2⁻⁵² and σ the measured noise of f, κ =
    /// <see cref="GradCheck.RoundOffFactor"/>, ν the estimate's noise
    /// gain: 1/h for a central difference of step h, more for an extrapolation from smaller steps), which the tableau
    /// does not see. An entry whose bound is not below a
    /// tenth of <see cref="Tolerance"/> times max(|estimate|, <see cref="Floor"/>) is estimated again from each of these
    /// steps, and the estimate with the smallest bound is kept among those that agree, within both bounds, with every
    /// estimate from a smaller first step: an estimate that does not has missed a bend of f at the scale of its step,
    /// which its tableau cannot see. The choice never looks at the claimed gradient.
    /// </summary>
    public ImmutableArray<double> LargerSteps { get; init; } = [];

    /// <summary>
    /// For <see cref="DifferenceMethod.Ridders"/>, first steps below <see cref="Epsilon"/> that the second look tries as
    /// well (none by default): along a direction where f has a feature at the scale of the first step, the tableau
    /// from that step can settle on a poor estimate, which its own error bound shows, while a smaller first step
    /// resolves the derivative; the estimate with the smallest bound is kept, as for <see cref="LargerSteps"/>.
    /// </summary>
    public ImmutableArray<double> SmallerSteps { get; init; } = [];

    /// <summary>Whether an entry judged too coarse is estimated again (<see cref="LargerSteps"/> or <see cref="SmallerSteps"/>).</summary>
    internal bool LooksAgain => !LargerSteps.IsEmpty || !SmallerSteps.IsEmpty;

    /// <summary>The relative error at which entries will be judged: it decides which entries take the second look.</summary>
    public double Tolerance { get; init; } = 1e-6;

    /// <summary>Second-order central differences with h = 1e-6: the textbook check.</summary>
    public static GradCheckOptions Central { get; } = new();

    /// <summary>
    /// Ridders' adaptive extrapolation of central differences starting from h = 0.01: typically accurate to
    /// 1e-12 relative or better for smooth functions, about a thousand times closer to the true derivative than the
    /// textbook check, whose round-off error (ulp(f) / 2h) dominates small gradient entries. About 10 to 20
    /// evaluations of f per entry.
    /// </summary>
    public static GradCheckOptions Ridders { get; } = new(0.01, Method: DifferenceMethod.Ridders);

    /// <summary>
    /// <see cref="Ridders"/> with a second look from the first steps 0.1 and 0.3 (<see cref="LargerSteps"/>), and
    /// 0.003 and 0.001 (<see cref="SmallerSteps"/>), at the
    /// entries too small to be judged at a relative error of 1e-6 from h = 0.01: the reference of the library's own
    /// gradient properties.
    /// </summary>
    /// <remarks>
    /// A loss of about 20 is known to one ulp, 3.6e-15, and a derivative from first step 0.01 to about 1e-12. The
    /// bar |g − n| / max(|g| + |n|, 1e-8) &lt; 1e-6 asks for 1e-14 on an entry below 1e-8 (a gate shut, a unit that
    /// barely reaches the loss), which only a larger step can give: its round-off is divided by the step's ratio, and
    /// where the loss curves within the step Ridders' tableau shows the truncation and the smaller step is kept. No
    /// first step of 1: along an input or a weight of a tanh or sigmoid unit, a step of 1 reaches the scale on which the
    /// unit bends, and there the tableau's own error estimate can miss the truncation (see docs/property-testing.md).
    /// </remarks>
    public static GradCheckOptions Precise { get; } = Ridders with { LargerSteps = [0.1, 0.3], SmallerSteps = [0.003, 0.001] };
}

/// <summary>The comparison of one analytic derivative with its numerical estimate.</summary>
/// <param name="Leaf">The leaf's name.</param>
/// <param name="Row">Row of the entry within the leaf.</param>
/// <param name="Column">Column of the entry within the leaf.</param>
/// <param name="Analytic">The claimed derivative.</param>
/// <param name="Numeric">The finite-difference estimate.</param>
/// <param name="RelativeError">|analytic − numeric| / max(|analytic| + |numeric|, floor).</param>
/// <param name="NumericError">
/// The difference method's own estimate of the error of <paramref name="Numeric"/> (NaN for a fixed stencil); with
/// <see cref="GradCheckOptions.LargerSteps"/>, the bound that chose the estimate (round-off included).
/// </param>
public sealed record GradCheckEntry(string Leaf, int Row, int Column, double Analytic, double Numeric, double RelativeError, double NumericError)
{
    /// <summary>
    /// The smallest difference between the analytic and the numeric value that finite differences of f in double
    /// precision resolve for this entry: 0 unless <see cref="GradCheckOptions.LargerSteps"/> or
    /// <see cref="GradCheckOptions.SmallerSteps"/> is set, else <see cref="GradCheck.ResolutionFactor"/>·δ·ν, δ the error
    /// allowed to one evaluation of f (ε·|f(θ)|, or <see cref="GradCheck.NoiseFactor"/> times f's measured noise where
    /// that is larger), for the noise gain ν of the estimate kept (at least 1/h for its first step h, <see cref="Step"/>: how much an error
    /// of δ in each value of f can move the estimate, δ·ν). It depends on f only, never on the claimed gradient.
    /// </summary>
    public double Resolution { get; init; }

    /// <summary>
    /// The step of the estimate: the stencil's h, or for Ridders' method the first step of the tableau whose estimate
    /// was kept (<see cref="GradCheckOptions.Epsilon"/> or one of <see cref="GradCheckOptions.LargerSteps"/>).
    /// </summary>
    public double Step { get; init; }

    /// <summary>
    /// True when the relative error is below <paramref name="tolerance"/>, or when the analytic and numeric values
    /// differ by less than <see cref="Resolution"/>: where the bar asks for a finer difference than double precision
    /// resolves (an entry far below the floor of a large f), finite differences cannot tell the values apart.
    /// </summary>
    /// <param name="tolerance">Largest acceptable relative error.</param>
    [Pure]
    public bool Passes(double tolerance) => RelativeError < tolerance || Math.Abs(Analytic - Numeric) < Resolution;
}

/// <summary>Every entry compared by a gradient check.</summary>
/// <param name="Entries">One entry per scalar parameter, in leaf order.</param>
public sealed record GradCheckReport(ImmutableArray<GradCheckEntry> Entries)
{
    /// <summary>The largest relative error (0 for an empty report).</summary>
    public double MaxRelativeError => Entries.IsEmpty ? 0 : Entries.Max(e => e.RelativeError);

    /// <summary>The entry with the largest relative error, if any.</summary>
    public GradCheckEntry? Worst => Entries.IsEmpty ? null : Entries.MaxBy(e => e.RelativeError);

    /// <summary>The entries that do not pass at <paramref name="tolerance"/> (<see cref="GradCheckEntry.Passes"/>; NaN counts as a failure).</summary>
    /// <param name="tolerance">Largest acceptable relative error.</param>
    [Pure]
    public ImmutableArray<GradCheckEntry> Failures(double tolerance) => [.. Entries.Where(e => !e.Passes(tolerance))];

    /// <summary>True when every entry passes at <paramref name="tolerance"/> (<see cref="GradCheckEntry.Passes"/>).</summary>
    /// <param name="tolerance">Largest acceptable relative error.</param>
    [Pure]
    public bool Passes(double tolerance) => Failures(tolerance).IsEmpty;

    /// <summary>The worst entry of each leaf, as a table.</summary>
    [Pure]
    public string Summary()
    {
        var text = new StringBuilder().AppendLine($"{"leaf",-12} {"entries",7} {"worst (row, col)",16} {"analytic",14} {"numeric",14} {"rel. error",10}");
        foreach (var leaf in Entries.GroupBy(e => e.Leaf))
        {
            var w = leaf.MaxBy(e => e.RelativeError)!;
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{leaf.Key,-12} {leaf.Count(),7} {$"({w.Row}, {w.Column})",16} {w.Analytic,14:E6} {w.Numeric,14:E6} {w.RelativeError,10:E2}"));
        }
        return text.ToString();
    }

    /// <inheritdoc />
    public override string ToString() => Summary();
}

/// <summary>
/// Finite-difference gradient checking, written once for every parameter record: each entry of each leaf is
/// perturbed by ±h and the central difference compared with the claimed gradient.
/// </summary>
public static class GradCheck
{
    /// <summary>
    /// κ in the round-off bound κ·δ·ν of a Ridders estimate of noise gain ν (see <see cref="GradCheckOptions.LargerSteps"/>),
    /// δ the error allowed to one evaluation of f: the larger of ε·|f(θ)| and <see cref="NoiseFactor"/> times the noise
    /// of f measured at θ.
    /// </summary>
    public const double RoundOffFactor = 1.0;

    /// <summary>
    /// How many standard deviations of f's measured noise one evaluation may stray: δ ≥ 4·σ. It matters where f's
    /// terms cancel, so that its round-off is that of the terms, far above ε·|f|.
    /// </summary>
    public const double NoiseFactor = 4.0;

    /// <summary>
    /// κ in the resolution κ·δ·ν of a check with a second look, ν the noise gain of the estimate kept
    /// (<see cref="GradCheckEntry.Resolution"/>). Over 12,000 entries that took the second look in stacked,
    /// bidirectional, ragged and projected stacks (losses of 1 to 100; 60,000 estimates from first steps 0.001 to
    /// 0.3), no estimate differed from the analytic value by more than 0.53·ε·|f|·ν; the factor leaves a margin of
    /// about four (see docs/property-testing.md).
    /// </summary>
    public const double ResolutionFactor = 2.0;

    /// <summary>The symmetric relative error |g − n| / max(|g| + |n|, floor).</summary>
    /// <param name="analytic">Claimed derivative g.</param>
    /// <param name="numeric">Estimated derivative n.</param>
    /// <param name="floor">Lower bound of the denominator (1e-8 by default).</param>
    [Pure]
    public static double RelativeError(double analytic, double numeric, double floor = 1e-8) =>
        Math.Abs(analytic - numeric) / Math.Max(Math.Abs(analytic) + Math.Abs(numeric), floor);

    /// <summary>Checks the gradient of a scalar function of a parameter tree.</summary>
    /// <param name="f">The function; it must not depend on anything but its argument.</param>
    /// <param name="at">The point θ.</param>
    /// <param name="gradient">The claimed ∇f(θ), of the same structure as θ.</param>
    /// <param name="options">Step and stencil order; <see cref="GradCheckOptions.Central"/> if omitted.</param>
    [Pure]
    public static GradCheckReport Tree<T>(Func<T, double> f, T at, T gradient, GradCheckOptions? options = null)
        where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(at);
        ArgumentNullException.ThrowIfNull(gradient);
        return Leaves(leaves => f(at.FromLeaves(leaves)), at.ToLeaves(), gradient.ToLeaves(), options);
    }

    /// <summary>Checks the gradient of a scalar function of one matrix.</summary>
    /// <param name="f">The function.</param>
    /// <param name="at">The point X, any r×c.</param>
    /// <param name="gradient">The claimed ∂f/∂X, r×c.</param>
    /// <param name="name">Name shown in the report.</param>
    /// <param name="options">Step and stencil order; <see cref="GradCheckOptions.Central"/> if omitted.</param>
    [Pure]
    public static GradCheckReport Matrix(Func<Matrix<double>, double> f, Matrix<double> at, Matrix<double> gradient,
        string name = "X", GradCheckOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(at);
        ArgumentNullException.ThrowIfNull(gradient);
        return Leaves(leaves => f(leaves[0].ToMatrix()), [RnnFunctional.Leaf.Of(name, at)], [RnnFunctional.Leaf.Of(name, gradient)], options);
    }

    /// <summary>Checks the gradient of a scalar function of a list of named leaves.</summary>
    /// <param name="f">The function.</param>
    /// <param name="at">The point, as leaves.</param>
    /// <param name="gradient">The claimed gradient, leaves of the same names and shapes.</param>
    /// <param name="options">Step and stencil order; <see cref="GradCheckOptions.Central"/> if omitted.</param>
    [Pure]
    public static GradCheckReport Leaves(Func<ImmutableArray<Leaf>, double> f, ImmutableArray<Leaf> at,
        ImmutableArray<Leaf> gradient, GradCheckOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(f);
        Shapes.ThrowIfDefault(at, nameof(at), "a list of leaves");
        Shapes.ThrowIfDefault(gradient, nameof(gradient), "a list of leaves");
        var o = options ?? GradCheckOptions.Central;
        Validate(o);
        RnnFunctional.Tree.RequireSameStructure(at, gradient, nameof(gradient));
        var unit = o.LooksAgain ? ErrorOfOneEvaluation(f(at), FunctionNoise.Of(f, at)) : 0;
        var entries = ImmutableArray.CreateBuilder<GradCheckEntry>();
        for (var i = 0; i < at.Length; i++)
        {
            var leaf = at[i];
            for (var k = 0; k < leaf.Values.Length; k++)
            {
                var index = (Leaf: i, Entry: k);
                double At(double delta)
                {
                    var values = leaf.Values.ToArray();
                    values[index.Entry] += delta;
                    return f(at.SetItem(index.Leaf, leaf.WithValues(values)));
                }
                var (numeric, error, step, gain) = Derivative(At, unit, o);
                var analytic = gradient[i].Values[k];
                entries.Add(new(leaf.Name, k % leaf.Rows, k / leaf.Rows, analytic, numeric, RelativeError(analytic, numeric, o.Floor), error)
                    { Resolution = Resolution(unit, gain, o), Step = step });
            }
        }
        return new(entries.ToImmutable());
    }

    /// <summary>
    /// A directional check, as JAX's check_grads does for large models: compares ⟨∇f(θ), v⟩ with
    /// (f(θ + h·v) − f(θ − h·v)) / 2h for one direction v. Two evaluations of f however many parameters.
    /// </summary>
    /// <param name="f">The function.</param>
    /// <param name="at">The point θ.</param>
    /// <param name="gradient">The claimed ∇f(θ).</param>
    /// <param name="direction">The direction v, of the same structure as θ.</param>
    /// <param name="options">Step and stencil order; <see cref="GradCheckOptions.Central"/> if omitted.</param>
    [Pure]
    public static GradCheckEntry Directional<T>(Func<T, double> f, T at, T gradient, T direction, GradCheckOptions? options = null)
        where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(f);
        var o = Validate(options ?? GradCheckOptions.Central);
        var analytic = RnnFunctional.Tree.Dot(gradient, direction);
        double Along(double h) => f(RnnFunctional.Tree.Zip(at, direction, (x, v) => x + h * v));
        var unit = o.LooksAgain ? ErrorOfOneEvaluation(f(at), FunctionNoise.Along(Along)) : 0;
        var (numeric, error, step, gain) = Derivative(Along, unit, o);
        return new("direction", 0, 0, analytic, numeric, RelativeError(analytic, numeric, o.Floor), error)
            { Resolution = Resolution(unit, gain, o), Step = step };
    }

    /// <summary>Weights w_k of the central stencil f'(0) ≈ Σ_k w_k·(g(kh) − g(−kh)) / h, by order.</summary>
    private static readonly IReadOnlyDictionary<int, double[]> Stencils = new Dictionary<int, double[]>
    {
        [2] = [1.0 / 2],
        [4] = [2.0 / 3, -1.0 / 12],
        [6] = [3.0 / 4, -3.0 / 20, 1.0 / 60],
        [8] = [4.0 / 5, -1.0 / 5, 4.0 / 105, -1.0 / 280],
    };

    private static GradCheckOptions Validate(GradCheckOptions o) =>
        o.Epsilon > 0 && double.IsFinite(o.Epsilon) && Stencils.ContainsKey(o.Order) && o.Floor > 0 && o.Tolerance > 0
        && o.LargerSteps.Concat(o.SmallerSteps).All(h => h > 0 && double.IsFinite(h)) && (!o.LooksAgain || o.Method == DifferenceMethod.Ridders)
            ? o
            : throw new ArgumentOutOfRangeException("options", o,
                "expected Epsilon > 0, Order in {2, 4, 6, 8}, Floor > 0, Tolerance > 0 and finite positive LargerSteps and SmallerSteps (with the Ridders method only)");

    /// <summary>κ·δ·ν for the noise gain ν of the estimate kept, with a second look; 0 without.</summary>
    private static double Resolution(double unit, double gain, GradCheckOptions o) =>
        o.LooksAgain ? ResolutionFactor * unit * gain : 0;

    /// <summary>
    /// δ, the error allowed to one evaluation of f: the larger of ε·|f(θ)| and <see cref="NoiseFactor"/>·σ, σ the noise of
    /// f measured at θ (<see cref="FunctionNoise"/>).
    /// </summary>
    private static double ErrorOfOneEvaluation(double value, double sigma) => Math.Max(Math.Pow(2, -52) * Math.Abs(value), NoiseFactor * sigma);

    /// <summary>
    /// The derivative at 0 of a function g of one variable, with the method's error estimate; with larger steps, the
    /// estimate of smallest error bound (see <see cref="GradCheckOptions.LargerSteps"/>); and the (first) step of the
    /// estimate.
    /// </summary>
    /// <param name="g">The function along one direction.</param>
    /// <param name="unit">δ, the error allowed to one evaluation of g (0 without a second look).</param>
    /// <param name="o">The options.</param>
    private static (double Value, double Error, double Step, double Gain) Derivative(Func<double, double> g, double unit, GradCheckOptions o)
    {
        if (o.Method != DifferenceMethod.Ridders) return (Stencil(g, o.Epsilon, Stencils[o.Order]), double.NaN, o.Epsilon, 1 / o.Epsilon);
        var first = Ridders(g, o.Epsilon);
        if (!o.LooksAgain) return (first.Value, first.Error, o.Epsilon, first.Gain);
        var roundOff = RoundOffFactor * unit;
        (double Value, double Error, double Step, double Gain) Bounded((double Value, double Error, double Gain) e, double h) =>
            (e.Value, Math.Max(e.Error, roundOff * e.Gain), h, e.Gain);
        var best = Bounded(first, o.Epsilon);
        if (best.Error < 0.1 * o.Tolerance * Math.Max(Math.Abs(best.Value), o.Floor)) return best;
        List<(double Value, double Error, double Step, double Gain)> estimates = [best, .. o.LargerSteps.Concat(o.SmallerSteps).Select(h => Bounded(Ridders(g, h), h))];
        // An estimate that differs from one of a smaller first step by more than both bounds has missed its truncation
        // (its tableau does not see a bend at the scale of its step) and is not kept; the smallest step always is.
        return estimates.Where(e => estimates.All(smaller => smaller.Step >= e.Step || Math.Abs(e.Value - smaller.Value) <= e.Error + smaller.Error))
            .MinBy(e => e.Error);
    }

    private static double Stencil(Func<double, double> g, double h, double[] weights)
    {
        var sum = 0.0;
        for (var k = weights.Length; k >= 1; k--)
            sum += weights[k - 1] * (g(k * h) - g(-k * h));
        return sum / h;
    }

    /// <summary>
    /// Ridders' method: the central difference D(h_i) at h_i = h / 1.4^i fills the first row of a Neville tableau,
    /// a[j][i] = (a[j−1][i]·c^j − a[j−1][i−1]) / (c^j − 1) with c = 1.4², each entry's error is estimated from its
    /// neighbours, and the best entry is kept; the search stops once the diagonal's error exceeds twice the best.
    /// </summary>
    /// <returns>
    /// The entry kept, its error estimate, and its noise gain ν: an error of at most δ in each value of g moves D(h_i)
    /// by at most δ/h_i, and the entry, a fixed combination of those, by at most δ·ν, with ν carried through the
    /// tableau as ν[j][i] = (ν[j−1][i]·c^j + ν[j−1][i−1]) / (c^j − 1).
    /// </returns>
    private static (double Value, double Error, double Gain) Ridders(Func<double, double> g, double h)
    {
        const int size = 12;
        const double shrink = 1.4, shrink2 = shrink * shrink, safe = 2.0;
        var (a, nu) = (new double[size, size], new double[size, size]);
        var (best, error, gain) = (double.NaN, double.PositiveInfinity, 1 / h);
        (a[0, 0], nu[0, 0]) = ((g(h) - g(-h)) / (2 * h), 1 / h);
        for (var i = 1; i < size; i++)
        {
            h /= shrink;
            (a[0, i], nu[0, i]) = ((g(h) - g(-h)) / (2 * h), 1 / h);
            var factor = shrink2;
            for (var j = 1; j <= i; j++)
            {
                a[j, i] = (a[j - 1, i] * factor - a[j - 1, i - 1]) / (factor - 1);
                nu[j, i] = (nu[j - 1, i] * factor + nu[j - 1, i - 1]) / (factor - 1);
                factor *= shrink2;
                var estimate = Math.Max(Math.Abs(a[j, i] - a[j - 1, i]), Math.Abs(a[j, i] - a[j - 1, i - 1]));
                if (estimate <= error) (best, error, gain) = (a[j, i], estimate, nu[j, i]);
            }
            if (Math.Abs(a[i, i] - a[i - 1, i - 1]) >= safe * error) break;
        }
        return (best, error, gain);
    }
}
