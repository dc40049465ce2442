using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// The sequence driver against the generic fold it is proven by: every composition of the built-in cells — stacks
/// mixing cells, bidirectional layers, ragged batches with columns of length 1 — gives the states, predictions, final
/// states, loss, dx and initial-state gradients of the same stack made of generic layers (<see cref="Layer.Of"/>,
/// the cells' <see cref="Cell{TParams,TCarry,TCache}"/> on <see cref="Ragged"/>), bit for bit, and the parameter
/// gradients to 1e-12 (their sums run over time in another order); and checkpointing changes no bit.
/// </summary>
public sealed class EngineTests
{
    private static readonly ImmutableArray<LayerSpec> EveryComposition =
        [LayerSpec.Uni(CellKind.Lstm), LayerSpec.Bi(CellKind.Gru, CellKind.RnnTanh), LayerSpec.Uni(CellKind.RnnRelu), LayerSpec.Bi(CellKind.Lstm, CellKind.Gru)];

    /// <summary>The same layer on the generic fold: the built-in cell as a <see cref="Layer.Of"/> layer, or a bidirectional pair of them.</summary>
    private static Layer Generic(Layer layer) => layer switch
    {
        CellLayer<RnnParameters, Matrix<double>, RnnCache> r =>
            Layer.Of(Rnn.Cell, r.Parameters, r.InputSize, r.OutputSize, r.StateRows, r.Unused),
        CellLayer<LstmParameters, LstmState, LstmCache> l =>
            Layer.Of(Lstm.Cell, l.Parameters, l.InputSize, l.OutputSize, l.StateRows, l.Unused),
        CellLayer<GruParameters, Matrix<double>, GruCache> g =>
            Layer.Of(Gru.Cell, g.Parameters, g.InputSize, g.OutputSize, g.StateRows, g.Unused),
        BidirectionalLayer b => Layer.Bidirectional(Generic(b.Forward), Generic(b.Reverse)),
        _ => throw new ArgumentException($"expected a layer of a built-in cell but got {layer}", nameof(layer)),
    };

    private static StackParameters Generic(StackParameters p) => p with { Layers = [.. p.Layers.Select(Generic)] };

    [Property(MaxTest = 60)]
    public Property EveryFusedCompositionAgreesWithTheGenericFold() =>
        Prop.ForAll(StackCase.Arbitrary(EveryComposition, ragged: true, max: 6), c =>
        {
            var (p, q) = (c.P, Generic(c.P));
            var (fused, fold) = (Stack.Forward(p, c.Xs, c.LengthsArgument, c.Initial), Stack.Forward(q, c.Xs, c.LengthsArgument, c.Initial));
            var (dFinal, backFused, backFold) = (fused.Final, (StackGradient?)null, (StackGradient?)null);
            backFused = Stack.Backward(fused, c.DTop, dFinal);
            backFold = Stack.Backward(fold, c.DTop, dFinal);
            var (lossFused, lossFold) = (Stack.LossAndGradients(p, c.Xs, c.Labels, c.LengthsArgument, c.Initial),
                                         Stack.LossAndGradients(q, c.Xs, c.Labels, c.LengthsArgument, c.Initial));
            return (Compare.Same(fused.States, fold.States) && Compare.Same(fused.Final, fold.Final) && Compare.Same(fused.Predictions, fold.Predictions))
                    .Label("every layer's states, the final states and the predictions: same bits")
                .And((Compare.Same(backFused.Dx, backFold.Dx) && Compare.Same(backFused.DInitial, backFold.DInitial)).Label("backward dx and dInitial: same bits"))
                .And(Compare.Close(backFused.Gradients, backFold.Gradients, 1e-12).Label("backward parameter gradients to 1e-12"))
                .And((Compare.Same(lossFused.Loss, lossFold.Loss) && Compare.Same(lossFused.Dx, lossFold.Dx) && Compare.Same(lossFused.DInitial, lossFold.DInitial))
                    .Label($"loss ({lossFused.Loss:R} and {lossFold.Loss:R}), dx and dInitial: same bits"))
                .And(Compare.Close(lossFused.Gradients, lossFold.Gradients, 1e-12).Label("loss parameter gradients to 1e-12"));
        });

    [Property(MaxTest = 8)]
    public Property StacksOfSeveralChunksAgreeWithTheFoldOnOneThreadAndTwo() =>
        Prop.ForAll(Gen.Choose(257, 300).SelectMany(m => Gen.Choose(1, 4), (m, t) => (m, t)).SelectMany(_ => Gen.Choose(0, 100_000), (d, seed) => (d.m, d.t, seed))
            .ToArbitrary(), d =>
        {
            var c = new StackCase(new Shaped(new Dims(3, 3, 3, d.m, d.t), d.seed), EveryComposition, ragged: true);
            var lengths = c.LengthsArgument ?? [.. Enumerable.Repeat(d.t, d.m)];
            Func<int, int, int> label = (t, j) => t < lengths[j] ? c.Labels[t][j] : Ragged.Ignored;
            var (one, two) = (Stack.OnDriver(c.P, c.Xs, lengths, c.Initial, label, inputGradients: true, threads: 1)!,
                              Stack.OnDriver(c.P, c.Xs, lengths, c.Initial, label, inputGradients: true, threads: 2)!);
            var fold = Stack.LossAndGradients(Generic(c.P), c.Xs, c.Labels, c.LengthsArgument, c.Initial);
            return (Compare.Same(one.Losses, two.Losses) && Compare.Same(one.Gradients, two.Gradients) && Compare.Same(one.Dx, two.Dx)
                    && Compare.Same(one.DInitial, two.DInitial) && Compare.Same(one.Final, two.Final)).Label("one thread and two: same bits")
                .And((Compare.Same(RnnFunctional.Kernels.Ops.CompensatedSum(one.Losses), fold.Loss) && Compare.Same(one.Dx, fold.Dx) && Compare.Same(one.DInitial, fold.DInitial))
                    .Label("against the generic fold: loss, dx and dInitial, same bits"))
                .And(Compare.Close(one.Gradients, fold.Gradients, 1e-12).Label("against the generic fold: gradients to 1e-12"));
        });

    [Property(MaxTest = 60)]
    public Property CheckpointedStacksHaveTheBitsOfTheFullBackward() =>
        Prop.ForAll(StackCase.Arbitrary(EveryComposition, ragged: true, max: 6), Gen.Choose(1, 6).ToArbitrary(), (c, every) =>
        {
            var (full, checkpointed) = (Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial),
                                        Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial, every));
            var (back, backCheckpointed) = (Stack.Backward(Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial), c.DTop),
                                            Stack.Backward(Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial, every), c.DTop));
            return (Compare.Same(full.Loss, checkpointed.Loss) && Compare.Same(full.Gradients, checkpointed.Gradients)
                    && Compare.Same(full.Dx, checkpointed.Dx) && Compare.Same(full.DInitial, checkpointed.DInitial)).Label($"loss and gradients, every {every}")
                .And((Compare.Same(back.Gradients, backCheckpointed.Gradients) && Compare.Same(back.Dx, backCheckpointed.Dx)
                      && Compare.Same(back.DInitial, backCheckpointed.DInitial)).Label($"backward, every {every}"));
        });

    [Property(Arbitrary = [typeof(LstmArbitraries)], MaxTest = 60)]
    public Property CheckpointedLstmHasTheBitsOfTheFullBackward(LstmCase c, PositiveInt k)
    {
        var every = 1 + (k.Get - 1) % (c.Xs.Length + 1);
        var (full, checkpointed) = (Lstm.LossAndGradients(c.P, c.Xs, c.A0, c.C0, c.Labels), Lstm.LossAndGradientsCheckpointed(c.P, c.Xs, c.A0, c.C0, c.Labels, every));
        var (back, backCheckpointed) = (Lstm.Backward(Lstm.Forward(c.P, c.Xs, c.A0, c.C0), c.Da), Lstm.BackwardCheckpointed(c.P, c.Xs, c.A0, c.C0, c.Da, every));
        return (Compare.Same(full.Loss, checkpointed.Loss) && Compare.Same(full.Gradients, checkpointed.Gradients) && Compare.Same(full.Dx, checkpointed.Dx)
                && Compare.Same(full.Da0, checkpointed.Da0) && Compare.Same(full.Dc0, checkpointed.Dc0)).Label($"loss and gradients, every {every}")
            .And((Compare.Same(back.Gradients, backCheckpointed.Gradients) && Compare.Same(back.Dx, backCheckpointed.Dx)
                  && Compare.Same(back.Da0, backCheckpointed.Da0) && Compare.Same(back.Dc0, backCheckpointed.Dc0)).Label($"backward, every {every}"));
    }

    [Property(Arbitrary = [typeof(GruArbitraries)], MaxTest = 60)]
    public Property CheckpointedGruHasTheBitsOfTheFullBackward(GruCase c, PositiveInt k)
    {
        var every = 1 + (k.Get - 1) % (c.Xs.Length + 1);
        var (full, checkpointed) = (Gru.LossAndGradients(c.P, c.Xs, c.A0, c.Labels), Gru.LossAndGradientsCheckpointed(c.P, c.Xs, c.A0, c.Labels, every));
        var (back, backCheckpointed) = (Gru.Backward(Gru.Forward(c.P, c.Xs, c.A0), c.Da), Gru.BackwardCheckpointed(c.P, c.Xs, c.A0, c.Da, every));
        return (Compare.Same(full.Loss, checkpointed.Loss) && Compare.Same(full.Gradients, checkpointed.Gradients) && Compare.Same(full.Dx, checkpointed.Dx)
                && Compare.Same(full.Da0, checkpointed.Da0)).Label($"loss and gradients, every {every}")
            .And((Compare.Same(back.Gradients, backCheckpointed.Gradients) && Compare.Same(back.Dx, backCheckpointed.Dx)
                  && Compare.Same(back.Da0, backCheckpointed.Da0)).Label($"backward, every {every}"));
    }

    [Fact]
    public void CheckpointingAskedOfAStackNamesEvery()
    {
        var p = StackParameters.Initialize([Layer.Lstm(2, 3, seed: 1)], 2, seed: 2);
        ImmutableArray<Matrix<double>> xs = [Matrix<double>.Build.Dense(2, 1)];
        var error = Assert.Throws<ArgumentException>(() => Stack.LossAndGradients(p, xs, [[0]], every: 0));
        Assert.Equal("every", error.ParamName);
        Assert.Contains("every", error.Message);
    }

    [Fact]
    public void CheckpointingEveryIntMaxValueIsTheFullBackward()
    {
        var c = new RnnCase(new Shaped(new Dims(3, 4, 2, 2, 5), 7));
        var (full, checkpointed) = (Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels), Rnn.LossAndGradientsCheckpointed(c.P, c.Xs, c.A0, c.Labels, int.MaxValue));
        Assert.True(Compare.Same(full.Loss, checkpointed.Loss) && Compare.Same(full.Gradients, checkpointed.Gradients) && Compare.Same(full.Dx, checkpointed.Dx));
        var lstm = new LstmCase(new Shaped(new Dims(3, 4, 2, 2, 5), 7));
        Assert.True(Compare.Same(Lstm.LossAndGradients(lstm.P, lstm.Xs, lstm.A0, lstm.C0, lstm.Labels).Gradients,
            Lstm.LossAndGradientsCheckpointed(lstm.P, lstm.Xs, lstm.A0, lstm.C0, lstm.Labels, int.MaxValue).Gradients));
    }
}
