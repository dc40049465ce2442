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
    : IParameterTree<RnnParameters>
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
    public ImmutableArray<Leaf> ToLeaves() =>
        [Leaf.Of(nameof(Wax), Wax), Leaf.Of(nameof(Waa), Waa), Leaf.Of(nameof(Ba), Ba), Leaf.Of(nameof(Wya), Wya), Leaf.Of(nameof(By), By)];

    /// <inheritdoc />
    [Pure]
    public RnnParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(ToLeaves(), leaves, l => this with
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
        : base(Parameters, States, new Lazy<ImmutableArray<Matrix<double>>>(Predictions), Caches)
    {
    }

    /// <summary>A forward result whose predictions are computed when first read.</summary>
    /// <param name="parameters">The parameters the sequence ran with.</param>
    /// <param name="states">a⟨1⟩..a⟨T⟩, each n_a×m.</param>
    /// <param name="predictions">How to compute ŷ⟨1⟩..ŷ⟨T⟩.</param>
    /// <param name="caches">One cache per step, in time order.</param>
    internal RnnForward(RnnParameters parameters, ImmutableArray<Matrix<double>> states, Lazy<ImmutableArray<Matrix<double>>> predictions, ImmutableArray<RnnCache> caches)
        : base(parameters, states, predictions, caches)
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

/// <summary>
/// The vanilla RNN: z⟨t⟩ = Wax·x⟨t⟩ + Waa·a⟨t−1⟩ + ba, a⟨t⟩ = tanh(z⟨t⟩), ŷ⟨t⟩ = softmax(Wya·a⟨t⟩ + by), with data laid
/// out one column per example. Every function validates its arguments (throwing <see cref="ArgumentException"/>
/// that names the argument and the expected shape), then runs a pure kernel. The <c>Try</c> variants return the
/// same checks as a <see cref="Validation{FAIL,SUCCESS}"/> listing every problem.
/// </summary>
public static class Rnn
{
    /// <summary>The RNN cell as a value, for <see cref="Recurrence"/>: its carry and its output are both a⟨t⟩.</summary>
    public static Cell<RnnParameters, Matrix<double>, RnnCache> Cell { get; } =
        new((p, aPrev, xt) => { var (a, cache) = Step(p, xt, aPrev); return new(a, a, cache); },
            (cache, daNext, daOut) => { var g = Back(daNext + daOut, cache); return new(g.DaPrev, g.Dxt, g.Gradients); },
            a => [a],
            parts => parts[0]);

    // ---- the cell: forward and backward, line for line like the math ----

    private static (Matrix<double> A, RnnCache Cache) Step(RnnParameters p, Matrix<double> xt, Matrix<double> aPrev)
    {
        var z = Ops.Affine(p.Wax, xt, p.Waa, aPrev, p.Ba);            // z = Wax·x + Waa·a_prev + ba
        var a = p.Activation == Activation.Tanh ? Ops.Tanh(z) : Ops.Relu(z);
        return (a, new RnnCache(p, xt, aPrev, a));
    }

    private static RnnCellGradient Back(Matrix<double> da, RnnCache cache)
    {
        var (p, xt, aPrev, a) = (cache.Parameters, cache.Xt, cache.APrev, cache.A);
        var dz = Ops.Hadamard(ActivationDerivative(p.Activation, a), da); // dz = (1 − a²) ⊙ da
        var dWax = Ops.MulTB(dz, xt);                                    // dWax = dz·xᵀ
        var dWaa = Ops.MulTB(dz, aPrev);                                 // dWaa = dz·a_prevᵀ
        var dba = Ops.RowSums(dz);                                       // dba = Σ_columns dz
        var dxt = Ops.MulTA(p.Wax, dz);                                  // dx = Waxᵀ·dz
        var daPrev = Ops.MulTA(p.Waa, dz);                               // da_prev = Waaᵀ·dz
        var zeroHead = (Wya: Matrix<double>.Build.Dense(p.OutputSize, p.HiddenSize), By: Vector<double>.Build.Dense(p.OutputSize));
        return new(dxt, daPrev, p with { Wax = dWax, Waa = dWaa, Ba = dba, Wya = zeroHead.Wya, By = zeroHead.By });
    }

    private static Matrix<double> ActivationDerivative(Activation activation, Matrix<double> a) =>
        activation == Activation.Tanh ? Ops.Map(a, static v => 1.0 - v * v) : Ops.Map(a, static v => v > 0 ? 1.0 : 0.0);

    // ---- public API ----

    /// <summary>One step of the cell and its read-out.</summary>
    /// <param name="p">Parameters: Wax n_a×n_x, Waa n_a×n_a, Ba n_a, Wya n_y×n_a, By n_y.</param>
    /// <param name="xt">x⟨t⟩, n_x×m.</param>
    /// <param name="aPrev">a⟨t−1⟩, n_a×m.</param>
    /// <returns>a⟨t⟩ (n_a×m), ŷ⟨t⟩ (n_y×m) and the cache for <see cref="CellBackward"/>.</returns>
    [Pure]
    public static RnnStep CellForward(RnnParameters p, Matrix<double> xt, Matrix<double> aPrev)
    {
        Shapes.ThrowIfAny(CheckCellForward(p, xt, aPrev));
        var (a, cache) = Step(p, xt, aPrev);
        return new(a, Softmax.Predict(p.Wya, p.By, a), cache);
    }

    /// <summary>
    /// The backward of one step: dz = (1 − a⟨t⟩²) ⊙ da, dWax = dz·x⟨t⟩ᵀ, dWaa = dz·a⟨t−1⟩ᵀ, dba = Σ_columns dz,
    /// dx⟨t⟩ = Waxᵀ·dz, da⟨t−1⟩ = Waaᵀ·dz.
    /// </summary>
    /// <param name="da">The whole gradient with respect to a⟨t⟩, n_a×m.</param>
    /// <param name="cache">The step's cache from <see cref="CellForward"/>.</param>
    /// <returns>dx⟨t⟩ (n_x×m), da⟨t−1⟩ (n_a×m) and the gradients, whose read-out entries are zero.</returns>
    [Pure]
    public static RnnCellGradient CellBackward(Matrix<double> da, RnnCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        Shapes.ThrowIfAny(Shapes.All(Shapes.Matrix(nameof(da), nameof(da), da, cache.Parameters.HiddenSize, cache.A.ColumnCount, "n_a×m")));
        return Back(da, cache);
    }

    /// <summary>The forward pass over a sequence: a fold of the cell that keeps every cache.</summary>
    /// <param name="p">Parameters: Wax n_a×n_x, Waa n_a×n_a, Ba n_a, Wya n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <returns>The states a⟨1⟩..a⟨T⟩, the predictions ŷ⟨1⟩..ŷ⟨T⟩ and the caches.</returns>
    [Pure]
    public static RnnForward Forward(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0)
    {
        Shapes.ThrowIfAny(CheckForward(p, xs, a0));
        return ForwardKernel(p, xs, a0, DefaultThreads);
    }

    /// <summary><see cref="Forward"/> with its checks as a value: every problem found, or the result.</summary>
    /// <param name="p">As in <see cref="Forward"/>.</param>
    /// <param name="xs">As in <see cref="Forward"/>.</param>
    /// <param name="a0">As in <see cref="Forward"/>.</param>
    [Pure]
    public static Validation<Error, RnnForward> TryForward(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) =>
        Shapes.ToValidation(CheckForward(p, xs, a0), () => ForwardKernel(p, xs, a0, DefaultThreads));

    /// <summary>
    /// Back-propagation through time: a reverse fold over the caches threading da_next, with
    /// dz⟨t⟩ = (1 − a⟨t⟩²) ⊙ (da⟨t⟩ + da_next) at every step and da_next = 0 at t = T.
    /// </summary>
    /// <param name="forward">The result of <see cref="Forward"/>.</param>
    /// <param name="da">da⟨1⟩..da⟨T⟩, each n_a×m: the gradient each a⟨t⟩ receives from outside the recurrence.</param>
    /// <returns>dx⟨1⟩..dx⟨T⟩, da⟨0⟩ and the summed gradients (read-out entries zero).</returns>
    [Pure]
    public static RnnGradient Backward(RnnForward forward, ImmutableArray<Matrix<double>> da)
    {
        Shapes.ThrowIfAny(CheckBackward(forward, da));
        return BackwardKernel(forward, da, DefaultThreads);
    }

    /// <summary><see cref="Backward"/> with its checks as a value.</summary>
    /// <param name="forward">As in <see cref="Backward"/>.</param>
    /// <param name="da">As in <see cref="Backward"/>.</param>
    [Pure]
    public static Validation<Error, RnnGradient> TryBackward(RnnForward forward, ImmutableArray<Matrix<double>> da) =>
        Shapes.ToValidation(CheckBackward(forward, da), () => BackwardKernel(forward, da, DefaultThreads));

    /// <summary>
    /// The summed softmax cross-entropy of the read-out, Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j] (computed from the
    /// logits with a per-column log-sum-exp), and its exact gradients.
    /// </summary>
    /// <param name="p">Parameters: Wax n_a×n_x, Waa n_a×n_a, Ba n_a, Wya n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <param name="labels">T rows of m class indices: labels[t][j] ∈ [0, n_y) is the class of example j at step t.</param>
    [Pure]
    public static RnnLoss LossAndGradients(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels)
    {
        Shapes.ThrowIfAny(CheckLoss(p, xs, a0, labels));
        return LossKernel(p, xs, a0, labels, xs.Length, DefaultThreads);
    }

    /// <summary><see cref="LossAndGradients"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="a0">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradients"/>.</param>
    [Pure]
    public static Validation<Error, RnnLoss> TryLossAndGradients(RnnParameters p, ImmutableArray<Matrix<double>> xs,
        Matrix<double> a0, ImmutableArray<ImmutableArray<int>> labels) =>
        Shapes.ToValidation(CheckLoss(p, xs, a0, labels), () => LossKernel(p, xs, a0, labels, xs.Length, DefaultThreads));

    /// <summary>
    /// Backward(Forward(p, xs, a0), da) holding the states of O(√T) steps rather than T: the forward keeps a⟨τ⟩
    /// only at τ = 0, k, 2k, … (k = <paramref name="every"/>), and the backward recomputes each segment of k steps
    /// from its first state just before running over it, last segment first. The result is bitwise identical to the
    /// full backward, for any k; the states held are about (T/k + k)·n_a·m doubles, least at k ≈ √T, for the cost
    /// of a second forward.
    /// </summary>
    /// <param name="p">Parameters: Wax n_a×n_x, Waa n_a×n_a, Ba n_a, Wya n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <param name="da">da⟨1⟩..da⟨T⟩, each n_a×m: the gradient each a⟨t⟩ receives from outside the recurrence.</param>
    /// <param name="every">k ≥ 1: the distance between kept states.</param>
    /// <returns>dx⟨1⟩..dx⟨T⟩, da⟨0⟩ and the summed gradients (read-out entries zero).</returns>
    [Pure]
    public static RnnGradient BackwardCheckpointed(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<Matrix<double>> da, int every)
    {
        Shapes.ThrowIfAny(CheckBackwardCheckpointed(p, xs, a0, da, every));
        return BackwardCheckpointedKernel(p, xs, a0, da, every, DefaultThreads);
    }

    /// <summary><see cref="BackwardCheckpointed"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="xs">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="a0">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="da">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="every">As in <see cref="BackwardCheckpointed"/>.</param>
    [Pure]
    public static Validation<Error, RnnGradient> TryBackwardCheckpointed(RnnParameters p, ImmutableArray<Matrix<double>> xs,
        Matrix<double> a0, ImmutableArray<Matrix<double>> da, int every) =>
        Shapes.ToValidation(CheckBackwardCheckpointed(p, xs, a0, da, every), () => BackwardCheckpointedKernel(p, xs, a0, da, every, DefaultThreads));

    /// <summary>
    /// <see cref="LossAndGradients"/> holding the states of O(√T) steps rather than T, as in
    /// <see cref="BackwardCheckpointed"/>: bitwise identical results, for any k.
    /// </summary>
    /// <param name="p">Parameters: Wax n_a×n_x, Waa n_a×n_a, Ba n_a, Wya n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <param name="labels">T rows of m class indices: labels[t][j] ∈ [0, n_y) is the class of example j at step t.</param>
    /// <param name="every">k ≥ 1: the distance between kept states.</param>
    [Pure]
    public static RnnLoss LossAndGradientsCheckpointed(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, int every)
    {
        Shapes.ThrowIfAny(CheckLossCheckpointed(p, xs, a0, labels, every));
        return LossKernel(p, xs, a0, labels, every, DefaultThreads);
    }

    /// <summary><see cref="LossAndGradientsCheckpointed"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="a0">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="every">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    [Pure]
    public static Validation<Error, RnnLoss> TryLossAndGradientsCheckpointed(RnnParameters p, ImmutableArray<Matrix<double>> xs,
        Matrix<double> a0, ImmutableArray<ImmutableArray<int>> labels, int every) =>
        Shapes.ToValidation(CheckLossCheckpointed(p, xs, a0, labels, every), () => LossKernel(p, xs, a0, labels, every, DefaultThreads));

    /// <summary>Checks that the parameters are finite and consistent with each other.</summary>
    /// <param name="p">Parameters to check.</param>
    /// <returns>The parameters, or every problem found.</returns>
    [Pure]
    public static Validation<Error, RnnParameters> Validate(RnnParameters p) => Shapes.ToValidation(CheckParameters(p), () => p);

    // ---- kernels: arguments already checked ----
    //
    // The public functions run the cell's math on whole sequences at once rather than through Recurrence, with the
    // same bits per step: the input projection U = Wax·X + ba is one product over the steps of a time block, and only
    // z⟨t⟩ = U⟨t⟩ + Waa·a⟨t−1⟩ and da_next = Waaᵀ·dz⟨t⟩ remain per step. The weight gradients are one product per time
    // block, summed in the fixed order of Summation, so the result does not depend on the number of threads nor on
    // checkpointing. Every result is freshly allocated; the scratch lives in a Workspace and never escapes.

    /// <summary>Threads a public function may use: batches of 2·<see cref="Summation.ChunkColumns"/> columns or more are split over the cores.</summary>
    internal static int DefaultThreads => Environment.ProcessorCount;

    internal static RnnForward ForwardKernel(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, int threads)
    {
        var (steps, m) = (xs.Length, a0.ColumnCount);
        var states = Fresh(steps, p.HiddenSize, m);
        using var call = new Workspace();
        var w = Weights.Of(p, call, backward: false);
        Summation.ForEachChunk(Summation.Chunks(m), threads, (j0, mc, _) =>
        {
            using var c = new Chunk(w, j0, mc, steps, Mode.Forward);
            FoldForward(c, 0, steps, s => Block.Of(xs[s]).Slice(j0, mc),
                t => t == 0 ? Block.Of(a0).Slice(j0, mc) : states.Blocks[t - 1].Slice(j0, mc));
        });
        var caches = Enumerable.Range(0, steps)
            .Select(s => new RnnCache(p, xs[s], s == 0 ? a0 : states.Matrices[s - 1], states.Matrices[s])).ToImmutableArray();
        return new(p, states.Matrices, Softmax.PredictionsWhenRead(p.Wya, p.By, states.Matrices), caches);
    }

    internal static RnnGradient BackwardKernel(RnnForward forward, ImmutableArray<Matrix<double>> da, int threads)
    {
        var (p, caches) = (forward.Parameters, forward.Caches);
        var (steps, m) = (da.Length, da[0].ColumnCount);
        var dx = Fresh(steps, p.InputSize, m);
        var da0 = Block.Fresh(p.HiddenSize, m);
        using var call = new Workspace();
        var w = Weights.Of(p, call);
        var gradients = new Gradients(p, Summation.Chunks(m).Length, call);
        Summation.ForEachChunk(Summation.Chunks(m), threads, (j0, mc, chunk) =>
        {
            using var c = new Chunk(w, j0, mc, steps, Mode.Backward, gradients.Of(chunk));
            FoldBackward(c, 0, steps, s => Block.Of(caches[s].Xt).Slice(j0, mc),
                t => t == 0 ? Block.Of(caches[0].APrev).Slice(j0, mc) : Block.Of(caches[t - 1].A).Slice(j0, mc),
                SeedFrom(da), s => dx.Blocks[s].Slice(j0, mc));
            c.DaNext.Span.CopyTo(da0.Block.Slice(j0, mc).Span);
        });
        return new(dx.Matrices, da0.Matrix, gradients.Sum());
    }

    internal static RnnGradient BackwardCheckpointedKernel(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<Matrix<double>> da, int every, int threads)
    {
        var (steps, m) = (xs.Length, a0.ColumnCount);
        var dx = Fresh(steps, p.InputSize, m);
        var da0 = Block.Fresh(p.HiddenSize, m);
        using var call = new Workspace();
        var w = Weights.Of(p, call);
        var gradients = new Gradients(p, Summation.Chunks(m).Length, call);
        Summation.ForEachChunk(Summation.Chunks(m), threads, (j0, mc, chunk) =>
        {
            using var c = new Chunk(w, j0, mc, steps, Mode.Backward, gradients.Of(chunk));
            Checkpointed(c, every, s => Block.Of(xs[s]).Slice(j0, mc), Block.Of(a0).Slice(j0, mc), SeedFrom(da), s => dx.Blocks[s].Slice(j0, mc));
            c.DaNext.Span.CopyTo(da0.Block.Slice(j0, mc).Span);
        });
        return new(dx.Matrices, da0.Matrix, gradients.Sum());
    }

    internal static RnnLoss LossKernel(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, int every, int threads)
    {
        var result = LossAndGradientsOfSteps(p, xs, a0, labels, default, every, threads, inputGradients: true);
        // The per-example losses are summed in the order (t, j) of the labels, whatever the chunks.
        return new(Ops.CompensatedSum(result.Losses), result.Gradients, result.Dx, result.Da0);
    }

    /// <summary>
    /// The loss of a ragged batch of next-token targets, for <see cref="LanguageModel.Rnn"/>: as
    /// <see cref="LossAndGradients"/>, except that example j takes part in the loss only for its first
    /// lengths[j] steps (its later states still run but cost nothing), the loss is summed per step then over the
    /// steps, like the cross-entropy of Losses step by step, dx is not computed, and a⟨T⟩ is returned.
    /// </summary>
    internal static (double Loss, RnnParameters Gradients, Matrix<double> Final) NextTokenLossKernel(RnnParameters p,
        ImmutableArray<Matrix<double>> xs, Matrix<double> a0, ImmutableArray<ImmutableArray<int>> targets, ImmutableArray<int> lengths, int threads)
    {
        var result = LossAndGradientsOfSteps(p, xs, a0, targets, lengths, xs.Length, threads, inputGradients: false);
        var m = a0.ColumnCount;
        var perStep = Enumerable.Range(0, xs.Length).Select(s => Ops.CompensatedSum(new ArraySegment<double>(result.Losses, s * m, m)));
        return (Ops.CompensatedSum(perStep), result.Gradients, result.Final);
    }

    /// <summary>What the loss kernel computes: the per-example losses (T×m, step after step), gradients, a⟨T⟩.</summary>
    private sealed record StepLosses(double[] Losses, RnnParameters Gradients, ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0, Matrix<double> Final);

    private static StepLosses LossAndGradientsOfSteps(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, ImmutableArray<int> lengths, int every, int threads, bool inputGradients)
    {
        var (steps, m) = (xs.Length, a0.ColumnCount);
        var dx = inputGradients ? Fresh(steps, p.InputSize, m) : default;
        var (da0, final) = (Block.Fresh(p.HiddenSize, m), Block.Fresh(p.HiddenSize, m));
        var losses = new double[steps * m];
        using var call = new Workspace();
        var w = Weights.Of(p, call);
        var gradients = new Gradients(p, Summation.Chunks(m).Length, call);
        Summation.ForEachChunk(Summation.Chunks(m), threads, (j0, mc, chunk) =>
        {
            using var c = new Chunk(w, j0, mc, steps, Mode.Loss, gradients.Of(chunk));
            Checkpointed(c, every, s => Block.Of(xs[s]).Slice(j0, mc), Block.Of(a0).Slice(j0, mc),
                SeedFromHead(labels, lengths, losses), inputGradients ? s => dx.Blocks[s].Slice(j0, mc) : null, final.Block.Slice(j0, mc));
            c.DaNext.Span.CopyTo(da0.Block.Slice(j0, mc).Span);
        });
        return new(losses, gradients.Sum(), inputGradients ? dx.Matrices : default, da0.Matrix, final.Matrix);
    }

    /// <summary>
    /// The forward and the backward of a chunk keeping a⟨τ⟩ only at τ = 0, k, 2k, … (k = <paramref name="every"/>):
    /// the backward runs over the segments last to first, recomputing each segment's states from its first carry.
    /// With k ≥ T there is one segment, whose states are all kept: the plain forward and backward.
    /// </summary>
    private static void Checkpointed(Chunk c, int every, Func<int, Block> x, Block a0, Seed seed, Func<int, Block>? dx, Block? final = null)
    {
        var (steps, m, na) = (c.Steps, c.M, c.W.P.HiddenSize);
        var segments = (steps + every - 1) / every;
        var carries = c.Scratch.Take(na, (segments - 1) * m);
        var passing = c.Scratch.Take(na, 2 * m);
        Block Carry(int i) => i == 0 ? a0 : carries.Slice((i - 1) * m, m);
        FoldForward(c, 0, (segments - 1) * every, x, t => t % every == 0 ? Carry(t / every) : passing.Slice(t % 2 * m, m));

        var kept = c.Scratch.Take(na, Math.Min(every, steps) * m);
        for (var i = segments - 1; i >= 0; i--)
        {
            var (s0, s1) = (i * every, Math.Min(steps, (i + 1) * every));
            var carry = Carry(i);
            Block State(int t) => t == s0 ? carry : kept.Slice((t - s0 - 1) * m, m);
            FoldForward(c, s0, s1, x, State);
            if (s1 == steps && final is { } last) State(steps).Span.CopyTo(last.Span);
            FoldBackward(c, s0, s1, x, State, seed, dx);
        }
    }

    /// <summary>
    /// Steps [s0, s1) of the forward fold, a time block at a time: U = Wax·X + ba for the block, then per step
    /// z⟨s⟩ = U⟨s⟩ + Waa·a⟨s⟩ and a⟨s+1⟩ = φ(z⟨s⟩), reading a⟨s⟩ from and writing a⟨s+1⟩ to <paramref name="state"/>.
    /// </summary>
    private static void FoldForward(Chunk c, int s0, int s1, Func<int, Block> x, Func<int, Block> state)
    {
        var (w, m) = (c.W, c.M);
        for (var b0 = s0; b0 < s1; b0 += c.BlockSteps)
        {
            var n = Math.Min(c.BlockSteps, s1 - b0);
            var (xb, u) = (c.XF.Slice(0, n * m), c.U.Slice(0, n * m));
            for (var s = b0; s < b0 + n; s++) x(s).Span.CopyTo(xb.Slice((s - b0) * m, m).Span);
            Ops.Multiply(u, w.Wax, false, xb, false);                                   // U = Wax·X
            Elementwise.AddToColumns(u.Span, w.Ba.Span);                                //     + ba
            for (var s = b0; s < b0 + n; s++)
            {
                var z = u.Slice((s - b0) * m, m);
                Ops.Multiply(z, w.Waa, false, state(s), false, beta: 1);                // z = U⟨s⟩ + Waa·a⟨s⟩
                Activate(w.P.Activation, z.Span, state(s + 1).Span);                    // a⟨s+1⟩ = φ(z)
            }
        }
    }

    /// <summary>
    /// Steps [s0, s1) of the reverse fold, last first, a piece of a time block at a time: the piece's states and
    /// inputs are gathered into the chunk's block, <paramref name="seed"/> puts the outside gradient da⟨s⟩ in dZ,
    /// then per step dz = φ'(a⟨s+1⟩) ⊙ (da⟨s⟩ + da_next) and da_next = Waaᵀ·dz. A time block is reduced once all its
    /// steps are done, which may take pieces from two segments.
    /// </summary>
    private static void FoldBackward(Chunk c, int s0, int s1, Func<int, Block> x, Func<int, Block> state, Seed seed, Func<int, Block>? dx)
    {
        var (w, m) = (c.W, c.M);
        foreach (var (p0, p1, b0, b1) in Summation.PiecesBackward(s0, s1, c.BlockSteps, c.Steps))
        {
            for (var s = p0; s < p1; s++)
            {
                x(s).Span.CopyTo(c.XB.Slice((s - b0) * m, m).Span);
                state(s + 1).Span.CopyTo(c.A.Slice((s - b0 + 1) * m, m).Span);
            }
            if (p0 == b0) state(b0).Span.CopyTo(c.A.Slice(0, m).Span);
            seed(c, p0, p1, b0);
            for (var s = p1 - 1; s >= p0; s--)
            {
                var dz = c.DZ.Slice((s - b0) * m, m);
                ActivationBackward(w.P.Activation, c.A.Slice((s - b0 + 1) * m, m).Span, dz.Span, c.DaNext.Span); // dz = φ'(a) ⊙ (da + da_next)
                Ops.Multiply(c.DaNext, w.WaaT, false, dz, false);                                              // da_next = Waaᵀ·dz
            }
            if (p0 == b0) ReduceBlock(c, b0, b1, dx);
        }
    }

    /// <summary>
    /// The sums over one time block [b0, b1): dWax += dZ·Xᵀ, dWaa += dZ·A_prevᵀ, dba += Σ_columns dZ (and for the
    /// loss dWya += dO·Aᵀ, dby += Σ_columns dO), and dX = Waxᵀ·dZ for its steps when <paramref name="dx"/> is given.
    /// </summary>
    private static void ReduceBlock(Chunk c, int b0, int b1, Func<int, Block>? dx)
    {
        var (w, g, m, columns) = (c.W, c.Sums, c.M, (b1 - b0) * c.M);
        var (dz, xb, aPrev, a) = (c.DZ.Slice(0, columns), c.XB.Slice(0, columns), c.A.Slice(0, columns), c.A.Slice(m, columns));
        Ops.Multiply(g.Wax, dz, false, xb, true, beta: 1);                              // dWax += dZ·Xᵀ
        Ops.Multiply(g.Waa, dz, false, aPrev, true, beta: 1);                           // dWaa += dZ·A_prevᵀ
        Elementwise.AddColumnsTo(dz.Span, g.Ba.Span);                                   // dba += Σ_columns dZ
        if (c.Mode == Mode.Loss) Softmax.AccumulateGradients(c.DO.Slice(0, columns), a, g.Wya, g.By); // dWya += dO·Aᵀ, dby += Σ dO
        if (dx is null) return;
        var dX = c.DX.Slice(0, columns);
        Ops.Multiply(dX, w.Wax, true, dz, false);                                       // dX = Waxᵀ·dZ
        for (var s = b0; s < b1; s++) dX.Slice((s - b0) * m, m).Span.CopyTo(dx(s).Span);
    }

    /// <summary>Puts the gradient that a⟨s+1⟩ receives from outside the recurrence into dZ, for the steps [p0, p1) of the time block from b0.</summary>
    private delegate void Seed(Chunk c, int p0, int p1, int b0);

    /// <summary>The outside gradients given by the caller.</summary>
    private static Seed SeedFrom(ImmutableArray<Matrix<double>> da) => (c, p0, p1, b0) =>
    {
        for (var s = p0; s < p1; s++) Block.Of(da[s]).Slice(c.J0, c.M).Span.CopyTo(c.DZ.Slice((s - b0) * c.M, c.M).Span);
    };

    /// <summary>The outside gradients from the read-out's cross-entropy, dO = softmax(Wya·a + by) − onehot and da = Wyaᵀ·dO.</summary>
    private static Seed SeedFromHead(ImmutableArray<ImmutableArray<int>> labels, ImmutableArray<int> lengths, double[] losses) => (c, p0, p1, b0) =>
    {
        var (w, m, columns) = (c.W, c.M, (p1 - p0) * c.M);
        Softmax.CrossEntropy(w.Wya, w.By, c.A.Slice((p0 - b0 + 1) * m, columns), c.DO.Slice((p0 - b0) * m, columns),
            c.DZ.Slice((p0 - b0) * m, columns), labels, lengths, losses, p0, c.J0, m);
    };

    private static void Activate(Activation activation, ReadOnlySpan<double> z, Span<double> a)
    {
        if (activation == Activation.Tanh) Elementwise.Tanh(z, a);
        else Elementwise.Relu(z, a);
    }

    private static void ActivationBackward(Activation activation, ReadOnlySpan<double> a, Span<double> d, ReadOnlySpan<double> daNext)
    {
        if (activation == Activation.Tanh) Elementwise.TanhBackward(a, d, daNext);
        else Elementwise.ReluBackward(a, d, daNext);
    }

    /// <summary>T fresh matrices of rows×m for results that the kernel overwrites entirely, with their storage as blocks.</summary>
    private static (ImmutableArray<Matrix<double>> Matrices, Block[] Blocks) Fresh(int steps, int rows, int m)
    {
        var fresh = Enumerable.Range(0, steps).Select(_ => Block.FreshUninitialized(rows, m)).ToArray();
        return (fresh.Select(f => f.Matrix).ToImmutableArray(), fresh.Select(f => f.Block).ToArray());
    }

    /// <summary>What a chunk computes.</summary>
    private enum Mode { Forward, Backward, Loss }

    /// <summary>
    /// The parameters as blocks, with Waaᵀ stored once for a backward so that the per-step Waaᵀ·dz reads it in place
    /// (a product has the same bits whether it reads Aᵀ or A transposed).
    /// </summary>
    private sealed record Weights(RnnParameters P, Block Wax, Block Waa, Block WaaT, Block Ba, Block Wya, Block By)
    {
        public static Weights Of(RnnParameters p, Workspace call, bool backward = true)
        {
            var waa = Block.Of(p.Waa);
            var waaT = backward ? call.Take(waa.Columns, waa.Rows) : default;
            if (backward)
                for (var i = 0; i < waa.Rows; i++)
                    for (var j = 0; j < waa.Columns; j++) waaT.Data[i * waaT.Rows + j] = waa.Data[j * waa.Rows + i];
            return new(p, Block.Of(p.Wax), waa, waaT, Block.Of(p.Ba), Block.Of(p.Wya), Block.Of(p.By));
        }
    }

    /// <summary>Parameter gradients being summed: one set per chunk, the first being the result itself.</summary>
    private sealed record GradientSums(Block Wax, Block Waa, Block Ba, Block Wya, Block By);

    /// <summary>The gradient sums of every chunk and their total, added chunk after chunk.</summary>
    private sealed class Gradients
    {
        private readonly RnnParameters result;
        private readonly GradientSums[] sums;

        public Gradients(RnnParameters p, int chunks, Workspace call)
        {
            var (wax, waa, ba) = (Block.Fresh(p.HiddenSize, p.InputSize), Block.Fresh(p.HiddenSize, p.HiddenSize), Block.Fresh(p.HiddenSize, 1));
            var (wya, by) = (Block.Fresh(p.OutputSize, p.HiddenSize), Block.Fresh(p.OutputSize, 1));
            result = p with { Wax = wax.Matrix, Waa = waa.Matrix, Ba = ba.Matrix.Column(0), Wya = wya.Matrix, By = by.Matrix.Column(0) };
            sums = new GradientSums[chunks];
            sums[0] = new(Block.Of(result.Wax), Block.Of(result.Waa), Block.Of(result.Ba), Block.Of(result.Wya), Block.Of(result.By));
            for (var c = 1; c < chunks; c++)
                sums[c] = new(call.Zeros(p.HiddenSize, p.InputSize), call.Zeros(p.HiddenSize, p.HiddenSize), call.Zeros(p.HiddenSize, 1),
                              call.Zeros(p.OutputSize, p.HiddenSize), call.Zeros(p.OutputSize, 1));
        }

        public GradientSums Of(int chunk) => sums[chunk];

        /// <summary>The first chunk's sums plus the others in chunk order.</summary>
        public RnnParameters Sum()
        {
            var total = sums[0];
            foreach (var other in sums.Skip(1))
            {
                System.Numerics.Tensors.TensorPrimitives.Add(total.Wax.Span, other.Wax.Span, total.Wax.Span);
                System.Numerics.Tensors.TensorPrimitives.Add(total.Waa.Span, other.Waa.Span, total.Waa.Span);
                System.Numerics.Tensors.TensorPrimitives.Add(total.Ba.Span, other.Ba.Span, total.Ba.Span);
                System.Numerics.Tensors.TensorPrimitives.Add(total.Wya.Span, other.Wya.Span, total.Wya.Span);
                System.Numerics.Tensors.TensorPrimitives.Add(total.By.Span, other.By.Span, total.By.Span);
            }
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
            (XF, U) = (Scratch.Take(nx, columns), Scratch.Take(na, columns));
            if (mode == Mode.Forward) return;
            (XB, A, DZ, DX, DaNext) = (Scratch.Take(nx, columns), Scratch.Take(na, columns + m), Scratch.Take(na, columns),
                                       Scratch.Take(nx, columns), Scratch.Zeros(na, m));
            if (mode == Mode.Loss) DO = Scratch.Take(ny, columns);
        }

        public Weights W { get; }
        public int J0 { get; }
        public int M { get; }
        public int Steps { get; }
        public Mode Mode { get; }
        public GradientSums Sums { get; }

        /// <summary>Steps per time block.</summary>
        public int BlockSteps { get; }

        public Workspace Scratch { get; } = new();

        /// <summary>Forward: the block's inputs X (n_x × block) and U = Wax·X + ba, then z (n_a × block).</summary>
        public Block XF { get; }
        public Block U { get; }

        /// <summary>Backward: the block's inputs X, states [a⟨b0⟩ … a⟨b1⟩] (one more step than the block), dZ, dO, dX.</summary>
        public Block XB { get; }
        public Block A { get; }
        public Block DZ { get; }
        public Block DO { get; }
        public Block DX { get; }

        /// <summary>da_next = Waaᵀ·dz of the step after the current one; da⟨0⟩ at the end.</summary>
        public Block DaNext { get; }

        public void Dispose() => Scratch.Dispose();
    }

    // ---- checks ----

    private static Problem[] CheckParameters(RnnParameters? p)
    {
        if (p is null) return [new(nameof(p), "expected p to be RnnParameters but got null")];
        var (na, nx, ny) = (p.Wax?.RowCount ?? p.Waa?.RowCount ?? 0, p.Wax?.ColumnCount ?? 0, p.Wya?.RowCount ?? p.By?.Count ?? 0);
        return Shapes.All(
            Shapes.Matrix(nameof(p), nameof(p.Wax), p.Wax, na, nx, "n_a×n_x"),
            Shapes.Matrix(nameof(p), nameof(p.Waa), p.Waa, na, na, "n_a×n_a"),
            Shapes.Vector(nameof(p), nameof(p.Ba), p.Ba, na, "n_a"),
            Shapes.Matrix(nameof(p), nameof(p.Wya), p.Wya, ny, na, "n_y×n_a"),
            Shapes.Vector(nameof(p), nameof(p.By), p.By, ny, "n_y"));
    }

    private static Problem[] CheckCellForward(RnnParameters p, Matrix<double> xt, Matrix<double> aPrev)
    {
        var parameters = CheckParameters(p);
        if (parameters.Length > 0) return parameters;
        var m = xt?.ColumnCount ?? aPrev?.ColumnCount ?? 0;
        return Shapes.All(
            Shapes.Matrix(nameof(xt), nameof(xt), xt, p.InputSize, m, "n_x×m"),
            Shapes.Matrix(nameof(aPrev), nameof(aPrev), aPrev, p.HiddenSize, m, "n_a×m"));
    }

    private static Problem[] CheckForward(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0)
    {
        var parameters = CheckParameters(p);
        if (parameters.Length > 0) return parameters;
        var m = BatchSize(xs, a0);
        return Shapes.All(
            Shapes.Sequence(nameof(xs), xs, p.InputSize, m, "n_x×m"),
            Shapes.Matrix(nameof(a0), nameof(a0), a0, p.HiddenSize, m, "n_a×m"));
    }

    private static Problem[] CheckBackward(RnnForward forward, ImmutableArray<Matrix<double>> da) =>
        forward is null
            ? [new(nameof(forward), "expected forward to be the result of Rnn.Forward but got null")]
            : Shapes.All(Shapes.Sequence(nameof(da), da, forward.Parameters.HiddenSize, forward.States[0].ColumnCount, "n_a×m", forward.States.Length));

    private static Problem[] CheckLoss(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels)
    {
        var forward = CheckForward(p, xs, a0);
        return forward.Length > 0 ? forward : Shapes.All(Shapes.Labels(nameof(labels), labels, xs.Length, BatchSize(xs, a0), p.OutputSize));
    }

    private static Problem[] CheckBackwardCheckpointed(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<Matrix<double>> da, int every)
    {
        var forward = CheckForward(p, xs, a0);
        return forward.Length > 0
            ? forward
            : Shapes.All(Shapes.Sequence(nameof(da), da, p.HiddenSize, BatchSize(xs, a0), "n_a×m", xs.Length), Shapes.AtLeast(nameof(every), every, 1));
    }

    private static Problem[] CheckLossCheckpointed(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, int every) =>
        Shapes.All(CheckLoss(p, xs, a0, labels), Shapes.AtLeast(nameof(every), every, 1));

    private static int BatchSize(ImmutableArray<Matrix<double>> xs, Matrix<double>? a0) =>
        !xs.IsDefaultOrEmpty && xs[0] is { } x0 ? x0.ColumnCount : a0?.ColumnCount ?? 0;
}
