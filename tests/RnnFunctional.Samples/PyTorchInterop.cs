using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using Xunit;

namespace RnnFunctional.Samples;

/// <summary>
/// Weight mapping from PyTorch's nn.RNN, nn.LSTM and nn.GRU (one layer, batch_first=False) with an nn.Linear read-out,
/// with tensors given as MathNet values: docs/pytorch.md.
/// </summary>
public static class FromTorch
{
    #region torch-data
    /// <summary>PyTorch's input of shape (T, m, n_x), as T matrices m×n_x, becomes xs[t] = input[t]ᵀ (n_x×m).</summary>
    public static ImmutableArray<Matrix<double>> Sequence(IEnumerable<Matrix<double>> input) => [.. input.Select(x => x.Transpose())];

    /// <summary>An initial state h0 or c0 of shape (1, m, n_a), as its m×n_a slice, becomes a0 = h0[0]ᵀ (n_a×m).</summary>
    public static Matrix<double> State(Matrix<double> h0) => h0.Transpose();
    #endregion

    #region torch-rnn
    /// <summary>nn.RNN: the weights as they are, the two biases summed; nonlinearity "tanh" or "relu".</summary>
    public static RnnParameters Rnn(Matrix<double> weightIh, Matrix<double> weightHh, Vector<double> biasIh, Vector<double> biasHh,
        Matrix<double> linearWeight, Vector<double> linearBias, Activation nonlinearity = Activation.Tanh) =>
        new(weightIh, weightHh, biasIh + biasHh, linearWeight, linearBias) { Activation = nonlinearity };
    #endregion

    #region torch-lstm
    /// <summary>
    /// nn.LSTM: weight_ih_l0 (4n_a×n_x) and weight_hh_l0 (4n_a×n_a) stack the gates i | f | g | o in row blocks of n_a;
    /// each of our gates reads [a; x], so its matrix is [W_h· | W_i·] and its bias b_i· + b_h·.
    /// </summary>
    public static LstmParameters Lstm(Matrix<double> weightIh, Matrix<double> weightHh, Vector<double> biasIh, Vector<double> biasHh,
        Matrix<double> linearWeight, Vector<double> linearBias)
    {
        var na = weightHh.ColumnCount;
        Matrix<double> W(int k) => weightHh.SubMatrix(k * na, na, 0, na).Append(weightIh.SubMatrix(k * na, na, 0, weightIh.ColumnCount));
        Vector<double> B(int k) => biasIh.SubVector(k * na, na) + biasHh.SubVector(k * na, na);
        return new(W(1), B(1), W(0), B(0), W(2), B(2), W(3), B(3), linearWeight, linearBias);   // f = block 1, i = 0, g = 2, o = 3
    }

    /// <summary>The way back to nn.LSTM's tensors (the whole bias goes to bias_ih_l0, bias_hh_l0 is zero).</summary>
    public static (Matrix<double> WeightIh, Matrix<double> WeightHh, Vector<double> BiasIh, Vector<double> BiasHh) ToTorch(LstmParameters p)
    {
        var na = p.HiddenSize;
        Matrix<double> Input(Matrix<double> w) => w.SubMatrix(0, na, na, w.ColumnCount - na);
        Matrix<double> Hidden(Matrix<double> w) => w.SubMatrix(0, na, 0, na);
        Matrix<double>[] gates = [p.Wi, p.Wf, p.Wc, p.Wo];                                         // i | f | g | o
        var bias = Vector<double>.Build.DenseOfEnumerable(new[] { p.Bi, p.Bf, p.Bc, p.Bo }.SelectMany(b => b));
        return (Matrix<double>.Build.DenseOfRowVectors(gates.SelectMany(w => Input(w).EnumerateRows())),
                Matrix<double>.Build.DenseOfRowVectors(gates.SelectMany(w => Hidden(w).EnumerateRows())),
                bias, Vector<double>.Build.Dense(4 * na));
    }
    #endregion

    #region torch-gru
    /// <summary>nn.GRU: our layout is PyTorch's (row blocks r | z | n, two biases), so the tensors are taken as they are.</summary>
    public static GruParameters Gru(Matrix<double> weightIh, Matrix<double> weightHh, Vector<double> biasIh, Vector<double> biasHh,
        Matrix<double> linearWeight, Vector<double> linearBias) =>
        new(weightIh, weightHh, biasIh, biasHh, linearWeight, linearBias);
    #endregion
}

/// <summary>
/// The mapping against PyTorch's documented equations, evaluated here on PyTorch's own layout (one row per example,
/// gates stacked in PyTorch's order): the same outputs, and a loss equal to nn.CrossEntropyLoss(reduction="sum").
/// </summary>
public sealed class PyTorchInteropTests
{
    private const int Nx = 3, Na = 4, Ny = 5, M = 2, T = 6;
    private static readonly Random Random = new(11);
    private static Matrix<double> Tensor(int rows, int columns) => Matrix<double>.Build.Dense(rows, columns, (_, _) => Random.NextDouble() - 0.5);
    private static Vector<double> Bias(int n) => Tensor(n, 1).Column(0);
    private static readonly ImmutableArray<Matrix<double>> Input = [.. Enumerable.Range(0, T).Select(_ => Tensor(M, Nx))]; // (T, m, n_x)
    private static readonly Matrix<double> H0 = Tensor(M, Na), C0 = Tensor(M, Na);
    private static readonly Matrix<double> LinearWeight = Tensor(Ny, Na);
    private static readonly Vector<double> LinearBias = Bias(Ny);
    private static readonly ImmutableArray<ImmutableArray<int>> Labels = [.. Enumerable.Range(0, T).Select(t => ImmutableArray.Create(t % Ny, (3 * t + 1) % Ny))];

    // ---- PyTorch's equations, on its layout: x is m×n_x, h is m×n_a, W x means x·Wᵀ ----

    private static Matrix<double> Linear(Matrix<double> x, Matrix<double> w, Vector<double> b) => x.TransposeAndMultiply(w) + Rows(b, x.RowCount);
    private static Matrix<double> Rows(Vector<double> b, int m) => Matrix<double>.Build.Dense(m, b.Count, (_, j) => b[j]);
    private static Matrix<double> Block(Matrix<double> gates, int k) => gates.SubMatrix(0, gates.RowCount, k * Na, Na);
    private static Matrix<double> Sigmoid(Matrix<double> z) => z.Map(v => 1 / (1 + Math.Exp(-v)));
    private static Matrix<double> Tanh(Matrix<double> z) => z.Map(Math.Tanh);

    /// <summary>nn.CrossEntropyLoss(reduction="sum") of the read-out at every step.</summary>
    private static double CrossEntropySum(IEnumerable<Matrix<double>> hs) =>
        hs.Select((h, t) =>
        {
            var logits = Linear(h, LinearWeight, LinearBias);
            return Enumerable.Range(0, M).Sum(j =>
            {
                var row = logits.Row(j);
                var max = row.Maximum();
                return max + Math.Log(row.Sum(v => Math.Exp(v - max))) - row[Labels[t][j]];
            });
        }).Sum();

    /// <summary>Within 1e-12 (absolute for the states and cells here, all of magnitude below 1), naming the first entry that is not.</summary>
    private static void AssertClose(Matrix<double> expected, Matrix<double> actual) =>
        Assert.True(Compare.Close(expected, actual, 1e-12), Compare.FirstDifference(expected, actual, 1e-12));

    [Fact]
    public void RnnFromTorchMatchesPyTorchsEquations()
    {
        var (wIh, wHh, bIh, bHh) = (Tensor(Na, Nx), Tensor(Na, Na), Bias(Na), Bias(Na));
        var hs = Scan.Fold(H0, Input, (h, x) => { var next = Tanh(Linear(x, wIh, bIh) + Linear(h, wHh, bHh)); return (next, next); }).Outputs;

        var p = FromTorch.Rnn(wIh, wHh, bIh, bHh, LinearWeight, LinearBias);
        var forward = Rnn.Forward(p, FromTorch.Sequence(Input), FromTorch.State(H0));
        for (var t = 0; t < T; t++) AssertClose(hs[t], forward.States[t].Transpose());
        var loss = Rnn.LossAndGradients(p, FromTorch.Sequence(Input), FromTorch.State(H0), Labels).Loss;
        Assert.Equal(CrossEntropySum(hs), loss, 1e-12);
    }

    [Fact]
    public void LstmFromTorchMatchesPyTorchsEquations()
    {
        var (wIh, wHh, bIh, bHh) = (Tensor(4 * Na, Nx), Tensor(4 * Na, Na), Bias(4 * Na), Bias(4 * Na));
        var steps = Scan.Fold((H: H0, C: C0), Input, (s, x) =>
        {
            var gates = Linear(x, wIh, bIh) + Linear(s.H, wHh, bHh);                                   // i | f | g | o
            var (i, f, g, o) = (Sigmoid(Block(gates, 0)), Sigmoid(Block(gates, 1)), Tanh(Block(gates, 2)), Sigmoid(Block(gates, 3)));
            var c = f.PointwiseMultiply(s.C) + i.PointwiseMultiply(g);
            var h = o.PointwiseMultiply(Tanh(c));
            return ((h, c), (H: h, C: c));
        }).Outputs;

        var p = FromTorch.Lstm(wIh, wHh, bIh, bHh, LinearWeight, LinearBias);
        var forward = Lstm.Forward(p, FromTorch.Sequence(Input), FromTorch.State(H0), FromTorch.State(C0));
        for (var t = 0; t < T; t++)
        {
            AssertClose(steps[t].H, forward.States[t].Transpose());
            AssertClose(steps[t].C, forward.Cells[t].Transpose());
        }
        var loss = Lstm.LossAndGradients(p, FromTorch.Sequence(Input), FromTorch.State(H0), FromTorch.State(C0), Labels).Loss;
        Assert.Equal(CrossEntropySum(steps.Select(s => s.H)), loss, 1e-12);
    }

    [Fact]
    public void LstmToTorchIsTheWayBack()
    {
        var p = LstmParameters.Initialize(Nx, Na, Ny, seed: 3);
        var (wIh, wHh, bIh, bHh) = FromTorch.ToTorch(p);
        Assert.Equal((4 * Na, Nx, 4 * Na, Na), (wIh.RowCount, wIh.ColumnCount, wHh.RowCount, wHh.ColumnCount));
        Assert.Equal(Tree.Flatten(p), Tree.Flatten(FromTorch.Lstm(wIh, wHh, bIh, bHh, p.Wy, p.By)));
    }

    [Fact]
    public void GruFromTorchMatchesPyTorchsEquations()
    {
        var (wIh, wHh, bIh, bHh) = (Tensor(3 * Na, Nx), Tensor(3 * Na, Na), Bias(3 * Na), Bias(3 * Na));
        var hs = Scan.Fold(H0, Input, (h, x) =>
        {
            var (gi, gh) = (Linear(x, wIh, bIh), Linear(h, wHh, bHh));                               // r | z | n
            var r = Sigmoid(Block(gi, 0) + Block(gh, 0));
            var z = Sigmoid(Block(gi, 1) + Block(gh, 1));
            var n = Tanh(Block(gi, 2) + r.PointwiseMultiply(Block(gh, 2)));
            var next = (1 - z).PointwiseMultiply(n) + z.PointwiseMultiply(h);
            return (next, next);
        }).Outputs;

        var p = FromTorch.Gru(wIh, wHh, bIh, bHh, LinearWeight, LinearBias);
        var forward = Gru.Forward(p, FromTorch.Sequence(Input), FromTorch.State(H0));
        for (var t = 0; t < T; t++) AssertClose(hs[t], forward.States[t].Transpose());
        var loss = Gru.LossAndGradients(p, FromTorch.Sequence(Input), FromTorch.State(H0), Labels).Loss;
        Assert.Equal(CrossEntropySum(hs), loss, 1e-12);
    }
}
