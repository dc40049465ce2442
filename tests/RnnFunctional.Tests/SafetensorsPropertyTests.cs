using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using LanguageExt;

namespace RnnFunctional.Tests;

/// <summary>
/// Round trips of arbitrary safetensors files, and a bounded fuzz of the reader: mutated and crafted bytes always end
/// in a file or in a clear error, never in an exception.
/// </summary>
public sealed class SafetensorsPropertyTests
{
    private static readonly string[] Names = ["w", "rnn.weight_ih_l0", "layers[0].forward.Wf", "é✓", "a b", "x\"y", "\\", "__meta__"];

    /// <summary>A random file: up to 5 tensors of F64 (any bit pattern, NaN payloads included) or F32, rank 0–3, dimensions 0–4, and metadata.</summary>
    internal static SafetensorsFile RandomFile(Random r)
    {
        var tensors = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        for (var i = r.Next(6); i > 0; i--)
        {
            var dtype = r.Next(2) == 0 ? SafetensorsDType.F64 : SafetensorsDType.F32;
            ImmutableArray<int> shape = [.. Enumerable.Range(0, r.Next(4)).Select(_ => r.Next(5))];
            var values = Enumerable.Range(0, shape.Aggregate(1, (n, d) => n * d)).Select(_ => dtype == SafetensorsDType.F64
                ? BitConverter.Int64BitsToDouble(r.NextInt64(long.MinValue, long.MaxValue))
                : (double)BitConverter.Int32BitsToSingle(r.Next(int.MinValue, int.MaxValue))).ToImmutableArray();
            tensors[Names[r.Next(Names.Length)] + (r.Next(3) == 0 ? i.ToString(CultureInfo.InvariantCulture) : "")] = new(dtype, shape, values);
        }
        var metadata = Enumerable.Range(0, r.Next(3)).ToDictionary(i => $"key{i}", i => Names[r.Next(Names.Length)]);
        return SafetensorsFile.Of(tensors, metadata);
    }

    private static byte[] Bytes(SafetensorsFile file) => Safetensors.Serialize(file).Match(b => b, e => throw new InvalidOperationException(e.Message));

    private static readonly Gen<int> Seeds = Gen.Choose(0, int.MaxValue);

    [Property(MaxTest = 200)]
    public Property FilesRoundTripBitForBit() =>
        Prop.ForAll(Seeds.ToArbitrary(), seed =>
        {
            var file = RandomFile(new Random(seed));
            var bytes = Bytes(file);
            var back = Safetensors.Read(bytes).Match(f => f, e => throw new InvalidOperationException(e.Message));
            return (back.Equals(file)).Label("read(write(file)) = file")
                .And(Bytes(back).AsSpan().SequenceEqual(bytes)).Label("write(read(bytes)) = bytes")
                .And((BinaryPrimitives.ReadUInt64LittleEndian(bytes) % 8 == 0).Label("header padded to 8 bytes"));
        });

    // ---- fuzz ----

    private static readonly string[] DTypes = ["F64", "F32", "F16", "BF16", "I32", "BOOL", "", "f64", "F8_E5M2"];
    private static readonly string[] Numbers = ["0", "1", "2", "3", "4", "8", "16", "-1", "2147483648", "4611686018427387904", "9223372036854775807", "18446744073709551616", "1.0", "1e3", "\"2\"", "null"];

    /// <summary>A header from a small grammar of right and wrong pieces, followed by 0–40 random data bytes.</summary>
    private static byte[] Crafted(Random r)
    {
        string Pick(string[] xs) => xs[r.Next(xs.Length)];
        string Array(int max) => "[" + string.Join(",", Enumerable.Range(0, r.Next(max + 1)).Select(_ => Pick(Numbers))) + "]";
        string Entry() => r.Next(8) switch
        {
            0 => Pick(Numbers),
            1 => $"{{\"dtype\":\"{Pick(DTypes)}\",\"shape\":{Array(3)}}}",
            2 => $"{{\"k\":\"{Pick(DTypes)}\",\"j\":{Pick(Numbers)}}}",
            3 or 4 => Sized(4 * r.Next(3), r.Next(3)),
            _ => $"{{\"dtype\":\"{Pick(DTypes)}\",\"shape\":{Array(3)},\"data_offsets\":[{Pick(Numbers)},{Pick(Numbers)}]}}",
        };
        string Sized(int begin, int n) => $"{{\"dtype\":\"F32\",\"shape\":[{n}],\"data_offsets\":[{begin},{begin + 4 * n}]}}";
        var entries = Enumerable.Range(0, r.Next(4)).Select(_ => $"\"{Pick(["a", "b", "c", "a", "__metadata__"])}\":{Entry()}");
        var header = "{" + string.Join(",", entries) + "}";
        var data = new byte[r.Next(41)];
        r.NextBytes(data);
        return SafetensorsTests.File(header, data);
    }

    private static readonly byte[] HeaderBytes = [.. "{}[]\",:-0123456789 "u8, 0xFF, 0xC3];

    /// <summary>A valid file's bytes changed by one of: flipped bytes, a cut, another header length, flipped header bytes, inserted bytes; or a crafted file.</summary>
    internal static byte[] Mutated(int seed, int kind)
    {
        var r = new Random(seed);
        if (kind == 5) return Crafted(r);
        var bytes = Bytes(RandomFile(r)).ToList();
        var headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.ToArray());
        switch (kind)
        {
            case 0:
                for (var i = r.Next(1, 4); i > 0; i--) bytes[r.Next(bytes.Count)] ^= (byte)r.Next(1, 256);
                break;
            case 1:
                var keep = r.Next(bytes.Count);
                bytes.RemoveRange(keep, bytes.Count - keep);
                break;
            case 2:
                var length = r.Next(3) switch
                {
                    0 => (ulong)r.NextInt64(),
                    1 => (ulong)Math.Max(0, headerEnd - 8 + r.Next(-16, 17)),
                    _ => ulong.MaxValue - (ulong)r.Next(16),
                };
                var head = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(head, length);
                for (var i = 0; i < 8; i++) bytes[i] = head[i];
                break;
            case 3:
                for (var i = r.Next(1, 4); i > 0; i--) bytes[8 + r.Next(headerEnd - 8)] = HeaderBytes[r.Next(HeaderBytes.Length)];
                break;
            default:
                bytes.InsertRange(r.Next(bytes.Count + 1), Enumerable.Range(0, r.Next(1, 9)).Select(_ => (byte)r.Next(256)));
                break;
        }
        return [.. bytes];
    }

    /// <summary>A read file is consistent: each tensor's values fill its shape; it writes back (when every dtype is written) to a file that reads the same.</summary>
    private static bool Consistent(SafetensorsFile file)
    {
        var filled = file.Tensors.Values.All(t => t.Values.Length == t.Shape.Aggregate(1L, (n, d) => n * d));
        var written = file.Tensors.Values.All(t => t.DType is SafetensorsDType.F64 or SafetensorsDType.F32);
        return filled && (!written || Safetensors.Serialize(file).Bind(b => Safetensors.Read(b)).Match(back => back.Equals(file), _ => false));
    }

    [Property(MaxTest = 1000)]
    public Property EveryInputEndsInAFileOrAClearError() =>
        Prop.ForAll(Seeds.ToArbitrary(), Gen.Choose(0, 5).ToArbitrary(), (seed, kind) =>
        {
            var bytes = Mutated(seed, kind);
            return Safetensors.Read(bytes).Match(
                file => Consistent(file).Label("a file read is consistent"),
                error => (error.Message.StartsWith("safetensors ", StringComparison.Ordinal) && error.Message.Length > 20).Label($"a clear error: {error.Message}"));
        });

    [Fact]
    public void TheFuzzReachesEveryKindOfError()
    {
        var messages = Enumerable.Range(0, 3000).Select(i => Safetensors.Read(Mutated(i, i % 6)).Match(_ => "(success)", e => e.Message)).ToArray();
        foreach (var expected in new[] { "(success)", "is not JSON", "goes beyond the file", "is not read", "appears twice", "numbers ≥ 0", "overflows",
                                         "bytes but its data_offsets", "lie outside the data", "overlap", "belong to no tensor", "trailing bytes", "cut short" })
            Assert.True(messages.Any(m => m.Contains(expected, StringComparison.Ordinal)), $"no input of the fuzz gave \"{expected}\"");
    }
}
