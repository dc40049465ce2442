using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace RnnFunctional.Distributed.Tests;

/// <summary>
/// The parts of a distributed step that save work without changing a bit: the workers' partial sums of their blocks
/// and the coordinator's sum of those payloads (<see cref="PartialSum"/> by <see cref="PieceTree"/>) against
/// <see cref="PieceTraining.Sum{T}"/>, also in arrays reused from sum to sum (<see cref="PayloadBuffers"/>), and a
/// silo's pieces computed one at a time (<see cref="SiloParameters.OneAtATime{TResult}"/>).
/// </summary>
public sealed class StepCostTests
{
    private static readonly Gen<long> AnyBits =
        from high in Gen.Choose(int.MinValue, int.MaxValue)
        from low in Gen.Choose(int.MinValue, int.MaxValue)
        select ((long)high << 32) | (uint)low;

    /// <summary>Signed zeros (a sum started from +0 would turn a lone −0 into +0), small integers, subnormals and any bits.</summary>
    private static readonly Gen<double> Doubles = Gen.Frequency(
        (3, Gen.Elements(0.0, -0.0, 1.0, -1.0, 0.1, double.Epsilon, -double.Epsilon)),
        (2, AnyBits.Select(b => BitConverter.Int64BitsToDouble(b & unchecked((long)0x800F_FFFF_FFFF_FFFF)))),
        (3, AnyBits.Select(BitConverter.Int64BitsToDouble)));

    /// <summary>
    /// A model, one to nine pieces of values for its tree with their losses and token counts (null for a piece with no
    /// column, at least one not null), and a number of workers from 1 to P + 1.
    /// </summary>
    private static readonly Gen<(ModelSpec Spec, (double Loss, int Tokens, double[] Values)?[] Pieces, int Workers)> Sums =
        from model in Gen.Choose(0, TestData.Models.Length - 1)
        from vocabulary in Gen.Choose(2, 6)
        from hidden in Gen.Choose(1, 5)
        let spec = new ModelSpec(TestData.Models[model].Cell, vocabulary, hidden, TestData.Models[model].Layers)
        let count = (int)WireTests.Initial(spec).Count
        from pieces in Gen.Frequency(
                (1, Gen.Constant<(double, int, double[])?>(null)),
                (4, from loss in Doubles from tokens in Gen.Choose(0, 1000) from values in Doubles.ArrayOf(count) select ((double, int, double[])?)(loss, tokens, values)))
            .ArrayOf().Where(a => a.Length is >= 1 and <= 9 && a.Any(p => p is not null))
        from workers in Gen.Choose(1, pieces.Length + 1)
        select (spec, pieces, workers);

    [Property(MaxTest = 200)]
    public Property TheBlocksPartialSumsAddedByTheTreeAreBitwisePieceTrainingSum() =>
        Prop.ForAll(Sums.ToArbitrary(), c => DistributedModels.Use(c.Spec, new CompareSums(c.Pieces, c.Workers)));

    [Property(MaxTest = 100)]
    public Property SumsInReusedArraysAreBitwisePieceTrainingSum() =>
        Prop.ForAll(Sums.ToArbitrary(), c => DistributedModels.Use(c.Spec, new CompareSums(c.Pieces, c.Workers, new PayloadBuffers())));

    [Fact]
    public void ABlockAfterTheFirstTakesOneNewArrayTheOneThatIsSent()
    {
        var (buffers, tree) = (new PayloadBuffers(), RnnParameters.Initialize(3, 4, 3, 7));
        long SumOfABlock()
        {
            var before = buffers.Allocated;
            var sum = PieceTree.Reduce(new PieceBlock(0, 4), static node => node.Count == 1, _ => PartialSum.Of(1.0, 1, tree, buffers),
                (left, right) => PartialSum.Add(left, right, buffers))!;
            Assert.Equal(Tree.Flatten(Tree.Scale(4, tree)), FlatTree.Decode(sum.ToPayload().Bytes));
            return buffers.Allocated - before;
        }
        Assert.Equal(3, SumOfABlock());
        Assert.Equal(1, SumOfABlock());
        Assert.Equal(1, SumOfABlock());
    }

    [Fact]
    public void APartialAddedIntoAnotherIsSpentAndItsArrayReused()
    {
        var buffers = new PayloadBuffers();
        var (left, right) = (PartialSum.Of(1.0, 2, RnnParameters.Initialize(2, 3, 2, 1), buffers), PartialSum.Of(0.5, 3, RnnParameters.Initialize(2, 3, 2, 2), buffers));
        var rightArray = right.ToPayload().Bytes;
        var sum = PartialSum.Add(left, right, buffers);
        Assert.Same(left, sum);
        Assert.Equal((1.5, 5), (sum.Loss, sum.Tokens));
        var error = Assert.Throws<InvalidOperationException>(() => right.ToPayload());
        Assert.Contains("expected a partial sum not yet added into another or handed back", error.Message);
        Assert.Throws<ArgumentException>(() => PartialSum.Add(sum, sum, buffers));
        Assert.Same(rightArray, buffers.Rent(rightArray.Length));
        Assert.NotSame(rightArray, buffers.Rent(rightArray.Length));
    }

    [Fact]
    public void PayloadBuffersGiveBackAnArrayOfTheLengthAskedKeepingNoMoreThanTheirCapacity()
    {
        var buffers = new PayloadBuffers(capacity: 1);
        var (a, b) = (buffers.Rent(16), buffers.Rent(16));
        Assert.Equal((16, 16, 2L), (a.Length, b.Length, buffers.Allocated));
        buffers.Return(a);
        buffers.Return(b);
        buffers.Return(a);
        Assert.Same(a, buffers.Rent(16));
        Assert.NotSame(a, buffers.Rent(16));
        buffers.Return(a);
        Assert.Equal(24, buffers.Rent(24).Length);
        Assert.Equal(4L, buffers.Allocated);
        Assert.Same(a, buffers.Rent(16));
        Assert.Equal(4L, buffers.Allocated);
        Assert.Equal(1, buffers.Capacity);
        Assert.Equal("capacity", Assert.Throws<ArgumentOutOfRangeException>(() => new PayloadBuffers(-1)).ParamName);
        Assert.Contains("expected the number of arrays kept to be at least 0 but got -1", Assert.Throws<ArgumentOutOfRangeException>(() => new PayloadBuffers(-1)).Message);
    }

    [Fact]
    public void APayloadOfAnotherLengthIsRefusedNamingIt()
    {
        var spec = new ModelSpec("rnn", 3, 2, 1);
        var n = WireTests.Initial(spec).Count;
        var error = Assert.Throws<InvalidDataException>(() => PartialSum.Received(1, 1, new FlatTree(new byte[8 * (n - 1)]), n, "gradients of pieces [0, 2) of step 1"));
        Assert.Equal($"expected {n} values ({8 * n} bytes) of gradients of pieces [0, 2) of step 1 but got {8 * (n - 1)} bytes ({n - 1} values)", error.Message);
        var (whole, shorter) = (PartialSum.Received(1, 1, WireTests.Initial(spec), n, "a"), PartialSum.Received(1, 1, new FlatTree(new byte[8]), 1, "b"));
        var mismatch = Assert.Throws<ArgumentException>(() => PartialSum.Add(whole, shorter));
        Assert.Equal("right", mismatch.ParamName);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task ASiloComputesNoMorePiecesAtOnceThanItIsAllowed(int allowed)
    {
        var silo = new SiloParameters(allowed);
        Assert.Equal(allowed, silo.PiecesAtOnce);
        var (inside, most) = (0, 0);
        // Each computation waits (up to 2 s) for two to be under way at once: one that may not enter does not, one that may does.
        int Compute()
        {
            var now = Interlocked.Increment(ref inside);
            InterlockedMax(ref most, now);
            SpinWait.SpinUntil(() => Volatile.Read(ref most) > 1, TimeSpan.FromSeconds(2));
            Interlocked.Decrement(ref inside);
            return now;
        }
        // Two threads of their own, so that a busy thread pool cannot keep the second from starting.
        var results = new Task<int>?[2];
        var threads = Enumerable.Range(0, 2).Select(i => new Thread(() => results[i] = silo.OneAtATime(Compute))).ToArray();
        foreach (var thread in threads) thread.Start();
        foreach (var thread in threads) thread.Join();
        Assert.Equal(2, (await Task.WhenAll(results.Select(r => r!))).Length);
        Assert.Equal(allowed, most);
    }

    [Fact]
    public void ASiloComputesAtLeastOnePieceAtOnce()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new SiloParameters(0));
        Assert.Equal("piecesAtOnce", error.ParamName);
        Assert.Contains("expected the number of pieces computed at once to be at least 1 but got 0", error.Message);
        Assert.Equal(1, new SiloParameters().PiecesAtOnce);
    }

    [Fact]
    public async Task ASiloGivesEachComputationTheKernelsThreadsItIsSetTo()
    {
        int Threads() => RnnFunctional.Kernels.Summation.DefaultThreads;
        Assert.Equal(1, await new SiloParameters { Threads = 1 }.OneAtATime(Threads));
        Assert.Equal(3, await new SiloParameters(2) { Threads = 3 }.OneAtATime(Threads));
        Assert.Equal(Threads(), await new SiloParameters().OneAtATime(Threads));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new SiloParameters { Threads = 0 });
        Assert.Equal("Threads", error.ParamName);
        Assert.Contains("expected the kernels' threads to be at least 1 but got 0", error.Message);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        for (var seen = Volatile.Read(ref target); value > seen; seen = Volatile.Read(ref target))
            if (Interlocked.CompareExchange(ref target, value, seen) == seen) return;
    }

    /// <summary>
    /// The pieces summed as a step of <see cref="Coordinator{T}"/> sums them: each block of
    /// <see cref="PieceTree.Blocks"/> for the workers summed on its own by the tree below it into one payload, as a
    /// worker sends it, and the payloads added by the tree above the blocks; against
    /// <see cref="PieceTraining.Sum{T}"/> of the pieces' trees: the same bits. With <see cref="Buffers"/>, the arrays
    /// come from it and go back to it as a silo's and a coordinator's do, and every sum is computed twice, the second
    /// time in arrays that held the first one's values.
    /// </summary>
    private sealed record CompareSums((double Loss, int Tokens, double[] Values)?[] Pieces, int Workers, PayloadBuffers? Buffers = null) : IModelUse<bool>
    {
        public bool Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize) where TParams : IParameterTree<TParams>
        {
            var like = initialize(1);
            var trees = Pieces.Select(p => p is { } q ? (q.Loss, q.Tokens, Tree.Unflatten(like, q.Values)) : ((double, int, TParams)?)null).ToArray();
            var reference = PieceTraining.Sum(trees);
            var count = Tree.Count(like);
            for (var round = 0; round < (Buffers is null ? 1 : 2); round++)
            {
                var payloads = PieceTree.Blocks(Pieces.Length, Workers).ToDictionary(block => block, block =>
                    PieceTree.Reduce(block, static node => node.Count == 1,
                        node => trees[node.Start] is { } piece ? PartialSum.Of(piece.Item1, piece.Item2, piece.Item3, Buffers) : null,
                        (left, right) => PartialSum.Add(left, right, Buffers)) is { } partial
                        ? PartialSum.Received(partial.Loss, partial.Tokens, partial.ToPayload(), count, "a test block")
                        : null);
                var sum = PieceTree.Reduce(new PieceBlock(0, Pieces.Length), payloads.ContainsKey, block => payloads[block], (left, right) => PartialSum.Add(left, right, Buffers))!;
                var summed = sum.Result(initialize(2));
                sum.Spend(Buffers);
                Assert.Equal(BitConverter.DoubleToInt64Bits(reference.Loss), BitConverter.DoubleToInt64Bits(summed.Loss));
                Assert.Equal(reference.Tokens, summed.Tokens);
                Assert.Null(TestData.FirstDifference(reference.Gradients, summed.Gradients));
            }
            return true;
        }
    }
}
