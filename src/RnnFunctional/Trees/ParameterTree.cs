using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Runtime.InteropServices;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// One named leaf of a parameter tree: a dense block of <see cref="Rows"/>×<see cref="Columns"/> numbers stored
/// column-major. A vector leaf has one column. Leaves are how generic code (gradient checking, optimizers,
/// clipping, serialization) sees any parameter record.
/// </summary>
/// <param name="Name">Dotted path of the leaf within its tree, e.g. <c>Wax</c> or <c>layers[1].Waa</c>.</param>
/// <param name="Rows">Number of rows (the length for a vector leaf).</param>
/// <param name="Columns">Number of columns (1 for a vector leaf).</param>
/// <param name="Values">The Rows·Columns entries in column-major order.</param>
public sealed record Leaf(string Name, int Rows, int Columns, ImmutableArray<double> Values)
{
    /// <summary>A leaf holding a copy of a matrix.</summary>
    /// <param name="name">Leaf name.</param>
    /// <param name="value">Any rows×columns matrix.</param>
    [Pure]
    public static Leaf Of(string name, Matrix<double> value) =>
        new(name, value.RowCount, value.ColumnCount, ImmutableCollectionsMarshal.AsImmutableArray(value.ToColumnMajorArray()));

    /// <summary>A leaf holding a copy of a vector, as one column.</summary>
    /// <param name="name">Leaf name.</param>
    /// <param name="value">Any vector of length n; the leaf is n×1.</param>
    [Pure]
    public static Leaf Of(string name, Vector<double> value) =>
        new(name, value.Count, 1, ImmutableCollectionsMarshal.AsImmutableArray(value.ToArray()));

    /// <summary>The same leaf with other values (same name and shape).</summary>
    /// <param name="values">Rows·Columns entries in column-major order; the array is taken over, not copied.</param>
    [Pure]
    public Leaf WithValues(double[] values) =>
        values.Length == Rows * Columns
            ? this with { Values = ImmutableCollectionsMarshal.AsImmutableArray(values) }
            : throw new ArgumentException($"expected {Rows * Columns} values for leaf {Name} ({Rows}×{Columns}) but got {values.Length}", nameof(values));

    /// <summary>The leaf as a new Rows×Columns matrix.</summary>
    [Pure]
    public Matrix<double> ToMatrix() => Matrix<double>.Build.Dense(Rows, Columns, Values.ToArray());

    /// <summary>The leaf as a new vector of length Rows·Columns.</summary>
    [Pure]
    public Vector<double> ToVector() => Vector<double>.Build.Dense(Values.ToArray());

    /// <summary>The leaf with its name prefixed by <paramref name="prefix"/> and a dot.</summary>
    /// <param name="prefix">Name of the enclosing node.</param>
    [Pure]
    public Leaf Under(string prefix) => this with { Name = $"{prefix}.{Name}" };
}

/// <summary>
/// A parameter record seen as a tree of named leaves, like a JAX pytree. Parameters and their gradients share one
/// record type, so everything written against this interface works for every cell, stack and layer.
/// </summary>
/// <typeparam name="TSelf">The record type itself.</typeparam>
public interface IParameterTree<TSelf> where TSelf : IParameterTree<TSelf>
{
    /// <summary>The leaves in a fixed order, each a copy of the corresponding field.</summary>
    [Pure]
    ImmutableArray<Leaf> ToLeaves();

    /// <summary>
    /// A record of the same structure as this one built from <paramref name="leaves"/>, which must have the names
    /// and shapes that <see cref="ToLeaves"/> returns.
    /// </summary>
    /// <param name="leaves">Leaves in the order of <see cref="ToLeaves"/>.</param>
    [Pure]
    TSelf FromLeaves(ImmutableArray<Leaf> leaves);
}

/// <summary>Generic arithmetic over parameter trees: the vector space that parameters and gradients live in.</summary>
public static class Tree
{
    /// <summary>Applies <paramref name="f"/> to every entry.</summary>
    /// <param name="a">Any tree.</param>
    /// <param name="f">Function of one entry.</param>
    [Pure]
    public static T Map<T>(T a, Func<double, double> f) where T : IParameterTree<T> =>
        a.FromLeaves(a.ToLeaves().Select(l => l.WithValues(l.Values.Select(f).ToArray())).ToImmutableArray());

    /// <summary>Combines two trees of the same structure entry by entry.</summary>
    /// <param name="a">Any tree.</param>
    /// <param name="b">A tree with the same leaf names and shapes as <paramref name="a"/>.</param>
    /// <param name="f">Function of the two corresponding entries.</param>
    [Pure]
    public static T Zip<T>(T a, T b, Func<double, double, double> f) where T : IParameterTree<T>
    {
        var la = a.ToLeaves();
        var lb = b.ToLeaves();
        RequireSameStructure(la, lb, nameof(b));
        var leaves = ImmutableArray.CreateBuilder<Leaf>(la.Length);
        for (var i = 0; i < la.Length; i++)
        {
            var va = la[i].Values;
            var vb = lb[i].Values;
            var values = new double[va.Length];
            for (var k = 0; k < values.Length; k++) values[k] = f(va[k], vb[k]);
            leaves.Add(la[i].WithValues(values));
        }
        return a.FromLeaves(leaves.MoveToImmutable());
    }

    /// <summary>Entry-wise sum a + b.</summary>
    /// <param name="a">Any tree.</param>
    /// <param name="b">A tree of the same structure.</param>
    [Pure] public static T Add<T>(T a, T b) where T : IParameterTree<T> => Zip(a, b, static (x, y) => x + y);

    /// <summary>Entry-wise difference a − b.</summary>
    /// <param name="a">Any tree.</param>
    /// <param name="b">A tree of the same structure.</param>
    [Pure] public static T Subtract<T>(T a, T b) where T : IParameterTree<T> => Zip(a, b, static (x, y) => x - y);

    /// <summary>The tree scaled by <paramref name="s"/>.</summary>
    /// <param name="s">Scale factor.</param>
    /// <param name="a">Any tree.</param>
    [Pure] public static T Scale<T>(double s, T a) where T : IParameterTree<T> => Map(a, x => s * x);

    /// <summary>A tree of the same structure as <paramref name="like"/> filled with zeros.</summary>
    /// <param name="like">Tree that gives names and shapes.</param>
    [Pure] public static T ZerosLike<T>(T like) where T : IParameterTree<T> => Map(like, static _ => 0.0);

    /// <summary>The inner product Σ a·b over all entries.</summary>
    /// <param name="a">Any tree.</param>
    /// <param name="b">A tree of the same structure.</param>
    [Pure]
    public static double Dot<T>(T a, T b) where T : IParameterTree<T>
    {
        var la = a.ToLeaves();
        var lb = b.ToLeaves();
        RequireSameStructure(la, lb, nameof(b));
        var sum = 0.0;
        for (var i = 0; i < la.Length; i++)
            for (var k = 0; k < la[i].Values.Length; k++) sum += la[i].Values[k] * lb[i].Values[k];
        return sum;
    }

    /// <summary>The Euclidean norm over all entries (the global norm of PyTorch's clip_grad_norm_).</summary>
    /// <param name="a">Any tree.</param>
    [Pure] public static double Norm<T>(T a) where T : IParameterTree<T> => Math.Sqrt(Dot(a, a));

    /// <summary>Number of entries over all leaves.</summary>
    /// <param name="a">Any tree.</param>
    [Pure] public static int Count<T>(T a) where T : IParameterTree<T> => a.ToLeaves().Sum(l => l.Values.Length);

    /// <summary>All entries in leaf order, each leaf column-major.</summary>
    /// <param name="a">Any tree.</param>
    [Pure]
    public static double[] Flatten<T>(T a) where T : IParameterTree<T> =>
        a.ToLeaves().SelectMany(l => l.Values).ToArray();

    /// <summary>The inverse of <see cref="Flatten{T}"/>: a tree shaped like <paramref name="like"/> holding <paramref name="values"/>.</summary>
    /// <param name="like">Tree that gives names and shapes.</param>
    /// <param name="values">Exactly <see cref="Count{T}"/>(like) entries.</param>
    [Pure]
    public static T Unflatten<T>(T like, ReadOnlySpan<double> values) where T : IParameterTree<T>
    {
        var leaves = like.ToLeaves();
        var total = leaves.Sum(l => l.Values.Length);
        if (values.Length != total)
            throw new ArgumentException($"expected {total} values for this tree but got {values.Length}", nameof(values));
        var builder = ImmutableArray.CreateBuilder<Leaf>(leaves.Length);
        var offset = 0;
        foreach (var leaf in leaves)
        {
            builder.Add(leaf.WithValues(values.Slice(offset, leaf.Values.Length).ToArray()));
            offset += leaf.Values.Length;
        }
        return like.FromLeaves(builder.MoveToImmutable());
    }

    /// <summary>True when every entry is finite (no NaN, no ±∞).</summary>
    /// <param name="a">Any tree.</param>
    [Pure] public static bool AllFinite<T>(T a) where T : IParameterTree<T> => a.ToLeaves().All(l => l.Values.All(double.IsFinite));

    /// <summary>
    /// Reads back a list of leaves produced by a <c>ToLeaves</c> of the same structure: checks names and shapes and
    /// hands them to <paramref name="build"/>. For implementers of <see cref="IParameterTree{TSelf}.FromLeaves"/>.
    /// </summary>
    /// <param name="expected">The receiver's own leaves (names and shapes).</param>
    /// <param name="actual">The leaves to read.</param>
    /// <param name="build">Builds the record from the checked leaves.</param>
    [Pure]
    public static T Rebuild<T>(ImmutableArray<Leaf> expected, ImmutableArray<Leaf> actual, Func<ImmutableArray<Leaf>, T> build)
    {
        RequireSameStructure(expected, actual, "leaves");
        return build(actual);
    }

    internal static void RequireSameStructure(ImmutableArray<Leaf> expected, ImmutableArray<Leaf> actual, string argument)
    {
        Shapes.ThrowIfDefault(actual, argument, $"{(expected.IsDefault ? "a list of" : expected.Length.ToString(System.Globalization.CultureInfo.InvariantCulture))} leaves");
        Shapes.ThrowIfDefault(expected, argument, "leaves read against a tree (the tree's own leaves are a default array)");
        for (var i = 0; i < actual.Length; i++)
            if (actual[i] is null || actual[i].Values.IsDefault)
                throw new ArgumentException($"expected leaf {i} of {argument} to be a leaf with values but got {(actual[i] is null ? "null" : "a default (null) value array")}", argument);
        if (expected.Length != actual.Length)
            throw new ArgumentException($"expected {argument} to have {expected.Length} leaves but got {actual.Length}", argument);
        for (var i = 0; i < expected.Length; i++)
        {
            var (e, a) = (expected[i], actual[i]);
            if (e.Name != a.Name || e.Rows != a.Rows || e.Columns != a.Columns || a.Values.Length != a.Rows * a.Columns)
                throw new ArgumentException(
                    $"expected leaf {i} of {argument} to be {e.Name} {e.Rows}×{e.Columns} but got {a.Name} {a.Rows}×{a.Columns} with {a.Values.Length} values",
                    argument);
        }
    }
}
