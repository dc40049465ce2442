using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using static RnnFunctional.Testing.Compare;

namespace RnnFunctional.Tests;

/// <summary>Algebraic laws of the RNN's forward and backward folds.</summary>
public sealed class RnnLawTests
{
    /// <summary>The τ of <see cref="Compare.Close(Matrix{double},Matrix{double},double)"/> between a batch and its columns.</summary>
    private const double Tolerance = 1e-12;

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 100)]
    public Property ForwardEqualsHandLoopOfCellForward(RnnCase c)
    {
        var forward = Rnn.Forward(c.P, c.Xs, c.A0);
        var a = c.A0;
        var agree = true;
        for (var t = 0; t < c.Xs.Length; t++)
        {
            var step = Rnn.CellForward(c.P, c.Xs[t], a);
            agree &= Same(step.A, forward.States[t]) && Same(step.YHat, forward.Predictions[t]);
            a = step.A;
        }
        return agree.Label("every state and prediction identical");
    }

    [Property(Arbitrary = [typeof(LawArbitraries)], MaxTest = 100)]
    public Property ForwardOverConcatenationContinuesFromLastState(Cut cut)
    {
        var (c, split) = (new RnnCase(cut.Shape), cut.At);
        var (xs, ys) = (c.Xs[..split], c.Xs[split..]);
        var whole = Rnn.Forward(c.P, c.Xs, c.A0);
        var first = Rnn.Forward(c.P, xs, c.A0);
        var rest = Rnn.Forward(c.P, ys, first.States[^1]);
        return (Same(first.States.AddRange(rest.States), whole.States) && Same(first.Predictions.AddRange(rest.Predictions), whole.Predictions))
            .Label($"Forward(xs ++ ys) = Forward(xs), then Forward(ys) from its last state: states and predictions (cut at {split} of {c.Xs.Length})");
    }

    [Property(Arbitrary = [typeof(LawArbitraries)], MaxTest = 100)]
    public Property BatchEqualsColumnsRunAlone(RnnCase c)
    {
        var batch = Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);
        var forward = Rnn.Forward(c.P, c.Xs, c.A0);
        var columns = Enumerable.Range(0, c.A0.ColumnCount).Select(j =>
        {
            var xs = c.Xs.Select(x => x.SubMatrix(0, x.RowCount, j, 1)).ToImmutableArray();
            var a0 = c.A0.SubMatrix(0, c.A0.RowCount, j, 1);
            var labels = c.Labels.Select(row => ImmutableArray.Create(row[j])).ToImmutableArray();
            return (Forward: Rnn.Forward(c.P, xs, a0), Loss: Rnn.LossAndGradients(c.P, xs, a0, labels));
        }).ToArray();

        var statesAgree = columns.Select((col, j) => Close(col.Forward.States, [.. forward.States.Select(b => b.SubMatrix(0, b.RowCount, j, 1))], Tolerance)).All(x => x);
        var lossAgrees = Close(columns.Sum(col => col.Loss.Loss), batch.Loss, Tolerance);
        var gradientSum = columns.Select(col => col.Loss.Gradients).Aggregate((a, b) => a + b);
        var gradientsAgree = Close(gradientSum, batch.Gradients, Tolerance);
        return statesAgree.Label("states of each column")
            .And(lossAgrees.Label("loss is the sum of the columns' losses"))
            .And(gradientsAgree.Label("gradients are the sum of the columns' gradients"));
    }

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 100)]
    public Property BackwardOfOneStepEqualsCellBackward(RnnCase c)
    {
        var xs = c.Xs[..1];
        var whole = Rnn.Backward(Rnn.Forward(c.P, xs, c.A0), c.Da[..1]);
        var cell = Rnn.CellBackward(c.Da[0], Rnn.CellForward(c.P, xs[0], c.A0).Cache);
        return (Same(whole.Dx[0], cell.Dxt) && Same(whole.Da0, cell.DaPrev) && Same(whole.Gradients, cell.Gradients))
            .Label("dx, da0 and gradients identical");
    }

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 50)]
    public Property NoArgumentIsMutated(RnnCase c)
    {
        var before = Snapshot(c);
        var forward = Rnn.Forward(c.P, c.Xs, c.A0);
        _ = Rnn.Backward(forward, c.Da);
        _ = Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);
        _ = Rnn.CellBackward(c.Da[0], Rnn.CellForward(c.P, c.Xs[0], c.A0).Cache);
        return Snapshot(c).SequenceEqual(before).Label("parameters, inputs, a0 and da unchanged");
    }

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 20)]
    public Property ConcurrentCallsGiveIdenticalResults(RnnCase c)
    {
        var reference = Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);
        var results = Enumerable.Range(0, 8).AsParallel().Select(_ => Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels)).ToArray();
        return results.All(r => Same(r.Loss, reference.Loss) && Same(r.Gradients, reference.Gradients)).Label("bitwise identical");
    }

    private static double[] Snapshot(RnnCase c) =>
        [.. Tree.Flatten(c.P), .. c.Xs.SelectMany(Draw.Snapshot), .. Draw.Snapshot(c.A0), .. c.Da.SelectMany(Draw.Snapshot)];
}

/// <summary>Properties of the column softmax and of the loss at extreme logits.</summary>
public sealed class SoftmaxTests
{
    private static Gen<Matrix<double>> Logits(double scale) =>
        from rows in Gen.Choose(1, 8)
        from cols in Gen.Choose(1, 8)
        from seed in Gen.Choose(0, int.MaxValue - 1)
        select Draw.Matrix(new Random(seed), rows, cols, scale);

    [Property(MaxTest = 200)]
    public Property ColumnsArePositiveAndSumToOne() =>
        Prop.ForAll(Logits(20).ToArbitrary(), logits =>
        {
            var y = Softmax.Columns(logits);
            return y.Enumerate().All(v => v > 0).Label("positive")
                .And(y.ColumnSums().All(s => Math.Abs(s - 1) < 1e-14).Label("columns sum to 1"));
        });

    [Property(MaxTest = 200)]
    public Property InvariantToAddingAConstantToAColumn() =>
        Prop.ForAll(Logits(20).ToArbitrary(), Gen.Choose(-1000, 1000).ToArbitrary(), (logits, shift) =>
        {
            var shifted = logits.MapIndexed((i, j, v) => v + shift * (j + 1));
            var (a, b) = (Softmax.Columns(logits), Softmax.Columns(shifted));
            return a.Enumerate().Zip(b.Enumerate()).All(p => Math.Abs(p.Item1 - p.Item2) <= 1e-12).Label("unchanged by a per-column shift");
        });

    [Property(MaxTest = 200)]
    public Property FiniteAtLogitsOfTenThousand() =>
        Prop.ForAll(Logits(1e4).ToArbitrary(), logits =>
        {
            var y = Softmax.Columns(logits);
            return y.Enumerate().All(double.IsFinite).Label("finite")
                .And(y.ColumnSums().All(s => Math.Abs(s - 1) < 1e-14).Label("columns sum to 1"));
        });

    [Fact]
    public void LossStaysFiniteAtLogitsOfTenThousand()
    {
        var p = new RnnParameters(Matrix<double>.Build.Dense(2, 1), Matrix<double>.Build.Dense(2, 2), Vector<double>.Build.Dense(2),
                                  Matrix<double>.Build.Dense(3, 2), Vector<double>.Build.DenseOfArray([1e4, -1e4, 0]));
        var xs = ImmutableArray.Create(Matrix<double>.Build.Dense(1, 2));
        var loss = Rnn.LossAndGradients(p, xs, Matrix<double>.Build.Dense(2, 2), [[1, 0]]);
        // Logits are (1e4, −1e4, 0) in both columns: the labels 1 and 0 cost 2e4 and 0 (to the last bit: e^−1e4 = 0).
        Assert.Equal(2e4, loss.Loss);
        Assert.True(Tree.AllFinite(loss.Gradients));
        Assert.Equal(-1.0, loss.Gradients.By[1]);
    }
}

/// <summary>The generic cell laws of RnnFunctional.Testing applied to the RNN cell, with either non-linearity.</summary>
public sealed class RnnCellLawTests
{
    private static readonly CellUnderTest<RnnParameters, Matrix<double>, RnnCache> Tanh = CellUnderTest.Rnn(Activation.Tanh);
    private static readonly CellUnderTest<RnnParameters, Matrix<double>, RnnCache> Relu = CellUnderTest.Rnn(Activation.Relu);

    [Property(MaxTest = 100)]
    public Property ScanOverConcatenationContinuesFromFinalCarry() => CellLaws.ScanOverConcatenationContinuesFromFinalCarry(Tanh);

    [Property(MaxTest = 100)]
    public Property ReluScanOverConcatenationContinuesFromFinalCarry() => CellLaws.ScanOverConcatenationContinuesFromFinalCarry(Relu);

    [Property(MaxTest = 100)]
    public Property BatchEqualsColumnsRunAlone() => CellLaws.BatchEqualsColumnsRunAlone(Tanh);

    [Property(MaxTest = 100)]
    public Property ReluBatchEqualsColumnsRunAlone() => CellLaws.BatchEqualsColumnsRunAlone(Relu);

    [Property(MaxTest = 100)]
    public Property RaggedBatchEqualsColumnsRunAlone() => CellLaws.RaggedBatchEqualsColumnsRunAlone(Tanh);

    [Property(MaxTest = 100)]
    public Property ReluRaggedBatchEqualsColumnsRunAlone() => CellLaws.RaggedBatchEqualsColumnsRunAlone(Relu);

    [Property(MaxTest = 100)]
    public Property FullLengthRaggedScanEqualsScan() => CellLaws.FullLengthRaggedScanEqualsScan(Tanh);

    [Property(MaxTest = 100)]
    public Property OneStepScanEqualsCell() => CellLaws.OneStepScanEqualsCell(Tanh);

    [Property(MaxTest = 100)]
    public Property ReluOneStepScanEqualsCell() => CellLaws.OneStepScanEqualsCell(Relu);

    [Property(MaxTest = 50)]
    public Property NoArgumentIsMutated() => CellLaws.NoArgumentIsMutated(Tanh);

    [Property(MaxTest = 50)]
    public Property ReluNoArgumentIsMutated() => CellLaws.NoArgumentIsMutated(Relu);

    [Property(MaxTest = 100)]
    public Property GradientsMatchFiniteDifferences() => CellLaws.GradientsMatchFiniteDifferences(Tanh);

    [Property(MaxTest = 100)]
    public Property DirectionalDerivativeMatches() => CellLaws.DirectionalDerivativeMatches(Tanh);
}
