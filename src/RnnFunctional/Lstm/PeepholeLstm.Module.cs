using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The peephole LSTM (the ONNX <c>LSTM</c> operator with <c>P</c>): Γf = σ(Wf·[a⟨t−1⟩; x⟨t⟩] + bf + pf⊙c⟨t−1⟩),
/// Γi = σ(Wi·[…] + bi + pi⊙c⟨t−1⟩), c̃ = tanh(Wc·[…] + bc), c⟨t⟩ = Γf⊙c⟨t−1⟩ + Γi⊙c̃,
/// Γo = σ(Wo·[…] + bo + po⊙c⟨t⟩), a⟨t⟩ = Γo⊙tanh(c⟨t⟩), ŷ⟨t⟩ = softmax(Wy·a⟨t⟩ + by). The sequence functions run on
/// the sequence driver (<see cref="PeepholeLstmFused"/>); <see cref="Cell"/> is the same cell for the generic fold.
/// Every function validates its arguments (throwing <see cref="ArgumentException"/> that names the argument and the
/// expected shape); the <c>Try</c> variants return every problem as a <see cref="Validation{FAIL,SUCCESS}"/>.
/// </summary>
public static class PeepholeLstm
{
    /// <summary>The peephole LSTM cell as a value, for <see cref="Recurrence"/> and <see cref="Layer.Of{TParams,TCarry,TCache}"/>: its carry is (a⟨t⟩, c⟨t⟩), its output a⟨t⟩.</summary>
    public static Cell<PeepholeLstmParameters, LstmState, PeepholeLstmCache> Cell { get; } = CellOf.Lstm<PeepholeLstmParameters, PeepholeLstmCache>(Step, Back);

    // ---- the cell on matrices: forward and backward, line for line like the math ----

    private static Matrix<double> Peep(Vector<double> p, Matrix<double> c) => c.MapIndexed((row, _, v) => p[row] * v);

    private static (LstmState Next, PeepholeLstmCache Cache) Step(PeepholeLstmParameters p, Matrix<double> xt, Matrix<double> aPrev, Matrix<double> cPrev)
    {
        var f = Ops.Sigmoid(Ops.Add(Ops.GateAffine(p.Wf, aPrev, xt, p.Bf), Peep(p.Pf, cPrev)));   // Γf = σ(Wf·[a_prev; x] + bf + pf⊙c_prev)
        var i = Ops.Sigmoid(Ops.Add(Ops.GateAffine(p.Wi, aPrev, xt, p.Bi), Peep(p.Pi, cPrev)));   // Γi = σ(Wi·[a_prev; x] + bi + pi⊙c_prev)
        var cTilde = Ops.Tanh(Ops.GateAffine(p.Wc, aPrev, xt, p.Bc));                             // c̃ = tanh(Wc·[a_prev; x] + bc)
        var c = Ops.Add(Ops.Hadamard(f, cPrev), Ops.Hadamard(i, cTilde));                         // c = Γf⊙c_prev + Γi⊙c̃
        var o = Ops.Sigmoid(Ops.Add(Ops.GateAffine(p.Wo, aPrev, xt, p.Bo), Peep(p.Po, c)));       // Γo = σ(Wo·[a_prev; x] + bo + po⊙c)
        var a = Ops.Hadamard(o, Ops.Tanh(c));                                                     // a = Γo⊙tanh(c)
        return (new(a, c), new(p, xt, aPrev, cPrev, f, i, cTilde, o, c));
    }

    private static (Matrix<double> Dxt, Matrix<double> DaPrev, Matrix<double> DcPrev, PeepholeLstmParameters Gradients) Back(Matrix<double> da,
        Matrix<double> dc, PeepholeLstmCache cache)
    {
        var (p, xt, aPrev, cPrev, f, i, cTilde, o, c) = (cache.Parameters, cache.Xt, cache.APrev, cache.CPrev, cache.F, cache.I, cache.CTilde, cache.O, cache.C);
        var concat = Ops.StackRows(aPrev, xt);                                      // concat = [a_prev; x]
        var tanhC = Ops.Tanh(c);
        var dO = Ops.Hadamard(da, tanhC);                                           // dΓo = da⊙tanh(c)
        var dzo = Ops.SigmoidBackward(o, dO);                                       // dzo = dΓo⊙Γo⊙(1 − Γo)
        var dC = Ops.Add(Ops.Add(dc, Ops.TanhBackward(tanhC, Ops.Hadamard(da, o))), // dc ← dc + da⊙Γo⊙(1 − tanh²(c))
                         Peep(p.Po, dzo));                                          //      + po⊙dzo
        var dzf = Ops.SigmoidBackward(f, Ops.Hadamard(dC, cPrev));                  // dzf = dc⊙c_prev⊙Γf⊙(1 − Γf)
        var dzi = Ops.SigmoidBackward(i, Ops.Hadamard(dC, cTilde));                 // dzi = dc⊙c̃⊙Γi⊙(1 − Γi)
        var dzc = Ops.TanhBackward(cTilde, Ops.Hadamard(dC, i));                    // dzc = dc⊙Γi⊙(1 − c̃²)
        var dcPrev = Ops.Add(Ops.Add(Ops.Hadamard(dC, f), Peep(p.Pf, dzf)),          // dc_prev = dc⊙Γf + pf⊙dzf
                             Peep(p.Pi, dzi));                                      //         + pi⊙dzi
        var dConcat = Ops.Sum(Ops.MulTA(p.Wf, dzf), Ops.MulTA(p.Wi, dzi),           // dconcat = Wfᵀ·dzf + Wiᵀ·dzi
                              Ops.MulTA(p.Wc, dzc), Ops.MulTA(p.Wo, dzo));          //         + Wcᵀ·dzc + Woᵀ·dzo
        var gradients = p with
        {
            Wf = Ops.MulTB(dzf, concat), Bf = Ops.RowSums(dzf),                     // dWf = dzf·concatᵀ, dbf = Σ_columns dzf
            Wi = Ops.MulTB(dzi, concat), Bi = Ops.RowSums(dzi),                     // dWi = dzi·concatᵀ, dbi = Σ_columns dzi
            Wc = Ops.MulTB(dzc, concat), Bc = Ops.RowSums(dzc),                     // dWc = dzc·concatᵀ, dbc = Σ_columns dzc
            Wo = Ops.MulTB(dzo, concat), Bo = Ops.RowSums(dzo),                     // dWo = dzo·concatᵀ, dbo = Σ_columns dzo
            Pf = Ops.RowSums(Ops.Hadamard(dzf, cPrev)),                             // dpf = Σ_columns dzf⊙c_prev
            Pi = Ops.RowSums(Ops.Hadamard(dzi, cPrev)),                             // dpi = Σ_columns dzi⊙c_prev
            Po = Ops.RowSums(Ops.Hadamard(dzo, c)),                                 // dpo = Σ_columns dzo⊙c
            Wy = Ops.ZerosLike(p.Wy), By = Ops.ZerosLike(p.By),
        };
        return (Ops.Rows(dConcat, p.HiddenSize, p.InputSize), Ops.Rows(dConcat, 0, p.HiddenSize), dcPrev, gradients);
    }

    // ---- public API ----

    /// <summary>The forward pass over a sequence, on the sequence driver.</summary>
    /// <param name="p">Parameters: Wf, Wi, Wc, Wo n_a×(n_a+n_x), Bf, Bi, Bc, Bo, Pf, Pi, Po n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <param name="c0">c⟨0⟩, n_a×m.</param>
    /// <returns>The states a⟨1⟩..a⟨T⟩, the cells c⟨1⟩..c⟨T⟩ and the predictions ŷ⟨1⟩..ŷ⟨T⟩.</returns>
    [Pure]
    public static PeepholeLstmForward Forward(PeepholeLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
        Module.Forward(p, xs, [a0, c0]).OrThrow();

    /// <summary><see cref="Forward"/> with its checks as a value: every problem found, or the result.</summary>
    /// <param name="p">As in <see cref="Forward"/>.</param>
    /// <param name="xs">As in <see cref="Forward"/>.</param>
    /// <param name="a0">As in <see cref="Forward"/>.</param>
    /// <param name="c0">As in <see cref="Forward"/>.</param>
    [Pure]
    public static Validation<Error, PeepholeLstmForward> TryForward(PeepholeLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
        Module.Forward(p, xs, [a0, c0]).ToValidation();

    /// <summary>
    /// Back-propagation through time of outside gradients da⟨t⟩ on the states, with dc⟨T⟩ = 0 (nothing downstream reads
    /// c⟨T⟩): dc ← dc + da⊙Γo⊙(1 − tanh²(c)) + po⊙dz_o, dc⟨t−1⟩ = dc⊙Γf + pf⊙dz_f + pi⊙dz_i, dp = Σ dz⊙(the cell the
    /// peephole reads), the rest as <see cref="Lstm.Backward"/>.
    /// </summary>
    /// <param name="forward">The result of <see cref="Forward"/>.</param>
    /// <param name="da">da⟨1⟩..da⟨T⟩, each n_a×m: the gradient each a⟨t⟩ receives from outside the recurrence.</param>
    /// <returns>dx⟨1⟩..dx⟨T⟩, da⟨0⟩, dc⟨0⟩ and the summed gradients (read-out entries zero).</returns>
    [Pure]
    public static PeepholeLstmGradient Backward(PeepholeLstmForward forward, ImmutableArray<Matrix<double>> da) =>
        Module.Backward(forward, da).OrThrow();

    /// <summary><see cref="Backward"/> with its checks as a value.</summary>
    /// <param name="forward">As in <see cref="Backward"/>.</param>
    /// <param name="da">As in <see cref="Backward"/>.</param>
    [Pure]
    public static Validation<Error, PeepholeLstmGradient> TryBackward(PeepholeLstmForward forward, ImmutableArray<Matrix<double>> da) =>
        Module.Backward(forward, da).ToValidation();

    /// <summary>
    /// The summed softmax cross-entropy of the read-out, Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j], and its exact gradients.
    /// With <paramref name="every"/> = k the forward keeps the carry every k steps only and the backward recomputes
    /// each segment: bitwise the same results, O(T/k + k) states.
    /// </summary>
    /// <param name="p">Parameters: Wf, Wi, Wc, Wo n_a×(n_a+n_x), Bf, Bi, Bc, Bo, Pf, Pi, Po n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <param name="c0">c⟨0⟩, n_a×m.</param>
    /// <param name="labels">T rows of m class indices: labels[t][j] ∈ [0, n_y) is the class of example j at step t.</param>
    /// <param name="every">k ≥ 1: the distance between kept carries; omitted, every step is kept.</param>
    [Pure]
    public static PeepholeLstmLoss LossAndGradients(PeepholeLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0,
        ImmutableArray<ImmutableArray<int>> labels, int? every = null) =>
        Module.Loss(p, xs, [a0, c0], labels, every).OrThrow();

    /// <summary><see cref="LossAndGradients"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="a0">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="c0">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="every">As in <see cref="LossAndGradients"/>.</param>
    [Pure]
    public static Validation<Error, PeepholeLstmLoss> TryLossAndGradients(PeepholeLstmParameters p, ImmutableArray<Matrix<double>> xs,
        Matrix<double> a0, Matrix<double> c0, ImmutableArray<ImmutableArray<int>> labels, int? every = null) =>
        Module.Loss(p, xs, [a0, c0], labels, every).ToValidation();

    /// <summary>Checks that the parameters are finite and consistent with each other.</summary>
    /// <param name="p">Parameters to check.</param>
    /// <returns>The parameters, or every problem found.</returns>
    [Pure]
    public static Validation<Error, PeepholeLstmParameters> Validate(PeepholeLstmParameters p) => Module.Validate(p);

    // ---- on the sequence driver ----

    /// <summary>The sequence functions on the driver, given what this cell adds to them.</summary>
    internal static readonly FusedModule<PeepholeLstmParameters, PeepholeLstmForward, PeepholeLstmGradient, PeepholeLstmLoss> Module = new(
        nameof(PeepholeLstm), new(PeepholeLstmFused.Of, PeepholeLstmFused.Gradients), CheckRecurrence, Sizes,
        p => (p.Wy, p.By), (p, wy, by) => p with { Wy = wy, By = by }, [("a0", "n_a"), ("c0", "n_a")],
        (p, states, tape) => new(p, states, Driver.Part(tape, 1), tape), f => (f.Parameters, f.States, f.Tape),
        (dx, dInit, g) => new(dx, dInit[0], dInit[1], g), (loss, g, dx, dInit) => new(loss, g, dx, dInit[0], dInit[1]));

    /// <summary>n_x, the rows n_a of a⟨t⟩ and those of the carry [a⟨t⟩, c⟨t⟩].</summary>
    internal static LayerSizes Sizes(PeepholeLstmParameters p) => new(p.InputSize, p.HiddenSize, [p.HiddenSize, p.HiddenSize]);

    // ---- checks ----

    /// <summary>The recurrence's parameters, named <c>name.Leaf</c> in problems of <paramref name="argument"/>: the one check of the sequence functions and of the layers.</summary>
    internal static IEnumerable<Problem> CheckRecurrence(PeepholeLstmParameters p, string argument, string name)
    {
        var gates = Lstm.CheckRecurrence(p.WithoutPeepholes, argument, name).ToArray();
        if (gates.Length > 0) return gates;
        var na = p.HiddenSize;
        return Shapes.All(
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Pf)), p.Pf, na, "n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Pi)), p.Pi, na, "n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Po)), p.Po, na, "n_a"));
    }
}
