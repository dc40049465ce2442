using System.Collections.Immutable;
using BenchmarkDotNet.Attributes;
using LanguageExt;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// Export and import of a model of about 10 million parameters: an LSTM layer of 1,024 units over 512 inputs
/// (6.3 million) with a read-out of 3,000 classes (3.1 million), 9.4 million doubles (75 MB), in PyTorch's names as a
/// safetensors file of doubles, and as an ONNX graph: to and from bytes in memory, and to and from files (streamed).
/// The peak memory of each call is measured by <see cref="InterchangeMemory"/>.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 9)]
public class InterchangeBenchmarks
{
    private readonly StackParameters model = StackParameters.Initialize([Layer.Lstm(512, 1024, seed: 1)], 3000, seed: 2);
    private readonly TorchLayout layout = new(TorchCell.Lstm, "lstm", "fc");
    private byte[] file = [];
    private readonly string directory = Directory.CreateTempSubdirectory("rnnf-interchange-").FullName;

    /// <summary>Parameters of the model.</summary>
    public int Parameters => model.ToLeaves().Sum(l => l.Values.Length);

    [GlobalSetup]
    public void Setup()
    {
        file = ExportSafetensors();
        File.WriteAllBytes(Path.Combine(directory, "in.safetensors"), file);
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(directory, recursive: true);

    [Benchmark(Description = "export: PyTorch names, safetensors F64 bytes")]
    public byte[] ExportSafetensors() => Value(Safetensors.Serialize(SafetensorsFile.Of(Value(TorchStateDict.FromStack(model, layout)))));

    [Benchmark(Description = "import: safetensors bytes to StackParameters")]
    public StackParameters ImportSafetensors() => Value(TorchStateDict.ToStack(Value(Safetensors.Read(file)).Tensors, layout));

    [Benchmark(Description = "export: ONNX graph bytes, double")]
    public byte[] ExportOnnx() => Value(OnnxExport.Serialize(model));

    [Benchmark(Description = "export: PyTorch names, safetensors F64 file")]
    public Unit SaveSafetensors() => Value(TorchStateDict.Save(Path.Combine(directory, "out.safetensors"), model, layout));

    [Benchmark(Description = "import: safetensors file to StackParameters")]
    public StackParameters LoadSafetensors() => Value(TorchStateDict.Load(Path.Combine(directory, "in.safetensors"), layout));

    [Benchmark(Description = "export: ONNX file, double")]
    public Unit SaveOnnx() => Value(OnnxExport.Save(Path.Combine(directory, "out.onnx"), model));

    private static T Value<T>(Validation<LanguageExt.Common.Error, T> v) =>
        v.Match(x => x, errors => throw new InvalidOperationException(string.Join("; ", errors.Map(e => e.Message))));

    private static T Value<T>(Fin<T> f) => f.Match(x => x, e => throw new InvalidOperationException(e.Message));
}
