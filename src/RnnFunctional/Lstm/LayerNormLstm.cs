using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// Parameters of the layer-normalized LSTM (Ba, Kiros and Hinton 2016), gates stacked i | f | g | o as in PyTorch's
/// nn.LSTM, each block of n_a rows normalized on its own (LN below, per column, LN(v) = (v − μ)/√(σ² + ε)):
/// z = GainX⊙LN(Wx·x⟨t⟩) + GainH⊙LN(Wh·a⟨t−1⟩) + B, Γi = σ(z_i), Γf = σ(z_f), g = tanh(z_g), Γo = σ(z_o),
/// c⟨t⟩ = Γf⊙c⟨t−1⟩ + Γi⊙g, a⟨t⟩ = Γo⊙tanh(GainC⊙LN(c⟨t⟩) + BiasC), ŷ⟨t⟩ = softmax(Wy·a⟨t⟩ + by). B is the bias of
/// both gate normalizations (their two biases and the gate bias of the paper add up to it). Gradients have this same type.
/// </summary>
/// <param name="Wx">Input weights, 4n_a×n_x.</param>
/// <param name="Wh">Recurrent weights, 4n_a×n_a.</param>
/// <param name="B">Gate bias, length 4n_a.</param>
/// <param name="GainX">Gain of the normalization of Wx·x⟨t⟩, length 4n_a.</param>
/// <param name="GainH">Gain of the normalization of Wh·a⟨t−1⟩, length 4n_a.</param>
/// <param name="GainC">Gain of the normalization of c⟨t⟩, length n_a.</param>
/// <param name="BiasC">Bias of the normalization of c⟨t⟩, length n_a.</param>
/// <param name="Wy">Read-out weights, n_y×n_a.</param>
/// <param name="By">Read-out bias, length n_y.</param>
public sealed record LayerNormLstmParameters(Matrix<double> Wx, Matrix<double> Wh, Vector<double> B, Vector<double> GainX, Vector<double> GainH,
    Vector<double> GainC, Vector<double> BiasC, Matrix<double> Wy, Vector<double> By)
    : IParameterTree<LayerNormLstmParameters>, IFlatTree
{
    /// <summary>Input size n_x.</summary>
    public int InputSize => Wx.ColumnCount;

    /// <summary>Hidden size n_a.</summary>
    public int HiddenSize => Wh.ColumnCount;

    /// <summary>Number of classes n_y of the read-out.</summary>
    public int OutputSize => Wy.RowCount;

    /// <summary>ε &gt; 0 added to the variance of every normalization; 1e-5 (PyTorch's nn.LayerNorm default) unless set. Not a leaf.</summary>
    public double Epsilon { get; init; } = LayerNormLstm.DefaultEpsilon;

    /// <summary>
    /// Random parameters: Wx, Wh, B and the read-out uniform in (−1/√n_a, 1/√n_a) as PyTorch initialises nn.LSTM, every
    /// gain 1 and BiasC 0, as nn.LayerNorm starts.
    /// </summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="outputSize">n_y ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same parameters.</param>
    [Pure]
    public static LayerNormLstmParameters Initialize(int inputSize, int hiddenSize, int outputSize, int seed)
    {
        Dimensions.RequirePositive((nameof(inputSize), inputSize), (nameof(hiddenSize), hiddenSize), (nameof(outputSize), outputSize));
        var uniform = Dimensions.Uniform(seed, 1.0 / Math.Sqrt(hiddenSize));
        var (g, ones) = (4 * hiddenSize, Vector<double>.Build.Dense(4 * hiddenSize, 1.0));
        return new(uniform(g, inputSize), uniform(g, hiddenSize), uniform(g, 1).Column(0), ones, ones.Clone(),
            Vector<double>.Build.Dense(hiddenSize, 1.0), Vector<double>.Build.Dense(hiddenSize), uniform(outputSize, hiddenSize), uniform(outputSize, 1).Column(0));
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
        (nameof(Wx), Wx), (nameof(Wh), Wh), (nameof(B), B), (nameof(GainX), GainX), (nameof(GainH), GainH),
        (nameof(GainC), GainC), (nameof(BiasC), BiasC), (nameof(Wy), Wy), (nameof(By), By),
    ];

    /// <inheritdoc />
    [Pure]
    public LayerNormLstmParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(LeafShapes(), leaves, l => this with
        {
            Wx = l[0].ToMatrix(), Wh = l[1].ToMatrix(), B = l[2].ToVector(), GainX = l[3].ToVector(), GainH = l[4].ToVector(),
            GainC = l[5].ToVector(), BiasC = l[6].ToVector(), Wy = l[7].ToMatrix(), By = l[8].ToVector(),
        });

    /// <summary>Entry-wise sum.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static LayerNormLstmParameters operator +(LayerNormLstmParameters a, LayerNormLstmParameters b) => Tree.Add(a, b);

    /// <summary>Entry-wise difference.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static LayerNormLstmParameters operator -(LayerNormLstmParameters a, LayerNormLstmParameters b) => Tree.Subtract(a, b);

    /// <summary>Scaling by a number.</summary>
    /// <param name="s">Scale.</param>
    /// <param name="a">Parameters or gradients.</param>
    public static LayerNormLstmParameters operator *(double s, LayerNormLstmParameters a) => Tree.Scale(s, a);
}

/// <summary>What one step of the layer-normalized LSTM keeps for its backward.</summary>
/// <param name="Parameters">The parameters the step ran with.</param>
/// <param name="Xt">x⟨t⟩, n_x×m.</param>
/// <param name="APrev">a⟨t−1⟩, n_a×m.</param>
/// <param name="CPrev">c⟨t−1⟩, n_a×m.</param>
/// <param name="XHat">LN(Wx·x⟨t⟩) per gate block, 4n_a×m.</param>
/// <param name="XRstd">1/√(σ² + ε) of each gate block of Wx·x⟨t⟩, 4×m.</param>
/// <param name="HHat">LN(Wh·a⟨t−1⟩) per gate block, 4n_a×m.</param>
/// <param name="HRstd">1/√(σ² + ε) of each gate block of Wh·a⟨t−1⟩, 4×m.</param>
/// <param name="Gates">Γi, Γf, g, Γo stacked, 4n_a×m.</param>
/// <param name="C">c⟨t⟩, n_a×m.</param>
/// <param name="CHat">LN(c⟨t⟩), n_a×m.</param>
/// <param name="CRstd">1/√(σ² + ε) of c⟨t⟩, 1×m.</param>
public sealed record LayerNormLstmCache(LayerNormLstmParameters Parameters, Matrix<double> Xt, Matrix<double> APrev, Matrix<double> CPrev,
    Matrix<double> XHat, Matrix<double> XRstd, Matrix<double> HHat, Matrix<double> HRstd, Matrix<double> Gates, Matrix<double> C,
    Matrix<double> CHat, Matrix<double> CRstd);

/// <summary>The result of <see cref="LayerNormLstm.Forward"/>: the states, the cells and the predictions (computed when first read).</summary>
public sealed record LayerNormLstmForward
{
    private readonly Lazy<ImmutableArray<Matrix<double>>> predictions;

    internal LayerNormLstmForward(LayerNormLstmParameters parameters, ImmutableArray<Matrix<double>> states, ImmutableArray<Matrix<double>> cells,
        Kernels.Driver.Tape tape)
    {
        (Parameters, States, Cells, Tape) = (parameters, states, cells, tape);
        var (wy, by) = (parameters.Wy.Clone(), parameters.By.Clone());
        predictions = new(() => Softmax.PredictionsWhenRead(wy, by, Kernels.Driver.Part(tape, 0)).Value);
    }

    /// <summary>The parameters the sequence ran with.</summary>
    public LayerNormLstmParameters Parameters { get; }

    /// <summary>a⟨1⟩..a⟨T⟩, each n_a×m.</summary>
    public ImmutableArray<Matrix<double>> States { get; }

    /// <summary>c⟨1⟩..c⟨T⟩ (not normalized), each n_a×m.</summary>
    public ImmutableArray<Matrix<double>> Cells { get; }

    /// <summary>ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m, computed from the states and the read-out when first read.</summary>
    public ImmutableArray<Matrix<double>> Predictions => predictions.Value;

    /// <summary>The driver's own copy of what the backward reads.</summary>
    internal Kernels.Driver.Tape Tape { get; }
}

/// <summary>The result of <see cref="LayerNormLstm.Backward"/>.</summary>
/// <param name="Dx">dx⟨1⟩..dx⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient with respect to a⟨0⟩, n_a×m.</param>
/// <param name="Dc0">Gradient with respect to c⟨0⟩, n_a×m.</param>
/// <param name="Gradients">Parameter gradients summed over time; dWy and dby are zero.</param>
public sealed record LayerNormLstmGradient(ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0, Matrix<double> Dc0, LayerNormLstmParameters Gradients);

/// <summary>The result of <see cref="LayerNormLstm.LossAndGradients"/>.</summary>
/// <param name="Loss">Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j].</param>
/// <param name="Gradients">Gradients of the loss for every parameter, the read-out included.</param>
/// <param name="Dx">Gradients of the loss with respect to x⟨1⟩..x⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient of the loss with respect to a⟨0⟩, n_a×m.</param>
/// <param name="Dc0">Gradient of the loss with respect to c⟨0⟩, n_a×m.</param>
public sealed record LayerNormLstmLoss(double Loss, LayerNormLstmParameters Gradients, ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0, Matrix<double> Dc0);
