using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;
using RnnFunctional.Testing;
using static RnnFunctional.Testing.Compare;

namespace RnnFunctional.Tests;

/// <summary>Cases of the gated cells, with sequences long enough for several time blocks.</summary>
public sealed class GatedKernelArbitraries
{
    private static Gen<Shaped> Shapes =>
        from shape in Shaped.Arbitrary(8).Generator
        from steps in Gen.Choose(1, 40)
        select shape with { Dims = shape.Dims with { T = steps } };

    public static Arbitrary<LstmCase> Lstms() =>
        Arb.From(Shapes.Select(s => new LstmCase(s)), c => Shaped.Arbitrary(8).Shrinker(c.Shape).Select(s => new LstmCase(s)));

    public static Arbitrary<GruCase> Grus() =>
        Arb.From(Shapes.Select(s => new GruCase(s)), c => Shaped.Arbitrary(8).Shrinker(c.Shape).Select(s => new GruCase(s)));
}

/// <summary>
/// The sequence kernels behind Lstm and Gru's Forward, Backward and LossAndGradients against the generic fold of
/// their cells through <see cref="Recurrence"/>: the states, gates, predictions, input gradients and losses have the
/// same bits; the parameter gradients, summed in another order, agree to 1e-12 relative; splitting the batch over
/// threads changes no bit.
/// </summary>
public sealed class CellKernelTests
{
    // ---- LSTM ----

    private static LstmState Zero(Matrix<double> a0) => new(Matrix<double>.Build.Dense(a0.RowCount, a0.ColumnCount), Matrix<double>.Build.Dense(a0.RowCount, a0.ColumnCount));

    [Property(Arbitrary = [typeof(GatedKernelArbitraries)], MaxTest = 100)]
    public Property LstmForwardHasTheBitsOfTheGenericFold(LstmCase c)
    {
        var fast = Lstm.Forward(c.P, c.Xs, c.A0, c.C0);
        var generic = Recurrence.Forward(Lstm.Cell, c.P, c.Xs, new LstmState(c.A0, c.C0));
        return Same(fast.States, generic.Outputs).Label("states")
            .And(Same(fast.Cells, [.. generic.Caches.Select(k => k.C)]).Label("cells"))
            .And(Same(fast.Predictions, [.. generic.Outputs.Select(a => Softmax.Predict(c.P.Wy, c.P.By, a))]).Label("predictions"))
            .And(fast.Caches.Zip(generic.Caches, (f, g) => Same(f.F, g.F) && Same(f.I, g.I) && Same(f.CTilde, g.CTilde) && Same(f.O, g.O)
                && Same(f.APrev, g.APrev) && Same(f.CPrev, g.CPrev)).All(x => x).Label("caches"));
    }

    [Property(Arbitrary = [typeof(GatedKernelArbitraries)], MaxTest = 100)]
    public Property LstmBackwardAgreesWithTheGenericFold(LstmCase c)
    {
        var forward = Lstm.Forward(c.P, c.Xs, c.A0, c.C0);
        var fast = Lstm.Backward(forward, c.Da);
        var generic = Recurrence.Backward(Lstm.Cell, Tree.ZerosLike(c.P), forward.Caches, c.Da, Zero(c.A0));
        return Same(fast.Dx, generic.Dx).Label("dx, same bits")
            .And((Same(fast.Da0, generic.DInit.A) && Same(fast.Dc0, generic.DInit.C)).Label("da0 and dc0, same bits"))
            .And(Close(fast.Gradients, generic.Gradients, 1e-12).Label("parameter gradients to 1e-12"));
    }

    [Property(Arbitrary = [typeof(GatedKernelArbitraries)], MaxTest = 100)]
    public Property LstmLossAndGradientsAgreesWithTheGenericFold(LstmCase c)
    {
        var fast = Lstm.LossAndGradients(c.P, c.Xs, c.A0, c.C0, c.Labels);
        var scanned = Recurrence.Forward(Lstm.Cell, c.P, c.Xs, new LstmState(c.A0, c.C0));
        var head = Softmax.LossAndGradients(c.P.Wy, c.P.By, scanned.Outputs, c.Labels);
        var back = Recurrence.Backward(Lstm.Cell, Tree.ZerosLike(c.P), scanned.Caches, head.DStates, Zero(c.A0));
        return Same(fast.Loss, head.Loss).Label($"loss, same bits: {fast.Loss:R} and {head.Loss:R}")
            .And(Same(fast.Dx, back.Dx).Label("dx, same bits"))
            .And((Same(fast.Da0, back.DInit.A) && Same(fast.Dc0, back.DInit.C)).Label("da0 and dc0, same bits"))
            .And(Close(fast.Gradients, back.Gradients with { Wy = head.DWy, By = head.DBy }, 1e-12).Label("parameter gradients to 1e-12"));
    }

    // ---- GRU ----

    [Property(Arbitrary = [typeof(GatedKernelArbitraries)], MaxTest = 100)]
    public Property GruForwardHasTheBitsOfTheGenericFold(GruCase c)
    {
        var fast = Gru.Forward(c.P, c.Xs, c.A0);
        var generic = Recurrence.Forward(Gru.Cell, c.P, c.Xs, c.A0);
        return Same(fast.States, generic.Outputs).Label("states")
            .And(Same(fast.Predictions, [.. generic.Outputs.Select(a => Softmax.Predict(c.P.Wy, c.P.By, a))]).Label("predictions"))
            .And(fast.Caches.Zip(generic.Caches, (f, g) => Same(f.R, g.R) && Same(f.Z, g.Z) && Same(f.N, g.N) && Same(f.Hn, g.Hn)
                && Same(f.APrev, g.APrev)).All(x => x).Label("caches"));
    }

    [Property(Arbitrary = [typeof(GatedKernelArbitraries)], MaxTest = 100)]
    public Property GruBackwardAgreesWithTheGenericFold(GruCase c)
    {
        var forward = Gru.Forward(c.P, c.Xs, c.A0);
        var fast = Gru.Backward(forward, c.Da);
        var generic = Recurrence.Backward(Gru.Cell, Tree.ZerosLike(c.P), forward.Caches, c.Da, Matrix<double>.Build.Dense(c.A0.RowCount, c.A0.ColumnCount));
        return Same(fast.Dx, generic.Dx).Label("dx, same bits")
            .And(Same(fast.Da0, generic.DInit).Label("da0, same bits"))
            .And(Close(fast.Gradients, generic.Gradients, 1e-12).Label("parameter gradients to 1e-12"));
    }

    [Property(Arbitrary = [typeof(GatedKernelArbitraries)], MaxTest = 100)]
    public Property GruLossAndGradientsAgreesWithTheGenericFold(GruCase c)
    {
        var fast = Gru.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);
        var scanned = Recurrence.Forward(Gru.Cell, c.P, c.Xs, c.A0);
        var head = Softmax.LossAndGradients(c.P.Wy, c.P.By, scanned.Outputs, c.Labels);
        var back = Recurrence.Backward(Gru.Cell, Tree.ZerosLike(c.P), scanned.Caches, head.DStates, Matrix<double>.Build.Dense(c.A0.RowCount, c.A0.ColumnCount));
        return Same(fast.Loss, head.Loss).Label($"loss, same bits: {fast.Loss:R} and {head.Loss:R}")
            .And(Same(fast.Dx, back.Dx).Label("dx, same bits"))
            .And(Same(fast.Da0, back.DInit).Label("da0, same bits"))
            .And(Close(fast.Gradients, back.Gradients with { Wy = head.DWy, By = head.DBy }, 1e-12).Label("parameter gradients to 1e-12"));
    }

    [Property(MaxTest = 10)]
    public Property GruSplitOverThreadsIsBitwiseIdenticalToOneThread() =>
        Prop.ForAll(WideBatches.ToArbitrary(), shape =>
        {
            var c = new GruCase(shape);
            var (one, two) = (Gru.LossKernel(c.P, c.Xs, c.A0, c.Labels, threads: 1), Gru.LossKernel(c.P, c.Xs, c.A0, c.Labels, threads: 2));
            var forward = Gru.ForwardKernel(c.P, c.Xs, c.A0, threads: 2);
            var (backOne, backTwo) = (Gru.BackwardKernel(forward, c.Da, threads: 1), Gru.BackwardKernel(forward, c.Da, threads: 2));
            return (Same(one.Loss, two.Loss) && Same(one.Gradients, two.Gradients) && Same(one.Dx, two.Dx) && Same(one.Da0, two.Da0))
                .Label($"m={c.A0.ColumnCount}: LossAndGradients on one and two threads")
                .And((Same(backOne.Gradients, backTwo.Gradients) && Same(backOne.Dx, backTwo.Dx)).Label("Backward on one and two threads"));
        });

    // ---- the language models of rnnf train ----

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property LstmLanguageModelOnTheKernelAgreesWithTheGenericFold(LanguageCase c)
    {
        var generic = LanguageModel.FromCell(Lstm.Cell, c.V,
            (p, m) => new LstmState(Matrix<double>.Build.Dense(p.HiddenSize, m), Matrix<double>.Build.Dense(p.HiddenSize, m)),
            p => (p.Wy, p.By), (g, dWy, dBy) => g with { Wy = dWy, By = dBy });
        var init = new LstmState(c.A0, c.C0);
        var (fast, reference) = (LanguageModel.Lstm(c.V).LossAndGradients(c.Lstm, c.Batch, init), generic.LossAndGradients(c.Lstm, c.Batch, init));
        return Same(fast.Loss, reference.Loss).Label($"loss, same bits: {fast.Loss:R} and {reference.Loss:R}")
            .And((fast.Tokens == reference.Tokens).Label("tokens"))
            .And((Same(fast.Final.A, reference.Final.A) && Same(fast.Final.C, reference.Final.C)).Label("final state, same bits"))
            .And(Close(fast.Gradients, reference.Gradients, 1e-12).Label("parameter gradients to 1e-12"));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property GruLanguageModelOnTheKernelAgreesWithTheGenericFold(LanguageCase c)
    {
        var generic = LanguageModel.FromCell(Gru.Cell, c.V, (p, m) => Matrix<double>.Build.Dense(p.HiddenSize, m),
            p => (p.Wy, p.By), (g, dWy, dBy) => g with { Wy = dWy, By = dBy });
        var (fast, reference) = (LanguageModel.Gru(c.V).LossAndGradients(c.Gru, c.Batch, c.A0), generic.LossAndGradients(c.Gru, c.Batch, c.A0));
        return Same(fast.Loss, reference.Loss).Label($"loss, same bits: {fast.Loss:R} and {reference.Loss:R}")
            .And((fast.Tokens == reference.Tokens).Label("tokens"))
            .And(Same(fast.Final, reference.Final).Label("final state, same bits"))
            .And(Close(fast.Gradients, reference.Gradients, 1e-12).Label("parameter gradients to 1e-12"));
    }

    // ---- both cells: the batch split ----

    private static Gen<Shaped> WideBatches =>
        from shape in Shaped.Arbitrary(5).Generator
        from m in Gen.Choose(Summation.ChunkColumns * 2, Summation.ChunkColumns * 3 + 40)
        from steps in Gen.Choose(1, 8)
        select shape with { Dims = shape.Dims with { M = m, T = steps } };

    [Property(MaxTest = 10)]
    public Property LstmSplitOverThreadsIsBitwiseIdenticalToOneThread() =>
        Prop.ForAll(WideBatches.ToArbitrary(), shape =>
        {
            var c = new LstmCase(shape);
            var (one, two) = (Lstm.LossKernel(c.P, c.Xs, c.A0, c.C0, c.Labels, threads: 1), Lstm.LossKernel(c.P, c.Xs, c.A0, c.C0, c.Labels, threads: 2));
            var forward = Lstm.ForwardKernel(c.P, c.Xs, c.A0, c.C0, threads: 2);
            var (backOne, backTwo) = (Lstm.BackwardKernel(forward, c.Da, threads: 1), Lstm.BackwardKernel(forward, c.Da, threads: 2));
            return (Same(one.Loss, two.Loss) && Same(one.Gradients, two.Gradients) && Same(one.Dx, two.Dx) && Same(one.Da0, two.Da0) && Same(one.Dc0, two.Dc0))
                .Label($"m={c.A0.ColumnCount}: LossAndGradients on one and two threads")
                .And((Same(backOne.Gradients, backTwo.Gradients) && Same(backOne.Dx, backTwo.Dx)).Label("Backward on one and two threads"));
        });
}
