namespace RnnFunctional.Cli.Tests;

/// <summary><c>rnnf export</c> to safetensors, and <c>rnnf sample</c> reading the exported file (ONNX: <see cref="OnnxExportCommandTests"/>).</summary>
public sealed class ExportTests : IDisposable
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
    [InlineData("lstm", "1")]
    [InlineData("gru", "2")]
    [InlineData("rnn", "3")]
    public void AnExportedModelSamplesAsTheModelFileDoes(string cell, string layers)
    {
        var model = Train(cell, layers);
        var export = Run("export", "--model", model, "--format", "safetensors", "--output", scratch["model.safetensors"]);
        Assert.True(export.ExitCode == 0, export.Error);
        var file = Safetensors.Load(scratch["model.safetensors"]).Match(f => f, e => throw new InvalidOperationException(e.Message));
        Assert.Equal(cell, file.Metadata["cell"]);
        Assert.Contains("vocabulary", file.Metadata.Keys);
        var fromModel = Run("sample", "--model", model, "--count", "5", "--seed", "7");
        var fromSafetensors = Run("sample", "--model", scratch["model.safetensors"], "--count", "5", "--seed", "7");
        Assert.True(fromSafetensors.ExitCode == 0, fromSafetensors.Error);
        Assert.Equal(fromModel.Out, fromSafetensors.Out);
    }

    [Fact]
    public void EveryMissingOptionIsReported()
    {
        var r = Run("export");
        FailsWith(r, "--model is required; --format is required; --output is required");
        Assert.Equal(0, Run("export", "--help").ExitCode);
        Assert.Contains("--format <FORMAT>", Run("export", "--help").Out);
    }

    [Fact]
    public void ABrokenSafetensorsModelIsOneLine()
    {
        var bad = scratch.Write("bad.safetensors", [1, 0, 0, 0, 0, 0, 0, 0, (byte)'{']);
        var r = Run("sample", "--model", bad);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("rnnf sample: error: safetensors header", r.Error);
        FailsWith(Run("export", "--model", scratch["missing.rnnf"], "--format", "safetensors", "--output", scratch["o.safetensors"]), "does not exist");
    }
}
