using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// A ReLU RNN has no saturation: inputs of 1e200 give states and gradients that overflow double precision. Every
/// backward that would return such gradients throws <see cref="NonFiniteException"/> naming what overflowed, instead
/// of returning ±∞ or NaN.
/// </summary>
public sealed class NonFiniteGradientTests
{
    // n_x = 3, n_a = 5, n_y = 4, m = 2, T = 6
    private static readonly RnnCase Case = new(new Shaped(new Dims(3, 5, 4, 2, 6), 11), Activation.Relu);

    /// <summary>Every input entry 1e200: finite, and allowed by the argument checks.</summary>
    private static readonly ImmutableArray<Matrix<double>> Huge = [.. Case.Xs.Select(x => Matrix<double>.Build.Dense(x.RowCount, x.ColumnCount, 1e200))];

    private static void Overflows(Func<object> call)
    {
        var e = Assert.Throws<NonFiniteException>(call);
        Assert.Contains("to be finite", e.Message);
    }

    [Fact]
    public void TheInputsAreFiniteAndAccepted() => Assert.True(Rnn.TryForward(Case.P, Huge, Case.A0).IsSuccess);

    /// <summary>The gradient of ½·Σ_t ‖a⟨t⟩‖² with respect to each state: the states themselves (about 1e200 here).</summary>
    private static ImmutableArray<Matrix<double>> SquaredLossGradient(ImmutableArray<Matrix<double>> xs) => Rnn.Forward(Case.P, xs, Case.A0).States;

    [Fact]
    public void Backward() =>
        Overflows(() => Rnn.Backward(Rnn.Forward(Case.P, Huge, Case.A0), SquaredLossGradient(Huge)));

    [Fact]
    public void TryBackward() =>
        Overflows(() => Rnn.TryBackward(Rnn.Forward(Case.P, Huge, Case.A0), SquaredLossGradient(Huge)));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(6)]
    public void BackwardCheckpointed(int every) =>
        Overflows(() => Rnn.BackwardCheckpointed(Case.P, Huge, Case.A0, SquaredLossGradient(Huge), every));

    [Fact]
    public void CellBackward()
    {
        var step = Rnn.CellForward(Case.P, Huge[0], Case.A0);
        Overflows(() => Rnn.CellBackward(step.A, step.Cache));
    }

    [Fact]
    public void TheMessageNamesTheFunctionAndTheGradient()
    {
        var e = Assert.Throws<NonFiniteException>(() => Rnn.Backward(Rnn.Forward(Case.P, Huge, Case.A0), SquaredLossGradient(Huge)));
        Assert.StartsWith("expected the gradients of Rnn.Backward to be finite but d", e.Message);
        Assert.Contains("is Infinity", e.Message.Replace("-Infinity", "Infinity", StringComparison.Ordinal));
    }

    [Fact]
    public void ModerateInputsStillGiveFiniteGradients()
    {
        var g = Rnn.Backward(Rnn.Forward(Case.P, Case.Xs, Case.A0), SquaredLossGradient(Case.Xs));
        Assert.True(Tree.AllFinite(g.Gradients) && g.Dx.All(d => d.ForAll(double.IsFinite)) && g.Da0.ForAll(double.IsFinite));
        var loss = Rnn.LossAndGradients(Case.P, Case.Xs, Case.A0, Case.Labels);
        Assert.True(double.IsFinite(loss.Loss) && Tree.AllFinite(loss.Gradients));
    }
}
