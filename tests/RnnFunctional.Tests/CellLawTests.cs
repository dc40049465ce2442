using FsCheck;
using FsCheck.Fluent;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// The laws of RnnFunctional.Testing can fail: each is run on a cell broken in the way it is meant to catch, and must
/// fail with a label that says what is wrong.
/// </summary>
public sealed class CellLawTests
{
    private static readonly CellUnderTest<RnnParameters, Matrix<double>, RnnCache> Rnn = CellUnderTest.Rnn();
    private static readonly Cell<RnnParameters, Matrix<double>, RnnCache> Good = Rnn.Cell;

    /// <summary>Runs the property; returns FsCheck's failure message, or fails the test when the property held.</summary>
    private static string FailureOf(Property property, int maxTest = 100)
    {
        var failure = Record.Exception(() => Check.One(Config.QuickThrowOnFailure.WithMaxTest(maxTest), property));
        Assert.True(failure is not null, "expected the law to fail on the broken cell, but it held");
        return failure.Message;
    }

    private static CellUnderTest<RnnParameters, Matrix<double>, RnnCache> Broken(Cell<RnnParameters, Matrix<double>, RnnCache> cell) =>
        Rnn with { Name = "Broken", Cell = cell };

    private static CellUnderTest<RnnParameters, Matrix<double>, RnnCache> WithBackward(
        Func<CellGradient<RnnParameters, Matrix<double>>, CellGradient<RnnParameters, Matrix<double>>> change) =>
        Broken(Good with { Backward = (cache, dCarry, dOut) => change(Good.Backward(cache, dCarry, dOut)) });

    [Fact]
    public void GradientLawNamesTheLeafOfAWrongParameterGradient()
    {
        var wrong = WithBackward(g => g with { Gradients = g.Gradients with { Waa = 1.001 * g.Gradients.Waa } });
        var message = FailureOf(CellLaws.GradientsMatchFiniteDifferences(wrong));
        Assert.Contains("Waa[", message);
        Assert.DoesNotContain("Wax[", message);
        Assert.DoesNotContain("xs[", message);
    }

    [Fact]
    public void GradientLawNamesTheStepOfAWrongInputGradient()
    {
        var wrong = WithBackward(g => g with { Dx = 1.001 * g.Dx });
        var message = FailureOf(CellLaws.GradientsMatchFiniteDifferences(wrong));
        Assert.Contains("xs[", message);
        Assert.DoesNotContain("Waa[", message);
    }

    [Fact]
    public void GradientLawNamesTheInitialCarryOfAWrongCarryGradient()
    {
        var wrong = WithBackward(g => g with { DCarry = -g.DCarry });
        Assert.Contains("init[0]", FailureOf(CellLaws.GradientsMatchFiniteDifferences(wrong)));
    }

    [Fact]
    public void DirectionalLawCatchesAWrongParameterGradientAndNamesItsSeed()
    {
        var wrong = WithBackward(g => g with { Gradients = g.Gradients with { Ba = 1.01 * g.Gradients.Ba } });
        Assert.Contains("direction of seed", FailureOf(CellLaws.DirectionalDerivativeMatches(wrong)));
    }

    [Fact]
    public void BatchLawCatchesACellThatMixesColumns()
    {
        // Every column's new state also sees column 0's: right for one column, wrong for a batch.
        var mixing = Broken(Good with
        {
            Step = (p, aPrev, x) =>
            {
                var step = Good.Step(p, aPrev, x);
                var a = step.Carry + 0.01 * Matrix<double>.Build.Dense(aPrev.RowCount, aPrev.ColumnCount, (i, _) => aPrev[i, 0]);
                return step with { Carry = a, Output = a };
            },
        });
        Assert.Contains("of each column", FailureOf(CellLaws.BatchEqualsColumnsRunAlone(mixing)));
    }

    [Fact]
    public void MutationLawCatchesAStepThatWritesIntoItsInput()
    {
        var writing = Broken(Good with { Step = (p, aPrev, x) => { x[0, 0] *= 0.5; return Good.Step(p, aPrev, x); } });
        Assert.Contains("inputs, initial carry and outside gradients unchanged", FailureOf(CellLaws.NoArgumentIsMutated(writing)));
    }

    [Fact]
    public void MutationLawCatchesABackwardThatConsumesItsCache()
    {
        var consuming = Broken(Good with
        {
            Backward = (cache, dCarry, dOut) => { var g = Good.Backward(cache, dCarry, dOut); cache.A.Multiply(0.5, cache.A); return g; },
        });
        var message = FailureOf(CellLaws.NoArgumentIsMutated(consuming));
        Assert.Contains("Backward twice on one cache", message);
    }

    [Fact]
    public void FoldAndOneStepLawsCatchAStepWithHiddenState()
    {
        var calls = 0;
        var counting = Broken(Good with
        {
            Step = (p, aPrev, x) =>
            {
                var step = Good.Step(p, aPrev, x);
                var a = step.Carry + 1e-3 * Interlocked.Increment(ref calls);
                return step with { Carry = a, Output = a };
            },
        });
        Assert.Contains("outputs of xs ++ ys", FailureOf(CellLaws.ScanOverConcatenationContinuesFromFinalCarry(counting)));
        Assert.Contains("output and carry of the step", FailureOf(CellLaws.OneStepScanEqualsCell(counting)));
        Assert.Contains("Step twice", FailureOf(CellLaws.NoArgumentIsMutated(counting)));
    }
}
