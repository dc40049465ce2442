using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.OnnxRuntime;

namespace RnnFunctional.Tests;

/// <summary>What ONNX Runtime computed for an exported stack, in the library's layout (one matrix n×m per step or state part).</summary>
/// <param name="Predictions">Y[t] as n_y×m.</param>
/// <param name="Final">Final[k]: layer k's final state parts in <see cref="StackForward.Final"/>'s order (empty when the model has no final states).</param>
public sealed record OnnxRun(ImmutableArray<Matrix<double>> Predictions, ImmutableArray<ImmutableArray<Matrix<double>>> Final);

/// <summary>
/// Runs an exported model with ONNX Runtime's CPU provider on the library's inputs: x⟨t⟩ (n_x×m) becomes X[t, j, :],
/// initial[k] (forward parts, then reverse parts) becomes initial_h_lk[d, j, :] and initial_c_lk[d, j, :].
/// </summary>
public static class OnnxRuntimeRunner
{
    public static OnnxRun Run(byte[] model, StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<int> lengths,
        ImmutableArray<ImmutableArray<Matrix<double>>> initial, OnnxPrecision precision)
    {
        using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(model, options);
        var (steps, m) = (xs.Length, xs[0].ColumnCount);
        var inputs = new Dictionary<string, OrtValue>
        {
            [OnnxExport.Input] = Real(precision, [steps, m, xs[0].RowCount], (t, j, i) => xs[t][i, j]),
            [OnnxExport.Lengths] = OrtValue.CreateTensorValueFromMemory(lengths.ToArray(), [m]),
        };
        for (var k = 0; k < p.Layers.Length; k++)
        {
            var (directions, parts) = Shape(p.Layers[k]);
            var state = initial[k];
            inputs[OnnxExport.InitialH(k)] = Real(precision, [directions, m, state[0].RowCount], (d, j, i) => state[d * parts][i, j]);
            if (parts == 2)
                inputs[OnnxExport.InitialC(k)] = Real(precision, [directions, m, state[0].RowCount], (d, j, i) => state[d * parts + 1][i, j]);
        }
        try
        {
            using var outputs = session.Run(new RunOptions(), inputs, session.OutputNames);
            var byName = session.OutputNames.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => outputs[x.i]);
            var y = byName[OnnxExport.Predictions];
            var ny = p.OutputSize;
            ImmutableArray<Matrix<double>> predictions = [.. Enumerable.Range(0, steps).Select(t => Matrix(y, precision, ny, m, t))];
            var final = !byName.ContainsKey(OnnxExport.FinalH(0))
                ? ImmutableArray<ImmutableArray<Matrix<double>>>.Empty
                : [.. p.Layers.Select((layer, k) =>
                {
                    var (directions, parts) = Shape(layer);
                    var na = initial[k][0].RowCount;
                    return Enumerable.Range(0, directions).SelectMany(d => parts == 2
                        ? new[] { Matrix(byName[OnnxExport.FinalH(k)], precision, na, m, d), Matrix(byName[OnnxExport.FinalC(k)], precision, na, m, d) }
                        : [Matrix(byName[OnnxExport.FinalH(k)], precision, na, m, d)]).ToImmutableArray();
                })];
            return new(predictions, final);
        }
        finally
        {
            foreach (var value in inputs.Values) value.Dispose();
        }
    }

    /// <summary>D and the number of state parts (2 for an LSTM) of a layer.</summary>
    private static (int Directions, int Parts) Shape(Layer layer) =>
        (layer is BidirectionalLayer ? 2 : 1, layer.StateRows.Length / (layer is BidirectionalLayer ? 2 : 1));

    /// <summary>A [a, b, c] tensor of the model's element type whose entry (i0, i1, i2) is value(i0, i1, i2).</summary>
    private static OrtValue Real(OnnxPrecision precision, long[] shape, Func<int, int, int, double> value)
    {
        var (a, b, c) = ((int)shape[0], (int)shape[1], (int)shape[2]);
        var data = new double[a * b * c];
        for (var i0 = 0; i0 < a; i0++)
            for (var i1 = 0; i1 < b; i1++)
                for (var i2 = 0; i2 < c; i2++)
                    data[(i0 * b + i1) * c + i2] = value(i0, i1, i2);
        return precision == OnnxPrecision.Float
            ? OrtValue.CreateTensorValueFromMemory(data.Select(v => (float)v).ToArray(), shape)
            : OrtValue.CreateTensorValueFromMemory(data, shape);
    }

    /// <summary>Slice <paramref name="outer"/> of a [outer, m, rows] tensor as rows×m.</summary>
    private static Matrix<double> Matrix(OrtValue value, OnnxPrecision precision, int rows, int m, int outer)
    {
        var data = precision == OnnxPrecision.Float
            ? value.GetTensorDataAsSpan<float>().ToArray().Select(v => (double)v).ToArray()
            : value.GetTensorDataAsSpan<double>().ToArray();
        return Matrix<double>.Build.Dense(rows, m, (i, j) => data[(outer * m + j) * rows + i]);
    }
}
