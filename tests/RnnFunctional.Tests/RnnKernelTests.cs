using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;
using RnnFunctional.Testing;
using static RnnFunctional.Testing.Compare;

namespace RnnFunctional.Tests;

/// <summary>Draws cases with either activation.</summary>
public sealed class RnnKernelArbitraries
{
    public static Arbitrary<RnnCase> Cases() =>
        Arb.From(
            from shape in Shaped.Arbitrary(8).Generator
            from activation in Gen.Elements(Activation.Tanh, Activation.Relu)
            select new RnnCase(shape, activation),
            c => Shaped.Arbitrary(8).Shrinker(c.Shape).Select(s => new RnnCase(s, c.P.Activation)));
}

/// <summary>
/// The sequence kernels behind Rnn.Forward, Backward and LossAndGradients against the generic fold of
/// <see cref="Rnn.Cell"/> through <see cref="Recurrence"/>: the states, predictions, input gradients and per-step
/// losses have the same bits; the parameter gradients, summed in another order, agree to 1e-12 relative. The
/// checkpointed backward and the batch split over threads give bitwise-identical results.
/// </summary>
public sealed class RnnKernelTests
{
    private static ScannedGradient<RnnParameters, Matrix<double>> GenericBackward(RnnParameters p, ImmutableArray<RnnCache> caches,
        ImmutableArray<Matrix<double>> da, int m) =>
        Recurrence.Backward(Rnn.Cell, Tree.ZerosLike(p), caches, da, Matrix<double>.Build.Dense(p.HiddenSize, m));

    [Property(Arbitrary = [typeof(RnnKernelArbitraries)], MaxTest = 100)]
    public Property ForwardHasTheBitsOfTheGenericFold(RnnCase c)
    {
        var fast = Rnn.Forward(c.P, c.Xs, c.A0);
        var generic = Recurrence.Forward(Rnn.Cell, c.P, c.Xs, c.A0);
        var predictions = generic.Outputs.Select(a => Softmax.Predict(c.P.Wya, c.P.By, a)).ToImmutableArray();
        return Same(fast.States, generic.Outputs).Label("states")
            .And(Same(fast.Predictions, predictions).Label("predictions"))
            .And(fast.Caches.Zip(generic.Caches, (f, g) => Same(f.Xt, g.Xt) && Same(f.APrev, g.APrev) && Same(f.A, g.A)).All(x => x).Label("caches"));
    }

    /// <summary>The predictions are computed when first read and then kept: every read, from any thread, sees the same matrices.</summary>
    [Property(Arbitrary = [typeof(RnnKernelArbitraries)], MaxTest = 100)]
    public Property PredictionsAreComputedOnceWhenFirstRead(RnnCase c)
    {
        var forward = Rnn.Forward(c.P, c.Xs, c.A0);
        var reads = Enumerable.Range(0, 4).AsParallel().Select(_ => forward.Predictions).ToArray();
        var copy = forward with { Caches = forward.Caches };
        return reads.All(r => r.Zip(reads[0], ReferenceEquals).All(same => same)).Label("every read gives the same matrices")
            .And(copy.Predictions.Zip(reads[0], ReferenceEquals).All(same => same)).Label("a copy shares them")
            .And(Same(Rnn.Backward(forward, c.Da).Dx, Rnn.Backward(Rnn.Forward(c.P, c.Xs, c.A0), c.Da).Dx)).Label("reading them changes nothing else");
    }

    [Property(Arbitrary = [typeof(RnnKernelArbitraries)], MaxTest = 100)]
    public Property BackwardAgreesWithTheGenericFold(RnnCase c)
    {
        var forward = Rnn.Forward(c.P, c.Xs, c.A0);
        var fast = Rnn.Backward(forward, c.Da);
        var generic = GenericBackward(c.P, forward.Caches, c.Da, c.A0.ColumnCount);
        return Same(fast.Dx, generic.Dx).Label("dx, same bits")
            .And(Same(fast.Da0, generic.DInit).Label("da0, same bits"))
            .And(Close(fast.Gradients, generic.Gradients, 1e-12).Label("parameter gradients to 1e-12"))
            .And((fast.Gradients.Activation == c.P.Activation).Label("activation kept"));
    }

    [Property(Arbitrary = [typeof(RnnKernelArbitraries)], MaxTest = 100)]
    public Property LossAndGradientsAgreesWithTheGenericFold(RnnCase c)
    {
        var fast = Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);
        var scanned = Recurrence.Forward(Rnn.Cell, c.P, c.Xs, c.A0);
        var head = Softmax.LossAndGradients(c.P.Wya, c.P.By, scanned.Outputs, c.Labels);
        var back = GenericBackward(c.P, scanned.Caches, head.DStates, c.A0.ColumnCount);
        var generic = back.Gradients with { Wya = head.DWy, By = head.DBy };
        return (BitConverter.DoubleToInt64Bits(fast.Loss) == BitConverter.DoubleToInt64Bits(head.Loss)).Label($"loss, same bits: {fast.Loss:R} and {head.Loss:R}")
            .And(Same(fast.Dx, back.Dx).Label("dx, same bits"))
            .And(Same(fast.Da0, back.DInit).Label("da0, same bits"))
            .And(Close(fast.Gradients, generic, 1e-12).Label("parameter gradients to 1e-12"));
    }

    /// <summary>Checkpoint distances from 1 (every state kept) to beyond T (one segment), and sequences long enough for several time blocks.</summary>
    private static Gen<(RnnCase Case, int Every)> LongCases =>
        from shape in Shaped.Arbitrary(8).Generator
        from steps in Gen.Choose(1, 70)
        from activation in Gen.Elements(Activation.Tanh, Activation.Relu)
        from every in Gen.Choose(1, steps + 2)
        select (new RnnCase(shape with { Dims = shape.Dims with { T = steps } }, activation), every);

    [Property(MaxTest = 100)]
    public Property BackwardCheckpointedIsBitwiseIdenticalToBackward() =>
        Prop.ForAll(LongCases.ToArbitrary(), t =>
        {
            var c = t.Case;
            var full = Rnn.Backward(Rnn.Forward(c.P, c.Xs, c.A0), c.Da);
            var checkpointed = Rnn.BackwardCheckpointed(c.P, c.Xs, c.A0, c.Da, t.Every);
            return (Same(full.Gradients, checkpointed.Gradients) && Same(full.Dx, checkpointed.Dx) && Same(full.Da0, checkpointed.Da0))
                .Label($"T={c.Xs.Length} every={t.Every}: gradients, dx and da0 bitwise identical");
        });

    [Property(MaxTest = 100)]
    public Property LossAndGradientsCheckpointedIsBitwiseIdenticalToLossAndGradients() =>
        Prop.ForAll(LongCases.ToArbitrary(), t =>
        {
            var c = t.Case;
            var full = Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);
            var checkpointed = Rnn.LossAndGradientsCheckpointed(c.P, c.Xs, c.A0, c.Labels, t.Every);
            return (Same(full.Loss, checkpointed.Loss) && Same(full.Gradients, checkpointed.Gradients) && Same(full.Dx, checkpointed.Dx)
                    && Same(full.Da0, checkpointed.Da0))
                .Label($"T={c.Xs.Length} every={t.Every}: loss, gradients, dx and da0 bitwise identical");
        });

    /// <summary>Batches wide enough to be cut into two or three chunks, with small models to keep the test fast.</summary>
    private static Gen<RnnCase> WideBatches =>
        from shape in Shaped.Arbitrary(6).Generator
        from m in Gen.Choose(Summation.ChunkColumns * 2, Summation.ChunkColumns * 3 + 40)
        from steps in Gen.Choose(1, 12)
        select new RnnCase(shape with { Dims = shape.Dims with { M = m, T = steps } });

    [Property(MaxTest = 15)]
    public Property SplittingTheBatchOverThreadsIsBitwiseIdenticalToOneThread() =>
        Prop.ForAll(WideBatches.ToArbitrary(), Gen.Choose(1, 15).ToArbitrary(), (c, every) =>
        {
            var steps = c.Xs.Length;
            var one = Rnn.LossKernel(c.P, c.Xs, c.A0, c.Labels, steps, threads: 1);
            var two = Rnn.LossKernel(c.P, c.Xs, c.A0, c.Labels, steps, threads: 2);
            var checkpointed = Rnn.LossKernel(c.P, c.Xs, c.A0, c.Labels, every, threads: 2);
            var forward = Rnn.ForwardKernel(c.P, c.Xs, c.A0, threads: 1);
            var backwardOne = Rnn.BackwardKernel(forward, c.Da, threads: 1);
            var backwardTwo = Rnn.BackwardKernel(Rnn.ForwardKernel(c.P, c.Xs, c.A0, threads: 2), c.Da, threads: 2);
            return (Same(one.Loss, two.Loss) && Same(one.Gradients, two.Gradients) && Same(one.Dx, two.Dx) && Same(one.Da0, two.Da0))
                .Label($"m={c.A0.ColumnCount}: LossAndGradients on one and two threads")
                .And((Same(checkpointed.Loss, one.Loss) && Same(checkpointed.Gradients, one.Gradients)).Label($"checkpointed every {every} on two threads"))
                .And((Same(backwardOne.Gradients, backwardTwo.Gradients) && Same(backwardOne.Dx, backwardTwo.Dx)).Label("Backward on one and two threads"));
        });

    [Fact]
    public async Task ThreadsGivenToAComputationAreItsOwnNestedAndGivenBackAfter()
    {
        var outside = Summation.DefaultThreads;
        Assert.Equal((3, 1, 3), Summation.WithThreads(3, () => (Summation.DefaultThreads, Summation.WithThreads(1, () => Summation.DefaultThreads), Summation.DefaultThreads)));
        Assert.Equal(64, Summation.WithThreads(500, () => Summation.DefaultThreads));
        // Another computation running meanwhile keeps its own number.
        using var inside = new ManualResetEventSlim();
        using var checkedOutside = new ManualResetEventSlim();
        var mine = outside == 5 ? 6 : 5;
        var scoped = Task.Run(() => Summation.WithThreads(mine, () =>
        {
            inside.Set();
            checkedOutside.Wait();
            return Summation.DefaultThreads;
        }));
        inside.Wait();
        Assert.Equal(outside, Summation.DefaultThreads);
        checkedOutside.Set();
        Assert.Equal(mine, await scoped);
        Assert.Equal(outside, Summation.DefaultThreads);
        Assert.Throws<InvalidOperationException>(() => Summation.WithThreads<int>(2, () => throw new InvalidOperationException()));
        Assert.Equal(outside, Summation.DefaultThreads);
        Assert.Equal("threads", Assert.Throws<ArgumentOutOfRangeException>(() => Summation.WithThreads(0, () => 0)).ParamName);
        // The bits do not depend on it.
        var c = new RnnCase(new Shaped(new Dims(3, 5, 4, Summation.ChunkColumns * 2 + 3, 4), 7));
        var (one, two) = (Summation.WithThreads(1, () => Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels)), Summation.WithThreads(2, () => Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels)));
        Assert.True(Same(one.Loss, two.Loss) && Same(one.Gradients, two.Gradients));
    }

    [Property(MaxTest = 10)]
    public Property SplitBatchesAgreeWithTheGenericFold() =>
        Prop.ForAll(WideBatches.ToArbitrary(), c =>
        {
            var fast = Rnn.LossKernel(c.P, c.Xs, c.A0, c.Labels, c.Xs.Length, threads: 2);
            var scanned = Recurrence.Forward(Rnn.Cell, c.P, c.Xs, c.A0);
            var head = Softmax.LossAndGradients(c.P.Wya, c.P.By, scanned.Outputs, c.Labels);
            var back = GenericBackward(c.P, scanned.Caches, head.DStates, c.A0.ColumnCount);
            return Same(fast.Loss, head.Loss).Label("loss, same bits")
                .And(Same(fast.Dx, back.Dx).Label("dx, same bits"))
                .And(Close(fast.Gradients, back.Gradients with { Wya = head.DWy, By = head.DBy }, 1e-12).Label("parameter gradients to 1e-12"));
        });

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property LanguageModelOnTheKernelAgreesWithTheGenericFold(LanguageCase c)
    {
        var generic = LanguageModel.FromCell(Rnn.Cell, c.V, (p, m) => Matrix<double>.Build.Dense(p.HiddenSize, m), p => (p.Wya, p.By),
            (g, dWy, dBy) => g with { Wya = dWy, By = dBy });
        var (fast, reference) = (c.Model.LossAndGradients(c.P, c.Batch, c.A0), generic.LossAndGradients(c.P, c.Batch, c.A0));
        return Same(fast.Loss, reference.Loss).Label($"loss, same bits: {fast.Loss:R} and {reference.Loss:R}")
            .And((fast.Tokens == reference.Tokens).Label("tokens"))
            .And(Same(fast.Final, reference.Final).Label("final state, same bits"))
            .And(Close(fast.Gradients, reference.Gradients, 1e-12).Label("parameter gradients to 1e-12"));
    }

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 30)]
    public Property CheckpointedFunctionsRejectADistanceBelowOne(RnnCase c)
    {
        var backward = Assert.Throws<ArgumentException>(() => Rnn.BackwardCheckpointed(c.P, c.Xs, c.A0, c.Da, 0));
        var loss = Assert.Throws<ArgumentException>(() => Rnn.LossAndGradientsCheckpointed(c.P, c.Xs, c.A0, c.Labels, -3));
        return (backward.ParamName == "every" && backward.Message.StartsWith("expected every to be at least 1 but got 0")).Label(backward.Message)
            .And((loss.ParamName == "every" && loss.Message.StartsWith("expected every to be at least 1 but got -3")).Label(loss.Message))
            .And(Rnn.TryBackwardCheckpointed(c.P, c.Xs, c.A0, c.Da, 0).IsFail.Label("TryBackwardCheckpointed fails"));
    }

    [Property(Arbitrary = [typeof(RnnArbitraries)], MaxTest = 30)]
    public Property BackwardCheckpointedRejectsMismatchedDa(RnnCase c)
    {
        var da = c.Da.SetItem(0, Matrix<double>.Build.Dense(c.P.HiddenSize + 1, c.A0.ColumnCount));
        var e = Assert.Throws<ArgumentException>(() => Rnn.BackwardCheckpointed(c.P, c.Xs, c.A0, da, 2));
        var expected = $"expected da[0] to be n_a×m = {c.P.HiddenSize}×{c.A0.ColumnCount} but got {c.P.HiddenSize + 1}×{c.A0.ColumnCount}";
        return (e.ParamName == "da" && e.Message.StartsWith(expected)).Label(e.Message);
    }
}
