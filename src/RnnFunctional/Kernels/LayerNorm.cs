using System.Numerics.Tensors;
using MathNet.Numerics.LinearAlgebra;
using Vector = System.Numerics.Vector<double>;

namespace RnnFunctional.Kernels;

/// <summary>
/// Layer normalization of one block of n values (Ba, Kiros and Hinton 2016), without its gain and bias:
/// μ = Σ v / n, σ² = Σ (v − μ)² / n, v̂ = (v − μ) / √(σ² + ε), and its backward
/// dv = (dv̂ − mean(dv̂) − v̂⊙mean(dv̂⊙v̂)) / √(σ² + ε). The fused cells and their generic folds both call these, so a
/// normalization has the same bits on both paths.
/// </summary>
internal static class LayerNorm
{
    /// <summary>The default ε added to the variance: PyTorch's for nn.LayerNorm.</summary>
    public const double Epsilon = 1e-5;

    /// <summary>Writes v̂ of <paramref name="v"/> to <paramref name="vHat"/> (which may be <paramref name="v"/>) and returns 1/√(σ² + ε).</summary>
    public static double Forward(ReadOnlySpan<double> v, Span<double> vHat, double epsilon)
    {
        var n = v.Length;
        var mean = TensorPrimitives.Sum(v) / n;                                     // μ = Σ v / n
        TensorPrimitives.Subtract(v, mean, vHat);                                   // v − μ
        var rstd = 1.0 / Math.Sqrt(TensorPrimitives.SumOfSquares(vHat) / n + epsilon); // 1/√(σ² + ε), σ² = Σ (v − μ)² / n
        TensorPrimitives.Multiply(vHat, rstd, vHat);                                // v̂ = (v − μ) / √(σ² + ε)
        return rstd;
    }

    /// <summary>
    /// Writes dv = rstd·(dv̂ − mean(dv̂) − v̂⊙mean(dv̂⊙v̂)) to <paramref name="dv"/> (which may be <paramref name="dvHat"/>),
    /// the gradient of the block's values from that of its v̂.
    /// </summary>
    public static void Backward(ReadOnlySpan<double> vHat, double rstd, ReadOnlySpan<double> dvHat, Span<double> dv)
    {
        var n = vHat.Length;
        var (mean, meanTimesHat) = (TensorPrimitives.Sum(dvHat) / n, TensorPrimitives.Dot(dvHat, vHat) / n);
        if (Lanes.IsWhole(n)) Backward<Lanes.Whole>(vHat, rstd, dvHat, dv, mean, meanTimesHat);
        else Backward<Lanes.Padded>(vHat, rstd, dvHat, dv, mean, meanTimesHat);
    }

    private static void Backward<T>(ReadOnlySpan<double> vHat, double rstd, ReadOnlySpan<double> dvHat, Span<double> dv, double mean, double meanTimesHat)
        where T : struct, Lanes.IAccess
    {
        var (m, mt, r) = (new Vector(mean), new Vector(meanTimesHat), new Vector(rstd));
        for (var k = 0; k < vHat.Length; k += Lanes.Width)
            T.Store(dv, k, (T.Load(dvHat, k) - m - T.Load(vHat, k) * mt) * r);          // dv = (dv̂ − mean(dv̂) − v̂⊙mean(dv̂⊙v̂))·rstd
    }

    /// <summary>v̂ of every block of n = v.RowCount / blocks rows of every column of <paramref name="v"/>, and 1/√(σ² + ε) of each (blocks×m).</summary>
    public static (Matrix<double> Hat, Matrix<double> Rstd) Rows(Matrix<double> v, int blocks, double epsilon)
    {
        var (n, m) = (v.RowCount / blocks, v.ColumnCount);
        var (values, hat, rstd) = (Block.Of(v), new double[v.RowCount * m], new double[blocks * m]);
        for (var j = 0; j < m; j++)
            for (var b = 0; b < blocks; b++)
                rstd[j * blocks + b] = Forward(values.Span.Slice(j * v.RowCount + b * n, n), hat.AsSpan(j * v.RowCount + b * n, n), epsilon);
        return (Matrix<double>.Build.Dense(v.RowCount, m, hat), Matrix<double>.Build.Dense(blocks, m, rstd));
    }

    /// <summary>The backward of <see cref="Rows"/>: dv of every block of every column from v̂, 1/√(σ² + ε) and dv̂.</summary>
    public static Matrix<double> RowsBackward(Matrix<double> hat, Matrix<double> rstd, Matrix<double> dHat)
    {
        var (blocks, m) = (rstd.RowCount, hat.ColumnCount);
        var n = hat.RowCount / blocks;
        var (h, d, dv) = (Block.Of(hat), Block.Of(dHat), new double[hat.RowCount * m]);
        for (var j = 0; j < m; j++)
            for (var b = 0; b < blocks; b++)
            {
                var at = j * hat.RowCount + b * n;
                Backward(h.Span.Slice(at, n), rstd[b, j], d.Span.Slice(at, n), dv.AsSpan(at, n));
            }
        return Matrix<double>.Build.Dense(hat.RowCount, m, dv);
    }
}
