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
    : IParameterTree<LstmParameters>
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
    public ImmutableArray<Leaf> ToLeaves() =>
    [
        Leaf.Of(nameof(Wf), Wf), Leaf.Of(nameof(Bf), Bf), Leaf.Of(nameof(Wi), Wi), Leaf.Of(nameof(Bi), Bi), Leaf.Of(nameof(Wc), Wc),
        Leaf.Of(nameof(Bc), Bc), Leaf.Of(nameof(Wo), Wo), Leaf.Of(nameof(Bo), Bo), Leaf.Of(nameof(Wy), Wy), Leaf.Of(nameof(By), By),
    ];

    /// <inheritdoc />
    [Pure]
    public LstmParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(ToLeaves(), leaves, l => this with
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
        : base(Parameters, States, new Lazy<ImmutableArray<Matrix<double>>>(Predictions), Caches)
    {
        this.Cells = Cells;
    }

    /// <summary>A forward result whose predictions are computed when first read.</summary>
    /// <param name="parameters">The parameters the sequence ran with.</param>
    /// <param name="states">a⟨1⟩..a⟨T⟩, each n_a×m.</param>
    /// <param name="cells">c⟨1⟩..c⟨T⟩, each n_a×m.</param>
    /// <param name="predictions">How to compute ŷ⟨1⟩..ŷ⟨T⟩.</param>
    /// <param name="caches">One cache per step, in time order.</param>
    internal LstmForward(LstmParameters parameters, ImmutableArray<Matrix<double>> states, ImmutableArray<Matrix<double>> cells, Lazy<ImmutableArray<Matrix<double>>> predictions, ImmutableArray<LstmCache> caches)
        : base(parameters, states, predictions, caches)
    {
        Cells = cells;
    }

    /// <summary>c⟨1⟩..c⟨T⟩, each n_a×m.</summary>
    public ImmutableArray<Matrix<double>> Cells { get; init; }

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

/// <summary>
/// The LSTM: Γf = σ(Wf·[a⟨t−1⟩; x⟨t⟩] + bf), Γi = σ(Wi·[…] + bi), c̃ = tanh(Wc·[…] + bc), c⟨t⟩ = Γf⊙c⟨t−1⟩ + Γi⊙c̃,
/// Γo = σ(Wo·[…] + bo), a⟨t⟩ = Γo⊙tanh(c⟨t⟩), ŷ⟨t⟩ = softmax(Wy·a⟨t⟩ + by), with data laid out one column per example.
/// Every function validates its arguments (throwing <see cref="ArgumentException"/> that names the argument and the
/// expected shape), then runs a pure kernel. The <c>Try</c> variants return the same checks as a
/// <see cref="Validation{FAIL,SUCCESS}"/> listing every problem.
/// </summary>
public static class Lstm
{
    private const int Gates = 4;

    /// <summary>The LSTM cell as a value, for <see cref="Recurrence"/>: its carry is (a⟨t⟩, c⟨t⟩), its output a⟨t⟩.</summary>
    public static Cell<LstmParameters, LstmState, LstmCache> Cell { get; } =
        new((p, carry, xt) => { var (next, cache) = Step(p, xt, carry.A, carry.C); return new(next, next.A, cache); },
            (cache, dNext, daOut) =>
            {
                var g = Back(Ops.Add(dNext.A, daOut), dNext.C, cache);
                return new(new LstmState(g.DaPrev, g.DcPrev), g.Dxt, g.Gradients);
            },
            s => [s.A, s.C],
            parts => new(parts[0], parts[1]));

    // ---- the cell: forward and backward, line for line like the math ----

    private static (LstmState Next, LstmCache Cache) Step(LstmParameters p, Matrix<double> xt, Matrix<double> aPrev, Matrix<double> cPrev)
    {
        var f = Ops.Sigmoid(Ops.GateAffine(p.Wf, aPrev, xt, p.Bf));         // Γf = σ(Wf·[a_prev; x] + bf)
        var i = Ops.Sigmoid(Ops.GateAffine(p.Wi, aPrev, xt, p.Bi));         // Γi = σ(Wi·[a_prev; x] + bi)
        var cTilde = Ops.Tanh(Ops.GateAffine(p.Wc, aPrev, xt, p.Bc));       // c̃ = tanh(Wc·[a_prev; x] + bc)
        var c = Ops.Add(Ops.Hadamard(f, cPrev), Ops.Hadamard(i, cTilde));   // c = Γf⊙c_prev + Γi⊙c̃
        var o = Ops.Sigmoid(Ops.GateAffine(p.Wo, aPrev, xt, p.Bo));         // Γo = σ(Wo·[a_prev; x] + bo)
        var a = Ops.Hadamard(o, Ops.Tanh(c));                               // a = Γo⊙tanh(c)
        return (new(a, c), new(p, xt, aPrev, cPrev, f, i, cTilde, o, c, a));
    }

    private static LstmCellGradient Back(Matrix<double> da, Matrix<double> dc, LstmCache cache)
    {
        var (p, xt, aPrev, cPrev, f, i, cTilde, o, c) = (cache.Parameters, cache.Xt, cache.APrev, cache.CPrev, cache.F, cache.I, cache.CTilde, cache.O, cache.C);
        var concat = Ops.StackRows(aPrev, xt);                              // concat = [a_prev; x]
        var tanhC = Ops.Tanh(c);
        var dO = Ops.Hadamard(da, tanhC);                                   // dΓo = da⊙tanh(c)
        var dC = Ops.Add(dc, Ops.TanhBackward(tanhC, Ops.Hadamard(da, o))); // dc ← dc + da⊙Γo⊙(1 − tanh²(c))
        var dF = Ops.Hadamard(dC, cPrev);                                   // dΓf = dc⊙c_prev
        var dI = Ops.Hadamard(dC, cTilde);                                  // dΓi = dc⊙c̃
        var dCTilde = Ops.Hadamard(dC, i);                                  // dc̃ = dc⊙Γi
        var dcPrev = Ops.Hadamard(dC, f);                                   // dc_prev = dc⊙Γf
        var dzf = Ops.SigmoidBackward(f, dF);                               // dzf = dΓf⊙Γf⊙(1 − Γf)
        var dzi = Ops.SigmoidBackward(i, dI);                               // dzi = dΓi⊙Γi⊙(1 − Γi)
        var dzc = Ops.TanhBackward(cTilde, dCTilde);                        // dzc = dc̃⊙(1 − c̃²)
        var dzo = Ops.SigmoidBackward(o, dO);                               // dzo = dΓo⊙Γo⊙(1 − Γo)
        var dConcat = Ops.Sum(Ops.MulTA(p.Wf, dzf), Ops.MulTA(p.Wi, dzi),   // dconcat = Wfᵀ·dzf + Wiᵀ·dzi
                              Ops.MulTA(p.Wc, dzc), Ops.MulTA(p.Wo, dzo));  //         + Wcᵀ·dzc + Woᵀ·dzo
        var daPrev = Ops.Rows(dConcat, 0, p.HiddenSize);                    // da_prev = dconcat[:n_a]
        var dxt = Ops.Rows(dConcat, p.HiddenSize, p.InputSize);             // dx = dconcat[n_a:]
        var gradients = p with
        {
            Wf = Ops.MulTB(dzf, concat), Bf = Ops.RowSums(dzf),             // dWf = dzf·concatᵀ, dbf = Σ_columns dzf
            Wi = Ops.MulTB(dzi, concat), Bi = Ops.RowSums(dzi),             // dWi = dzi·concatᵀ, dbi = Σ_columns dzi
            Wc = Ops.MulTB(dzc, concat), Bc = Ops.RowSums(dzc),             // dWc = dzc·concatᵀ, dbc = Σ_columns dzc
            Wo = Ops.MulTB(dzo, concat), Bo = Ops.RowSums(dzo),             // dWo = dzo·concatᵀ, dbo = Σ_columns dzo
            Wy = Matrix<double>.Build.Dense(p.OutputSize, p.HiddenSize), By = Vector<double>.Build.Dense(p.OutputSize),
        };
        return new(dxt, daPrev, dcPrev, gradients);
    }

    // ---- public API ----

    /// <summary>One step of the cell and its read-out.</summary>
    /// <param name="p">Parameters: Wf, Wi, Wc, Wo n_a×(n_a+n_x), Bf, Bi, Bc, Bo n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xt">x⟨t⟩, n_x×m.</param>
    /// <param name="aPrev">a⟨t−1⟩, n_a×m.</param>
    /// <param name="cPrev">c⟨t−1⟩, n_a×m.</param>
    /// <returns>a⟨t⟩ (n_a×m), c⟨t⟩ (n_a×m), ŷ⟨t⟩ (n_y×m) and the cache for <see cref="CellBackward"/>.</returns>
    [Pure]
    public static LstmStep CellForward(LstmParameters p, Matrix<double> xt, Matrix<double> aPrev, Matrix<double> cPrev)
    {
        Shapes.ThrowIfAny(CheckCellForward(p, xt, aPrev, cPrev));
        var (next, cache) = Step(p, xt, aPrev, cPrev);
        return new(next.A, next.C, Softmax.Predict(p.Wy, p.By, next.A), cache);
    }

    /// <summary>
    /// The backward of one step, for the gradients da and dc of a loss with respect to the step's two outputs
    /// a⟨t⟩ and c⟨t⟩: dc ← dc + da⊙Γo⊙(1 − tanh²(c⟨t⟩)), dΓo = da⊙tanh(c⟨t⟩), dΓf = dc⊙c⟨t−1⟩, dΓi = dc⊙c̃,
    /// dc̃ = dc⊙Γi, dc⟨t−1⟩ = dc⊙Γf; through the non-linearities dzf = dΓf⊙Γf⊙(1 − Γf) (likewise dzi, dzo) and
    /// dzc = dc̃⊙(1 − c̃²); dW = dz·concatᵀ and db = Σ_columns dz for each gate; [da⟨t−1⟩; dx⟨t⟩] = Σ_gates Wᵀ·dz.
    /// </summary>
    /// <param name="da">The whole gradient with respect to a⟨t⟩, n_a×m.</param>
    /// <param name="dc">The whole gradient with respect to c⟨t⟩ other than through a⟨t⟩ (from c⟨t+1⟩), n_a×m.</param>
    /// <param name="cache">The step's cache from <see cref="CellForward"/>.</param>
    /// <returns>dx⟨t⟩ (n_x×m), da⟨t−1⟩ and dc⟨t−1⟩ (n_a×m) and the gradients, whose read-out entries are zero.</returns>
    [Pure]
    public static LstmCellGradient CellBackward(Matrix<double> da, Matrix<double> dc, LstmCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var (na, m) = (cache.Parameters.HiddenSize, cache.A.ColumnCount);
        Shapes.ThrowIfAny(Shapes.All(Shapes.Matrix(nameof(da), nameof(da), da, na, m, "n_a×m"), Shapes.Matrix(nameof(dc), nameof(dc), dc, na, m, "n_a×m")));
        return Back(da, dc, cache);
    }

    /// <summary>The forward pass over a sequence: a fold of the cell that keeps every cache.</summary>
    /// <param name="p">Parameters: Wf, Wi, Wc, Wo n_a×(n_a+n_x), Bf, Bi, Bc, Bo n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <param name="c0">c⟨0⟩, n_a×m.</param>
    /// <returns>The states a⟨1⟩..a⟨T⟩, the cells c⟨1⟩..c⟨T⟩, the predictions ŷ⟨1⟩..ŷ⟨T⟩ and the caches.</returns>
    [Pure]
    public static LstmForward Forward(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0)
    {
        Shapes.ThrowIfAny(CheckForward(p, xs, a0, c0));
        return ForwardKernel(p, xs, a0, c0, Rnn.DefaultThreads);
    }

    /// <summary><see cref="Forward"/> with its checks as a value: every problem found, or the result.</summary>
    /// <param name="p">As in <see cref="Forward"/>.</param>
    /// <param name="xs">As in <see cref="Forward"/>.</param>
    /// <param name="a0">As in <see cref="Forward"/>.</param>
    /// <param name="c0">As in <see cref="Forward"/>.</param>
    [Pure]
    public static Validation<Error, LstmForward> TryForward(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
        Shapes.ToValidation(CheckForward(p, xs, a0, c0), () => ForwardKernel(p, xs, a0, c0, Rnn.DefaultThreads));

    /// <summary>
    /// Back-propagation through time: a reverse fold over the caches threading (da_next, dc_next), with
    /// <see cref="CellBackward"/> applied at every step to da⟨t⟩ + da_next and dc_next, and da_next = dc_next = 0 at
    /// t = T (nothing downstream reads a⟨T⟩ or c⟨T⟩ but the outside gradient da⟨T⟩).
    /// </summary>
    /// <param name="forward">The result of <see cref="Forward"/>.</param>
    /// <param name="da">da⟨1⟩..da⟨T⟩, each n_a×m: the gradient each a⟨t⟩ receives from outside the recurrence.</param>
    /// <returns>dx⟨1⟩..dx⟨T⟩, da⟨0⟩, dc⟨0⟩ and the summed gradients (read-out entries zero).</returns>
    [Pure]
    public static LstmGradient Backward(LstmForward forward, ImmutableArray<Matrix<double>> da)
    {
        Shapes.ThrowIfAny(CheckBackward(forward, da));
        return BackwardKernel(forward, da, Rnn.DefaultThreads);
    }

    /// <summary><see cref="Backward"/> with its checks as a value.</summary>
    /// <param name="forward">As in <see cref="Backward"/>.</param>
    /// <param name="da">As in <see cref="Backward"/>.</param>
    [Pure]
    public static Validation<Error, LstmGradient> TryBackward(LstmForward forward, ImmutableArray<Matrix<double>> da) =>
        Shapes.ToValidation(CheckBackward(forward, da), () => BackwardKernel(forward, da, Rnn.DefaultThreads));

    /// <summary>
    /// The summed softmax cross-entropy of the read-out, Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j] (computed from the
    /// logits with a per-column log-sum-exp), and its exact gradients.
    /// </summary>
    /// <param name="p">Parameters: Wf, Wi, Wc, Wo n_a×(n_a+n_x), Bf, Bi, Bc, Bo n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <param name="c0">c⟨0⟩, n_a×m.</param>
    /// <param name="labels">T rows of m class indices: labels[t][j] ∈ [0, n_y) is the class of example j at step t.</param>
    [Pure]
    public static LstmLoss LossAndGradients(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0,
        ImmutableArray<ImmutableArray<int>> labels)
    {
        Shapes.ThrowIfAny(CheckLoss(p, xs, a0, c0, labels));
        return LossKernel(p, xs, a0, c0, labels, Rnn.DefaultThreads);
    }

    /// <summary><see cref="LossAndGradients"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="a0">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="c0">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradients"/>.</param>
    [Pure]
    public static Validation<Error, LstmLoss> TryLossAndGradients(LstmParameters p, ImmutableArray<Matrix<double>> xs,
        Matrix<double> a0, Matrix<double> c0, ImmutableArray<ImmutableArray<int>> labels) =>
        Shapes.ToValidation(CheckLoss(p, xs, a0, c0, labels), () => LossKernel(p, xs, a0, c0, labels, Rnn.DefaultThreads));

    /// <summary>Checks that the parameters are finite and consistent with each other.</summary>
    /// <param name="p">Parameters to check.</param>
    /// <returns>The parameters, or every problem found.</returns>
    [Pure]
    public static Validation<Error, LstmParameters> Validate(LstmParameters p) => Shapes.ToValidation(CheckParameters(p), () => p);

    // ---- kernels: arguments already checked ----
    //
    // Sequence kernels as for the RNN (Rnn.cs): per time block the input part of every gate, W_x·X + b, is one
    // product; per step z = U⟨t⟩ + W_a·a⟨t−1⟩ and the element-wise cell, with the bits of Step; in the backward, per
    // step the element-wise backward of Back and da_prev = Σ_gates W_aᵀ·dz, per block the weight gradients and dx,
    // summed in the order of Summation. The gates are f, i, c̃, o, in this order everywhere.

    internal static LstmForward ForwardKernel(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0, int threads)
    {
        var (steps, m) = (xs.Length, a0.ColumnCount);
        var outputs = new Outputs(steps, p.HiddenSize, m);
        using var call = new Workspace();
        var w = Weights.Of(p, call, backward: false);
        Summation.ForEachChunk(Summation.Chunks(m), threads, (j0, mc, _) =>
        {
            using var c = new Chunk(w, j0, mc, steps, Mode.Forward);
            FoldForward(c, s => Block.Of(xs[s]).Slice(j0, mc), Record.Initial(a0, c0, j0, mc), s => outputs.At(s, j0, mc));
        });
        var caches = Enumerable.Range(0, steps).Select(s => new LstmCache(p, xs[s], s == 0 ? a0 : outputs.A[s - 1], s == 0 ? c0 : outputs.C[s - 1],
            outputs.F[s], outputs.I[s], outputs.CTilde[s], outputs.O[s], outputs.C[s], outputs.A[s])).ToImmutableArray();
        ImmutableArray<Matrix<double>> states = [.. outputs.A];
        return new(p, states, [.. outputs.C], Softmax.PredictionsWhenRead(p.Wy, p.By, states), caches);
    }

    internal static LstmGradient BackwardKernel(LstmForward forward, ImmutableArray<Matrix<double>> da, int threads)
    {
        var (p, caches) = (forward.Parameters, forward.Caches);
        var (steps, m) = (da.Length, da[0].ColumnCount);
        var dx = Outputs.Fresh(steps, p.InputSize, m);
        var (da0, dc0) = (Block.Fresh(p.HiddenSize, m), Block.Fresh(p.HiddenSize, m));
        using var call = new Workspace();
        var w = Weights.Of(p, call);
        var gradients = new Gradients(p, Summation.Chunks(m).Length, call);
        Summation.ForEachChunk(Summation.Chunks(m), threads, (j0, mc, chunk) =>
        {
            using var c = new Chunk(w, j0, mc, steps, Mode.Backward, gradients.Of(chunk));
            FoldBackward(c, s => Block.Of(caches[s].Xt).Slice(j0, mc), Record.Initial(caches[0].APrev, caches[0].CPrev, j0, mc),
                s => Record.Of(caches[s], j0, mc), (c, p0, p1, b0) =>
                {
                    for (var s = p0; s < p1; s++) Block.Of(da[s]).Slice(j0, mc).Span.CopyTo(c.DA.Slice((s - b0) * mc, mc).Span);
                }, s => dx.Blocks[s].Slice(j0, mc));
            c.DaNext.Span.CopyTo(da0.Block.Slice(j0, mc).Span);
            c.DcNext.Span.CopyTo(dc0.Block.Slice(j0, mc).Span);
        });
        return new(dx.Matrices, da0.Matrix, dc0.Matrix, gradients.Sum());
    }

    internal static LstmLoss LossKernel(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0,
        ImmutableArray<ImmutableArray<int>> labels, int threads)
    {
        var result = LossAndGradientsOfSteps(p, xs, a0, c0, labels, default, threads, inputGradients: true);
        return new(Ops.CompensatedSum(result.Losses), result.Gradients, result.Dx, result.Da0, result.Dc0);
    }

    /// <summary>
    /// The loss of a ragged batch of next-token targets, for <see cref="LanguageModel.Lstm"/>: example j takes part
    /// only for its first lengths[j] steps, the loss is summed per step then over the steps, dx is not computed, and
    /// the final (a⟨T⟩, c⟨T⟩) is returned.
    /// </summary>
    internal static (double Loss, LstmParameters Gradients, LstmState Final) NextTokenLossKernel(LstmParameters p,
        ImmutableArray<Matrix<double>> xs, LstmState init, ImmutableArray<ImmutableArray<int>> targets, ImmutableArray<int> lengths, int threads)
    {
        var result = LossAndGradientsOfSteps(p, xs, init.A, init.C, targets, lengths, threads, inputGradients: false);
        var m = init.A.ColumnCount;
        var perStep = Enumerable.Range(0, xs.Length).Select(s => Ops.CompensatedSum(new ArraySegment<double>(result.Losses, s * m, m)));
        return (Ops.CompensatedSum(perStep), result.Gradients, result.Final);
    }

    /// <summary>What the loss kernel computes: the per-example losses (T×m, step after step), gradients, the final carry.</summary>
    private sealed record StepLosses(double[] Losses, LstmParameters Gradients, ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0,
        Matrix<double> Dc0, LstmState Final);

    private static StepLosses LossAndGradientsOfSteps(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0,
        ImmutableArray<ImmutableArray<int>> labels, ImmutableArray<int> lengths, int threads, bool inputGradients)
    {
        var (steps, m, na) = (xs.Length, a0.ColumnCount, p.HiddenSize);
        var dx = inputGradients ? Outputs.Fresh(steps, p.InputSize, m) : default;
        var (da0, dc0, aFinal, cFinal) = (Block.Fresh(na, m), Block.Fresh(na, m), Block.Fresh(na, m), Block.Fresh(na, m));
        var losses = new double[steps * m];
        using var call = new Workspace();
        var w = Weights.Of(p, call);
        var gradients = new Gradients(p, Summation.Chunks(m).Length, call);
        Summation.ForEachChunk(Summation.Chunks(m), threads, (j0, mc, chunk) =>
        {
            using var c = new Chunk(w, j0, mc, steps, Mode.Loss, gradients.Of(chunk));
            var kept = new Block[6];
            for (var k = 0; k < kept.Length; k++) kept[k] = c.Scratch.Take(na, steps * mc);
            Record Kept(int s) => new(kept[0].Slice(s * mc, mc), kept[1].Slice(s * mc, mc), kept[2].Slice(s * mc, mc),
                                      kept[3].Slice(s * mc, mc), kept[4].Slice(s * mc, mc), kept[5].Slice(s * mc, mc));
            Func<int, Block> x = s => Block.Of(xs[s]).Slice(j0, mc);
            var initial = Record.Initial(a0, c0, j0, mc);
            FoldForward(c, x, initial, Kept);
            Kept(steps - 1).A.Span.CopyTo(aFinal.Block.Slice(j0, mc).Span);
            Kept(steps - 1).C.Span.CopyTo(cFinal.Block.Slice(j0, mc).Span);
            FoldBackward(c, x, initial, Kept, (c, p0, p1, b0) =>
                Softmax.CrossEntropy(w.Wy, w.By, c.AB.Slice(0, (p1 - p0) * mc), c.DO.Slice(0, (p1 - p0) * mc), c.DA.Slice(0, (p1 - p0) * mc),
                    labels, lengths, losses, p0, j0, mc), inputGradients ? s => dx.Blocks[s].Slice(j0, mc) : null);
            c.DaNext.Span.CopyTo(da0.Block.Slice(j0, mc).Span);
            c.DcNext.Span.CopyTo(dc0.Block.Slice(j0, mc).Span);
        });
        return new(losses, gradients.Sum(), inputGradients ? dx.Matrices : default, da0.Matrix, dc0.Matrix, new(aFinal.Matrix, cFinal.Matrix));
    }

    /// <summary>
    /// The forward fold over the chunk, a time block at a time: U_g = W_g,x·X + b_g for the block's steps, then per
    /// step z_g = U_g⟨s⟩ + W_g,a·a⟨s−1⟩ and the cell, writing step s's values into <paramref name="record"/>(s).
    /// </summary>
    private static void FoldForward(Chunk c, Func<int, Block> x, Record initial, Func<int, Record> record)
    {
        var (w, m) = (c.W, c.M);
        for (var b0 = 0; b0 < c.Steps; b0 += c.BlockSteps)
        {
            var n = Math.Min(c.BlockSteps, c.Steps - b0);
            var xb = c.XF.Slice(0, n * m);
            for (var s = b0; s < b0 + n; s++) x(s).Span.CopyTo(xb.Slice((s - b0) * m, m).Span);
            for (var g = 0; g < Gates; g++)
            {
                Ops.Multiply(c.U[g].Slice(0, n * m), w.Wx[g], false, xb, false);                 // U_g = W_g,x·X
                Elementwise.AddToColumns(c.U[g].Slice(0, n * m).Span, w.B[g].Span);              //       + b_g
            }
            for (var s = b0; s < b0 + n; s++)
            {
                var (prev, next) = (s == 0 ? initial : record(s - 1), record(s));
                var z = new Block[Gates];
                for (var g = 0; g < Gates; g++)
                {
                    z[g] = c.U[g].Slice((s - b0) * m, m);
                    Ops.Multiply(z[g], w.Wa[g], false, prev.A, false, beta: 1);                  // z_g = U_g⟨s⟩ + W_g,a·a_prev
                }
                Elementwise.Sigmoid(z[0].Span, next.F.Span);                                     // Γf = σ(z_f)
                Elementwise.Sigmoid(z[1].Span, next.I.Span);                                     // Γi = σ(z_i)
                Elementwise.Tanh(z[2].Span, next.CTilde.Span);                                   // c̃ = tanh(z_c)
                Elementwise.Sigmoid(z[3].Span, next.O.Span);                                     // Γo = σ(z_o)
                UpdateCell(next.F.Span, prev.C.Span, next.I.Span, next.CTilde.Span, next.O.Span, next.C.Span, next.A.Span, c.TanhC.Span);
            }
        }
    }

    /// <summary>c = Γf⊙c_prev + Γi⊙c̃, a = Γo⊙tanh(c), element by element as in Step.</summary>
    private static void UpdateCell(ReadOnlySpan<double> f, ReadOnlySpan<double> cPrev, ReadOnlySpan<double> i, ReadOnlySpan<double> cTilde,
        ReadOnlySpan<double> o, Span<double> c, Span<double> a, Span<double> tanhC)
    {
        for (var k = 0; k < c.Length; k++) c[k] = f[k] * cPrev[k] + i[k] * cTilde[k];
        Elementwise.Tanh(c, tanhC);
        for (var k = 0; k < a.Length; k++) a[k] = o[k] * tanhC[k];
    }

    /// <summary>
    /// The reverse fold over the chunk, a time block at a time, last first: the block's inputs and states are
    /// gathered, <paramref name="seed"/> puts the outside gradient da⟨s⟩ in DA, then per step the element-wise
    /// backward of Back and da_prev = Σ_g W_g,aᵀ·dz_g; then the block's sums.
    /// </summary>
    private static void FoldBackward(Chunk c, Func<int, Block> x, Record initial, Func<int, Record> record, Seed seed, Func<int, Block>? dx)
    {
        var (w, m) = (c.W, c.M);
        foreach (var (b0, b1, _, _) in Summation.PiecesBackward(0, c.Steps, c.BlockSteps, c.Steps))
        {
            var columns = (b1 - b0) * m;
            for (var s = b0; s < b1; s++)
            {
                x(s).Span.CopyTo(c.XB.Slice((s - b0) * m, m).Span);
                (s == 0 ? initial : record(s - 1)).A.Span.CopyTo(c.AP.Slice((s - b0) * m, m).Span);
                record(s).A.Span.CopyTo(c.AB.Slice((s - b0) * m, m).Span);
            }
            seed(c, b0, b1, b0);
            for (var s = b1 - 1; s >= b0; s--)
            {
                var (prev, step) = (s == 0 ? initial : record(s - 1), record(s));
                var dz = new Block[Gates];
                for (var g = 0; g < Gates; g++) dz[g] = c.DZ[g].Slice((s - b0) * m, m);
                Elementwise.Tanh(step.C.Span, c.TanhC.Span);
                GatesBackward(c.DA.Slice((s - b0) * m, m).Span, c.DaNext.Span, c.DcNext.Span, c.TanhC.Span, prev.C.Span,
                    step.F.Span, step.I.Span, step.CTilde.Span, step.O.Span, dz[0].Span, dz[1].Span, dz[2].Span, dz[3].Span);
                for (var g = 0; g < Gates; g++)
                    Ops.Multiply(c.DaNext, w.WaT[g], false, dz[g], false, beta: g == 0 ? 0 : 1);  // da_prev = Σ_g W_g,aᵀ·dz_g
            }
            var (xb, aPrev, a) = (c.XB.Slice(0, columns), c.AP.Slice(0, columns), c.AB.Slice(0, columns));
            var sums = c.Sums;
            var dX = c.DX.Slice(0, columns);
            for (var g = 0; g < Gates; g++)
            {
                var dzg = c.DZ[g].Slice(0, columns);
                Ops.Multiply(sums.Wa[g], dzg, false, aPrev, true, beta: 1);                       // dW_g,a += dZ_g·A_prevᵀ
                Ops.Multiply(sums.Wx[g], dzg, false, xb, true, beta: 1);                          // dW_g,x += dZ_g·Xᵀ
                Elementwise.AddColumnsTo(dzg.Span, sums.B[g].Span);                               // db_g += Σ_columns dZ_g
                if (dx is not null) Ops.Multiply(dX, w.Wx[g], true, dzg, false, beta: g == 0 ? 0 : 1); // dX = Σ_g W_g,xᵀ·dZ_g
            }
            if (c.Mode == Mode.Loss) Softmax.AccumulateGradients(c.DO.Slice(0, columns), a, sums.Wy, sums.By); // dWy += dO·Aᵀ, dby += Σ dO
            if (dx is not null)
                for (var s = b0; s < b1; s++) dX.Slice((s - b0) * m, m).Span.CopyTo(dx(s).Span);
        }
    }

    /// <summary>
    /// The element-wise backward of one step, as in Back with da = da_next + da_out and dc = dc_next: writes the gate
    /// gradients dz_f, dz_i, dz_c, dz_o and replaces dc_next by dc_prev = dc⊙Γf.
    /// </summary>
    private static void GatesBackward(ReadOnlySpan<double> daOut, ReadOnlySpan<double> daNext, Span<double> dcNext, ReadOnlySpan<double> tanhC,
        ReadOnlySpan<double> cPrev, ReadOnlySpan<double> f, ReadOnlySpan<double> i, ReadOnlySpan<double> cTilde, ReadOnlySpan<double> o,
        Span<double> dzf, Span<double> dzi, Span<double> dzc, Span<double> dzo)
    {
        for (var k = 0; k < daOut.Length; k++)
        {
            var da = daNext[k] + daOut[k];
            var t = tanhC[k];
            var dO = da * t;                                              // dΓo = da⊙tanh(c)
            var dC = dcNext[k] + da * o[k] * (1.0 - t * t);                // dc ← dc + da⊙Γo⊙(1 − tanh²(c))
            dzf[k] = dC * cPrev[k] * f[k] * (1.0 - f[k]);                  // dz_f = dc⊙c_prev⊙Γf⊙(1 − Γf)
            dzi[k] = dC * cTilde[k] * i[k] * (1.0 - i[k]);                 // dz_i = dc⊙c̃⊙Γi⊙(1 − Γi)
            dzc[k] = dC * i[k] * (1.0 - cTilde[k] * cTilde[k]);           // dz_c = dc⊙Γi⊙(1 − c̃²)
            dzo[k] = dO * o[k] * (1.0 - o[k]);                             // dz_o = dΓo⊙Γo⊙(1 − Γo)
            dcNext[k] = dC * f[k];                                         // dc_prev = dc⊙Γf
        }
    }

    /// <summary>Puts da⟨s⟩ from outside the recurrence into DA for the steps [p0, p1) of the time block from b0.</summary>
    private delegate void Seed(Chunk c, int p0, int p1, int b0);

    private enum Mode { Forward, Backward, Loss }

    /// <summary>The values of one step for one chunk: a⟨t⟩, c⟨t⟩ and the gates (only a and c for the initial carry).</summary>
    private readonly record struct Record(Block A, Block C, Block F, Block I, Block CTilde, Block O)
    {
        public static Record Initial(Matrix<double> a0, Matrix<double> c0, int j0, int m) =>
            new(Block.Of(a0).Slice(j0, m), Block.Of(c0).Slice(j0, m), default, default, default, default);

        public static Record Of(LstmCache cache, int j0, int m) =>
            new(Block.Of(cache.A).Slice(j0, m), Block.Of(cache.C).Slice(j0, m), Block.Of(cache.F).Slice(j0, m),
                Block.Of(cache.I).Slice(j0, m), Block.Of(cache.CTilde).Slice(j0, m), Block.Of(cache.O).Slice(j0, m));
    }

    /// <summary>Fresh matrices for the values of every step, overwritten entirely by the forward.</summary>
    private sealed class Outputs(int steps, int na, int m)
    {
        private readonly (ImmutableArray<Matrix<double>> Matrices, Block[] Blocks)[] parts = [.. Enumerable.Range(0, 6).Select(_ => Fresh(steps, na, m))];

        public ImmutableArray<Matrix<double>> A => parts[0].Matrices;
        public ImmutableArray<Matrix<double>> C => parts[1].Matrices;
        public ImmutableArray<Matrix<double>> F => parts[2].Matrices;
        public ImmutableArray<Matrix<double>> I => parts[3].Matrices;
        public ImmutableArray<Matrix<double>> CTilde => parts[4].Matrices;
        public ImmutableArray<Matrix<double>> O => parts[5].Matrices;

        public Record At(int s, int j0, int width) =>
            new(parts[0].Blocks[s].Slice(j0, width), parts[1].Blocks[s].Slice(j0, width), parts[2].Blocks[s].Slice(j0, width),
                parts[3].Blocks[s].Slice(j0, width), parts[4].Blocks[s].Slice(j0, width), parts[5].Blocks[s].Slice(j0, width));

        public static (ImmutableArray<Matrix<double>> Matrices, Block[] Blocks) Fresh(int steps, int rows, int m)
        {
            var fresh = Enumerable.Range(0, steps).Select(_ => Block.FreshUninitialized(rows, m)).ToArray();
            return (fresh.Select(f => f.Matrix).ToImmutableArray(), fresh.Select(f => f.Block).ToArray());
        }
    }

    /// <summary>The gate matrices split into their a and x parts, with W_aᵀ stored once for a backward.</summary>
    private sealed record Weights(LstmParameters P, Block[] Wa, Block[] Wx, Block[] WaT, Block[] B, Block Wy, Block By)
    {
        public static Weights Of(LstmParameters p, Workspace call, bool backward = true)
        {
            var na = p.HiddenSize;
            var w = new[] { p.Wf, p.Wi, p.Wc, p.Wo }.Select(Block.Of).ToArray();
            var waT = w.Select(g => backward ? Transpose(g.Slice(0, na), call) : default).ToArray();
            return new(p, [.. w.Select(g => g.Slice(0, na))], [.. w.Select(g => g.Slice(na, g.Columns - na))], waT,
                [.. new[] { p.Bf, p.Bi, p.Bc, p.Bo }.Select(Block.Of)], Block.Of(p.Wy), Block.Of(p.By));
        }

        private static Block Transpose(Block a, Workspace call)
        {
            var t = call.Take(a.Columns, a.Rows);
            for (var i = 0; i < a.Rows; i++)
                for (var j = 0; j < a.Columns; j++) t.Data[t.Offset + i * t.Rows + j] = a.Data[a.Offset + j * a.Rows + i];
            return t;
        }
    }

    /// <summary>Gradient sums of one chunk: each gate matrix split into its a and x parts.</summary>
    private sealed record GradientSums(Block[] Wa, Block[] Wx, Block[] B, Block Wy, Block By);

    /// <summary>The gradient sums of every chunk and their total, added chunk after chunk.</summary>
    private sealed class Gradients
    {
        private readonly LstmParameters result;
        private readonly Block[][] storage;
        private readonly GradientSums[] sums;

        public Gradients(LstmParameters p, int chunks, Workspace call)
        {
            var (na, width, ny) = (p.HiddenSize, p.HiddenSize + p.InputSize, p.OutputSize);
            var w = Enumerable.Range(0, Gates).Select(_ => Block.Fresh(na, width)).ToArray();
            var b = Enumerable.Range(0, Gates).Select(_ => Block.Fresh(na, 1)).ToArray();
            var (wy, by) = (Block.Fresh(ny, na), Block.Fresh(ny, 1));
            result = p with
            {
                Wf = w[0].Matrix, Wi = w[1].Matrix, Wc = w[2].Matrix, Wo = w[3].Matrix,
                Bf = b[0].Matrix.Column(0), Bi = b[1].Matrix.Column(0), Bc = b[2].Matrix.Column(0), Bo = b[3].Matrix.Column(0),
                Wy = wy.Matrix, By = by.Matrix.Column(0),
            };
            storage = new Block[chunks][];
            storage[0] = [.. new[] { result.Wf, result.Wi, result.Wc, result.Wo, result.Wy }.Select(Block.Of),
                          .. new[] { result.Bf, result.Bi, result.Bc, result.Bo, result.By }.Select(Block.Of)];
            for (var c = 1; c < chunks; c++)
                storage[c] = [.. storage[0].Select(s => call.Zeros(s.Rows, s.Columns))];
            sums = [.. storage.Select(s => new GradientSums([.. s[..Gates].Select(g => g.Slice(0, na))], [.. s[..Gates].Select(g => g.Slice(na, width - na))],
                                                            s[5..(5 + Gates)], s[Gates], s[^1]))];
        }

        public GradientSums Of(int chunk) => sums[chunk];

        /// <summary>The first chunk's sums plus the others in chunk order.</summary>
        public LstmParameters Sum()
        {
            foreach (var other in storage.Skip(1))
                for (var k = 0; k < other.Length; k++)
                    System.Numerics.Tensors.TensorPrimitives.Add(storage[0][k].Span, other[k].Span, storage[0][k].Span);
            return result;
        }
    }

    /// <summary>One chunk of the batch, columns [J0, J0 + M), with its scratch and its gradient sums.</summary>
    private sealed class Chunk : IDisposable
    {
        public Chunk(Weights w, int j0, int m, int steps, Mode mode, GradientSums? sums = null)
        {
            (W, J0, M, Steps, Mode, Sums) = (w, j0, m, steps, mode, sums!);
            BlockSteps = Summation.BlockSteps(m);
            var (nx, na, ny, columns) = (w.P.InputSize, w.P.HiddenSize, w.P.OutputSize, BlockSteps * m);
            XF = Scratch.Take(nx, columns);
            U = [.. Enumerable.Range(0, Gates).Select(_ => Scratch.Take(na, columns))];
            TanhC = Scratch.Take(na, m);
            if (mode == Mode.Forward) return;
            (XB, AP, AB, DA, DX) = (Scratch.Take(nx, columns), Scratch.Take(na, columns), Scratch.Take(na, columns), Scratch.Take(na, columns), Scratch.Take(nx, columns));
            DZ = [.. Enumerable.Range(0, Gates).Select(_ => Scratch.Take(na, columns))];
            (DaNext, DcNext) = (Scratch.Zeros(na, m), Scratch.Zeros(na, m));
            if (mode == Mode.Loss) DO = Scratch.Take(ny, columns);
        }

        public Weights W { get; }
        public int J0 { get; }
        public int M { get; }
        public int Steps { get; }
        public Mode Mode { get; }
        public GradientSums Sums { get; }
        public int BlockSteps { get; }
        public Workspace Scratch { get; } = new();

        /// <summary>Forward: the block's inputs and U_g = W_g,x·X + b_g, then z_g.</summary>
        public Block XF { get; }
        public Block[] U { get; } = [];

        /// <summary>tanh(c) of the current step.</summary>
        public Block TanhC { get; }

        /// <summary>Backward: the block's inputs, a⟨s−1⟩ and a⟨s⟩ side by side, da from outside, the gate gradients, dO, dX.</summary>
        public Block XB { get; }
        public Block AP { get; }
        public Block AB { get; }
        public Block DA { get; }
        public Block[] DZ { get; } = [];
        public Block DO { get; }
        public Block DX { get; }

        /// <summary>da_next and dc_next of the step after the current one; da⟨0⟩ and dc⟨0⟩ at the end.</summary>
        public Block DaNext { get; }
        public Block DcNext { get; }

        public void Dispose() => Scratch.Dispose();
    }

    // ---- checks ----

    private static Problem[] CheckParameters(LstmParameters? p)
    {
        if (p is null) return [new(nameof(p), "expected p to be LstmParameters but got null")];
        var na = Shapes.Consensus(p.Wf?.RowCount, p.Wi?.RowCount, p.Wc?.RowCount, p.Wo?.RowCount,
                                  p.Bf?.Count, p.Bi?.Count, p.Bc?.Count, p.Bo?.Count, p.Wy?.ColumnCount);
        var width = Shapes.Consensus(p.Wf?.ColumnCount, p.Wi?.ColumnCount, p.Wc?.ColumnCount, p.Wo?.ColumnCount);
        var ny = Shapes.Consensus(p.Wy?.RowCount, p.By?.Count);
        if (width <= na)
            return [new(nameof(p), $"expected the gate weights Wf, Wi, Wc, Wo to be n_a×(n_a+n_x) with n_a = {na} and n_x ≥ 1 but they have {width} columns")];
        const string gate = "n_a×(n_a+n_x)";
        return Shapes.All(
            Shapes.Matrix(nameof(p), nameof(p.Wf), p.Wf, na, width, gate),
            Shapes.Vector(nameof(p), nameof(p.Bf), p.Bf, na, "n_a"),
            Shapes.Matrix(nameof(p), nameof(p.Wi), p.Wi, na, width, gate),
            Shapes.Vector(nameof(p), nameof(p.Bi), p.Bi, na, "n_a"),
            Shapes.Matrix(nameof(p), nameof(p.Wc), p.Wc, na, width, gate),
            Shapes.Vector(nameof(p), nameof(p.Bc), p.Bc, na, "n_a"),
            Shapes.Matrix(nameof(p), nameof(p.Wo), p.Wo, na, width, gate),
            Shapes.Vector(nameof(p), nameof(p.Bo), p.Bo, na, "n_a"),
            Shapes.Matrix(nameof(p), nameof(p.Wy), p.Wy, ny, na, "n_y×n_a"),
            Shapes.Vector(nameof(p), nameof(p.By), p.By, ny, "n_y"));
    }

    private static Problem[] CheckCellForward(LstmParameters p, Matrix<double> xt, Matrix<double> aPrev, Matrix<double> cPrev)
    {
        var parameters = CheckParameters(p);
        if (parameters.Length > 0) return parameters;
        var m = xt?.ColumnCount ?? aPrev?.ColumnCount ?? cPrev?.ColumnCount ?? 0;
        return Shapes.All(
            Shapes.Matrix(nameof(xt), nameof(xt), xt, p.InputSize, m, "n_x×m"),
            Shapes.Matrix(nameof(aPrev), nameof(aPrev), aPrev, p.HiddenSize, m, "n_a×m"),
            Shapes.Matrix(nameof(cPrev), nameof(cPrev), cPrev, p.HiddenSize, m, "n_a×m"));
    }

    private static Problem[] CheckForward(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0)
    {
        var parameters = CheckParameters(p);
        if (parameters.Length > 0) return parameters;
        var m = BatchSize(xs, a0, c0);
        return Shapes.All(
            Shapes.Sequence(nameof(xs), xs, p.InputSize, m, "n_x×m"),
            Shapes.Matrix(nameof(a0), nameof(a0), a0, p.HiddenSize, m, "n_a×m"),
            Shapes.Matrix(nameof(c0), nameof(c0), c0, p.HiddenSize, m, "n_a×m"));
    }

    private static Problem[] CheckBackward(LstmForward forward, ImmutableArray<Matrix<double>> da) =>
        forward is null
            ? [new(nameof(forward), "expected forward to be the result of Lstm.Forward but got null")]
            : Shapes.All(Shapes.Sequence(nameof(da), da, forward.Parameters.HiddenSize, forward.States[0].ColumnCount, "n_a×m", forward.States.Length));

    private static Problem[] CheckLoss(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0,
        ImmutableArray<ImmutableArray<int>> labels)
    {
        var forward = CheckForward(p, xs, a0, c0);
        return forward.Length > 0 ? forward : Shapes.All(Shapes.Labels(nameof(labels), labels, xs.Length, BatchSize(xs, a0, c0), p.OutputSize));
    }

    private static int BatchSize(ImmutableArray<Matrix<double>> xs, Matrix<double>? a0, Matrix<double>? c0) =>
        !xs.IsDefaultOrEmpty && xs[0] is { } x0 ? x0.ColumnCount : a0?.ColumnCount ?? c0?.ColumnCount ?? 0;
}
