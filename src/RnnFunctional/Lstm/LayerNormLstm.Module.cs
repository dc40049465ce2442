using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The layer-normalized LSTM (Ba, Kiros and Hinton 2016; see <see cref="LayerNormLstmParameters"/>): each gate block of
/// Wx·x⟨t⟩ and of Wh·a⟨t−1⟩ and the cell state c⟨t⟩ normalized per column, with learned gains and biases. The
/// sequence functions run on the sequence driver (<see cref="LayerNormLstmFused"/>); <see cref="Cell"/> is the same
/// cell for the generic fold. Every function validates its arguments (throwing <see cref="ArgumentException"/> that
/// names the argument and the expected shape); the <c>Try</c> variants return every problem as a
/// <see cref="Validation{FAIL,SUCCESS}"/>.
/// </summary>
public static class LayerNormLstm
{
    /// <summary>The default ε added to the variance of every normalization (<see cref="LayerNormLstmParameters.Epsilon"/>), PyTorch's nn.LayerNorm default.</summary>
    public const double DefaultEpsilon = LayerNorm.Epsilon;

    /// <summary>The cell as a value, for <see cref="Recurrence"/> and <see cref="Layer.Of{TParams,TCarry,TCache}"/>: its carry is (a⟨t⟩, c⟨t⟩), its output a⟨t⟩.</summary>
    public static Cell<LayerNormLstmParameters, LstmState, LayerNormLstmCache> Cell { get; } = CellOf.Lstm<LayerNormLstmParameters, LayerNormLstmCache>(Step, Back);

    // ---- the cell on matrices: forward and backward, line for line like the math ----

    private static Matrix<double> ScaleRows(Vector<double> v, Matrix<double> m) => m.MapIndexed((row, _, x) => v[row] * x);

    private static Matrix<double> AddRows(Matrix<double> m, Vector<double> v) => m.MapIndexed((row, _, x) => x + v[row]);

    private static (LstmState Next, LayerNormLstmCache Cache) Step(LayerNormLstmParameters p, Matrix<double> xt, Matrix<double> aPrev, Matrix<double> cPrev)
    {
        var (na, zero) = (p.HiddenSize, Vector<double>.Build.Dense(4 * p.HiddenSize));
        var (xHat, xRstd) = LayerNorm.Rows(Ops.Affine(p.Wx, xt, zero), 4, p.Epsilon);                      // x̂ = LN(Wx·x), per gate block
        var (hHat, hRstd) = LayerNorm.Rows(Ops.Affine(p.Wh, aPrev, zero), 4, p.Epsilon);                   // ĥ = LN(Wh·a_prev), per gate block
        var z = AddRows(Ops.Add(ScaleRows(p.GainX, xHat), ScaleRows(p.GainH, hHat)), p.B);      // z = GainX⊙x̂ + GainH⊙ĥ + B
        var i = Ops.Sigmoid(Ops.Rows(z, 0, na));                                                // Γi = σ(z_i)
        var f = Ops.Sigmoid(Ops.Rows(z, na, na));                                               // Γf = σ(z_f)
        var g = Ops.Tanh(Ops.Rows(z, 2 * na, na));                                              // g = tanh(z_g)
        var o = Ops.Sigmoid(Ops.Rows(z, 3 * na, na));                                           // Γo = σ(z_o)
        var c = Ops.Add(Ops.Hadamard(f, cPrev), Ops.Hadamard(i, g));                            // c = Γf⊙c_prev + Γi⊙g
        var (cHat, cRstd) = LayerNorm.Rows(c, 1, p.Epsilon);                                               // ĉ = LN(c)
        var a = Ops.Hadamard(o, Ops.Tanh(AddRows(ScaleRows(p.GainC, cHat), p.BiasC)));          // a = Γo⊙tanh(GainC⊙ĉ + BiasC)
        return (new(a, c), new(p, xt, aPrev, cPrev, xHat, xRstd, hHat, hRstd, Ops.StackRows(i, f, g, o), c, cHat, cRstd));
    }

    private static (Matrix<double> Dxt, Matrix<double> DaPrev, Matrix<double> DcPrev, LayerNormLstmParameters Gradients) Back(Matrix<double> da,
        Matrix<double> dc, LayerNormLstmCache cache)
    {
        var (p, na) = (cache.Parameters, cache.Parameters.HiddenSize);
        var (i, f, g, o) = (Ops.Rows(cache.Gates, 0, na), Ops.Rows(cache.Gates, na, na), Ops.Rows(cache.Gates, 2 * na, na), Ops.Rows(cache.Gates, 3 * na, na));
        var tanhS = Ops.Tanh(AddRows(ScaleRows(p.GainC, cache.CHat), p.BiasC));                 // tanh(s), s = GainC⊙ĉ + BiasC
        var dzo = Ops.SigmoidBackward(o, Ops.Hadamard(da, tanhS));                              // dz_o = da⊙tanh(s)⊙Γo⊙(1 − Γo)
        var ds = Ops.TanhBackward(tanhS, Ops.Hadamard(da, o));                                  // ds = da⊙Γo⊙(1 − tanh²(s))
        var dC = Ops.Add(dc, LayerNorm.RowsBackward(cache.CHat, cache.CRstd, ScaleRows(p.GainC, ds))); // dc ← dc + LNᵀ(ds⊙GainC)
        var dzi = Ops.SigmoidBackward(i, Ops.Hadamard(dC, g));                                  // dz_i = dc⊙g⊙Γi⊙(1 − Γi)
        var dzf = Ops.SigmoidBackward(f, Ops.Hadamard(dC, cache.CPrev));                        // dz_f = dc⊙c_prev⊙Γf⊙(1 − Γf)
        var dzg = Ops.TanhBackward(g, Ops.Hadamard(dC, i));                                     // dz_g = dc⊙Γi⊙(1 − g²)
        var dz = Ops.StackRows(dzi, dzf, dzg, dzo);
        var du = LayerNorm.RowsBackward(cache.XHat, cache.XRstd, ScaleRows(p.GainX, dz));       // dU = LNᵀ(dz⊙GainX)
        var dr = LayerNorm.RowsBackward(cache.HHat, cache.HRstd, ScaleRows(p.GainH, dz));       // dR = LNᵀ(dz⊙GainH)
        var gradients = p with
        {
            Wx = Ops.MulTB(du, cache.Xt), Wh = Ops.MulTB(dr, cache.APrev),                      // dWx = dU·xᵀ, dWh = dR·a_prevᵀ
            B = Ops.RowSums(dz),                                                                // dB = Σ_columns dz
            GainX = Ops.RowSums(Ops.Hadamard(dz, cache.XHat)),                                  // dGainX = Σ_columns dz⊙x̂
            GainH = Ops.RowSums(Ops.Hadamard(dz, cache.HHat)),                                  // dGainH = Σ_columns dz⊙ĥ
            GainC = Ops.RowSums(Ops.Hadamard(ds, cache.CHat)), BiasC = Ops.RowSums(ds),         // dGainC = Σ ds⊙ĉ, dBiasC = Σ ds
            Wy = Ops.ZerosLike(p.Wy), By = Ops.ZerosLike(p.By),
        };
        return (Ops.MulTA(p.Wx, du), Ops.MulTA(p.Wh, dr), Ops.Hadamard(dC, f), gradients);     // dx = Wxᵀ·dU, da_prev = Whᵀ·dR, dc_prev = dc⊙Γf
    }

    // ---- public API ----

    /// <summary>The forward pass over a sequence, on the sequence driver.</summary>
    /// <param name="p">Parameters: Wx 4n_a×n_x, Wh 4n_a×n_a, B, GainX, GainH 4n_a, GainC, BiasC n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <param name="c0">c⟨0⟩, n_a×m.</param>
    /// <returns>The states a⟨1⟩..a⟨T⟩, the cells c⟨1⟩..c⟨T⟩ and the predictions ŷ⟨1⟩..ŷ⟨T⟩.</returns>
    [Pure]
    public static LayerNormLstmForward Forward(LayerNormLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
        Module.Forward(p, xs, [a0, c0]).OrThrow();

    /// <summary><see cref="Forward"/> with its checks as a value: every problem found, or the result.</summary>
    /// <param name="p">As in <see cref="Forward"/>.</param>
    /// <param name="xs">As in <see cref="Forward"/>.</param>
    /// <param name="a0">As in <see cref="Forward"/>.</param>
    /// <param name="c0">As in <see cref="Forward"/>.</param>
    [Pure]
    public static Validation<Error, LayerNormLstmForward> TryForward(LayerNormLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
        Module.Forward(p, xs, [a0, c0]).ToValidation();

    /// <summary>Back-propagation through time of outside gradients da⟨t⟩ on the states, with dc⟨T⟩ = 0.</summary>
    /// <param name="forward">The result of <see cref="Forward"/>.</param>
    /// <param name="da">da⟨1⟩..da⟨T⟩, each n_a×m: the gradient each a⟨t⟩ receives from outside the recurrence.</param>
    /// <returns>dx⟨1⟩..dx⟨T⟩, da⟨0⟩, dc⟨0⟩ and the summed gradients (read-out entries zero).</returns>
    [Pure]
    public static LayerNormLstmGradient Backward(LayerNormLstmForward forward, ImmutableArray<Matrix<double>> da) =>
        Module.Backward(forward, da).OrThrow();

    /// <summary><see cref="Backward"/> with its checks as a value.</summary>
    /// <param name="forward">As in <see cref="Backward"/>.</param>
    /// <param name="da">As in <see cref="Backward"/>.</param>
    [Pure]
    public static Validation<Error, LayerNormLstmGradient> TryBackward(LayerNormLstmForward forward, ImmutableArray<Matrix<double>> da) =>
        Module.Backward(forward, da).ToValidation();

    /// <summary>
    /// The summed softmax cross-entropy of the read-out, Σ_t Σ_j −log ŷ⟨t⟩[labels[t][j], j], and its exact gradients.
    /// With <paramref name="every"/> = k the forward keeps the carry every k steps only and the backward recomputes
    /// each segment: bitwise the same results, O(T/k + k) states.
    /// </summary>
    /// <param name="p">Parameters: Wx 4n_a×n_x, Wh 4n_a×n_a, B, GainX, GainH 4n_a, GainC, BiasC n_a, Wy n_y×n_a, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="a0">a⟨0⟩, n_a×m.</param>
    /// <param name="c0">c⟨0⟩, n_a×m.</param>
    /// <param name="labels">T rows of m class indices: labels[t][j] ∈ [0, n_y) is the class of example j at step t.</param>
    /// <param name="every">k ≥ 1: the distance between kept carries; omitted, every step is kept.</param>
    [Pure]
    public static LayerNormLstmLoss LossAndGradients(LayerNormLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0,
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
    public static Validation<Error, LayerNormLstmLoss> TryLossAndGradients(LayerNormLstmParameters p, ImmutableArray<Matrix<double>> xs,
        Matrix<double> a0, Matrix<double> c0, ImmutableArray<ImmutableArray<int>> labels, int? every = null) =>
        Module.Loss(p, xs, [a0, c0], labels, every).ToValidation();

    /// <summary>Checks that the parameters are finite and consistent with each other.</summary>
    /// <param name="p">Parameters to check.</param>
    /// <returns>The parameters, or every problem found.</returns>
    [Pure]
    public static Validation<Error, LayerNormLstmParameters> Validate(LayerNormLstmParameters p) => Module.Validate(p);

    // ---- on the sequence driver ----

    /// <summary>The sequence functions on the driver, given what this cell adds to them.</summary>
    internal static readonly FusedModule<LayerNormLstmParameters, LayerNormLstmForward, LayerNormLstmGradient, LayerNormLstmLoss> Module = new(
        nameof(LayerNormLstm), new(LayerNormLstmFused.Of, LayerNormLstmFused.Gradients), CheckRecurrence, Sizes,
        p => (p.Wy, p.By), (p, wy, by) => p with { Wy = wy, By = by }, [("a0", "n_a"), ("c0", "n_a")],
        (p, states, tape) => new(p, states, Driver.Part(tape, 1), tape), f => (f.Parameters, f.States, f.Tape),
        (dx, dInit, g) => new(dx, dInit[0], dInit[1], g), (loss, g, dx, dInit) => new(loss, g, dx, dInit[0], dInit[1]));

    /// <summary>n_x, the rows n_a of a⟨t⟩ and those of the carry [a⟨t⟩, c⟨t⟩].</summary>
    internal static LayerSizes Sizes(LayerNormLstmParameters p) => new(p.InputSize, p.HiddenSize, [p.HiddenSize, p.HiddenSize]);

    // ---- checks ----

    /// <summary>The recurrence's parameters, named <c>name.Leaf</c> in problems of <paramref name="argument"/>: the one check of the sequence functions and of the layers.</summary>
    internal static IEnumerable<Problem> CheckRecurrence(LayerNormLstmParameters p, string argument, string name)
    {
        static int? Fourth(int? rows) => rows is { } r && r % 4 == 0 ? r / 4 : null;
        var na = Shapes.Consensus(p.Wh?.ColumnCount, Fourth(p.Wh?.RowCount), Fourth(p.Wx?.RowCount), Fourth(p.B?.Count), Fourth(p.GainX?.Count),
            Fourth(p.GainH?.Count), p.GainC?.Count, p.BiasC?.Count);
        var nx = p.Wx?.ColumnCount ?? 0;
        return Shapes.All(
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Wx)), p.Wx, 4 * na, nx, "4n_a×n_x"),
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Wh)), p.Wh, 4 * na, na, "4n_a×n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.B)), p.B, 4 * na, "4n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.GainX)), p.GainX, 4 * na, "4n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.GainH)), p.GainH, 4 * na, "4n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.GainC)), p.GainC, na, "n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.BiasC)), p.BiasC, na, "n_a"),
            CellShapes.PositiveFinite(argument, Layer.Named(name, nameof(p.Epsilon)), p.Epsilon));
    }
}
