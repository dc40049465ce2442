using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Testing;

/// <summary>
/// The laws of stacks of layers (<see cref="Stack"/>: one-directional and bidirectional layers of any cell, ragged
/// batches, a softmax read-out) as reusable FsCheck properties over <see cref="StackCase"/>s of a given architecture.
/// Each law comes twice: over generated cases (<c>Law(architecture, …, max)</c>, for a <c>[Property]</c> test) and
/// over one case (<c>Law(case)</c>).
/// </summary>
/// <remarks>
/// Gradients are judged by <see cref="GradCheckOptions.Precise"/> at <see cref="GradientProperty.Tolerance"/>. A ReLU layer
/// has kinks where a finite difference is not a derivative: use smooth cells (RnnTanh, Lstm, Gru) in architectures
/// given to the gradient laws; the exact laws hold for every cell.
/// </remarks>
public static class StackLaws
{
    /// <summary>The τ of <see cref="Compare.Close(Matrix{double},Matrix{double},double)"/> between a ragged batch and its columns run alone.</summary>
    public const double Tolerance = 1e-12;

    // ---- ragged = alone ----

    /// <summary>
    /// A ragged batch through a stack equals each column run alone over its own len_j steps: every layer's states,
    /// the predictions (zero past the column's end), every layer's final state, dx (zero past the end) and the
    /// initial states' gradients of the loss; the loss is the sum of the columns' losses and its parameter gradients
    /// the sum of theirs. A bidirectional layer's reverse direction starts at each column's own last step. Cases
    /// have m ≥ 2: a batch of one column of length T is that column alone, the same computation on both sides.
    /// </summary>
    /// <param name="architecture">One spec per layer, bottom first.</param>
    /// <param name="max">Largest size of generated cases, at least 2.</param>
    public static Property RaggedBatchEqualsColumnsRunAlone(ImmutableArray<LayerSpec> architecture, int max = 8) =>
        Prop.ForAll(StackCase.Arbitrary(architecture, ragged: true, Dims.Smallest with { M = 2 }, max), RaggedBatchEqualsColumnsRunAlone);

    /// <summary><see cref="RaggedBatchEqualsColumnsRunAlone(ImmutableArray{LayerSpec},int)"/> for one case.</summary>
    /// <param name="c">A case; its lengths are used as they are (all T when it is not ragged).</param>
    public static Property RaggedBatchEqualsColumnsRunAlone(StackCase c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var forward = Stack.Forward(c.P, c.Xs, c.Lengths, c.Initial);
        var batch = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.Lengths, c.Initial);
        var m = c.Lengths.Length;
        var alone = Enumerable.Range(0, m).Select(j =>
        {
            var length = c.Lengths[j];
            var xs = c.Xs[..length].Select(x => CellLaws.Column(x, j)).ToImmutableArray();
            var initial = c.Initial.Select(parts => parts.Select(s => CellLaws.Column(s, j)).ToImmutableArray()).ToImmutableArray();
            var labels = c.Labels[..length].Select(row => ImmutableArray.Create(row[j])).ToImmutableArray();
            return (Forward: Stack.Forward(c.P, xs, initial: initial), Loss: Stack.LossAndGradients(c.P, xs, labels, initial: initial));
        }).ToArray();

        bool Close(Matrix<double> a, Matrix<double> b) => Compare.Close(a, b, Tolerance);
        bool ColumnAgrees(int j)
        {
            var (a, length) = (alone[j], c.Lengths[j]);
            bool Steps(ImmutableArray<Matrix<double>> batchSteps, ImmutableArray<Matrix<double>> own) =>
                batchSteps.Select((h, t) => t < length ? Close(CellLaws.Column(h, j), own[t]) : CellLaws.IsZero(CellLaws.Column(h, j))).All(x => x);
            bool Parts(ImmutableArray<ImmutableArray<Matrix<double>>> batchParts, ImmutableArray<ImmutableArray<Matrix<double>>> own) =>
                batchParts.Select((parts, l) => parts.Zip(own[l], (s, so) => Close(CellLaws.Column(s, j), so)).All(x => x)).All(x => x);
            return forward.States.Select((layer, l) => Steps(layer, a.Forward.States[l])).All(x => x)
                && Steps(forward.Predictions, a.Forward.Predictions)
                && Parts(forward.Final, a.Forward.Final)
                && Steps(batch.Dx, a.Loss.Dx)
                && Parts(batch.DInitial, a.Loss.DInitial);
        }

        var lossAgrees = Compare.Close(batch.Loss, alone.Sum(a => a.Loss.Loss), Tolerance);
        var gradientsAgree = Compare.Close(batch.Gradients, alone.Select(a => a.Loss.Gradients).Aggregate(Tree.Add), Tolerance);
        return Enumerable.Range(0, m).All(ColumnAgrees).Label("states, predictions, final states, dx and initial-state gradients of each column")
            .And(lossAgrees.Label("loss is the sum of the columns' losses"))
            .And(gradientsAgree.Label("gradients are the sum of the columns' gradients"));
    }

    // ---- gradients ----

    /// <summary>
    /// <see cref="Stack.LossAndGradients"/> is the exact gradient of <see cref="Stack.Loss"/> with respect to every
    /// leaf of the stack (each layer's as <c>layers[l].…</c>, the read-out's), every x⟨t⟩ and every matrix of every
    /// layer's initial state: each entry against finite differences, labelled with the failing leaves and entries.
    /// </summary>
    /// <param name="architecture">One spec per layer, bottom first; smooth cells only.</param>
    /// <param name="ragged">Whether each column draws its own length.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property LossGradientsMatchFiniteDifferences(ImmutableArray<LayerSpec> architecture, bool ragged, int max = 8) =>
        Prop.ForAll(StackCase.Arbitrary(architecture, ragged, max), LossGradientsMatchFiniteDifferences);

    /// <summary><see cref="LossGradientsMatchFiniteDifferences(ImmutableArray{LayerSpec},bool,int)"/> for one case.</summary>
    /// <param name="c">A case.</param>
    public static Property LossGradientsMatchFiniteDifferences(StackCase c)
    {
        ArgumentNullException.ThrowIfNull(c);
        double F(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<Matrix<double>>> initial) =>
            Stack.Loss(p, xs, c.Labels, c.LengthsArgument, initial);
        var g = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial);
        return GradientProperty.Holds(GradCheck.Tree(p => F(p, c.Xs, c.Initial), c.P, g.Gradients, GradCheckOptions.Precise))
            .And(GradientProperty.Holds(InputCheck(c, (xs, initial) => F(c.P, xs, initial), g.Dx, g.DInitial)));
    }

    /// <summary>
    /// <see cref="Stack.Backward"/> is the exact gradient of Σ_t ⟨dTop⟨t⟩, top⟨t⟩⟩ + Σ_l ⟨dFinal_l, final_l⟩ (the top
    /// layer's outputs and every layer's final state weighed by the case's outside gradients) with respect to every
    /// leaf, every x⟨t⟩ and every initial state; the read-out's gradients are zero.
    /// </summary>
    /// <param name="architecture">One spec per layer, bottom first; smooth cells only.</param>
    /// <param name="ragged">Whether each column draws its own length.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property BackwardMatchesFiniteDifferences(ImmutableArray<LayerSpec> architecture, bool ragged, int max = 8) =>
        Prop.ForAll(StackCase.Arbitrary(architecture, ragged, max), BackwardMatchesFiniteDifferences);

    /// <summary><see cref="BackwardMatchesFiniteDifferences(ImmutableArray{LayerSpec},bool,int)"/> for one case.</summary>
    /// <param name="c">A case.</param>
    public static Property BackwardMatchesFiniteDifferences(StackCase c)
    {
        ArgumentNullException.ThrowIfNull(c);
        double F(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<Matrix<double>>> initial)
        {
            var forward = Stack.Forward(p, xs, c.LengthsArgument, initial);
            return CellLaws.Inner([.. c.DTop, .. c.DFinal.SelectMany(parts => parts)], [.. forward.Top, .. forward.Final.SelectMany(parts => parts)]);
        }
        var g = Stack.Backward(Stack.Forward(c.P, c.Xs, c.LengthsArgument, c.Initial), c.DTop, c.DFinal);
        return GradientProperty.Holds(GradCheck.Tree(p => F(p, c.Xs, c.Initial), c.P, g.Gradients, GradCheckOptions.Precise))
            .And(GradientProperty.Holds(InputCheck(c, (xs, initial) => F(c.P, xs, initial), g.Dx, g.DInitial)));
    }

    /// <summary>
    /// The cheap variant of <see cref="LossGradientsMatchFiniteDifferences(ImmutableArray{LayerSpec},bool,int)"/> for
    /// large stacks: the loss's parameter gradient along one random direction drawn from the case's seed.
    /// </summary>
    /// <param name="architecture">One spec per layer, bottom first; smooth cells only.</param>
    /// <param name="ragged">Whether each column draws its own length.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property DirectionalDerivativeMatches(ImmutableArray<LayerSpec> architecture, bool ragged, int max = 8) =>
        Prop.ForAll(StackCase.Arbitrary(architecture, ragged, max), DirectionalDerivativeMatches);

    /// <summary><see cref="DirectionalDerivativeMatches(ImmutableArray{LayerSpec},bool,int)"/> for one case.</summary>
    /// <param name="c">A case.</param>
    public static Property DirectionalDerivativeMatches(StackCase c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var g = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial);
        return GradientProperty.Directional(p => Stack.Loss(p, c.Xs, c.Labels, c.LengthsArgument, c.Initial), c.P, g.Gradients, c.Shape.Seed);
    }

    // ---- purity ----

    /// <summary>
    /// No argument is mutated: the stack, the inputs, the initial states and the outside gradients are unchanged by
    /// <see cref="Stack.Forward"/>, <see cref="Stack.Backward"/> and <see cref="Stack.LossAndGradients"/>, and the
    /// forward's results are unchanged by the backward; the same call twice gives identical results.
    /// </summary>
    /// <param name="architecture">One spec per layer, bottom first.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property NoArgumentIsMutated(ImmutableArray<LayerSpec> architecture, int max = 8) =>
        Prop.ForAll(StackCase.Arbitrary(architecture, ragged: true, max), NoArgumentIsMutated);

    /// <summary><see cref="NoArgumentIsMutated(ImmutableArray{LayerSpec},int)"/> for one case.</summary>
    /// <param name="c">A case.</param>
    public static Property NoArgumentIsMutated(StackCase c)
    {
        ArgumentNullException.ThrowIfNull(c);
        double[] Arguments() =>
        [
            .. Tree.Flatten(c.P), .. c.Xs.SelectMany(Draw.Snapshot), .. c.Initial.SelectMany(parts => parts.SelectMany(Draw.Snapshot)),
            .. c.DTop.SelectMany(Draw.Snapshot),
        ];
        static double[] Results(StackForward f) =>
            [.. f.States.SelectMany(layer => layer.SelectMany(Draw.Snapshot)), .. f.Predictions.SelectMany(Draw.Snapshot),
             .. f.Final.SelectMany(parts => parts.SelectMany(Draw.Snapshot))];
        static double[] Gradients(StackGradient g) =>
            [.. g.Dx.SelectMany(Draw.Snapshot), .. g.DInitial.SelectMany(parts => parts.SelectMany(Draw.Snapshot)), .. Tree.Flatten(g.Gradients)];

        var before = Arguments();
        var forward = Stack.Forward(c.P, c.Xs, c.Lengths, c.Initial);
        var results = Results(forward);
        var back = Stack.Backward(forward, c.DTop);
        var backAgain = Stack.Backward(forward, c.DTop);
        var loss = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.Lengths, c.Initial);
        var lossAgain = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.Lengths, c.Initial);
        return Arguments().SequenceEqual(before).Label("parameters, inputs, initial states and dTop unchanged")
            .And(Results(forward).SequenceEqual(results).Label("the forward's results unchanged by the backward"))
            .And(Results(Stack.Forward(c.P, c.Xs, c.Lengths, c.Initial)).SequenceEqual(results).Label("Forward twice: identical"))
            .And(Gradients(back).SequenceEqual(Gradients(backAgain)).Label("Backward twice on one forward: identical"))
            .And((Compare.Same(loss.Loss, lossAgain.Loss) && Compare.Same(loss.Gradients, lossAgain.Gradients))
                .Label("LossAndGradients twice: identical"));
    }

    /// <summary>
    /// The gradients of a scalar function of a stack's inputs and initial states against finite differences, in one
    /// check over the leaves xs[0..T−1] (n_x×m each), then initial[l][k] (StateRows[k]×m) for every layer l and part k.
    /// </summary>
    /// <param name="c">The case whose inputs and initial states are the point of the check.</param>
    /// <param name="f">The function of the inputs and the initial states (a loss, or an inner product with outside gradients).</param>
    /// <param name="dx">The claimed gradient of every x⟨t⟩, n_x×m each.</param>
    /// <param name="dInitial">The claimed gradient of every initial state part, shaped as <see cref="StackCase.Initial"/>.</param>
    public static GradCheckReport InputCheck(StackCase c,
        Func<ImmutableArray<Matrix<double>>, ImmutableArray<ImmutableArray<Matrix<double>>>, double> f,
        ImmutableArray<Matrix<double>> dx, ImmutableArray<ImmutableArray<Matrix<double>>> dInitial)
    {
        var steps = c.Xs.Length;
        ImmutableArray<Leaf> Leaves(ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<Matrix<double>>> initial) =>
            [.. SequenceLeaves.Of("xs", xs), .. initial.SelectMany((parts, l) => SequenceLeaves.Of($"initial[{l}]", parts))];
        ImmutableArray<ImmutableArray<Matrix<double>>> ReadInitial(ImmutableArray<Leaf> leaves) =>
            Scan.Fold(steps, c.Initial, (offset, parts) => (offset + parts.Length, SequenceLeaves.Read(leaves, offset, parts.Length))).Outputs;
        return GradCheck.Leaves(leaves => f(SequenceLeaves.Read(leaves, 0, steps), ReadInitial(leaves)),
                                       Leaves(c.Xs, c.Initial), Leaves(dx, dInitial), GradCheckOptions.Precise);
    }
}
