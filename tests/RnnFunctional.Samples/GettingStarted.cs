using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using Xunit;

namespace RnnFunctional.Samples;

public sealed class GettingStarted
{
    [Fact]
    public void SmallRnnForwardBackwardAndGradientCheck()
    {
        #region getting-started
        // n_x = 3 inputs, n_a = 5 hidden units, n_y = 4 classes; a batch of m = 2 sequences of T = 2 steps.
        var p = RnnParameters.Initialize(inputSize: 3, hiddenSize: 5, outputSize: 4, seed: 1);
        var xs = ImmutableArray.Create(
            Matrix<double>.Build.DenseOfArray(new double[,] { { 0.1, -0.2 }, { 0.3, 0.0 }, { -0.5, 0.4 } }),
            Matrix<double>.Build.DenseOfArray(new double[,] { { 0.7, 0.1 }, { -0.1, 0.2 }, { 0.0, -0.3 } }));
        var a0 = Matrix<double>.Build.Dense(5, 2);
        ImmutableArray<ImmutableArray<int>> labels = [[0, 3], [2, 1]];   // labels[t][j]: class of example j at step t

        var forward = Rnn.Forward(p, xs, a0);                 // .States a⟨1⟩..a⟨T⟩ (5×2), .Predictions ŷ⟨t⟩ (4×2)
        var loss = Rnn.LossAndGradients(p, xs, a0, labels);   // .Loss (a sum over steps and examples), .Gradients
        var updated = p - 0.1 * loss.Gradients;               // gradients have the parameters' type

        var report = GradCheck.Tree(q => Rnn.LossAndGradients(q, xs, a0, labels).Loss, p, loss.Gradients,
                                    GradCheckOptions.Ridders);
        Console.WriteLine(report.Summary());                   // worst entry of each leaf: analytic, numeric, error
        #endregion

        Assert.Equal(2, forward.Predictions.Length);
        Assert.True(report.Passes(1e-6), report.Summary());
        Assert.True(Rnn.LossAndGradients(updated, xs, a0, labels).Loss < loss.Loss);
    }
}
