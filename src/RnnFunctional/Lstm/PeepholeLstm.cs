using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// Parameters of the peephole LSTM (the ONNX <c>LSTM</c> operator with its input <c>P</c>): the LSTM of
/// <see cref="LstmParameters"/> whose forget and input gates also read c⟨t−1⟩ and whose output gate reads c⟨t⟩, each
/// through an element-wise weight vector: Γf = σ(Wf·concat + bf + pf⊙c⟨t−1⟩), Γi = σ(Wi·concat + bi + pi⊙c⟨t−1⟩),
/// c̃ = tanh(Wc·concat + bc), c⟨t⟩ = Γf⊙c⟨t−1⟩ + Γi⊙c̃, Γo = σ(Wo·concat + bo + po⊙c⟨t⟩), a⟨t⟩ = Γo⊙tanh(c⟨t⟩),
/// ŷ⟨t⟩ = softmax(Wy·a⟨t⟩ + by), with concat = [a⟨t−1⟩; x⟨t⟩]. Gradients have this same type.
/// </summary>
/// <param name="Wf">Forget-gate weights, n_a×(n_a+n_x).</param>
/// <param name="Bf">Forget-gate bias, length n_a.</param>
/// <param name="Wi">Input-gate weights, n_a×(n_a+n_x).</param>
/// <param name="Bi">Input-gate bias, length n_a.</param>
/// <param name="Wc">Candidate weights, n_a×(n_a+n_x).</param>
/// <param name="Bc">Candidate bias, length n_a.</param>
/// <param name="Wo">Output-gate weights, n_a×(n_a+n_x).</param>
/// <param name="Bo">Output-gate bias, length n_a.</param>
/// <param name="Pf">Forget-gate peephole weights on c⟨t−1⟩, length n_a.</param>
/// <param name="Pi">Input-gate peephole weights on c⟨t−1⟩, length n_a.</param>
/// <param name="Po">Output-gate peephole weights on c⟨t⟩, length n_a.</param>
/// <param name="Wy">Read-out weights, n_y×n_a.</param>
/// <param name="By">Read-out bias, length n_y.</param>
public sealed record PeepholeLstmParameters(Matrix<double> Wf, Vector<double> Bf, Matrix<double> Wi, Vector<double> Bi,
    Matrix<double> Wc, Vector<double> Bc, Matrix<double> Wo, Vector<double> Bo, Vector<double> Pf, Vector<double> Pi, Vector<double> Po,
    Matrix<double> Wy, Vector<double> By)
    : IParameterTree<PeepholeLstmParameters>, IFlatTree
{
    /// <summary>Input size n_x (the gate matrices' width minus n_a).</summary>
    public int InputSize => Wf.ColumnCount - Wf.RowCount;

    /// <summary>Hidden size n_a.</summary>
    public int HiddenSize => Wf.RowCount;

    /// <summary>Number of classes n_y of the read-out.</summary>
    public int OutputSize => Wy.RowCount;

    /// <summary>The LSTM of the same gates and read-out, without the peepholes.</summary>
    public LstmParameters WithoutPeepholes => new(Wf, Bf, Wi, Bi, Wc, Bc, Wo, Bo, Wy, By);

    /// <summary>The peephole LSTM of an LSTM's gates and read-out and the given peephole weights.</summary>
    /// <param name="p">The LSTM.</param>
    /// <param name="pf">Forget-gate peephole weights, length n_a.</param>
    /// <param name="pi">Input-gate peephole weights, length n_a.</param>
    /// <param name="po">Output-gate peephole weights, length n_a.</param>
    [Pure]
    public static PeepholeLstmParameters Of(LstmParameters p, Vector<double> pf, Vector<double> pi, Vector<double> po)
    {
        ArgumentNullException.ThrowIfNull(p);
        return new(p.Wf, p.Bf, p.Wi, p.Bi, p.Wc, p.Bc, p.Wo, p.Bo, pf, pi, po, p.Wy, p.By);
    }

    /// <summary>
    /// Random parameters: the gates and the read-out as <see cref="LstmParameters.Initialize"/> draws them (the same
    /// seed gives the same values), then the peephole weights uniform in (−1/√n_a, 1/√n_a).
    /// </summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="outputSize">n_y ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same parameters.</param>
    [Pure]
    public static PeepholeLstmParameters Initialize(int inputSize, int hiddenSize, int outputSize, int seed)
    {
        var lstm = LstmParameters.Initialize(inputSize, hiddenSize, outputSize, seed);
        var uniform = Dimensions.Uniform(~seed, 1.0 / Math.Sqrt(hiddenSize));
        return Of(lstm, uniform(hiddenSize, 1).Column(0), uniform(hiddenSize, 1).Column(0), uniform(hiddenSize, 1).Column(0));
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
        (nameof(Bc), Bc), (nameof(Wo), Wo), (nameof(Bo), Bo), (nameof(Pf), Pf), (nameof(Pi), Pi),
        (nameof(Po), Po), (nameof(Wy), Wy), (nameof(By), By),
    ];

    /// <inheritdoc />
    [Pure]
    public PeepholeLstmParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(LeafShapes(), leaves, l => this with
        {
            Wf = l[0].ToMatrix(), Bf = l[1].ToVector(), Wi = l[2].ToMatrix(), Bi = l[3].ToVector(), Wc = l[4].ToMatrix(),
            Bc = l[5].ToVector(), Wo = l[6].ToMatrix(), Bo = l[7].ToVector(), Pf = l[8].ToVector(), Pi = l[9].ToVector(),
            Po = l[10].ToVector(), Wy = l[11].ToMatrix(), By = l[12].ToVector(),
        });

    /// <summary>Entry-wise sum.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static PeepholeLstmParameters operator +(PeepholeLstmParameters a, PeepholeLstmParameters b) => Tree.Add(a, b);

    /// <summary>Entry-wise difference.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static PeepholeLstmParameters operator -(PeepholeLstmParameters a, PeepholeLstmParameters b) => Tree.Subtract(a, b);

    /// <summary>Scaling by a number.</summary>
    /// <param name="s">Scale.</param>
    /// <param name="a">Parameters or gradients.</param>
    public static PeepholeLstmParameters operator *(double s, PeepholeLstmParameters a) => Tree.Scale(s, a);
}

/// <summary>What one step of the peephole LSTM keeps for its backward.</summary>
/// <param name="Parameters">The parameters the step ran with.</param>
/// <param name="Xt">x⟨t⟩, n_x×m.</param>
/// <param name="APrev">a⟨t−1⟩, n_a×m.</param>
/// <param name="CPrev">c⟨t−1⟩, n_a×m.</param>
/// <param name="F">The forget gate Γf, n_a×m.</param>
/// <param name="I">The input gate Γi, n_a×m.</param>
/// <param name="CTilde">The candidate c̃, n_a×m.</param>
/// <param name="O">The output gate Γo, n_a×m.</param>
/// <param name="C">c⟨t⟩, n_a×m.</param>
public sealed record PeepholeLstmCache(PeepholeLstmParameters Parameters, Matrix<double> Xt, Matrix<double> APrev, Matrix<double> CPrev,
    Matrix<double> F, Matrix<double> I, Matrix<double> CTilde, Matrix<double> O, Matrix<double> C);

/// <summary>The result of <see cref="PeepholeLstm.Forward"/>: the states, the cells and the predictions (computed when first read).</summary>
public sealed record PeepholeLstmForward
{
    private readonly Lazy<ImmutableArray<Matrix<double>>> predictions;

    internal PeepholeLstmForward(PeepholeLstmParameters parameters, ImmutableArray<Matrix<double>> states, ImmutableArray<Matrix<double>> cells,
        Kernels.Driver.Tape tape)
    {
        (Parameters, States, Cells, Tape) = (parameters, states, cells, tape);
        var (wy, by) = (parameters.Wy.Clone(), parameters.By.Clone());
        predictions = new(() => Softmax.PredictionsWhenRead(wy, by, Kernels.Driver.Part(tape, 0)).Value);
    }

    /// <summary>The parameters the sequence ran with.</summary>
    public PeepholeLstmParameters Parameters { get; }

    /// <summary>a⟨1⟩..a⟨T⟩, each n_a×m.</summary>
    public ImmutableArray<Matrix<double>> States { get; }

    /// <summary>c⟨1⟩..c⟨T⟩, each n_a×m.</summary>
    public ImmutableArray<Matrix<double>> Cells { get; }

    /// <summary>ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m, computed from the states and the read-out when first read.</summary>
    public ImmutableArray<Matrix<double>> Predictions => predictions.Value;

    /// <summary>The driver's own copy of what the backward reads.</summary>
    internal Kernels.Driver.Tape Tape { get; }
}

/// <summary>The result of <see cref="PeepholeLstm.Backward"/>.</summary>
/// <param name="Dx">dx⟨1⟩..dx⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient with respect to a⟨0⟩, n_a×m.</param>
/// <param name="Dc0">Gradient with respect to c⟨0⟩, n_a×m.</param>
/// <param name="Gradients">Parameter gradients summed over time; dWy and dby are zero.</param>
public sealed record PeepholeLstmGradient(ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0, Matrix<double> Dc0, PeepholeLstmParameters Gradients);

/// <summary>The result of <see cref="PeepholeLstm.LossAndGradients"/>.</summary>
/// <param name="Loss">Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j].</param>
/// <param name="Gradients">Gradients of the loss for every parameter, the read-out included.</param>
/// <param name="Dx">Gradients of the loss with respect to x⟨1⟩..x⟨T⟩, each n_x×m.</param>
/// <param name="Da0">Gradient of the loss with respect to a⟨0⟩, n_a×m.</param>
/// <param name="Dc0">Gradient of the loss with respect to c⟨0⟩, n_a×m.</param>
public sealed record PeepholeLstmLoss(double Loss, PeepholeLstmParameters Gradients, ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0, Matrix<double> Dc0);
