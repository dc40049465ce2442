using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The LSTM: Γf = σ(Wf·[a⟨t−1⟩; x⟨t⟩] + bf), Γi = σ(Wi·[…] + bi), c̃ = tanh(Wc·[…] + bc), c⟨t⟩ = Γf⊙c⟨t−1⟩ + Γi⊙c̃,
/// Γo = σ(Wo·[…] + bo), a⟨t⟩ = Γo⊙tanh(c⟨t⟩), ŷ⟨t⟩ = softmax(Wy·a⟨t⟩ + by), with data laid out one column per example.
/// Every function validates its arguments (throwing <see cref="ArgumentException"/> that names the argument and the
/// expected shape), then runs a pure kernel. The <c>Try</c> variants return the same checks as a
/// <see cref="Validation{FAIL,SUCCESS}"/> listing every problem.
/// </summary>
public static class Lstm
{
    /// <summary>The LSTM cell as a value, for <see cref="Recurrence"/>: its carry is (a⟨t⟩, c⟨t⟩), its output a⟨t⟩.</summary>
    public static Cell<LstmParameters, LstmState, LstmCache> Cell { get; } = CellOf.Lstm<LstmParameters, LstmCache>(Step, Back);

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

    private static (Matrix<double> Dxt, Matrix<double> DaPrev, Matrix<double> DcPrev, LstmParameters Gradients) Back(Matrix<double> da, Matrix<double> dc,
        LstmCache cache)
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
        return (dxt, daPrev, dcPrev, gradients);
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
        Shapes.ThrowIfAny(Checks.Step(p, xt, aPrev, cPrev));
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
        var (dxt, daPrev, dcPrev, gradients) = Back(da, dc, cache);
        return new(dxt, daPrev, dcPrev, gradients);
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
        Shapes.ThrowIfAny(Checks.Forward(p, xs, [a0, c0]));
        return ForwardKernel(p, xs, a0, c0, Rnn.DefaultThreads);
    }

    /// <summary><see cref="Forward"/> with its checks as a value: every problem found, or the result.</summary>
    /// <param name="p">As in <see cref="Forward"/>.</param>
    /// <param name="xs">As in <see cref="Forward"/>.</param>
    /// <param name="a0">As in <see cref="Forward"/>.</param>
    /// <param name="c0">As in <see cref="Forward"/>.</param>
    [Pure]
    public static Validation<Error, LstmForward> TryForward(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
        Shapes.ToValidation(Checks.Forward(p, xs, [a0, c0]), () => ForwardKernel(p, xs, a0, c0, Rnn.DefaultThreads));

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
        Shapes.ThrowIfAny(Checks.Backward(forward, da));
        return BackwardKernel(forward, da, Rnn.DefaultThreads);
    }

    /// <summary><see cref="Backward"/> with its checks as a value.</summary>
    /// <param name="forward">As in <see cref="Backward"/>.</param>
    /// <param name="da">As in <see cref="Backward"/>.</param>
    [Pure]
    public static Validation<Error, LstmGradient> TryBackward(LstmForward forward, ImmutableArray<Matrix<double>> da) =>
        Shapes.ToValidation(Checks.Backward(forward, da), () => BackwardKernel(forward, da, Rnn.DefaultThreads));

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
        Shapes.ThrowIfAny(Checks.Loss(p, xs, [a0, c0], labels, null));
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
        Shapes.ToValidation(Checks.Loss(p, xs, [a0, c0], labels, null), () => LossKernel(p, xs, a0, c0, labels, Rnn.DefaultThreads));

    /// <summary>
    /// Backward(Forward(p, xs, a0, c0), da) holding the carry of O(√T) steps rather than every step's values: the
    /// forward keeps (a⟨τ⟩, c⟨τ⟩) only at τ = 0, k, 2k, … (k = <paramref name="every"/>), and the backward recomputes
    /// each segment of k steps from its first carry just before running over it, last segment first. The result is
    /// bitwise identical to the full backward, for any k.
    /// </summary>
    /// <param name="p">Parameters: Wf, Wi, Wc, Wo n_a×(n_a+n_x), Bf, Bi, Bc, Bo n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <param name="c0">c⟨0⟩, n_a×m.</param>
    /// <param name="da">da⟨1⟩..da⟨T⟩, each n_a×m: the gradient each a⟨t⟩ receives from outside the recurrence.</param>
    /// <param name="every">k ≥ 1: the distance between kept carries.</param>
    [Pure]
    public static LstmGradient BackwardCheckpointed(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0,
        ImmutableArray<Matrix<double>> da, int every)
    {
        Shapes.ThrowIfAny(Checks.BackwardCheckpointed(p, xs, [a0, c0], da, every));
        return BackwardCheckpointedKernel(p, xs, a0, c0, da, every, Rnn.DefaultThreads);
    }

    /// <summary><see cref="BackwardCheckpointed"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="xs">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="a0">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="c0">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="da">As in <see cref="BackwardCheckpointed"/>.</param>
    /// <param name="every">As in <see cref="BackwardCheckpointed"/>.</param>
    [Pure]
    public static Validation<Error, LstmGradient> TryBackwardCheckpointed(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        Matrix<double> c0, ImmutableArray<Matrix<double>> da, int every) =>
        Shapes.ToValidation(Checks.BackwardCheckpointed(p, xs, [a0, c0], da, every), () => BackwardCheckpointedKernel(p, xs, a0, c0, da, every, Rnn.DefaultThreads));

    /// <summary>
    /// <see cref="LossAndGradients"/> holding the carry of O(√T) steps, as in <see cref="BackwardCheckpointed"/>:
    /// bitwise identical results, for any k.
    /// </summary>
    /// <param name="p">Parameters: Wf, Wi, Wc, Wo n_a×(n_a+n_x), Bf, Bi, Bc, Bo n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <param name="c0">c⟨0⟩, n_a×m.</param>
    /// <param name="labels">T rows of m class indices: labels[t][j] ∈ [0, n_y) is the class of example j at step t.</param>
    /// <param name="every">k ≥ 1: the distance between kept carries.</param>
    [Pure]
    public static LstmLoss LossAndGradientsCheckpointed(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0,
        ImmutableArray<ImmutableArray<int>> labels, int every)
    {
        Shapes.ThrowIfAny(Checks.LossCheckpointed(p, xs, [a0, c0], labels, every));
        return LossKernel(p, xs, a0, c0, labels, every, Rnn.DefaultThreads);
    }

    /// <summary><see cref="LossAndGradientsCheckpointed"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="a0">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="c0">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    /// <param name="every">As in <see cref="LossAndGradientsCheckpointed"/>.</param>
    [Pure]
    public static Validation<Error, LstmLoss> TryLossAndGradientsCheckpointed(LstmParameters p, ImmutableArray<Matrix<double>> xs,
        Matrix<double> a0, Matrix<double> c0, ImmutableArray<ImmutableArray<int>> labels, int every) =>
        Shapes.ToValidation(Checks.LossCheckpointed(p, xs, [a0, c0], labels, every),
            () => LossKernel(p, xs, a0, c0, labels, every, Rnn.DefaultThreads));

    /// <summary>Checks that the parameters are finite and consistent with each other.</summary>
    /// <param name="p">Parameters to check.</param>
    /// <returns>The parameters, or every problem found.</returns>
    [Pure]
    public static Validation<Error, LstmParameters> Validate(LstmParameters p) => Shapes.ToValidation(CheckParameters(p), () => p);

    // ---- kernels: arguments already checked ----
    //
    // The sequence functions run on the library's sequence driver (Driver, with the cell's math in LstmFused, the gates
    // stacked f | i | c̃ | o): per time block U = W_x·X + b in one product, per step z = U⟨t⟩ + W_a·a⟨t−1⟩ and the
    // element-wise cell, with the bits of Step; in the backward, per step the element-wise backward and
    // da_prev = W_aᵀ·dz over the stacked gates, per block the weight gradients and dx, summed in the order of Summation.

    internal static LstmForward ForwardKernel(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0, int threads)
    {
        var run = Driver.Forward(LstmFused.Of(p), xs, [a0, c0], default, reverse: false, xs.Length, threads, outputs: false);
        var (wy, by) = (p.Wy.Clone(), p.By.Clone());
        return new(p, new(() => Driver.Part(run.Tape, 0)), new(() => Driver.Part(run.Tape, 1)), new(() => Softmax.PredictionsWhenRead(wy, by, Driver.Part(run.Tape, 0)).Value), new(() =>
        {
            var (x, init) = (Driver.Inputs(run.Tape), Driver.Initial(run.Tape));
            var part = Enumerable.Range(0, 6).Select(k => Driver.Part(run.Tape, k)).ToArray();
            return [.. Enumerable.Range(0, xs.Length).Select(s => new LstmCache(p, x[s], s == 0 ? init[0] : part[0][s - 1], s == 0 ? init[1] : part[1][s - 1],
                part[2][s], part[3][s], part[4][s], part[5][s], part[1][s], part[0][s]))];
        }), run.Tape);
    }

    internal static LstmGradient BackwardKernel(LstmForward forward, ImmutableArray<Matrix<double>> da, int threads)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var (p, caches) = (forward.Parameters, forward.Tape is null ? forward.Caches : default);
        var tape = forward.Tape ?? Driver.TapeOf(LstmFused.Of(p), [.. caches.Select(c => c.Xt)], [caches[0].APrev, caches[0].CPrev],
            s => [caches[s].A, caches[s].C, caches[s].F, caches[s].I, caches[s].CTilde, caches[s].O]);
        var back = Driver.Backward(tape, da, Driver.ZeroCarry(tape.Cell, da[0].ColumnCount), threads);
        return new(back.Dx, back.DInit[0], back.DInit[1], LstmFused.Gradients(p, back.Gradients) with { Wy = Ops.ZerosLike(p.Wy), By = Ops.ZerosLike(p.By) });
    }

    internal static LstmGradient BackwardCheckpointedKernel(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0,
        ImmutableArray<Matrix<double>> da, int every, int threads)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var back = Driver.Checkpointed(LstmFused.Of(p), xs, [a0, c0], da, every, threads);
        return new(back.Dx, back.DInit[0], back.DInit[1], LstmFused.Gradients(p, back.Gradients) with { Wy = Ops.ZerosLike(p.Wy), By = Ops.ZerosLike(p.By) });
    }

    internal static LstmLoss LossKernel(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0,
        ImmutableArray<ImmutableArray<int>> labels, int threads) => LossKernel(p, xs, a0, c0, labels, xs.Length, threads);

    internal static LstmLoss LossKernel(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0,
        ImmutableArray<ImmutableArray<int>> labels, int every, int threads)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var result = Driver.Loss(LstmFused.Of(p), xs, [a0, c0], labels, default, Block.Of(p.Wy), Block.Of(p.By), every, inputGradients: true, threads);
        return new(Ops.CompensatedSum(result.Losses), LstmFused.Gradients(p, result.Gradients), result.Dx, result.DInit[0], result.DInit[1]);
    }

    /// <summary>
    /// The loss of a ragged batch of next-token targets, for <see cref="LanguageModel.Lstm"/>: example j takes part
    /// only for its first lengths[j] steps, the loss is summed per step then over the steps, dx is not computed, and
    /// the final (a⟨T⟩, c⟨T⟩) is returned.
    /// </summary>
    internal static (double Loss, LstmParameters Gradients, LstmState Final) NextTokenLossKernel(LstmParameters p,
        ImmutableArray<Matrix<double>> xs, LstmState init, ImmutableArray<ImmutableArray<int>> targets, ImmutableArray<int> lengths, int threads)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var result = Driver.Loss(LstmFused.Of(p), xs, [init.A, init.C], targets, lengths, Block.Of(p.Wy), Block.Of(p.By), xs.Length, inputGradients: false, threads);
        return (Ops.SumPerStep(result.Losses, init.A.ColumnCount), LstmFused.Gradients(p, result.Gradients), new(result.Final[0], result.Final[1]));
    }

    // ---- checks ----

    /// <summary>The checks of the cell's functions once its parameters are known: x⟨t⟩ or xs, the carry, the labels, the outside gradients and k.</summary>
    private static readonly CellChecks<LstmParameters> Checks = new(nameof(Lstm), CheckParameters, p => new(p.InputSize, p.HiddenSize, [p.HiddenSize, p.HiddenSize]), p => p.OutputSize,
        [("a0", "aPrev", "n_a"), ("c0", "cPrev", "n_a")]);

    /// <summary>The recurrence's parameters, named <c>name.Leaf</c> in problems of <paramref name="argument"/>: the one check of the cell, of its sequence functions and of its layers.</summary>
    internal static IEnumerable<Problem> CheckRecurrence(LstmParameters p, string argument, string name)
    {
        var na = Shapes.Consensus(p.Wf?.RowCount, p.Wi?.RowCount, p.Wc?.RowCount, p.Wo?.RowCount, p.Bf?.Count, p.Bi?.Count, p.Bc?.Count, p.Bo?.Count);
        var width = Shapes.Consensus(p.Wf?.ColumnCount, p.Wi?.ColumnCount, p.Wc?.ColumnCount, p.Wo?.ColumnCount);
        if (width <= na)
            return [new(argument, $"expected the gate weights {Layer.Named(name, "Wf")}, Wi, Wc, Wo to be n_a×(n_a+n_x) with n_a = {na} and n_x ≥ 1 but they have {width} columns")];
        const string gate = "n_a×(n_a+n_x)";
        return Shapes.All(
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Wf)), p.Wf, na, width, gate),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Bf)), p.Bf, na, "n_a"),
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Wi)), p.Wi, na, width, gate),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Bi)), p.Bi, na, "n_a"),
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Wc)), p.Wc, na, width, gate),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Bc)), p.Bc, na, "n_a"),
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Wo)), p.Wo, na, width, gate),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Bo)), p.Bo, na, "n_a"));
    }

    private static Problem[] CheckParameters(LstmParameters? p)
    {
        if (p is null) return [new(nameof(p), "expected p to be LstmParameters but got null")];
        var recurrence = Shapes.All(CheckRecurrence(p, nameof(p), ""));
        var na = Shapes.Consensus(p.Wf?.RowCount, p.Wi?.RowCount, p.Wc?.RowCount, p.Wo?.RowCount, p.Bf?.Count, p.Bi?.Count, p.Bc?.Count, p.Bo?.Count);
        var ny = Shapes.Consensus(p.Wy?.RowCount, p.By?.Count);
        return Shapes.All(
            recurrence,
            Shapes.Matrix(nameof(p), nameof(p.Wy), p.Wy, ny, na, "n_y×n_a"),
            Shapes.Vector(nameof(p), nameof(p.By), p.By, ny, "n_y"));
    }
}
