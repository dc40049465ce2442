using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using static RnnFunctional.Tests.GradientChecks;

namespace RnnFunctional.Tests;

public sealed class GruArbitraries
{
    public static Arbitrary<GruCase> Cases() => GruCase.Arbitrary(8);
}

/// <summary>Every gradient of the GRU against Ridders' finite differences, at the bar of 1e-6.</summary>
public sealed class GruGradientTests
{
    [Property(Arbitrary = [typeof(GruArbitraries)], MaxTest = 100)]
    public Property CellBackwardMatchesFiniteDifferences(GruCase c)
    {
        var (xt, da) = (c.Xs[0], c.Da[0]);
        double F(GruParameters p, Matrix<double> x, Matrix<double> a) => Inner([da], [Gru.CellForward(p, x, a).A]);
        var g = Gru.CellBackward(da, Gru.CellForward(c.P, xt, c.A0).Cache);

        return GradientProperty.Holds(TreeCheck(p => F(p, xt, c.A0), c.P, g.Gradients))
            .And(GradientProperty.Holds(MatrixCheck(x => F(c.P, x, c.A0), xt, g.Dxt, "xt")))
            .And(GradientProperty.Holds(MatrixCheck(a => F(c.P, xt, a), c.A0, g.DaPrev, "aPrev")));
    }

    [Property(Arbitrary = [typeof(GruArbitraries)], MaxTest = 100)]
    public Property BackwardMatchesFiniteDifferences(GruCase c)
    {
        double F(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) => Inner(c.Da, Gru.Forward(p, xs, a0).States);
        var g = Gru.Backward(Gru.Forward(c.P, c.Xs, c.A0), c.Da);

        return GradientProperty.Holds(TreeCheck(p => F(p, c.Xs, c.A0), c.P, g.Gradients))
            .And(GradientProperty.Holds(InputCheck((xs, s) => F(c.P, xs, s[0]), c.Xs, g.Dx, ("a0", c.A0, g.Da0))));
    }

    [Property(Arbitrary = [typeof(GruArbitraries)], MaxTest = 100)]
    public Property LossAndGradientsMatchesFiniteDifferences(GruCase c)
    {
        double F(GruParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0) => Gru.LossAndGradients(p, xs, a0, c.Labels).Loss;
        var g = Gru.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);

        return GradientProperty.Holds(TreeCheck(p => F(p, c.Xs, c.A0), c.P, g.Gradients))
            .And(GradientProperty.Holds(InputCheck((xs, s) => F(c.P, xs, s[0]), c.Xs, g.Dx, ("a0", c.A0, g.Da0))));
    }

    [Property(Arbitrary = [typeof(GruArbitraries)], MaxTest = 100)]
    public Property HeadGradientsOfBackwardAreZero(GruCase c)
    {
        var g = Gru.Backward(Gru.Forward(c.P, c.Xs, c.A0), c.Da).Gradients;
        return (g.Wy.Enumerate().All(v => v == 0) && g.By.All(v => v == 0)).Label("dWy and dby are zero");
    }
}

/// <summary>Algebraic laws of the GRU's forward and backward folds.</summary>
public sealed class GruLawTests
{
    [Property(Arbitrary = [typeof(GruArbitraries)], MaxTest = 100)]
    public Property ForwardEqualsHandLoopOfCellForward(GruCase c)
    {
        var forward = Gru.Forward(c.P, c.Xs, c.A0);
        var a = c.A0;
        var agree = true;
        for (var t = 0; t < c.Xs.Length; t++)
        {
            var step = Gru.CellForward(c.P, c.Xs[t], a);
            agree &= Compare.Same(step.A, forward.States[t]) && Compare.Same(step.YHat, forward.Predictions[t]);
            a = step.A;
        }
        return agree.Label("every state and prediction identical");
    }

    [Property(Arbitrary = [typeof(LawArbitraries)], MaxTest = 100)]
    public Property ForwardOverConcatenationContinuesFromLastState(Cut cut)
    {
        var (c, split) = (new GruCase(cut.Shape), cut.At);
        var (xs, ys) = (c.Xs[..split], c.Xs[split..]);
        var whole = Gru.Forward(c.P, c.Xs, c.A0);
        var first = Gru.Forward(c.P, xs, c.A0);
        var rest = Gru.Forward(c.P, ys, first.States[^1]);
        return (Compare.Same(first.States.AddRange(rest.States), whole.States) && Compare.Same(first.Predictions.AddRange(rest.Predictions), whole.Predictions))
            .Label($"Forward(xs ++ ys) = Forward(xs), then Forward(ys) from its last state: states and predictions (cut at {split} of {c.Xs.Length})");
    }

    [Property(Arbitrary = [typeof(GruArbitraries)], MaxTest = 100)]
    public Property BackwardOfOneStepEqualsCellBackward(GruCase c)
    {
        var xs = c.Xs[..1];
        var whole = Gru.Backward(Gru.Forward(c.P, xs, c.A0), c.Da[..1]);
        var cell = Gru.CellBackward(c.Da[0], Gru.CellForward(c.P, xs[0], c.A0).Cache);
        return (Compare.Same(whole.Dx[0], cell.Dxt) && Compare.Same(whole.Da0, cell.DaPrev) && Compare.Same(whole.Gradients, cell.Gradients))
            .Label("dx, da0 and gradients identical");
    }

    /// <summary>
    /// With b_iz = +40 the update gate's pre-activation is 40 ± |W_iz·x + W_hz·h + b_hz| ≤ 40 ± 6.5 (and typically
    /// 40 ± 1), so 1 − z is at most e^−33.5 ≈ 3e-15 and typically about e^−39 ≈ 1e-17: h⟨t⟩ = (1 − z)⊙n + z⊙h⟨t−1⟩
    /// stays h⟨0⟩ to 1e-15. A cell with the blocks r | z | n in another order, or with z and 1 − z swapped, would
    /// move h by the order of its entries.
    /// </summary>
    [Property(Arbitrary = [typeof(GruArbitraries)], MaxTest = 100)]
    public Property SaturatedUpdateGateCarriesHUnchanged(GruCase c)
    {
        var na = c.P.HiddenSize;
        var bih = c.P.Bih.Clone();
        for (var i = na; i < 2 * na; i++) bih[i] = 40.0;
        var forward = Gru.Forward(c.P with { Bih = bih }, c.Xs, c.A0);
        var drift = forward.States.Max(h => (h - c.A0).Enumerate().Max(Math.Abs));
        return (drift <= 1e-15).Label($"max |h⟨t⟩ − h⟨0⟩| = {drift:E2}");
    }

    [Property(Arbitrary = [typeof(LawArbitraries)], MaxTest = 100)]
    public Property BatchEqualsColumnsRunAlone(GruCase c)
    {
        var batch = Gru.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);
        var forward = Gru.Forward(c.P, c.Xs, c.A0);
        var columns = Enumerable.Range(0, c.A0.ColumnCount).Select(j =>
        {
            var xs = c.Xs.Select(x => Column(x, j)).ToImmutableArray();
            var labels = c.Labels.Select(row => ImmutableArray.Create(row[j])).ToImmutableArray();
            return (Forward: Gru.Forward(c.P, xs, Column(c.A0, j)), Loss: Gru.LossAndGradients(c.P, xs, Column(c.A0, j), labels));
        }).ToArray();

        const double tolerance = 1e-12;
        var statesAgree = columns.Select((col, j) => Compare.Close(col.Forward.States, [.. forward.States.Select(b => Column(b, j))], tolerance)).All(x => x);
        var lossAgrees = Compare.Close(columns.Sum(col => col.Loss.Loss), batch.Loss, tolerance);
        var gradientSum = columns.Select(col => col.Loss.Gradients).Aggregate((a, b) => a + b);
        var gradientsAgree = Compare.Close(gradientSum, batch.Gradients, tolerance);
        var initialAgree = columns.Select((col, j) => Compare.Close(col.Loss.Da0, Column(batch.Da0, j), tolerance)).All(x => x);
        return statesAgree.Label("states of each column")
            .And(lossAgrees.Label("loss is the sum of the columns' losses"))
            .And(gradientsAgree.Label("gradients are the sum of the columns' gradients"))
            .And(initialAgree.Label("da0 of each column"));
    }

    [Property(Arbitrary = [typeof(GruArbitraries)], MaxTest = 50)]
    public Property NoArgumentIsMutated(GruCase c)
    {
        var before = Snapshot(c);
        var forward = Gru.Forward(c.P, c.Xs, c.A0);
        _ = Gru.Backward(forward, c.Da);
        _ = Gru.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);
        _ = Gru.CellBackward(c.Da[0], Gru.CellForward(c.P, c.Xs[0], c.A0).Cache);
        return Snapshot(c).SequenceEqual(before).Label("parameters, inputs, a0 and da unchanged");
    }

    [Fact]
    public void InitializeDrawsEveryEntryWithinOneOverRootHiddenSize()
    {
        var p = GruParameters.Initialize(3, 4, 5, seed: 11);
        Assert.True(Gru.Validate(p).IsSuccess);
        Assert.Equal((3, 4, 5), (p.InputSize, p.HiddenSize, p.OutputSize));
        Assert.Equal((12, 3, 12, 4), (p.Wih.RowCount, p.Wih.ColumnCount, p.Whh.RowCount, p.Whh.ColumnCount));
        Assert.All(Tree.Flatten(p), v => Assert.InRange(Math.Abs(v), 0, 0.5));
        Assert.Equal(p, GruParameters.Initialize(3, 4, 5, seed: 11));
        Assert.NotEqual(p, GruParameters.Initialize(3, 4, 5, seed: 12));
    }

    [Fact]
    public void LeavesAreNamedAfterTheFields() =>
        Assert.Equal(["Wih", "Whh", "Bih", "Bhh", "Wy", "By"], GruParameters.Initialize(2, 3, 2, 0).ToLeaves().Select(l => l.Name));

    private static double[] Snapshot(GruCase c) =>
        [.. Tree.Flatten(c.P), .. c.Xs.SelectMany(Draw.Snapshot), .. Draw.Snapshot(c.A0), .. c.Da.SelectMany(Draw.Snapshot)];
}

/// <summary>Each kind of bad input to the GRU gets an <see cref="ArgumentException"/> naming the argument and the expected shape.</summary>
public sealed class GruBadInputTests
{
    // n_x = 3, n_a = 5, n_y = 4, m = 2, T = 3: Wih is 15×3, Whh 15×5
    private static readonly GruCase Case = new(new Shaped(new Dims(3, 5, 4, 2, 3), 7));
    private static readonly GruParameters P = Case.P;
    private static readonly ImmutableArray<Matrix<double>> Xs = Case.Xs;
    private static readonly Matrix<double> A0 = Case.A0;

    private static Matrix<double> Zeros(int rows, int columns) => Matrix<double>.Build.Dense(rows, columns);

    private static void Rejects(string argument, string fragment, Action call)
    {
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(argument, e.ParamName);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void ForwardRejectsMismatchedA0() =>
        Rejects("a0", "expected a0 to be n_a×m = 5×2 but got 5×3", () => Gru.Forward(P, Xs, Zeros(5, 3)));

    [Fact]
    public void ForwardRejectsStepsOfDifferentShapes() =>
        Rejects("xs", "expected xs[1] to be n_x×m = 3×2 but got 3×4", () => Gru.Forward(P, Xs.SetItem(1, Zeros(3, 4)), A0));

    [Fact]
    public void ForwardRejectsInputOfWrongSize() =>
        Rejects("xs", "expected xs[0] to be n_x×m = 3×2 but got 4×2", () => Gru.Forward(P, Xs.SetItem(0, Zeros(4, 2)), A0));

    [Fact]
    public void ForwardRejectsEmptySequence() =>
        Rejects("xs", "expected xs to hold at least one step but it is empty", () => Gru.Forward(P, [], A0));

    [Fact]
    public void ForwardRejectsDefaultSequence() =>
        Rejects("xs", "default (null) array", () => Gru.Forward(P, default, A0));

    [Fact]
    public void ForwardRejectsNaNInInputs()
    {
        var x = Xs[2].Clone();
        x[1, 0] = double.NaN;
        Rejects("xs", "expected xs[2] to be finite but entry (1, 0) is NaN", () => Gru.Forward(P, Xs.SetItem(2, x), A0));
    }

    [Fact]
    public void ForwardRejectsInfinityInA0()
    {
        var a0 = A0.Clone();
        a0[4, 1] = double.PositiveInfinity;
        Rejects("a0", "expected a0 to be finite but entry (4, 1) is Infinity", () => Gru.Forward(P, Xs, a0));
    }

    [Fact]
    public void ForwardRejectsInputWeightsWithoutThreeBlocks() =>
        Rejects("p", "expected Wih to be 3n_a×n_x = 15×3 but got 14×3", () => Gru.Forward(P with { Wih = Zeros(14, 3) }, Xs, A0));

    [Fact]
    public void ForwardRejectsRecurrentWeightsOfWrongWidth() =>
        Rejects("p", "expected Whh to be 3n_a×n_a = 15×5 but got 15×4", () => Gru.Forward(P with { Whh = Zeros(15, 4) }, Xs, A0));

    [Fact]
    public void ForwardRejectsBiasOfOneBlock() =>
        Rejects("p", "expected Bhh to have length 3n_a = 15 but got 5", () => Gru.Forward(P with { Bhh = Vector<double>.Build.Dense(5) }, Xs, A0));

    [Fact]
    public void ForwardRejectsReadOutOfWrongWidth() =>
        Rejects("p", "expected Wy to be n_y×n_a = 4×5 but got 4×6", () => Gru.Forward(P with { Wy = Zeros(4, 6) }, Xs, A0));

    [Fact]
    public void ForwardRejectsNullWeights() =>
        Rejects("p", "expected Whh to be 3n_a×n_a = 15×5 but got null", () => Gru.Forward(P with { Whh = null! }, Xs, A0));

    [Fact]
    public void ForwardRejectsNaNInParameters()
    {
        var bih = P.Bih.Clone();
        bih[7] = double.NaN;
        Rejects("p", "expected Bih to be finite but entry 7 is NaN", () => Gru.Forward(P with { Bih = bih }, Xs, A0));
    }

    [Fact]
    public void ForwardRejectsNullParameters() =>
        Rejects("p", "expected p to be GruParameters but got null", () => Gru.Forward(null!, Xs, A0));

    [Fact]
    public void BackwardRejectsDaOfWrongLength() =>
        Rejects("da", "expected da to have one matrix per step, T = 3, but got 2", () => Gru.Backward(Gru.Forward(P, Xs, A0), Case.Da[..2]));

    [Fact]
    public void BackwardRejectsDaOfWrongShape() =>
        Rejects("da", "expected da[1] to be n_a×m = 5×2 but got 2×5", () => Gru.Backward(Gru.Forward(P, Xs, A0), Case.Da.SetItem(1, Zeros(2, 5))));

    [Fact]
    public void BackwardRejectsNullForward() =>
        Rejects("forward", "expected forward to be the result of Gru.Forward but got null", () => Gru.Backward(null!, Case.Da));

    [Fact]
    public void LossRejectsLabelOutOfRange() =>
        Rejects("labels", "expected labels[1][0] to be a class in [0, n_y) = [0, 4) but got 4",
            () => Gru.LossAndGradients(P, Xs, A0, Case.Labels.SetItem(1, [4, 0])));

    [Fact]
    public void LossRejectsWrongNumberOfLabelRows() =>
        Rejects("labels", "expected labels to have one row per step, T = 3, but got 2", () => Gru.LossAndGradients(P, Xs, A0, Case.Labels[..2]));

    [Fact]
    public void LossRejectsWrongNumberOfLabelsInARow() =>
        Rejects("labels", "expected labels[2] to have one label per example, m = 2, but got 3",
            () => Gru.LossAndGradients(P, Xs, A0, Case.Labels.SetItem(2, [0, 1, 2])));

    [Fact]
    public void CellForwardRejectsMismatchedAPrev() =>
        Rejects("aPrev", "expected aPrev to be n_a×m = 5×2 but got 4×2", () => Gru.CellForward(P, Xs[0], Zeros(4, 2)));

    [Fact]
    public void CellForwardRejectsInputOfWrongSize() =>
        Rejects("xt", "expected xt to be n_x×m = 3×2 but got 2×2", () => Gru.CellForward(P, Zeros(2, 2), A0));

    [Fact]
    public void CellBackwardRejectsDaOfWrongShape() =>
        Rejects("da", "expected da to be n_a×m = 5×2 but got 5×1", () => Gru.CellBackward(Zeros(5, 1), Gru.CellForward(P, Xs[0], A0).Cache));

    [Fact]
    public void CellBackwardRejectsNullCache() =>
        Rejects("cache", "cache", () => Gru.CellBackward(Case.Da[0], null!));

    [Fact]
    public void InitializeRejectsNonPositiveSizes() =>
        Rejects("inputSize", "expected inputSize to be at least 1 but got 0", () => GruParameters.Initialize(0, 4, 4, seed: 1));

    [Fact]
    public void TryForwardReportsEveryProblemAtOnce()
    {
        var result = Gru.TryForward(P, Xs.SetItem(1, Zeros(3, 4)), Zeros(5, 3));
        Assert.True(result.IsFail);
        var messages = result.FailToSeq().Map(e => e.Message).ToList();
        Assert.Equal(2, messages.Count);
        Assert.Contains(messages, m => m.Contains("xs[1]"));
        Assert.Contains(messages, m => m.Contains("a0"));
    }

    [Fact]
    public void TryForwardSucceedsOnGoodInput()
    {
        var result = Gru.TryForward(P, Xs, A0);
        Assert.True(result.IsSuccess);
        var expected = Gru.Forward(P, Xs, A0).States;
        result.IfSuccess(f => Assert.True(f.States.SequenceEqual(expected)));
    }

    [Fact]
    public void ValidateReportsEveryInconsistentField()
    {
        var result = Gru.Validate(P with { Wih = Zeros(15, 3).Stack(Zeros(3, 3)), Bih = Vector<double>.Build.Dense(12) });
        var messages = result.FailToSeq().Map(e => e.Message).ToList();
        Assert.Equal(["expected Wih to be 3n_a×n_x = 15×3 but got 18×3", "expected Bih to have length 3n_a = 15 but got 12"], messages);
    }
}
