using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using Xunit;

namespace RnnFunctional.Tests;

/// <summary>The next-token model over ragged batches, truncated BPTT and the training fold.</summary>
public sealed class LanguageModelTests
{
    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property LossAndGradientsMatchesFiniteDifferences(LanguageCase c)
    {
        var g = c.Model.LossAndGradients(c.P, c.Batch, c.A0).Gradients;
        return GradientProperty.Holds(GradCheck.Tree(p => c.Model.LossAndGradients(p, c.Batch, c.A0).Loss, c.P, g, GradCheckOptions.Precise));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property RaggedBatchEqualsItemsRunAlone(LanguageCase c)
    {
        var batch = c.Model.LossAndGradients(c.P, c.Batch, c.A0);
        var alone = c.Items.Select((item, j) =>
            c.Model.LossAndGradients(c.P, TokenBatch.ForNextToken([item]), c.A0.SubMatrix(0, c.A0.RowCount, j, 1))).ToArray();
        var loss = alone.Sum(a => a.Loss);
        var gradients = alone.Select(a => a.Gradients).Aggregate((a, b) => a + b);
        return (batch.Tokens == c.Items.Sum(i => i.Length + 1)).Label("one target per item token and one end token")
            .And(Compare.Close(batch.Loss, loss, 1e-12).Label($"loss {batch.Loss} = Σ alone {loss}"))
            .And(Compare.Close(batch.Gradients, gradients, 1e-11).Label("gradients = Σ gradients alone (padding adds nothing)"));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property LstmLossAndGradientsMatchesFiniteDifferences(LanguageCase c) =>
        MatchesFiniteDifferences(LanguageModel.Lstm(c.V), c.Lstm, c.Batch, new LstmState(c.A0, c.C0));

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property GruLossAndGradientsMatchesFiniteDifferences(LanguageCase c) =>
        MatchesFiniteDifferences(LanguageModel.Gru(c.V), c.Gru, c.Batch, c.A0);

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property LstmRaggedBatchEqualsItemsRunAlone(LanguageCase c) =>
        EqualsItemsRunAlone(LanguageModel.Lstm(c.V), c.Lstm, c, j => new LstmState(Column(c.A0, j), Column(c.C0, j)), new LstmState(c.A0, c.C0));

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property GruRaggedBatchEqualsItemsRunAlone(LanguageCase c) =>
        EqualsItemsRunAlone(LanguageModel.Gru(c.V), c.Gru, c, j => Column(c.A0, j), c.A0);

    /// <summary>
    /// The stack's gradient, one item at a time. A batch's loss reaches 100 nats, whose round-off (ulp(f)/h) leaves
    /// entries near the 1e-8 floor unjudgeable by finite differences about once in a thousand cases (a 60-digit
    /// evaluation of such a case confirmed the analytic entry to 5e-12); one item's loss is a few nats. That a
    /// batch's loss and gradients are the sums over its items is <see cref="StackRaggedBatchEqualsItemsRunAlone"/>.
    /// </summary>
    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property StackLossAndGradientsMatchesFiniteDifferences(LanguageCase c)
    {
        var (j, report) = StackItemCheck(c);
        return GradientProperty.Holds(report).Label($"item {j}: {c.Items[j].Length} tokens");
    }

    /// <summary>
    /// A case found by <see cref="StackLossAndGradientsMatchesFiniteDifferences"/>: the GRU's reset-gate biases
    /// layers[1].Bih[3] and Bhh[3] have a derivative of 1.27e-8 and the loss (10.4) curves within a step of 1, so an
    /// estimate from a smaller first step is kept, and the entry's resolution is that step's (the resolution of the
    /// step 1 is 1.8e-14; the estimate from 0.1, the only smaller one at the time, was off by 3.8e-14).
    /// </summary>
    [Fact]
    public void StackGateBiasBelowTheFloorMatchesFiniteDifferences()
    {
        var (_, report) = StackItemCheck(new LanguageCase(new Shaped(new Dims(1, 7, 8, 7, 6), 1303959172)));
        var bias = report.Entries.Single(e => e.Leaf == "layers[1].Bih" && e.Row == 3);
        Assert.True(Math.Abs(bias.Analytic) is > 1e-8 and < 2e-8, $"the entry of the case: {bias}");
        Assert.Empty(report.Failures(GradientProperty.Tolerance));
    }

    /// <summary>The stack's gradient check on one item of the case, drawn from its seed, run alone from its column of the initial state.</summary>
    private static (int Item, GradCheckReport Report) StackItemCheck(LanguageCase c)
    {
        var j = c.Random(c.Items.Length);
        var init = c.StackInit.Select(layer => layer.Select(part => Column(part, j)).ToImmutableArray()).ToImmutableArray();
        return (j, Check(LanguageModel.Stack(c.V), c.Stack, TokenBatch.ForNextToken([c.Items[j]]), init));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property StackRaggedBatchEqualsItemsRunAlone(LanguageCase c) =>
        EqualsItemsRunAlone(LanguageModel.Stack(c.V), c.Stack, c,
            j => [.. c.StackInit.Select(layer => layer.Select(part => Column(part, j)).ToImmutableArray())], c.StackInit);

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property OneLayerStackIsTheCellModel(LanguageCase c)
    {
        var stack = new StackParameters([Layer.Rnn(c.P)], c.P.Wya, c.P.By);
        var viaStack = LanguageModel.Stack(c.V).LossAndGradients(stack, c.Batch, [[c.A0]]);
        var viaCell = c.Model.LossAndGradients(c.P, c.Batch, c.A0);
        var expected = new StackParameters([Layer.Rnn(viaCell.Gradients)], viaCell.Gradients.Wya, viaCell.Gradients.By);
        return Compare.Close(viaStack.Loss, viaCell.Loss, 1e-12).Label($"loss {viaStack.Loss} = {viaCell.Loss}")
            .And(Compare.Close(viaStack.Gradients, expected, 1e-11).Label("the same gradients"))
            .And(Running(c.Batch).All(j => Compare.Close(Column(viaStack.Final[0][0], j), Column(viaCell.Final, j), 1e-12))
                .Label("the same final state in every column still running at the end"));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property StackTruncatedBpttCarriesTheState(LanguageCase c, PositiveInt window)
    {
        var model = LanguageModel.Stack(c.V);
        // A window shorter than the batch (k = T is the full BPTT, TruncatedBpttWithWindowTEqualsFullBptt), when T ≥ 2.
        var k = c.Batch.Steps > 1 ? 1 + (window.Get - 1) % (c.Batch.Steps - 1) : 1;
        var full = model.LossAndGradients(c.Stack, c.Batch, c.StackInit);
        var truncated = TruncatedBptt.LossAndGradients(model, c.Stack, c.Batch, k, c.StackInit);
        var finals = truncated.Final.Zip(full.Final, (a, b) => a.Zip(b, (x, y) => Compare.Close(x, y, 1e-12)).All(ok => ok)).All(ok => ok);
        return Compare.Close(truncated.Loss, full.Loss, 1e-12).Label("the loss does not depend on the window")
            .And(finals.Label("every layer's state is carried from window to window"));
    }

    private static Matrix<double> Column(Matrix<double> m, int j) => m.SubMatrix(0, m.RowCount, j, 1);

    /// <summary>The columns whose item runs to the batch's last step (the others' final state is never read again).</summary>
    private static IEnumerable<int> Running(TokenBatch batch) => Enumerable.Range(0, batch.Size).Where(j => batch.Lengths[j] == batch.Steps);

    private static Property MatchesFiniteDifferences<TParams, TState>(SequenceModel<TParams, TState> model, TParams p, TokenBatch batch, TState init)
        where TParams : IParameterTree<TParams> =>
        GradientProperty.Holds(Check(model, p, batch, init));

    private static GradCheckReport Check<TParams, TState>(SequenceModel<TParams, TState> model, TParams p, TokenBatch batch, TState init)
        where TParams : IParameterTree<TParams>
    {
        var g = model.LossAndGradients(p, batch, init).Gradients;
        return GradCheck.Tree(q => model.LossAndGradients(q, batch, init).Loss, p, g, GradCheckOptions.Precise);
    }

    private static Property EqualsItemsRunAlone<TParams, TState>(SequenceModel<TParams, TState> model, TParams p, LanguageCase c,
        Func<int, TState> initOfColumn, TState init)
        where TParams : IParameterTree<TParams>
    {
        var batch = model.LossAndGradients(p, c.Batch, init);
        var alone = c.Items.Select((item, j) => model.LossAndGradients(p, TokenBatch.ForNextToken([item]), initOfColumn(j))).ToArray();
        var loss = alone.Sum(a => a.Loss);
        var gradients = alone.Select(a => a.Gradients).Aggregate(Tree.Add);
        return Compare.Close(batch.Loss, loss, 1e-12).Label($"loss {batch.Loss} = Σ alone {loss}")
            .And(Compare.Close(batch.Gradients, gradients, 1e-11).Label("gradients = Σ gradients alone (padding adds nothing)"));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property ModelIsTheRnnWithOneHotInputs(LanguageCase c)
    {
        // Fully unpadded batch: every item has the same length, so the model's loss is Rnn.LossAndGradients's.
        var items = c.Items.Select(i => i.AddRange(Enumerable.Repeat(1 % c.V, c.Shape.Dims.T - i.Length))).ToImmutableArray();
        var batch = TokenBatch.ForNextToken(items);
        var xs = batch.Inputs.Select(t => LanguageModel.OneHot(t, c.V)).ToImmutableArray();
        var model = c.Model.LossAndGradients(c.P, batch, c.A0);
        var rnn = Rnn.LossAndGradients(c.P, xs, c.A0, batch.Targets);
        return (Compare.Close(model.Loss, rnn.Loss, 1e-12) && Compare.Same(model.Gradients, rnn.Gradients))
            .Label($"loss {model.Loss} = {rnn.Loss} and bit-identical gradients");
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property TruncatedBpttWithWindowTEqualsFullBptt(LanguageCase c)
    {
        var full = c.Model.LossAndGradients(c.P, c.Batch, c.A0);
        return new[] { c.Batch.Steps, 0, c.Batch.Steps + 3 }.Select(k =>
        {
            var truncated = TruncatedBptt.LossAndGradients(c.Model, c.P, c.Batch, k, c.A0);
            return (Compare.Same(truncated.Loss, full.Loss) && truncated.Tokens == full.Tokens && Compare.Same(truncated.Gradients, full.Gradients)
                    && Compare.Same(truncated.Final, full.Final)).Label($"k = {k}: identical loss, gradients and final state");
        }).Aggregate((a, b) => a.And(b));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property TruncatedBpttCarriesTheStateAndCutsOnlyTheGradient(LanguageCase c, PositiveInt window)
    {
        // A window shorter than the batch (k = T is the full BPTT, TruncatedBpttWithWindowTEqualsFullBptt), when T ≥ 2.
        var k = c.Batch.Steps > 1 ? 1 + (window.Get - 1) % (c.Batch.Steps - 1) : 1;
        var full = c.Model.LossAndGradients(c.P, c.Batch, c.A0);
        var truncated = TruncatedBptt.LossAndGradients(c.Model, c.P, c.Batch, k, c.A0);
        // Each window's gradient, by finite differences of that window's loss with its entering state held fixed.
        var windows = c.Batch.Windows(k);
        var states = Scan.Fold(c.A0, windows, (a, w) => (c.Model.LossAndGradients(c.P, w, a).Final, a)).Outputs;
        double Truncated(RnnParameters p) => windows.Zip(states, (w, a) => c.Model.LossAndGradients(p, w, a).Loss).Sum();
        return Compare.Close(truncated.Loss, full.Loss, 1e-12).Label("the loss does not depend on the window")
            .And(Compare.Close(truncated.Final, full.Final, 1e-12).Label("the state is carried from window to window"))
            .And(GradientProperty.Holds(GradCheck.Tree(Truncated, c.P, truncated.Gradients, GradCheckOptions.Precise)));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property EvaluateEqualsTheLossOfLossAndGradients(LanguageCase c)
    {
        var (loss, tokens) = LanguageModel.Evaluate(c.Model, c.P, [c.Batch]);
        var zero = Matrix<double>.Build.Dense(c.P.HiddenSize, c.Batch.Size);
        var reference = c.Model.LossAndGradients(c.P, c.Batch, zero);
        return (Compare.Close(loss, reference.Loss, 1e-12) && tokens == reference.Tokens).Label($"{loss} over {tokens} tokens");
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 30)]
    public Property TrainingFoldIsLazyDeterministicAndLeavesItsArgumentsUntouched(LanguageCase c)
    {
        var before = Bits.Of(c.P);
        var batches = Corpus.Epochs(c.Items.Select(i => i).ToImmutableArray(), 3, 2, RandomState.Seeded(c.Seed));
        var adam = Optimizers.Adam<RnnParameters>(0.01);
        var options = new TrainingOptions(2, Clipping.ByGlobalNorm(1));
        var history = RnnFunctional.Training.Fold(c.Model, adam, options, c.P, batches);
        var first = history.ToArray();
        var second = history.ToArray();
        var windows = batches.Sum(b => b.Windows(2).Length);
        return (first.Length == windows).Label($"one step per window: {first.Length} = {windows}")
            .And(first.Zip(second, (a, b) => a.Loss == b.Loss && Compare.Same(a.Parameters, b.Parameters)).All(ok => ok).Label("two enumerations agree"))
            .And(first.Select((s, i) => s.Step == i + 1).All(ok => ok).Label("steps numbered from 1"))
            .And(first.Zip(first.Skip(1), (a, b) => a.Elapsed <= b.Elapsed).All(ok => ok).Label("elapsed time never decreases"))
            .And(Bits.Of(c.P).SequenceEqual(before).Label("initial parameters untouched"));
    }

    [Fact]
    public void TrainingLowersTheLossOfASmallCorpus()
    {
        var vocabulary = Vocabulary.FromItems(["abc", "abd", "bca"]);
        var items = ImmutableArray.Create("abc", "abd", "bca").Select(vocabulary.Encode).ToImmutableArray();
        var model = LanguageModel.Rnn(vocabulary.Size);
        var p0 = RnnParameters.Initialize(vocabulary.Size, 8, vocabulary.Size, seed: 3);
        var history = RnnFunctional.Training.Fold(model, Optimizers.Adam<RnnParameters>(0.05), TrainingOptions.Default, p0,
            Corpus.Epochs(items, 3, 150, RandomState.Seeded(1))).ToArray();
        var (before, _) = LanguageModel.Evaluate(model, p0, Corpus.InOrder(items, 3));
        var (after, tokens) = LanguageModel.Evaluate(model, history[^1].Parameters, Corpus.InOrder(items, 3));
        Assert.Equal(150, history.Length);
        Assert.All(history, s => Assert.True(s.IsFinite));
        // 12 targets; the first characters are ambiguous ("a" twice, "b" once) and so is the third of "ab?": the best
        // possible loss is 3·H(2/3, 1/3) + ... ≈ 1.9 nats in total, far below the initial ≈ 12·ln 5 ≈ 19.
        Assert.True(after < before / 4, $"loss {before} → {after} over {tokens} tokens");
    }

    [Fact]
    public void TrainingHistoryEndsAtADivergentStepWithoutApplyingIt()
    {
        var vocabulary = Vocabulary.FromItems(["ab", "ba"]);
        var items = ImmutableArray.Create("ab", "ba").Select(vocabulary.Encode).ToImmutableArray();
        var rnn = LanguageModel.Rnn(vocabulary.Size);
        var calls = 0;
        // A model whose loss turns NaN on its third evaluation.
        var model = rnn with
        {
            LossAndGradients = (p, batch, init) =>
            {
                var result = rnn.LossAndGradients(p, batch, init);
                return ++calls == 3 ? result with { Loss = double.NaN } : result;
            },
        };
        var p0 = RnnParameters.Initialize(vocabulary.Size, 4, vocabulary.Size, seed: 3);
        var history = RnnFunctional.Training.Fold(model, Optimizers.Sgd<RnnParameters>(0.1), TrainingOptions.Default, p0,
            Corpus.Epochs(items, 1, 10, RandomState.Seeded(1))).ToArray();
        Assert.Equal(3, history.Length);
        Assert.True(history[0].IsFinite && history[1].IsFinite);
        Assert.False(history[2].IsFinite);
        Assert.Same(history[1].State, history[2].State);
    }

    [Fact]
    public void LossRejectsTokensOutsideTheVocabulary()
    {
        var model = LanguageModel.Rnn(3);
        var p = RnnParameters.Initialize(3, 2, 3, seed: 1);
        var batch = TokenBatch.ForNextToken([[1, 5]]);
        var e = Assert.Throws<ArgumentException>(() => model.LossAndGradients(p, batch, Matrix<double>.Build.Dense(2, 1)));
        Assert.Equal("batch", e.ParamName);
        Assert.Contains("expected tokens of batch to be in [0, V) = [0, 3) but got 5 at step 2, column 0", e.Message);
    }
}
