using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using Xunit;

namespace RnnFunctional.Samples;

/// <summary>The snippets of docs/property-testing.md.</summary>
public sealed class PropertyTesting
{
    #region property-own-loss
    // A loss of your own: ½ Σ_t ‖a⟨t⟩ − y⟨t⟩‖², every hidden state against a target, back-propagated with Rnn.Backward.
    [Property(MaxTest = 100)]
    public Property StateRegressionGradientsMatchFiniteDifferences() =>
        Prop.ForAll(RnnCase.Arbitrary(max: 6), c =>
        {
            var random = c.Shape.NewRandom();
            var targets = Draw.Sequence(random, c.Xs.Length, c.P.HiddenSize, c.A0.ColumnCount);
            double Loss(RnnParameters p, ImmutableArray<Matrix<double>> xs) =>
                0.5 * Rnn.Forward(p, xs, c.A0).States.Zip(targets, (a, y) => (a - y).PointwiseMultiply(a - y).Enumerate().Sum()).Sum();

            var forward = Rnn.Forward(c.P, c.Xs, c.A0);
            var da = forward.States.Zip(targets, (a, y) => a - y).ToImmutableArray();   // ∂loss/∂a⟨t⟩ from outside the recurrence
            var g = Rnn.Backward(forward, da);

            return GradientProperty.Tree(p => Loss(p, c.Xs), c.P, g.Gradients)                   // every parameter entry
                .And(GradientProperty.Leaves(leaves => Loss(c.P, SequenceLeaves.Read(leaves, 0, c.Xs.Length)),
                                             SequenceLeaves.Of("xs", c.Xs), SequenceLeaves.Of("xs", g.Dx))); // every x⟨t⟩ entry
        });
    #endregion

    #region property-directional
    // A model of 23,710 parameters: one directional derivative per case instead of 23,710 partial ones.
    [Property(MaxTest = 10)]
    public Property LargeLstmLossAlongRandomDirections() =>
        Prop.ForAll(Gen.Choose(0, int.MaxValue - 1).ToArbitrary(), seed =>
        {
            var c = new LstmCase(new Shaped(new Dims(Nx: 20, Na: 64, Ny: 30, M: 4, T: 8), seed));
            var loss = Lstm.LossAndGradients(c.P, c.Xs, c.A0, c.C0, c.Labels);
            return GradientProperty.Directional(p => Lstm.LossAndGradients(p, c.Xs, c.A0, c.C0, c.Labels).Loss, c.P, loss.Gradients, seed);
        });
    #endregion

    #region property-laws-one-case
    // Several laws on the same case, with cases of your own sizes: CellLaws.Law(subject, case). Batches of at least
    // two columns: a batch of one column is the column alone, and the first law would compare it with itself.
    [Property(MaxTest = 50)]
    public Property GruColumnsAreIndependentAndNothingIsMutated()
    {
        var gru = CellUnderTest.Gru();
        return Prop.ForAll(gru.Cases(Dims.Smallest with { M = 2 }, max: 4),
            c => CellLaws.BatchEqualsColumnsRunAlone(gru, c).And(CellLaws.NoArgumentIsMutated(gru, c)));
    }
    #endregion

    #region property-stack-laws
    // A two-layer ragged stack: an LSTM under a bidirectional layer of a GRU and a tanh RNN.
    private static readonly ImmutableArray<LayerSpec> Architecture = [LayerSpec.Uni(CellKind.Lstm), LayerSpec.Bi(CellKind.Gru, CellKind.RnnTanh)];

    [Property(MaxTest = 20)]
    public Property StackLossGradientsMatchFiniteDifferences() => StackLaws.LossGradientsMatchFiniteDifferences(Architecture, ragged: true, max: 4);

    [Property(MaxTest = 50)]
    public Property RaggedStackEqualsItsColumnsAlone() => StackLaws.RaggedBatchEqualsColumnsRunAlone(Architecture);
    #endregion

    [Fact]
    public void AFailureNamesTheSmallestCaseAndTheWrongEntry()
    {
        #region property-failure
        // A backward whose dWaa is 0.1% too large.
        var rnn = CellUnderTest.Rnn();
        var wrong = rnn with
        {
            Cell = rnn.Cell with
            {
                Backward = (cache, dCarry, dOut) =>
                {
                    var g = rnn.Cell.Backward(cache, dCarry, dOut);
                    return g with { Gradients = g.Gradients with { Waa = 1.001 * g.Gradients.Waa } };
                },
            },
        };
        var failure = Record.Exception(() => Check.One(Config.QuickThrowOnFailure, CellLaws.GradientsMatchFiniteDifferences(wrong)));
        // failure.Message: "Falsifiable, after 1 test (4 shrinks) … Label of failing property: Waa[0,0]: analytic 3.740594E-002
        // numeric 3.736857E-002 rel 5.00E-004 … Shrunk: RnnTanh(n_x=1 n_a=1 n_y=2 m=1 T=1 seed=1570771456)"
        #endregion

        Assert.NotNull(failure);
        Assert.Contains("Label of failing property: Waa[", failure.Message);
        Assert.Matches(@"Shrunk:\s*RnnTanh\(n_x=1 n_a=1 n_y=2 m=1 T=1 seed=\d+\)", failure.Message);
    }
}
