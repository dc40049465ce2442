using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Runtime.InteropServices;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// The element types of a safetensors file that RnnFunctional reads (all four, converted to double) and writes (F64
/// and F32).
/// </summary>
public enum SafetensorsDType
{
    /// <summary>IEEE-754 binary64, 8 bytes: read and written exactly.</summary>
    F64,

    /// <summary>IEEE-754 binary32, 4 bytes: read exactly; written rounded to the nearest float.</summary>
    F32,

    /// <summary>IEEE-754 binary16, 2 bytes: read only.</summary>
    F16,

    /// <summary>bfloat16 (the upper half of a binary32), 2 bytes: read only.</summary>
    BF16,
}

/// <summary>
/// One tensor of a safetensors file: its element type, its shape (rank 0 and dimensions of 0 allowed) and its
/// values as doubles in row-major order (the last index varies fastest, as in PyTorch and NumPy).
/// </summary>
public sealed record SafetensorsTensor
{
    /// <summary>A tensor; the number of values must be the product of the dimensions.</summary>
    /// <param name="dtype">The element type the tensor is (or will be) stored as.</param>
    /// <param name="shape">Dimensions, each ≥ 0 (empty for a scalar).</param>
    /// <param name="values">Row-major values; the array is kept as it is (immutable arrays are not copied).</param>
    /// <exception cref="ArgumentException">A dimension is negative or the values do not fill the shape.</exception>
    public SafetensorsTensor(SafetensorsDType dtype, ImmutableArray<int> shape, ImmutableArray<double> values)
    {
        if (!Enum.IsDefined(dtype))
            throw new ArgumentException($"expected dtype to be F64, F32, F16 or BF16 but got {(int)dtype}", nameof(dtype));
        if (shape.IsDefault) throw new ArgumentException("expected shape to be an array of dimensions but got a default (null) array", nameof(shape));
        if (values.IsDefault) throw new ArgumentException("expected values to be an array but got a default (null) array", nameof(values));
        if (shape.Any(d => d < 0))
            throw new ArgumentException($"expected shape to have dimensions ≥ 0 but got [{string.Join(", ", shape)}]", nameof(shape));
        var count = SafetensorsFormat.Product(shape.Select(d => (long)d));
        if (count != values.Length)
            throw new ArgumentException($"expected values to hold the product of the shape [{string.Join(", ", shape)}] = {(count is { } n ? n.ToString(System.Globalization.CultureInfo.InvariantCulture) : "more than 2⁶³")} entries but got {values.Length}", nameof(values));
        (DType, Shape, Values) = (dtype, shape, values);
    }

    /// <summary>The element type in the file.</summary>
    public SafetensorsDType DType { get; }

    /// <summary>The dimensions, outermost first.</summary>
    public ImmutableArray<int> Shape { get; }

    /// <summary>The values in row-major order.</summary>
    public ImmutableArray<double> Values { get; }

    /// <summary>The shape as PyTorch prints it, e.g. <c>12×4</c>, <c>[12]</c> for a vector, <c>scalar</c> for rank 0.</summary>
    public string ShapeText => Shape.Length switch
    {
        0 => "scalar",
        1 => $"[{Shape[0]}]",
        _ => string.Join("×", Shape),
    };

    /// <summary>A 2-D tensor holding a copy of a matrix (rows×columns, row-major).</summary>
    /// <param name="value">Any matrix.</param>
    /// <param name="dtype">The element type to store it as.</param>
    [Pure]
    public static SafetensorsTensor Of(Matrix<double> value, SafetensorsDType dtype = SafetensorsDType.F64)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new(dtype, [value.RowCount, value.ColumnCount], ImmutableCollectionsMarshal.AsImmutableArray(TensorLayout.RowMajor(value)));
    }

    /// <summary>A 1-D tensor holding a copy of a vector.</summary>
    /// <param name="value">Any vector.</param>
    /// <param name="dtype">The element type to store it as.</param>
    [Pure]
    public static SafetensorsTensor Of(Vector<double> value, SafetensorsDType dtype = SafetensorsDType.F64)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new(dtype, [value.Count], ImmutableCollectionsMarshal.AsImmutableArray(value.ToArray()));
    }

    /// <summary>The tensor as a new matrix, when it is 2-D.</summary>
    /// <exception cref="InvalidOperationException">The tensor is not 2-D.</exception>
    [Pure]
    public Matrix<double> ToMatrix() =>
        Shape.Length == 2
            ? TensorLayout.FromRowMajor(Values.AsSpan(), Shape[0], Shape[1])
            : throw new InvalidOperationException($"expected a 2-D tensor but it is {ShapeText}");

    /// <summary>The tensor as a new vector, when it is 1-D.</summary>
    /// <exception cref="InvalidOperationException">The tensor is not 1-D.</exception>
    [Pure]
    public Vector<double> ToVector() =>
        Shape.Length == 1
            ? Vector<double>.Build.Dense(Values.ToArray())
            : throw new InvalidOperationException($"expected a 1-D tensor but it is {ShapeText}");

    /// <summary>The same values stored as another element type (converted when written).</summary>
    /// <param name="dtype">The element type.</param>
    [Pure]
    public SafetensorsTensor As(SafetensorsDType dtype) => new(dtype, Shape, Values);

    /// <summary>Same element type, shape and values, bit for bit (so NaN equals NaN and 0 differs from −0).</summary>
    /// <param name="other">Another tensor.</param>
    public bool Equals(SafetensorsTensor? other) =>
        other is not null && DType == other.DType && Shape.SequenceEqual(other.Shape)
        && Values.Length == other.Values.Length
        && Values.Select(BitConverter.DoubleToInt64Bits).SequenceEqual(other.Values.Select(BitConverter.DoubleToInt64Bits));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(DType, Shape.Length, Values.Length);
}

/// <summary>
/// The content of a safetensors file: string metadata (the header's <c>__metadata__</c>) and named tensors, both in
/// ordinal name order (the order they are written in).
/// </summary>
/// <param name="Metadata">Key → value.</param>
/// <param name="Tensors">Name → tensor; no name is <c>__metadata__</c>.</param>
public sealed record SafetensorsFile(ImmutableSortedDictionary<string, string> Metadata, ImmutableSortedDictionary<string, SafetensorsTensor> Tensors)
{
    /// <summary>A file of tensors and metadata (both copied into ordinal-ordered maps).</summary>
    /// <param name="tensors">Name → tensor.</param>
    /// <param name="metadata">Key → value; omitted, none.</param>
    [Pure]
    public static SafetensorsFile Of(IEnumerable<KeyValuePair<string, SafetensorsTensor>> tensors, IEnumerable<KeyValuePair<string, string>>? metadata = null) =>
        new((metadata ?? []).ToImmutableSortedDictionary(StringComparer.Ordinal), tensors.ToImmutableSortedDictionary(StringComparer.Ordinal));

    /// <summary>
    /// A file holding the leaves of a parameter tree under their own names (<c>layers[0].Wax</c>, <c>Wy</c>, …), each
    /// a 2-D tensor Rows×Columns (a vector leaf is n×1): RnnFunctional's own names, read back by <see cref="ReadInto{T}"/>.
    /// </summary>
    /// <param name="parameters">Any parameter tree.</param>
    /// <param name="metadata">Key → value; omitted, none.</param>
    /// <param name="dtype">The element type to store the values as (F64 keeps them exactly).</param>
    [Pure]
    public static SafetensorsFile OfTree<T>(T parameters, IEnumerable<KeyValuePair<string, string>>? metadata = null,
        SafetensorsDType dtype = SafetensorsDType.F64) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return Of(parameters.ToLeaves().Select(l =>
        {
            var rowMajor = new double[l.Values.Length];
            TensorLayout.Transpose(l.Values.AsSpan(), l.Rows, l.Columns, l.Rows, rowMajor, l.Columns);   // column-major Rows×Columns to row-major
            return KeyValuePair.Create(l.Name, new SafetensorsTensor(dtype, [l.Rows, l.Columns], ImmutableCollectionsMarshal.AsImmutableArray(rowMajor)));
        }), metadata);
    }

    /// <summary>
    /// The tensors read into a tree shaped like <paramref name="template"/> (names as <see cref="OfTree{T}"/> writes
    /// them): every missing tensor, tensor of another shape and tensor left over is reported.
    /// </summary>
    /// <param name="template">A tree of the expected structure (its values are ignored).</param>
    [Pure]
    public Validation<Error, T> ReadInto<T>(T template) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(template);
        return LeavesFor(template.LeafShapes()).Map(template.FromLeaves);
    }

    /// <summary>The tensors as leaves of the given names and shapes, column-major; or every missing, misshapen and left-over tensor.</summary>
    internal Validation<Error, ImmutableArray<Leaf>> LeavesFor(ImmutableArray<LeafShape> expected)
    {
        var problems = expected.SelectMany(leaf => Tensors.TryGetValue(leaf.Name, out var t)
                ? t.Shape.SequenceEqual([leaf.Rows, leaf.Columns]) ? [] : new[] { $"expected {leaf.Name} to be {leaf.Rows}×{leaf.Columns} but got {t.ShapeText}" }
                : [$"missing {leaf.Name} ({leaf.Rows}×{leaf.Columns})"])
            .Concat(Tensors.Keys.Except(expected.Select(l => l.Name)).Select(name => $"unexpected tensor {name}"))
            .ToArray();
        return problems.Length > 0
            ? Validation<Error, ImmutableArray<Leaf>>.Fail(problems.Select(Error.New).ToSeq())
            : Validation<Error, ImmutableArray<Leaf>>.Success([.. expected.Select(leaf =>
                new Leaf(leaf.Name, leaf.Rows, leaf.Columns, ImmutableCollectionsMarshal.AsImmutableArray(ColumnMajor(Tensors[leaf.Name].Values.AsSpan(), leaf.Rows, leaf.Columns))))]);
    }

    private static double[] ColumnMajor(ReadOnlySpan<double> rowMajor, int rows, int columns)
    {
        var result = new double[rows * columns];
        TensorLayout.Transpose(rowMajor, columns, rows, columns, result, rows);
        return result;
    }

    /// <summary>Equal metadata and bit-identical tensors under the same names.</summary>
    /// <param name="other">Another file.</param>
    public bool Equals(SafetensorsFile? other) =>
        other is not null
        && Metadata.Count == other.Metadata.Count && Metadata.All(kv => other.Metadata.TryGetValue(kv.Key, out var v) && v == kv.Value)
        && Tensors.Count == other.Tensors.Count && Tensors.All(kv => other.Tensors.TryGetValue(kv.Key, out var t) && kv.Value.Equals(t));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Metadata.Count, Tensors.Count);
}
