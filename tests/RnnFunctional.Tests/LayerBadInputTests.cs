using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>Each kind of bad input to a composition gets an <see cref="ArgumentException"/> naming the argument and the expected shape.</summary>
public sealed class LayerBadInputTests
{
    // n_x = 3, n_y = 4, m = 2, T = 3; layer 0: RNN 3 → 5; layer 1: bidirectional RNN 5 → (2 + 3)
    private static readonly Layer Bottom = Layer.Rnn(3, 5, seed: 1);
    private static readonly Layer Top = Layer.Bidirectional(Layer.Rnn(5, 2, seed: 2), Layer.Rnn(5, 3, seed: 3, Activation.Relu));
    private static readonly StackParameters P = StackParameters.Initialize([Bottom, Top], outputSize: 4, seed: 4);
    private static readonly ImmutableArray<Matrix<double>> Xs = Draw.Sequence(new Random(5), 3, 3, 2);
    private static readonly ImmutableArray<ImmutableArray<int>> Labels = [[0, 1], [2, 3], [1, 0]];
    private static readonly ImmutableArray<ImmutableArray<int>> RaggedLabels = [[0, 1], [2, Ragged.Ignored], [1, Ragged.Ignored]];
    private static readonly ImmutableArray<ImmutableArray<Matrix<double>>> Initial = [[Zeros(5, 2)], [Zeros(2, 2), Zeros(3, 2)]];

    private static Matrix<double> Zeros(int rows, int columns) => Matrix<double>.Build.Dense(rows, columns);

    private static void Rejects(string argument, string fragment, Action call)
    {
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(argument, e.ParamName);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void ForwardRejectsLengthsOfWrongCount() =>
        Rejects("lengths", "expected lengths to have one length per example, m = 2, but got 3", () => Stack.Forward(P, Xs, [3, 2, 1]));

    [Fact]
    public void ForwardRejectsZeroLength() =>
        Rejects("lengths", "expected lengths[1] to be a length in [1, T] = [1, 3] but got 0", () => Stack.Forward(P, Xs, [3, 0]));

    [Fact]
    public void ForwardRejectsLengthBeyondT() =>
        Rejects("lengths", "expected lengths[0] to be a length in [1, T] = [1, 3] but got 4", () => Stack.Forward(P, Xs, [4, 1]));

    [Fact]
    public void ForwardRejectsDefaultLengths() =>
        Rejects("lengths", "expected lengths to be m = 2 lengths but got a default (null) array", () => Stack.Forward(P, Xs, default(ImmutableArray<int>)));

    [Fact]
    public void LossRejectsLabelPastTheEndThatIsNotIgnored() =>
        Rejects("labels", "expected labels[2][1] to be Ragged.Ignored = -1 (step 2 is past the length 1 of example 1) but got 3",
            () => Stack.LossAndGradients(P, Xs, RaggedLabels.SetItem(2, [1, 3]), [3, 1]));

    [Fact]
    public void LossRejectsIgnoredLabelWithinTheLength() =>
        Rejects("labels", "expected labels[1][0] to be a class in [0, n_y) = [0, 4) (step 1 is within the length 3 of example 0) but got -1",
            () => Stack.LossAndGradients(P, Xs, RaggedLabels.SetItem(1, [Ragged.Ignored, Ragged.Ignored]), [3, 1]));

    [Fact]
    public void LossRejectsIgnoredLabelWithoutLengths() =>
        Rejects("labels", "expected labels[1][1] to be a class in [0, n_y) = [0, 4) but got -1", () => Stack.LossAndGradients(P, Xs, RaggedLabels));

    [Fact]
    public void LossRejectsLabelOutOfRange() =>
        Rejects("labels", "expected labels[0][0] to be a class in [0, n_y) = [0, 4) but got 4", () => Stack.LossAndGradients(P, Xs, Labels.SetItem(0, [4, 0])));

    [Fact]
    public void LossRejectsWrongNumberOfLabelRows() =>
        Rejects("labels", "expected labels to have one row per step, T = 3, but got 2", () => Stack.LossAndGradients(P, Xs, RaggedLabels[..2], [3, 1]));

    [Fact]
    public void LossRejectsWhatLossAndGradientsRejects() =>
        Rejects("labels", "expected labels[2] to have one label per example, m = 2, but got 1", () => Stack.Loss(P, Xs, Labels.SetItem(2, [1])));

    [Fact]
    public void TryLossEqualsLoss() =>
        Assert.Equal(Stack.Loss(P, Xs, RaggedLabels, [3, 1]), Stack.TryLoss(P, Xs, RaggedLabels, [3, 1]).IfFail(_ => double.NaN));

    [Fact]
    public void ForwardRejectsLayersThatDoNotChain() =>
        Rejects("p", "expected layers[1] to take the outputs of layers[0], n_in = 5, but its input size is 4",
            () => Stack.Forward(new StackParameters([Bottom, Layer.Rnn(4, 5, seed: 6)], Zeros(4, 5), Vector<double>.Build.Dense(4)), Xs));

    [Fact]
    public void InitializeRejectsLayersThatDoNotChain() =>
        Rejects("layers", "expected layers[1] to take the outputs of layers[0], n_in = 5, but its input size is 6",
            () => StackParameters.Initialize([Bottom, Layer.Rnn(6, 2, seed: 6)], outputSize: 4, seed: 1));

    [Fact]
    public void InitializeRejectsNoLayers() =>
        Rejects("layers", "expected layers to hold at least one layer but it is empty", () => StackParameters.Initialize([], outputSize: 4, seed: 1));

    [Fact]
    public void ForwardRejectsEmptyStack() =>
        Rejects("p", "expected p.Layers to hold at least one layer but it is empty", () => Stack.Forward(P with { Layers = [] }, Xs));

    [Fact]
    public void ForwardRejectsNullLayer() =>
        Rejects("p", "expected layers[0] to be a Layer but got null", () => Stack.Forward(P with { Layers = [null!, Top] }, Xs));

    [Fact]
    public void ForwardRejectsNullParameters() =>
        Rejects("p", "expected p to be StackParameters but got null", () => Stack.Forward(null!, Xs));

    [Fact]
    public void ForwardRejectsReadOutOfWrongWidth() =>
        Rejects("p", "expected Wy to be n_y×n_top = 4×5 but got 4×6", () => Stack.Forward(P with { Wy = Zeros(4, 6) }, Xs));

    [Fact]
    public void ForwardRejectsReadOutBiasOfWrongLength() =>
        Rejects("p", "expected By to have length n_y = 4 but got 3", () => Stack.Forward(P with { By = Vector<double>.Build.Dense(3) }, Xs));

    [Fact]
    public void ForwardRejectsNaNInALayerNamingTheLeaf()
    {
        var leaves = P.ToLeaves();
        var k = leaves.Select(l => l.Name).ToList().IndexOf("layers[1].reverse.Waa");
        var values = leaves[k].Values.ToArray();
        values[4] = double.NaN;
        var bad = P.FromLeaves(leaves.SetItem(k, leaves[k].WithValues(values)));
        Rejects("p", "expected layers[1].reverse.Waa to be finite but entry (1, 1) is NaN", () => Stack.Forward(bad, Xs));
    }

    [Fact]
    public void ForwardRejectsInputOfWrongSize() =>
        Rejects("xs", "expected xs[1] to be n_x×m = 3×2 but got 5×2", () => Stack.Forward(P, Xs.SetItem(1, Zeros(5, 2))));

    [Fact]
    public void ForwardRejectsEmptySequence() =>
        Rejects("xs", "expected xs to hold at least one step but it is empty", () => Stack.Forward(P, []));

    [Fact]
    public void ForwardRejectsInfinityInInputsPastTheEnd()
    {
        var x = Xs[2].Clone();
        x[0, 1] = double.PositiveInfinity;
        Rejects("xs", "expected xs[2] to be finite but entry (0, 1) is Infinity", () => Stack.Forward(P, Xs.SetItem(2, x), [3, 1]));
    }

    [Fact]
    public void ForwardRejectsInitialOfWrongCount() =>
        Rejects("initial", "expected initial to have one state per layer, L = 2, but got 1", () => Stack.Forward(P, Xs, initial: Initial[..1]));

    [Fact]
    public void ForwardRejectsInitialWithMissingDirection() =>
        Rejects("initial", "expected initial[1] to hold 2 n_a×m matrices, one per part of the state, but got 1",
            () => Stack.Forward(P, Xs, initial: Initial.SetItem(1, [Zeros(2, 2)])));

    [Fact]
    public void ForwardRejectsInitialOfWrongShape() =>
        Rejects("initial", "expected initial[1][1] to be n_a×m = 3×2 but got 2×2",
            () => Stack.Forward(P, Xs, initial: Initial.SetItem(1, [Zeros(2, 2), Zeros(2, 2)])));

    [Fact]
    public void BackwardRejectsTopGradientOfWrongShape() =>
        Rejects("dTop", "expected dTop[0] to be n_top×m = 5×2 but got 2×2",
            () => Stack.Backward(Stack.Forward(P, Xs), Draw.Sequence(new Random(1), 3, 5, 2).SetItem(0, Zeros(2, 2))));

    [Fact]
    public void BackwardRejectsTopGradientOfWrongLength() =>
        Rejects("dTop", "expected dTop to have one matrix per step, T = 3, but got 2",
            () => Stack.Backward(Stack.Forward(P, Xs), Draw.Sequence(new Random(1), 2, 5, 2)));

    [Fact]
    public void BackwardRejectsFinalGradientsOfWrongShape() =>
        Rejects("dFinal", "expected dFinal[1][1] to be n_a×m = 3×2 but got 2×2",
            () => Stack.Backward(Stack.Forward(P, Xs), Draw.Sequence(new Random(1), 3, 5, 2), Initial.SetItem(1, [Zeros(2, 2), Zeros(2, 2)])));

    [Fact]
    public void BackwardRejectsFinalGradientsOfTooFewLayers() =>
        Rejects("dFinal", "expected dFinal to have one state per layer, L = 2, but got 1",
            () => Stack.Backward(Stack.Forward(P, Xs), Draw.Sequence(new Random(1), 3, 5, 2), [Initial[0]]));

    [Fact]
    public void TryBackwardListsEveryProblem()
    {
        var problems = Stack.TryBackward(Stack.Forward(P, Xs), Draw.Sequence(new Random(1), 2, 5, 2), Initial.SetItem(0, [Zeros(4, 2)]))
            .Match(_ => [], errors => errors.Select(e => e.Message).ToArray());
        Assert.Equal(2, problems.Length);
        Assert.Contains(problems, m => m.Contains("expected dTop to have one matrix per step, T = 3, but got 2", StringComparison.Ordinal));
        Assert.Contains(problems, m => m.Contains("expected dFinal[0][0] to be n_a×m = 5×2 but got 4×2", StringComparison.Ordinal));
    }

    [Fact]
    public void BackwardRejectsNullForward() =>
        Rejects("forward", "expected forward to be the result of Stack.Forward but got null", () => Stack.Backward(null!, Xs));

    [Fact]
    public void BidirectionalRejectsDirectionsOfDifferentInputSizes() =>
        Rejects("reverse", "expected reverse to have the input size of forward, n_x = 5, but got 4",
            () => Layer.Bidirectional(Layer.Rnn(5, 2, seed: 1), Layer.Rnn(4, 2, seed: 2)));

    [Fact]
    public void RnnLayerRejectsInconsistentParameters() =>
        Rejects("p", "expected Waa to be n_a×n_a = 5×5 but got 5×4",
            () => Layer.Rnn(RnnParameters.Initialize(3, 5, 2, seed: 1) with { Waa = Zeros(5, 4) }));

    [Fact]
    public void RnnLayerRejectsNull() =>
        Rejects("p", "expected p to be RnnParameters but got null", () => Layer.Rnn(null!));

    [Fact]
    public void RnnLayerRejectsNonPositiveSizes() =>
        Rejects("hiddenSize", "expected hiddenSize to be at least 1 but got 0", () => Layer.Rnn(3, 0, seed: 1));

    [Fact]
    public void LstmLayerRejectsInconsistentGates() =>
        Rejects("p", "expected Wo to be n_a×(n_a+n_x) = 4×7 but got 4×6",
            () => Layer.Lstm(LstmParameters.Initialize(3, 4, 2, seed: 1) with { Wo = Zeros(4, 6) }));

    [Fact]
    public void GruLayerRejectsInconsistentWeights() =>
        Rejects("p", "expected Bhh to have length 3n_a = 12 but got 9",
            () => Layer.Gru(GruParameters.Initialize(3, 4, 2, seed: 1) with { Bhh = Vector<double>.Build.Dense(9) }));

    [Fact]
    public void ForwardRejectsLstmBetweenLayersOfOtherSizes() =>
        Rejects("p", "expected layers[2] to take the outputs of layers[1], n_in = 6, but its input size is 5",
            () => Stack.Forward(new StackParameters([Bottom, Layer.Lstm(5, 6, seed: 2), Layer.Gru(5, 2, seed: 3)], Zeros(4, 2), Vector<double>.Build.Dense(4)), Xs));

    [Fact]
    public void ForwardRejectsLstmInitialWithoutCellState() =>
        Rejects("initial", "expected initial[0] to hold 2 n_a×m matrices, one per part of the state, but got 1",
            () => Stack.Forward(StackParameters.Initialize([Layer.Lstm(3, 4, seed: 1)], 4, seed: 2), Xs, initial: [[Zeros(4, 2)]]));

    [Fact]
    public void ForwardRejectsNaNInAGruLayerNamingTheLeaf()
    {
        var p = StackParameters.Initialize([Layer.Gru(3, 4, seed: 1), Layer.Lstm(4, 2, seed: 2)], 4, seed: 3);
        var leaves = p.ToLeaves();
        var k = leaves.Select(l => l.Name).ToList().IndexOf("layers[0].Bhh");
        var values = leaves[k].Values.ToArray();
        values[7] = double.NegativeInfinity;
        Rejects("p", "expected layers[0].Bhh to be finite but entry 7 is -Infinity", () => Stack.Forward(p.FromLeaves(leaves.SetItem(k, leaves[k].WithValues(values))), Xs));
    }

    [Fact]
    public void GenericLayerRejectsUnknownUnusedLeaf() =>
        Rejects("unused", "expected unused to name leaves of p (Wax, Waa, Ba, Wya, By) but got Wy",
            () => Layer.Of(Rnn.Cell, RnnParameters.Initialize(3, 5, 2, seed: 1), 3, 5, [5], ["Wy"]));

    [Fact]
    public void GenericLayerRejectsEmptyState() =>
        Rejects("stateRows", "expected stateRows to hold at least one row count but it is empty",
            () => Layer.Of(Rnn.Cell, RnnParameters.Initialize(3, 5, 2, seed: 1), 3, 5, []));

    [Fact]
    public void RaggedForwardRejectsLengthsOfWrongCount() =>
        Rejects("lengths", "expected lengths to have one length per example, m = 2, but got 1",
            () => Ragged.Forward(Rnn.Cell, RnnParameters.Initialize(3, 5, 2, seed: 1), Xs, Zeros(5, 2), [2]));

    [Fact]
    public void RaggedBackwardRejectsOutputGradientsOfWrongLength()
    {
        var p = RnnParameters.Initialize(3, 5, 2, seed: 1);
        var scanned = Ragged.Forward(Rnn.Cell, p, Xs, Zeros(5, 2), [3, 1]);
        Rejects("dOutputs", "expected dOutputs to have one matrix per step, T = 3, but got 1",
            () => Ragged.Backward(Rnn.Cell, Tree.ZerosLike(p), scanned.Caches, [Zeros(5, 2)], Zeros(5, 2)));
    }

    [Fact]
    public void TryLossAndGradientsReportsEveryProblemAtOnce()
    {
        var result = Stack.TryLossAndGradients(P, Xs.SetItem(0, Zeros(4, 2)), Labels, [0, 3], [[Zeros(5, 3)], Initial[1]]);
        Assert.True(result.IsFail);
        var messages = result.FailToSeq().Map(e => e.Message).ToList();
        Assert.Equal(3, messages.Count);
        Assert.Contains(messages, m => m.Contains("xs[0]"));
        Assert.Contains(messages, m => m.Contains("lengths[0]"));
        Assert.Contains(messages, m => m.Contains("initial[0][0]"));
    }

    [Fact]
    public void TryForwardSucceedsOnGoodInput()
    {
        var result = Stack.TryForward(P, Xs, [3, 1], Initial);
        Assert.True(result.IsSuccess);
        var expected = Stack.Forward(P, Xs, [3, 1], Initial).Top;
        result.IfSuccess(f => Assert.True(f.Top.Zip(expected).All(p => p.Item1.Equals(p.Item2))));
    }

    [Fact]
    public void ValidateListsEveryProblemOfTheParameters()
    {
        var result = Stack.Validate(P with { Wy = Zeros(4, 6), By = Vector<double>.Build.Dense(2) });
        Assert.True(result.IsFail);
        Assert.Equal(2, result.FailToSeq().Count);
    }
}
