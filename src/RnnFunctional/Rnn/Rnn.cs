using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>The non-linearity of the vanilla RNN cell.</summary>
public enum Activation
{
    /// <summary>a = tanh(z); the derivative is 1 − a².</summary>
    Tanh,

    /// <summary>a = max(0, z); the derivative is 1 where a &gt; 0, else 0.</summary>
    Relu,
}

/// <summary>
/// Parameters of the vanilla RNN cell a⟨t⟩ = tanh(Wax·x⟨t⟩ + Waa·a⟨t−1⟩ + ba) with the read-out
/// ŷ⟨t⟩ = softmax(Wya·a⟨t⟩ + by). Gradients have this same type.
/// </summary>
/// <param name="Wax">Input weights, n_a×n_x.</param>
/// <param name="Waa">Recurrent weights, n_a×n_a.</param>
/// <param name="Ba">Hidden bias, length n_a.</param>
/// <param name="Wya">Read-out weights, n_y×n_a.</param>
/// <param name="By">Read-out bias, length n_y.</param>
public sealed record RnnParameters(Matrix<double> Wax, Matrix<double> Waa, Vector<double> Ba, Matrix<double> Wya, Vector<double> By)
    : IParameterTree<RnnParameters>, IFlatTree
{
    /// <summary>The cell's non-linearity (tanh unless set). Not a leaf: it is part of the model's structure.</summary>
    public Activation Activation { get; init; } = Activation.Tanh;

    /// <summary>Input size n_x.</summary>
    public int InputSize => Wax.ColumnCount;

    /// <summary>Hidden size n_a.</summary>
    public int HiddenSize => Wax.RowCount;

    /// <summary>Number of classes n_y of the read-out.</summary>
    public int OutputSize => Wya.RowCount;

    /// <summary>
    /// Random parameters as PyTorch initialises nn.RNN and nn.Linear: every entry uniform in (−1/√n_a, 1/√n_a).
    /// </summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="outputSize">n_y ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same parameters.</param>
    [Pure]
    public static RnnParameters Initialize(int inputSize, int hiddenSize, int outputSize, int seed)
    {
        Dimensions.RequirePositive((nameof(inputSize), inputSize), (nameof(hiddenSize), hiddenSize), (nameof(outputSize), outputSize));
        var uniform = Dimensions.Uniform(seed, 1.0 / Math.Sqrt(hiddenSize));
        return new(uniform(hiddenSize, inputSize), uniform(hiddenSize, hiddenSize), uniform(hiddenSize, 1).Column(0),
                   uniform(outputSize, hiddenSize), uniform(outputSize, 1).Column(0));
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
        (nameof(Wax), Wax), (nameof(Waa), Waa), (nameof(Ba), Ba), (nameof(Wya), Wya), (nameof(By), By),
    ];

    /// <inheritdoc />
    [Pure]
    public RnnParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(LeafShapes(), leaves, l => this with
        {
            Wax = l[0].ToMatrix(), Waa = l[1].ToMatrix(), Ba = l[2].ToVector(), Wya = l[3].ToMatrix(), By = l[4].ToVector(),
        });

    /// <summary>Entry-wise sum.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static RnnParameters operator +(RnnParameters a, RnnParameters b) => Tree.Add(a, b);

    /// <summary>Entry-wise difference.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static RnnParameters operator -(RnnParameters a, RnnParameters b) => Tree.Subtract(a, b);

    /// <summary>Scaling by a number.</summary>
    /// <param name="s">Scale.</param>
    /// <param name="a">Parameters or gradients.</param>
    public static RnnParameters operator *(double s, RnnParameters a) => Tree.Scale(s, a);
}

/// <summary>What one step of the RNN cell keeps for its backward.</summary>
/// <param name="Parameters">The parameters the step ran with.</param>
/// <param name="Xt">x⟨t⟩, n_x×m.</param>
/// <param name="APrev">a⟨t−1⟩, n_a×m.</param>
/// <param name="A">a⟨t⟩, n_a×m.</param>
public sealed record RnnCache(RnnParameters Parameters, Matrix<double> Xt, Matrix<double> APrev, Matrix<double> A);

/// <summary>The result of <see cref="Rnn.CellForward"/>.</summary>
/// <param name="A">a⟨t⟩, n_a×m.</param>
/// <param name="YHat">ŷ⟨t⟩, n_y×m.</param>
/// <param name="Cache">What <see cref="Rnn.CellBackward"/> needs.</param>
public sealed record RnnStep(Matrix<double> A, Matrix<double> YHat, RnnCache Cache);

/// <summary>The result of <see cref="Rnn.Forward"/>; its predictions are computed when first read (see <see cref="SequenceForward{TParams, TCache}"/>).</summary>
public sealed record RnnForward : SequenceForward<RnnParameters, RnnCache>
{
    /// <summary>A forward result of the given values.</summary>
    /// <param name="Parameters">The parameters the sequence ran with.</param>
    /// <param name="States">a⟨1⟩..a⟨T⟩, each n_a×m.</param>
    /// <param name="Predictions">ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m.</param>
    /// <param name="Caches">One cache per step, in time order.</param>
    public RnnForward(RnnParameters Parameters, ImmutableArray<Matrix<double>> States, ImmutableArray<Matrix<double>> Predictions, ImmutableArray<RnnCache> Caches)
        : base(Parameters, new Lazy<ImmutableArray<Matrix<double>>>(States), new Lazy<ImmutableArray<Matrix<double>>>(Predictions), new Lazy<ImmutableArray<RnnCache>>(Caches))
    {
    }

    /// <summary>A forward result whose predictions are computed when first read.</summary>
    /// <param name="parameters">The parameters the sequence ran with.</param>
    /// <param name="states">a⟨1⟩..a⟨T⟩, each n_a×m.</param>
    /// <param name="predictions">How to compute ŷ⟨1⟩..ŷ⟨T⟩.</param>
    /// <param name="caches">One cache per step, in time order, computed when first read.</param>
    /// <param name="tape">The driver's tape of the forward pass.</param>
    internal RnnForward(RnnParameters parameters, Lazy<ImmutableArray<Matrix<double>>> states, Lazy<ImmutableArray<Matrix<double>>> predictions, Lazy<ImmutableArray<RnnCache>> caches, Kernels.Driver.Tape tape)
        : base(parameters, states, predictions, caches, tape)
    {
    }

    /// <summary>The values in the order of the constructor.</summary>
    /// <param name="Parameters">The parameters the sequence ran with.</param>
    /// <param name="States">a⟨1⟩..a⟨T⟩, each n_a×m.</param>
    /// <param name="Predictions">ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m.</param>
    /// <param name="Caches">One cache per step, in time order.</param>
    public void Deconstruct(out RnnParameters Parameters, out ImmutableArray<Matrix<double>> States, out ImmutableArray<Matrix<double>> Predictions, out ImmutableArray<RnnCache> Caches) =>
        (Parameters, States, Predictions, Caches) = (this.Parameters, this.States, this.Predictions, this.Caches);
}

/// <summary>The result of <see cref="Rnn.CellBackward"/>.</summary>
/// <param name="Dxt">dx⟨t⟩, n_x×m.</param>
/// <param name="DaPrev">da⟨t−1⟩, n_a×m.</param>
/// <param name="Gradients">dWax, dWaa, dba of this step; dWya and dby are zero.</param>
public sealed record RnnCellGradient(Matrix<double> Dxt, Matrix<double> DaPrev, RnnParameters Gradients);

/// <summary>The result of <see cref="Rnn.Backward"/>.</summary>
/// <param name="Dx">dx⟨1⟩..dx⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient with respect to a⟨0⟩, n_a×m.</param>
/// <param name="Gradients">Parameter gradients summed over time; dWya and dby are zero.</param>
public sealed record RnnGradient(ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0, RnnParameters Gradients);

/// <summary>The result of <see cref="Rnn.LossAndGradients"/>.</summary>
/// <param name="Loss">Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j].</param>
/// <param name="Gradients">Gradients of the loss for every parameter, the read-out included.</param>
/// <param name="Dx">Gradients of the loss with respect to x⟨1⟩..x⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient of the loss with respect to a⟨0⟩, n_a×m.</param>
public sealed record RnnLoss(double Loss, RnnParameters Gradients, ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0);
