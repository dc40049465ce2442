using Onnx;

namespace RnnFunctional.Cli.Tests;

/// <summary>
/// <c>rnnf export --format onnx</c>: the file is the library's <see cref="OnnxExport"/> of the trained model (a single
/// cell as a one-layer stack) with the model file's metadata; ONNX Runtime's agreement with the library is checked in
/// RnnFunctional.Tests' OnnxExportTests.
/// </summary>
public sealed class OnnxExportCommandTests : IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private static RunResult Run(params string[] args) => RunResult.Of(args);

    private string Train(string cell, string layers)
    {
        var corpus = scratch.Write("names.txt", "Aachenosaurus\nAbelisaurus\nBrachiosaurus\nDiplodocus\nIguanodon\nStegosaurus\n");
        var r = Run("train", "--corpus", corpus, "--hidden", "5", "--epochs", "1", "--batch-size", "3", "--held-out", "0.34",
                    "--cell", cell, "--layers", layers, "--model", scratch["model.rnnf"], "--plot", scratch["loss.png"], "--samples", "1");
        Assert.True(r.ExitCode == 0, r.Error);
        return scratch["model.rnnf"];
    }

    private static void FailsWith(RunResult r, string fragment)
    {
        Assert.Equal(2, r.ExitCode);
        var lines = r.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("rnnf export", lines[0]);
        Assert.Contains(fragment, lines[0]);
    }

    [Theory]
    [InlineData("lstm", "1", "LSTM", null)]
    [InlineData("gru", "2", "GRU", "double")]
    [InlineData("rnn", "3", "RNN", "float")]
    public void AnExportedModelIsTheLibrarysExportOfTheTrainedModel(string cell, string layers, string op, string? precision)
    {
        var model = Train(cell, layers);
        string[] args = ["export", "--model", model, "--format", "onnx", "--output", scratch["model.onnx"]];
        var export = Run(precision is null ? args : [.. args, "--precision", precision]);
        Assert.True(export.ExitCode == 0, export.Error);
        Assert.Equal($"wrote {scratch["model.onnx"]}", export.Out.Trim());

        var document = ModelFile.Load(model).Match(d => d, e => throw new InvalidOperationException(e.Message));
        var stack = Models.Load(document, new ExportCommand.ToStack()).Match(s => s, e => throw new InvalidOperationException(e.Message));
        var type = precision == "double" ? OnnxPrecision.Double : OnnxPrecision.Float;
        var expected = OnnxExport.Serialize(stack, type, metadata: document.Metadata).Match(b => b, e => throw new InvalidOperationException(string.Join("; ", e)));
        var bytes = File.ReadAllBytes(scratch["model.onnx"]);
        Assert.Equal(expected, bytes);

        var proto = ModelProto.Parser.ParseFrom(bytes);
        Assert.Equal(Enumerable.Repeat(op, int.Parse(layers)), proto.Graph.Node.Where(n => n.OpType is "RNN" or "LSTM" or "GRU").Select(n => n.OpType));
        Assert.Equal(document.Metadata["vocabulary"], proto.MetadataProps.Single(p => p.Key == "vocabulary").Value);
        Assert.Equal((int)(type == OnnxPrecision.Double ? TensorProto.Types.DataType.Double : TensorProto.Types.DataType.Float), proto.Graph.Input[0].Type.TensorType.ElemType);
    }

    [Fact]
    public void BadOptionsAreOneLine()
    {
        var model = Train("gru", "1");
        FailsWith(Run("export", "--model", model, "--format", "tflite", "--output", scratch["m.x"]), "--format must be one of safetensors, onnx but got 'tflite'");
        FailsWith(Run("export", "--model", model, "--format", "onnx", "--precision", "half", "--output", scratch["m.onnx"]), "--precision must be one of float, double but got 'half'");
        FailsWith(Run("export", "--model", model, "--format", "safetensors", "--precision", "float", "--output", scratch["m.safetensors"]),
            "--precision applies to --format onnx only");
        FailsWith(Run("export", "--model", model, "--format", "onnx", "--output", scratch["absent/m.onnx"]), "m.onnx");
        Assert.Empty(scratch.Directory.GetFiles("*.onnx"));
        Assert.Contains("--precision <TYPE>", Run("export", "--help").Out);
    }
}
