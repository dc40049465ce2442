using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The layer-normalized GRU (see <see cref="LayerNormGruParameters"/>): each gate block of Wih·x⟨t⟩ and of Whh·h⟨t−1⟩
/// normalized per column, with learned gains and biases, then PyTorch's GRU. The sequence functions run on the sequence
/// driver (<see cref="LayerNormGruFused"/>); <see cref="Cell"/> is the same cell for the generic fold. The hidden state
/// h⟨t⟩ is <c>a</c> in the API (<c>a0</c>, <c>.States</c>), as for every cell. Every function validates its arguments
/// (throwing <see cref="ArgumentException"/> that names the argument and the expected shape); the <c>Try</c> variants
/// return every problem as a <see cref="Validation{FAIL,SUCCESS}"/>.
/// </summary>
public static class LayerNormGru
{
    /// <summary>The cell as a value, for <see cref="Recurrence"/> and <see cref="Layer.Of{TParams,TCarry,TCache}"/>: its carry and its output are both h⟨t⟩.</summary>
    public static Cell<LayerNormGruParameters, Matrix<double>, LayerNormGruCache> Cell { get; } = CellOf.Hidden<LayerNormGruParameters, LayerNormGruCache>(Step, Back);

    // ---- the cell on matrices: forward and backward, line for line like the math ----

    private static Matrix<double> ScaleRows(Vector<double> v, Matrix<double> m) => m.MapIndexed((row, _, x) => v[row] * x);

    private static Matrix<double> AddRows(Matrix<double> m, Vector<double> v) => m.MapIndexed((row, _, x) => x + v[row]);

    private static (Matrix<double> H, LayerNormGruCache Cache) Step(LayerNormGruParameters p, Matrix<double> xt, Matrix<double> hPrev)
    {
        var (na, zero) = (p.HiddenSize, Vector<double>.Build.Dense(3 * p.HiddenSize));
        var (xHat, xRstd) = LayerNorm.Rows(Ops.Affine(p.Wih, xt, zero), 3, p.Epsilon);          // x̂ = LN(Wih·x), per gate block
        var (hHat, hRstd) = LayerNorm.Rows(Ops.Affine(p.Whh, hPrev, zero), 3, p.Epsilon);       // ĥ = LN(Whh·h_prev), per gate block
        var gi = AddRows(ScaleRows(p.GainIh, xHat), p.Bih);                                     // gi = GainIh⊙x̂ + Bih
        var gh = AddRows(ScaleRows(p.GainHh, hHat), p.Bhh);                                     // gh = GainHh⊙ĥ + Bhh
        var r = Ops.Sigmoid(Ops.Add(Ops.Rows(gi, 0, na), Ops.Rows(gh, 0, na)));                 // r = σ(gi_r + gh_r)
        var z = Ops.Sigmoid(Ops.Add(Ops.Rows(gi, na, na), Ops.Rows(gh, na, na)));               // z = σ(gi_z + gh_z)
        var hn = Ops.Rows(gh, 2 * na, na);                                                      // hn = gh_n
        var n = Ops.Tanh(Ops.Add(Ops.Rows(gi, 2 * na, na), Ops.Hadamard(r, hn)));               // n = tanh(gi_n + r⊙hn)
        var h = Ops.Add(Ops.Hadamard(Ops.OneMinus(z), n), Ops.Hadamard(z, hPrev));              // h = (1 − z)⊙n + z⊙h_prev
        return (h, new(p, xt, hPrev, xHat, xRstd, hHat, hRstd, r, z, n, hn));
    }

    private static (Matrix<double> Dxt, Matrix<double> DhPrev, LayerNormGruParameters Gradients) Back(Matrix<double> dh, LayerNormGruCache cache)
    {
        var (p, r, z, n, hn) = (cache.Parameters, cache.R, cache.Z, cache.N, cache.Hn);
        var dn = Ops.Hadamard(dh, Ops.OneMinus(z));                                     // dn = dh⊙(1 − z)
        var dz = Ops.Hadamard(dh, Ops.Subtract(cache.HPrev, n));                        // dz = dh⊙(h_prev − n)
        var dgn = Ops.TanhBackward(n, dn);                                              // dgi_n = dn⊙(1 − n²)
        var dr = Ops.Hadamard(dgn, hn);                                                 // dr = dgi_n⊙hn
        var dhn = Ops.Hadamard(dgn, r);                                                 // dgh_n = dgi_n⊙r
        var dgr = Ops.SigmoidBackward(r, dr);                                           // dgi_r = dgh_r = dr⊙r⊙(1 − r)
        var dgz = Ops.SigmoidBackward(z, dz);                                           // dgi_z = dgh_z = dz⊙z⊙(1 − z)
        var dgi = Ops.StackRows(dgr, dgz, dgn);                                         // dgi = [dgi_r; dgi_z; dgi_n]
        var dgh = Ops.StackRows(dgr, dgz, dhn);                                         // dgh = [dgh_r; dgh_z; dgh_n]
        var du = LayerNorm.RowsBackward(cache.XHat, cache.XRstd, ScaleRows(p.GainIh, dgi)); // dU = LNᵀ(dgi⊙GainIh)
        var dR = LayerNorm.RowsBackward(cache.HHat, cache.HRstd, ScaleRows(p.GainHh, dgh)); // dR = LNᵀ(dgh⊙GainHh)
        var gradients = p with
        {
            Wih = Ops.MulTB(du, cache.Xt), Whh = Ops.MulTB(dR, cache.HPrev),            // dWih = dU·xᵀ, dWhh = dR·h_prevᵀ
            Bih = Ops.RowSums(dgi), Bhh = Ops.RowSums(dgh),                             // dBih = Σ dgi, dBhh = Σ dgh
            GainIh = Ops.RowSums(Ops.Hadamard(dgi, cache.XHat)),                        // dGainIh = Σ dgi⊙x̂
            GainHh = Ops.RowSums(Ops.Hadamard(dgh, cache.HHat)),                        // dGainHh = Σ dgh⊙ĥ
            Wy = Ops.ZerosLike(p.Wy), By = Ops.ZerosLike(p.By),
        };
        return (Ops.MulTA(p.Wih, du), Ops.Add(Ops.MulTA(p.Whh, dR), Ops.Hadamard(dh, z)), gradients); // dx = Wihᵀ·dU, dh_prev = Whhᵀ·dR + dh⊙z
    }

    // ---- public API ----

    /// <summary>The forward pass over a sequence, on the sequence driver.</summary>
    /// <param name="p">Parameters: Wih 3n_a×n_x, Whh 3n_a×n_a, Bih, Bhh, GainIh, GainHh 3n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">h⟨0⟩, n_a×m.</param>
    /// <returns>The states h⟨1⟩..h⟨T⟩ and the predictions ŷ⟨1⟩..ŷ⟨T⟩.</returns>
    [Pure]
    public static LayerNormGruForward Forward(LayerNormGruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) =>
        Module.Forward(p, xs, [a0]).OrThrow();

    /// <summary><see cref="Forward"/> with its checks as a value: every problem found, or the result.</summary>
    /// <param name="p">As in <see cref="Forward"/>.</param>
    /// <param name="xs">As in <see cref="Forward"/>.</param>
    /// <param name="a0">As in <see cref="Forward"/>.</param>
    [Pure]
    public static Validation<Error, LayerNormGruForward> TryForward(LayerNormGruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) =>
        Module.Forward(p, xs, [a0]).ToValidation();

    /// <summary>Back-propagation through time of outside gradients da⟨t⟩ on the states.</summary>
    /// <param name="forward">The result of <see cref="Forward"/>.</param>
    /// <param name="da">da⟨1⟩..da⟨T⟩, each n_a×m: the gradient each h⟨t⟩ receives from outside the recurrence.</param>
    /// <returns>dx⟨1⟩..dx⟨T⟩, dh⟨0⟩ and the summed gradients (read-out entries zero).</returns>
    [Pure]
    public static LayerNormGruGradient Backward(LayerNormGruForward forward, ImmutableArray<Matrix<double>> da) =>
        Module.Backward(forward, da).OrThrow();

    /// <summary><see cref="Backward"/> with its checks as a value.</summary>
    /// <param name="forward">As in <see cref="Backward"/>.</param>
    /// <param name="da">As in <see cref="Backward"/>.</param>
    [Pure]
    public static Validation<Error, LayerNormGruGradient> TryBackward(LayerNormGruForward forward, ImmutableArray<Matrix<double>> da) =>
        Module.Backward(forward, da).ToValidation();

    /// <summary>
    /// The summed softmax cross-entropy of the read-out, Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j], and its exact gradients.
    /// With <paramref name="every"/> = k the forward keeps the carry every k steps only and the backward recomputes
    /// each segment: bitwise the same results, O(T/k + k) states.
    /// </summary>
    /// <param name="p">Parameters: Wih 3n_a×n_x, Whh 3n_a×n_a, Bih, Bhh, GainIh, GainHh 3n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">h⟨0⟩, n_a×m.</param>
    /// <param name="labels">T rows of m class indices: labels[t][j] ∈ [0, n_y) is the class of example j at step t.</param>
    /// <param name="every">k ≥ 1: the distance between kept carries; omitted, every step is kept.</param>
    [Pure]
    public static LayerNormGruLoss LossAndGradients(LayerNormGruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, int? every = null) =>
        Module.Loss(p, xs, [a0], labels, every).OrThrow();

    /// <summary><see cref="LossAndGradients"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="a0">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="every">As in <see cref="LossAndGradients"/>.</param>
    [Pure]
    public static Validation<Error, LayerNormGruLoss> TryLossAndGradients(LayerNormGruParameters p, ImmutableArray<Matrix<double>> xs,
        Matrix<double> a0, ImmutableArray<ImmutableArray<int>> labels, int? every = null) =>
        Module.Loss(p, xs, [a0], labels, every).ToValidation();

    /// <summary>Checks that the parameters are finite and consistent with each other.</summary>
    /// <param name="p">Parameters to check.</param>
    /// <returns>The parameters, or every problem found.</returns>
    [Pure]
    public static Validation<Error, LayerNormGruParameters> Validate(LayerNormGruParameters p) => Module.Validate(p);

    // ---- on the sequence driver ----

    /// <summary>The sequence functions on the driver, given what this cell adds to them.</summary>
    internal static readonly FusedModule<LayerNormGruParameters, LayerNormGruForward, LayerNormGruGradient, LayerNormGruLoss> Module = new(
        nameof(LayerNormGru), new(LayerNormGruFused.Of, LayerNormGruFused.Gradients), CheckRecurrence, Sizes,
        p => (p.Wy, p.By), (p, wy, by) => p with { Wy = wy, By = by }, [("a0", "n_a")],
        (p, states, tape) => new(p, states, tape), f => (f.Parameters, f.States, f.Tape),
        (dx, dInit, g) => new(dx, dInit[0], g), (loss, g, dx, dInit) => new(loss, g, dx, dInit[0]));

    /// <summary>n_x, the rows n_a of h⟨t⟩ and those of the carry [h⟨t⟩].</summary>
    internal static LayerSizes Sizes(LayerNormGruParameters p) => new(p.InputSize, p.HiddenSize, [p.HiddenSize]);

    // ---- checks ----

    /// <summary>The recurrence's parameters, named <c>name.Leaf</c> in problems of <paramref name="argument"/>: the one check of the sequence functions and of the layers.</summary>
    internal static IEnumerable<Problem> CheckRecurrence(LayerNormGruParameters p, string argument, string name)
    {
        static int? Third(int? rows) => rows is { } r && r % 3 == 0 ? r / 3 : null;
        var na = Shapes.Consensus(p.Whh?.ColumnCount, Third(p.Whh?.RowCount), Third(p.Wih?.RowCount), Third(p.Bih?.Count), Third(p.Bhh?.Count),
            Third(p.GainIh?.Count), Third(p.GainHh?.Count));
        var nx = p.Wih?.ColumnCount ?? 0;
        return Shapes.All(
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Wih)), p.Wih, 3 * na, nx, "3n_a×n_x"),
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Whh)), p.Whh, 3 * na, na, "3n_a×n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Bih)), p.Bih, 3 * na, "3n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Bhh)), p.Bhh, 3 * na, "3n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.GainIh)), p.GainIh, 3 * na, "3n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.GainHh)), p.GainHh, 3 * na, "3n_a"),
            CellShapes.PositiveFinite(argument, Layer.Named(name, nameof(p.Epsilon)), p.Epsilon));
    }
}
