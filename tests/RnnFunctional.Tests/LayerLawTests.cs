using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using static RnnFunctional.Testing.Compare;

namespace RnnFunctional.Tests;

/// <summary>Laws of stacks, bidirectional layers and ragged batches: each composition reduces to simpler runs.</summary>
public sealed class LayerLawTests
{
    private static readonly ImmutableArray<LayerSpec> Mixed = [LayerSpec.Uni(CellKind.Lstm), LayerSpec.Bi(CellKind.Gru, CellKind.RnnRelu)];
    private static readonly ImmutableArray<LayerSpec> Deep =
        [LayerSpec.Bi(CellKind.Lstm, CellKind.RnnTanh), LayerSpec.Uni(CellKind.RnnRelu), LayerSpec.Uni(CellKind.Gru)];

    private static Matrix<double> Column(Matrix<double> m, int j) => m.SubMatrix(0, m.RowCount, j, 1);

    /// <summary>
    /// The τ of <see cref="Compare.Close(Matrix{double},Matrix{double},double)"/>: parameter gradients of the sequence
    /// kernels behind Rnn, Lstm and Gru are summed over time in another order than the generic fold of a stack (every
    /// other result is compared bit for bit), and a ragged scan's columns against each column alone.
    /// </summary>
    private const double Tolerance = 1e-12;

    private static bool IsZero(Matrix<double> m) => m.Enumerate().All(v => v == 0);

    [Property(MaxTest = 100)]
    public Property RaggedBatchEqualsColumnsRunAlone() => StackLaws.RaggedBatchEqualsColumnsRunAlone(Mixed);

    [Property(MaxTest = 50)]
    public Property DeepRaggedBatchEqualsColumnsRunAlone() => StackLaws.RaggedBatchEqualsColumnsRunAlone(Deep);

    [Property(MaxTest = 100)]
    public Property FullLengthsEqualOmittedLengths() =>
        Prop.ForAll(StackCase.Arbitrary(Deep, ragged: false), c =>
        {
            var (ragged, full) = (Stack.Forward(c.P, c.Xs, c.Lengths, c.Initial), Stack.Forward(c.P, c.Xs, initial: c.Initial));
            var losses = (Stack.Loss(c.P, c.Xs, c.Labels, c.Lengths, c.Initial), Stack.Loss(c.P, c.Xs, c.Labels, initial: c.Initial));
            var (raggedLoss, fullLoss) = (Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.Lengths, c.Initial), Stack.LossAndGradients(c.P, c.Xs, c.Labels, initial: c.Initial));
            var (raggedBack, fullBack) = (Stack.Backward(ragged, c.DTop), Stack.Backward(full, c.DTop));
            return (Same(ragged.States, full.States) && Same(ragged.Final, full.Final) && Same(ragged.Predictions, full.Predictions)).Label("forward identical")
                .And((Same(raggedLoss.Loss, fullLoss.Loss) && Same(losses.Item1, raggedLoss.Loss) && Same(losses.Item2, fullLoss.Loss)
                      && Same(raggedLoss.Gradients, fullLoss.Gradients)
                      && Same(raggedLoss.Dx, fullLoss.Dx) && Same(raggedLoss.DInitial, fullLoss.DInitial)).Label("loss and gradients identical"))
                .And((Same(raggedBack.Gradients, fullBack.Gradients) && Same(raggedBack.Dx, fullBack.Dx)).Label("backward identical"));
        });

    [Property(MaxTest = 100)]
    public Property StackOfOneRnnLayerEqualsRnn() =>
        Prop.ForAll(Shaped.Arbitrary(), Gen.Elements(Activation.Tanh, Activation.Relu).ToArbitrary(), (shape, activation) =>
        {
            var c = new RnnCase(shape, activation);
            var stack = new StackParameters([Layer.Rnn(c.P)], c.P.Wya, c.P.By);
            ImmutableArray<ImmutableArray<Matrix<double>>> initial = [[c.A0]];
            var (forward, rnnForward) = (Stack.Forward(stack, c.Xs, initial: initial), Rnn.Forward(c.P, c.Xs, c.A0));
            var (back, rnnBack) = (Stack.Backward(forward, c.Da), Rnn.Backward(rnnForward, c.Da));
            var (loss, rnnLoss) = (Stack.LossAndGradients(stack, c.Xs, c.Labels, initial: initial), Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels));

            // The stack's leaves are layers[0].Wax, layers[0].Waa, layers[0].Ba, Wy, By: the RNN's, its read-out last.
            static double[] AsRnn(StackParameters g) => Tree.Flatten(g);
            static double[] Of(RnnParameters g) => [.. g.Wax.ToColumnMajorArray(), .. g.Waa.ToColumnMajorArray(), .. g.Ba, .. g.Wya.ToColumnMajorArray(), .. g.By];
            return (Same(forward.Top, rnnForward.States) && Same(forward.Predictions, rnnForward.Predictions)
                    && Same(forward.Final[0][0], rnnForward.States[^1])).Label("states, predictions and final state identical")
                .And((Same(back.Dx, rnnBack.Dx) && Same(back.DInitial[0][0], rnnBack.Da0) && Close(AsRnn(back.Gradients), Of(rnnBack.Gradients), Tolerance)).Label("backward identical (parameter gradients to 1e-12)"))
                .And((Same(loss.Loss, rnnLoss.Loss) && Close(AsRnn(loss.Gradients), Of(rnnLoss.Gradients), Tolerance)
                      && Same(loss.Dx, rnnLoss.Dx) && Same(loss.DInitial[0][0], rnnLoss.Da0)).Label("loss and gradients identical (parameter gradients to 1e-12)"));
        });

    [Property(MaxTest = 100)]
    public Property StackOfOneLstmLayerEqualsLstm() =>
        Prop.ForAll(LstmCase.Arbitrary(), c =>
        {
            var stack = new StackParameters([Layer.Lstm(c.P)], c.P.Wy, c.P.By);
            ImmutableArray<ImmutableArray<Matrix<double>>> initial = [[c.A0, c.C0]];
            var (forward, lstmForward) = (Stack.Forward(stack, c.Xs, initial: initial), Lstm.Forward(c.P, c.Xs, c.A0, c.C0));
            var (back, lstmBack) = (Stack.Backward(forward, c.Da), Lstm.Backward(lstmForward, c.Da));
            var (loss, lstmLoss) = (Stack.LossAndGradients(stack, c.Xs, c.Labels, initial: initial), Lstm.LossAndGradients(c.P, c.Xs, c.A0, c.C0, c.Labels));
            // The stack's leaves are the LSTM's with layers[0]. in front, in the same order, the read-out last.
            return (Same(forward.Top, lstmForward.States) && Same(forward.Predictions, lstmForward.Predictions)
                    && Same(forward.Final[0][0], lstmForward.States[^1]) && Same(forward.Final[0][1], lstmForward.Cells[^1])).Label("states, predictions and final state identical")
                .And((Same(back.Dx, lstmBack.Dx) && Same(back.DInitial[0], [lstmBack.Da0, lstmBack.Dc0])
                      && Close(Tree.Flatten(back.Gradients), Tree.Flatten(lstmBack.Gradients), Tolerance)).Label("backward identical (parameter gradients to 1e-12)"))
                .And((Same(loss.Loss, lstmLoss.Loss) && Close(Tree.Flatten(loss.Gradients), Tree.Flatten(lstmLoss.Gradients), Tolerance)
                      && Same(loss.Dx, lstmLoss.Dx) && Same(loss.DInitial[0], [lstmLoss.Da0, lstmLoss.Dc0])).Label("loss and gradients identical (parameter gradients to 1e-12)"));
        });

    [Property(MaxTest = 100)]
    public Property StackOfOneGruLayerEqualsGru() =>
        Prop.ForAll(GruCase.Arbitrary(), c =>
        {
            var stack = new StackParameters([Layer.Gru(c.P)], c.P.Wy, c.P.By);
            ImmutableArray<ImmutableArray<Matrix<double>>> initial = [[c.A0]];
            var (forward, gruForward) = (Stack.Forward(stack, c.Xs, initial: initial), Gru.Forward(c.P, c.Xs, c.A0));
            var (back, gruBack) = (Stack.Backward(forward, c.Da), Gru.Backward(gruForward, c.Da));
            var (loss, gruLoss) = (Stack.LossAndGradients(stack, c.Xs, c.Labels, initial: initial), Gru.LossAndGradients(c.P, c.Xs, c.A0, c.Labels));
            return (Same(forward.Top, gruForward.States) && Same(forward.Predictions, gruForward.Predictions)).Label("states and predictions identical")
                .And((Same(back.Dx, gruBack.Dx) && Same(back.DInitial[0][0], gruBack.Da0)
                      && Close(Tree.Flatten(back.Gradients), Tree.Flatten(gruBack.Gradients), Tolerance)).Label("backward identical (parameter gradients to 1e-12)"))
                .And((Same(loss.Loss, gruLoss.Loss) && Close(Tree.Flatten(loss.Gradients), Tree.Flatten(gruLoss.Gradients), Tolerance)
                      && Same(loss.Dx, gruLoss.Dx) && Same(loss.DInitial[0][0], gruLoss.Da0)).Label("loss and gradients identical (parameter gradients to 1e-12)"));
        });

    [Property(MaxTest = 100)]
    public Property BidirectionalHalvesAreForwardScansOfTheSequenceAndOfItsReverse() =>
        Prop.ForAll(StackCase.Arbitrary([LayerSpec.Bi(CellKind.Lstm, CellKind.Gru)], ragged: false), c =>
        {
            var bi = (BidirectionalLayer)c.P.Layers[0];
            var (nf, nr) = (bi.Forward.OutputSize, bi.Reverse.OutputSize);
            var (kf, kr) = (bi.Forward.StateRows.Length, bi.Reverse.StateRows.Length);
            var forward = Stack.Forward(c.P, c.Xs, initial: c.Initial);
            StackParameters Alone(Layer layer) => new([layer], Matrix<double>.Build.Dense(c.P.OutputSize, layer.OutputSize), c.P.By);
            var fwd = Stack.Forward(Alone(bi.Forward), c.Xs, initial: [c.Initial[0][..kf]]);
            var reversed = c.Xs.Reverse().ToImmutableArray();
            var rev = Stack.Forward(Alone(bi.Reverse), reversed, initial: [c.Initial[0][kf..]]);
            var T = c.Xs.Length;
            var forwardHalf = forward.Top.Select((h, t) => Same(h.SubMatrix(0, nf, 0, h.ColumnCount), fwd.Top[t])).All(x => x);
            var reverseHalf = forward.Top.Select((h, t) => Same(h.SubMatrix(nf, nr, 0, h.ColumnCount), rev.Top[T - 1 - t])).All(x => x);
            var finals = Same(forward.Final[0][..kf], fwd.Final[0]) && Same(forward.Final[0][kf..(kf + kr)], rev.Final[0]);
            return forwardHalf.Label("forward half = forward scan")
                .And(reverseHalf.Label("reverse half = forward scan of the reversed sequence, re-reversed"))
                .And(finals.Label("final states of both directions"));
        });

    [Property(MaxTest = 100)]
    public Property RaggedScanWithFullLengthsEqualsRecurrence() =>
        Prop.ForAll(RnnCase.Arbitrary(), c =>
        {
            var full = ImmutableArray.CreateRange(Enumerable.Repeat(c.Xs.Length, c.A0.ColumnCount));
            var (ragged, plain) = (Ragged.Forward(Rnn.Cell, c.P, c.Xs, c.A0, full), Recurrence.Forward(Rnn.Cell, c.P, c.Xs, c.A0));
            var zero = Matrix<double>.Build.Dense(c.A0.RowCount, c.A0.ColumnCount);
            var (rb, pb) = (Ragged.Backward(Rnn.Cell, Tree.ZerosLike(c.P), ragged.Caches, c.Da, zero),
                            Recurrence.Backward(Rnn.Cell, Tree.ZerosLike(c.P), plain.Caches, c.Da, zero));
            return (Same(ragged.Outputs, plain.Outputs) && Same(ragged.Final, plain.Final)).Label("forward identical")
                .And((Same(rb.Dx, pb.Dx) && Same(rb.DInit, pb.DInit) && Same(rb.Gradients, pb.Gradients)).Label("backward identical"));
        });

    [Property(MaxTest = 100)]
    public Property ReverseRaggedScanStartsAtEachColumnsLastStep() =>
        Prop.ForAll(RaggedCase.Arbitrary(), c =>
        {
            var r = c.Rnn;
            var scanned = Ragged.Forward(Rnn.Cell, r.P, r.Xs, r.A0, c.Lengths, reverse: true);
            return Enumerable.Range(0, c.Lengths.Length).All(j =>
            {
                var length = c.Lengths[j];
                var xs = r.Xs[..length].Reverse().Select(x => Column(x, j)).ToImmutableArray();
                var alone = Recurrence.Forward(Rnn.Cell, r.P, xs, Column(r.A0, j));
                return scanned.Outputs.Select((o, t) => t < length ? Close(Column(o, j), alone.Outputs[length - 1 - t], Tolerance) : IsZero(Column(o, j))).All(x => x)
                       && Close(Column(scanned.Final, j), alone.Final, Tolerance);
            }).Label("column j = forward scan of its own steps reversed, zero past its end");
        });

    [Property(MaxTest = 100)]
    public Property TopGradientsPastTheEndAreIgnored() =>
        Prop.ForAll(StackCase.Arbitrary(Mixed, ragged: true), c =>
        {
            var forward = Stack.Forward(c.P, c.Xs, c.Lengths, c.Initial);
            var masked = c.DTop.Select((d, t) => d.MapIndexed((_, j, v) => t < c.Lengths[j] ? v : 0.0)).ToImmutableArray();
            var (g, gm) = (Stack.Backward(forward, c.DTop), Stack.Backward(forward, masked));
            return (Same(g.Gradients, gm.Gradients) && Same(g.Dx, gm.Dx) && Same(g.DInitial, gm.DInitial)).Label("identical gradients");
        });

    [Property(MaxTest = 100)]
    public Property InputsPastTheEndAreNotRead() =>
        Prop.ForAll(StackCase.Arbitrary(Mixed, ragged: true), c =>
        {
            var other = c.Xs.Select((x, t) => x.MapIndexed((i, j, v) => t < c.Lengths[j] ? v : 100.0 * (i + 1))).ToImmutableArray();
            var (a, b) = (Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.Lengths, c.Initial), Stack.LossAndGradients(c.P, other, c.Labels, c.Lengths, c.Initial));
            return (Same(a.Loss, b.Loss) && Same(a.Gradients, b.Gradients) && Same(a.Dx, b.Dx)).Label("identical loss and gradients");
        });

    [Property(MaxTest = 100)]
    public Property LeavesRoundTripWithNamedPaths() =>
        Prop.ForAll(StackCase.Arbitrary(Mixed, ragged: false), c =>
        {
            var leaves = c.P.ToLeaves();
            string[] expected =
            [
                "layers[0].Wf", "layers[0].Bf", "layers[0].Wi", "layers[0].Bi", "layers[0].Wc", "layers[0].Bc", "layers[0].Wo", "layers[0].Bo",
                "layers[1].forward.Wih", "layers[1].forward.Whh", "layers[1].forward.Bih", "layers[1].forward.Bhh",
                "layers[1].reverse.Wax", "layers[1].reverse.Waa", "layers[1].reverse.Ba",
                "Wy", "By",
            ];
            var twice = c.P - 0.5 * c.P;
            return leaves.Select(l => l.Name).SequenceEqual(expected).Label("leaf names")
                .And((c.P.FromLeaves(leaves) == c.P).Label("FromLeaves(ToLeaves(p)) = p"))
                .And(Tree.Flatten(twice).SequenceEqual(Tree.Flatten(c.P).Select(v => v - 0.5 * v)).Label("arithmetic is entry-wise"));
        });

    [Property(MaxTest = 50)]
    public Property NoArgumentIsMutated() => StackLaws.NoArgumentIsMutated(Mixed);

    [Fact]
    public void InitializeChainsLayersAndIsDeterministic()
    {
        ImmutableArray<Layer> layers = [Layer.Rnn(3, 5, seed: 1), Layer.Bidirectional(Layer.Rnn(5, 4, seed: 2), Layer.Rnn(5, 2, seed: 3, Activation.Relu))];
        var p = StackParameters.Initialize(layers, outputSize: 7, seed: 4);
        Assert.Equal((3, 7, 6, 6), (p.InputSize, p.OutputSize, p.Wy.ColumnCount, p.Layers[1].OutputSize));
        Assert.Equal([4, 2], p.Layers[1].StateRows.ToArray());
        Assert.Equal(p, StackParameters.Initialize(layers, outputSize: 7, seed: 4));
        Assert.NotEqual(p, StackParameters.Initialize(layers, outputSize: 7, seed: 5));
        var bound = 1 / Math.Sqrt(6);
        Assert.All(Tree.Flatten(p)[^(7 * 6 + 7)..], v => Assert.InRange(v, -bound, bound));
    }

    [Fact]
    public void LayerKeepsTheRecurrenceOnly()
    {
        var p = RnnParameters.Initialize(3, 5, 4, seed: 1);
        var layer = (CellLayer<RnnParameters, Matrix<double>, RnnCache>)Layer.Rnn(p);
        Assert.Equal(["Wax", "Waa", "Ba"], layer.ToLeaves().Select(l => l.Name));
        Assert.Equal((0, 5, 0), (layer.Parameters.Wya.RowCount, layer.Parameters.Wya.ColumnCount, layer.Parameters.By.Count));
        Assert.Equal((p.Wax, p.Waa, p.Ba), (layer.Parameters.Wax, layer.Parameters.Waa, layer.Parameters.Ba));
        Assert.Equal((3, 5), (layer.InputSize, layer.OutputSize));
    }

    [Fact]
    public void GenericLayerOfAnyCellEqualsItsFusedFactory()
    {
        var p = RnnParameters.Initialize(3, 5, 4, seed: 1);
        var generic = Layer.Of(Rnn.Cell, p, inputSize: 3, outputSize: 5, stateRows: [5], unused: ["Wya", "By"]);
        var c = new RnnCase(new Shaped(new Dims(3, 5, 4, 2, 4), 9));
        var (a, b) = (new StackParameters([generic], p.Wya, p.By), new StackParameters([Layer.Rnn(p)], p.Wya, p.By));
        var (la, lb) = (Stack.LossAndGradients(a, c.Xs, c.Labels), Stack.LossAndGradients(b, c.Xs, c.Labels));
        Assert.Equal(la.Loss, lb.Loss);
        Assert.True(Compare.Close(la.Gradients, lb.Gradients, 1e-12), "parameter gradients of the fold and the driver to 1e-12");
        Assert.True(Compare.Same(la.Dx, lb.Dx), "dx of the fold and the driver, same bits");
        Assert.Equal(a.ToLeaves().Select(l => l.Name), b.ToLeaves().Select(l => l.Name));
    }
}
