using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// Stacks with LSTM layers with a projection on the sequence driver (<see cref="Layer.ProjectedLstm"/>: h⟨t⟩ of n_p ≤ n_a
/// rows, kept in the driver's n_a-row parts with zeros below, handed to the next layer and to the read-out as n_p rows):
/// a projected layer below another, inside bidirectional layers in either direction and on top, in ragged batches,
/// with dropout masks and checkpointing, against the same stack on the generic fold (<see cref="NewCells.Generic(StackParameters)"/>)
/// and against finite differences. One thread against several is in <see cref="TeamTests"/>.
/// </summary>
public sealed class ProjectedStackTests
{
    /// <summary>Projected below projected, into and out of bidirectional layers (forward and reverse direction), and on top.</summary>
    private static readonly ImmutableArray<LayerSpec> Projected =
        [LayerSpec.Uni(CellKind.ProjectedLstm), LayerSpec.Bi(CellKind.ProjectedLstm, CellKind.Lstm), LayerSpec.Bi(CellKind.Gru, CellKind.ProjectedLstm),
         LayerSpec.Uni(CellKind.ProjectedLstm)];

    /// <summary>A bidirectional layer with a projected reverse direction under a projected top layer: small enough for finite differences.</summary>
    private static readonly ImmutableArray<LayerSpec> ProjectedOnTop = [LayerSpec.Bi(CellKind.Gru, CellKind.ProjectedLstm), LayerSpec.Uni(CellKind.ProjectedLstm)];

    /// <summary>Every kind of mask: between the layers, on each layer's inputs, on the recurrent state and on the read-out's inputs.</summary>
    private static readonly Dropout Everything = new(Between: 0.3, Recurrent: 0.3, Inputs: 0.2, ReadOut: 0.3);

    /// <summary>
    /// The stack's one-pass loss runs on the stack driver (<see cref="Stack.OnDriver"/> takes it), and every result of
    /// the driver — the loss, dx, the initial-state gradients and the final states of the one-pass loss, and the states,
    /// final states, predictions, dx and initial-state gradients of <see cref="Stack.Forward"/> and
    /// <see cref="Stack.Backward"/> — has the bits of the generic fold; parameter gradients agree to 1e-12 (their sums
    /// run over time in another order), as for every other cell (<see cref="EngineTests"/>).
    /// </summary>
    [Property(MaxTest = 60)]
    public Property ProjectedStacksRunOnTheDriverWithTheBitsOfTheGenericFold() =>
        Prop.ForAll(StackCase.Arbitrary(Projected, ragged: true, max: 6), c =>
        {
            var q = NewCells.Generic(c.P);
            Func<int, int, int> label = (t, j) => t < c.Lengths[j] ? c.Labels[t][j] : Ragged.Ignored;
            var driver = Stack.OnDriver(c.P, c.Xs, c.Lengths, c.Initial, label, inputGradients: true);
            var (loss, lossFold) = (Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial),
                                    Stack.LossAndGradients(q, c.Xs, c.Labels, c.LengthsArgument, c.Initial));
            var (forward, forwardFold) = (Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial), Stack.Forward(q, c.Xs, c.LengthsArgument, c.Initial));
            var (back, backFold) = (Stack.Backward(forward, c.DTop, c.DFinal), Stack.Backward(forwardFold, c.DTop, c.DFinal));
            return (driver is not null).Label("the one-pass loss runs on the stack driver")
                .And((driver is not null && Compare.Same(driver.Final, forwardFold.Final)).Label("the one-pass loss's final states: same bits"))
                .And((Compare.Same(loss.Loss, lossFold.Loss) && Compare.Same(loss.Dx, lossFold.Dx) && Compare.Same(loss.DInitial, lossFold.DInitial))
                    .Label($"loss ({loss.Loss:R} and {lossFold.Loss:R}), dx and dInitial: same bits"))
                .And(Compare.Close(loss.Gradients, lossFold.Gradients, 1e-12).Label("loss parameter gradients to 1e-12"))
                .And((Compare.Same(forward.States, forwardFold.States) && Compare.Same(forward.Final, forwardFold.Final)
                      && Compare.Same(forward.Predictions, forwardFold.Predictions)).Label("every layer's states, the final states and the predictions: same bits"))
                .And((Compare.Same(back.Dx, backFold.Dx) && Compare.Same(back.DInitial, backFold.DInitial)).Label("backward dx and dInitial: same bits"))
                .And(Compare.Close(back.Gradients, backFold.Gradients, 1e-12).Label("backward parameter gradients to 1e-12"));
        });

    /// <summary>
    /// Dropout masks on the driver — on every layer's inputs, on the recurrent state (n_p rows of a projected h⟨t−1⟩)
    /// and on the read-out's inputs — against the same masks on the generic fold: loss, dx and dInitial the same bits,
    /// parameter gradients to 1e-12; <see cref="Stack.Loss"/> (every layer a driver call of its own) the same bits.
    /// </summary>
    [Property(MaxTest = 40)]
    public Property MaskedProjectedStacksOnTheDriverAgreeWithTheGenericFold() =>
        Prop.ForAll(StackCase.Arbitrary(Projected, ragged: true, max: 6), c =>
        {
            var mask = DropoutGradientTests.Masks(c, Everything);
            var fused = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: mask);
            var fold = Stack.LossAndGradients(NewCells.Generic(c.P), c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: mask);
            return (Compare.Same(fused.Loss, fold.Loss) && Compare.Same(fused.Dx, fold.Dx) && Compare.Same(fused.DInitial, fold.DInitial))
                    .Label($"loss ({fused.Loss:R} and {fold.Loss:R}), dx and dInitial: same bits")
                .And(Compare.Close(fused.Gradients, fold.Gradients, 1e-12).Label("parameter gradients to 1e-12"))
                .And(Compare.Same(fused.Loss, Stack.Loss(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, mask)).Label("Stack.Loss: the same bits"));
        });

    /// <summary>
    /// Checkpointing changes no bit of a projected stack, masked or not: the checkpointed loss (each layer a driver call
    /// keeping its carry every k steps) has the bits of the one-pass loss on the stack driver, and a checkpointed
    /// forward's backward those of the full one.
    /// </summary>
    [Property(MaxTest = 40)]
    public Property CheckpointedProjectedStacksHaveTheBitsOfTheFullBackward() =>
        Prop.ForAll(StackCase.Arbitrary(Projected, ragged: true, max: 6), Gen.Choose(1, 6).ToArbitrary(), Gen.Elements(false, true).ToArbitrary(),
            (c, every, masked) =>
            {
                var mask = masked ? DropoutGradientTests.Masks(c, Everything) : null;
                var (full, checkpointed) = (Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: mask),
                                            Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, every, mask));
                var (back, backCheckpointed) = (Stack.Backward(Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial, dropout: mask), c.DTop, c.DFinal),
                                                Stack.Backward(Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial, every, mask), c.DTop, c.DFinal));
                return (Compare.Same(full.Loss, checkpointed.Loss) && Compare.Same(full.Gradients, checkpointed.Gradients)
                        && Compare.Same(full.Dx, checkpointed.Dx) && Compare.Same(full.DInitial, checkpointed.DInitial)).Label($"loss and gradients, every {every}, masked {masked}")
                    .And((Compare.Same(back.Gradients, backCheckpointed.Gradients) && Compare.Same(back.Dx, backCheckpointed.Dx)
                          && Compare.Same(back.DInitial, backCheckpointed.DInitial)).Label($"backward, every {every}, masked {masked}"));
            });

    [Property(MaxTest = 40)]
    public Property ProjectedOnTopLossMatchesFiniteDifferences() =>
        StackLaws.LossGradientsMatchFiniteDifferences(ProjectedOnTop, ragged: true, max: 5);

    [Property(MaxTest = 40)]
    public Property ProjectedOnTopBackwardMatchesFiniteDifferences() =>
        StackLaws.BackwardMatchesFiniteDifferences(ProjectedOnTop, ragged: true, max: 5);

    /// <summary>Every mask of a ragged projected stack on the driver against finite differences, the masks held fixed.</summary>
    [Property(MaxTest = 15)]
    public Property MaskedProjectedStackMatchesFiniteDifferences() =>
        Prop.ForAll(StackCase.Arbitrary(ProjectedOnTop, ragged: true, max: 4), c =>
        {
            var mask = DropoutGradientTests.Masks(c, Everything);
            double F(StackParameters p, ImmutableArray<MathNet.Numerics.LinearAlgebra.Matrix<double>> xs,
                ImmutableArray<ImmutableArray<MathNet.Numerics.LinearAlgebra.Matrix<double>>> initial) =>
                Stack.Loss(p, xs, c.Labels, c.LengthsArgument, initial, mask);
            var g = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, dropout: mask);
            return GradientProperty.Holds(GradCheck.Tree(p => F(p, c.Xs, c.Initial), c.P, g.Gradients, GradCheckOptions.Precise))
                .And(GradientProperty.Holds(StackLaws.InputCheck(c, (xs, initial) => F(c.P, xs, initial), g.Dx, g.DInitial)));
        });
}
