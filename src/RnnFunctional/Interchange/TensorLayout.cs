using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// The copies that move weights between the library's column-major matrices and the row-major tensors of
/// safetensors, PyTorch and ONNX: one strided, blocked transpose, so that every rearrangement (gate blocks, the
/// x and a columns of an LSTM gate) is a single copy from the source's storage into the destination's, with no
/// intermediate matrix.
/// </summary>
internal static class TensorLayout
{
    private const int Tile = 32;

    /// <summary>
    /// <c>destination[j·destinationStride + i] = source[i·sourceStride + j]</c> for i &lt; rows, j &lt; columns: the
    /// rows×columns row-major block at the start of <paramref name="source"/> (rows <paramref name="sourceStride"/>
    /// apart) written transposed, as a columns×rows row-major block (rows <paramref name="destinationStride"/> apart).
    /// A column-major matrix is the row-major matrix of its transpose, so this also turns one into the other.
    /// </summary>
    public static void Transpose(ReadOnlySpan<double> source, int sourceStride, int rows, int columns, Span<double> destination, int destinationStride)
    {
        if (rows == 0 || columns == 0) return;
        if (source.Length < (long)(rows - 1) * sourceStride + columns || destination.Length < (long)(columns - 1) * destinationStride + rows)
            throw new ArgumentException($"a {rows}×{columns} block does not fit its source or destination");
        for (var i0 = 0; i0 < rows; i0 += Tile)
        {
            var i1 = Math.Min(rows, i0 + Tile);
            for (var j0 = 0; j0 < columns; j0 += Tile)
            {
                var j1 = Math.Min(columns, j0 + Tile);
                for (var i = i0; i < i1; i++)
                {
                    var row = source.Slice(i * sourceStride, columns);
                    for (var j = j0; j < j1; j++) destination[j * destinationStride + i] = row[j];
                }
            }
        }
    }

    /// <summary>The column-major storage of a matrix: its own array when it has one (no copy), else a copy.</summary>
    public static double[] Storage(Matrix<double> m) => m.AsColumnMajorArray() ?? m.ToColumnMajorArray();

    /// <summary>The entries of a vector: its own array when it has one (no copy), else a copy.</summary>
    public static double[] Storage(Vector<double> v) => v.AsArray() ?? v.ToArray();

    /// <summary>A new row-major copy of a matrix's entries.</summary>
    public static double[] RowMajor(Matrix<double> m)
    {
        var result = new double[m.RowCount * m.ColumnCount];
        Transpose(Storage(m), m.RowCount, m.ColumnCount, m.RowCount, result, m.ColumnCount);
        return result;
    }

    /// <summary>A new rows×columns matrix from row-major entries, binding the copy it makes as its storage.</summary>
    public static Matrix<double> FromRowMajor(ReadOnlySpan<double> rowMajor, int rows, int columns)
    {
        var storage = new double[rows * columns];
        Transpose(rowMajor, columns, rows, columns, storage, rows);
        return Matrix<double>.Build.Dense(rows, columns, storage);
    }

    /// <summary>The index of the first entry that is NaN or infinite, or −1.</summary>
    public static int FirstNonFinite(ReadOnlySpan<double> values)
    {
        if (System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(values)) return -1;
        for (var i = 0; i < values.Length; i++)
            if (!double.IsFinite(values[i])) return i;
        return -1;
    }
}
