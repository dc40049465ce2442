using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The vanilla RNN: z⟨t⟩ = Wax·x⟨t⟩ + Waa·a⟨t−1⟩ + ba, a⟨t⟩ = tanh(z⟨t⟩), ŷ⟨t⟩ = softmax(Wya·a⟨t⟩ + by), with data laid
/// out one column per example. Every function validates its arguments (throwing <see cref="ArgumentException"/>
/// that names the argument and the expected shape), then runs a pure kernel. The <c>Try</c> variants return the
/// same checks as a <see cref="Validation{FAIL,SUCCESS}"/> listing every problem.
/// </summary>
public static class Rnn
{
    /// <summary>The RNN cell as a value, for <see cref="Recurrence"/>: its carry and its output are both a⟨t⟩.</summary>
    public static Cell<RnnParameters, Matrix<double>, RnnCache> Cell { get; } = CellOf.Hidden<RnnParameters, RnnCache>(Step, Back);

    // ---- the cell: forward and backward, line for line like the math ----

    private static (Matrix<double> A, RnnCache Cache) Step(RnnParameters p, Matrix<double> xt, Matrix<double> aPrev)
    {
        var z = Ops.Affine(p.Wax, xt, p.Waa, aPrev, p.Ba);            // z = Wax·x + Waa·a_prev + ba
        var a = p.Activation == Activation.Tanh ? Ops.Tanh(z) : Ops.Relu(z);
        return (a, new RnnCache(p, xt, aPrev, a));
    }

    private static (Matrix<double> Dxt, Matrix<double> DaPrev, RnnParameters Gradients) Back(Matrix<double> da, RnnCache cache)
    {
        var (p, xt, aPrev, a) = (cache.Parameters, cache.Xt, cache.APrev, cache.A);
        var dz = Ops.Hadamard(ActivationDerivative(p.Activation, a), da); // dz = (1 − a²) ⊙ da
        var dWax = Ops.MulTB(dz, xt);                                    // dWax = dz·xᵀ
        var dWaa = Ops.MulTB(dz, aPrev);                                 // dWaa = dz·a_prevᵀ
        var dba = Ops.RowSums(dz);                                       // dba = Σ_columns dz
        var dxt = Ops.MulTA(p.Wax, dz);                                  // dx = Waxᵀ·dz
        var daPrev = Ops.MulTA(p.Waa, dz);                               // da_prev = Waaᵀ·dz
        var zeroHead = (Wya: Matrix<double>.Build.Dense(p.OutputSize, p.HiddenSize), By: Vector<double>.Build.Dense(p.OutputSize));
        var gradients = p with { Wax = dWax, Waa = dWaa, Ba = dba, Wya = zeroHead.Wya, By = zeroHead.By };
        Finite.Rnn("Rnn.CellBackward", gradients, [dxt], daPrev);
        return (dxt, daPrev, gradients);
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
        Shapes.ThrowIfAny(Checks.Step(p, xt, aPrev));
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
        var (dxt, daPrev, gradients) = Back(da, cache);
        return new(dxt, daPrev, gradients);
    }

    /// <summary>The forward pass over a sequence: a fold of the cell that keeps every cache.</summary>
    /// <param name="p">Parameters: Wax n_a×n_x, Waa n_a×n_a, Ba n_a, Wya n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <returns>The states a⟨1⟩..a⟨T⟩, the predictions ŷ⟨1⟩..ŷ⟨T⟩ and the caches.</returns>
    [Pure]
    public static RnnForward Forward(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0)
    {
        Shapes.ThrowIfAny(Checks.Forward(p, xs, [a0]));
        return ForwardKernel(p, xs, a0, DefaultThreads);
    }

    /// <summary><see cref="Forward"/> with its checks as a value: every problem found, or the result.</summary>
    /// <param name="p">As in <see cref="Forward"/>.</param>
    /// <param name="xs">As in <see cref="Forward"/>.</param>
    /// <param name="a0">As in <see cref="Forward"/>.</param>
    [Pure]
    public static Validation<Error, RnnForward> TryForward(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) =>
        Shapes.ToValidation(Checks.Forward(p, xs, [a0]), () => ForwardKernel(p, xs, a0, DefaultThreads));

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
        Shapes.ThrowIfAny(Checks.Backward(forward, da));
        return BackwardKernel(forward, da, DefaultThreads);
    }

    /// <summary><see cref="Backward"/> with its checks as a value.</summary>
    /// <param name="forward">As in <see cref="Backward"/>.</param>
    /// <param name="da">As in <see cref="Backward"/>.</param>
    [Pure]
    public static Validation<Error, RnnGradient> TryBackward(RnnForward forward, ImmutableArray<Matrix<double>> da) =>
        Shapes.ToValidation(Checks.Backward(forward, da), () => BackwardKernel(forward, da, DefaultThreads));

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
        Shapes.ThrowIfAny(Checks.Loss(p, xs, [a0], labels, null));
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
        Shapes.ToValidation(Checks.Loss(p, xs, [a0], labels, null), () => LossKernel(p, xs, a0, labels, xs.Length, DefaultThreads));

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
        Shapes.ThrowIfAny(Checks.BackwardCheckpointed(p, xs, [a0], da, every));
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
        Shapes.ToValidation(Checks.BackwardCheckpointed(p, xs, [a0], da, every), () => BackwardCheckpointedKernel(p, xs, a0, da, every, DefaultThreads));

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
        Shapes.ThrowIfAny(Checks.LossCheckpointed(p, xs, [a0], labels, every));
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
        Shapes.ToValidation(Checks.LossCheckpointed(p, xs, [a0], labels, every), () => LossKernel(p, xs, a0, labels, every, DefaultThreads));

    /// <summary>Checks that the parameters are finite and consistent with each other.</summary>
    /// <param name="p">Parameters to check.</param>
    /// <returns>The parameters, or every problem found.</returns>
    [Pure]
    public static Validation<Error, RnnParameters> Validate(RnnParameters p) => Shapes.ToValidation(CheckParameters(p), () => p);

    // ---- kernels: arguments already checked ----
    //
    // The sequence functions run on the library's sequence driver (Driver, with the cell's math in RnnFused): per time
    // block the input projection U = Wax·X + ba is one product, per step z = U⟨t⟩ + Waa·a⟨t−1⟩ and da_next = Waaᵀ·dz,
    // per block the weight gradients, summed in the fixed order of Summation, so the result depends neither on the
    // number of threads nor on checkpointing, and each state has the bits of Step.

    /// <summary>Threads a public function may use.</summary>
    internal static int DefaultThreads => Summation.DefaultThreads;

    internal static RnnForward ForwardKernel(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, int threads)
    {
        var run = Driver.Forward(RnnFused.Of(p), xs, [a0], default, reverse: false, xs.Length, threads, outputs: false);
        var (wy, by) = (p.Wya.Clone(), p.By.Clone());
        return new(p, new(() => Driver.Part(run.Tape, 0)), new(() => Softmax.PredictionsWhenRead(wy, by, Driver.Part(run.Tape, 0)).Value), new(() =>
        {
            var (x, a, a0) = (Driver.Inputs(run.Tape), Driver.Part(run.Tape, 0), Driver.Initial(run.Tape)[0]);
            return [.. Enumerable.Range(0, xs.Length).Select(s => new RnnCache(p, x[s], s == 0 ? a0 : a[s - 1], a[s]))];
        }), run.Tape);
    }

    internal static RnnGradient BackwardKernel(RnnForward forward, ImmutableArray<Matrix<double>> da, int threads)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var (p, caches) = (forward.Parameters, forward.Tape is null ? forward.Caches : default);
        var tape = forward.Tape ?? Driver.TapeOf(RnnFused.Of(p), [.. caches.Select(c => c.Xt)], [caches[0].APrev], s => [caches[s].A]);
        var back = Driver.Backward(tape, da, Driver.ZeroCarry(tape.Cell, da[0].ColumnCount), threads);
        return Checked("Rnn.Backward", new(back.Dx, back.DInit[0], RnnFused.Gradients(p, back.Gradients) with { Wya = Ops.ZerosLike(p.Wya), By = Ops.ZerosLike(p.By) }));
    }

    internal static RnnGradient BackwardCheckpointedKernel(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<Matrix<double>> da, int every, int threads)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var back = Driver.Checkpointed(RnnFused.Of(p), xs, [a0], da, every, threads);
        return Checked("Rnn.BackwardCheckpointed", new(back.Dx, back.DInit[0], RnnFused.Gradients(p, back.Gradients) with { Wya = Ops.ZerosLike(p.Wya), By = Ops.ZerosLike(p.By) }));
    }

    /// <summary>The gradients of a backward, once checked to be finite (<see cref="NonFiniteException"/> otherwise).</summary>
    private static RnnGradient Checked(string function, RnnGradient g)
    {
        Finite.Rnn(function, g.Gradients, g.Dx, g.Da0);
        return g;
    }

    internal static RnnLoss LossKernel(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, int every, int threads)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var result = Driver.Loss(RnnFused.Of(p), xs, [a0], labels, default, Block.Of(p.Wya), Block.Of(p.By), every, inputGradients: true, threads);
        // The per-example losses are summed in the order (t, j) of the labels, whatever the chunks.
        var loss = new RnnLoss(Ops.CompensatedSum(result.Losses), RnnFused.Gradients(p, result.Gradients), result.Dx, result.DInit[0]);
        Finite.Rnn(every == xs.Length ? "Rnn.LossAndGradients" : "Rnn.LossAndGradientsCheckpointed", loss.Gradients, loss.Dx, loss.Da0);
        return loss;
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
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var result = Driver.Loss(RnnFused.Of(p), xs, [a0], targets, lengths, Block.Of(p.Wya), Block.Of(p.By), xs.Length, inputGradients: false, threads);
        return (Ops.SumPerStep(result.Losses, a0.ColumnCount), RnnFused.Gradients(p, result.Gradients), result.Final[0]);
    }

    // ---- checks ----

    /// <summary>The checks of the cell's functions once its parameters are known: x⟨t⟩ or xs, the carry, the labels, the outside gradients and k.</summary>
    private static readonly CellChecks<RnnParameters> Checks = new(nameof(Rnn), CheckParameters, p => new(p.InputSize, p.HiddenSize, [p.HiddenSize]), p => p.OutputSize,
        [("a0", "aPrev", "n_a")]);

    /// <summary>The recurrence's parameters, named <c>name.Leaf</c> in problems of <paramref name="argument"/>: the one check of the cell, of its sequence functions and of its layers.</summary>
    internal static IEnumerable<Problem> CheckRecurrence(RnnParameters p, string argument, string name)
    {
        var (na, nx) = (p.Wax?.RowCount ?? p.Waa?.RowCount ?? 0, p.Wax?.ColumnCount ?? 0);
        return Shapes.All(
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Wax)), p.Wax, na, nx, "n_a×n_x"),
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Waa)), p.Waa, na, na, "n_a×n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Ba)), p.Ba, na, "n_a"));
    }

    private static Problem[] CheckParameters(RnnParameters? p)
    {
        if (p is null) return [new(nameof(p), "expected p to be RnnParameters but got null")];
        var (na, ny) = (p.Wax?.RowCount ?? p.Waa?.RowCount ?? 0, p.Wya?.RowCount ?? p.By?.Count ?? 0);
        return Shapes.All(
            CheckRecurrence(p, nameof(p), ""),
            Shapes.Matrix(nameof(p), nameof(p.Wya), p.Wya, ny, na, "n_y×n_a"),
            Shapes.Vector(nameof(p), nameof(p.By), p.By, ny, "n_y"));
    }
}
