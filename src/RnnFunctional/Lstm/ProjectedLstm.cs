using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// Parameters of the LSTM with a projection (PyTorch's nn.LSTM with proj_size), in PyTorch's layout: gates stacked
/// i | f | g | o, z = Wih·x⟨t⟩ + Bih + Whh·h⟨t−1⟩ + Bhh, Γi = σ(z_i), Γf = σ(z_f), g = tanh(z_g), Γo = σ(z_o),
/// c⟨t⟩ = Γf⊙c⟨t−1⟩ + Γi⊙g, h⟨t⟩ = Whr·(Γo⊙tanh(c⟨t⟩)), ŷ⟨t⟩ = softmax(Wy·h⟨t⟩ + by). h⟨t⟩ has n_p ≤ n_a rows, c⟨t⟩ n_a.
/// Gradients have this same type.
/// </summary>
/// <param name="Wih">Input weights, 4n_a×n_x (weight_ih_l{k}).</param>
/// <param name="Whh">Recurrent weights, 4n_a×n_p (weight_hh_l{k}).</param>
/// <param name="Bih">Input bias, length 4n_a (bias_ih_l{k}).</param>
/// <param name="Bhh">Recurrent bias, length 4n_a (bias_hh_l{k}).</param>
/// <param name="Whr">Projection, n_p×n_a (weight_hr_l{k}).</param>
/// <param name="Wy">Read-out weights, n_y×n_p.</param>
/// <param name="By">Read-out bias, length n_y.</param>
public sealed record ProjectedLstmParameters(Matrix<double> Wih, Matrix<double> Whh, Vector<double> Bih, Vector<double> Bhh, Matrix<double> Whr,
    Matrix<double> Wy, Vector<double> By)
    : IParameterTree<ProjectedLstmParameters>, IFlatTree
{
    /// <summary>Input size n_x.</summary>
    public int InputSize => Wih.ColumnCount;

    /// <summary>Cell size n_a (the rows of c⟨t⟩).</summary>
    public int HiddenSize => Whr.ColumnCount;

    /// <summary>Projection size n_p (the rows of h⟨t⟩).</summary>
    public int ProjectionSize => Whr.RowCount;

    /// <summary>Number of classes n_y of the read-out.</summary>
    public int OutputSize => Wy.RowCount;

    /// <summary>Random parameters as PyTorch initialises nn.LSTM(proj_size) and nn.Linear: every entry uniform in (−1/√n_a, 1/√n_a).</summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="projectionSize">n_p ∈ [1, n_a].</param>
    /// <param name="outputSize">n_y ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same parameters.</param>
    [Pure]
    public static ProjectedLstmParameters Initialize(int inputSize, int hiddenSize, int projectionSize, int outputSize, int seed)
    {
        Dimensions.RequirePositive((nameof(inputSize), inputSize), (nameof(hiddenSize), hiddenSize), (nameof(projectionSize), projectionSize),
            (nameof(outputSize), outputSize));
        if (projectionSize > hiddenSize)
            throw new ArgumentOutOfRangeException(nameof(projectionSize), projectionSize, $"expected projectionSize to be at most hiddenSize = {hiddenSize} but got {projectionSize}");
        var uniform = Dimensions.Uniform(seed, 1.0 / Math.Sqrt(hiddenSize));
        var g = 4 * hiddenSize;
        return new(uniform(g, inputSize), uniform(g, projectionSize), uniform(g, 1).Column(0), uniform(g, 1).Column(0), uniform(projectionSize, hiddenSize),
            uniform(outputSize, projectionSize), uniform(outputSize, 1).Column(0));
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
        (nameof(Wih), Wih), (nameof(Whh), Whh), (nameof(Bih), Bih), (nameof(Bhh), Bhh), (nameof(Whr), Whr),
        (nameof(Wy), Wy), (nameof(By), By),
    ];

    /// <inheritdoc />
    [Pure]
    public ProjectedLstmParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(LeafShapes(), leaves, l => this with
        {
            Wih = l[0].ToMatrix(), Whh = l[1].ToMatrix(), Bih = l[2].ToVector(), Bhh = l[3].ToVector(), Whr = l[4].ToMatrix(), Wy = l[5].ToMatrix(), By = l[6].ToVector(),
        });

    /// <summary>Entry-wise sum.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static ProjectedLstmParameters operator +(ProjectedLstmParameters a, ProjectedLstmParameters b) => Tree.Add(a, b);

    /// <summary>Entry-wise difference.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same shapes.</param>
    public static ProjectedLstmParameters operator -(ProjectedLstmParameters a, ProjectedLstmParameters b) => Tree.Subtract(a, b);

    /// <summary>Scaling by a number.</summary>
    /// <param name="s">Scale.</param>
    /// <param name="a">Parameters or gradients.</param>
    public static ProjectedLstmParameters operator *(double s, ProjectedLstmParameters a) => Tree.Scale(s, a);
}

/// <summary>What one step of the projected LSTM keeps for its backward.</summary>
/// <param name="Parameters">The parameters the step ran with.</param>
/// <param name="Xt">x⟨t⟩, n_x×m.</param>
/// <param name="HPrev">h⟨t−1⟩, n_p×m.</param>
/// <param name="CPrev">c⟨t−1⟩, n_a×m.</param>
/// <param name="Gates">Γi, Γf, g, Γo stacked, 4n_a×m.</param>
/// <param name="C">c⟨t⟩, n_a×m.</param>
/// <param name="M">Γo⊙tanh(c⟨t⟩), n_a×m, what the projection reads.</param>
public sealed record ProjectedLstmCache(ProjectedLstmParameters Parameters, Matrix<double> Xt, Matrix<double> HPrev, Matrix<double> CPrev, Matrix<double> Gates,
    Matrix<double> C, Matrix<double> M);

/// <summary>The result of <see cref="ProjectedLstm.Forward"/>: the states and the cells.</summary>
public sealed record ProjectedLstmForward
{
    internal ProjectedLstmForward(ProjectedLstmParameters parameters, ImmutableArray<Matrix<double>> states, ImmutableArray<Matrix<double>> cells,
        Kernels.Driver.Tape tape) =>
        (Parameters, States, Cells, Tape) = (parameters, states, cells, tape);

    /// <summary>The parameters the sequence ran with.</summary>
    public ProjectedLstmParameters Parameters { get; }

    /// <summary>h⟨1⟩..h⟨T⟩, each n_p×m.</summary>
    public ImmutableArray<Matrix<double>> States { get; }

    /// <summary>c⟨1⟩..c⟨T⟩, each n_a×m.</summary>
    public ImmutableArray<Matrix<double>> Cells { get; }

    /// <summary>The driver's own copy of what the backward reads.</summary>
    internal Kernels.Driver.Tape Tape { get; }
}

/// <summary>The result of <see cref="ProjectedLstm.Backward"/>.</summary>
/// <param name="Dx">dx⟨1⟩..dx⟨T⟩, each n_x×m.</param>
/// <param name="Dh0">Gradient with respect to h⟨0⟩, n_p×m.</param>
/// <param name="Dc0">Gradient with respect to c⟨0⟩, n_a×m.</param>
/// <param name="Gradients">Parameter gradients summed over time; dWy and dby are zero.</param>
public sealed record ProjectedLstmGradient(ImmutableArray<Matrix<double>> Dx, Matrix<double> Dh0, Matrix<double> Dc0, ProjectedLstmParameters Gradients);

/// <summary>The result of <see cref="ProjectedLstm.LossAndGradients"/>.</summary>
/// <param name="Loss">Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j].</param>
/// <param name="Gradients">Gradients of the loss for every parameter, the read-out included.</param>
/// <param name="Dx">Gradients of the loss with respect to x⟨1⟩..x⟨T⟩, each n_x×m.</param>
/// <param name="Dh0">Gradient of the loss with respect to h⟨0⟩, n_p×m.</param>
/// <param name="Dc0">Gradient of the loss with respect to c⟨0⟩, n_a×m.</param>
public sealed record ProjectedLstmLoss(double Loss, ProjectedLstmParameters Gradients, ImmutableArray<Matrix<double>> Dx, Matrix<double> Dh0, Matrix<double> Dc0);
