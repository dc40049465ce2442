using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// Dropout with its masks held fixed: every gradient of the masked stack against Ridders' finite differences, in every
/// composition (stacks, bidirectional layers, ragged batches; every kind of mask on the stack driver), and the stack
/// driver against the generic fold under the same masks.
/// </summary>
public sealed class DropoutGradientTests
{
    private static readonly ImmutableArray<LayerSpec> LstmOverGru = [LayerSpec.Uni(CellKind.Gru), LayerSpec.Uni(CellKind.Lstm)];
    private static readonly ImmutableArray<LayerSpec> UnderBidirectional = [LayerSpec.Uni(CellKind.RnnTanh), LayerSpec.Bi(CellKind.Lstm, CellKind.Gru)];
    private static readonly ImmutableArray<LayerSpec> EveryCell = [LayerSpec.Uni(CellKind.Lstm), LayerSpec.Bi(CellKind.Gru, CellKind.RnnTanh)];
    private static readonly ImmutableArray<LayerSpec> NewCellsStack = [LayerSpec.Uni(CellKind.ProjectedLstm), LayerSpec.Bi(CellKind.PeepholeLstm, CellKind.LayerNormGru)];

    /// <summary>Every kind of mask: between the layers, on each layer's inputs, on the recurrent state and on the read-out's inputs.</summary>
    private static readonly Dropout Everything = new(Between: 0.3, Recurrent: 0.3, Inputs: 0.2, ReadOut: 0.3);

    /// <summary>The masks outside the recurrence (no recurrent mask).</summary>
    private static readonly Dropout OnTheDriver = new(Between: 0.3, Inputs: 0.2, ReadOut: 0.3);

    [Property(MaxTest = 15)]
    public Property StackWithEveryMaskMatchesFiniteDifferences() =>
        Prop.ForAll(StackCase.Arbitrary(LstmOverGru, ragged: false, max: 5), c => LossMatchesFiniteDifferences(c, Everything));

    [Property(MaxTest = 12)]
    public Property DriverMasksOfARaggedBidirectionalStackMatchFiniteDifferences() =>
        Prop.ForAll(StackCase.Arbitrary(EveryCell, ragged: true, max: 4), c => LossMatchesFiniteDifferences(c, OnTheDriver));

    [Property(MaxTest = 15)]
    public Property EveryMaskOfARaggedBidirectionalStackMatchesFiniteDifferences() =>
        Prop.ForAll(StackCase.Arbitrary(UnderBidirectional, ragged: true, max: 5), c => LossMatchesFiniteDifferences(c, Everything));

    [Property(MaxTest = 10)]
    public Property EveryMaskOfTheNewCellsMatchesFiniteDifferences() =>
        Prop.ForAll(StackCase.Arbitrary(NewCellsStack, ragged: true, max: 4), c => LossMatchesFiniteDifferences(c, Everything));

    [Property(MaxTest = 15)]
    public Property MaskedRaggedBackwardMatchesFiniteDifferences() =>
        Prop.ForAll(StackCase.Arbitrary(UnderBidirectional, ragged: true, max: 5), c =>
        {
            var mask = Masks(c, Everything);
            double F(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<Matrix<double>>> initial)
            {
                var forward = Stack.Forward(p, xs, c.LengthsArgument, initial, dropout: mask);
                return LayerGradientTests.Inner([.. c.DTop, .. c.DFinal.SelectMany(parts => parts)], [.. forward.Top, .. forward.Final.SelectMany(parts => parts)]);
            }
            var g = Stack.Backward(Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial, dropout: mask), c.DTop, c.DFinal);
            return GradientProperty.Holds(GradCheck.Tree(p => F(p, c.Xs, c.Initial), c.P, g.Gradients, GradCheckOptions.Precise))
                .And(GradientProperty.Holds(StackLaws.InputCheck(c, (xs, initial) => F(c.P, xs, initial), g.Dx, g.DInitial)));
        });

    /// <summary>
    /// Input, read-out and recurrent masks on the stack driver (a whole stack per chunk) against the same masks on the
    /// generic fold (every layer a <see cref="Layer.Of"/> layer of its cell, the recurrent mask around its step): loss,
    /// dx and dInitial the same bits, parameter gradients to 1e-12.
    /// </summary>
    [Property(MaxTest = 40)]
    public Property MaskedDriverAgreesWithTheGenericFold() =>
        Prop.ForAll(StackCase.Arbitrary(EveryCell, ragged: true, max: 6), Gen.Elements(OnTheDriver, Everything).ToArbitrary(), (c, rates) =>
        {
            var mask = Masks(c, rates);
            var fused = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: mask);
            var fold = Stack.LossAndGradients(NewCells.Generic(c.P), c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: mask);
            return (Compare.Same(fused.Loss, fold.Loss) && Compare.Same(fused.Dx, fold.Dx) && Compare.Same(fused.DInitial, fold.DInitial))
                    .Label($"loss ({fused.Loss:R} and {fold.Loss:R}), dx and dInitial: same bits")
                .And(Compare.Close(fused.Gradients, fold.Gradients, 1e-12).Label("parameter gradients to 1e-12"))
                .And(Compare.Same(fused.Loss, Stack.Loss(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, mask)).Label("Stack.Loss: the same bits"));
        });

    /// <summary>
    /// Checkpointing changes no bit of a masked stack: the segments recomputed in the backward read the recurrent mask
    /// as the forward did (every kind of mask; ragged, bidirectional).
    /// </summary>
    [Property(MaxTest = 30)]
    public Property CheckpointedMaskedStacksHaveTheBitsOfTheFullBackward() =>
        Prop.ForAll(StackCase.Arbitrary(EveryCell, ragged: true, max: 6), Gen.Choose(1, 6).ToArbitrary(), (c, every) =>
        {
            var mask = Masks(c, Everything);
            var full = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: mask);
            var checkpointed = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, every, mask);
            return (Compare.Same(full.Loss, checkpointed.Loss) && Compare.Same(full.Gradients, checkpointed.Gradients)
                    && Compare.Same(full.Dx, checkpointed.Dx) && Compare.Same(full.DInitial, checkpointed.DInitial)).Label($"every {every}");
        });

    /// <summary>
    /// A language model's training loss under dropout (<see cref="SequenceModel{TParams,TState}.DropoutLoss"/>) is the
    /// exact gradient of itself for a fixed random state (the masks are a function of the state alone), on the stack
    /// driver (no recurrent rate) and on the generic fold (a recurrent rate).
    /// </summary>
    [Property(MaxTest = 12)]
    public Property LanguageModelDropoutLossMatchesFiniteDifferences() =>
        Prop.ForAll(LanguageCase.Arbitrary(4), Gen.Elements(false, true).ToArbitrary(), LanguageModelCase);

    private static Property LanguageModelCase(LanguageCase c, bool recurrent)
    {
        var model = LanguageModel.Stack(c.V, recurrent ? Everything : OnTheDriver);
        var j = c.Random(c.Items.Length);
        var batch = TokenBatch.ForNextToken([c.Items[j]]);
        var init = c.StackInit.Select(layer => layer.Select(part => part.SubMatrix(0, part.RowCount, j, 1)).ToImmutableArray()).ToImmutableArray();
        var random = RandomState.Seeded(c.Seed);
        var g = model.DropoutLoss!(c.Stack, batch, init, random).Gradients;
        return GradientProperty.Holds(GradCheck.Tree(p => model.DropoutLoss!(p, batch, init, random).Loss, c.Stack, g, GradCheckOptions.Precise))
            .Label($"item {j}, recurrent = {recurrent}");
    }

    /// <summary>The case's masks, drawn from its seed.</summary>
    internal static DropoutMask Masks(StackCase c, Dropout rates) =>
        rates.Draw(c.P, c.Xs.Length, c.Xs[0].ColumnCount, RandomState.Seeded(c.Shape.Seed)).Mask;

    private static Property LossMatchesFiniteDifferences(StackCase c, Dropout rates)
    {
        var mask = Masks(c, rates);
        double F(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<Matrix<double>>> initial) =>
            Stack.Loss(p, xs, c.Labels, c.LengthsArgument, initial, mask);
        var g = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: mask);
        return GradientProperty.Holds(GradCheck.Tree(p => F(p, c.Xs, c.Initial), c.P, g.Gradients, GradCheckOptions.Precise))
            .And(GradientProperty.Holds(StackLaws.InputCheck(c, (xs, initial) => F(c.P, xs, initial), g.Dx, g.DInitial)));
    }
}
