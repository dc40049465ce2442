using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace RnnFunctional.Distributed.Tests;

/// <summary>The piece-wise reference against <see cref="Training"/>, and the cut of a window into pieces.</summary>
public sealed class PieceTrainingTests
{
    /// <summary>A training case: which model, which data, which window and how many pieces.</summary>
    public sealed record Case(int Model, int Items, int DataSeed, int BatchSize, int Window, int Seed)
    {
        public override string ToString() =>
            $"{TestData.Models[Model]}, {Items} items (seed {DataSeed}), batch size {BatchSize}, window {Window}, init seed {Seed}";
    }

    private static readonly Gen<Case> Cases =
        from model in Gen.Choose(0, TestData.Models.Length - 1)
        from items in Gen.Choose(3, 10)
        from dataSeed in Gen.Choose(0, 1000)
        from batchSize in Gen.Choose(1, 5)
        from window in Gen.Choose(0, 4)
        from seed in Gen.Choose(0, 1000)
        select new Case(model, items, dataSeed, batchSize, window, seed);

    [Property(MaxTest = 25)]
    public Property OnePieceIsBitwiseTrainingFold() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var (cell, layers) = TestData.Models[c.Model];
            var (vocabulary, batches) = TestData.Batches(TestData.Items(c.Items, c.DataSeed), c.BatchSize, 1, c.DataSeed);
            var spec = new ModelSpec(cell, vocabulary.Size, 5, layers);
            DistributedModels.Use(spec, new CompareFolds(batches, c.Window, c.Seed, ReferencePieces: 1, ExpectBitwise: true));
        });

    [Property(MaxTest = 15)]
    public Property ManyPiecesAreTrainingFoldUpToRounding() =>
        Prop.ForAll(Cases.ToArbitrary(), Gen.Choose(2, 7).ToArbitrary(), (c, pieces) =>
        {
            var (cell, layers) = TestData.Models[c.Model];
            var (vocabulary, batches) = TestData.Batches(TestData.Items(c.Items, c.DataSeed), c.BatchSize, 1, c.DataSeed);
            var spec = new ModelSpec(cell, vocabulary.Size, 5, layers);
            DistributedModels.Use(spec, new CompareFolds(batches, c.Window, c.Seed, pieces, ExpectBitwise: false));
        });

    [Property(MaxTest = 15)]
    public Property APieceRunContinuedFromTheEndOfAnyBatchTakesBitwiseTheStepsOfTheUninterruptedRun() =>
        Prop.ForAll(Cases.ToArbitrary(), Gen.Choose(1, 7).ToArbitrary(), Gen.Choose(0, 6).ToArbitrary(), (c, pieces, cut) =>
        {
            var (cell, layers) = TestData.Models[c.Model];
            var (vocabulary, batches) = TestData.Batches(TestData.Items(c.Items, c.DataSeed), c.BatchSize, 2, c.DataSeed);
            var spec = new ModelSpec(cell, vocabulary.Size, 5, layers);
            DistributedModels.Use(spec, new ContinueFold(batches, c.Window, c.Seed, pieces, cut));
        });

    [Property(MaxTest = 100)]
    public Property PiecesAreTheWindowsColumnGroupsDealtByTheTree() =>
        Prop.ForAll(Gen.Choose(1, 9).ToArbitrary(), Gen.Choose(1, 12).ToArbitrary(), Gen.Choose(0, 1000).ToArbitrary(), (m, pieces, seed) =>
        {
            var (_, batches) = TestData.Batches(TestData.Items(m, seed), m, 1, seed);
            var batch = batches.Single();
            var cut = PieceTraining.Cut(batch, pieces);
            Assert.Equal(pieces, cut.Length);
            var sizes = cut.Select(p => p?.Size ?? 0).ToArray();
            Assert.Equal(batch.Size, sizes.Sum());
            Assert.True(sizes.Max() - sizes.Min() <= 1, $"piece sizes {string.Join(", ", sizes)} differ by more than one");
            Assert.Equal(Math.Max(0, pieces - m), cut.Count(p => p is null));
            // In the order of their groups, the pieces are the window's columns in order.
            var deal = PieceTree.Deal(pieces);
            var present = Enumerable.Range(0, pieces).OrderBy(i => deal[i]).Select(i => cut[i]).OfType<TokenBatch>().ToArray();
            Assert.Equal(batch.Lengths, present.SelectMany(p => p.Lengths));
            for (var t = 0; t < batch.Steps; t++)
            {
                Assert.Equal(batch.Inputs[t], present.SelectMany(p => p.Inputs[t]));
                Assert.Equal(batch.Targets[t], present.SelectMany(p => p.Targets[t]));
            }
        });

    [Fact]
    public void TheDealGivesEveryGroupOnceAndEveryHalfOfANodeOfFourOrMoreTheSameWork()
    {
        Assert.Equal("0 7 3 4 1 6 2 5", string.Join(" ", PieceTree.Deal(8)));
        for (var pieces = 1; pieces <= 70; pieces++)
        {
            var deal = PieceTree.Deal(pieces);
            Assert.Equal(Enumerable.Range(0, pieces), deal.Order());
            if ((pieces & (pieces - 1)) != 0) continue;
            // With P a power of two, the halves of every node of four or more pieces hold groups of the same sum: with
            // sorted columns whose cost grows linearly with their group, both halves have the same work.
            var nodes = new Queue<PieceBlock>([new PieceBlock(0, pieces)]);
            while (nodes.TryDequeue(out var node))
            {
                if (node.Count < 4) continue;
                var (left, right) = PieceTree.Halves(node);
                int Sum(PieceBlock b) => Enumerable.Range(b.Start, b.Count).Sum(i => deal[i]);
                Assert.True(Sum(left) == Sum(right), $"P = {pieces}: {left} holds groups summing to {Sum(left)}, {right} to {Sum(right)}");
                nodes.Enqueue(left);
                nodes.Enqueue(right);
            }
        }
    }

    [Fact]
    public void TheSumsOrderIsPartOfItsBits()
    {
        var (vocabulary, batches) = TestData.Batches(TestData.Items(12, 7), 12, 1, 7);
        var model = LanguageModel.Lstm(vocabulary.Size);
        var p = LstmParameters.Initialize(vocabulary.Size, 8, vocabulary.Size, 3);
        var pieces = PieceTraining.Cut(batches[0], 4).Select(piece => model.LossAndGradients(p, piece!, model.InitialState(p, piece!.Size)))
            .Select(r => ((double, int, LstmParameters)?)(r.Loss, r.Tokens, r.Gradients)).ToArray();
        var inOrder = PieceTraining.Sum(pieces).Gradients;
        var rotated = PieceTraining.Sum([.. pieces.Skip(1).Append(pieces[0])]).Gradients;
        Assert.NotNull(TestData.FirstDifference(inOrder, rotated));
        var acrossHalves = PieceTraining.Sum([pieces[0], pieces[2], pieces[1], pieces[3]]).Gradients;
        Assert.NotNull(TestData.FirstDifference(inOrder, acrossHalves));
    }

    [Fact]
    public void TheSumIsTheTreeOfHalvesNotALeftFold()
    {
        var (vocabulary, batches) = TestData.Batches(TestData.Items(12, 7), 12, 1, 7);
        var model = LanguageModel.Lstm(vocabulary.Size);
        var p = LstmParameters.Initialize(vocabulary.Size, 8, vocabulary.Size, 3);
        var g = PieceTraining.Cut(batches[0], 5).Select(piece => model.LossAndGradients(p, piece!, model.InitialState(p, piece!.Size)).Gradients).ToArray();
        // Five pieces: [0, 5) is [0, 2) + [2, 5), and [2, 5) is [2, 3) + [3, 5).
        var tree = Tree.Add(Tree.Add(g[0], g[1]), Tree.Add(g[2], Tree.Add(g[3], g[4])));
        var leftFold = Tree.Add(Tree.Add(Tree.Add(Tree.Add(g[0], g[1]), g[2]), g[3]), g[4]);
        var sum = PieceTraining.Sum(g.Select(x => ((double, int, LstmParameters)?)(0.0, 1, x)).ToArray()).Gradients;
        Assert.Null(TestData.FirstDifference(tree, sum));
        Assert.NotNull(TestData.FirstDifference(leftFold, sum));
        // A piece with no column is left out: its node is its sibling, unchanged.
        var withoutThird = PieceTraining.Sum(g.Select((x, i) => i == 2 ? null : ((double, int, LstmParameters)?)(0.0, 1, x)).ToArray());
        Assert.Null(TestData.FirstDifference(Tree.Add(Tree.Add(g[0], g[1]), Tree.Add(g[3], g[4])), withoutThird.Gradients));
        Assert.Equal(4, withoutThird.Tokens);
        var error = Assert.Throws<ArgumentException>(() => PieceTraining.Sum(new (double, int, LstmParameters)?[3]));
        Assert.Equal("pieces", error.ParamName);
    }

    /// <summary>
    /// <see cref="PieceTraining.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, int, T, IEnumerable{TokenBatch})"/> uninterrupted against the same run continued from the checkpoint of batch
    /// <paramref name="Cut"/>'s last step (or the start): the same steps after it, bit for bit.
    /// </summary>
    private sealed record ContinueFold(ImmutableArray<TokenBatch> Batches, int Window, int Seed, int Pieces, int Cut) : IModelUse<bool>
    {
        public bool Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize) where TParams : IParameterTree<TParams>
        {
            var initial = initialize(Seed);
            var options = new TrainingOptions(Window, Clipping.ByGlobalNorm(0.5));
            var optimizer = Optimizers.Adam<TParams>(0.01);
            var whole = PieceTraining.Fold(model, optimizer, options, Pieces, initial, Batches).ToArray();
            var at = Math.Min(Cut, whole[^1].Batch);
            var from = at == 0 ? TrainingCheckpoint<TParams>.Start(optimizer, initial) : whole.Last(s => s.Batch == at).Checkpoint;
            var rest = PieceTraining.Fold(model, optimizer, options, Pieces, from, Batches).ToArray();
            var expected = whole.Where(s => s.Step > from.Step).ToArray();
            Assert.Equal(expected.Length, rest.Length);
            for (var s = 0; s < rest.Length; s++)
            {
                Assert.Equal((expected[s].Step, expected[s].Batch), (rest[s].Step, rest[s].Batch));
                Assert.Null(TestData.FirstDifference(expected[s].Parameters, rest[s].Parameters));
                for (var k = 0; k < 2; k++)
                    Assert.Null(TestData.FirstDifference(expected[s].State.Optimizer.Slots[k], rest[s].State.Optimizer.Slots[k]));
                Assert.Equal(BitConverter.DoubleToInt64Bits(expected[s].Loss), BitConverter.DoubleToInt64Bits(rest[s].Loss));
            }
            return true;
        }
    }

    /// <summary>
    /// <see cref="Training.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, T, IEnumerable{TokenBatch})"/> against <see cref="PieceTraining.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, int, T, IEnumerable{TokenBatch})"/> with clipping by norm: bitwise after every
    /// step with Adam (parameters, both slots, loss, norm, tokens), or with SGD within rounding.
    /// </summary>
    private sealed record CompareFolds(ImmutableArray<TokenBatch> Batches, int Window, int Seed, int ReferencePieces, bool ExpectBitwise) : IModelUse<bool>
    {
        public bool Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize) where TParams : IParameterTree<TParams>
        {
            var initial = initialize(Seed);
            var options = new TrainingOptions(Window, Clipping.ByGlobalNorm(1.0));
            var optimizer = ExpectBitwise ? Optimizers.Adam<TParams>(0.01) : Optimizers.Sgd<TParams>(0.1);
            var whole = Training.Fold(model, optimizer, options, initial, Batches).ToArray();
            var pieces = PieceTraining.Fold(model, optimizer, options, ReferencePieces, initial, Batches).ToArray();
            Assert.Equal(whole.Length, pieces.Length);
            for (var s = 0; s < whole.Length; s++)
            {
                Assert.Equal((whole[s].Step, whole[s].Batch, whole[s].Tokens), (pieces[s].Step, pieces[s].Batch, pieces[s].Tokens));
                if (ExpectBitwise)
                {
                    Assert.Null(TestData.FirstDifference(whole[s].Parameters, pieces[s].Parameters));
                    Assert.Equal(2, pieces[s].State.Optimizer.Slots.Length);
                    for (var k = 0; k < 2; k++)
                        Assert.Null(TestData.FirstDifference(whole[s].State.Optimizer.Slots[k], pieces[s].State.Optimizer.Slots[k]));
                    Assert.Equal(BitConverter.DoubleToInt64Bits(whole[s].Loss), BitConverter.DoubleToInt64Bits(pieces[s].Loss));
                    Assert.Equal(BitConverter.DoubleToInt64Bits(whole[s].GradientNorm), BitConverter.DoubleToInt64Bits(pieces[s].GradientNorm));
                }
                else
                {
                    var (a, b) = (Tree.Flatten(whole[s].Parameters), Tree.Flatten(pieces[s].Parameters));
                    for (var i = 0; i < a.Length; i++)
                        Assert.True(Math.Abs(a[i] - b[i]) <= 1e-12 * (1 + Math.Abs(a[i])) * (s + 1), $"step {s + 1}, entry {i}: {a[i]:R} against {b[i]:R}");
                    Assert.True(Math.Abs(whole[s].Loss - pieces[s].Loss) <= 1e-12 * Math.Abs(whole[s].Loss), $"step {s + 1} loss {whole[s].Loss:R} against {pieces[s].Loss:R}");
                }
            }
            return true;
        }
    }
}
