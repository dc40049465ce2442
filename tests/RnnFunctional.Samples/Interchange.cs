using System.Collections.Immutable;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using Xunit;

namespace RnnFunctional.Samples;

/// <summary>The snippets of docs/interchange.md: PyTorch weights in and out through safetensors files.</summary>
public sealed class InterchangeSamples : IDisposable
{
    private readonly DirectoryInfo directory = Directory.CreateTempSubdirectory("interchange-");

    public void Dispose() => directory.Delete(recursive: true);

    /// <summary>What <c>safetensors.torch.save_file(model.state_dict(), "model.safetensors")</c> writes for
    /// <c>self.rnn = nn.LSTM(3, 8, num_layers=2, bidirectional=True); self.fc = nn.Linear(16, 5)</c> (F32 tensors).</summary>
    private string PyTorchFile()
    {
        var model = StackParameters.Initialize(
            [Layer.Bidirectional(Layer.Lstm(3, 8, 1), Layer.Lstm(3, 8, 2)), Layer.Bidirectional(Layer.Lstm(16, 8, 3), Layer.Lstm(16, 8, 4))], 5, seed: 5);
        var path = Path.Combine(directory.FullName, "model.safetensors");
        var tensors = TorchStateDict.FromStack(model, new TorchLayout(TorchCell.Lstm, "rnn", "fc"), dtype: SafetensorsDType.F32)
            .Match(t => t, e => throw new InvalidOperationException(e.Head.Message));
        Assert.True(Safetensors.Save(path, SafetensorsFile.Of(tensors, [KeyValuePair.Create("format", "pt")])).IsSucc);
        return path;
    }

    [Fact]
    public void LoadsAPyTorchModelRunsItAndSavesItBack()
    {
        var path = PyTorchFile();
        var output = Path.Combine(directory.FullName, "trained.safetensors");

        #region interchange-load
        // model.safetensors: safetensors.torch.save_file(model.state_dict(), ...) of a module with
        // self.rnn = nn.LSTM(3, 8, num_layers=2, bidirectional=True) and self.fc = nn.Linear(16, 5)
        var layout = new TorchLayout(TorchCell.Lstm, Prefix: "rnn", ReadOut: "fc");
        Validation<Error, StackParameters> loaded = TorchStateDict.Load(path, layout);
        #endregion

        var p = loaded.Match(q => q, errors => throw new InvalidOperationException(string.Join("; ", errors)));
        Assert.Equal((3, 5, 2), (p.InputSize, p.OutputSize, p.Layers.Length));

        #region interchange-run
        // PyTorch's input (T, m, n_x) becomes T matrices n_x×m: xs[t] = input[t]ᵀ.
        ImmutableArray<Matrix<double>> xs = [.. Enumerable.Range(0, 4).Select(t => Matrix<double>.Build.Dense(3, 2, (i, j) => Math.Sin(t + i - j)))];
        var forward = Stack.Forward(p, xs);
        // forward.Top[t] is PyTorch's output[t]ᵀ (16×m: the forward direction's rows, then the reverse direction's),
        // forward.Predictions[t] is softmax(fc(output[t]))ᵀ.
        #endregion

        Assert.Equal(16, forward.Top[0].RowCount);

        #region interchange-save
        // Back to PyTorch: model.load_state_dict(safetensors.torch.load_file("trained.safetensors")).
        // F32 tensors load into a float model as they are; F64 (exact) into a model.double().
        Validation<Error, Unit> saved = TorchStateDict.Save(output, p, layout, dtype: SafetensorsDType.F32);
        #endregion

        Assert.True(saved.IsSuccess);
        Assert.Equal(Safetensors.Load(path).Map(f => f.Tensors.ToArray()), Safetensors.Load(output).Map(f => f.Tensors.ToArray()));
    }

    [Fact]
    public void AModelOfAnyLayersRoundTripsUnderItsOwnNames()
    {
        var path = Path.Combine(directory.FullName, "stack.safetensors");
        var p = StackParameters.Initialize([Layer.Bidirectional(Layer.Lstm(3, 4, 1), Layer.Gru(3, 2, 2)), Layer.Rnn(6, 5, 3, Activation.Relu)], 7, seed: 4);

        #region interchange-own
        // Any parameter tree, under the library's own leaf names (layers[0].forward.Wf, …, Wy, By), exactly:
        Fin<Unit> written = Safetensors.Save(path, SafetensorsFile.OfTree(p, [KeyValuePair.Create("vocabulary", "abc")]));
        Validation<Error, StackParameters> read = Safetensors.LoadInto(path, template: p);
        #endregion

        Assert.True(written.IsSucc);
        Assert.Equal(p, read.Match(q => q, errors => throw new InvalidOperationException(string.Join("; ", errors))));
    }

    [Fact]
    public void ReportsEveryProblemOfAStateDict()
    {
        var path = PyTorchFile();

        #region interchange-errors
        // The same file read as a GRU: every tensor of the wrong shape is named.
        var errors = TorchStateDict.Load(path, new TorchLayout(TorchCell.Gru, "rnn", "fc"))
            .Match(_ => [], e => e.Select(error => error.Message).ToArray());
        // errors[0]: "expected rnn.weight_ih_l0 to be 3n_a×n_x = 24×3 but got 32×3", …
        #endregion

        Assert.Equal("expected rnn.weight_ih_l0 to be 3n_a×n_x = 24×3 but got 32×3", errors[0]);
        Assert.Equal(16, errors.Length);
    }
}
