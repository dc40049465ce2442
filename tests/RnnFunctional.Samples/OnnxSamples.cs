using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.OnnxRuntime;
using Xunit;

namespace RnnFunctional.Samples;

/// <summary>The ONNX snippets of docs/interchange.md: a stack exported to ONNX and run by ONNX Runtime.</summary>
public sealed class OnnxSamples : IDisposable
{
    private readonly DirectoryInfo directory = Directory.CreateTempSubdirectory("onnx-");

    public void Dispose() => directory.Delete(recursive: true);

    [Fact]
    public void ExportsAStackAndRunsItInOnnxRuntime()
    {
        var path = Path.Combine(directory.FullName, "model.onnx");
        var p = StackParameters.Initialize(
            [Layer.Bidirectional(Layer.Lstm(3, 8, 1), Layer.Lstm(3, 8, 2)), Layer.Gru(16, 8, 3)], 5, seed: 5);

        #region onnx-export
        // Float: ONNX Runtime's CPU provider runs RNN, LSTM and GRU in float only.
        var saved = OnnxExport.Save(path, p, OnnxPrecision.Float);
        #endregion
        Assert.True(saved.IsSuccess);

        var (steps, m, nx) = (4, 2, 3);
        var random = new Random(1);
        ImmutableArray<Matrix<double>> xs = [.. Enumerable.Range(0, steps).Select(_ => Matrix<double>.Build.Dense(nx, m, (_, _) => random.NextDouble()))];
        int[] lengths = [4, 2];

        #region onnx-run
        using var session = new InferenceSession(path);
        var x = new float[steps * m * nx];                               // X[t, j, i] = xs[t][i, j]
        for (var t = 0; t < steps; t++)
            for (var j = 0; j < m; j++)
                for (var i = 0; i < nx; i++)
                    x[(t * m + j) * nx + i] = (float)xs[t][i, j];
        OrtValue Zeros(int directions) => OrtValue.CreateTensorValueFromMemory(new float[directions * m * 8], [directions, m, 8]);
        var inputs = new Dictionary<string, OrtValue>
        {
            [OnnxExport.Input] = OrtValue.CreateTensorValueFromMemory(x, [steps, m, nx]),
            [OnnxExport.Lengths] = OrtValue.CreateTensorValueFromMemory(lengths, [m]),
            [OnnxExport.InitialH(0)] = Zeros(2),                          // [D, batch, n_a], forward direction first
            [OnnxExport.InitialC(0)] = Zeros(2),
            [OnnxExport.InitialH(1)] = Zeros(1),
        };
        using var outputs = session.Run(new RunOptions(), inputs, [OnnxExport.Predictions]);
        var y = outputs[0].GetTensorDataAsSpan<float>().ToArray();      // Y[t, j, k] = Predictions[t][k, j]
        #endregion

        var expected = Stack.Forward(p, xs, [.. lengths]).Predictions;
        for (var t = 0; t < steps; t++)
            for (var j = 0; j < m; j++)
                for (var k = 0; k < 5; k++)
                    Assert.Equal(expected[t][k, j], y[(t * m + j) * 5 + k], 1e-5);
        foreach (var value in inputs.Values) value.Dispose();

        #region onnx-import
        // Back from ONNX: the float export's weights, each rounded to float.
        LanguageExt.Validation<LanguageExt.Common.Error, StackParameters> imported = OnnxImport.Load(path);
        #endregion
        var q = imported.Match(r => r, errors => throw new InvalidOperationException(string.Join("; ", errors)));
        Assert.Equal(p.ToLeaves().SelectMany(l => l.Values).Select(v => (double)(float)v), q.ToLeaves().SelectMany(l => l.Values));
    }
}
