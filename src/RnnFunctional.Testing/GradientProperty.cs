using System.Collections.Immutable;
using System.Globalization;
using FsCheck;
using FsCheck.Fluent;

namespace RnnFunctional.Testing;

/// <summary>
/// Gradient checks as FsCheck properties: a failing run says which leaf and which entry is wrong. The checks are
/// written once for every parameter record (anything implementing <see cref="IParameterTree{TSelf}"/>), so they
/// prove the gradients of a user's own cell, loss or layer as well as the library's.
/// </summary>
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
            : string.Join("; ", failures.Take(5).Select(Describe))
              + (failures.Length > 5 ? $" (and {failures.Length - 5} more)" : "");
        return failures.IsEmpty.Label(label);
    }

    /// <summary>
    /// A property that holds when the directional derivative of <paramref name="entry"/> (the result of
    /// <see cref="GradCheck.Directional{T}"/>) agrees with its estimate (<see cref="GradCheckEntry.Passes"/>).
    /// </summary>
    /// <param name="entry">The compared pair ⟨∇f, v⟩ and its finite-difference estimate.</param>
    /// <param name="tolerance">Largest acceptable relative error.</param>
    public static Property Holds(GradCheckEntry entry, double tolerance = Tolerance)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var passes = entry.Passes(tolerance);
        var label = string.Create(CultureInfo.InvariantCulture,
            $"{entry.Leaf}: analytic {entry.Analytic:E6} numeric {entry.Numeric:E6} rel {entry.RelativeError:E2}{(passes ? " below " : " not below ")}{tolerance:E0}");
        return passes.Label(label);
    }

    /// <summary>
    /// Every entry of the claimed gradient of <paramref name="f"/> at <paramref name="at"/> against finite
    /// differences (<see cref="GradCheck.Tree{T}"/>), as a labelled property.
    /// </summary>
    /// <param name="f">The scalar function; it must depend on nothing but its argument.</param>
    /// <param name="at">The point θ: any parameter tree.</param>
    /// <param name="gradient">The claimed ∇f(θ), of the same structure as θ.</param>
    /// <param name="options">
    /// How derivatives are estimated. If omitted, by <see cref="GradCheckOptions.Precise"/> at <paramref name="tolerance"/>:
    /// Ridders' method, with a second look from larger steps at the entries whose estimate is too imprecise to be judged.
    /// </param>
    /// <param name="tolerance">Largest acceptable relative error.</param>
    public static Property Tree<T>(Func<T, double> f, T at, T gradient, GradCheckOptions? options = null, double tolerance = Tolerance)
        where T : IParameterTree<T> =>
        Holds(GradCheck.Tree(f, at, gradient, options ?? GradCheckOptions.Precise with { Tolerance = tolerance }), tolerance);

    /// <summary>
    /// Every entry of the claimed gradient of a function of named leaves (<see cref="GradCheck.Leaves"/>), as a
    /// labelled property: for gradients with respect to inputs, e.g. the leaves of <see cref="SequenceLeaves.Of"/>.
    /// </summary>
    /// <param name="f">The scalar function of the leaves.</param>
    /// <param name="at">The point, as leaves.</param>
    /// <param name="gradient">The claimed gradient, leaves of the same names and shapes.</param>
    /// <param name="options">How derivatives are estimated; by <see cref="GradCheckOptions.Precise"/> if omitted.</param>
    /// <param name="tolerance">Largest acceptable relative error.</param>
    public static Property Leaves(Func<ImmutableArray<Leaf>, double> f, ImmutableArray<Leaf> at, ImmutableArray<Leaf> gradient,
        GradCheckOptions? options = null, double tolerance = Tolerance) =>
        Holds(GradCheck.Leaves(f, at, gradient, options ?? GradCheckOptions.Precise with { Tolerance = tolerance }), tolerance);

    /// <summary>
    /// The directional check of JAX's check_grads: ⟨∇f(θ), v⟩ against the derivative of t ↦ f(θ + t·v) at 0, for a
    /// direction v drawn from <paramref name="seed"/> (<see cref="RandomDirection{T}"/>). It costs a few evaluations
    /// of f however many parameters θ has, so it stays cheap for large models; a wrong gradient entry fails it for
    /// almost every direction. The label names the seed, so a failure is reproducible.
    /// </summary>
    /// <param name="f">The scalar function; it must depend on nothing but its argument.</param>
    /// <param name="at">The point θ.</param>
    /// <param name="gradient">The claimed ∇f(θ).</param>
    /// <param name="seed">Seed of the direction.</param>
    /// <param name="options">
    /// How the derivative is estimated; by <see cref="GradCheckOptions.Precise"/> at <paramref name="tolerance"/> if omitted.
    /// </param>
    /// <param name="tolerance">Largest acceptable relative error.</param>
    public static Property Directional<T>(Func<T, double> f, T at, T gradient, int seed, GradCheckOptions? options = null,
        double tolerance = Tolerance)
        where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(at);
        var direction = RandomDirection(at, seed);
        var entry = GradCheck.Directional(f, at, gradient, direction, options ?? GradCheckOptions.Precise with { Tolerance = tolerance });
        return Holds(entry with { Leaf = $"direction of seed {seed}" }, tolerance);
    }

    /// <summary>A tree shaped like <paramref name="like"/> with entries uniform in (−1, 1), drawn from <paramref name="seed"/>.</summary>
    /// <param name="like">Tree that gives names and shapes.</param>
    /// <param name="seed">Seed of the entries; the same seed gives the same direction.</param>
    public static T RandomDirection<T>(T like, int seed) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(like);
        var random = new Random(seed);
        var values = new double[RnnFunctional.Tree.Count(like)];
        for (var k = 0; k < values.Length; k++) values[k] = 2 * random.NextDouble() - 1;
        return RnnFunctional.Tree.Unflatten(like, values);
    }

    private static string Describe(GradCheckEntry e) => string.Create(CultureInfo.InvariantCulture,
        $"{e.Leaf}[{e.Row},{e.Column}]: analytic {e.Analytic:E6} numeric {e.Numeric:E6} rel {e.RelativeError:E2}{(e.Resolution > 0 ? string.Create(CultureInfo.InvariantCulture, $" (difference {Math.Abs(e.Analytic - e.Numeric):E2}, resolution {e.Resolution:E2} from h = {e.Step})") : "")}");
}
