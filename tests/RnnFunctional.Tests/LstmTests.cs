using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using static RnnFunctional.Tests.GradientChecks;

namespace RnnFunctional.Tests;

public sealed class LstmArbitraries
{
    public static Arbitrary<LstmCase> Cases() => LstmCase.Arbitrary(8);
}

/// <summary>Every gradient of the LSTM against Ridders' finite differences, at the bar of 1e-6.</summary>
public sealed class LstmGradientTests
{
    [Property(Arbitrary = [typeof(LstmArbitraries)], MaxTest = 100)]
    public Property CellBackwardMatchesFiniteDifferences(LstmCase c)
    {
        var (xt, da, dc) = (c.Xs[0], c.Da[0], c.Dc);
        // The scalar ⟨da, a⟨t⟩⟩ + ⟨dc, c⟨t⟩⟩: its gradient is what CellBackward(da, dc, cache) returns.
        double F(LstmParameters p, Matrix<double> x, Matrix<double> a, Matrix<double> cPrev)
        {
            var step = Lstm.CellForward(p, x, a, cPrev);
            return Inner([da, dc], [step.A, step.C]);
        }
        var g = Lstm.CellBackward(da, dc, Lstm.CellForward(c.P, xt, c.A0, c.C0).Cache);

        return GradientProperty.Holds(TreeCheck(p => F(p, xt, c.A0, c.C0), c.P, g.Gradients))
            .And(GradientProperty.Holds(MatrixCheck(x => F(c.P, x, c.A0, c.C0), xt, g.Dxt, "xt")))
            .And(GradientProperty.Holds(MatrixCheck(a => F(c.P, xt, a, c.C0), c.A0, g.DaPrev, "aPrev")))
            .And(GradientProperty.Holds(MatrixCheck(cPrev => F(c.P, xt, c.A0, cPrev), c.C0, g.DcPrev, "cPrev")));
    }

    [Property(Arbitrary = [typeof(LstmArbitraries)], MaxTest = 100)]
    public Property BackwardMatchesFiniteDifferences(LstmCase c)
    {
        double F(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
            Inner(c.Da, Lstm.Forward(p, xs, a0, c0).States);
        var g = Lstm.Backward(Lstm.Forward(c.P, c.Xs, c.A0, c.C0), c.Da);

        return GradientProperty.Holds(TreeCheck(p => F(p, c.Xs, c.A0, c.C0), c.P, g.Gradients))
            .And(GradientProperty.Holds(InputCheck((xs, s) => F(c.P, xs, s[0], s[1]), c.Xs, g.Dx, ("a0", c.A0, g.Da0), ("c0", c.C0, g.Dc0))));
    }

    [Property(Arbitrary = [typeof(LstmArbitraries)], MaxTest = 100)]
    public Property LossAndGradientsMatchesFiniteDifferences(LstmCase c)
    {
        double F(LstmParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0, Matrix<double> c0) =>
            Lstm.LossAndGradients(p, xs, a0, c0, c.Labels).Loss;
        var g = Lstm.LossAndGradients(c.P, c.Xs, c.A0, c.C0, c.Labels);

        return GradientProperty.Holds(TreeCheck(p => F(p, c.Xs, c.A0, c.C0), c.P, g.Gradients))
            .And(GradientProperty.Holds(InputCheck((xs, s) => F(c.P, xs, s[0], s[1]), c.Xs, g.Dx, ("a0", c.A0, g.Da0), ("c0", c.C0, g.Dc0))));
    }

    [Property(Arbitrary = [typeof(LstmArbitraries)], MaxTest = 100)]
    public Property HeadGradientsOfBackwardAreZero(LstmCase c)
    {
        var g = Lstm.Backward(Lstm.Forward(c.P, c.Xs, c.A0, c.C0), c.Da).Gradients;
        return (g.Wy.Enumerate().All(v => v == 0) && g.By.All(v => v == 0)).Label("dWy and dby are zero");
    }
}

/// <summary>Algebraic laws of the LSTM's forward and backward folds.</summary>
public sealed class LstmLawTests
{
    [Property(Arbitrary = [typeof(LstmArbitraries)], MaxTest = 100)]
    public Property ForwardEqualsHandLoopOfCellForward(LstmCase c)
    {
        var forward = Lstm.Forward(c.P, c.Xs, c.A0, c.C0);
        var (a, cell) = (c.A0, c.C0);
        var agree = true;
        for (var t = 0; t < c.Xs.Length; t++)
        {
            var step = Lstm.CellForward(c.P, c.Xs[t], a, cell);
            agree &= Compare.Same(step.A, forward.States[t]) && Compare.Same(step.C, forward.Cells[t]) && Compare.Same(step.YHat, forward.Predictions[t]);
            (a, cell) = (step.A, step.C);
        }
        return agree.Label("every state, cell and prediction identical");
    }

    [Property(Arbitrary = [typeof(LawArbitraries)], MaxTest = 100)]
    public Property ForwardOverConcatenationContinuesFromLastState(Cut cut)
    {
        var (c, split) = (new LstmCase(cut.Shape), cut.At);
        var (xs, ys) = (c.Xs[..split], c.Xs[split..]);
        var whole = Lstm.Forward(c.P, c.Xs, c.A0, c.C0);
        var first = Lstm.Forward(c.P, xs, c.A0, c.C0);
        var rest = Lstm.Forward(c.P, ys, first.States[^1], first.Cells[^1]);
        return (Compare.Same(first.States.AddRange(rest.States), whole.States) && Compare.Same(first.Cells.AddRange(rest.Cells), whole.Cells)
                && Compare.Same(first.Predictions.AddRange(rest.Predictions), whole.Predictions))
            .Label($"Forward(xs ++ ys) = Forward(xs), then Forward(ys) from its last (a, c): states, cells and predictions (cut at {split} of {c.Xs.Length})");
    }

    [Property(Arbitrary = [typeof(LstmArbitraries)], MaxTest = 100)]
    public Property BackwardOfOneStepEqualsCellBackward(LstmCase c)
    {
        var xs = c.Xs[..1];
        var whole = Lstm.Backward(Lstm.Forward(c.P, xs, c.A0, c.C0), c.Da[..1]);
        var zero = Matrix<double>.Build.Dense(c.A0.RowCount, c.A0.ColumnCount);
        var cell = Lstm.CellBackward(c.Da[0], zero, Lstm.CellForward(c.P, xs[0], c.A0, c.C0).Cache);
        return (Compare.Same(whole.Dx[0], cell.Dxt) && Compare.Same(whole.Da0, cell.DaPrev) && Compare.Same(whole.Dc0, cell.DcPrev) && Compare.Same(whole.Gradients, cell.Gradients))
            .Label("dx, da0, dc0 and gradients identical (dc⟨T⟩ = 0)");
    }

    /// <summary>
    /// With bf = +40 and bi = −40 the gate pre-activations are 40 ± |W·concat| with |W·concat| ≤ 1.5·√(n_a+n_x) ≤ 6
    /// (and typically below 1), so 1 − Γf and Γi are at most e^−34 ≈ 2e-15 and typically about e^−39 ≈ 1e-17:
    /// c⟨t⟩ = Γf⊙c⟨t−1⟩ + Γi⊙c̃ stays c⟨0⟩ to 1e-15. A cell that mixed up the gates, the bias or the concatenation
    /// order would move c by the order of its entries.
    /// </summary>
    [Property(Arbitrary = [typeof(LstmArbitraries)], MaxTest = 100)]
    public Property SaturatedForgetAndShutInputGatesCarryCUnchanged(LstmCase c)
    {
        var na = c.P.HiddenSize;
        var p = c.P with { Bf = Vector<double>.Build.Dense(na, 40.0), Bi = Vector<double>.Build.Dense(na, -40.0) };
        var forward = Lstm.Forward(p, c.Xs, c.A0, c.C0);
        var drift = forward.Cells.Max(cell => (cell - c.C0).Enumerate().Max(Math.Abs));
        return (drift <= 1e-15).Label($"max |c⟨t⟩ − c⟨0⟩| = {drift:E2}");
    }

    [Property(Arbitrary = [typeof(LawArbitraries)], MaxTest = 100)]
    public Property BatchEqualsColumnsRunAlone(LstmCase c)
    {
        var batch = Lstm.LossAndGradients(c.P, c.Xs, c.A0, c.C0, c.Labels);
        var forward = Lstm.Forward(c.P, c.Xs, c.A0, c.C0);
        var columns = Enumerable.Range(0, c.A0.ColumnCount).Select(j =>
        {
            var xs = c.Xs.Select(x => Column(x, j)).ToImmutableArray();
            var labels = c.Labels.Select(row => ImmutableArray.Create(row[j])).ToImmutableArray();
            return (Forward: Lstm.Forward(c.P, xs, Column(c.A0, j), Column(c.C0, j)), Loss: Lstm.LossAndGradients(c.P, xs, Column(c.A0, j), Column(c.C0, j), labels));
        }).ToArray();

        const double tolerance = 1e-12;
        var statesAgree = columns.Select((col, j) =>
            Compare.Close(col.Forward.States, [.. forward.States.Select(b => Column(b, j))], tolerance) &&
            Compare.Close(col.Forward.Cells, [.. forward.Cells.Select(b => Column(b, j))], tolerance)).All(x => x);
        var lossAgrees = Compare.Close(columns.Sum(col => col.Loss.Loss), batch.Loss, tolerance);
        var gradientSum = columns.Select(col => col.Loss.Gradients).Aggregate((a, b) => a + b);
        var gradientsAgree = Compare.Close(gradientSum, batch.Gradients, tolerance);
        var initialAgree = columns.Select((col, j) => Compare.Close(col.Loss.Da0, Column(batch.Da0, j), tolerance) && Compare.Close(col.Loss.Dc0, Column(batch.Dc0, j), tolerance)).All(x => x);
        return statesAgree.Label("states and cells of each column")
            .And(lossAgrees.Label("loss is the sum of the columns' losses"))
            .And(gradientsAgree.Label("gradients are the sum of the columns' gradients"))
            .And(initialAgree.Label("da0 and dc0 of each column"));
    }

    [Property(Arbitrary = [typeof(LstmArbitraries)], MaxTest = 50)]
    public Property NoArgumentIsMutated(LstmCase c)
    {
        var before = Snapshot(c);
        var forward = Lstm.Forward(c.P, c.Xs, c.A0, c.C0);
        _ = Lstm.Backward(forward, c.Da);
        _ = Lstm.LossAndGradients(c.P, c.Xs, c.A0, c.C0, c.Labels);
        _ = Lstm.CellBackward(c.Da[0], c.Dc, Lstm.CellForward(c.P, c.Xs[0], c.A0, c.C0).Cache);
        return Snapshot(c).SequenceEqual(before).Label("parameters, inputs, a0, c0, da and dc unchanged");
    }

    [Property(Arbitrary = [typeof(LstmArbitraries)], MaxTest = 20)]
    public Property CellSplitsItsCarryIntoAThenC(LstmCase c)
    {
        var state = new LstmState(c.A0, c.C0);
        var parts = Lstm.Cell.Split(state);
        return (parts.Length == 2 && ReferenceEquals(parts[0], c.A0) && ReferenceEquals(parts[1], c.C0) && Lstm.Cell.Join(parts) == state)
            .Label("Split = [A, C] and Join inverts it");
    }

    [Fact]
    public void InitializeDrawsEveryEntryWithinOneOverRootHiddenSize()
    {
        var p = LstmParameters.Initialize(3, 4, 5, seed: 11);
        Assert.True(Lstm.Validate(p).IsSuccess);
        Assert.Equal((3, 4, 5), (p.InputSize, p.HiddenSize, p.OutputSize));
        Assert.All(Tree.Flatten(p), v => Assert.InRange(Math.Abs(v), 0, 0.5));
        Assert.Equal(p, LstmParameters.Initialize(3, 4, 5, seed: 11));
        Assert.NotEqual(p, LstmParameters.Initialize(3, 4, 5, seed: 12));
    }

    [Fact]
    public void LeavesAreNamedAfterTheFields() =>
        Assert.Equal(["Wf", "Bf", "Wi", "Bi", "Wc", "Bc", "Wo", "Bo", "Wy", "By"], LstmParameters.Initialize(2, 3, 2, 0).ToLeaves().Select(l => l.Name));

    private static double[] Snapshot(LstmCase c) =>
        [.. Tree.Flatten(c.P), .. c.Xs.SelectMany(Draw.Snapshot), .. Draw.Snapshot(c.A0), .. Draw.Snapshot(c.C0),
         .. c.Da.SelectMany(Draw.Snapshot), .. Draw.Snapshot(c.Dc)];
}

/// <summary>Each kind of bad input to the LSTM gets an <see cref="ArgumentException"/> naming the argument and the expected shape.</summary>
public sealed class LstmBadInputTests
{
    // n_x = 3, n_a = 5, n_y = 4, m = 2, T = 3: gate matrices are 5×8
    private static readonly LstmCase Case = new(new Shaped(new Dims(3, 5, 4, 2, 3), 7));
    private static readonly LstmParameters P = Case.P;
    private static readonly ImmutableArray<Matrix<double>> Xs = Case.Xs;
    private static readonly Matrix<double> A0 = Case.A0;
    private static readonly Matrix<double> C0 = Case.C0;

    private static Matrix<double> Zeros(int rows, int columns) => Matrix<double>.Build.Dense(rows, columns);

    private static void Rejects(string argument, string fragment, Action call)
    {
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(argument, e.ParamName);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void ForwardRejectsMismatchedA0() =>
        Rejects("a0", "expected a0 to be n_a×m = 5×2 but got 5×3", () => Lstm.Forward(P, Xs, Zeros(5, 3), C0));

    [Fact]
    public void ForwardRejectsMismatchedC0() =>
        Rejects("c0", "expected c0 to be n_a×m = 5×2 but got 5×3", () => Lstm.Forward(P, Xs, A0, Zeros(5, 3)));

    [Fact]
    public void ForwardRejectsNullC0() =>
        Rejects("c0", "expected c0 to be n_a×m = 5×2 but got null", () => Lstm.Forward(P, Xs, A0, null!));

    [Fact]
    public void ForwardRejectsStepsOfDifferentShapes() =>
        Rejects("xs", "expected xs[1] to be n_x×m = 3×2 but got 3×4", () => Lstm.Forward(P, Xs.SetItem(1, Zeros(3, 4)), A0, C0));

    [Fact]
    public void ForwardRejectsInputOfWrongSize() =>
        Rejects("xs", "expected xs[0] to be n_x×m = 3×2 but got 4×2", () => Lstm.Forward(P, Xs.SetItem(0, Zeros(4, 2)), A0, C0));

    [Fact]
    public void ForwardRejectsEmptySequence() =>
        Rejects("xs", "expected xs to hold at least one step but it is empty", () => Lstm.Forward(P, [], A0, C0));

    [Fact]
    public void ForwardRejectsDefaultSequence() =>
        Rejects("xs", "default (null) array", () => Lstm.Forward(P, default, A0, C0));

    [Fact]
    public void ForwardRejectsNaNInInputs()
    {
        var x = Xs[2].Clone();
        x[1, 0] = double.NaN;
        Rejects("xs", "expected xs[2] to be finite but entry (1, 0) is NaN", () => Lstm.Forward(P, Xs.SetItem(2, x), A0, C0));
    }

    [Fact]
    public void ForwardRejectsInfinityInC0()
    {
        var c0 = C0.Clone();
        c0[4, 1] = double.NegativeInfinity;
        Rejects("c0", "expected c0 to be finite but entry (4, 1) is -Infinity", () => Lstm.Forward(P, Xs, A0, c0));
    }

    [Fact]
    public void ForwardRejectsGateOfWrongWidth() =>
        Rejects("p", "expected Wf to be n_a×(n_a+n_x) = 5×8 but got 5×7", () => Lstm.Forward(P with { Wf = Zeros(5, 7) }, Xs, A0, C0));

    [Fact]
    public void ForwardRejectsGateOfWrongHeight() =>
        Rejects("p", "expected Wo to be n_a×(n_a+n_x) = 5×8 but got 4×8", () => Lstm.Forward(P with { Wo = Zeros(4, 8) }, Xs, A0, C0));

    [Fact]
    public void ForwardRejectsNullGate() =>
        Rejects("p", "expected Wc to be n_a×(n_a+n_x) = 5×8 but got null", () => Lstm.Forward(P with { Wc = null! }, Xs, A0, C0));

    [Fact]
    public void ForwardRejectsGatesWithNoInputColumns() =>
        Rejects("p", "expected the gate weights Wf, Wi, Wc, Wo to be n_a×(n_a+n_x) with n_a = 5 and n_x ≥ 1 but they have 5 columns",
            () => Lstm.Forward(P with { Wf = Zeros(5, 5), Wi = Zeros(5, 5), Wc = Zeros(5, 5), Wo = Zeros(5, 5) }, Xs, A0, C0));

    [Fact]
    public void ForwardRejectsReadOutOfWrongWidth() =>
        Rejects("p", "expected Wy to be n_y×n_a = 4×5 but got 4×6", () => Lstm.Forward(P with { Wy = Zeros(4, 6) }, Xs, A0, C0));

    [Fact]
    public void ForwardRejectsBiasOfWrongLength() =>
        Rejects("p", "expected Bi to have length n_a = 5 but got 3", () => Lstm.Forward(P with { Bi = Vector<double>.Build.Dense(3) }, Xs, A0, C0));

    [Fact]
    public void ForwardRejectsNaNInParameters()
    {
        var wc = P.Wc.Clone();
        wc[2, 6] = double.NaN;
        Rejects("p", "expected Wc to be finite but entry (2, 6) is NaN", () => Lstm.Forward(P with { Wc = wc }, Xs, A0, C0));
    }

    [Fact]
    public void ForwardRejectsNullParameters() =>
        Rejects("p", "expected p to be LstmParameters but got null", () => Lstm.Forward(null!, Xs, A0, C0));

    [Fact]
    public void BackwardRejectsDaOfWrongLength() =>
        Rejects("da", "expected da to have one matrix per step, T = 3, but got 2", () => Lstm.Backward(Lstm.Forward(P, Xs, A0, C0), Case.Da[..2]));

    [Fact]
    public void BackwardRejectsDaOfWrongShape() =>
        Rejects("da", "expected da[1] to be n_a×m = 5×2 but got 2×5", () => Lstm.Backward(Lstm.Forward(P, Xs, A0, C0), Case.Da.SetItem(1, Zeros(2, 5))));

    [Fact]
    public void BackwardRejectsNullForward() =>
        Rejects("forward", "expected forward to be the result of Lstm.Forward but got null", () => Lstm.Backward(null!, Case.Da));

    [Fact]
    public void LossRejectsLabelOutOfRange() =>
        Rejects("labels", "expected labels[1][0] to be a class in [0, n_y) = [0, 4) but got 4",
            () => Lstm.LossAndGradients(P, Xs, A0, C0, Case.Labels.SetItem(1, [4, 0])));

    [Fact]
    public void LossRejectsWrongNumberOfLabelRows() =>
        Rejects("labels", "expected labels to have one row per step, T = 3, but got 2", () => Lstm.LossAndGradients(P, Xs, A0, C0, Case.Labels[..2]));

    [Fact]
    public void LossRejectsWrongNumberOfLabelsInARow() =>
        Rejects("labels", "expected labels[2] to have one label per example, m = 2, but got 3",
            () => Lstm.LossAndGradients(P, Xs, A0, C0, Case.Labels.SetItem(2, [0, 1, 2])));

    [Fact]
    public void LossRejectsMismatchedC0() =>
        Rejects("c0", "expected c0 to be n_a×m = 5×2 but got 4×2", () => Lstm.LossAndGradients(P, Xs, A0, Zeros(4, 2), Case.Labels));

    [Fact]
    public void CellForwardRejectsMismatchedAPrev() =>
        Rejects("aPrev", "expected aPrev to be n_a×m = 5×2 but got 4×2", () => Lstm.CellForward(P, Xs[0], Zeros(4, 2), C0));

    [Fact]
    public void CellForwardRejectsMismatchedCPrev() =>
        Rejects("cPrev", "expected cPrev to be n_a×m = 5×2 but got 5×1", () => Lstm.CellForward(P, Xs[0], A0, Zeros(5, 1)));

    [Fact]
    public void CellForwardRejectsInputOfWrongSize() =>
        Rejects("xt", "expected xt to be n_x×m = 3×2 but got 2×2", () => Lstm.CellForward(P, Zeros(2, 2), A0, C0));

    [Fact]
    public void CellBackwardRejectsDaOfWrongShape() =>
        Rejects("da", "expected da to be n_a×m = 5×2 but got 5×1", () => Lstm.CellBackward(Zeros(5, 1), Case.Dc, Lstm.CellForward(P, Xs[0], A0, C0).Cache));

    [Fact]
    public void CellBackwardRejectsDcOfWrongShape() =>
        Rejects("dc", "expected dc to be n_a×m = 5×2 but got 3×2", () => Lstm.CellBackward(Case.Da[0], Zeros(3, 2), Lstm.CellForward(P, Xs[0], A0, C0).Cache));

    [Fact]
    public void CellBackwardRejectsNullCache() =>
        Rejects("cache", "cache", () => Lstm.CellBackward(Case.Da[0], Case.Dc, null!));

    [Fact]
    public void InitializeRejectsNonPositiveSizes() =>
        Rejects("hiddenSize", "expected hiddenSize to be at least 1 but got 0", () => LstmParameters.Initialize(3, 0, 4, seed: 1));

    [Fact]
    public void TryForwardReportsEveryProblemAtOnce()
    {
        var result = Lstm.TryForward(P, Xs.SetItem(1, Zeros(3, 4)), Zeros(5, 3), Zeros(2, 2));
        Assert.True(result.IsFail);
        var messages = result.FailToSeq().Map(e => e.Message).ToList();
        Assert.Equal(3, messages.Count);
        Assert.Contains(messages, m => m.Contains("xs[1]"));
        Assert.Contains(messages, m => m.Contains("a0"));
        Assert.Contains(messages, m => m.Contains("c0"));
    }

    [Fact]
    public void TryForwardSucceedsOnGoodInput()
    {
        var result = Lstm.TryForward(P, Xs, A0, C0);
        Assert.True(result.IsSuccess);
        var expected = Lstm.Forward(P, Xs, A0, C0);
        result.IfSuccess(f => Assert.True(f.States.SequenceEqual(expected.States) && f.Cells.SequenceEqual(expected.Cells)));
    }

    [Fact]
    public void TryLossAndGradientsReportsBadLabels()
    {
        var result = Lstm.TryLossAndGradients(P, Xs, A0, C0, Case.Labels.SetItem(0, [0, 9]));
        Assert.True(result.IsFail);
        Assert.Contains(result.FailToSeq(), e => e.Message.Contains("labels[0][1]"));
    }

    [Fact]
    public void ValidateReportsEveryInconsistentField()
    {
        var result = Lstm.Validate(P with { Wi = Zeros(5, 9), By = Vector<double>.Build.Dense(5) });
        var messages = result.FailToSeq().Map(e => e.Message).ToList();
        Assert.Equal(["expected Wi to be n_a×(n_a+n_x) = 5×8 but got 5×9", "expected By to have length n_y = 4 but got 5"], messages);
    }
}
