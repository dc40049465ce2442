using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Text;
using LanguageExt;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Tests;

/// <summary>The safetensors reader and writer on files made byte by byte: values, layout, and every malformation named.</summary>
public sealed class SafetensorsTests
{
    /// <summary>A file of a header given as text (not padded) followed by raw data bytes.</summary>
    internal static byte[] File(string header, params byte[] data)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        return bytes;
    }

    private static string Error(Fin<SafetensorsFile> result) => result.Match(_ => "(success)", e => e.Message);

    private static SafetensorsFile Value(Fin<SafetensorsFile> result) => result.Match(f => f, e => throw new InvalidOperationException(e.Message));

    private static byte[] Bytes(Fin<byte[]> result) => result.Match(b => b, e => throw new InvalidOperationException(e.Message));

    private static byte[] Halves(params ushort[] values) => [.. values.SelectMany(v => new[] { (byte)v, (byte)(v >> 8) })];

    [Fact]
    public void ReadsF16AndBF16AsDoublesExactly()
    {
        var file = Value(Safetensors.Read(File(
            """{"b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]},"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}}""",
            [.. Halves(0x3C00, 0xC000, 0x7BFF), .. Halves(0x3F80, 0xC049)])));
        Assert.Equal([1.0, -2.0, 65504.0], file.Tensors["h"].Values.ToArray());
        Assert.Equal([1.0, -3.140625], file.Tensors["b"].Values.ToArray());
        Assert.Equal((SafetensorsDType.F16, SafetensorsDType.BF16), (file.Tensors["h"].DType, file.Tensors["b"].DType));
    }

    [Fact]
    public void ReadsF32AndF64RowMajor()
    {
        var data = new byte[4 * 6 + 8];
        for (var i = 0; i < 6; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * i), i + 0.5f);
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(24), Math.PI);
        var file = Value(Safetensors.Read(File(
            """{"__metadata__":{"format":"pt"},"m":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"s":{"dtype":"F64","shape":[],"data_offsets":[24,32]}}""", data)));
        Assert.Equal(Matrix<double>.Build.DenseOfArray(new[,] { { 0.5, 1.5, 2.5 }, { 3.5, 4.5, 5.5 } }), file.Tensors["m"].ToMatrix());
        Assert.Equal([Math.PI], file.Tensors["s"].Values.ToArray());
        Assert.Equal("scalar", file.Tensors["s"].ShapeText);
        Assert.Equal("pt", file.Metadata["format"]);
    }

    [Fact]
    public void WritesTheLayoutOfTheReferenceImplementation()
    {
        var file = SafetensorsFile.Of([KeyValuePair.Create("w", SafetensorsTensor.Of(Matrix<double>.Build.DenseOfArray(new[,] { { 1.0, 2.0 }, { 3.0, 4.0 } }), SafetensorsDType.F32))]);
        var bytes = Bytes(Safetensors.Serialize(file));
        const string header = """{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}""";
        var padded = (header.Length + 7) / 8 * 8;
        Assert.Equal((ulong)padded, BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        Assert.Equal(header.PadRight(padded), Encoding.UTF8.GetString(bytes, 8, padded));
        Assert.Equal([1f, 2f, 3f, 4f], Enumerable.Range(0, 4).Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(8 + padded + 4 * i))));
        Assert.Equal(8 + padded + 16, bytes.Length);
    }

    [Fact]
    public void WritesEmptyAndZeroSizedTensors()
    {
        var file = SafetensorsFile.Of(
            [KeyValuePair.Create("empty", new SafetensorsTensor(SafetensorsDType.F64, [0, 3], [])),
             KeyValuePair.Create("one", new SafetensorsTensor(SafetensorsDType.F64, [], [-0.0]))],
            [KeyValuePair.Create("note", "ünïcode ✓")]);
        Assert.Equal(file, Value(Safetensors.Read(Bytes(Safetensors.Serialize(file)))));
        Assert.Equal(SafetensorsFile.Of([]), Value(Safetensors.Read(Bytes(Safetensors.Serialize(SafetensorsFile.Of([]))))));
    }

    [Fact]
    public void RefusesToWriteF16AndBF16()
    {
        var file = SafetensorsFile.Of([KeyValuePair.Create("h", new SafetensorsTensor(SafetensorsDType.F16, [1], [1.0]))]);
        Assert.Equal("cannot write file: tensor h has the dtype F16, which is not written (expected F64 or F32)",
            Safetensors.Serialize(file).Match(_ => "(success)", e => e.Message));
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, "safetensors file is cut short: 3 bytes is less than the 8-byte header length")]
    [InlineData(new byte[] { 255, 255, 255, 255, 255, 255, 255, 255 }, "safetensors header length 18446744073709551615 goes beyond the file: only 0 bytes follow the 8-byte length")]
    [InlineData(new byte[] { 4, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}' }, "safetensors header length 4 goes beyond the file: only 2 bytes follow the 8-byte length")]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, 0xC3, 0x28 }, "safetensors header is not valid UTF-8")]
    public void RefusesBrokenFraming(byte[] bytes, string message) => Assert.Equal(message, Error(Safetensors.Read(bytes)));

    [Theory]
    [InlineData("""{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}""", "safetensors header is not JSON")]
    [InlineData("""[1, 2]""", "expected the header to be a JSON object but got an array")]
    [InlineData("""{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}""", "tensor a has the dtype I64, which is not read (expected F64, F32, F16 or BF16)")]
    [InlineData("""{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}""", "tensor a has the dtype F8_E4M3, which is not read")]
    [InlineData("""{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"a":{"dtype":"F64","shape":[0],"data_offsets":[8,8]}}""", "the name a appears twice in the header")]
    [InlineData("""{"a":{"dtype":"F64","shape":[-1],"data_offsets":[0,8]}}""", "expected the shape of tensor a to hold numbers ≥ 0 but got -1")]
    [InlineData("""{"a":{"dtype":"F64","shape":[1.5],"data_offsets":[0,8]}}""", "expected the shape of tensor a to hold integers but got 1.5")]
    [InlineData("""{"a":{"dtype":"F64","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}""", "the shape [4294967296, 4294967296, 4294967296] of tensor a has a number of elements that overflows")]
    [InlineData("""{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}""", "expected tensor a (F64, shape [2]) to take 2 × 8 = 16 bytes but its data_offsets [0, 8] span 8")]
    [InlineData("""{"a":{"dtype":"F64","shape":[1],"data_offsets":[8,0]}}""", "expected the data_offsets of tensor a to have begin ≤ end but got [8, 0]")]
    [InlineData("""{"a":{"dtype":"F64","shape":[1],"data_offsets":[0]}}""", "expected the data_offsets of tensor a to be [begin, end] but got 1 numbers")]
    [InlineData("""{"a":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}""", "the data_offsets [8, 16] of tensor a lie outside the data (8 bytes after the header)")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "the data_offsets [4, 8] of tensor b overlap those of tensor a [0, 8]")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "the bytes [0, 4) of the data belong to no tensor (a gap before tensor a)")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "the tensors cover 4 bytes of the data but 8 follow the header (the file has trailing bytes)")]
    [InlineData("""{"a":{"dtype":"F64","shape":[1]}}""", "tensor a has no data_offsets")]
    [InlineData("""{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8],"extra":1}}""", "tensor a has an unknown field extra (expected dtype, shape and data_offsets)")]
    [InlineData("""{"a":[1,2]}""", "expected tensor a to be an object {dtype, shape, data_offsets} but got an array")]
    [InlineData("""{"__metadata__":{"k":1},"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}""", "expected __metadata__.k to be a string but got the number 1")]
    [InlineData("""{"__metadata__":"x","a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}""", "expected __metadata__ to be an object of strings but got a string")]
    public void RefusesMalformedHeadersWithAPreciseMessage(string header, string message) =>
        Assert.Contains(message, Error(Safetensors.Read(File(header, new byte[8]))));

    [Fact]
    public void ReportsEveryProblemOfTheHeaderAtOnce()
    {
        var message = Error(Safetensors.Read(File("""{"a":{"dtype":"Q8","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"F64","shape":[-2],"data_offsets":[0,8]}}""", new byte[8])));
        Assert.Contains("tensor a has the dtype Q8", message);
        Assert.Contains("expected the shape of tensor b to hold numbers ≥ 0 but got -2", message);
    }

    [Fact]
    public void AFileCutShortIsAnErrorAtEveryLength()
    {
        var bytes = Bytes(Safetensors.Serialize(SafetensorsFile.Of([KeyValuePair.Create("w", SafetensorsTensor.Of(Vector<double>.Build.Dense(5, i => i)))])));
        for (var n = 0; n < bytes.Length; n++)
            Assert.NotEqual("(success)", Error(Safetensors.Read(bytes.AsSpan(0, n))));
        Assert.Equal("(success)", Error(Safetensors.Read(bytes)));
    }

    [Fact]
    public void ReadsFromAStreamAndAPath()
    {
        var file = SafetensorsFile.Of([KeyValuePair.Create("v", SafetensorsTensor.Of(Vector<double>.Build.Dense([1.0, double.NaN, -0.0])))], [KeyValuePair.Create("k", "v")]);
        using var stream = new MemoryStream();
        Assert.True(Safetensors.Write(stream, file).IsSucc);
        stream.Position = 0;
        Assert.Equal(file, Value(Safetensors.Read(stream)));

        var directory = Directory.CreateTempSubdirectory("safetensors-");
        try
        {
            var path = Path.Combine(directory.FullName, "model.safetensors");
            Assert.True(Safetensors.Save(path, file).IsSucc);
            Assert.Equal(file, Value(Safetensors.Load(path)));
            Assert.Contains("does not exist", Error(Safetensors.Load(Path.Combine(directory.FullName, "missing.safetensors"))));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void AFailedSaveLeavesTheExistingFileAndNoTemporaryFile()
    {
        var directory = Directory.CreateTempSubdirectory("safetensors-");
        try
        {
            var path = Path.Combine(directory.FullName, "model.safetensors");
            var good = SafetensorsFile.Of([KeyValuePair.Create("v", SafetensorsTensor.Of(Vector<double>.Build.Dense([1.0])))]);
            Assert.True(Safetensors.Save(path, good).IsSucc);
            var before = System.IO.File.ReadAllBytes(path);
            var bad = SafetensorsFile.Of([KeyValuePair.Create("v", new SafetensorsTensor(SafetensorsDType.BF16, [1], [2.0]))]);
            Assert.True(Safetensors.Save(path, bad).IsFail);
            Assert.Equal(before, System.IO.File.ReadAllBytes(path));
            Assert.True(Safetensors.Save(Path.Combine(directory.FullName, "no", "such", "dir.safetensors"), good).IsFail);
            Assert.Equal(["model.safetensors"], directory.GetFiles().Select(f => f.Name));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void TensorsCheckTheirShape()
    {
        Assert.Throws<ArgumentException>(() => new SafetensorsTensor(SafetensorsDType.F64, [2, 2], [1.0]));
        Assert.Throws<ArgumentException>(() => new SafetensorsTensor(SafetensorsDType.F64, [-1], []));
        Assert.Throws<ArgumentException>(() => new SafetensorsTensor(SafetensorsDType.F64, [int.MaxValue, int.MaxValue, int.MaxValue], [1.0]));
        Assert.Throws<InvalidOperationException>(() => new SafetensorsTensor(SafetensorsDType.F64, [1], [1.0]).ToMatrix());
    }

    [Fact]
    public void AParameterTreeRoundTripsUnderItsOwnNames()
    {
        var p = StackParameters.Initialize([Layer.Bidirectional(Layer.Lstm(3, 4, 1), Layer.Gru(3, 2, 2)), Layer.Rnn(6, 5, 3, Activation.Relu)], 7, seed: 4);
        var file = SafetensorsFile.OfTree(p, [KeyValuePair.Create("model", "stack")]);
        Assert.Contains("layers[0].forward.Wf", file.Tensors.Keys);
        var back = Value(Safetensors.Read(Bytes(Safetensors.Serialize(file)))).ReadInto(p).Match(q => q, e => throw new InvalidOperationException(e.Head.Message));
        Assert.Equal(Tree.Flatten(p).Select(BitConverter.DoubleToInt64Bits), Tree.Flatten(back).Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(p, back);

        var other = StackParameters.Initialize([Layer.Bidirectional(Layer.Lstm(3, 5, 1), Layer.Gru(3, 2, 2))], 7, seed: 4);
        var errors = file.ReadInto(other).Match(_ => [], e => e.Select(x => x.Message).ToArray());
        Assert.Contains("expected layers[0].forward.Wf to be 5×8 but got 4×7", errors);
        Assert.Contains("expected Wy to be 7×7 but got 7×5", errors);
        Assert.Contains("unexpected tensor layers[1].Wax", errors);
    }
}
