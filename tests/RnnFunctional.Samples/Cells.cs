using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using Xunit;

namespace RnnFunctional.Samples;

/// <summary>The examples of docs/cells.md.</summary>
public sealed class CellsSamples
{
    [Fact]
    public void LstmExample()
    {
        #region lstm-example
        var p = LstmParameters.Initialize(inputSize: 3, hiddenSize: 5, outputSize: 4, seed: 1);
        var xs = Enumerable.Range(0, 6).Select(t => Matrix<double>.Build.Random(3, 2, seed: t)).ToImmutableArray(); // T = 6, m = 2
        var (a0, c0) = (Matrix<double>.Build.Dense(5, 2), Matrix<double>.Build.Dense(5, 2));
        ImmutableArray<ImmutableArray<int>> labels = [.. Enumerable.Range(0, 6).Select(t => ImmutableArray.Create(t % 4, 1))];

        var forward = Lstm.Forward(p, xs, a0, c0);              // forward.States[t], forward.Cells[t]: 5×2
        var loss = Lstm.LossAndGradients(p, xs, a0, c0, labels);
        var updated = p - 0.1 * loss.Gradients;                  // one step of gradient descent
        #endregion

        Assert.Equal((5, 2), (forward.Cells[5].RowCount, forward.Cells[5].ColumnCount));
        Assert.True(Lstm.LossAndGradients(updated, xs, a0, c0, labels).Loss < loss.Loss);
    }

    [Fact]
    public void GruExample()
    {
        #region gru-example
        var p = GruParameters.Initialize(inputSize: 3, hiddenSize: 5, outputSize: 4, seed: 1);   // Wih 15×3, Whh 15×5
        var xs = Enumerable.Range(0, 6).Select(t => Matrix<double>.Build.Random(3, 2, seed: t)).ToImmutableArray();
        var a0 = Matrix<double>.Build.Dense(5, 2);
        ImmutableArray<ImmutableArray<int>> labels = [.. Enumerable.Range(0, 6).Select(t => ImmutableArray.Create(t % 4, 1))];

        var loss = Gru.LossAndGradients(p, xs, a0, labels);
        var updated = p with { Wih = p.Wih - 0.1 * loss.Gradients.Wih };   // or p - 0.1 * loss.Gradients
        #endregion

        Assert.Equal((15, 3), (p.Wih.RowCount, p.Wih.ColumnCount));
        Assert.True(Gru.LossAndGradients(updated, xs, a0, labels).Loss < loss.Loss);
    }
}
