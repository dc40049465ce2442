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

    /// <summary>The leaf's name and shape, without its values.</summary>
    public LeafShape Shape => new(Name, Rows, Columns);

    /// <summary>The leaf with its name prefixed by <paramref name="prefix"/> and a dot.</summary>
    /// <param name="prefix">Name of the enclosing node.</param>
    [Pure]
    public Leaf Under(string prefix) => this with { Name = $"{prefix}.{Name}" };
}

/// <summary>
/// The name and shape of a <see cref="Leaf"/> without its values: what code that only checks or lays out a tree
/// reads (<see cref="IParameterTree{TSelf}.LeafShapes"/>), at no copy of the parameters.
/// </summary>
/// <param name="Name">Dotted path of the leaf within its tree.</param>
/// <param name="Rows">Number of rows (the length for a vector leaf).</param>
/// <param name="Columns">Number of columns (1 for a vector leaf).</param>
public readonly record struct LeafShape(string Name, int Rows, int Columns)
{
    /// <summary>Rows·Columns, the number of entries.</summary>
    public int Count => Rows * Columns;

    /// <summary>The shape with its name prefixed by <paramref name="prefix"/> and a dot.</summary>
    /// <param name="prefix">Name of the enclosing node.</param>
    [Pure]
    public LeafShape Under(string prefix) => this with { Name = $"{prefix}.{Name}" };
}

/// <summary>
/// A named field of a parameter record, a matrix or a vector: a record lists its fields once and reads both its
/// leaves (copies) and its leaf shapes (no copy) from that list.
/// </summary>
internal readonly struct Part
{
    private readonly Matrix<double>? matrix;
    private readonly Vector<double>? vector;

    private Part(string name, Matrix<double>? matrix, Vector<double>? vector) => (Name, this.matrix, this.vector) = (name, matrix, vector);

    public string Name { get; }

    public static implicit operator Part((string Name, Matrix<double> Value) field) => new(field.Name, field.Value, null);

    public static implicit operator Part((string Name, Vector<double> Value) field) => new(field.Name, null, field.Value);

    public Leaf Leaf => matrix is not null ? Leaf.Of(Name, matrix) : Leaf.Of(Name, vector!);

    public LeafShape Shape => matrix is not null ? new(Name, matrix.RowCount, matrix.ColumnCount) : new(Name, vector!.Count, 1);

    public static ImmutableArray<Leaf> Leaves(ReadOnlySpan<Part> parts)
    {
        var leaves = new Leaf[parts.Length];
        for (var i = 0; i < parts.Length; i++) leaves[i] = parts[i].Leaf;
        return ImmutableCollectionsMarshal.AsImmutableArray(leaves);
    }

    public static ImmutableArray<LeafShape> Shapes(ReadOnlySpan<Part> parts)
    {
        var shapes = new LeafShape[parts.Length];
        for (var i = 0; i < parts.Length; i++) shapes[i] = parts[i].Shape;
        return ImmutableCollectionsMarshal.AsImmutableArray(shapes);
    }

    /// <summary>The field's entries (column-major for a matrix) at the start of <paramref name="destination"/>; returns their count.</summary>
    public int WriteTo(Span<double> destination)
    {
        var count = matrix is not null ? matrix.RowCount * matrix.ColumnCount : vector!.Count;
        var values = matrix is not null ? matrix.AsColumnMajorArray() ?? matrix.ToColumnMajorArray() : vector!.AsArray() ?? vector.ToArray();
        values.AsSpan(0, count).CopyTo(destination);
        return count;
    }

    /// <summary>
    /// Overwrites the field's entries in place from the start of <paramref name="source"/>; returns their count, or −1
    /// when the field's storage is not one dense array (nothing is written then).
    /// </summary>
    public int ReadFrom(ReadOnlySpan<double> source)
    {
        var count = matrix is not null ? matrix.RowCount * matrix.ColumnCount : vector!.Count;
        var values = matrix is not null ? matrix.AsColumnMajorArray() : vector!.AsArray();
        if (values is null || values.Length != count || source.Length < count) return -1;
        source[..count].CopyTo(values);
        return count;
    }

    /// <summary>
    /// Every field's entries overwritten in place from <paramref name="source"/> one after another (<see cref="ReadFrom"/>),
    /// but those of the fields named in <paramref name="skip"/>; returns their count, or −1 as soon as a field cannot be.
    /// </summary>
    public static int ReadAll(ReadOnlySpan<Part> parts, ReadOnlySpan<double> source, ImmutableArray<string> skip)
    {
        var offset = 0;
        foreach (var part in parts)
        {
            if (!skip.IsDefaultOrEmpty && skip.Contains(part.Name)) continue;
            var read = part.ReadFrom(source[offset..]);
            if (read < 0) return -1;
            offset += read;
        }
        return offset;
    }

    /// <summary>Every field's entries one after another (<see cref="WriteTo"/>), but those of the fields named in <paramref name="skip"/>; returns their count.</summary>
    public static int WriteAll(ReadOnlySpan<Part> parts, Span<double> destination, ImmutableArray<string> skip)
    {
        var offset = 0;
        foreach (var part in parts)
            if (skip.IsDefaultOrEmpty || !skip.Contains(part.Name)) offset += part.WriteTo(destination[offset..]);
        return offset;
    }
}

/// <summary>
/// A tree of the library that writes its entries straight into a flat array, in the order and layout of its
/// <see cref="IParameterTree{TSelf}.ToLeaves"/> (leaf after leaf, each column-major), without copying each leaf first:
/// what <see cref="Tree.Flatten{T}"/> reads once per training step.
/// </summary>
internal interface IFlatTree
{
    /// <summary>Writes every entry from <paramref name="destination"/>[0], but those of the leaves named in <paramref name="skip"/>; returns the count written.</summary>
    int WriteValues(Span<double> destination, ImmutableArray<string> skip = default);

    /// <summary>
    /// Overwrites every entry in place from <paramref name="source"/>[0], in the order of <see cref="WriteValues"/>, but
    /// those of the leaves named in <paramref name="skip"/>: for a tree that nothing else holds (a scratch copy of
    /// received values), never for one a caller may read. Returns the count read, or −1 when a leaf's storage is not one
    /// dense array (the tree may then be partly written and must be dropped).
    /// </summary>
    int ReadValues(ReadOnlySpan<double> source, ImmutableArray<string> skip = default);
}
