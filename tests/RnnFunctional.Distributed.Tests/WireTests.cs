using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Xunit;

namespace RnnFunctional.Distributed.Tests;

/// <summary>
/// The wire format of parameters and gradients (<see cref="FlatTree"/>) through Orleans' own serializer: every double
/// comes back with its bits, 8 bytes per value, and a payload of another length is refused with a clear error.
/// </summary>
public sealed class WireTests
{
    /// <summary>Orleans' serializer with the library's generated codecs, as a silo or client has it.</summary>
    private static readonly Serializer Orleans = new ServiceCollection()
        .AddSerializer(b => b.AddAssembly(typeof(FlatTree).Assembly))
        .BuildServiceProvider()
        .GetRequiredService<Serializer>();

    /// <summary>Values whose bits a lossy or decimal encoding would change: signed zeros, subnormals, extremes, infinities.</summary>
    private static readonly double[] Edges =
    [
        0.0, -0.0, double.Epsilon, -double.Epsilon, BitConverter.Int64BitsToDouble(0x000F_FFFF_FFFF_FFFF), BitConverter.Int64BitsToDouble(unchecked((long)0x800F_FFFF_FFFF_FFFF)),
        double.MinValue, double.MaxValue, 2.2250738585072014E-308, double.PositiveInfinity, double.NegativeInfinity, 1.0, -1.0, 0.1,
    ];

    private static readonly Gen<long> AnyBits =
        from high in Gen.Choose(int.MinValue, int.MaxValue)
        from low in Gen.Choose(int.MinValue, int.MaxValue)
        select ((long)high << 32) | (uint)low;

    /// <summary>Any bit pattern, often an edge value or a subnormal of either sign (a zero exponent).</summary>
    private static readonly Gen<double> Doubles = Gen.Frequency(
        (2, Gen.Elements(Edges)),
        (2, AnyBits.Select(b => BitConverter.Int64BitsToDouble(b & unchecked((long)0x800F_FFFF_FFFF_FFFF)))),
        (3, AnyBits.Select(BitConverter.Int64BitsToDouble)));

    private static readonly Gen<ModelSpec> Specs =
        from model in Gen.Choose(0, TestData.Models.Length - 1)
        from vocabulary in Gen.Choose(2, 6)
        from hidden in Gen.Choose(1, 5)
        select new ModelSpec(TestData.Models[model].Cell, vocabulary, hidden, TestData.Models[model].Layers);

    /// <summary>A model and values for every entry of its parameter tree.</summary>
    private static readonly Gen<(ModelSpec Spec, double[] Values)> Trees =
        from spec in Specs
        from values in Doubles.ArrayOf((int)Initial(spec).Count)
        select (spec, values);

    [Property(MaxTest = 100)]
    public Property EveryDoubleCrossesTheWireWithItsBits() =>
        Prop.ForAll(Trees.ToArbitrary(), c => DistributedModels.Use(c.Spec, new RoundTrip(c.Values)));

    [Property(MaxTest = 100)]
    public Property APayloadOfAnotherLengthIsRefusedNamingTheLengthExpected() =>
        Prop.ForAll(Specs.ToArbitrary(), Gen.Choose(-40, 40).Where(d => d != 0).ToArbitrary(), (spec, delta) =>
        {
            var n = Initial(spec).Count;
            var length = Math.Max(0, 8 * n + delta);
            var error = Assert.Throws<InvalidDataException>(() => DistributedModels.Use(spec, new ReadInto(new FlatTree(new byte[length]), $"gradients for a test model {spec}")));
            Assert.StartsWith($"expected {n} values ({8 * n} bytes) of gradients for a test model {spec} but got {length} bytes (", error.Message);
            Assert.Contains(length % 8 == 0 ? $"({length / 8} values)" : "not a whole number of 8-byte values", error.Message);
        });

    [Fact]
    public void APayloadWithoutBytesIsRefusedAsEmpty()
    {
        var spec = new ModelSpec("gru", 4, 3, 1);
        var n = Initial(spec).Count;
        var error = Assert.Throws<InvalidDataException>(() => DistributedModels.Use(spec, new ReadInto(new FlatTree(null!), "parameters")));
        Assert.Equal($"expected {n} values ({8 * n} bytes) of parameters but got no bytes", error.Message);
        Assert.Equal(0, new FlatTree(null!).Count);
    }

    [Fact]
    public void ARequestAndAResultCarryEightBytesPerValue()
    {
        var spec = new ModelSpec("lstm", 27, 96, 1);
        var parameters = Initial(spec);
        Assert.Equal(50_235, parameters.Count);
        var run = new RunSpec("bytes", spec, new DataSpec("/a/corpus.txt", 32, 1, 1, DataSpec.DigestOf([1])), 8);
        var request = Orleans.SerializeToArray(new PieceRequest(run, 0, 0, parameters));
        var result = Orleans.SerializeToArray(new PieceResult(PieceStatus.Computed, 1.5, 10, parameters, "S127.0.0.1:11111:1"));
        var overhead = (Request: request.Length - 8 * parameters.Count, Result: result.Length - 8 * parameters.Count);
        Assert.True(overhead.Request is >= 0 and < 400 && overhead.Result is >= 0 and < 100,
            $"expected 8 bytes per value and a few hundred bytes more but a request of {parameters.Count} values took {request.Length} bytes and a result {result.Length}");
        Assert.Equal(TestData.Bits(LstmParameters.Initialize(27, 96, 27, 1)),
            TestData.Bits(Orleans.Deserialize<PieceRequest>(request)!.Parameters!.Into(LstmParameters.Initialize(27, 96, 27, 2), "parameters")));
    }

    [Fact]
    public void ThePayloadIsEachValuesBitsInLittleEndianOrder()
    {
        var tree = RnnParameters.Initialize(3, 2, 3, 5);
        var payload = FlatTree.Of(tree).Bytes;
        var values = Tree.Flatten(tree);
        Assert.Equal(8 * values.Length, payload.Length);
        for (var i = 0; i < values.Length; i++)
            Assert.Equal(BitConverter.DoubleToInt64Bits(values[i]), BinaryPrimitives.ReadInt64LittleEndian(payload.AsSpan(8 * i, 8)));
        Assert.Equal(values, FlatTree.Decode(payload));
        Assert.Throws<ArgumentException>(() => FlatTree.Decode(payload.AsSpan(1)));
    }

    [Fact]
    public void AReceivedPayloadIsReadIntoAnArrayHandedBackEarlierAsOneBlock()
    {
        // 12,347 values: a length that no other test's payloads have, so that no concurrent test takes the array.
        var bytes = Enumerable.Range(0, 12_347).SelectMany(i => BitConverter.GetBytes(i * 0.5 - 3)).ToArray();
        var wire = Orleans.SerializeToArray(new PieceResult(PieceStatus.Computed, 1.5, 10, new FlatTree(bytes), "S"));
        Assert.InRange(wire.Length - bytes.Length, 0, 64);
        var handedBack = new byte[bytes.Length];
        PayloadBuffers.Received.Return(handedBack);
        var back = Orleans.Deserialize<PieceResult>(wire)!.Gradients!;
        Assert.Same(handedBack, back.Bytes);
        Assert.Equal(bytes, back.Bytes);
        Assert.Null(Orleans.Deserialize<PieceResult>(Orleans.SerializeToArray(new PieceResult(PieceStatus.Empty, 0, 0, null, "S")))!.Gradients);
        Assert.Empty(Orleans.Deserialize<FlatTree>(Orleans.SerializeToArray(new FlatTree([])))!.Bytes);
    }

    [Fact]
    public void APayloadLentToTheWireGoesBackToItsLenderOnceWrittenAndOnlyOnce()
    {
        var buffers = new PayloadBuffers();
        var values = Enumerable.Range(0, 1_001).Select(i => i * 0.25 - 7).ToArray();
        var bytes = buffers.Rent(8 * values.Length);
        values.AsSpan().CopyTo(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes.AsSpan()));
        var result = new PieceResult(PieceStatus.Computed, 1.5, 10, FlatTree.Lent(bytes, buffers), "S");
        var wire = Orleans.SerializeToArray(result);
        Assert.Equal(values, FlatTree.Decode(Orleans.Deserialize<PieceResult>(wire)!.Gradients!.Bytes));
        Assert.Same(bytes, buffers.Rent(bytes.Length));
        // Written again (never by Orleans, which writes a response once), the array is not handed back a second time.
        Orleans.SerializeToArray(result);
        Assert.NotSame(bytes, buffers.Rent(bytes.Length));
        // A payload that is not lent keeps its array.
        var kept = buffers.Rent(bytes.Length);
        Orleans.SerializeToArray(new PieceResult(PieceStatus.Computed, 1.5, 10, new FlatTree(kept), "S"));
        Assert.NotSame(kept, buffers.Rent(bytes.Length));
        Assert.Equal(4L, buffers.Allocated);
    }

    [Fact]
    public async Task ASiloHandsBackAParameterArrayOnceReplacedAndATreeOnceNoComputationHoldsIt()
    {
        // Lengths that no other test's payloads have, so that no concurrent test takes the arrays handed back.
        FlatTree FromWire(int count) => Orleans.Deserialize<FlatTree>(Orleans.SerializeToArray(new FlatTree(new byte[8 * count])))!;
        var silo = new SiloParameters();
        var (first, second, handedOut) = (FromWire(12_351), FromWire(12_351), FromWire(12_353));
        silo.Set("run", 1, first);
        var (reads, spares) = (0, new List<object?>());
        object Read(FlatTree payload, object? spare) { reads++; spares.Add(spare); return new object(); }
        var lease = (await silo.Lease("run", 1, TimeSpan.Zero, Read))!;
        var again = (await silo.Lease("run", 1, TimeSpan.Zero, Read))!;
        Assert.Same(lease.Read, again.Read);
        Assert.Equal(1, reads);
        Assert.Null(await silo.Lease("run", 2, TimeSpan.Zero, Read));
        silo.Release("run", lease);
        silo.Set("run", 2, second);
        Assert.Same(first.Bytes, PayloadBuffers.Received.Rent(first.Bytes.Length));
        // Version 1's tree is still leased: version 2 gets no spare.
        var leased2 = (await silo.Lease("run", 2, TimeSpan.Zero, Read))!;
        Assert.Null(spares[^1]);
        silo.Release("run", again);
        Assert.Throws<InvalidOperationException>(() => silo.Release("run", again));
        // Released, version 1's tree is the spare of the next version read; version 2's, still leased, is not.
        silo.Set("run", 3, FromWire(12_351));
        _ = await silo.Lease("run", 3, TimeSpan.Zero, Read);
        Assert.Same(lease.Read, spares[^1]);
        silo.Set("run", 4, FromWire(12_351));
        _ = await silo.Lease("run", 4, TimeSpan.Zero, Read);
        Assert.Null(spares[^1]);
        silo.Release("run", leased2);
        silo.Set("run", 5, FromWire(12_351));
        _ = await silo.Lease("run", 5, TimeSpan.Zero, Read);
        Assert.Same(leased2.Read, spares[^1]);
        // A payload handed out by Get is the caller's: replaced, its array is not handed back.
        silo.Set("run", 3, handedOut);
        Assert.Same(handedOut, await silo.Get("run", 3, TimeSpan.Zero));
        silo.Set("run", 4, new FlatTree(new byte[8 * 12_353]));
        Assert.NotSame(handedOut.Bytes, PayloadBuffers.Received.Rent(handedOut.Bytes.Length));
        // Nor is a payload that did not come off the wire (a caller's own array).
        var own = new FlatTree(new byte[8 * 12_353]);
        silo.Set("run", 5, own);
        silo.Set("run", 6, second);
        Assert.NotSame(own.Bytes, PayloadBuffers.Received.Rent(own.Bytes.Length));
    }

    /// <summary>The initial parameters of a model (seed 1) as a payload.</summary>
    internal static FlatTree Initial(ModelSpec spec) => DistributedModels.Use(spec, new InitialPayload());

    private sealed class InitialPayload : IModelUse<FlatTree>
    {
        public FlatTree Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize) where TParams : IParameterTree<TParams> =>
            FlatTree.Of(initialize(1));
    }

    /// <summary>A tree holding the values, through Orleans' serializer and back into a tree of other values: the same bits.</summary>
    private sealed record RoundTrip(double[] Values) : IModelUse<bool>
    {
        public bool Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize) where TParams : IParameterTree<TParams>
        {
            var tree = Tree.Unflatten(initialize(1), Values);
            var wire = Orleans.SerializeToArray(FlatTree.Of(tree));
            Assert.InRange(wire.Length - 8L * Values.Length, 0, 16);
            var back = Orleans.Deserialize<FlatTree>(wire)!.Into(initialize(2), "a test tree");
            Assert.Equal(Values.Select(BitConverter.DoubleToInt64Bits), TestData.Bits(back));
            return true;
        }
    }

    /// <summary>A payload read into the model's tree.</summary>
    private sealed record ReadInto(FlatTree Payload, string What) : IModelUse<bool>
    {
        public bool Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize) where TParams : IParameterTree<TParams> =>
            Payload.Into(initialize(1), What) is not null;
    }
}
