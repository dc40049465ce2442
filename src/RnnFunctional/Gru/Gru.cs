using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// Parameters of the GRU cell in PyTorch's formulation and layout: r = σ(W_ir·x + b_ir + W_hr·h + b_hr),
/// z = σ(W_iz·x + b_iz + W_hz·h + b_hz), n = tanh(W_in·x + b_in + r⊙(W_hn·h + b_hn)), h⟨t⟩ = (1 − z)⊙n + z⊙h⟨t−1⟩,
/// with the read-out ŷ⟨t⟩ = softmax(Wy·h⟨t⟩ + by). Rows are stacked in blocks r | z | n of n_a rows each, so
/// PyTorch's weight_ih_l0, weight_hh_l0, bias_ih_l0 and bias_hh_l0 load unchanged. Gradients have this same type.
/// </summary>
/// <param name="Wih">Input weights [W_ir; W_iz; W_in], 3n_a×n_x.</param>
/// <param name="Whh">Recurrent weights [W_hr; W_hz; W_hn], 3n_a×n_a.</param>
/// <param name="Bih">Input biases [b_ir; b_iz; b_in], length 3n_a.</param>
/// <param name="Bhh">Recurrent biases [b_hr; b_hz; b_hn], length 3n_a.</param>
/// <param name="Wy">Read-out weights, n_y×n_a.</param>
/// <param name="By">Read-out bias, length n_y.</param>
public sealed record GruParameters(Matrix<double> Wih, Matrix<double> Whh, Vector<double> Bih, Vector<double> Bhh,
    Matrix<double> Wy, Vector<double> By)
    : IParameterTree<GruParameters>, IFlatTree
{
    /// <summary>Input size n_x.</summary>
    public int InputSize => Wih.ColumnCount;

    /// <summary>Hidden size n_a.</summary>
    public int HiddenSize => Whh.ColumnCount;

    /// <summary>Number of classes n_y of the read-out.</summary>
    public int OutputSize => Wy.RowCount;

    /// <summary>
    /// Random parameters as PyTorch initialises nn.GRU and nn.Linear: every entry uniform in (−1/√n_a, 1/√n_a).
    /// </summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="outputSize">n_y ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same parameters.</param>
    [Pure]
    public static GruParameters Initialize(int inputSize, int hiddenSize, int outputSize, int seed)
    {
        Dimensions.RequirePositive((nameof(inputSize), inputSize), (nameof(hiddenSize), hiddenSize), (nameof(outputSize), outputSize));
        var uniform = Dimensions.Uniform(seed, 1.0 / Math.Sqrt(hiddenSize));
        return new(uniform(3 * hiddenSize, inputSize), uniform(3 * hiddenSize, hiddenSize), uniform(3 * hiddenSize, 1).Column(0),
                   uniform(3 * hiddenSize, 1).Column(0), uniform(outputSize, hiddenSize), uniform(outputSize, 1).Column(0));
    }

    /// <inheritdoc />
    [Pure]
    public ImmutableArray<Leaf> ToLeaves() => Part.Leaves(Parts);

    /// <inheritdoc />
    int IFlatTree.WriteValues(Span<double> destination, ImmutableArray<string> skip) => Part.WriteAll(Parts, destination, skip);

    /// <inheritdoc />
    int IFlatTree.ReadValues(ReadOnlySpan<double> source, ImmutableArray<string> skip) => Part.ReadAll(Parts, source, skip);

    /// <inheritdoc />
    [Pure]
    public ImmutableArray<LeafShape> LeafShapes() => Part.Shapes(Parts);

    private Part[] Parts =>
    [
        (nameof(Wih), Wih), (nameof(Whh), Whh), (nameof(Bih), Bih), (nameof(Bhh), Bhh), (nameof(Wy), Wy),
        (nameof(By), By),
    ];

    /// <inheritdoc />
    [Pure]
    public GruParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(LeafShapes(), leaves, l => this with
        {
            Wih = l[0].ToMatrix(), Whh = l[1].ToMatrix(), Bih = l[2].ToVector(), Bhh = l[3].ToVector(), Wy = l[4].ToMatrix(), By = l[5].ToVector(),
        });

    /// <summary>Entry-wise sum.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static GruParameters operator +(GruParameters a, GruParameters b) => Tree.Add(a, b);

    /// <summary>Entry-wise difference.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static GruParameters operator -(GruParameters a, GruParameters b) => Tree.Subtract(a, b);

    /// <summary>Scaling by a number.</summary>
    /// <param name="s">Scale.</param>
    /// <param name="a">Parameters or gradients.</param>
    public static GruParameters operator *(double s, GruParameters a) => Tree.Scale(s, a);
}

/// <summary>What one step of the GRU cell keeps for its backward.</summary>
/// <param name="Parameters">The parameters the step ran with.</param>
/// <param name="Xt">x⟨t⟩, n_x×m.</param>
/// <param name="APrev">h⟨t−1⟩, n_a×m.</param>
/// <param name="R">The reset gate r, n_a×m.</param>
/// <param name="Z">The update gate z, n_a×m.</param>
/// <param name="N">The candidate n, n_a×m.</param>
/// <param name="Hn">W_hn·h⟨t−1⟩ + b_hn, the recurrent part of n before the reset gate, n_a×m.</param>
/// <param name="A">h⟨t⟩, n_a×m.</param>
public sealed record GruCache(GruParameters Parameters, Matrix<double> Xt, Matrix<double> APrev, Matrix<double> R, Matrix<double> Z,
    Matrix<double> N, Matrix<double> Hn, Matrix<double> A);

/// <summary>The result of <see cref="Gru.CellForward"/>.</summary>
/// <param name="A">h⟨t⟩, n_a×m.</param>
/// <param name="YHat">ŷ⟨t⟩, n_y×m.</param>
/// <param name="Cache">What <see cref="Gru.CellBackward"/> needs.</param>
public sealed record GruStep(Matrix<double> A, Matrix<double> YHat, GruCache Cache);

/// <summary>The result of <see cref="Gru.Forward"/>; its predictions are computed when first read (see <see cref="SequenceForward{TParams, TCache}"/>).</summary>
public sealed record GruForward : SequenceForward<GruParameters, GruCache>
{
    /// <summary>A forward result of the given values.</summary>
    /// <param name="Parameters">The parameters the sequence ran with.</param>
    /// <param name="States">h⟨1⟩..h⟨T⟩, each n_a×m.</param>
    /// <param name="Predictions">ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m.</param>
    /// <param name="Caches">One cache per step, in time order.</param>
    public GruForward(GruParameters Parameters, ImmutableArray<Matrix<double>> States, ImmutableArray<Matrix<double>> Predictions, ImmutableArray<GruCache> Caches)
        : base(Parameters, new Lazy<ImmutableArray<Matrix<double>>>(States), new Lazy<ImmutableArray<Matrix<double>>>(Predictions), new Lazy<ImmutableArray<GruCache>>(Caches))
    {
    }

    /// <summary>A forward result whose predictions are computed when first read.</summary>
    /// <param name="parameters">The parameters the sequence ran with.</param>
    /// <param name="states">h⟨1⟩..h⟨T⟩, each n_a×m.</param>
    /// <param name="predictions">How to compute ŷ⟨1⟩..ŷ⟨T⟩.</param>
    /// <param name="caches">One cache per step, in time order, computed when first read.</param>
    /// <param name="tape">The driver's tape of the forward pass.</param>
    internal GruForward(GruParameters parameters, Lazy<ImmutableArray<Matrix<double>>> states, Lazy<ImmutableArray<Matrix<double>>> predictions, Lazy<ImmutableArray<GruCache>> caches, Kernels.Driver.Tape tape)
        : base(parameters, states, predictions, caches, tape)
    {
    }

    /// <summary>The values in the order of the constructor.</summary>
    /// <param name="Parameters">The parameters the sequence ran with.</param>
    /// <param name="States">h⟨1⟩..h⟨T⟩, each n_a×m.</param>
    /// <param name="Predictions">ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m.</param>
    /// <param name="Caches">One cache per step, in time order.</param>
    public void Deconstruct(out GruParameters Parameters, out ImmutableArray<Matrix<double>> States, out ImmutableArray<Matrix<double>> Predictions, out ImmutableArray<GruCache> Caches) =>
        (Parameters, States, Predictions, Caches) = (this.Parameters, this.States, this.Predictions, this.Caches);
}

/// <summary>The result of <see cref="Gru.CellBackward"/>.</summary>
/// <param name="Dxt">dx⟨t⟩, n_x×m.</param>
/// <param name="DaPrev">dh⟨t−1⟩, n_a×m.</param>
/// <param name="Gradients">dWih, dWhh, dbih, dbhh of this step; dWy and dby are zero.</param>
public sealed record GruCellGradient(Matrix<double> Dxt, Matrix<double> DaPrev, GruParameters Gradients);

/// <summary>The result of <see cref="Gru.Backward"/>.</summary>
/// <param name="Dx">dx⟨1⟩..dx⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient with respect to h⟨0⟩, n_a×m.</param>
/// <param name="Gradients">Parameter gradients summed over time; dWy and dby are zero.</param>
public sealed record GruGradient(ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0, GruParameters Gradients);

/// <summary>The result of <see cref="Gru.LossAndGradients"/>.</summary>
/// <param name="Loss">Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j].</param>
/// <param name="Gradients">Gradients of the loss for every parameter, the read-out included.</param>
/// <param name="Dx">Gradients of the loss with respect to x⟨1⟩..x⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient of the loss with respect to h⟨0⟩, n_a×m.</param>
public sealed record GruLoss(double Loss, GruParameters Gradients, ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0);
