using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// Parameters of the LSTM cell on concat = [a⟨t−1⟩; x⟨t⟩]: Γf = σ(Wf·concat + bf), Γi = σ(Wi·concat + bi),
/// c̃ = tanh(Wc·concat + bc), c⟨t⟩ = Γf⊙c⟨t−1⟩ + Γi⊙c̃, Γo = σ(Wo·concat + bo), a⟨t⟩ = Γo⊙tanh(c⟨t⟩), with the read-out
/// ŷ⟨t⟩ = softmax(Wy·a⟨t⟩ + by). The first n_a columns of each gate matrix multiply a⟨t−1⟩, the last n_x multiply
/// x⟨t⟩. Gradients have this same type.
/// </summary>
/// <param name="Wf">Forget-gate weights, n_a×(n_a+n_x).</param>
/// <param name="Bf">Forget-gate bias, length n_a.</param>
/// <param name="Wi">Input-gate weights, n_a×(n_a+n_x).</param>
/// <param name="Bi">Input-gate bias, length n_a.</param>
/// <param name="Wc">Candidate weights, n_a×(n_a+n_x).</param>
/// <param name="Bc">Candidate bias, length n_a.</param>
/// <param name="Wo">Output-gate weights, n_a×(n_a+n_x).</param>
/// <param name="Bo">Output-gate bias, length n_a.</param>
/// <param name="Wy">Read-out weights, n_y×n_a.</param>
/// <param name="By">Read-out bias, length n_y.</param>
public sealed record LstmParameters(Matrix<double> Wf, Vector<double> Bf, Matrix<double> Wi, Vector<double> Bi,
    Matrix<double> Wc, Vector<double> Bc, Matrix<double> Wo, Vector<double> Bo, Matrix<double> Wy, Vector<double> By)
    : IParameterTree<LstmParameters>, IFlatTree
{
    /// <summary>Input size n_x (the gate matrices' width minus n_a).</summary>
    public int InputSize => Wf.ColumnCount - Wf.RowCount;

    /// <summary>Hidden size n_a.</summary>
    public int HiddenSize => Wf.RowCount;

    /// <summary>Number of classes n_y of the read-out.</summary>
    public int OutputSize => Wy.RowCount;

    /// <summary>
    /// Random parameters as PyTorch initialises nn.LSTM and nn.Linear: every entry uniform in (−1/√n_a, 1/√n_a).
    /// </summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="outputSize">n_y ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same parameters.</param>
    [Pure]
    public static LstmParameters Initialize(int inputSize, int hiddenSize, int outputSize, int seed)
    {
        Dimensions.RequirePositive((nameof(inputSize), inputSize), (nameof(hiddenSize), hiddenSize), (nameof(outputSize), outputSize));
        var uniform = Dimensions.Uniform(seed, 1.0 / Math.Sqrt(hiddenSize));
        var width = hiddenSize + inputSize;
        return new(uniform(hiddenSize, width), uniform(hiddenSize, 1).Column(0), uniform(hiddenSize, width), uniform(hiddenSize, 1).Column(0),
                   uniform(hiddenSize, width), uniform(hiddenSize, 1).Column(0), uniform(hiddenSize, width), uniform(hiddenSize, 1).Column(0),
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
        (nameof(Wf), Wf), (nameof(Bf), Bf), (nameof(Wi), Wi), (nameof(Bi), Bi), (nameof(Wc), Wc),
        (nameof(Bc), Bc), (nameof(Wo), Wo), (nameof(Bo), Bo), (nameof(Wy), Wy), (nameof(By), By),
    ];

    /// <inheritdoc />
    [Pure]
    public LstmParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(LeafShapes(), leaves, l => this with
        {
            Wf = l[0].ToMatrix(), Bf = l[1].ToVector(), Wi = l[2].ToMatrix(), Bi = l[3].ToVector(), Wc = l[4].ToMatrix(),
            Bc = l[5].ToVector(), Wo = l[6].ToMatrix(), Bo = l[7].ToVector(), Wy = l[8].ToMatrix(), By = l[9].ToVector(),
        });

    /// <summary>Entry-wise sum.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static LstmParameters operator +(LstmParameters a, LstmParameters b) => Tree.Add(a, b);

    /// <summary>Entry-wise difference.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static LstmParameters operator -(LstmParameters a, LstmParameters b) => Tree.Subtract(a, b);

    /// <summary>Scaling by a number.</summary>
    /// <param name="s">Scale.</param>
    /// <param name="a">Parameters or gradients.</param>
    public static LstmParameters operator *(double s, LstmParameters a) => Tree.Scale(s, a);
}

/// <summary>The recurrent state of the LSTM: the hidden state and the memory cell.</summary>
/// <param name="A">a⟨t⟩, n_a×m.</param>
/// <param name="C">c⟨t⟩, n_a×m.</param>
public sealed record LstmState(Matrix<double> A, Matrix<double> C);

/// <summary>What one step of the LSTM cell keeps for its backward.</summary>
/// <param name="Parameters">The parameters the step ran with.</param>
/// <param name="Xt">x⟨t⟩, n_x×m.</param>
/// <param name="APrev">a⟨t−1⟩, n_a×m.</param>
/// <param name="CPrev">c⟨t−1⟩, n_a×m.</param>
/// <param name="F">The forget gate Γf, n_a×m.</param>
/// <param name="I">The input gate Γi, n_a×m.</param>
/// <param name="CTilde">The candidate c̃, n_a×m.</param>
/// <param name="O">The output gate Γo, n_a×m.</param>
/// <param name="C">c⟨t⟩, n_a×m.</param>
/// <param name="A">a⟨t⟩, n_a×m.</param>
public sealed record LstmCache(LstmParameters Parameters, Matrix<double> Xt, Matrix<double> APrev, Matrix<double> CPrev,
    Matrix<double> F, Matrix<double> I, Matrix<double> CTilde, Matrix<double> O, Matrix<double> C, Matrix<double> A);

/// <summary>The result of <see cref="Lstm.CellForward"/>.</summary>
/// <param name="A">a⟨t⟩, n_a×m.</param>
/// <param name="C">c⟨t⟩, n_a×m.</param>
/// <param name="YHat">ŷ⟨t⟩, n_y×m.</param>
/// <param name="Cache">What <see cref="Lstm.CellBackward"/> needs.</param>
public sealed record LstmStep(Matrix<double> A, Matrix<double> C, Matrix<double> YHat, LstmCache Cache);

/// <summary>The result of <see cref="Lstm.Forward"/>; its predictions are computed when first read (see <see cref="SequenceForward{TParams, TCache}"/>).</summary>
public sealed record LstmForward : SequenceForward<LstmParameters, LstmCache>
{
    /// <summary>A forward result of the given values.</summary>
    /// <param name="Parameters">The parameters the sequence ran with.</param>
    /// <param name="States">a⟨1⟩..a⟨T⟩, each n_a×m.</param>
    /// <param name="Cells">c⟨1⟩..c⟨T⟩, each n_a×m.</param>
    /// <param name="Predictions">ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m.</param>
    /// <param name="Caches">One cache per step, in time order.</param>
    public LstmForward(LstmParameters Parameters, ImmutableArray<Matrix<double>> States, ImmutableArray<Matrix<double>> Cells, ImmutableArray<Matrix<double>> Predictions, ImmutableArray<LstmCache> Caches)
        : base(Parameters, new Lazy<ImmutableArray<Matrix<double>>>(States), new Lazy<ImmutableArray<Matrix<double>>>(Predictions), new Lazy<ImmutableArray<LstmCache>>(Caches))
    {
        cells = new Lazy<ImmutableArray<Matrix<double>>>(Cells);
    }

    /// <summary>A forward result whose predictions are computed when first read.</summary>
    /// <param name="parameters">The parameters the sequence ran with.</param>
    /// <param name="states">a⟨1⟩..a⟨T⟩, each n_a×m.</param>
    /// <param name="cells">c⟨1⟩..c⟨T⟩, each n_a×m.</param>
    /// <param name="predictions">How to compute ŷ⟨1⟩..ŷ⟨T⟩.</param>
    /// <param name="caches">One cache per step, in time order, computed when first read.</param>
    /// <param name="tape">The driver's tape of the forward pass.</param>
    internal LstmForward(LstmParameters parameters, Lazy<ImmutableArray<Matrix<double>>> states, Lazy<ImmutableArray<Matrix<double>>> cells, Lazy<ImmutableArray<Matrix<double>>> predictions, Lazy<ImmutableArray<LstmCache>> caches, Kernels.Driver.Tape tape)
        : base(parameters, states, predictions, caches, tape)
    {
        this.cells = cells;
    }

    /// <summary>c⟨1⟩..c⟨T⟩, each n_a×m.</summary>
    public ImmutableArray<Matrix<double>> Cells
    {
        get => cells.Value;
        init => cells = new Lazy<ImmutableArray<Matrix<double>>>(value);
    }

    private readonly Lazy<ImmutableArray<Matrix<double>>> cells;

    /// <summary>The values in the order of the constructor.</summary>
    /// <param name="Parameters">The parameters the sequence ran with.</param>
    /// <param name="States">a⟨1⟩..a⟨T⟩, each n_a×m.</param>
    /// <param name="Cells">c⟨1⟩..c⟨T⟩, each n_a×m.</param>
    /// <param name="Predictions">ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m.</param>
    /// <param name="Caches">One cache per step, in time order.</param>
    public void Deconstruct(out LstmParameters Parameters, out ImmutableArray<Matrix<double>> States, out ImmutableArray<Matrix<double>> Cells, out ImmutableArray<Matrix<double>> Predictions, out ImmutableArray<LstmCache> Caches) =>
        (Parameters, States, Cells, Predictions, Caches) = (this.Parameters, this.States, this.Cells, this.Predictions, this.Caches);
}

/// <summary>The result of <see cref="Lstm.CellBackward"/>.</summary>
/// <param name="Dxt">dx⟨t⟩, n_x×m.</param>
/// <param name="DaPrev">da⟨t−1⟩, n_a×m.</param>
/// <param name="DcPrev">dc⟨t−1⟩, n_a×m.</param>
/// <param name="Gradients">dWf, dbf, dWi, dbi, dWc, dbc, dWo, dbo of this step; dWy and dby are zero.</param>
public sealed record LstmCellGradient(Matrix<double> Dxt, Matrix<double> DaPrev, Matrix<double> DcPrev, LstmParameters Gradients);

/// <summary>The result of <see cref="Lstm.Backward"/>.</summary>
/// <param name="Dx">dx⟨1⟩..dx⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient with respect to a⟨0⟩, n_a×m.</param>
/// <param name="Dc0">Gradient with respect to c⟨0⟩, n_a×m.</param>
/// <param name="Gradients">Parameter gradients summed over time; dWy and dby are zero.</param>
public sealed record LstmGradient(ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0, Matrix<double> Dc0, LstmParameters Gradients);

/// <summary>The result of <see cref="Lstm.LossAndGradients"/>.</summary>
/// <param name="Loss">Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j].</param>
/// <param name="Gradients">Gradients of the loss for every parameter, the read-out included.</param>
/// <param name="Dx">Gradients of the loss with respect to x⟨1⟩..x⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient of the loss with respect to a⟨0⟩, n_a×m.</param>
/// <param name="Dc0">Gradient of the loss with respect to c⟨0⟩, n_a×m.</param>
public sealed record LstmLoss(double Loss, LstmParameters Gradients, ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0, Matrix<double> Dc0);
