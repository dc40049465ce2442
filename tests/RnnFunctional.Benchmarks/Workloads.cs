using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// The data of the workloads of the performance issue, drawn from a seed: T steps of a batch of m sequences of n_x
/// inputs, an RNN of n_a hidden units read out into n_y classes. Shared with the libtorch peer so both sides run on the
/// same numbers.
/// </summary>
public sealed class Workload
{
    public Workload(int steps = 100, int batch = 32, int inputs = 64, int hidden = 128, int classes = 64, int seed = 1)
    {
        (Steps, Batch, Inputs, Hidden, Classes) = (steps, batch, inputs, hidden, classes);
        var random = new Random(seed);
        Matrix<double> Draw(int rows, int columns, double scale) =>
            Matrix<double>.Build.Dense(rows, columns, (_, _) => (2 * random.NextDouble() - 1) * scale);
        Rnn = RnnParameters.Initialize(inputs, hidden, classes, seed);
        Lstm = LstmParameters.Initialize(inputs, hidden, classes, seed);
        Gru = GruParameters.Initialize(inputs, hidden, classes, seed);
        Xs = [.. Enumerable.Range(0, steps).Select(_ => Draw(inputs, batch, 1.0))];
        A0 = Draw(hidden, batch, 0.5);
        Labels = [.. Enumerable.Range(0, steps).Select(_ => Enumerable.Range(0, batch).Select(_ => random.Next(classes)).ToImmutableArray())];
        var daRandom = new Random(seed + 1);
        da = new(() => [.. Enumerable.Range(0, steps).Select(_ =>
            Matrix<double>.Build.Dense(hidden, batch, (_, _) => 2 * daRandom.NextDouble() - 1))]);
    }

    public int Steps { get; }
    public int Batch { get; }
    public int Inputs { get; }
    public int Hidden { get; }
    public int Classes { get; }
    public RnnParameters Rnn { get; }
    public LstmParameters Lstm { get; }
    public GruParameters Gru { get; }
    public ImmutableArray<Matrix<double>> Xs { get; }
    public Matrix<double> A0 { get; }
    /// <summary>The outside gradients of W1, drawn when first read.</summary>
    public ImmutableArray<Matrix<double>> Da => da.Value;

    private readonly Lazy<ImmutableArray<Matrix<double>>> da;
    public ImmutableArray<ImmutableArray<int>> Labels { get; }

    /// <summary>Floating-point operations of the products of W1 (forward with its read-out, backward): 2·T·m per multiply-add.</summary>
    public double RnnForwardBackwardFlops =>
        2.0 * Steps * Batch * (Hidden * Inputs + Hidden * Hidden + Classes * Hidden      // Wax·x, Waa·a, Wya·a
                               + 2 * Hidden * Inputs + 2 * Hidden * Hidden);              // dWax, dX, dWaa, Waaᵀ·dz

    /// <summary>Floating-point operations of the products of W2 (forward, read-out and its gradients, backward).</summary>
    public double RnnLossFlops =>
        2.0 * Steps * Batch * (Hidden * Inputs + Hidden * Hidden + Classes * Hidden      // Wax·x, Waa·a, Wya·a
                               + 2 * Classes * Hidden                                     // dWya, Wyaᵀ·dO
                               + 2 * Hidden * Inputs + 2 * Hidden * Hidden);              // dWax, dX, dWaa, Waaᵀ·dz

    /// <summary>Floating-point operations of the products of W3: four gates on [a; x], the read-out, their gradients.</summary>
    public double LstmLossFlops =>
        2.0 * Steps * Batch * (3 * 4 * Hidden * (Hidden + Inputs) + 3 * Classes * Hidden);

    /// <summary>Floating-point operations of the products of W4: three gates on x and on h, the read-out, their gradients.</summary>
    public double GruLossFlops =>
        2.0 * Steps * Batch * (3 * 3 * Hidden * (Hidden + Inputs) + 3 * Classes * Hidden);

    /// <summary>Bytes of what W2 must keep between its forward and its backward: the states and the read-out's outputs, T·(n_a + n_y)·m doubles.</summary>
    public long RnnCacheBytes => 8L * Steps * Batch * (Hidden + Classes);
}
