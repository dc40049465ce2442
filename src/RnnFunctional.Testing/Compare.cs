using System.Collections.Immutable;
using System.Globalization;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Testing;

/// <summary>
/// The two ways tests compare results: <c>Same</c>, bit for bit, for results computed by the same operations in the
/// same order; <c>Close</c>, within a tolerance, for results that are equal in exact arithmetic but rounded in another
/// order (a batch against its columns, a sum of gradients taken in another order). Each works on numbers, vectors,
/// matrices, sequences of matrices, sequences of such sequences (one per layer) and parameter trees, and
/// <c>FirstDifference</c> names the first entry where two values disagree, for a failure message.
/// </summary>
/// <remarks>
/// <para>
/// <b>Same</b>: equal shapes (and lengths), and every pair of entries has the same IEEE-754 bit pattern: 0 and −0
/// differ, and a NaN is the same as a NaN of the same bits only (a model file's round trip keeps NaN payloads).
/// </para>
/// <para>
/// <b>Close</b> within τ: equal shapes (and lengths), and every pair of entries (a, b) has
/// |a − b| ≤ τ·max(1, min(|a|, |b|)): an absolute error of τ for entries of magnitude up to 1, a relative error of τ
/// above. The relation is symmetric; a NaN or an infinity is close to nothing.
/// </para>
/// </remarks>
public static class Compare
{
    // ---- numbers ----

    /// <summary>The same IEEE-754 bits.</summary>
    /// <param name="a">A number.</param>
    /// <param name="b">Another number.</param>
    public static bool Same(double a, double b) => BitConverter.DoubleToInt64Bits(a) == BitConverter.DoubleToInt64Bits(b);

    /// <summary>|a − b| ≤ τ·max(1, min(|a|, |b|)).</summary>
    /// <param name="a">A number.</param>
    /// <param name="b">Another number.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static bool Close(double a, double b, double tolerance)
    {
        RequireTolerance(tolerance);
        return Within(a, b, tolerance);
    }

    // ---- bit for bit ----

    /// <summary>Equal lengths and every entry the same (see <see cref="Compare"/>).</summary>
    /// <param name="a">Numbers.</param>
    /// <param name="b">Other numbers.</param>
    public static bool Same(IReadOnlyList<double> a, IReadOnlyList<double> b) => FirstDifference(a, b) is null;

    /// <summary>Equal lengths and every entry the same (see <see cref="Compare"/>).</summary>
    /// <param name="a">A vector.</param>
    /// <param name="b">Another vector.</param>
    public static bool Same(Vector<double> a, Vector<double> b) => FirstDifference(a, b) is null;

    /// <summary>Equal shapes and every entry the same (see <see cref="Compare"/>).</summary>
    /// <param name="a">A matrix.</param>
    /// <param name="b">Another matrix.</param>
    public static bool Same(Matrix<double> a, Matrix<double> b) => FirstDifference(a, b) is null;

    /// <summary>Equal lengths and every matrix the same (see <see cref="Compare"/>).</summary>
    /// <param name="a">A sequence of matrices, e.g. x⟨1⟩..x⟨T⟩.</param>
    /// <param name="b">Another sequence.</param>
    public static bool Same(ImmutableArray<Matrix<double>> a, ImmutableArray<Matrix<double>> b) => FirstDifference(a, b) is null;

    /// <summary>Equal lengths and every sequence the same (see <see cref="Compare"/>).</summary>
    /// <param name="a">Sequences of matrices, e.g. one per layer.</param>
    /// <param name="b">Other sequences.</param>
    public static bool Same(ImmutableArray<ImmutableArray<Matrix<double>>> a, ImmutableArray<ImmutableArray<Matrix<double>>> b) =>
        FirstDifference(a, b) is null;

    /// <summary>Leaves of the same names and shapes, and every entry the same (see <see cref="Compare"/>).</summary>
    /// <typeparam name="T">The tree type.</typeparam>
    /// <param name="a">A parameter tree.</param>
    /// <param name="b">Another tree of the same type.</param>
    public static bool Same<T>(T a, T b) where T : IParameterTree<T> => FirstDifference(a, b) is null;

    // ---- within a tolerance ----

    /// <summary>Equal lengths and every pair of entries close within τ (see <see cref="Compare"/>).</summary>
    /// <param name="a">Numbers.</param>
    /// <param name="b">Other numbers.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static bool Close(IReadOnlyList<double> a, IReadOnlyList<double> b, double tolerance) => FirstDifference(a, b, tolerance) is null;

    /// <summary>Equal lengths and every pair of entries close within τ (see <see cref="Compare"/>).</summary>
    /// <param name="a">A vector.</param>
    /// <param name="b">Another vector.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static bool Close(Vector<double> a, Vector<double> b, double tolerance) => FirstDifference(a, b, tolerance) is null;

    /// <summary>Equal shapes and every pair of entries close within τ (see <see cref="Compare"/>).</summary>
    /// <param name="a">A matrix.</param>
    /// <param name="b">Another matrix.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static bool Close(Matrix<double> a, Matrix<double> b, double tolerance) => FirstDifference(a, b, tolerance) is null;

    /// <summary>Equal lengths and every pair of matrices close within τ (see <see cref="Compare"/>).</summary>
    /// <param name="a">A sequence of matrices.</param>
    /// <param name="b">Another sequence.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static bool Close(ImmutableArray<Matrix<double>> a, ImmutableArray<Matrix<double>> b, double tolerance) =>
        FirstDifference(a, b, tolerance) is null;

    /// <summary>Equal lengths and every pair of sequences close within τ (see <see cref="Compare"/>).</summary>
    /// <param name="a">Sequences of matrices, e.g. one per layer.</param>
    /// <param name="b">Other sequences.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static bool Close(ImmutableArray<ImmutableArray<Matrix<double>>> a, ImmutableArray<ImmutableArray<Matrix<double>>> b, double tolerance) =>
        FirstDifference(a, b, tolerance) is null;

    /// <summary>Leaves of the same names and shapes, and every pair of entries close within τ (see <see cref="Compare"/>).</summary>
    /// <typeparam name="T">The tree type.</typeparam>
    /// <param name="a">A parameter tree.</param>
    /// <param name="b">Another tree of the same type.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static bool Close<T>(T a, T b, double tolerance) where T : IParameterTree<T> => FirstDifference(a, b, tolerance) is null;

    // ---- the first difference, for messages ----

    /// <summary>Where <see cref="Same(IReadOnlyList{double},IReadOnlyList{double})"/> fails: the lengths, or the first entry and both values; null when the same.</summary>
    /// <param name="a">Numbers.</param>
    /// <param name="b">Other numbers.</param>
    public static string? FirstDifference(IReadOnlyList<double> a, IReadOnlyList<double> b) => Bitwise([Numbers(a)], [Numbers(b)]);

    /// <summary>Where <see cref="Same(Vector{double},Vector{double})"/> fails: the lengths, or the first entry and both values; null when the same.</summary>
    /// <param name="a">A vector.</param>
    /// <param name="b">Another vector.</param>
    public static string? FirstDifference(Vector<double> a, Vector<double> b) => Bitwise([Of(a)], [Of(b)]);

    /// <summary>Where <see cref="Same(Matrix{double},Matrix{double})"/> fails: the shapes, or the first entry (row, column) and both values; null when the same.</summary>
    /// <param name="a">A matrix.</param>
    /// <param name="b">Another matrix.</param>
    public static string? FirstDifference(Matrix<double> a, Matrix<double> b) => Bitwise([Of("", a)], [Of("", b)]);

    /// <summary>Where <see cref="Same(ImmutableArray{Matrix{double}},ImmutableArray{Matrix{double}})"/> fails: the lengths, or the first step [t], entry and values; null when the same.</summary>
    /// <param name="a">A sequence of matrices.</param>
    /// <param name="b">Another sequence.</param>
    public static string? FirstDifference(ImmutableArray<Matrix<double>> a, ImmutableArray<Matrix<double>> b) => Bitwise(Of(a), Of(b));

    /// <summary>Where <see cref="Same(ImmutableArray{ImmutableArray{Matrix{double}}},ImmutableArray{ImmutableArray{Matrix{double}}})"/> fails: the lengths, or the first [l][t], entry and values; null when the same.</summary>
    /// <param name="a">Sequences of matrices.</param>
    /// <param name="b">Other sequences.</param>
    public static string? FirstDifference(ImmutableArray<ImmutableArray<Matrix<double>>> a, ImmutableArray<ImmutableArray<Matrix<double>>> b) =>
        Bitwise(Of(a), Of(b));

    /// <summary>Where <see cref="Same{T}(T,T)"/> fails: the leaves, or the first leaf, entry and values; null when the same.</summary>
    /// <typeparam name="T">The tree type.</typeparam>
    /// <param name="a">A parameter tree.</param>
    /// <param name="b">Another tree of the same type.</param>
    public static string? FirstDifference<T>(T a, T b) where T : IParameterTree<T> => Bitwise(Of(a), Of(b));

    /// <summary>Where <see cref="Close(IReadOnlyList{double},IReadOnlyList{double},double)"/> fails: the lengths, or the first entry, both values and the bound; null when close.</summary>
    /// <param name="a">Numbers.</param>
    /// <param name="b">Other numbers.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static string? FirstDifference(IReadOnlyList<double> a, IReadOnlyList<double> b, double tolerance) =>
        Within([Numbers(a)], [Numbers(b)], tolerance);

    /// <summary>Where <see cref="Close(Vector{double},Vector{double},double)"/> fails: the lengths, or the first entry, both values and the bound; null when close.</summary>
    /// <param name="a">A vector.</param>
    /// <param name="b">Another vector.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static string? FirstDifference(Vector<double> a, Vector<double> b, double tolerance) => Within([Of(a)], [Of(b)], tolerance);

    /// <summary>Where <see cref="Close(Matrix{double},Matrix{double},double)"/> fails: the shapes, or the first entry, both values and the bound; null when close.</summary>
    /// <param name="a">A matrix.</param>
    /// <param name="b">Another matrix.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static string? FirstDifference(Matrix<double> a, Matrix<double> b, double tolerance) => Within([Of("", a)], [Of("", b)], tolerance);

    /// <summary>Where <see cref="Close(ImmutableArray{Matrix{double}},ImmutableArray{Matrix{double}},double)"/> fails: the lengths, or the first step [t], entry, values and bound; null when close.</summary>
    /// <param name="a">A sequence of matrices.</param>
    /// <param name="b">Another sequence.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static string? FirstDifference(ImmutableArray<Matrix<double>> a, ImmutableArray<Matrix<double>> b, double tolerance) =>
        Within(Of(a), Of(b), tolerance);

    /// <summary>Where <see cref="Close(ImmutableArray{ImmutableArray{Matrix{double}}},ImmutableArray{ImmutableArray{Matrix{double}}},double)"/> fails: the lengths, or the first [l][t], entry, values and bound; null when close.</summary>
    /// <param name="a">Sequences of matrices.</param>
    /// <param name="b">Other sequences.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static string? FirstDifference(ImmutableArray<ImmutableArray<Matrix<double>>> a, ImmutableArray<ImmutableArray<Matrix<double>>> b, double tolerance) =>
        Within(Of(a), Of(b), tolerance);

    /// <summary>Where <see cref="Close{T}(T,T,double)"/> fails: the leaves, or the first leaf, entry, values and bound; null when close.</summary>
    /// <typeparam name="T">The tree type.</typeparam>
    /// <param name="a">A parameter tree.</param>
    /// <param name="b">Another tree of the same type.</param>
    /// <param name="tolerance">τ ≥ 0.</param>
    public static string? FirstDifference<T>(T a, T b, double tolerance) where T : IParameterTree<T> => Within(Of(a), Of(b), tolerance);

    // ---- one implementation over named blocks of entries ----

    /// <summary>A named rows×columns block of entries in column-major order; a vector or a list of numbers is one column.</summary>
    private sealed record Block(string Name, int Rows, int Columns, double[] Values, bool IsMatrix);

    private static Block Numbers(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new("", values.Count, 1, [.. values], IsMatrix: false);
    }

    private static Block Of(Vector<double> v)
    {
        ArgumentNullException.ThrowIfNull(v);
        return new("", v.Count, 1, v.ToArray(), IsMatrix: false);
    }

    private static Block Of(string name, Matrix<double> m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return new(name, m.RowCount, m.ColumnCount, m.ToColumnMajorArray(), IsMatrix: true);
    }

    private static Block[] Of(ImmutableArray<Matrix<double>> ms) =>
        ms.IsDefault ? throw new ArgumentException("expected a sequence but got a default ImmutableArray", nameof(ms))
                     : [.. ms.Select((m, t) => Of($"[{t}] ", m))];

    private static Block[] Of(ImmutableArray<ImmutableArray<Matrix<double>>> mss) =>
        mss.IsDefault ? throw new ArgumentException("expected sequences but got a default ImmutableArray", nameof(mss))
                      : [.. mss.SelectMany((ms, l) => Of(ms).Select(b => b with { Name = $"[{l}]{b.Name}" }))];

    private static Block[] Of<T>(T tree) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(tree);
        return [.. tree.ToLeaves().Select(l => new Block(l.Name + " ", l.Rows, l.Columns, [.. l.Values], IsMatrix: l.Columns > 1))];
    }

    private static string? Bitwise(Block[] a, Block[] b) =>
        FirstDisagreement(a, b, Same, (_, _) => "different bits");

    private static string? Within(Block[] a, Block[] b, double tolerance)
    {
        RequireTolerance(tolerance);
        return FirstDisagreement(a, b, (x, y) => Within(x, y, tolerance), (x, y) => string.Create(CultureInfo.InvariantCulture,
            $"|a − b| = {Math.Abs(x - y):G3} > {tolerance:G3}·max(1, min(|a|, |b|))"));
    }

    private static bool Within(double a, double b, double tolerance) =>
        Math.Abs(a - b) <= tolerance * Math.Max(1, Math.Min(Math.Abs(a), Math.Abs(b)));

    private static string? FirstDisagreement(Block[] a, Block[] b, Func<double, double, bool> agree, Func<double, double, string> why)
    {
        if (a.Length != b.Length) return string.Create(CultureInfo.InvariantCulture, $"{a.Length} values against {b.Length}");
        foreach (var (x, y) in a.Zip(b))
        {
            if (x.Name != y.Name || x.Rows != y.Rows || x.Columns != y.Columns)
                return $"{Shape(x)} against {Shape(y)}";
            for (var k = 0; k < x.Values.Length; k++)
            {
                if (agree(x.Values[k], y.Values[k])) continue;
                var entry = x.IsMatrix
                    ? string.Create(CultureInfo.InvariantCulture, $"({k % x.Rows}, {k / x.Rows})")
                    : string.Create(CultureInfo.InvariantCulture, $"({k})");
                return string.Create(CultureInfo.InvariantCulture,
                    $"{x.Name}{entry}: a = {x.Values[k]:R}, b = {y.Values[k]:R} ({why(x.Values[k], y.Values[k])})");
            }
        }
        return null;
    }

    private static string Shape(Block b) =>
        string.Create(CultureInfo.InvariantCulture, $"{b.Name}{(b.IsMatrix ? $"{b.Rows}×{b.Columns}" : $"length {b.Rows}")}");

    private static void RequireTolerance(double tolerance)
    {
        if (!(tolerance >= 0) || double.IsInfinity(tolerance))
            throw new ArgumentOutOfRangeException(nameof(tolerance), tolerance, "expected a finite tolerance ≥ 0");
    }
}
