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
    : IParameterTree<GruParameters>
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
    public ImmutableArray<Leaf> ToLeaves() =>
    [
        Leaf.Of(nameof(Wih), Wih), Leaf.Of(nameof(Whh), Whh), Leaf.Of(nameof(Bih), Bih), Leaf.Of(nameof(Bhh), Bhh),
        Leaf.Of(nameof(Wy), Wy), Leaf.Of(nameof(By), By),
    ];

    /// <inheritdoc />
    [Pure]
    public GruParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(ToLeaves(), leaves, l => this with
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
        : base(Parameters, States, new Lazy<ImmutableArray<Matrix<double>>>(Predictions), Caches)
    {
    }

    /// <summary>A forward result whose predictions are computed when first read.</summary>
    /// <param name="parameters">The parameters the sequence ran with.</param>
    /// <param name="states">h⟨1⟩..h⟨T⟩, each n_a×m.</param>
    /// <param name="predictions">How to compute ŷ⟨1⟩..ŷ⟨T⟩.</param>
    /// <param name="caches">One cache per step, in time order.</param>
    internal GruForward(GruParameters parameters, ImmutableArray<Matrix<double>> states, Lazy<ImmutableArray<Matrix<double>>> predictions, ImmutableArray<GruCache> caches)
        : base(parameters, states, predictions, caches)
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

/// <summary>
/// The GRU as PyTorch's nn.GRU computes it: r = σ(W_ir·x⟨t⟩ + b_ir + W_hr·h⟨t−1⟩ + b_hr),
/// z = σ(W_iz·x⟨t⟩ + b_iz + W_hz·h⟨t−1⟩ + b_hz), n = tanh(W_in·x⟨t⟩ + b_in + r⊙(W_hn·h⟨t−1⟩ + b_hn)),
/// h⟨t⟩ = (1 − z)⊙n + z⊙h⟨t−1⟩, ŷ⟨t⟩ = softmax(Wy·h⟨t⟩ + by), with data laid out one column per example. The hidden
/// state h⟨t⟩ is called a⟨t⟩ in the API, as for every cell. Every function validates its arguments (throwing
/// <see cref="ArgumentException"/> that names the argument and the expected shape), then runs a pure kernel. The
/// <c>Try</c> variants return the same checks as a <see cref="Validation{FAIL,SUCCESS}"/> listing every problem.
/// </summary>
public static class Gru
{
    /// <summary>The GRU cell as a value, for <see cref="Recurrence"/>: its carry and its output are both h⟨t⟩.</summary>
    public static Cell<GruParameters, Matrix<double>, GruCache> Cell { get; } =
        new((p, aPrev, xt) => { var (a, cache) = Step(p, xt, aPrev); return new(a, a, cache); },
            (cache, daNext, daOut) => { var g = Back(Ops.Add(daNext, daOut), cache); return new(g.DaPrev, g.Dxt, g.Gradients); },
            a => [a],
            parts => parts[0]);

    // ---- the cell: forward and backward, line for line like the math ----

    private static (Matrix<double> A, GruCache Cache) Step(GruParameters p, Matrix<double> xt, Matrix<double> hPrev)
    {
        var na = p.HiddenSize;
        var gi = Ops.Affine(p.Wih, xt, p.Bih);                                          // gi = Wih·x + b_ih  = [gi_r; gi_z; gi_n]
        var gh = Ops.Affine(p.Whh, hPrev, p.Bhh);                                       // gh = Whh·h_prev + b_hh = [gh_r; gh_z; gh_n]
        var r = Ops.Sigmoid(Ops.Add(Ops.Rows(gi, 0, na), Ops.Rows(gh, 0, na)));         // r = σ(gi_r + gh_r)
        var z = Ops.Sigmoid(Ops.Add(Ops.Rows(gi, na, na), Ops.Rows(gh, na, na)));       // z = σ(gi_z + gh_z)
        var hn = Ops.Rows(gh, 2 * na, na);                                              // hn = W_hn·h_prev + b_hn
        var n = Ops.Tanh(Ops.Add(Ops.Rows(gi, 2 * na, na), Ops.Hadamard(r, hn)));       // n = tanh(gi_n + r⊙hn)
        var h = Ops.Add(Ops.Hadamard(Ops.OneMinus(z), n), Ops.Hadamard(z, hPrev));      // h = (1 − z)⊙n + z⊙h_prev
        return (h, new(p, xt, hPrev, r, z, n, hn, h));
    }

    private static GruCellGradient Back(Matrix<double> dh, GruCache cache)
    {
        var (p, xt, hPrev, r, z, n, hn) = (cache.Parameters, cache.Xt, cache.APrev, cache.R, cache.Z, cache.N, cache.Hn);
        var dn = Ops.Hadamard(dh, Ops.OneMinus(z));                                     // dn = dh⊙(1 − z)
        var dz = Ops.Hadamard(dh, Ops.Subtract(hPrev, n));                              // dz = dh⊙(h_prev − n)
        var dgn = Ops.TanhBackward(n, dn);                                              // dgi_n = dn⊙(1 − n²)
        var dr = Ops.Hadamard(dgn, hn);                                                 // dr = dgi_n⊙hn
        var dhn = Ops.Hadamard(dgn, r);                                                 // dgh_n = dgi_n⊙r
        var dgr = Ops.SigmoidBackward(r, dr);                                           // dgi_r = dgh_r = dr⊙r⊙(1 − r)
        var dgz = Ops.SigmoidBackward(z, dz);                                           // dgi_z = dgh_z = dz⊙z⊙(1 − z)
        var dgi = Ops.StackRows(dgr, dgz, dgn);                                         // dgi = [dgi_r; dgi_z; dgi_n]
        var dgh = Ops.StackRows(dgr, dgz, dhn);                                         // dgh = [dgh_r; dgh_z; dgh_n]
        var dxt = Ops.MulTA(p.Wih, dgi);                                                // dx = Wihᵀ·dgi
        var dhPrev = Ops.Add(Ops.MulTA(p.Whh, dgh), Ops.Hadamard(dh, z));               // dh_prev = Whhᵀ·dgh + dh⊙z
        var gradients = p with
        {
            Wih = Ops.MulTB(dgi, xt), Whh = Ops.MulTB(dgh, hPrev),                      // dWih = dgi·xᵀ, dWhh = dgh·h_prevᵀ
            Bih = Ops.RowSums(dgi), Bhh = Ops.RowSums(dgh),                             // dbih = Σ_columns dgi, dbhh = Σ_columns dgh
            Wy = Matrix<double>.Build.Dense(p.OutputSize, p.HiddenSize), By = Vector<double>.Build.Dense(p.OutputSize),
        };
        return new(dxt, dhPrev, gradients);
    }

    // ---- public API ----

    /// <summary>One step of the cell and its read-out.</summary>
    /// <param name="p">Parameters: Wih 3n_a×n_x, Whh 3n_a×n_a, Bih and Bhh 3n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xt">x⟨t⟩, n_x×m.</param>
    /// <param name="aPrev">h⟨t−1⟩, n_a×m.</param>
    /// <returns>h⟨t⟩ (n_a×m), ŷ⟨t⟩ (n_y×m) and the cache for <see cref="CellBackward"/>.</returns>
    [Pure]
    public static GruStep CellForward(GruParameters p, Matrix<double> xt, Matrix<double> aPrev)
    {
        Shapes.ThrowIfAny(CheckCellForward(p, xt, aPrev));
        var (a, cache) = Step(p, xt, aPrev);
        return new(a, Softmax.Predict(p.Wy, p.By, a), cache);
    }

    /// <summary>
    /// The backward of one step: dn = dh⊙(1 − z), dz = dh⊙(h⟨t−1⟩ − n), dgi_n = dn⊙(1 − n²), dr = dgi_n⊙hn,
    /// dgh_n = dgi_n⊙r, dgi_r = dgh_r = dr⊙r⊙(1 − r), dgi_z = dgh_z = dz⊙z⊙(1 − z); dWih = dgi·x⟨t⟩ᵀ,
    /// dWhh = dgh·h⟨t−1⟩ᵀ, dbih = Σ_columns dgi, dbhh = Σ_columns dgh, dx⟨t⟩ = Wihᵀ·dgi,
    /// dh⟨t−1⟩ = Whhᵀ·dgh + dh⊙z.
    /// </summary>
    /// <param name="da">The whole gradient dh with respect to h⟨t⟩, n_a×m.</param>
    /// <param name="cache">The step's cache from <see cref="CellForward"/>.</param>
    /// <returns>dx⟨t⟩ (n_x×m), dh⟨t−1⟩ (n_a×m) and the gradients, whose read-out entries are zero.</returns>
    [Pure]
    public static GruCellGradient CellBackward(Matrix<double> da, GruCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        Shapes.ThrowIfAny(Shapes.All(Shapes.Matrix(nameof(da), nameof(da), da, cache.Parameters.HiddenSize, cache.A.ColumnCount, "n_a×m")));
        return Back(da, cache);
    }

    /// <summary>The forward pass over a sequence: a fold of the cell that keeps every cache.</summary>
    /// <param name="p">Parameters: Wih 3n_a×n_x, Whh 3n_a×n_a, Bih and Bhh 3n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">h⟨0⟩, n_a×m.</param>
    /// <returns>The states h⟨1⟩..h⟨T⟩, the predictions ŷ⟨1⟩..ŷ⟨T⟩ and the caches.</returns>
    [Pure]
    public static GruForward Forward(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0)
    {
        Shapes.ThrowIfAny(CheckForward(p, xs, a0));
        return ForwardKernel(p, xs, a0, Rnn.DefaultThreads);
    }

    /// <summary><see cref="Forward"/> with its checks as a value: every problem found, or the result.</summary>
    /// <param name="p">As in <see cref="Forward"/>.</param>
    /// <param name="xs">As in <see cref="Forward"/>.</param>
    /// <param name="a0">As in <see cref="Forward"/>.</param>
    [Pure]
    public static Validation<Error, GruForward> TryForward(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) =>
        Shapes.ToValidation(CheckForward(p, xs, a0), () => ForwardKernel(p, xs, a0, Rnn.DefaultThreads));

    /// <summary>
    /// Back-propagation through time: a reverse fold over the caches threading dh_next, with
    /// <see cref="CellBackward"/> applied at every step to da⟨t⟩ + dh_next, and dh_next = 0 at t = T.
    /// </summary>
    /// <param name="forward">The result of <see cref="Forward"/>.</param>
    /// <param name="da">da⟨1⟩..da⟨T⟩, each n_a×m: the gradient each h⟨t⟩ receives from outside the recurrence.</param>
    /// <returns>dx⟨1⟩..dx⟨T⟩, dh⟨0⟩ and the summed gradients (read-out entries zero).</returns>
    [Pure]
    public static GruGradient Backward(GruForward forward, ImmutableArray<Matrix<double>> da)
    {
        Shapes.ThrowIfAny(CheckBackward(forward, da));
        return BackwardKernel(forward, da, Rnn.DefaultThreads);
    }

    /// <summary><see cref="Backward"/> with its checks as a value.</summary>
    /// <param name="forward">As in <see cref="Backward"/>.</param>
    /// <param name="da">As in <see cref="Backward"/>.</param>
    [Pure]
    public static Validation<Error, GruGradient> TryBackward(GruForward forward, ImmutableArray<Matrix<double>> da) =>
        Shapes.ToValidation(CheckBackward(forward, da), () => BackwardKernel(forward, da, Rnn.DefaultThreads));

    /// <summary>
    /// The summed softmax cross-entropy of the read-out, Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j] (computed from the
    /// logits with a per-column log-sum-exp), and its exact gradients.
    /// </summary>
    /// <param name="p">Parameters: Wih 3n_a×n_x, Whh 3n_a×n_a, Bih and Bhh 3n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">h⟨0⟩, n_a×m.</param>
    /// <param name="labels">T rows of m class indices: labels[t][j] ∈ [0, n_y) is the class of example j at step t.</param>
    [Pure]
    public static GruLoss LossAndGradients(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels)
    {
        Shapes.ThrowIfAny(CheckLoss(p, xs, a0, labels));
        return LossKernel(p, xs, a0, labels, Rnn.DefaultThreads);
    }

    /// <summary><see cref="LossAndGradients"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="a0">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradients"/>.</param>
    [Pure]
    public static Validation<Error, GruLoss> TryLossAndGradients(GruParameters p, ImmutableArray<Matrix<double>> xs,
        Matrix<double> a0, ImmutableArray<ImmutableArray<int>> labels) =>
        Shapes.ToValidation(CheckLoss(p, xs, a0, labels), () => LossKernel(p, xs, a0, labels, Rnn.DefaultThreads));

    /// <summary>Checks that the parameters are finite and consistent with each other.</summary>
    /// <param name="p">Parameters to check.</param>
    /// <returns>The parameters, or every problem found.</returns>
    [Pure]
    public static Validation<Error, GruParameters> Validate(GruParameters p) => Shapes.ToValidation(CheckParameters(p), () => p);

    // ---- kernels: arguments already checked ----
    //
    // Sequence kernels as for the RNN (Rnn.cs): per time block gi = Wih·X + b_ih is one product; per step
    // gh = Whh·h⟨t−1⟩ + b_hh and the element-wise cell, with the bits of Step; in the backward, per step the
    // element-wise backward of Back and dh_prev = Whhᵀ·dgh + dh⊙z, per block dWih += dGI·Xᵀ, dWhh += dGH·H_prevᵀ,
    // the bias sums and dX = Wihᵀ·dGI, summed in the order of Summation.

    internal static GruForward ForwardKernel(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, int threads)
    {
        var (steps, m) = (xs.Length, a0.ColumnCount);
        var outputs = new Outputs(steps, p.HiddenSize, m);
        using var call = new Workspace();
        var w = Weights.Of(p, call, backward: false);
        Summation.ForEachChunk(Summation.Chunks(m), threads, (j0, mc, _) =>
        {
            using var c = new Chunk(w, j0, mc, steps, Mode.Forward);
            FoldForward(c, s => Block.Of(xs[s]).Slice(j0, mc), Block.Of(a0).Slice(j0, mc), s => outputs.At(s, j0, mc));
        });
        var caches = Enumerable.Range(0, steps).Select(s => new GruCache(p, xs[s], s == 0 ? a0 : outputs.A[s - 1],
            outputs.R[s], outputs.Z[s], outputs.N[s], outputs.Hn[s], outputs.A[s])).ToImmutableArray();
        ImmutableArray<Matrix<double>> states = [.. outputs.A];
        return new(p, states, Softmax.PredictionsWhenRead(p.Wy, p.By, states), caches);
    }

    internal static GruGradient BackwardKernel(GruForward forward, ImmutableArray<Matrix<double>> da, int threads)
    {
        var (p, caches) = (forward.Parameters, forward.Caches);
        var (steps, m) = (da.Length, da[0].ColumnCount);
        var dx = Outputs.Fresh(steps, p.InputSize, m);
        var da0 = Block.Fresh(p.HiddenSize, m);
        using var call = new Workspace();
        var w = Weights.Of(p, call);
        var gradients = new Gradients(p, Summation.Chunks(m).Length, call);
        Summation.ForEachChunk(Summation.Chunks(m), threads, (j0, mc, chunk) =>
        {
            using var c = new Chunk(w, j0, mc, steps, Mode.Backward, gradients.Of(chunk));
            FoldBackward(c, s => Block.Of(caches[s].Xt).Slice(j0, mc), Block.Of(caches[0].APrev).Slice(j0, mc),
                s => Record.Of(caches[s], j0, mc), (c, p0, p1, b0) =>
                {
                    for (var s = p0; s < p1; s++) Block.Of(da[s]).Slice(j0, mc).Span.CopyTo(c.DA.Slice((s - b0) * mc, mc).Span);
                }, s => dx.Blocks[s].Slice(j0, mc));
            c.DaNext.Span.CopyTo(da0.Block.Slice(j0, mc).Span);
        });
        return new(dx.Matrices, da0.Matrix, gradients.Sum());
    }

    internal static GruLoss LossKernel(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, int threads)
    {
        var result = LossAndGradientsOfSteps(p, xs, a0, labels, default, threads, inputGradients: true);
        return new(Ops.CompensatedSum(result.Losses), result.Gradients, result.Dx, result.Da0);
    }

    /// <summary>
    /// The loss of a ragged batch of next-token targets, for <see cref="LanguageModel.Gru"/>: example j takes part
    /// only for its first lengths[j] steps, the loss is summed per step then over the steps, dx is not computed, and
    /// h⟨T⟩ is returned.
    /// </summary>
    internal static (double Loss, GruParameters Gradients, Matrix<double> Final) NextTokenLossKernel(GruParameters p,
        ImmutableArray<Matrix<double>> xs, Matrix<double> a0, ImmutableArray<ImmutableArray<int>> targets, ImmutableArray<int> lengths, int threads)
    {
        var result = LossAndGradientsOfSteps(p, xs, a0, targets, lengths, threads, inputGradients: false);
        var m = a0.ColumnCount;
        var perStep = Enumerable.Range(0, xs.Length).Select(s => Ops.CompensatedSum(new ArraySegment<double>(result.Losses, s * m, m)));
        return (Ops.CompensatedSum(perStep), result.Gradients, result.Final);
    }

    /// <summary>What the loss kernel computes: the per-example losses (T×m, step after step), gradients, h⟨T⟩.</summary>
    private sealed record StepLosses(double[] Losses, GruParameters Gradients, ImmutableArray<Matrix<double>> Dx, Matrix<double> Da0, Matrix<double> Final);

    private static StepLosses LossAndGradientsOfSteps(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, ImmutableArray<int> lengths, int threads, bool inputGradients)
    {
        var (steps, m, na) = (xs.Length, a0.ColumnCount, p.HiddenSize);
        var dx = inputGradients ? Outputs.Fresh(steps, p.InputSize, m) : default;
        var (da0, final) = (Block.Fresh(na, m), Block.Fresh(na, m));
        var losses = new double[steps * m];
        using var call = new Workspace();
        var w = Weights.Of(p, call);
        var gradients = new Gradients(p, Summation.Chunks(m).Length, call);
        Summation.ForEachChunk(Summation.Chunks(m), threads, (j0, mc, chunk) =>
        {
            using var c = new Chunk(w, j0, mc, steps, Mode.Loss, gradients.Of(chunk));
            var kept = new Block[5];
            for (var k = 0; k < kept.Length; k++) kept[k] = c.Scratch.Take(na, steps * mc);
            Record Kept(int s) => new(kept[0].Slice(s * mc, mc), kept[1].Slice(s * mc, mc), kept[2].Slice(s * mc, mc),
                                      kept[3].Slice(s * mc, mc), kept[4].Slice(s * mc, mc));
            Func<int, Block> x = s => Block.Of(xs[s]).Slice(j0, mc);
            var h0 = Block.Of(a0).Slice(j0, mc);
            FoldForward(c, x, h0, Kept);
            Kept(steps - 1).A.Span.CopyTo(final.Block.Slice(j0, mc).Span);
            FoldBackward(c, x, h0, Kept, (c, p0, p1, b0) =>
                Softmax.CrossEntropy(w.Wy, w.By, c.AB.Slice(0, (p1 - p0) * mc), c.DO.Slice(0, (p1 - p0) * mc), c.DA.Slice(0, (p1 - p0) * mc),
                    labels, lengths, losses, p0, j0, mc), inputGradients ? s => dx.Blocks[s].Slice(j0, mc) : null);
            c.DaNext.Span.CopyTo(da0.Block.Slice(j0, mc).Span);
        });
        return new(losses, gradients.Sum(), inputGradients ? dx.Matrices : default, da0.Matrix, final.Matrix);
    }

    /// <summary>
    /// The forward fold over the chunk, a time block at a time: GI = Wih·X + b_ih for the block's steps, then per step
    /// gh = Whh·h⟨s−1⟩ + b_hh and the cell, writing step s's values into <paramref name="record"/>(s).
    /// </summary>
    private static void FoldForward(Chunk c, Func<int, Block> x, Block h0, Func<int, Record> record)
    {
        var (w, m, na) = (c.W, c.M, c.W.P.HiddenSize);
        for (var b0 = 0; b0 < c.Steps; b0 += c.BlockSteps)
        {
            var n = Math.Min(c.BlockSteps, c.Steps - b0);
            var (xb, gi) = (c.XF.Slice(0, n * m), c.GI.Slice(0, n * m));
            for (var s = b0; s < b0 + n; s++) x(s).Span.CopyTo(xb.Slice((s - b0) * m, m).Span);
            Ops.Multiply(gi, w.Wih, false, xb, false);                                           // gi = Wih·X
            Elementwise.AddToColumns(gi.Span, w.Bih.Span);                                       //      + b_ih
            for (var s = b0; s < b0 + n; s++)
            {
                var (hPrev, next) = (s == 0 ? h0 : record(s - 1).A, record(s));
                Ops.Multiply(c.GH, w.Whh, false, hPrev, false);                                  // gh = Whh·h_prev
                Elementwise.AddToColumns(c.GH.Span, w.Bhh.Span);                                 //      + b_hh
                UpdateCell(na, gi.Slice((s - b0) * m, m).Span, c.GH.Span, hPrev.Span, next, c.Sum.Span);
            }
        }
    }

    /// <summary>
    /// r = σ(gi_r + gh_r), z = σ(gi_z + gh_z), hn = gh_n, n = tanh(gi_n + r⊙hn), h = (1 − z)⊙n + z⊙h_prev, element
    /// by element as in Step; gi and gh hold [r; z; n] rows of n_a per column.
    /// </summary>
    private static void UpdateCell(int na, ReadOnlySpan<double> gi, ReadOnlySpan<double> gh, ReadOnlySpan<double> hPrev, Record next, Span<double> sum)
    {
        Span<double> r = next.R.Span, z = next.Z.Span, n = next.N.Span, hn = next.Hn.Span, h = next.A.Span;
        for (int j = 0, k = 0; k < sum.Length; j += 3 * na)
            for (var i = 0; i < na; i++, k++) sum[k] = gi[j + i] + gh[j + i];
        Elementwise.Sigmoid(sum, r);
        for (int j = na, k = 0; k < sum.Length; j += 3 * na)
            for (var i = 0; i < na; i++, k++) sum[k] = gi[j + i] + gh[j + i];
        Elementwise.Sigmoid(sum, z);
        for (int j = 2 * na, k = 0; k < sum.Length; j += 3 * na)
            for (var i = 0; i < na; i++, k++)
            {
                hn[k] = gh[j + i];
                sum[k] = gi[j + i] + r[k] * hn[k];
            }
        Elementwise.Tanh(sum, n);
        for (var k = 0; k < h.Length; k++) h[k] = (1.0 - z[k]) * n[k] + z[k] * hPrev[k];
    }

    /// <summary>
    /// The reverse fold over the chunk, a time block at a time, last first: the block's inputs and states are
    /// gathered, <paramref name="seed"/> puts the outside gradient da⟨s⟩ in DA, then per step the element-wise
    /// backward of Back and dh_prev = Whhᵀ·dgh + dh⊙z; then the block's sums.
    /// </summary>
    private static void FoldBackward(Chunk c, Func<int, Block> x, Block h0, Func<int, Record> record, Seed seed, Func<int, Block>? dx)
    {
        var (w, m, na) = (c.W, c.M, c.W.P.HiddenSize);
        foreach (var (b0, b1, _, _) in Summation.PiecesBackward(0, c.Steps, c.BlockSteps, c.Steps))
        {
            var columns = (b1 - b0) * m;
            for (var s = b0; s < b1; s++)
            {
                x(s).Span.CopyTo(c.XB.Slice((s - b0) * m, m).Span);
                (s == 0 ? h0 : record(s - 1).A).Span.CopyTo(c.AP.Slice((s - b0) * m, m).Span);
                record(s).A.Span.CopyTo(c.AB.Slice((s - b0) * m, m).Span);
            }
            seed(c, b0, b1, b0);
            for (var s = b1 - 1; s >= b0; s--)
            {
                var (hPrev, step) = (s == 0 ? h0 : record(s - 1).A, record(s));
                var (dgi, dgh) = (c.DGI.Slice((s - b0) * m, m), c.DGH.Slice((s - b0) * m, m));
                GatesBackward(na, c.DA.Slice((s - b0) * m, m).Span, c.DaNext.Span, hPrev.Span, step, dgi.Span, dgh.Span, c.Sum.Span);
                Ops.Multiply(c.DaNext, w.WhhT, false, dgh, false);                                // dh_prev = Whhᵀ·dgh
                AddProduct(c.DaNext.Span, c.Sum.Span, step.Z.Span);                               //          + dh⊙z
            }
            var (xb, hb, a, dGI, dGH) = (c.XB.Slice(0, columns), c.AP.Slice(0, columns), c.AB.Slice(0, columns), c.DGI.Slice(0, columns), c.DGH.Slice(0, columns));
            var g = c.Sums;
            Ops.Multiply(g.Wih, dGI, false, xb, true, beta: 1);                                    // dWih += dGI·Xᵀ
            Ops.Multiply(g.Whh, dGH, false, hb, true, beta: 1);                                    // dWhh += dGH·H_prevᵀ
            Elementwise.AddColumnsTo(dGI.Span, g.Bih.Span);                                        // db_ih += Σ_columns dGI
            Elementwise.AddColumnsTo(dGH.Span, g.Bhh.Span);                                        // db_hh += Σ_columns dGH
            if (c.Mode == Mode.Loss) Softmax.AccumulateGradients(c.DO.Slice(0, columns), a, g.Wy, g.By); // dWy += dO·Hᵀ, dby += Σ dO
            if (dx is null) continue;
            var dX = c.DX.Slice(0, columns);
            Ops.Multiply(dX, w.Wih, true, dGI, false);                                             // dX = Wihᵀ·dGI
            for (var s = b0; s < b1; s++) dX.Slice((s - b0) * m, m).Span.CopyTo(dx(s).Span);
        }
    }

    /// <summary>
    /// The element-wise backward of one step, as in Back with dh = dh_next + da_out (left in <paramref name="dh"/>):
    /// dgi = [dgr; dgz; dgn] and dgh = [dgr; dgz; dhn], n_a rows each per column.
    /// </summary>
    private static void GatesBackward(int na, ReadOnlySpan<double> daOut, ReadOnlySpan<double> dhNext, ReadOnlySpan<double> hPrev, Record step,
        Span<double> dgi, Span<double> dgh, Span<double> dh)
    {
        Span<double> r = step.R.Span, z = step.Z.Span, n = step.N.Span, hn = step.Hn.Span;
        for (int j = 0, k = 0; k < dh.Length; j += 3 * na)
            for (var i = 0; i < na; i++, k++)
            {
                var d = dh[k] = dhNext[k] + daOut[k];
                var dn = d * (1.0 - z[k]);                                 // dn = dh⊙(1 − z)
                var dz = d * (hPrev[k] - n[k]);                            // dz = dh⊙(h_prev − n)
                var dgn = dn * (1.0 - n[k] * n[k]);                        // dgi_n = dn⊙(1 − n²)
                var dr = dgn * hn[k];                                      // dr = dgi_n⊙hn
                var dgr = dr * r[k] * (1.0 - r[k]);                        // dgi_r = dgh_r = dr⊙r⊙(1 − r)
                var dgz = dz * z[k] * (1.0 - z[k]);                        // dgi_z = dgh_z = dz⊙z⊙(1 − z)
                (dgi[j + i], dgi[j + na + i], dgi[j + 2 * na + i]) = (dgr, dgz, dgn);
                (dgh[j + i], dgh[j + na + i], dgh[j + 2 * na + i]) = (dgr, dgz, dgn * r[k]); // dgh_n = dgi_n⊙r
            }
    }

    /// <summary>y ← y + a⊙b.</summary>
    private static void AddProduct(Span<double> y, ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        for (var k = 0; k < y.Length; k++) y[k] += a[k] * b[k];
    }

    /// <summary>Puts da⟨s⟩ from outside the recurrence into DA for the steps [p0, p1) of the time block from b0.</summary>
    private delegate void Seed(Chunk c, int p0, int p1, int b0);

    private enum Mode { Forward, Backward, Loss }

    /// <summary>The values of one step for one chunk: h⟨t⟩ and the gates.</summary>
    private readonly record struct Record(Block A, Block R, Block Z, Block N, Block Hn)
    {
        public static Record Of(GruCache cache, int j0, int m) =>
            new(Block.Of(cache.A).Slice(j0, m), Block.Of(cache.R).Slice(j0, m), Block.Of(cache.Z).Slice(j0, m),
                Block.Of(cache.N).Slice(j0, m), Block.Of(cache.Hn).Slice(j0, m));
    }

    /// <summary>Fresh matrices for the values of every step, overwritten entirely by the forward.</summary>
    private sealed class Outputs(int steps, int na, int m)
    {
        private readonly (ImmutableArray<Matrix<double>> Matrices, Block[] Blocks)[] parts = [.. Enumerable.Range(0, 5).Select(_ => Fresh(steps, na, m))];

        public ImmutableArray<Matrix<double>> A => parts[0].Matrices;
        public ImmutableArray<Matrix<double>> R => parts[1].Matrices;
        public ImmutableArray<Matrix<double>> Z => parts[2].Matrices;
        public ImmutableArray<Matrix<double>> N => parts[3].Matrices;
        public ImmutableArray<Matrix<double>> Hn => parts[4].Matrices;

        public Record At(int s, int j0, int width) =>
            new(parts[0].Blocks[s].Slice(j0, width), parts[1].Blocks[s].Slice(j0, width), parts[2].Blocks[s].Slice(j0, width),
                parts[3].Blocks[s].Slice(j0, width), parts[4].Blocks[s].Slice(j0, width));

        public static (ImmutableArray<Matrix<double>> Matrices, Block[] Blocks) Fresh(int steps, int rows, int m)
        {
            var fresh = Enumerable.Range(0, steps).Select(_ => Block.FreshUninitialized(rows, m)).ToArray();
            return (fresh.Select(f => f.Matrix).ToImmutableArray(), fresh.Select(f => f.Block).ToArray());
        }
    }

    /// <summary>The parameters as blocks, with Whhᵀ stored once for a backward.</summary>
    private sealed record Weights(GruParameters P, Block Wih, Block Whh, Block WhhT, Block Bih, Block Bhh, Block Wy, Block By)
    {
        public static Weights Of(GruParameters p, Workspace call, bool backward = true)
        {
            var whh = Block.Of(p.Whh);
            var whhT = backward ? call.Take(whh.Columns, whh.Rows) : default;
            if (backward)
                for (var i = 0; i < whh.Rows; i++)
                    for (var j = 0; j < whh.Columns; j++) whhT.Data[i * whhT.Rows + j] = whh.Data[j * whh.Rows + i];
            return new(p, Block.Of(p.Wih), whh, whhT, Block.Of(p.Bih), Block.Of(p.Bhh), Block.Of(p.Wy), Block.Of(p.By));
        }
    }

    /// <summary>Gradient sums of one chunk.</summary>
    private sealed record GradientSums(Block Wih, Block Whh, Block Bih, Block Bhh, Block Wy, Block By)
    {
        public IEnumerable<Block> All => [Wih, Whh, Bih, Bhh, Wy, By];
    }

    /// <summary>The gradient sums of every chunk and their total, added chunk after chunk.</summary>
    private sealed class Gradients
    {
        private readonly GruParameters result;
        private readonly GradientSums[] sums;

        public Gradients(GruParameters p, int chunks, Workspace call)
        {
            var (na, nx, ny) = (p.HiddenSize, p.InputSize, p.OutputSize);
            var (wih, whh, bih, bhh) = (Block.Fresh(3 * na, nx), Block.Fresh(3 * na, na), Block.Fresh(3 * na, 1), Block.Fresh(3 * na, 1));
            var (wy, by) = (Block.Fresh(ny, na), Block.Fresh(ny, 1));
            result = p with
            {
                Wih = wih.Matrix, Whh = whh.Matrix, Bih = bih.Matrix.Column(0), Bhh = bhh.Matrix.Column(0), Wy = wy.Matrix, By = by.Matrix.Column(0),
            };
            sums = new GradientSums[chunks];
            sums[0] = new(Block.Of(result.Wih), Block.Of(result.Whh), Block.Of(result.Bih), Block.Of(result.Bhh), Block.Of(result.Wy), Block.Of(result.By));
            for (var c = 1; c < chunks; c++)
                sums[c] = new(call.Zeros(3 * na, nx), call.Zeros(3 * na, na), call.Zeros(3 * na, 1), call.Zeros(3 * na, 1), call.Zeros(ny, na), call.Zeros(ny, 1));
        }

        public GradientSums Of(int chunk) => sums[chunk];

        /// <summary>The first chunk's sums plus the others in chunk order.</summary>
        public GruParameters Sum()
        {
            foreach (var other in sums.Skip(1))
                foreach (var (total, part) in sums[0].All.Zip(other.All))
                    System.Numerics.Tensors.TensorPrimitives.Add(total.Span, part.Span, total.Span);
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
            (XF, GI, GH, Sum) = (Scratch.Take(nx, columns), Scratch.Take(3 * na, columns), Scratch.Take(3 * na, m), Scratch.Take(na, m));
            if (mode == Mode.Forward) return;
            (XB, AP, AB, DA, DX) = (Scratch.Take(nx, columns), Scratch.Take(na, columns), Scratch.Take(na, columns), Scratch.Take(na, columns), Scratch.Take(nx, columns));
            (DGI, DGH, DaNext) = (Scratch.Take(3 * na, columns), Scratch.Take(3 * na, columns), Scratch.Zeros(na, m));
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

        /// <summary>Forward: the block's inputs, gi = Wih·X + b_ih, the step's gh, and a step-sized temporary.</summary>
        public Block XF { get; }
        public Block GI { get; }
        public Block GH { get; }
        public Block Sum { get; }

        /// <summary>Backward: the block's inputs, h⟨s−1⟩ and h⟨s⟩ side by side, da from outside, dgi, dgh, dO, dX.</summary>
        public Block XB { get; }
        public Block AP { get; }
        public Block AB { get; }
        public Block DA { get; }
        public Block DGI { get; }
        public Block DGH { get; }
        public Block DO { get; }
        public Block DX { get; }

        /// <summary>dh_next of the step after the current one; dh⟨0⟩ at the end.</summary>
        public Block DaNext { get; }

        public void Dispose() => Scratch.Dispose();
    }

    // ---- checks ----

    private static Problem[] CheckParameters(GruParameters? p)
    {
        if (p is null) return [new(nameof(p), "expected p to be GruParameters but got null")];
        static int? Third(int? rows) => rows is { } r && r % 3 == 0 ? r / 3 : null;
        var na = Shapes.Consensus(p.Whh?.ColumnCount, Third(p.Whh?.RowCount), Third(p.Wih?.RowCount),
                                  Third(p.Bih?.Count), Third(p.Bhh?.Count), p.Wy?.ColumnCount);
        var nx = p.Wih?.ColumnCount ?? 0;
        var ny = Shapes.Consensus(p.Wy?.RowCount, p.By?.Count);
        return Shapes.All(
            Shapes.Matrix(nameof(p), nameof(p.Wih), p.Wih, 3 * na, nx, "3n_a×n_x"),
            Shapes.Matrix(nameof(p), nameof(p.Whh), p.Whh, 3 * na, na, "3n_a×n_a"),
            Shapes.Vector(nameof(p), nameof(p.Bih), p.Bih, 3 * na, "3n_a"),
            Shapes.Vector(nameof(p), nameof(p.Bhh), p.Bhh, 3 * na, "3n_a"),
            Shapes.Matrix(nameof(p), nameof(p.Wy), p.Wy, ny, na, "n_y×n_a"),
            Shapes.Vector(nameof(p), nameof(p.By), p.By, ny, "n_y"));
    }

    private static Problem[] CheckCellForward(GruParameters p, Matrix<double> xt, Matrix<double> aPrev)
    {
        var parameters = CheckParameters(p);
        if (parameters.Length > 0) return parameters;
        var m = xt?.ColumnCount ?? aPrev?.ColumnCount ?? 0;
        return Shapes.All(
            Shapes.Matrix(nameof(xt), nameof(xt), xt, p.InputSize, m, "n_x×m"),
            Shapes.Matrix(nameof(aPrev), nameof(aPrev), aPrev, p.HiddenSize, m, "n_a×m"));
    }

    private static Problem[] CheckForward(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0)
    {
        var parameters = CheckParameters(p);
        if (parameters.Length > 0) return parameters;
        var m = BatchSize(xs, a0);
        return Shapes.All(
            Shapes.Sequence(nameof(xs), xs, p.InputSize, m, "n_x×m"),
            Shapes.Matrix(nameof(a0), nameof(a0), a0, p.HiddenSize, m, "n_a×m"));
    }

    private static Problem[] CheckBackward(GruForward forward, ImmutableArray<Matrix<double>> da) =>
        forward is null
            ? [new(nameof(forward), "expected forward to be the result of Gru.Forward but got null")]
            : Shapes.All(Shapes.Sequence(nameof(da), da, forward.Parameters.HiddenSize, forward.States[0].ColumnCount, "n_a×m", forward.States.Length));

    private static Problem[] CheckLoss(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels)
    {
        var forward = CheckForward(p, xs, a0);
        return forward.Length > 0 ? forward : Shapes.All(Shapes.Labels(nameof(labels), labels, xs.Length, BatchSize(xs, a0), p.OutputSize));
    }

    private static int BatchSize(ImmutableArray<Matrix<double>> xs, Matrix<double>? a0) =>
        !xs.IsDefaultOrEmpty && xs[0] is { } x0 ? x0.ColumnCount : a0?.ColumnCount ?? 0;
}
