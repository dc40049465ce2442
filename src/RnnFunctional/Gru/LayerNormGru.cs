using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// Parameters of the layer-normalized GRU: PyTorch's GRU (gates r | z | n) whose input and recurrent pre-activations are
/// layer-normalized per gate block and per column (Ba, Kiros and Hinton 2016), LN(v) = (v − μ)/√(σ² + ε):
/// gi = GainIh⊙LN(Wih·x⟨t⟩) + Bih, gh = GainHh⊙LN(Whh·h⟨t−1⟩) + Bhh, r = σ(gi_r + gh_r), z = σ(gi_z + gh_z),
/// n = tanh(gi_n + r⊙gh_n), h⟨t⟩ = (1 − z)⊙n + z⊙h⟨t−1⟩, ŷ⟨t⟩ = softmax(Wy·h⟨t⟩ + by). Bih and Bhh are the biases of
/// the two normalizations. Gradients have this same type.
/// </summary>
/// <param name="Wih">Input weights, 3n_a×n_x.</param>
/// <param name="Whh">Recurrent weights, 3n_a×n_a.</param>
/// <param name="Bih">Bias of the input normalization, length 3n_a.</param>
/// <param name="Bhh">Bias of the recurrent normalization, length 3n_a.</param>
/// <param name="GainIh">Gain of the input normalization, length 3n_a.</param>
/// <param name="GainHh">Gain of the recurrent normalization, length 3n_a.</param>
/// <param name="Wy">Read-out weights, n_y×n_a.</param>
/// <param name="By">Read-out bias, length n_y.</param>
public sealed record LayerNormGruParameters(Matrix<double> Wih, Matrix<double> Whh, Vector<double> Bih, Vector<double> Bhh, Vector<double> GainIh,
    Vector<double> GainHh, Matrix<double> Wy, Vector<double> By)
    : IParameterTree<LayerNormGruParameters>, IFlatTree
{
    /// <summary>Input size n_x.</summary>
    public int InputSize => Wih.ColumnCount;

    /// <summary>Hidden size n_a.</summary>
    public int HiddenSize => Whh.ColumnCount;

    /// <summary>Number of classes n_y of the read-out.</summary>
    public int OutputSize => Wy.RowCount;

    /// <summary>ε &gt; 0 added to the variance of every normalization; 1e-5 (PyTorch's nn.LayerNorm default) unless set. Not a leaf.</summary>
    public double Epsilon { get; init; } = LayerNormLstm.DefaultEpsilon;

    /// <summary>
    /// Random parameters: Wih, Whh, Bih, Bhh and the read-out uniform in (−1/√n_a, 1/√n_a) as PyTorch initialises
    /// nn.GRU, every gain 1.
    /// </summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="outputSize">n_y ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same parameters.</param>
    [Pure]
    public static LayerNormGruParameters Initialize(int inputSize, int hiddenSize, int outputSize, int seed)
    {
        Dimensions.RequirePositive((nameof(inputSize), inputSize), (nameof(hiddenSize), hiddenSize), (nameof(outputSize), outputSize));
        var uniform = Dimensions.Uniform(seed, 1.0 / Math.Sqrt(hiddenSize));
        var g = 3 * hiddenSize;
        return new(uniform(g, inputSize), uniform(g, hiddenSize), uniform(g, 1).Column(0), uniform(g, 1).Column(0),
            Vector<double>.Build.Dense(g, 1.0), Vector<double>.Build.Dense(g, 1.0), uniform(outputSize, hiddenSize), uniform(outputSize, 1).Column(0));
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
        (nameof(Wih), Wih), (nameof(Whh), Whh), (nameof(Bih), Bih), (nameof(Bhh), Bhh), (nameof(GainIh), GainIh),
        (nameof(GainHh), GainHh), (nameof(Wy), Wy), (nameof(By), By),
    ];

    /// <inheritdoc />
    [Pure]
    public LayerNormGruParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(LeafShapes(), leaves, l => this with
        {
            Wih = l[0].ToMatrix(), Whh = l[1].ToMatrix(), Bih = l[2].ToVector(), Bhh = l[3].ToVector(), GainIh = l[4].ToVector(),
            GainHh = l[5].ToVector(), Wy = l[6].ToMatrix(), By = l[7].ToVector(),
        });

    /// <summary>Entry-wise sum.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static LayerNormGruParameters operator +(LayerNormGruParameters a, LayerNormGruParameters b) => Tree.Add(a, b);

    /// <summary>Entry-wise difference.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static LayerNormGruParameters operator -(LayerNormGruParameters a, LayerNormGruParameters b) => Tree.Subtract(a, b);

    /// <summary>Scaling by a number.</summary>
    /// <param name="s">Scale.</param>
    /// <param name="a">Parameters or gradients.</param>
    public static LayerNormGruParameters operator *(double s, LayerNormGruParameters a) => Tree.Scale(s, a);
}

/// <summary>What one step of the layer-normalized GRU keeps for its backward.</summary>
/// <param name="Parameters">The parameters the step ran with.</param>
/// <param name="Xt">x⟨t⟩, n_x×m.</param>
/// <param name="HPrev">h⟨t−1⟩, n_a×m.</param>
/// <param name="XHat">LN(Wih·x⟨t⟩) per gate block, 3n_a×m.</param>
/// <param name="XRstd">1/√(σ² + ε) of each gate block of Wih·x⟨t⟩, 3×m.</param>
/// <param name="HHat">LN(Whh·h⟨t−1⟩) per gate block, 3n_a×m.</param>
/// <param name="HRstd">1/√(σ² + ε) of each gate block of Whh·h⟨t−1⟩, 3×m.</param>
/// <param name="R">The reset gate r, n_a×m.</param>
/// <param name="Z">The update gate z, n_a×m.</param>
/// <param name="N">The candidate n, n_a×m.</param>
/// <param name="Hn">gh_n, n_a×m.</param>
public sealed record LayerNormGruCache(LayerNormGruParameters Parameters, Matrix<double> Xt, Matrix<double> HPrev, Matrix<double> XHat, Matrix<double> XRstd,
    Matrix<double> HHat, Matrix<double> HRstd, Matrix<double> R, Matrix<double> Z, Matrix<double> N, Matrix<double> Hn);

/// <summary>The result of <see cref="LayerNormGru.Forward"/>: the states and the predictions (computed when first read).</summary>
public sealed record LayerNormGruForward
{
    private readonly Lazy<ImmutableArray<Matrix<double>>> predictions;

    internal LayerNormGruForward(LayerNormGruParameters parameters, ImmutableArray<Matrix<double>> states, Kernels.Driver.Tape tape)
    {
        (Parameters, States, Tape) = (parameters, states, tape);
        var (wy, by) = (parameters.Wy.Clone(), parameters.By.Clone());
        predictions = new(() => Softmax.PredictionsWhenRead(wy, by, Kernels.Driver.Part(tape, 0)).Value);
    }

    /// <summary>The parameters the sequence ran with.</summary>
    public LayerNormGruParameters Parameters { get; }

    /// <summary>h⟨1⟩..h⟨T⟩, each n_a×m.</summary>
    public ImmutableArray<Matrix<double>> States { get; }

    /// <summary>ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m, computed from the states and the read-out when first read.</summary>
    public ImmutableArray<Matrix<double>> Predictions => predictions.Value;

    /// <summary>The driver's own copy of what the backward reads.</summary>
    internal Kernels.Driver.Tape Tape { get; }
}

/// <summary>The result of <see cref="LayerNormGru.Backward"/>.</summary>
/// <param name="Dx">dx⟨1⟩..dx⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient with respect to h⟨0⟩, n_a×m.</param>
/// <param name="Gradients">Parameter gradients summed over time; dWy and dby are zero.</param>
public sealed record LayerNormGruGradient(ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0, LayerNormGruParameters Gradients);

/// <summary>The result of <see cref="LayerNormGru.LossAndGradients"/>.</summary>
/// <param name="Loss">Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j].</param>
/// <param name="Gradients">Gradients of the loss for every parameter, the read-out included.</param>
/// <param name="Dx">Gradients of the loss with respect to x⟨1⟩..x⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient of the loss with respect to h⟨0⟩, n_a×m.</param>
public sealed record LayerNormGruLoss(double Loss, LayerNormGruParameters Gradients, ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0);
