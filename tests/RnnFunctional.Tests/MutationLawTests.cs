using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// Values that cannot change behind the library's back (<see cref="MutationLaws.ResultsIndependentOfMutation"/>): after
/// Forward, writing into every input and every matrix handed out changes neither the lazily read predictions nor a
/// later Backward; after Backward, writing into its results changes no later Backward.
/// </summary>
/// <remarks>
/// The sequence driver keeps copies of what a backward reads (inputs, initial states, parameters, its own states), and
/// a forward result hands out caches and predictions computed from those copies when first read.
/// </remarks>
public sealed class MutationLawTests
{
    private static readonly ImmutableArray<LayerSpec> Mixed = [LayerSpec.Uni(CellKind.Lstm), LayerSpec.Bi(CellKind.Gru, CellKind.RnnRelu)];

    private static IEnumerable<double> Entries(IEnumerable<Matrix<double>> ms) => ms.SelectMany(Draw.Snapshot);

    private static Writable Parameters(object p) => Writable.Reachable(p);

    // ---- the law itself ----

    private static string FailureOf(Property property)
    {
        var failure = Record.Exception(() => Check.One(Config.QuickThrowOnFailure.WithMaxTest(20), property));
        Assert.True(failure is not null, "expected the law to fail, but it held");
        return failure.Message;
    }

    private static Matrix<double>[] Inputs(Shaped shape) => [Draw.Matrix(shape.NewRandom(), shape.Dims.Na, shape.Dims.M)];

    [Fact]
    public void LawCatchesAResultThatKeepsItsInput()
    {
        var message = FailureOf(Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => Inputs(shape), xs => xs[0], (xs, _) => Writable.Of(xs), (_, kept) => Draw.Snapshot(kept))));
        Assert.Contains("after writing NaN into", message);
    }

    [Fact]
    public void LawCatchesALazyResultThatReadsAReturnedMatrix()
    {
        var message = FailureOf(Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => Inputs(shape), xs => { var copy = xs[0].Clone(); return (State: copy, Later: new Lazy<double>(() => copy.RowSums().Sum())); },
            (xs, r) => Writable.Of(xs).And(r.State), (_, r) => [r.Later.Value])));
        Assert.Contains("later results changed", message);
    }

    [Fact]
    public void LawCatchesInputsThatAreNotFresh()
    {
        var shared = Inputs(new Shaped(new Dims(1, 2, 2, 3, 1), 7));
        var message = FailureOf(MutationLaws.ResultsIndependentOfMutation(
            () => shared, xs => xs[0].Clone(), (xs, _) => Writable.Of(xs), (_, copy) => Draw.Snapshot(copy)));
        Assert.Contains("inputs() must build fresh values", message);
    }

    [Fact]
    public void LawHoldsForAResultThatCopiesWhatItKeeps()
    {
        var law = Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => Inputs(shape), xs => (Kept: xs[0].Clone(), Handed: xs[0].Clone()),
            (xs, r) => Writable.Of(xs).And(r.Handed), (_, r) => Draw.Snapshot(r.Kept)));
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(20), law);
    }

    [Fact]
    public void LawFailsWhenNothingIsExposed()
    {
        var message = FailureOf(Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => Inputs(shape), xs => xs[0].Clone(), (_, _) => Writable.None, (_, r) => Draw.Snapshot(r))));
        Assert.Contains("nothing exposed", message);
    }

    [Fact]
    public void ReachableFindsEveryMatrixAndVectorOfAResultOnce()
    {
        var c = new RnnCase(new Shaped(new Dims(2, 3, 4, 2, 3), 5));
        var forward = Rnn.Forward(c.P, c.Xs, c.A0);
        // Parameters (3 matrices, 2 vectors; the caches hold the same record), states, predictions, and the caches' own
        // x⟨t⟩, a⟨t−1⟩ and a⟨t⟩ (the library's today: x⟨t⟩ is xs[t], a⟨t−1⟩ is a0 or a state, a⟨t⟩ a state).
        var reachable = Writable.Reachable(forward, c.P, c.Xs, c.A0);
        var distinct = new HashSet<object>(ReferenceEqualityComparer.Instance);
        foreach (var m in new object[] { c.P.Wax, c.P.Waa, c.P.Wya, c.P.Ba, c.P.By, c.A0 }.Concat(c.Xs).Concat(forward.States).Concat(forward.Predictions)
                     .Concat(forward.Caches.SelectMany(k => new object[] { k.Xt, k.APrev, k.A, k.Parameters.Wax, k.Parameters.Waa, k.Parameters.Wya, k.Parameters.Ba, k.Parameters.By })))
            distinct.Add(m);
        Assert.Equal(distinct.Count, reachable.Count);
    }

    // ---- RNN ----

    private static Writable RnnInputs(RnnCase c) => Parameters(c.P).And(c.Xs).And(c.A0);

    [Property(MaxTest = 30)]
    public Property RnnPredictionsIgnoreWritesAfterForward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new RnnCase(shape), c => Rnn.Forward(c.P, c.Xs, c.A0),
            (c, f) => RnnInputs(c).And(f.States).And(Writable.Reachable(f.Caches)),
            (_, f) => Entries(f.Predictions)));

    [Property(MaxTest = 30)]
    public Property RnnBackwardIgnoresWritesAfterForward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new RnnCase(shape), c => Rnn.Forward(c.P, c.Xs, c.A0),
            (c, f) => RnnInputs(c).And(Writable.Reachable(f)),
            (c, f) => Gradient(Rnn.Backward(f, c.Da))));

    [Property(MaxTest = 30)]
    public Property RnnBackwardIgnoresWritesIntoAnEarlierBackward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new RnnCase(shape), c => { var f = Rnn.Forward(c.P, c.Xs, c.A0); return (Forward: f, Gradient: Rnn.Backward(f, c.Da)); },
            (_, r) => Writable.Reachable(r.Gradient),
            (c, r) => Gradient(Rnn.Backward(r.Forward, c.Da))));

    private static IEnumerable<double> Gradient(RnnGradient g) => [.. Entries(g.Dx), .. Draw.Snapshot(g.Da0), .. Tree.Flatten(g.Gradients)];

    // ---- LSTM ----

    private static Writable LstmInputs(LstmCase c) => Parameters(c.P).And(c.Xs).And(c.A0, c.C0);

    [Property(MaxTest = 30)]
    public Property LstmPredictionsIgnoreWritesAfterForward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new LstmCase(shape), c => Lstm.Forward(c.P, c.Xs, c.A0, c.C0),
            (c, f) => LstmInputs(c).And(f.States).And(f.Cells).And(Writable.Reachable(f.Caches)),
            (_, f) => Entries(f.Predictions)));

    [Property(MaxTest = 30)]
    public Property LstmBackwardIgnoresWritesAfterForward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new LstmCase(shape), c => Lstm.Forward(c.P, c.Xs, c.A0, c.C0),
            (c, f) => LstmInputs(c).And(Writable.Reachable(f)),
            (c, f) => Gradient(Lstm.Backward(f, c.Da))));

    [Property(MaxTest = 30)]
    public Property LstmBackwardIgnoresWritesIntoAnEarlierBackward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new LstmCase(shape), c => { var f = Lstm.Forward(c.P, c.Xs, c.A0, c.C0); return (Forward: f, Gradient: Lstm.Backward(f, c.Da)); },
            (_, r) => Writable.Reachable(r.Gradient),
            (c, r) => Gradient(Lstm.Backward(r.Forward, c.Da))));

    private static IEnumerable<double> Gradient(LstmGradient g) =>
        [.. Entries(g.Dx), .. Draw.Snapshot(g.Da0), .. Draw.Snapshot(g.Dc0), .. Tree.Flatten(g.Gradients)];

    // ---- GRU ----

    private static Writable GruInputs(GruCase c) => Parameters(c.P).And(c.Xs).And(c.A0);

    [Property(MaxTest = 30)]
    public Property GruPredictionsIgnoreWritesAfterForward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new GruCase(shape), c => Gru.Forward(c.P, c.Xs, c.A0),
            (c, f) => GruInputs(c).And(f.States).And(Writable.Reachable(f.Caches)),
            (_, f) => Entries(f.Predictions)));

    [Property(MaxTest = 30)]
    public Property GruBackwardIgnoresWritesAfterForward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new GruCase(shape), c => Gru.Forward(c.P, c.Xs, c.A0),
            (c, f) => GruInputs(c).And(Writable.Reachable(f)),
            (c, f) => Gradient(Gru.Backward(f, c.Da))));

    [Property(MaxTest = 30)]
    public Property GruBackwardIgnoresWritesIntoAnEarlierBackward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new GruCase(shape), c => { var f = Gru.Forward(c.P, c.Xs, c.A0); return (Forward: f, Gradient: Gru.Backward(f, c.Da)); },
            (_, r) => Writable.Reachable(r.Gradient),
            (c, r) => Gradient(Gru.Backward(r.Forward, c.Da))));

    private static IEnumerable<double> Gradient(GruGradient g) => [.. Entries(g.Dx), .. Draw.Snapshot(g.Da0), .. Tree.Flatten(g.Gradients)];

    // ---- stacks: one-directional and bidirectional layers, ragged ----

    private static Writable StackInputs(StackCase c) => Parameters(c.P).And(c.Xs).And(c.Initial.SelectMany(parts => parts));

    [Property(MaxTest = 30)]
    public Property StackPredictionsIgnoreWritesAfterForward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new StackCase(shape, Mixed, ragged: true), c => Stack.Forward(c.P, c.Xs, c.Lengths, c.Initial),
            (c, f) => StackInputs(c).And(f.States.SelectMany(layer => layer)).And(f.Final.SelectMany(parts => parts)),
            (_, f) => Entries(f.Predictions)));

    [Property(MaxTest = 30)]
    public Property StackBackwardIgnoresWritesAfterForward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new StackCase(shape, Mixed, ragged: true), c => Stack.Forward(c.P, c.Xs, c.Lengths, c.Initial),
            (c, f) => StackInputs(c).And(Writable.Reachable(f)),
            (c, f) => Gradient(Stack.Backward(f, c.DTop, c.DFinal))));

    [Property(MaxTest = 30)]
    public Property StackBackwardIgnoresWritesIntoAnEarlierBackward() =>
        Prop.ForAll(Shaped.Arbitrary(), shape => MutationLaws.ResultsIndependentOfMutation(
            () => new StackCase(shape, Mixed, ragged: true),
            c => { var f = Stack.Forward(c.P, c.Xs, c.Lengths, c.Initial); return (Forward: f, Gradient: Stack.Backward(f, c.DTop, c.DFinal)); },
            (_, r) => Writable.Reachable(r.Gradient),
            (c, r) => Gradient(Stack.Backward(r.Forward, c.DTop, c.DFinal))));

    private static IEnumerable<double> Gradient(StackGradient g) =>
        [.. Entries(g.Dx), .. Entries(g.DInitial.SelectMany(parts => parts)), .. Tree.Flatten(g.Gradients)];
}
