using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// A run continued from a checkpoint — in memory or read back from a model file — takes bitwise the steps of the
/// uninterrupted run after it; a checkpoint that is not the end of a batch is refused before any update.
/// </summary>
public sealed class TrainingCheckpointTests
{
    /// <summary>
    /// The steps of <paramref name="model"/> trained uninterrupted, and, for a cut after batch <paramref name="cut"/>,
    /// the steps of the same run continued from that batch's last step (or from the start), the checkpoint taken
    /// through a model file when <paramref name="throughFile"/>: the labels say which step differs first.
    /// </summary>
    private static Property Continues<T, TState>(string name, SequenceModel<T, TState> model, T initial, ImmutableArray<ImmutableArray<int>> items,
        int window, int cut, int seed, bool throughFile) where T : IParameterTree<T>
    {
        var adam = Optimizers.Adam<T>(0.02);
        var options = new TrainingOptions(window, Clipping.ByGlobalNorm(0.5)) { Seed = seed };
        IEnumerable<TokenBatch> Batches() => Corpus.Epochs(items, 2, 2, RandomState.Seeded(seed));
        var whole = Training.Fold(model, adam, options, initial, Batches()).ToArray();
        var batches = whole.Length == 0 ? 0 : whole[^1].Batch;
        var at = Math.Min(cut, batches);
        var start = at == 0 ? TrainingCheckpoint<T>.Start(adam, initial) : whole.Last(s => s.Batch == at).Checkpoint;
        if (throughFile)
        {
            var bytes = ModelFile.Serialize(ModelDocument.Of([], start.State.Parameters).WithOptimizer(start.State.Optimizer));
            var document = ModelFile.Deserialize(bytes).Match(d => d, e => throw new InvalidOperationException(e.Message));
            var parameters = document.ReadInto(initial).Match(p => p, e => throw new InvalidOperationException(e.Message));
            var optimizer = document.ReadOptimizerInto(initial, adam.Init(initial).Slots.Length).Match(o => o, e => throw new InvalidOperationException(e.Message));
            start = start with { State = new TrainingState<T>(parameters, optimizer) };
        }
        var rest = Training.Fold(model, adam, options, start, Batches()).ToArray();
        var expected = whole.SkipWhile(s => s.Step <= start.Step).ToArray();
        var firstDifferent = Enumerable.Range(0, Math.Min(rest.Length, expected.Length)).FirstOrDefault(i =>
            rest[i].Step != expected[i].Step || rest[i].Batch != expected[i].Batch || !Same(rest[i].Loss, expected[i].Loss)
            || !Compare.Same(rest[i].Parameters, expected[i].Parameters) || rest[i].State.Optimizer.Step != expected[i].State.Optimizer.Step
            || !rest[i].State.Optimizer.Slots.Zip(expected[i].State.Optimizer.Slots, (a, b) => Compare.Same(a, b)).All(same => same), -1);
        return (rest.Length == expected.Length && rest.Length > 0 == whole.Length > start.Step && firstDifferent < 0)
            .Label($"{name}, window {window}, continued after batch {at} of {batches} (step {start.Step}){(throughFile ? " through a file" : "")}: "
                   + $"{rest.Length} steps against {expected.Length}, first differing {firstDifferent}");
    }

    private static bool Same(double a, double b) => BitConverter.DoubleToInt64Bits(a) == BitConverter.DoubleToInt64Bits(b);

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 30)]
    public Property ARunContinuedFromTheEndOfAnyBatchTakesBitwiseTheStepsOfTheUninterruptedRun(LanguageCase c, bool windowed, bool throughFile)
    {
        var (window, cut) = (windowed ? 2 : 0, c.Random(5));
        var dropout = new Dropout(0.3, 0.2);
        return Continues("rnn", c.Model, c.P, c.Items, window, cut, c.Seed, throughFile)
            .And(Continues("lstm", LanguageModel.Lstm(c.V), c.Lstm, c.Items, window, cut, c.Seed, throughFile))
            .And(Continues("gru", LanguageModel.Gru(c.V), c.Gru, c.Items, window, cut, c.Seed, throughFile))
            .And(Continues("stack with dropout", LanguageModel.Stack(c.V, dropout), c.Stack, c.Items, window, cut, c.Seed, throughFile));
    }

    [Fact]
    public void ACheckpointWithinABatchOrBeyondTheBatchesIsRefusedBeforeAnyUpdate()
    {
        var vocabulary = Vocabulary.FromItems(["abcdefg", "bcdefga", "cdefgab", "defgabc"]);
        var items = ImmutableArray.Create("abcdefg", "bcdefga", "cdefgab", "defgabc").Select(vocabulary.Encode).ToImmutableArray();
        var (model, adam) = (LanguageModel.Rnn(vocabulary.Size), Optimizers.Adam<RnnParameters>(0.01));
        var p0 = RnnParameters.Initialize(vocabulary.Size, 4, vocabulary.Size, seed: 3);
        var options = new TrainingOptions(3, Clipping.None);
        IEnumerable<TokenBatch> Batches() => Corpus.Epochs(items, 2, 2, RandomState.Seeded(1));
        var whole = Training.Fold(model, adam, options, p0, Batches()).ToArray();
        Assert.Equal(4, whole[^1].Batch);
        Assert.Equal(12, whole.Length);                      // 8 characters and the end token: three windows of 3 a batch
        var within = whole[4].Checkpoint;                     // the second window of batch 2
        var e = Assert.Throws<ArgumentException>(() => Training.Fold(model, adam, options, within, Batches()).ToArray());
        Assert.Contains("its 5 updates end within batch 2 (whose windows end at update 6)", e.Message);
        var beyond = whole[^1].Checkpoint with { Batch = 5, Step = 15 };
        Assert.Contains("the batches to reach the checkpoint's batch 5 but they end after 4",
            Assert.Throws<ArgumentException>(() => Training.Fold(model, adam, options, beyond, Batches()).ToArray()).Message);
        Assert.Contains("hold the checkpoint's 6 updates but their windows number 2", Assert.Throws<ArgumentException>(() =>
            Training.Fold(model, adam, options with { Window = 0 }, whole[5].Checkpoint, Batches()).ToArray()).Message);
        Assert.Contains("Step ≥ Batch ≥ 0", Assert.Throws<ArgumentException>(() =>
            Training.Fold(model, adam, options, whole[5].Checkpoint with { Step = 1 }, Batches())).Message);
        Assert.Empty(Training.Fold(model, adam, options, whole[^1].Checkpoint, Batches()));
    }
}
