using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace RnnFunctional.Distributed.Tests;

/// <summary>
/// The parts of a distributed step that save work without changing a bit: the coordinator's sum of the gradient
/// payloads as they arrive (<see cref="PieceSum"/>) against <see cref="PieceTraining.Sum{T}"/>, and a silo's pieces
/// computed one at a time (<see cref="SiloParameters.OneAtATime{TResult}"/>).
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

    /// <summary>A model and one to six pieces of values for its tree, with their losses and token counts.</summary>
    private static readonly Gen<(ModelSpec Spec, (double Loss, int Tokens, double[] Values)[] Pieces)> Sums =
        from model in Gen.Choose(0, TestData.Models.Length - 1)
        from vocabulary in Gen.Choose(2, 6)
        from hidden in Gen.Choose(1, 5)
        let spec = new ModelSpec(TestData.Models[model].Cell, vocabulary, hidden, TestData.Models[model].Layers)
        let count = (int)WireTests.Initial(spec).Count
        from pieces in (from loss in Doubles from tokens in Gen.Choose(0, 1000) from values in Doubles.ArrayOf(count) select (loss, tokens, values))
            .ArrayOf().Where(a => a.Length is >= 1 and <= 6)
        select (spec, pieces);

    [Property(MaxTest = 200)]
    public Property ThePayloadsSummedAsTheyArriveAreBitwisePieceTrainingSum() =>
        Prop.ForAll(Sums.ToArbitrary(), c => DistributedModels.Use(c.Spec, new CompareSums(c.Pieces)));

    [Fact]
    public void APayloadOfAnotherLengthIsRefusedNamingIt()
    {
        var spec = new ModelSpec("rnn", 3, 2, 1);
        var n = WireTests.Initial(spec).Count;
        var sum = new PieceSum(n);
        sum.Add(1, 1, WireTests.Initial(spec), "piece 0");
        var error = Assert.Throws<InvalidDataException>(() => sum.Add(1, 1, new FlatTree(new byte[8 * (n - 1)]), "gradients of piece 1 of step 1"));
        Assert.Equal($"expected {n} values ({8 * n} bytes) of gradients of piece 1 of step 1 but got {8 * (n - 1)} bytes ({n - 1} values)", error.Message);
        Assert.Throws<InvalidOperationException>(() => new PieceSum(n).Result(RnnParameters.Initialize(3, 2, 3, 1)));
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

    private static void InterlockedMax(ref int target, int value)
    {
        for (var seen = Volatile.Read(ref target); value > seen; seen = Volatile.Read(ref target))
            if (Interlocked.CompareExchange(ref target, value, seen) == seen) return;
    }

    /// <summary>The pieces summed by <see cref="PieceSum"/> from payloads against <see cref="PieceTraining.Sum{T}"/> of their trees: the same bits.</summary>
    private sealed record CompareSums((double Loss, int Tokens, double[] Values)[] Pieces) : IModelUse<bool>
    {
        public bool Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize) where TParams : IParameterTree<TParams>
        {
            var like = initialize(1);
            var trees = Pieces.Select(p => (p.Loss, p.Tokens, Gradients: Tree.Unflatten(like, p.Values))).ToArray();
            var reference = PieceTraining.Sum(trees);
            var sum = new PieceSum(Tree.Count(like));
            foreach (var (loss, tokens, gradients) in trees) sum.Add(loss, tokens, FlatTree.Of(gradients), "a test piece");
            var summed = sum.Result(initialize(2));
            Assert.Equal(BitConverter.DoubleToInt64Bits(reference.Loss), BitConverter.DoubleToInt64Bits(summed.Loss));
            Assert.Equal(reference.Tokens, summed.Tokens);
            Assert.Null(TestData.FirstDifference(reference.Gradients, summed.Gradients));
            return true;
        }
    }
}
