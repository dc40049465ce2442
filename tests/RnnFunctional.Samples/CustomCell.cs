using System.Collections.Immutable;
using FsCheck;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using Xunit;

namespace RnnFunctional.Samples;

#region custom-cell-parameters
/// <summary>
/// Parameters of a coupled-gate LSTM (CIFG): the input gate is 1 − the forget gate. Each W is n_a×(n_a+n_x) and
/// acts on [a⟨t−1⟩; x⟨t⟩]; each b has length n_a. Gradients have this same type.
/// </summary>
public sealed record CoupledLstmParameters(Matrix<double> Wf, Vector<double> Bf, Matrix<double> Wc, Vector<double> Bc,
    Matrix<double> Wo, Vector<double> Bo) : IParameterTree<CoupledLstmParameters>
{
    public ImmutableArray<Leaf> ToLeaves() =>
        [Leaf.Of(nameof(Wf), Wf), Leaf.Of(nameof(Bf), Bf), Leaf.Of(nameof(Wc), Wc), Leaf.Of(nameof(Bc), Bc),
         Leaf.Of(nameof(Wo), Wo), Leaf.Of(nameof(Bo), Bo)];

    public CoupledLstmParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(ToLeaves(), leaves, l => new CoupledLstmParameters(
            l[0].ToMatrix(), l[1].ToVector(), l[2].ToMatrix(), l[3].ToVector(), l[4].ToMatrix(), l[5].ToVector()));
}

/// <summary>The carry: a⟨t⟩ and c⟨t⟩, each n_a×m.</summary>
public sealed record CoupledLstmState(Matrix<double> A, Matrix<double> C);

/// <summary>What a step keeps for its backward.</summary>
public sealed record CoupledLstmCache(CoupledLstmParameters P, Matrix<double> Concat, Matrix<double> CPrev,
    Matrix<double> F, Matrix<double> CTilde, Matrix<double> O, Matrix<double> TanhC);
#endregion

#region custom-cell
/// <summary>The coupled-gate LSTM as a <see cref="Cell{TParams,TCarry,TCache}"/>: forward and backward side by side.</summary>
public static class CoupledLstm
{
    public static Cell<CoupledLstmParameters, CoupledLstmState, CoupledLstmCache> Cell { get; } =
        new(Step, Backward, s => [s.A, s.C], parts => new CoupledLstmState(parts[0], parts[1]));

    private static CellStep<CoupledLstmState, CoupledLstmCache> Step(CoupledLstmParameters p, CoupledLstmState s, Matrix<double> x)
    {
        var concat = s.A.Stack(x);                                           // [a⟨t−1⟩; x⟨t⟩]
        var f = Affine(p.Wf, concat, p.Bf).Map(Sigmoid);                     // f = σ(Wf·concat + bf)
        var cTilde = Affine(p.Wc, concat, p.Bc).Map(Math.Tanh);              // c̃ = tanh(Wc·concat + bc)
        var o = Affine(p.Wo, concat, p.Bo).Map(Sigmoid);                     // o = σ(Wo·concat + bo)
        var c = f.PointwiseMultiply(s.C) + (1 - f).PointwiseMultiply(cTilde); // c = f⊙c_prev + (1−f)⊙c̃
        var tanhC = c.Map(Math.Tanh);
        var a = o.PointwiseMultiply(tanhC);                                  // a = o⊙tanh(c)
        return new(new CoupledLstmState(a, c), a, new CoupledLstmCache(p, concat, s.C, f, cTilde, o, tanhC));
    }

    private static CellGradient<CoupledLstmParameters, CoupledLstmState> Backward(
        CoupledLstmCache k, CoupledLstmState dNext, Matrix<double> dOut)
    {
        var da = dNext.A + dOut;                                                             // a⟨t⟩ feeds the next step and the output
        var dO = da.PointwiseMultiply(k.TanhC);                                              // do = da⊙tanh(c)
        var dc = dNext.C + da.PointwiseMultiply(k.O).PointwiseMultiply(1 - k.TanhC.PointwiseMultiply(k.TanhC)); // dc += da⊙o⊙(1 − tanh²c)
        var dF = dc.PointwiseMultiply(k.CPrev - k.CTilde);                                   // df = dc⊙(c_prev − c̃)
        var dCTilde = dc.PointwiseMultiply(1 - k.F);                                         // dc̃ = dc⊙(1 − f)
        var dzf = dF.PointwiseMultiply(k.F.PointwiseMultiply(1 - k.F));                      // dzf = df⊙f⊙(1 − f)
        var dzc = dCTilde.PointwiseMultiply(1 - k.CTilde.PointwiseMultiply(k.CTilde));       // dzc = dc̃⊙(1 − c̃²)
        var dzo = dO.PointwiseMultiply(k.O.PointwiseMultiply(1 - k.O));                      // dzo = do⊙o⊙(1 − o)
        var dConcat = k.P.Wf.TransposeThisAndMultiply(dzf) + k.P.Wc.TransposeThisAndMultiply(dzc) + k.P.Wo.TransposeThisAndMultiply(dzo);
        var na = k.CPrev.RowCount;
        var gradients = new CoupledLstmParameters(
            dzf.TransposeAndMultiply(k.Concat), dzf.RowSums(),                              // dWf = dzf·concatᵀ, dbf = Σ_columns dzf
            dzc.TransposeAndMultiply(k.Concat), dzc.RowSums(),
            dzo.TransposeAndMultiply(k.Concat), dzo.RowSums());
        var dPrev = new CoupledLstmState(dConcat.SubMatrix(0, na, 0, dConcat.ColumnCount),  // da⟨t−1⟩: the first n_a rows of dconcat
                                         dc.PointwiseMultiply(k.F));                         // dc⟨t−1⟩ = dc⊙f
        return new(dPrev, dConcat.SubMatrix(na, dConcat.RowCount - na, 0, dConcat.ColumnCount), gradients);
    }

    private static Matrix<double> Affine(Matrix<double> w, Matrix<double> concat, Vector<double> b)
    {
        var z = w * concat;
        return z + Matrix<double>.Build.Dense(z.RowCount, z.ColumnCount, (i, _) => b[i]);
    }

    private static double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));
}
#endregion

public sealed class CustomCellSample
{
    #region custom-cell-run
    [Fact]
    public void CoupledLstmRunsOnTheLibrarysScan()
    {
        var random = new Random(1);
        var (nx, na, m, steps) = (3, 4, 2, 5);
        Matrix<double> W() => Draw.Matrix(random, na, na + nx, 0.5);
        Vector<double> B() => Draw.Vector(random, na, 0.1);
        var p = new CoupledLstmParameters(W(), B(), W(), B(), W(), B());
        var xs = Draw.Sequence(random, steps, nx, m);
        var init = new CoupledLstmState(Matrix<double>.Build.Dense(na, m), Matrix<double>.Build.Dense(na, m));

        var forward = Recurrence.Forward(CoupledLstm.Cell, p, xs, init);     // outputs a⟨1⟩..a⟨T⟩, caches, final carry
        var dOutputs = forward.Outputs.Select(a => 2 * a).ToImmutableArray(); // gradient of Σ_t ‖a⟨t⟩‖²
        var zeroState = new CoupledLstmState(Matrix<double>.Build.Dense(na, m), Matrix<double>.Build.Dense(na, m));
        var back = Recurrence.Backward(CoupledLstm.Cell, Tree.ZerosLike(p), forward.Caches, dOutputs, zeroState);

        double Loss(CoupledLstmParameters q) =>
            Recurrence.Forward(CoupledLstm.Cell, q, xs, init).Outputs.Sum(a => a.PointwiseMultiply(a).Enumerate().Sum());
        var report = GradCheck.Tree(Loss, p, back.Gradients, GradCheckOptions.Ridders);
        Assert.True(report.Passes(1e-6), report.Summary());
        Assert.True(Loss(Tree.Subtract(p, Tree.Scale(0.01, back.Gradients))) < Loss(p));  // a step of gradient descent
    }
    #endregion
}

#region custom-cell-properties
/// <summary>The coupled-gate LSTM proven by the laws and gradient properties of RnnFunctional.Testing.</summary>
public sealed class CoupledLstmProperties
{
    private static readonly CellUnderTest<CoupledLstmParameters, CoupledLstmState, CoupledLstmCache> Subject =
        CellUnderTest.Of("CoupledLstm", CoupledLstm.Cell,
            parameters: (d, random) =>
            {
                var scale = 1.5 / Math.Sqrt(d.Na + d.Nx);
                Matrix<double> W() => Draw.Matrix(random, d.Na, d.Na + d.Nx, scale);
                Vector<double> B() => Draw.Vector(random, d.Na, 0.5);
                return new CoupledLstmParameters(W(), B(), W(), B(), W(), B());
            },
            stateRows: d => [d.Na, d.Na]);   // the carry splits into a⟨t⟩ and c⟨t⟩

    [Property(MaxTest = 100)]
    public Property GradientsMatchFiniteDifferences() => CellLaws.GradientsMatchFiniteDifferences(Subject);

    [Property(MaxTest = 100)]
    public Property DirectionalDerivativeMatches() => CellLaws.DirectionalDerivativeMatches(Subject);

    [Property(MaxTest = 100)]
    public Property ScanOverConcatenationContinuesFromFinalCarry() => CellLaws.ScanOverConcatenationContinuesFromFinalCarry(Subject);

    [Property(MaxTest = 100)]
    public Property BatchEqualsColumnsRunAlone() => CellLaws.BatchEqualsColumnsRunAlone(Subject);

    [Property(MaxTest = 100)]
    public Property OneStepScanEqualsCell() => CellLaws.OneStepScanEqualsCell(Subject);

    [Property(MaxTest = 50)]
    public Property NoArgumentIsMutated() => CellLaws.NoArgumentIsMutated(Subject);
}
#endregion
