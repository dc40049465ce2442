using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// The LSTM with a projection (PyTorch's nn.LSTM with proj_size; see <see cref="ProjectedLstmParameters"/>):
/// h⟨t⟩ = Whr·(Γo⊙tanh(c⟨t⟩)), and the gates read h⟨t−1⟩ of n_p rows. The sequence functions run on the sequence driver
/// (<see cref="ProjectedLstmFused"/>); <see cref="Cell"/> is the same cell for the generic fold. Every function validates
/// its arguments (throwing <see cref="ArgumentException"/> that names the argument and the expected shape); the
/// <c>Try</c> variants return every problem as a <see cref="Validation{FAIL,SUCCESS}"/>.
/// </summary>
public static class ProjectedLstm
{
    /// <summary>The cell as a value, for <see cref="Recurrence"/> and <see cref="Layer.Of{TParams,TCarry,TCache}"/>: its carry is (h⟨t⟩, c⟨t⟩) as an <see cref="LstmState"/> (A = h, n_p×m), its output h⟨t⟩.</summary>
    public static Cell<ProjectedLstmParameters, LstmState, ProjectedLstmCache> Cell { get; } = CellOf.Lstm<ProjectedLstmParameters, ProjectedLstmCache>(Step, Back);

    // ---- the cell on matrices: forward and backward, line for line like the math ----

    private static Matrix<double> Gate(Matrix<double> w, int k, int na) => Ops.Rows(w, k * na, na);

    private static (LstmState Next, ProjectedLstmCache Cache) Step(ProjectedLstmParameters p, Matrix<double> xt, Matrix<double> hPrev, Matrix<double> cPrev)
    {
        var na = p.HiddenSize;
        var z = Ops.Affine(p.Wih, xt, p.Whh, hPrev, p.Bih + p.Bhh);                          // z = (Wih·x + Bih + Bhh) + Whh·h_prev
        var (i, f) = (Ops.Sigmoid(Gate(z, 0, na)), Ops.Sigmoid(Gate(z, 1, na)));             // Γi = σ(z_i), Γf = σ(z_f)
        var (g, o) = (Ops.Tanh(Gate(z, 2, na)), Ops.Sigmoid(Gate(z, 3, na)));                // g = tanh(z_g), Γo = σ(z_o)
        var c = Ops.Add(Ops.Hadamard(f, cPrev), Ops.Hadamard(i, g));                         // c = Γf⊙c_prev + Γi⊙g
        var m = Ops.Hadamard(o, Ops.Tanh(c));                                                // m = Γo⊙tanh(c)
        var h = Ops.Mul(p.Whr, m);                                                           // h = Whr·m
        return (new(h, c), new(p, xt, hPrev, cPrev, Ops.StackRows(i, f, g, o), c, m));
    }

    private static (Matrix<double> Dxt, Matrix<double> DhPrev, Matrix<double> DcPrev, ProjectedLstmParameters Gradients) Back(Matrix<double> dh,
        Matrix<double> dc, ProjectedLstmCache cache)
    {
        var (p, na) = (cache.Parameters, cache.Parameters.HiddenSize);
        var (i, f, g, o) = (Gate(cache.Gates, 0, na), Gate(cache.Gates, 1, na), Gate(cache.Gates, 2, na), Gate(cache.Gates, 3, na));
        var dm = Ops.MulTA(p.Whr, dh);                                                       // dm = Whrᵀ·dh
        var tanhC = Ops.Tanh(cache.C);
        var dzo = Ops.SigmoidBackward(o, Ops.Hadamard(dm, tanhC));                           // dz_o = dm⊙tanh(c)⊙Γo⊙(1 − Γo)
        var dC = Ops.Add(dc, Ops.TanhBackward(tanhC, Ops.Hadamard(dm, o)));                  // dc ← dc + dm⊙Γo⊙(1 − tanh²(c))
        var dzf = Ops.SigmoidBackward(f, Ops.Hadamard(dC, cache.CPrev));                     // dz_f = dc⊙c_prev⊙Γf⊙(1 − Γf)
        var dzi = Ops.SigmoidBackward(i, Ops.Hadamard(dC, g));                               // dz_i = dc⊙g⊙Γi⊙(1 − Γi)
        var dzg = Ops.TanhBackward(g, Ops.Hadamard(dC, i));                                  // dz_g = dc⊙Γi⊙(1 − g²)
        var dz = Ops.StackRows(dzi, dzf, dzg, dzo);
        Matrix<double> Back(Matrix<double> w) => Ops.Sum(Ops.MulTA(Gate(w, 1, na), dzf), Ops.MulTA(Gate(w, 0, na), dzi), // Σ_gates W_gᵀ·dz_g,
            Ops.MulTA(Gate(w, 2, na), dzg), Ops.MulTA(Gate(w, 3, na), dzo));                                             // f, i, g, o
        var db = Ops.RowSums(dz);                                                            // dBih = dBhh = Σ_columns dz
        var gradients = p with
        {
            Wih = Ops.MulTB(dz, cache.Xt), Whh = Ops.MulTB(dz, cache.HPrev), Bih = db, Bhh = db.Clone(), // dWih = dz·xᵀ, dWhh = dz·h_prevᵀ
            Whr = Ops.MulTB(dh, cache.M),                                                    // dWhr = dh·mᵀ
            Wy = Ops.ZerosLike(p.Wy), By = Ops.ZerosLike(p.By),
        };
        return (Back(p.Wih), Back(p.Whh), Ops.Hadamard(dC, f), gradients);                  // dx, dh_prev, dc_prev = dc⊙Γf
    }

    // ---- public API ----

    /// <summary>The forward pass over a sequence, on the sequence driver.</summary>
    /// <param name="p">Parameters: Wih 4n_a×n_x, Whh 4n_a×n_p, Bih and Bhh 4n_a, Whr n_p×n_a, Wy n_y×n_p, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="h0">h⟨0⟩, n_p×m.</param>
    /// <param name="c0">c⟨0⟩, n_a×m.</param>
    /// <returns>The states h⟨1⟩..h⟨T⟩ and the cells c⟨1⟩..c⟨T⟩.</returns>
    [Pure]
    public static ProjectedLstmForward Forward(ProjectedLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> h0, Matrix<double> c0) =>
        Module.Forward(p, xs, [h0, c0]).OrThrow();

    /// <summary><see cref="Forward"/> with its checks as a value: every problem found, or the result.</summary>
    /// <param name="p">As in <see cref="Forward"/>.</param>
    /// <param name="xs">As in <see cref="Forward"/>.</param>
    /// <param name="h0">As in <see cref="Forward"/>.</param>
    /// <param name="c0">As in <see cref="Forward"/>.</param>
    [Pure]
    public static Validation<Error, ProjectedLstmForward> TryForward(ProjectedLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> h0, Matrix<double> c0) =>
        Module.Forward(p, xs, [h0, c0]).ToValidation();

    /// <summary>Back-propagation through time of outside gradients dh⟨t⟩ on the states, with dc⟨T⟩ = 0.</summary>
    /// <param name="forward">The result of <see cref="Forward"/>.</param>
    /// <param name="dh">dh⟨1⟩..dh⟨T⟩, each n_p×m: the gradient each h⟨t⟩ receives from outside the recurrence.</param>
    /// <returns>dx⟨1⟩..dx⟨T⟩, dh⟨0⟩, dc⟨0⟩ and the summed gradients (read-out entries zero).</returns>
    [Pure]
    public static ProjectedLstmGradient Backward(ProjectedLstmForward forward, ImmutableArray<Matrix<double>> dh) =>
        Module.Backward(forward, dh).OrThrow();

    /// <summary><see cref="Backward"/> with its checks as a value.</summary>
    /// <param name="forward">As in <see cref="Backward"/>.</param>
    /// <param name="dh">As in <see cref="Backward"/>.</param>
    [Pure]
    public static Validation<Error, ProjectedLstmGradient> TryBackward(ProjectedLstmForward forward, ImmutableArray<Matrix<double>> dh) =>
        Module.Backward(forward, dh).ToValidation();

    /// <summary>
    /// The summed softmax cross-entropy of the read-out ŷ⟨t⟩ = softmax(Wy·h⟨t⟩ + by) and its exact gradients; with
    /// <paramref name="every"/> = k, checkpointed (bitwise the same results).
    /// </summary>
    /// <param name="p">Parameters: Wih 4n_a×n_x, Whh 4n_a×n_p, Bih and Bhh 4n_a, Whr n_p×n_a, Wy n_y×n_p, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="h0">h⟨0⟩, n_p×m.</param>
    /// <param name="c0">c⟨0⟩, n_a×m.</param>
    /// <param name="labels">T rows of m class indices: labels[t][j] ∈ [0, n_y) is the class of example j at step t.</param>
    /// <param name="every">k ≥ 1: the distance between kept carries; omitted, every step is kept.</param>
    [Pure]
    public static ProjectedLstmLoss LossAndGradients(ProjectedLstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> h0, Matrix<double> c0,
        ImmutableArray<ImmutableArray<int>> labels, int? every = null) =>
        Module.Loss(p, xs, [h0, c0], labels, every).OrThrow();

    /// <summary><see cref="LossAndGradients"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="h0">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="c0">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="every">As in <see cref="LossAndGradients"/>.</param>
    [Pure]
    public static Validation<Error, ProjectedLstmLoss> TryLossAndGradients(ProjectedLstmParameters p, ImmutableArray<Matrix<double>> xs,
        Matrix<double> h0, Matrix<double> c0, ImmutableArray<ImmutableArray<int>> labels, int? every = null) =>
        Module.Loss(p, xs, [h0, c0], labels, every).ToValidation();

    /// <summary>Checks that the parameters are finite and consistent with each other.</summary>
    /// <param name="p">Parameters to check.</param>
    /// <returns>The parameters, or every problem found.</returns>
    [Pure]
    public static Validation<Error, ProjectedLstmParameters> Validate(ProjectedLstmParameters p) => Module.Validate(p);

    // ---- on the sequence driver: h has n_a rows there, its last n_a − n_p zero ----

    /// <summary>The sequence functions on the driver, given what this cell adds to them.</summary>
    internal static readonly FusedModule<ProjectedLstmParameters, ProjectedLstmForward, ProjectedLstmGradient, ProjectedLstmLoss> Module = new(
        nameof(ProjectedLstm), new(ProjectedLstmFused.Of, ProjectedLstmFused.Gradients), CheckRecurrence, Sizes,
        p => (p.Wy, p.By), (p, wy, by) => p with { Wy = wy, By = by }, [("h0", "n_p"), ("c0", "n_a")],
        (p, states, tape) => new(p, states, Driver.Part(tape, 1), tape), f => (f.Parameters, f.States, f.Tape),
        (dx, dInit, g) => new(dx, dInit[0], dInit[1], g), (loss, g, dx, dInit) => new(loss, g, dx, dInit[0], dInit[1]));

    /// <summary>n_x, the rows n_p of h⟨t⟩ and those of the carry [h⟨t⟩, c⟨t⟩], n_p and n_a.</summary>
    internal static LayerSizes Sizes(ProjectedLstmParameters p) => new(p.InputSize, p.ProjectionSize, [p.ProjectionSize, p.HiddenSize]);

    // ---- checks ----

    /// <summary>The recurrence's parameters, named <c>name.Leaf</c> in problems of <paramref name="argument"/>.</summary>
    internal static IEnumerable<Problem> CheckRecurrence(ProjectedLstmParameters p, string argument, string name)
    {
        static int? Fourth(int? rows) => rows is { } r && r % 4 == 0 ? r / 4 : null;
        var na = Shapes.Consensus(p.Whr?.ColumnCount, Fourth(p.Wih?.RowCount), Fourth(p.Whh?.RowCount), Fourth(p.Bih?.Count), Fourth(p.Bhh?.Count));
        var np = Shapes.Consensus(p.Whr?.RowCount, p.Whh?.ColumnCount);
        var nx = p.Wih?.ColumnCount ?? 0;
        IEnumerable<Problem> Projection()
        {
            if (np > na) yield return new(argument, $"expected the projection size n_p (the rows of {Layer.Named(name, nameof(p.Whr))}) to be at most n_a = {na} but got {np}");
        }
        return Shapes.All(
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Wih)), p.Wih, 4 * na, nx, "4n_a×n_x"),
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Whh)), p.Whh, 4 * na, np, "4n_a×n_p"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Bih)), p.Bih, 4 * na, "4n_a"),
            Shapes.Vector(argument, Layer.Named(name, nameof(p.Bhh)), p.Bhh, 4 * na, "4n_a"),
            Shapes.Matrix(argument, Layer.Named(name, nameof(p.Whr)), p.Whr, np, na, "n_p×n_a"),
            Projection());
    }
}
