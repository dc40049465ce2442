using Xunit;
using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>Cross-entropy and mean squared error against finite differences and their definitions.</summary>
public sealed class LossTests
{
    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 100)]
    public Property SoftmaxCrossEntropyMatchesFiniteDifferences(RnnCase c)
    {
        var random = c.Shape.NewRandom();
        var logits = Draw.Matrix(random, c.Shape.Dims.Ny, c.Shape.Dims.M, 3);
        var labels = c.Labels[0];
        var mask = labels.Select(_ => random.Next(3) > 0).ToImmutableArray();
        return new[] { Reduction.Sum, Reduction.Mean }.Select(reduction =>
        {
            var result = Losses.SoftmaxCrossEntropy(logits, labels, reduction, mask);
            return GradientProperty.Holds(GradCheck.Matrix(z => Losses.SoftmaxCrossEntropy(z, labels, reduction, mask).Loss, logits, result.Gradient, "logits", GradCheckOptions.Ridders))
                .And((result.Count == mask.Count(b => b)).Label("counts the unmasked columns"));
        }).Aggregate((a, b) => a.And(b));
    }

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 100)]
    public Property MeanCrossEntropyIsTheSumOverTheCount(RnnCase c)
    {
        var logits = Draw.Matrix(c.Shape.NewRandom(), c.Shape.Dims.Ny, c.Shape.Dims.M, 3);
        var sum = Losses.SoftmaxCrossEntropy(logits, c.Labels[0], Reduction.Sum);
        var mean = Losses.SoftmaxCrossEntropy(logits, c.Labels[0], Reduction.Mean);
        var byHand = Enumerable.Range(0, logits.ColumnCount).Sum(j => -Math.Log(Softmax.Columns(logits).Column(j)[c.Labels[0][j]]));
        return Compare.Close(mean.Loss, sum.Loss / logits.ColumnCount, 1e-12).Label("mean = sum / m")
            .And(Compare.Close(sum.Loss, byHand, 1e-12).Label($"sum {sum.Loss} = Σ −log softmax {byHand}"));
    }

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 100)]
    public Property MeanSquaredErrorMatchesFiniteDifferences(RnnCase c)
    {
        var predictions = c.Xs;
        var halves = c.Xs.Select(x => x * 0.5).ToImmutableArray();
        var mse = Losses.MeanSquaredError(predictions, halves);
        var count = predictions.Sum(x => x.RowCount * x.ColumnCount);
        var byHand = predictions.Zip(halves, (p, y) => (p - y).Enumerate().Sum(d => d * d)).Sum() / count;
        var check = GradCheck.Leaves(
            leaves => Losses.MeanSquaredError(SequenceLeaves.Read(leaves, 0, predictions.Length), halves).Loss,
            SequenceLeaves.Of("predictions", predictions), SequenceLeaves.Of("predictions", mse.Gradients), GradCheckOptions.Ridders);
        return GradientProperty.Holds(check)
            .And(Compare.Close(mse.Loss, byHand, 1e-12).Label($"mean {mse.Loss} = {byHand}"))
            .And(Compare.Close(Losses.MeanSquaredError(predictions, halves, Reduction.Sum).Loss, byHand * count, 1e-11).Label("sum = mean · count"))
            .And((mse.Count == count).Label("count of entries"));
    }

    [Fact]
    public void CrossEntropyRejectsBadLabelsAndMasks()
    {
        var logits = Matrix<double>.Build.Dense(3, 2);
        var e = Assert.Throws<ArgumentException>(() => Losses.SoftmaxCrossEntropy(logits, [0, 3]));
        Assert.Equal("labels", e.ParamName);
        Assert.Contains("to be a class in [0, n_y) = [0, 3) but got 3", e.Message);
        Assert.Equal("mask", Assert.Throws<ArgumentException>(() => Losses.SoftmaxCrossEntropy(logits, [0, 1], mask: [true])).ParamName);
        var nan = Matrix<double>.Build.Dense(3, 2, (i, j) => i == 1 ? double.NaN : 0);
        Assert.Contains("expected logits to be finite", Assert.Throws<ArgumentException>(() => Losses.SoftmaxCrossEntropy(nan, [0, 1])).Message);
    }

    [Fact]
    public void MeanSquaredErrorRejectsMismatchedTargets()
    {
        var e = Assert.Throws<ArgumentException>(() => Losses.MeanSquaredError([Matrix<double>.Build.Dense(2, 3)], [Matrix<double>.Build.Dense(2, 4)]));
        Assert.Equal("targets", e.ParamName);
        Assert.Contains("expected targets[0] to be n_y×m = 2×3 but got 2×4", e.Message);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1e16)]
    [InlineData(1e17)]
    [InlineData(-1e300)]
    [InlineData(1e300)]
    public void CrossEntropyOfEqualLogitsIsLogOfTheirCountAtAnyScale(double logit)
    {
        var logits = Matrix<double>.Build.Dense(4, 1, logit);
        var result = Losses.SoftmaxCrossEntropy(logits, [2]);
        Assert.Equal(Math.Log(4), result.Loss, 15);
        Assert.All(result.Gradient.Enumerate(), (g, i) => Assert.Equal(i == 2 ? -0.75 : 0.25, g, 15));
    }

    [Fact]
    public void CrossEntropyOfALargeMarginIsTheMargin()
    {
        // −log softmax([1e16 + 4, 1e16])[1] = log(1 + e⁴) ≈ 4.018: the two logits differ in their last bits only.
        var logits = Matrix<double>.Build.DenseOfColumnArrays([1e16 + 4, 1e16]);
        Assert.Equal(Math.Log(1 + Math.Exp(4)), Losses.SoftmaxCrossEntropy(logits, [1]).Loss, 12);
    }

    [Fact]
    public void AReadOutThatOverflowsThrowsRatherThanReturningNaN()
    {
        var p = RnnParameters.Initialize(2, 3, 2, seed: 1);
        var overflowing = p with { Wya = Matrix<double>.Build.Dense(2, 3, 1e308), By = Vector<double>.Build.Dense([1.7e308, -1.7e308]) };
        ImmutableArray<Matrix<double>> xs = [Matrix<double>.Build.Dense(2, 1, 1.0)];
        var a0 = Matrix<double>.Build.Dense(3, 1, 0.5);
        var error = Assert.Throws<NonFiniteException>(() => Rnn.LossAndGradients(overflowing, xs, a0, [[0]]));
        Assert.Contains("Wy·h + by", error.Message);
        Assert.Throws<NonFiniteException>(() => Stack.LossAndGradients(new StackParameters([Layer.Rnn(p)], overflowing.Wya, overflowing.By), xs, [[0]]));
    }
}
