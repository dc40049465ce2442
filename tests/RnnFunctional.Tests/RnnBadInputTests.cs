using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>Each kind of bad input gets an <see cref="ArgumentException"/> naming the argument and the expected shape.</summary>
public sealed class RnnBadInputTests
{
    // n_x = 3, n_a = 5, n_y = 4, m = 2, T = 3
    private static readonly RnnCase Case = new(new Shaped(new Dims(3, 5, 4, 2, 3), 7));
    private static readonly RnnParameters P = Case.P;
    private static readonly ImmutableArray<Matrix<double>> Xs = Case.Xs;
    private static readonly Matrix<double> A0 = Case.A0;

    private static Matrix<double> Zeros(int rows, int columns) => Matrix<double>.Build.Dense(rows, columns);

    private static void Rejects(string argument, string fragment, Action call)
    {
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(argument, e.ParamName);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void ForwardRejectsMismatchedA0() =>
        Rejects("a0", "expected a0 to be n_a×m = 5×2 but got 5×3", () => Rnn.Forward(P, Xs, Zeros(5, 3)));

    [Fact]
    public void ForwardRejectsStepsOfDifferentShapes() =>
        Rejects("xs", "expected xs[1] to be n_x×m = 3×2 but got 3×4", () => Rnn.Forward(P, Xs.SetItem(1, Zeros(3, 4)), A0));

    [Fact]
    public void ForwardRejectsInputOfWrongSize() =>
        Rejects("xs", "expected xs[0] to be n_x×m = 3×2 but got 4×2", () => Rnn.Forward(P, Xs.SetItem(0, Zeros(4, 2)), A0));

    [Fact]
    public void ForwardRejectsEmptySequence() =>
        Rejects("xs", "expected xs to hold at least one step but it is empty", () => Rnn.Forward(P, [], A0));

    [Fact]
    public void ForwardRejectsDefaultSequence() =>
        Rejects("xs", "default (null) array", () => Rnn.Forward(P, default, A0));

    [Fact]
    public void ForwardRejectsNaNInInputs()
    {
        var x = Xs[2].Clone();
        x[1, 0] = double.NaN;
        Rejects("xs", "expected xs[2] to be finite but entry (1, 0) is NaN", () => Rnn.Forward(P, Xs.SetItem(2, x), A0));
    }

    [Fact]
    public void ForwardRejectsInfinityInA0()
    {
        var a0 = A0.Clone();
        a0[4, 1] = double.PositiveInfinity;
        Rejects("a0", "expected a0 to be finite but entry (4, 1) is Infinity", () => Rnn.Forward(P, Xs, a0));
    }

    [Fact]
    public void ForwardRejectsInconsistentParameters() =>
        Rejects("p", "expected Waa to be n_a×n_a = 5×5 but got 5×4", () => Rnn.Forward(P with { Waa = Zeros(5, 4) }, Xs, A0));

    [Fact]
    public void ForwardRejectsReadOutOfWrongWidth() =>
        Rejects("p", "expected Wya to be n_y×n_a = 4×5 but got 4×6", () => Rnn.Forward(P with { Wya = Zeros(4, 6) }, Xs, A0));

    [Fact]
    public void ForwardRejectsBiasOfWrongLength() =>
        Rejects("p", "expected Ba to have length n_a = 5 but got 3", () => Rnn.Forward(P with { Ba = Vector<double>.Build.Dense(3) }, Xs, A0));

    [Fact]
    public void ForwardRejectsNaNInParameters()
    {
        var by = P.By.Clone();
        by[2] = double.NaN;
        Rejects("p", "expected By to be finite but entry 2 is NaN", () => Rnn.Forward(P with { By = by }, Xs, A0));
    }

    [Fact]
    public void ForwardRejectsNullParameters() =>
        Rejects("p", "expected p to be RnnParameters but got null", () => Rnn.Forward(null!, Xs, A0));

    [Fact]
    public void BackwardRejectsDaOfWrongLength() =>
        Rejects("da", "expected da to have one matrix per step, T = 3, but got 2", () => Rnn.Backward(Rnn.Forward(P, Xs, A0), Case.Da[..2]));

    [Fact]
    public void BackwardRejectsDaOfWrongShape() =>
        Rejects("da", "expected da[1] to be n_a×m = 5×2 but got 2×5", () => Rnn.Backward(Rnn.Forward(P, Xs, A0), Case.Da.SetItem(1, Zeros(2, 5))));

    [Fact]
    public void LossRejectsLabelOutOfRange() =>
        Rejects("labels", "expected labels[1][0] to be a class in [0, n_y) = [0, 4) but got 4",
            () => Rnn.LossAndGradients(P, Xs, A0, Case.Labels.SetItem(1, [4, 0])));

    [Fact]
    public void LossRejectsNegativeLabel() =>
        Rejects("labels", "expected labels[0][1] to be a class in [0, n_y) = [0, 4) but got -1",
            () => Rnn.LossAndGradients(P, Xs, A0, Case.Labels.SetItem(0, [0, -1])));

    [Fact]
    public void LossRejectsWrongNumberOfLabelRows() =>
        Rejects("labels", "expected labels to have one row per step, T = 3, but got 2", () => Rnn.LossAndGradients(P, Xs, A0, Case.Labels[..2]));

    [Fact]
    public void LossRejectsWrongNumberOfLabelsInARow() =>
        Rejects("labels", "expected labels[2] to have one label per example, m = 2, but got 3",
            () => Rnn.LossAndGradients(P, Xs, A0, Case.Labels.SetItem(2, [0, 1, 2])));

    [Fact]
    public void CellForwardRejectsMismatchedAPrev() =>
        Rejects("aPrev", "expected aPrev to be n_a×m = 5×2 but got 4×2", () => Rnn.CellForward(P, Xs[0], Zeros(4, 2)));

    [Fact]
    public void CellBackwardRejectsDaOfWrongShape() =>
        Rejects("da", "expected da to be n_a×m = 5×2 but got 5×1", () => Rnn.CellBackward(Zeros(5, 1), Rnn.CellForward(P, Xs[0], A0).Cache));

    [Fact]
    public void TryForwardReportsEveryProblemAtOnce()
    {
        var result = Rnn.TryForward(P, Xs.SetItem(1, Zeros(3, 4)), Zeros(5, 3));
        Assert.True(result.IsFail);
        var messages = result.FailToSeq().Map(e => e.Message).ToList();
        Assert.Equal(2, messages.Count);
        Assert.Contains(messages, m => m.Contains("xs[1]"));
        Assert.Contains(messages, m => m.Contains("a0"));
    }

    [Fact]
    public void TryForwardSucceedsOnGoodInput()
    {
        var result = Rnn.TryForward(P, Xs, A0);
        Assert.True(result.IsSuccess);
        var expected = Rnn.Forward(P, Xs, A0).States;
        result.IfSuccess(f => Assert.True(f.States.SequenceEqual(expected)));
    }
}
