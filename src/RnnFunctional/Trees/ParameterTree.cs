using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Runtime.InteropServices;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

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

    /// <summary>
    /// The names and shapes of <see cref="ToLeaves"/>, in its order, without copying any value. The default reads
    /// them from <see cref="ToLeaves"/>; a record implements it to make checks, counts and rebuilding free.
    /// </summary>
    [Pure]
    ImmutableArray<LeafShape> LeafShapes() => [.. ToLeaves().Select(l => l.Shape)];
}

/// <summary>Generic arithmetic over parameter trees: the vector space that parameters and gradients live in.</summary>
public static class Tree
{
    /// <summary>Applies <paramref name="f"/> to every entry.</summary>
    /// <param name="a">Any tree.</param>
    /// <param name="f">Function of one entry.</param>
    [Pure]
    public static T Map<T>(T a, Func<double, double> f) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(f);
        var leaves = a.ToLeaves();
        var mapped = new Leaf[leaves.Length];
        for (var i = 0; i < leaves.Length; i++)
        {
            var source = leaves[i].Values.AsSpan();
            var values = new double[source.Length];
            for (var k = 0; k < values.Length; k++) values[k] = f(source[k]);
            mapped[i] = leaves[i].WithValues(values);
        }
        return a.FromLeaves(ImmutableCollectionsMarshal.AsImmutableArray(mapped));
    }

    /// <summary>Combines two trees of the same structure entry by entry.</summary>
    /// <param name="a">Any tree.</param>
    /// <param name="b">A tree with the same leaf names and shapes as <paramref name="a"/>.</param>
    /// <param name="f">Function of the two corresponding entries.</param>
    [Pure]
    public static T Zip<T>(T a, T b, Func<double, double, double> f) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(f);
        var la = a.ToLeaves();
        var lb = b.ToLeaves();
        RequireSameStructure(la, lb, nameof(b));
        var leaves = new Leaf[la.Length];
        for (var i = 0; i < la.Length; i++)
        {
            ReadOnlySpan<double> va = la[i].Values.AsSpan(), vb = lb[i].Values.AsSpan();
            var values = new double[va.Length];
            for (var k = 0; k < values.Length; k++) values[k] = f(va[k], vb[k]);
            leaves[i] = la[i].WithValues(values);
        }
        return a.FromLeaves(ImmutableCollectionsMarshal.AsImmutableArray(leaves));
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
        var lb = ReferenceEquals(a, b) ? la : b.ToLeaves();
        RequireSameStructure(la, lb, nameof(b));
        var sum = 0.0;
        for (var i = 0; i < la.Length; i++)
        {
            ReadOnlySpan<double> va = la[i].Values.AsSpan(), vb = lb[i].Values.AsSpan();
            for (var k = 0; k < va.Length; k++) sum += va[k] * vb[k];
        }
        return sum;
    }

    /// <summary>The Euclidean norm over all entries (the global norm of PyTorch's clip_grad_norm_).</summary>
    /// <param name="a">Any tree.</param>
    [Pure] public static double Norm<T>(T a) where T : IParameterTree<T> => Math.Sqrt(Dot(a, a));

    /// <summary>Number of entries over all leaves.</summary>
    /// <param name="a">Any tree.</param>
    [Pure] public static int Count<T>(T a) where T : IParameterTree<T> => a.LeafShapes().Sum(l => l.Count);

    /// <summary>All entries in leaf order, each leaf column-major.</summary>
    /// <param name="a">Any tree.</param>
    [Pure]
    public static double[] Flatten<T>(T a) where T : IParameterTree<T>
    {
        if (a is not IFlatTree tree) return Concatenate(a.ToLeaves());
        var flat = new double[Count(a)];
        var written = tree.WriteValues(flat);
        return written == flat.Length ? flat : throw new InvalidOperationException($"expected {flat.Length} entries from the tree but it wrote {written}");
    }

    /// <summary>The inverse of <see cref="Flatten{T}"/>: a tree shaped like <paramref name="like"/> holding <paramref name="values"/>.</summary>
    /// <param name="like">Tree that gives names and shapes.</param>
    /// <param name="values">Exactly <see cref="Count{T}"/>(like) entries.</param>
    [Pure]
    public static T Unflatten<T>(T like, ReadOnlySpan<double> values) where T : IParameterTree<T>
    {
        var shapes = like.LeafShapes();
        var total = shapes.Sum(l => l.Count);
        if (values.Length != total)
            throw new ArgumentException($"expected {total} values for this tree but got {values.Length}", nameof(values));
        var leaves = new Leaf[shapes.Length];
        var offset = 0;
        for (var i = 0; i < shapes.Length; i++)
        {
            var (name, rows, columns) = shapes[i];
            leaves[i] = new Leaf(name, rows, columns, ImmutableCollectionsMarshal.AsImmutableArray(values.Slice(offset, rows * columns).ToArray()));
            offset += rows * columns;
        }
        return like.FromLeaves(ImmutableCollectionsMarshal.AsImmutableArray(leaves));
    }

    /// <summary>
    /// Overwrites the entries of <paramref name="scratch"/> in place with <paramref name="values"/> (in the order of
    /// <see cref="Flatten{T}"/>), so that it equals <see cref="Unflatten{T}"/>(scratch, values) without new arrays: for a
    /// tree that nothing else holds or reads, never for one a caller has. False when the tree cannot be overwritten
    /// (a tree of another kind, or a leaf not stored as one dense array) or <paramref name="values"/> has another
    /// length; the tree may then be partly written and must be dropped.
    /// </summary>
    internal static bool TryOverwrite<T>(T scratch, ReadOnlySpan<double> values) where T : IParameterTree<T> =>
        scratch is IFlatTree flat && values.Length == Count(scratch) && flat.ReadValues(values) == values.Length;

    /// <summary>
    /// The entries of <paramref name="a"/> in the order of <see cref="Flatten{T}"/> from <paramref name="destination"/>[0],
    /// without a new array; returns their count.
    /// </summary>
    internal static int Write<T>(T a, Span<double> destination) where T : IParameterTree<T> =>
        a is IFlatTree tree ? tree.WriteValues(destination) : Write(a.ToLeaves(), destination);

    /// <summary>The values of <paramref name="leaves"/> in order from <paramref name="destination"/>[0]; returns their count.</summary>
    internal static int Write(ImmutableArray<Leaf> leaves, Span<double> destination)
    {
        var offset = 0;
        foreach (var leaf in leaves)
        {
            leaf.Values.AsSpan().CopyTo(destination[offset..]);
            offset += leaf.Values.Length;
        }
        return offset;
    }

    /// <summary>The values of <paramref name="leaves"/> in order, in one new array.</summary>
    internal static double[] Concatenate(ImmutableArray<Leaf> leaves)
    {
        var flat = new double[leaves.Sum(l => l.Values.Length)];
        Write(leaves, flat);
        return flat;
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

    /// <summary>
    /// Reads back a list of leaves against the receiver's leaf shapes: checks names and shapes (no value of the
    /// receiver is copied) and hands them to <paramref name="build"/>. For implementers of <see cref="IParameterTree{TSelf}.FromLeaves"/>.
    /// </summary>
    /// <param name="expected">The receiver's own leaf shapes (<see cref="IParameterTree{TSelf}.LeafShapes"/>).</param>
    /// <param name="actual">The leaves to read.</param>
    /// <param name="build">Builds the record from the checked leaves.</param>
    [Pure]
    public static T Rebuild<T>(ImmutableArray<LeafShape> expected, ImmutableArray<Leaf> actual, Func<ImmutableArray<Leaf>, T> build)
    {
        RequireSameStructure(expected, actual, "leaves");
        return build(actual);
    }

    internal static void RequireSameStructure(ImmutableArray<Leaf> expected, ImmutableArray<Leaf> actual, string argument)
    {
        RequireSameStructure(expected.IsDefault ? default : ImmutableArray.CreateRange(expected, l => l.Shape), actual, argument);
    }

    /// <summary>The check of <see cref="RequireSameStructure(ImmutableArray{LeafShape}, ImmutableArray{Leaf}, string)"/> on leaf shapes alone: names, rows and columns in order.</summary>
    internal static void RequireSameShapes(ImmutableArray<LeafShape> expected, ImmutableArray<LeafShape> actual, string argument)
    {
        if (expected.Length != actual.Length)
            throw new ArgumentException($"expected {argument} to have {expected.Length} leaves but got {actual.Length}", argument);
        for (var i = 0; i < expected.Length; i++)
            if (expected[i] != actual[i])
                throw new ArgumentException(
                    $"expected leaf {i} of {argument} to be {expected[i].Name} {expected[i].Rows}×{expected[i].Columns} but got {actual[i].Name} {actual[i].Rows}×{actual[i].Columns}",
                    argument);
    }

    internal static void RequireSameStructure(ImmutableArray<LeafShape> expected, ImmutableArray<Leaf> actual, string argument)
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
