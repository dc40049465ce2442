using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using Xunit;

namespace RnnFunctional.Tests;

/// <summary>
/// The laws of dropout: a rate of 0 and masks of ones are the stack without dropout (bits); a mask keeps a fraction
/// 1 − p of its entries and has mean 1 (inverted scaling); variational masks are per column and fixed in time;
/// masks are functions of the random state; evaluation and sampling ignore the dropout setting; bad rates and
/// masks are refused with the argument named.
/// </summary>
public sealed class DropoutLawTests
{
    private static readonly ImmutableArray<LayerSpec> EveryCell = [LayerSpec.Uni(CellKind.Lstm), LayerSpec.Bi(CellKind.Gru, CellKind.RnnTanh)];
    private static readonly Dropout Everything = new(Between: 0.5, Recurrent: 0.5, Inputs: 0.5, ReadOut: 0.5);

    [Property(MaxTest = 30)]
    public Property ZeroRatesAreBitwiseTheStackWithoutDropout() =>
        Prop.ForAll(StackCase.Arbitrary(EveryCell, ragged: true, max: 6), c =>
        {
            var random = RandomState.Seeded(c.Shape.Seed);
            var (mask, next) = new Dropout(0, 0, 0, 0).Draw(c.P, c.Xs.Length, c.Xs[0].ColumnCount, random);
            var (plain, dropped) = (Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial),
                                    Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: mask));
            return (mask == DropoutMask.None && next == random).Label("no mask drawn, the random state untouched")
                .And(Same(plain, dropped).Label("loss, gradients, dx, dInitial: same bits"));
        });

    /// <summary>
    /// Masks of ones (what p = 0 draws, <see cref="Dropout.Bernoulli"/>) everywhere are the stack without masks, bit for
    /// bit: input and read-out masks on the stack driver, and with recurrent masks too on the generic fold.
    /// </summary>
    [Property(MaxTest = 30)]
    public Property MasksOfOnesAreBitwiseTheStackWithoutDropout() =>
        Prop.ForAll(StackCase.Arbitrary(EveryCell, ragged: true, max: 6), c =>
        {
            var (steps, m) = (c.Xs.Length, c.Xs[0].ColumnCount);
            Matrix<double> Ones(int rows) => Dropout.Bernoulli(0, rows, m, RandomState.Seeded(c.Shape.Seed)).Mask;
            var inputs = c.P.Layers.Select(layer => Enumerable.Repeat(Ones(layer.InputSize), steps).ToImmutableArray()).ToImmutableArray();
            var readOut = Enumerable.Repeat(Ones(c.P.Layers[^1].OutputSize), steps).ToImmutableArray();
            var recurrent = c.P.Layers.Select(layer => layer.RecurrentRows.Select(Ones).ToImmutableArray()).ToImmutableArray();
            var generic = NewCells.Generic(c.P);
            var onDriver = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: new DropoutMask(inputs, default, readOut));
            var onFold = Stack.LossAndGradients(generic, c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: new DropoutMask(inputs, recurrent, readOut));
            return Same(Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial), onDriver).Label("on the driver: same bits")
                .And(Same(Stack.LossAndGradients(generic, c.Xs, c.Labels, c.LengthsArgument, c.Initial), onFold).Label("on the generic fold, recurrent masks too: same bits"));
        });

    /// <summary>
    /// Over N = 10⁶ entries of one mask, the fraction kept is 1 − p within ε = 0.004 and the mean entry is 1 within
    /// ε/(1 − p). Hoeffding's inequality for N independent entries in [0, b]: P(|mean − E| ≥ bε) ≤ 2·exp(−2Nε²) =
    /// 2·e⁻³² ≈ 2.5e-14 for each of the two statements (b = 1 for the kept indicator, b = 1/(1 − p) for the entry), so
    /// a correct implementation fails one of the 20 cases with probability at most 40·2.5e-14 = 1e-12 &lt; 1e-6. Without
    /// the 1/(1 − p) scaling the mean is 1 − p, at least 0.05 from 1 for p ≥ 0.05: far outside the bound.
    /// </summary>
    [Property(MaxTest = 20)]
    public Property MaskKeepsOneMinusPOfItsEntriesAndHasMeanOne() =>
        Prop.ForAll(Gen.Choose(5, 90).Select(percent => percent / 100.0).ToArbitrary(), Gen.Choose(0, int.MaxValue).ToArbitrary(), (p, seed) =>
        {
            const int rows = 1000, columns = 1000;
            const double epsilon = 0.004;
            var (mask, _) = Dropout.Bernoulli(p, rows, columns, RandomState.Seeded(seed));
            var values = mask.AsColumnMajorArray();
            var kept = values.Count(v => v != 0) / (double)values.Length;
            var mean = values.Sum() / values.Length;
            var scale = 1 / (1 - p);
            return (Math.Abs(kept - (1 - p)) < epsilon).Label($"kept fraction {kept} vs 1 − p = {1 - p}")
                .And((Math.Abs(mean - 1) < epsilon * scale).Label($"mean entry {mean} vs 1 (within {epsilon * scale})"))
                .And(values.All(v => v == 0 || v == scale).Label("every entry 0 or 1/(1 − p)"));
        });

    /// <summary>
    /// Variational masks (inputs and recurrent state) are one n×m matrix per layer (and direction), the same at every
    /// step; between-layer and read-out masks are drawn afresh at each step. Two independent steps' masks of 6×5
    /// entries at p = 0.5 coincide with probability 2⁻³⁰ per pair (the fixed seeds make this a fixed check).
    /// </summary>
    [Fact]
    public void VariationalMasksArePerColumnAndFixedInTimeAndOthersPerStep()
    {
        var p = StackParameters.Initialize([Layer.Lstm(6, 6, 1), Layer.Bidirectional(Layer.Gru(6, 3, 2), Layer.Rnn(6, 3, 3))], 4, 4);
        var (steps, m) = (4, 5);
        var (variational, _) = new Dropout(Recurrent: 0.5, Inputs: 0.5).Draw(p, steps, m, RandomState.Seeded(7));
        Assert.All(variational.Inputs, masks => Assert.All(masks, mask => Assert.True(Compare.Same(mask, masks[0]))));
        Assert.Equal([[6], [3, 3]], variational.Recurrent.Select(r => r.Select(mask => mask.RowCount).ToArray()).ToArray());
        Assert.All(variational.Recurrent.SelectMany(r => r), mask => Assert.Equal(m, mask.ColumnCount));
        Assert.True(variational.ReadOut.IsDefault);

        var (perStep, _) = new Dropout(Between: 0.5, ReadOut: 0.5).Draw(p, steps, m, RandomState.Seeded(7));
        Assert.True(perStep.Inputs[0].IsDefault, "no mask below the bottom layer");
        Assert.True(perStep.Recurrent.IsDefault);
        Assert.Equal(steps, perStep.Inputs[1].Length);
        Assert.False(Compare.Same(perStep.Inputs[1][0], perStep.Inputs[1][1]), "between-layer masks differ from step to step");
        Assert.False(Compare.Same(perStep.ReadOut[0], perStep.ReadOut[1]), "read-out masks differ from step to step");
    }

    [Property(MaxTest = 30)]
    public Property MasksAreAFunctionOfTheRandomStateAndEachTrainingStepDrawsItsOwn() =>
        Prop.ForAll(StackCase.Arbitrary(EveryCell, ragged: false, max: 6), c =>
        {
            var (steps, m) = (c.Xs.Length, c.Xs[0].ColumnCount);
            var seeded = RandomState.Seeded(c.Shape.Seed);
            var (a, nextA) = Everything.Draw(c.P, steps, m, seeded);
            var (b, nextB) = Everything.Draw(c.P, steps, m, seeded);
            var (step1, step2) = (Everything.Draw(c.P, steps, m, seeded.Fork(1)).Mask, Everything.Draw(c.P, steps, m, seeded.Fork(2)).Mask);
            return (Flat(a).SequenceEqual(Flat(b)) && nextA == nextB).Label("the same state: the same masks and the same next state")
                .And((nextA != seeded).Label("drawing advances the state"))
                .And((!Flat(step1).SequenceEqual(Flat(step2))).Label("steps 1 and 2 of a run (Fork(1), Fork(2)) draw different masks"));
        });

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 30)]
    public Property EvaluationAndSamplingAreBitwiseUnaffectedByDropout(LanguageCase c)
    {
        var (plain, dropped) = (LanguageModel.Stack(c.V), LanguageModel.Stack(c.V, Everything));
        var batches = new[] { c.Batch };
        var (evalPlain, evalDropped) = (LanguageModel.Evaluate(plain, c.Stack, batches), LanguageModel.Evaluate(dropped, c.Stack, batches));
        var options = new SamplingOptions(1.0, 12);
        var (samplePlain, _) = Sampler.Tokens(plain, c.Stack, options, RandomState.Seeded(c.Seed));
        var (sampleDropped, _) = Sampler.Tokens(dropped, c.Stack, options, RandomState.Seeded(c.Seed));
        var (lossPlain, lossDropped) = (plain.LossAndGradients(c.Stack, c.Batch, c.StackInit), dropped.LossAndGradients(c.Stack, c.Batch, c.StackInit));
        var training = dropped.DropoutLoss!(c.Stack, c.Batch, c.StackInit, RandomState.Seeded(c.Seed));
        return (Compare.Same(evalPlain.Loss, evalDropped.Loss) && evalPlain.Tokens == evalDropped.Tokens).Label("evaluation: same bits")
            .And(samplePlain.SequenceEqual(sampleDropped).Label("sampling: the same tokens"))
            .And((Compare.Same(lossPlain.Loss, lossDropped.Loss) && Compare.Same(lossPlain.Gradients, lossDropped.Gradients)).Label("LossAndGradients never drops"))
            .And((plain.DropoutLoss is null && !Compare.Same(training.Loss, lossPlain.Loss)).Label("the training loss does drop"));
    }

    [Fact]
    public void TrainingWithDropoutIsAFunctionOfTheSeed()
    {
        var vocabulary = Vocabulary.FromItems(["abc", "abd", "bca", "cab"]);
        var items = ImmutableArray.Create("abc", "abd", "bca", "cab").Select(vocabulary.Encode).ToImmutableArray();
        var v = vocabulary.Size;
        var p0 = StackParameters.Initialize([Layer.Lstm(v, 6, 1), Layer.Gru(6, 6, 2)], v, 3);
        StackParameters Train(Dropout dropout, long seed) =>
            Training.Fold(LanguageModel.Stack(v, dropout), Optimizers.Adam<StackParameters>(0.01), TrainingOptions.Default with { Seed = seed }, p0,
                Corpus.Epochs(items, 2, 2, RandomState.Seeded(1))).Last().Parameters;
        var rates = new Dropout(Between: 0.3, Recurrent: 0.3, ReadOut: 0.3);
        Assert.True(Compare.Same(Train(rates, 7), Train(rates, 7)), "the same seed: the same parameters, bit for bit");
        Assert.False(Compare.Same(Train(rates, 7), Train(rates, 8)), "another seed: other masks");
        Assert.True(Compare.Same(Train(Dropout.None, 7), Train(new Dropout(), 8)), "no dropout: the seed is not read");
        Assert.False(Compare.Same(Train(Dropout.None, 7), Train(rates, 7)), "dropout changes training");
    }

    [Theory]
    [InlineData(1.5, "expected Between to be in [0, 1) but got 1.5")]
    [InlineData(1.0, "expected Between to be in [0, 1) but got 1")]
    [InlineData(-0.1, "expected Between to be in [0, 1) but got -0.1")]
    [InlineData(double.NaN, "expected Between to be in [0, 1) but got NaN")]
    public void RatesOutsideZeroToOneAreRefusedByName(double p, string message)
    {
        var error = Assert.ThrowsAny<ArgumentException>(() => new Dropout(Between: p));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Contains("expected p to be in [0, 1) but got", Assert.ThrowsAny<ArgumentException>(() => Dropout.Bernoulli(p, 2, 2, RandomState.Seeded(1))).Message,
            StringComparison.Ordinal);
        Assert.Contains("expected Recurrent to be in [0, 1)", Assert.ThrowsAny<ArgumentException>(() => LanguageModel.Stack(4, Dropout.None with { Recurrent = p })).Message,
            StringComparison.Ordinal);
    }

    [Fact]
    public void MasksOfTheWrongShapeAreRefusedByName()
    {
        var c = new StackCase(new Shaped(new Dims(3, 4, 3, 2, 3), 5), EveryCell, ragged: false);
        var (mask, _) = Everything.Draw(c.P, 3, 2, RandomState.Seeded(1));
        string Refusal(DropoutMask wrong) =>
            Assert.ThrowsAny<ArgumentException>(() => Stack.LossAndGradients(c.P, c.Xs, c.Labels, dropout: wrong)).Message;
        Assert.Contains("expected dropout.Inputs to have one entry per layer, L = 2, but got 1", Refusal(mask with { Inputs = [mask.Inputs[0]] }), StringComparison.Ordinal);
        Assert.Contains("expected dropout.Inputs[1] to have one mask per step, T = 3, but got 2", Refusal(mask with { Inputs = mask.Inputs.SetItem(1, mask.Inputs[1][..2]) }), StringComparison.Ordinal);
        Assert.Contains($"expected dropout.Inputs[1][0] to be n_in×m = {c.P.Layers[1].InputSize}×2 but got {c.P.Layers[1].InputSize}×3",
            Refusal(mask with { Inputs = mask.Inputs.SetItem(1, mask.Inputs[1].SetItem(0, Matrix<double>.Build.Dense(c.P.Layers[1].InputSize, 3))) }), StringComparison.Ordinal);
        Assert.Contains("expected dropout.Recurrent[1] to have one mask per direction, 2, but got 1",
            Refusal(mask with { Recurrent = mask.Recurrent.SetItem(1, mask.Recurrent[1][..1]) }), StringComparison.Ordinal);
        Assert.Contains("expected dropout.ReadOut[2] to be finite", Refusal(mask with { ReadOut = mask.ReadOut.SetItem(2, mask.ReadOut[2] * double.NaN) }), StringComparison.Ordinal);
        var shortReadOut = mask with { ReadOut = mask.ReadOut[..1] };
        Assert.Contains("expected dropout.ReadOut to have one mask per step, T = 3, but got 1", Refusal(shortReadOut), StringComparison.Ordinal);
        Assert.True(Stack.TryLossAndGradients(c.P, c.Xs, c.Labels, dropout: shortReadOut).IsFail, "TryLossAndGradients: a failed validation");
        Assert.True(Stack.TryLoss(c.P, c.Xs, c.Labels, dropout: shortReadOut).IsFail, "TryLoss: a failed validation");
        Assert.True(Stack.TryForward(c.P, c.Xs, dropout: shortReadOut).IsFail, "TryForward: a failed validation");
        Assert.True(Stack.TryLossAndGradients(c.P, c.Xs, c.Labels, dropout: mask).IsSuccess, "the drawn mask is accepted");
    }

    /// <summary>
    /// Stack.Forward's predictions read the masked top outputs: Σ −log ŷ⟨t⟩[label, j] over the running columns is the loss
    /// of LossAndGradients under the same mask (to 1e-12, the sums being in different orders), and differs from the
    /// loss without the read-out mask.
    /// </summary>
    [Property(MaxTest = 30)]
    public Property ForwardPredictionsReadTheMaskedTop() =>
        Prop.ForAll(StackCase.Arbitrary(EveryCell, ragged: true, max: 6), c =>
        {
            var mask = DropoutGradientTests.Masks(c, Everything);
            var forward = Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial, dropout: mask);
            var loss = -Enumerable.Range(0, c.Xs.Length)
                .SelectMany(t => Enumerable.Range(0, c.Lengths.Length).Where(j => t < c.Lengths[j]).Select(j => Math.Log(forward.Predictions[t][c.Labels[t][j], j])))
                .Sum();
            var expected = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: mask).Loss;
            var withoutReadOut = Stack.Loss(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, mask with { ReadOut = default });
            return (Math.Abs(loss - expected) <= 1e-12 * Math.Max(1, Math.Abs(expected))).Label($"Σ −log ŷ = {loss:R}, loss {expected:R}")
                .And((loss != withoutReadOut).Label("the read-out mask is read"))
                .And(ReferenceEquals(forward.Dropout, mask).Label("the forward keeps its masks for the backward"));
        });

    /// <summary>No function given a mask writes to it, to the inputs or to the parameters (the driver masks copies of its buffers).</summary>
    [Property(MaxTest = 30)]
    public Property NoArgumentIsMutatedByMaskedFunctions() =>
        Prop.ForAll(StackCase.Arbitrary(EveryCell, ragged: true, max: 6), Gen.Elements(false, true).ToArbitrary(), (c, recurrent) =>
        {
            var mask = DropoutGradientTests.Masks(c, recurrent ? Everything : Everything with { Recurrent = 0 });
            var before = (Flat(mask).ToArray(), c.Xs.SelectMany(x => x.ToColumnMajorArray()).ToArray(), Tree.Flatten(c.P).ToArray());
            _ = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: mask);
            _ = Stack.Backward(Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial, dropout: mask), c.DTop, c.DFinal);
            return Flat(mask).SequenceEqual(before.Item1).Label("the mask")
                .And(c.Xs.SelectMany(x => x.ToColumnMajorArray()).SequenceEqual(before.Item2).Label("the inputs"))
                .And(Tree.Flatten(c.P).SequenceEqual(before.Item3).Label("the parameters"));
        });

    private static bool Same(StackLoss a, StackLoss b) =>
        Compare.Same(a.Loss, b.Loss) && Compare.Same(a.Gradients, b.Gradients) && Compare.Same(a.Dx, b.Dx) && Compare.Same(a.DInitial, b.DInitial);

    private static IEnumerable<long> Flat(DropoutMask mask) =>
        new[] { mask.Inputs, mask.Recurrent }.Where(layers => !layers.IsDefault).SelectMany(layers => layers.SelectMany(masks => masks.IsDefault ? [] : masks))
            .Concat(mask.ReadOut.IsDefault ? [] : mask.ReadOut)
            .SelectMany(x => x.AsColumnMajorArray()).Select(BitConverter.DoubleToInt64Bits);
}
