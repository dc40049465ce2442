using System.Buffers.Binary;
using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Tests;

/// <summary>
/// The streamed paths of interchange: files read piece by piece (from a path or a seekable stream) agree with files
/// read from memory on every input, well formed or not; files written through a stream are the bytes of
/// <see cref="Safetensors.Serialize"/>; the transposes behind every layout change are exact; and export and import
/// allocate at most about twice the weights (they allocated 3 to 7 times before they were streamed).
/// </summary>
public sealed class InterchangeStreamingTests
{
    private static string Outcome(Fin<SafetensorsFile> result) => result.Match(f => Describe(f), e => "error: " + e.Message);

    private static string Describe(SafetensorsFile f) =>
        string.Join("; ", f.Metadata.Select(kv => $"{kv.Key}={kv.Value}")) + " | "
        + string.Join("; ", f.Tensors.Select(kv => $"{kv.Key} {kv.Value.DType} {kv.Value.ShapeText} {string.Join(",", kv.Value.Values.Select(BitConverter.DoubleToInt64Bits))}"));

    /// <summary>A stream that cannot seek, so that <see cref="Safetensors.Read(Stream)"/> copies it first.</summary>
    private sealed class Forward(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }

    private static T InTemporaryDirectory<T>(Func<string, T> body)
    {
        var directory = Directory.CreateTempSubdirectory("interchange-");
        try
        {
            return body(directory.FullName);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Property(MaxTest = 300)]
    public Property AFileReadFromAPathOrAStreamIsTheFileReadFromMemory() =>
        Prop.ForAll(Gen.Choose(0, int.MaxValue).ToArbitrary(), Gen.Choose(0, 5).ToArbitrary(), (seed, kind) =>
        {
            var bytes = SafetensorsPropertyTests.Mutated(seed, kind);
            var expected = Outcome(Safetensors.Read(bytes));
            using var seekable = new MemoryStream(bytes);
            using var forward = new Forward(bytes);
            var fromPath = InTemporaryDirectory(directory =>
            {
                var path = Path.Combine(directory, "f.safetensors");
                File.WriteAllBytes(path, bytes);
                return Outcome(Safetensors.Load(path));
            });
            return (Outcome(Safetensors.Read(seekable)) == expected).Label("seekable stream")
                .And((seekable.Position == bytes.Length).Label("the stream is read to its end"))
                .And((Outcome(Safetensors.Read(forward)) == expected).Label("stream that cannot seek"))
                .And((fromPath == expected).Label($"path: {fromPath} vs {expected}"));
        });

    /// <summary>Tensors of every dtype that span several of the reader's and writer's buffers, at offsets that are not multiples of them.</summary>
    [Fact]
    public void LargeTensorsOfEveryDTypeReadAndWriteAcrossTheBuffers()
    {
        var r = new Random(7);
        var (f16, bf16) = (new ushort[SafetensorsFormat.Chunk / 2 * 3 + 5], new ushort[SafetensorsFormat.Chunk / 2 + 3]);
        for (var i = 0; i < f16.Length; i++) f16[i] = (ushort)r.Next(0x7C00);                     // finite halves
        for (var i = 0; i < bf16.Length; i++) bf16[i] = (ushort)r.Next(0x7F80);
        var (f32, f64) = (new float[SafetensorsFormat.Chunk / 4 * 2 + 1], new double[SafetensorsFormat.Chunk / 8 * 3 + 7]);
        for (var i = 0; i < f32.Length; i++) f32[i] = (float)(r.NextDouble() - 0.5) * 1e3f;
        for (var i = 0; i < f64.Length; i++) f64[i] = BitConverter.Int64BitsToDouble(r.NextInt64());
        var data = new List<byte>();
        string Entry(string name, string dtype, int count, int size)
        {
            var text = $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{count}],\"data_offsets\":[{data.Count},{data.Count + count * size}]}}";
            return text;
        }
        var entries = new List<string>();
        entries.Add(Entry("a", "F16", f16.Length, 2));
        data.AddRange(f16.SelectMany(v => BitConverter.GetBytes(v)));
        entries.Add(Entry("b", "BF16", bf16.Length, 2));
        data.AddRange(bf16.SelectMany(v => BitConverter.GetBytes(v)));
        entries.Add(Entry("c", "F32", f32.Length, 4));
        data.AddRange(f32.SelectMany(v => BitConverter.GetBytes(v)));
        entries.Add(Entry("d", "F64", f64.Length, 8));
        data.AddRange(f64.SelectMany(v => BitConverter.GetBytes(v)));
        var bytes = SafetensorsTests.File("{" + string.Join(",", entries) + "}", [.. data]);

        var read = InTemporaryDirectory(directory =>
        {
            var path = Path.Combine(directory, "large.safetensors");
            File.WriteAllBytes(path, bytes);
            return Safetensors.Load(path).Match(f => f, e => throw new InvalidOperationException(e.Message));
        });
        Assert.Equal(f16.Select(v => (double)BitConverter.UInt16BitsToHalf(v)), read.Tensors["a"].Values);
        Assert.Equal(bf16.Select(v => (double)BitConverter.Int32BitsToSingle(v << 16)), read.Tensors["b"].Values);
        Assert.Equal(f32.Select(v => (double)v), read.Tensors["c"].Values);
        Assert.Equal(f64.Select(BitConverter.DoubleToInt64Bits), read.Tensors["d"].Values.Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(Outcome(Safetensors.Read(bytes)), Outcome(Fin<SafetensorsFile>.Succ(read)));

        // Written back as F32 and F64 through a stream: the bytes of Serialize, which read back to the same values.
        var written = SafetensorsFile.Of(read.Tensors.Select(kv => KeyValuePair.Create(kv.Key, kv.Value.As(kv.Key == "d" ? SafetensorsDType.F64 : SafetensorsDType.F32))));
        using var stream = new MemoryStream();
        Assert.True(Safetensors.Write(stream, written).IsSucc);
        var serialized = Safetensors.Serialize(written).Match(b => b, e => throw new InvalidOperationException(e.Message));
        Assert.Equal(serialized, stream.ToArray());
        var back = Safetensors.Read(serialized).Match(f => f, e => throw new InvalidOperationException(e.Message));
        Assert.Equal(written, back);
        var c = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(serialized) + 2 * (f16.Length + bf16.Length) * 2;
        Assert.Equal(f32[^1], BinaryPrimitives.ReadSingleLittleEndian(serialized.AsSpan(c + 4 * (f32.Length - 1))));
    }

    [Fact]
    public void TheFilesOfTorchSaveAreNamedInTheError()
    {
        // torch.save since PyTorch 1.6 and TorchSharp.PyBridge's save_py: a zip archive; torch.save's legacy format: a pickle (protocol 2).
        byte[] zip = [.. "PK\u0003\u0004"u8, .. new byte[40]], pickle = [0x80, 0x02, 0x7D, 0x71, 0x00, 0x28, 0x58, 0x0F, .. new byte[40]];
        Assert.Equal("safetensors header length 67324752 goes beyond the file: only 36 bytes follow the 8-byte length (the file is a zip archive, which is what torch.save and TorchSharp.PyBridge's save_py write for a .pt or .pth file: PyTorch's pickled format is not read; save the state_dict with safetensors.torch.save_file or PyBridge's save_safetensors)",
            Outcome(Safetensors.Read(zip))[7..]);
        Assert.Contains("(the file is a Python pickle, which is what torch.save writes with _use_new_zipfile_serialization=False: it is not read;", Outcome(Safetensors.Read(pickle)));
        Assert.DoesNotContain("pickle", Outcome(Safetensors.Read([0x80, 0x01, 0, 0, 0, 0, 0, 0, 1])));
    }

    [Property(MaxTest = 200)]
    public Property TransposeMovesEveryEntryOfAStridedBlock() =>
        Prop.ForAll((from rows in Gen.Choose(0, 70) from columns in Gen.Choose(0, 70) from sourcePad in Gen.Choose(0, 5) from destinationPad in Gen.Choose(0, 5)
                     select (rows, columns, sourcePad, destinationPad)).ToArbitrary(),
            c =>
            {
                var (rows, columns, sourcePad, destinationPad) = c;
                var (sourceStride, destinationStride) = (columns + sourcePad, rows + destinationPad);
                var source = Enumerable.Range(0, Math.Max(1, rows * sourceStride)).Select(i => (double)i).ToArray();
                var destination = Enumerable.Repeat(-1.0, Math.Max(1, columns * destinationStride)).ToArray();
                TensorLayout.Transpose(source, sourceStride, rows, columns, destination, destinationStride);
                var expected = Enumerable.Repeat(-1.0, destination.Length).ToArray();
                for (var i = 0; i < rows; i++)
                    for (var j = 0; j < columns; j++) expected[j * destinationStride + i] = source[i * sourceStride + j];
                return destination.SequenceEqual(expected);
            });

    [Fact]
    public void AWriterThatFailsHalfwayLeavesTheExistingFileAndNoTemporaryFile()
    {
        InTemporaryDirectory(directory =>
        {
            var path = Path.Combine(directory, "model.bin");
            File.WriteAllBytes(path, [1, 2, 3]);
            var result = OutputFile.WriteAtomically(path, stream =>
            {
                stream.Write(new byte[100_000]);
                throw new IOException("disk full");
            });
            Assert.Equal($"cannot write {path}: disk full", result.Match(_ => "(success)", e => e.Message));
            Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
            Assert.Equal(["model.bin"], Directory.GetFiles(directory).Select(Path.GetFileName));
            Assert.True(OutputFile.WriteAtomically(path, stream => stream.Write([4, 5])).IsSucc);
            Assert.Equal([4, 5], File.ReadAllBytes(path));
            return 0;
        });
    }

    // ---- allocations ----

    private static readonly StackParameters Model = StackParameters.Initialize([Layer.Lstm(64, 256, seed: 1)], 500, seed: 2);

    private static readonly long Weights = Model.ToLeaves().Sum(l => (long)l.Values.Length) * sizeof(double);

    private static readonly TorchLayout Layout = new(TorchCell.Lstm, "lstm", "fc");

    /// <summary>The bytes a call allocates on this thread, as a multiple of the weights' bytes (after a first call that warms it up).</summary>
    private static double Allocated(Action call)
    {
        call();
        var before = GC.GetAllocatedBytesForCurrentThread();
        call();
        return (double)(GC.GetAllocatedBytesForCurrentThread() - before) / Weights;
    }

    private static T Value<T>(Validation<Error, T> v) => v.Match(x => x, errors => throw new InvalidOperationException(string.Join("; ", errors.Select(e => e.Message))));

    private static T Value<T>(Fin<T> f) => f.Match(x => x, e => throw new InvalidOperationException(e.Message));

    [Fact]
    public void ExportAndImportAllocateAtMostAboutTwiceTheWeights()
    {
        InTemporaryDirectory(directory =>
        {
            var (torch, onnx, own) = (Path.Combine(directory, "t.safetensors"), Path.Combine(directory, "m.onnx"), Path.Combine(directory, "o.safetensors"));
            var bytes = Value(Safetensors.Serialize(SafetensorsFile.Of(Value(TorchStateDict.FromStack(Model, Layout)))));
            var figures = new (string Call, double Allocated, double Bound)[]
            {
                ("TorchStateDict.Save", Allocated(() => Value(TorchStateDict.Save(torch, Model, Layout))), 1.1),
                ("TorchStateDict.Load", Allocated(() => Value(TorchStateDict.Load(torch, Layout))), 2.1),
                ("Safetensors.Serialize of FromStack", Allocated(() => Value(Safetensors.Serialize(SafetensorsFile.Of(Value(TorchStateDict.FromStack(Model, Layout)))))), 2.1),
                ("ToStack of Safetensors.Read", Allocated(() => Value(TorchStateDict.ToStack(Value(Safetensors.Read(bytes)).Tensors, Layout))), 2.1),
                ("OnnxExport.Save", Allocated(() => Value(OnnxExport.Save(onnx, Model))), 1.1),
                ("OnnxExport.Serialize", Allocated(() => Value(OnnxExport.Serialize(Model))), 2.1),
                ("Safetensors.Save of OfTree", Allocated(() => Value(Safetensors.Save(own, SafetensorsFile.OfTree(Model)))), 2.1),
            };
            Assert.All(figures, f => Assert.True(f.Allocated <= f.Bound, $"{f.Call} allocated {f.Allocated:F2} × the weights, more than {f.Bound}"));
            Assert.Equal(Model, Value(TorchStateDict.Load(torch, Layout)), StructuralEquality);
            return 0;
        });
    }

    private static readonly IEqualityComparer<StackParameters> StructuralEquality = EqualityComparer<StackParameters>.Create(
        (a, b) => a!.ToLeaves().Select(l => (l.Name, l.Rows, l.Columns, Bits: string.Join(",", l.Values.Select(BitConverter.DoubleToInt64Bits))))
            .SequenceEqual(b!.ToLeaves().Select(l => (l.Name, l.Rows, l.Columns, Bits: string.Join(",", l.Values.Select(BitConverter.DoubleToInt64Bits))))),
        _ => 0);
}
