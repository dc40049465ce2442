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

    [Fact]
    public void PeepholeExample()
    {
        #region peephole-example
        var lstm = LstmParameters.Initialize(inputSize: 3, hiddenSize: 5, outputSize: 4, seed: 1);
        var pf = Vector<double>.Build.Dense(5, 0.1);
        var p = PeepholeLstmParameters.Of(lstm, pf, pi: pf, po: pf);                      // or PeepholeLstmParameters.Initialize(3, 5, 4, seed)
        var xs = Enumerable.Range(0, 6).Select(t => Matrix<double>.Build.Random(3, 2, seed: t)).ToImmutableArray();
        var (a0, c0) = (Matrix<double>.Build.Dense(5, 2), Matrix<double>.Build.Dense(5, 2));
        ImmutableArray<ImmutableArray<int>> labels = [.. Enumerable.Range(0, 6).Select(t => ImmutableArray.Create(t % 4, 1))];

        var loss = PeepholeLstm.LossAndGradients(p, xs, a0, c0, labels);                  // loss.Gradients.Pf, .Pi, .Po: 5 each
        var updated = p - 0.1 * loss.Gradients;
        var stack = StackParameters.Initialize([Layer.PeepholeLstm(p), Layer.Bidirectional(Layer.Lstm(5, 3, seed: 2), Layer.PeepholeLstm(5, 3, seed: 3))],
            outputSize: 4, seed: 4);
        var stackLoss = Stack.LossAndGradients(stack, xs, labels);
        #endregion

        Assert.True(PeepholeLstm.LossAndGradients(updated, xs, a0, c0, labels).Loss < loss.Loss);
        Assert.True(double.IsFinite(stackLoss.Loss));
    }

    [Fact]
    public void LayerNormExample()
    {
        #region layer-norm-example
        var p = LayerNormLstmParameters.Initialize(inputSize: 3, hiddenSize: 5, outputSize: 4, seed: 1); // Wx 20×3, Wh 20×5, gains 1
        var xs = Enumerable.Range(0, 6).Select(t => Matrix<double>.Build.Random(3, 2, seed: t)).ToImmutableArray();
        var (a0, c0) = (Matrix<double>.Build.Dense(5, 2), Matrix<double>.Build.Dense(5, 2));
        ImmutableArray<ImmutableArray<int>> labels = [.. Enumerable.Range(0, 6).Select(t => ImmutableArray.Create(t % 4, 1))];

        var loss = LayerNormLstm.LossAndGradients(p, xs, a0, c0, labels);                 // loss.Gradients.GainX, .GainH, .GainC, .BiasC
        var updated = p - 0.1 * loss.Gradients;                                            // ε (p.Epsilon) is kept
        var layer = Layer.LayerNormLstm(p with { Epsilon = 1e-3 });                        // composes in Stack, Bidirectional, ragged batches
        #endregion

        Assert.True(LayerNormLstm.LossAndGradients(updated, xs, a0, c0, labels).Loss < loss.Loss);
        Assert.Equal(1e-5, updated.Epsilon);
        Assert.Equal([5, 5], layer.StateRows.ToArray());
    }

    [Fact]
    public void LayerNormGruExample()
    {
        #region layer-norm-gru-example
        var p = LayerNormGruParameters.Initialize(inputSize: 3, hiddenSize: 5, outputSize: 4, seed: 1);  // Wih 15×3, Whh 15×5, gains 1
        var xs = Enumerable.Range(0, 6).Select(t => Matrix<double>.Build.Random(3, 2, seed: t)).ToImmutableArray();
        var a0 = Matrix<double>.Build.Dense(5, 2);
        ImmutableArray<ImmutableArray<int>> labels = [.. Enumerable.Range(0, 6).Select(t => ImmutableArray.Create(t % 4, 1))];

        var loss = LayerNormGru.LossAndGradients(p, xs, a0, labels);
        var updated = p - 0.1 * loss.Gradients;
        #endregion

        Assert.True(LayerNormGru.LossAndGradients(updated, xs, a0, labels).Loss < loss.Loss);
    }

    [Fact]
    public void ProjectionExample()
    {
        #region projection-example
        var p = ProjectedLstmParameters.Initialize(inputSize: 3, hiddenSize: 5, projectionSize: 2, outputSize: 4, seed: 1); // Whr 2×5, Whh 20×2
        var xs = Enumerable.Range(0, 6).Select(t => Matrix<double>.Build.Random(3, 2, seed: t)).ToImmutableArray();
        var (h0, c0) = (Matrix<double>.Build.Dense(2, 2), Matrix<double>.Build.Dense(5, 2));   // h is n_p×m, c is n_a×m
        ImmutableArray<ImmutableArray<int>> labels = [.. Enumerable.Range(0, 6).Select(t => ImmutableArray.Create(t % 4, 1))];

        var loss = ProjectedLstm.LossAndGradients(p, xs, h0, c0, labels);                   // loss.Gradients.Whr: 2×5
        var updated = p - 0.1 * loss.Gradients;
        var layer = Layer.ProjectedLstm(p);                                                  // output size 2, state rows [2, 5]
        #endregion

        Assert.True(ProjectedLstm.LossAndGradients(updated, xs, h0, c0, labels).Loss < loss.Loss);
        Assert.Equal(2, layer.OutputSize);
    }
}
