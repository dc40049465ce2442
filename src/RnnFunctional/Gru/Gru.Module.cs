using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

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
    public static Cell<GruParameters, Matrix<double>, GruCache> Cell { get; } = CellOf.Hidden<GruParameters, GruCache>(Step, Back);

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

    private static (Matrix<double> Dxt, Matrix<double> DhPrev, GruParameters Gradients) Back(Matrix<double> dh, GruCache cache)
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
        return (dxt, dhPrev, gradients);
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
        Shapes.ThrowIfAny(Checks.Step(p, xt, aPrev));
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
        var (dxt, dhPrev, gradients) = Back(da, cache);
        return new(dxt, dhPrev, gradients);
    }

    /// <summary>The forward pass over a sequence: a fold of the cell that keeps every cache.</summary>
    /// <param name="p">Parameters: Wih 3n_a×n_x, Whh 3n_a×n_a, Bih and Bhh 3n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">h⟨0⟩, n_a×m.</param>
    /// <returns>The states h⟨1⟩..h⟨T⟩, the predictions ŷ⟨1⟩..ŷ⟨T⟩ and the caches.</returns>
    [Pure]
    public static GruForward Forward(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0)
    {
        Shapes.ThrowIfAny(Checks.Forward(p, xs, [a0]));
        return ForwardKernel(p, xs, a0, Rnn.DefaultThreads);
    }

    /// <summary><see cref="Forward"/> with its checks as a value: every problem found, or the result.</summary>
    /// <param name="p">As in <see cref="Forward"/>.</param>
    /// <param name="xs">As in <see cref="Forward"/>.</param>
    /// <param name="a0">As in <see cref="Forward"/>.</param>
    [Pure]
    public static Validation<Error, GruForward> TryForward(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) =>
        Shapes.ToValidation(Checks.Forward(p, xs, [a0]), () => ForwardKernel(p, xs, a0, Rnn.DefaultThreads));

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
        Shapes.ThrowIfAny(Checks.Backward(forward, da));
        return BackwardKernel(forward, da, Rnn.DefaultThreads);
    }

    /// <summary><see cref="Backward"/> with its checks as a value.</summary>
    /// <param name="forward">As in <see cref="Backward"/>.</param>
    /// <param name="da">As in <see cref="Backward"/>.</param>
    [Pure]
    public static Validation<Error, GruGradient> TryBackward(GruForward forward, ImmutableArray<Matrix<double>> da) =>
        Shapes.ToValidation(Checks.Backward(forward, da), () => BackwardKernel(forward, da, Rnn.DefaultThreads));

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
        Shapes.ThrowIfAny(Checks.Loss(p, xs, [a0], labels, null));
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
        Shapes.ToValidation(Checks.Loss(p, xs, [a0], labels, null), () => LossKernel(p, xs, a0, labels, Rnn.DefaultThreads));

    /// <summary>
    /// Backward(Forward(p, xs, a0), da) holding the states of O(√T) steps rather than every step's values: the forward
    /// keeps h⟨τ⟩ only at τ = 0, k, 2k, … (k = <paramref name="every"/>), and the backward recomputes each segment of
    /// k steps from its first state just before running over it, last segment first. The result is bitwise identical
    /// to the full backward, for any k.
    /// </summary>
    /// <param name="p">Parameters: Wih 3n_a×n_x, Whh 3n_a×n_a, Bih and Bhh 3n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">h⟨0⟩, n_a×m.</param>
    /// <param name="da">dh⟨1⟩..dh⟨T⟩, each n_a×m: the gradient each h⟨t⟩ receives from outside the recurrence.</param>
    /// <param name="every">k ≥ 1: the distance between kept states.</param>
    [Pure]
    public static GruGradient BackwardCheckpointed(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<Matrix<double>> da, int every)
    {
        Shapes.ThrowIfAny(Checks.BackwardCheckpointed(p, xs, [a0], da, every));
        return BackwardCheckpointedKernel(p, xs, a0, da, every, Rnn.DefaultThreads);
    }

    /// <summary><see cref="BackwardCheckpointed"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="xs">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="a0">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="da">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="every">As in <see cref="BackwardCheckpointed"/>.</param>
    [Pure]
    public static Validation<Error, GruGradient> TryBackwardCheckpointed(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<Matrix<double>> da, int every) =>
        Shapes.ToValidation(Checks.BackwardCheckpointed(p, xs, [a0], da, every), () => BackwardCheckpointedKernel(p, xs, a0, da, every, Rnn.DefaultThreads));

    /// <summary>
    /// <see cref="LossAndGradients"/> holding the states of O(√T) steps, as in <see cref="BackwardCheckpointed"/>:
    /// bitwise identical results, for any k.
    /// </summary>
    /// <param name="p">Parameters: Wih 3n_a×n_x, Whh 3n_a×n_a, Bih and Bhh 3n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">h⟨0⟩, n_a×m.</param>
    /// <param name="labels">T rows of m class indices: labels[t][j] ∈ [0, n_y) is the class of example j at step t.</param>
    /// <param name="every">k ≥ 1: the distance between kept states.</param>
    [Pure]
    public static GruLoss LossAndGradientsCheckpointed(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, int every)
    {
        Shapes.ThrowIfAny(Checks.LossCheckpointed(p, xs, [a0], labels, every));
        return LossKernel(p, xs, a0, labels, every, Rnn.DefaultThreads);
    }

    /// <summary><see cref="LossAndGradientsCheckpointed"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="a0">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="every">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    [Pure]
    public static Validation<Error, GruLoss> TryLossAndGradientsCheckpointed(GruParameters p, ImmutableArray<Matrix<double>> xs,
        Matrix<double> a0, ImmutableArray<ImmutableArray<int>> labels, int every) =>
        Shapes.ToValidation(Checks.LossCheckpointed(p, xs, [a0], labels, every),
            () => LossKernel(p, xs, a0, labels, every, Rnn.DefaultThreads));

    /// <summary>Checks that the parameters are finite and consistent with each other.</summary>
    /// <param name="p">Parameters to check.</param>
    /// <returns>The parameters, or every problem found.</returns>
    [Pure]
    public static Validation<Error, GruParameters> Validate(GruParameters p) => Shapes.ToValidation(CheckParameters(p), () => p);

    // ---- kernels: arguments already checked ----
    //
    // The sequence functions run on the library's sequence driver (Driver, with the cell's math in GruFused): per time
    // block GI = Wih·X + b_ih in one product, per step gh = Whh·h⟨t−1⟩ + b_hh and the element-wise cell, with the bits
    // of Step; in the backward, per step the element-wise backward and dh_prev = Whhᵀ·dgh + dh⊙z, per block the weight
    // gradients and dx, summed in the order of Summation.

    internal static GruForward ForwardKernel(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, int threads)
    {
        var run = Driver.Forward(GruFused.Of(p), xs, [a0], default, reverse: false, xs.Length, threads, outputs: false);
        var (wy, by) = (p.Wy.Clone(), p.By.Clone());
        return new(p, new(() => Driver.Part(run.Tape, 0)), new(() => Softmax.PredictionsWhenRead(wy, by, Driver.Part(run.Tape, 0)).Value), new(() =>
        {
            var (x, h0) = (Driver.Inputs(run.Tape), Driver.Initial(run.Tape)[0]);
            var part = Enumerable.Range(0, 5).Select(k => Driver.Part(run.Tape, k)).ToArray();
            return [.. Enumerable.Range(0, xs.Length).Select(s => new GruCache(p, x[s], s == 0 ? h0 : part[0][s - 1],
                part[1][s], part[2][s], part[3][s], part[4][s], part[0][s]))];
        }), run.Tape);
    }

    internal static GruGradient BackwardKernel(GruForward forward, ImmutableArray<Matrix<double>> da, int threads)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var (p, caches) = (forward.Parameters, forward.Tape is null ? forward.Caches : default);
        var tape = forward.Tape ?? Driver.TapeOf(GruFused.Of(p), [.. caches.Select(c => c.Xt)], [caches[0].APrev],
            s => [caches[s].A, caches[s].R, caches[s].Z, caches[s].N, caches[s].Hn]);
        var back = Driver.Backward(tape, da, Driver.ZeroCarry(tape.Cell, da[0].ColumnCount), threads);
        return new(back.Dx, back.DInit[0], GruFused.Gradients(p, back.Gradients) with { Wy = Ops.ZerosLike(p.Wy), By = Ops.ZerosLike(p.By) });
    }

    internal static GruGradient BackwardCheckpointedKernel(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<Matrix<double>> da, int every, int threads)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var back = Driver.Checkpointed(GruFused.Of(p), xs, [a0], da, every, threads);
        return new(back.Dx, back.DInit[0], GruFused.Gradients(p, back.Gradients) with { Wy = Ops.ZerosLike(p.Wy), By = Ops.ZerosLike(p.By) });
    }

    internal static GruLoss LossKernel(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, int threads) => LossKernel(p, xs, a0, labels, xs.Length, threads);

    internal static GruLoss LossKernel(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, int every, int threads)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var result = Driver.Loss(GruFused.Of(p), xs, [a0], labels, default, Block.Of(p.Wy), Block.Of(p.By), every, inputGradients: true, threads);
        return new(Ops.CompensatedSum(result.Losses), GruFused.Gradients(p, result.Gradients), result.Dx, result.DInit[0]);
    }

    /// <summary>
    /// The loss of a ragged batch of next-token targets, for <see cref="LanguageModel.Gru"/>: example j takes part
    /// only for its first lengths[j] steps, the loss is summed per step then over the steps, dx is not computed, and
    /// h⟨T⟩ is returned.
    /// </summary>
    internal static (double Loss, GruParameters Gradients, Matrix<double> Final) NextTokenLossKernel(GruParameters p,
        ImmutableArray<Matrix<double>> xs, Matrix<double> a0, ImmutableArray<ImmutableArray<int>> targets, ImmutableArray<int> lengths, int threads)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var result = Driver.Loss(GruFused.Of(p), xs, [a0], targets, lengths, Block.Of(p.Wy), Block.Of(p.By), xs.Length, inputGradients: false, threads);
        return (Ops.SumPerStep(result.Losses, a0.ColumnCount), GruFused.Gradients(p, result.Gradients), result.Final[0]);
    }

    // ---- checks ----

    /// <summary>The checks of the cell's functions once its parameters are known: x⟨t⟩ or xs, the carry, the labels, the outside gradients and k.</summary>
    private static readonly CellChecks<GruParameters> Checks = new(nameof(Gru), CheckParameters, p => new(p.InputSize, p.HiddenSize, [p.HiddenSize]), p => p.OutputSize,
        [("a0", "aPrev", "n_a")]);

    /// <summary>The recurrence's parameters, named <c>name.Leaf</c> in problems of <paramref name="argument"/>: the one check of the cell, of its sequence functions and of its layers.</summary>
    internal static IEnumerable<Problem> CheckRecurrence(GruParameters p, string argument, string name)
    {
        static int? Third(int? rows) => rows is { } r && r % 3 == 0 ? r / 3 : null;
        var na = Shapes.Consensus(p.Whh?.ColumnCount, Third(p.Whh?.RowCount), Third(p.Wih?.RowCount), Third(p.Bih?.Count), Third(p.Bhh?.Count));
        var nx = p.Wih?.ColumnCount ?? 0;
        return Shapes.All(
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Wih)), p.Wih, 3 * na, nx, "3n_a×n_x"),
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Whh)), p.Whh, 3 * na, na, "3n_a×n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Bih)), p.Bih, 3 * na, "3n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Bhh)), p.Bhh, 3 * na, "3n_a"));
    }

    private static Problem[] CheckParameters(GruParameters? p)
    {
        if (p is null) return [new(nameof(p), "expected p to be GruParameters but got null")];
        static int? Third(int? rows) => rows is { } r && r % 3 == 0 ? r / 3 : null;
        var na = Shapes.Consensus(p.Whh?.ColumnCount, Third(p.Whh?.RowCount), Third(p.Wih?.RowCount), Third(p.Bih?.Count), Third(p.Bhh?.Count));
        var ny = Shapes.Consensus(p.Wy?.RowCount, p.By?.Count);
        return Shapes.All(
            CheckRecurrence(p, nameof(p), ""),
            Shapes.Matrix(nameof(p), nameof(p.Wy), p.Wy, ny, na, "n_y×n_a"),
            Shapes.Vector(nameof(p), nameof(p.By), p.By, ny, "n_y"));
    }
}
