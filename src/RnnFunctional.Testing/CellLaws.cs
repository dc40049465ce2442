using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Testing;

/// <summary>
/// The laws every recurrent cell obeys, as reusable FsCheck properties over any
/// <see cref="Cell{TParams,TCarry,TCache}"/>: scanned with <see cref="Recurrence"/>, a cell must compose over
/// concatenated sequences, treat the columns of a batch independently, agree with itself for one step, leave its
/// arguments alone, and have the gradients its backward claims. Each law comes twice: over generated cases
/// (<c>Law(subject, max)</c>, for a <c>[Property]</c> test) and over one case (<c>Law(subject, case)</c>, to combine
/// with a generator of one's own).
/// </summary>
/// <remarks>
/// Results computed by the same operations in the same order are compared bit for bit; results that only agree in
/// exact arithmetic (a batch against its columns, a sum of gradients taken in another order) within
/// <see cref="CellUnderTest{TParams,TCarry,TCache}.Tolerance"/>.
/// </remarks>
public static class CellLaws
{
    // ---- fold/append ----

    /// <summary>
    /// The scan is a fold: scanning xs ++ ys from a carry equals scanning xs, then ys from xs's final carry (outputs
    /// and final carry bit for bit); and back-propagation over xs ++ ys equals back-propagation over ys, continued
    /// over xs from ys's gradient with respect to its initial carry (dx and the initial carry's gradient bit for bit,
    /// the parameter gradients as the sum of both halves'). The cut is drawn in [0, T].
    /// </summary>
    /// <param name="subject">The cell.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property ScanOverConcatenationContinuesFromFinalCarry<TParams, TCarry, TCache>(
        CellUnderTest<TParams, TCarry, TCache> subject, int max = 8)
        where TParams : IParameterTree<TParams> =>
        ForAll(subject, max, ScanOverConcatenationContinuesFromFinalCarry);

    /// <summary><see cref="ScanOverConcatenationContinuesFromFinalCarry{TParams,TCarry,TCache}(CellUnderTest{TParams,TCarry,TCache},int)"/> for one case.</summary>
    /// <param name="subject">The cell.</param>
    /// <param name="c">A case drawn by <paramref name="subject"/>.</param>
    public static Property ScanOverConcatenationContinuesFromFinalCarry<TParams, TCarry, TCache>(
        CellUnderTest<TParams, TCarry, TCache> subject, CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        Require(subject, c);
        var (cell, k) = (subject.Cell, c.SplitAt);
        var zero = Tree.ZerosLike(c.P);
        var whole = Recurrence.Forward(cell, c.P, c.Xs, c.Init);
        var first = Recurrence.Forward(cell, c.P, c.Xs[..k], c.Init);
        var second = Recurrence.Forward(cell, c.P, c.Xs[k..], first.Final);

        var wholeBack = Recurrence.Backward(cell, zero, whole.Caches, c.DOutputs, c.DFinal);
        var secondBack = Recurrence.Backward(cell, zero, second.Caches, c.DOutputs[k..], c.DFinal);
        var firstBack = Recurrence.Backward(cell, zero, first.Caches, c.DOutputs[..k], secondBack.DInit);

        return Same(whole.Outputs, first.Outputs.AddRange(second.Outputs)).Label($"outputs of xs ++ ys = outputs of xs, then of ys (cut at {k})")
            .And(Same(cell.Split(whole.Final), cell.Split(second.Final)).Label("final carry of xs ++ ys = final carry of ys from xs's"))
            .And(Same(wholeBack.Dx, firstBack.Dx.AddRange(secondBack.Dx)).Label("dx of xs ++ ys = dx of xs, then of ys"))
            .And(Same(cell.Split(wholeBack.DInit), cell.Split(firstBack.DInit)).Label("initial carry's gradient continues from ys's"))
            .And(Close(wholeBack.Gradients, Tree.Add(firstBack.Gradients, secondBack.Gradients), subject.Tolerance)
                .Label("parameter gradients = those of xs + those of ys"));
    }

    // ---- batch = columns ----

    /// <summary>
    /// The columns of a batch are independent examples: running the batch equals running each column alone (its
    /// inputs, and each matrix of the carry cut to that column through the cell's Split and Join), for the outputs,
    /// the final carry, dx and the initial carry's gradient; and the batch's parameter gradients are the sum of the
    /// columns'.
    /// </summary>
    /// <param name="subject">The cell.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property BatchEqualsColumnsRunAlone<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, int max = 8)
        where TParams : IParameterTree<TParams> =>
        ForAll(subject, max, BatchEqualsColumnsRunAlone);

    /// <summary><see cref="BatchEqualsColumnsRunAlone{TParams,TCarry,TCache}(CellUnderTest{TParams,TCarry,TCache},int)"/> for one case.</summary>
    /// <param name="subject">The cell.</param>
    /// <param name="c">A case drawn by <paramref name="subject"/>.</param>
    public static Property BatchEqualsColumnsRunAlone<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject,
        CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        Require(subject, c);
        var (cell, tolerance) = (subject.Cell, subject.Tolerance);
        var zero = Tree.ZerosLike(c.P);
        var batch = Recurrence.Forward(cell, c.P, c.Xs, c.Init);
        var batchBack = Recurrence.Backward(cell, zero, batch.Caches, c.DOutputs, c.DFinal);
        var m = c.Xs[0].ColumnCount;

        var alone = Enumerable.Range(0, m).Select(j =>
        {
            TCarry CarryColumn(TCarry carry) => cell.Join([.. cell.Split(carry).Select(part => Column(part, j))]);
            var forward = Recurrence.Forward(cell, c.P, [.. c.Xs.Select(x => Column(x, j))], CarryColumn(c.Init));
            var back = Recurrence.Backward(cell, zero, forward.Caches, [.. c.DOutputs.Select(d => Column(d, j))], CarryColumn(c.DFinal));
            return (Forward: forward, Back: back);
        }).ToArray();

        bool Columns(Func<int, IEnumerable<(Matrix<double> Batch, Matrix<double> Alone)>> pairs) =>
            Enumerable.Range(0, m).All(j => pairs(j).All(p => Close(Column(p.Batch, j), p.Alone, tolerance)));

        var outputs = Columns(j => batch.Outputs.Zip(alone[j].Forward.Outputs));
        var final = Columns(j => cell.Split(batch.Final).Zip(cell.Split(alone[j].Forward.Final)));
        var dx = Columns(j => batchBack.Dx.Zip(alone[j].Back.Dx));
        var dInit = Columns(j => cell.Split(batchBack.DInit).Zip(cell.Split(alone[j].Back.DInit)));
        var gradients = Close(batchBack.Gradients, alone.Select(a => a.Back.Gradients).Aggregate(Tree.Add), tolerance);
        return outputs.Label("outputs of each column")
            .And(final.Label("final carry of each column"))
            .And(dx.Label("dx of each column"))
            .And(dInit.Label("initial carry's gradient of each column"))
            .And(gradients.Label("parameter gradients = the sum of the columns'"));
    }

    // ---- T = 1 ----

    /// <summary>
    /// A scan of one step is the cell: <see cref="Recurrence.Forward{TParams,TCarry,TCache}"/> over [x⟨1⟩] gives the
    /// cell's Step's output and carry, and <see cref="Recurrence.Backward{TParams,TCarry,TCache}"/> over its cache gives
    /// the cell's own Backward's dx, carry gradient and parameter gradients, bit for bit.
    /// </summary>
    /// <param name="subject">The cell.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property OneStepScanEqualsCell<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, int max = 8)
        where TParams : IParameterTree<TParams> =>
        ForAll(subject, max, OneStepScanEqualsCell);

    /// <summary><see cref="OneStepScanEqualsCell{TParams,TCarry,TCache}(CellUnderTest{TParams,TCarry,TCache},int)"/> for one case.</summary>
    /// <param name="subject">The cell.</param>
    /// <param name="c">A case drawn by <paramref name="subject"/>.</param>
    public static Property OneStepScanEqualsCell<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject,
        CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        Require(subject, c);
        var cell = subject.Cell;
        var step = cell.Step(c.P, c.Init, c.Xs[0]);
        var back = cell.Backward(step.Cache, c.DFinal, c.DOutputs[0]);
        var scanned = Recurrence.Forward(cell, c.P, c.Xs[..1], c.Init);
        var scannedBack = Recurrence.Backward(cell, Tree.ZerosLike(c.P), scanned.Caches, c.DOutputs[..1], c.DFinal);
        return (Same(step.Output, scanned.Outputs[0]) && Same(cell.Split(step.Carry), cell.Split(scanned.Final))).Label("output and carry of the step")
            .And((Same(back.Dx, scannedBack.Dx[0]) && Same(cell.Split(back.DCarry), cell.Split(scannedBack.DInit)))
                .Label("dx and carry gradient of the cell's backward"))
            .And(Same(back.Gradients, scannedBack.Gradients).Label("parameter gradients of the cell's backward"));
    }

    // ---- purity ----

    /// <summary>
    /// No argument is mutated and every call can be repeated: the parameters, inputs, initial carry and outside
    /// gradients are unchanged after the cell's Step and Backward and the scans' forward and backward; the forward's
    /// outputs and final carry are unchanged by the backward; and the same call twice gives identical results (a
    /// cache can be read more than once).
    /// </summary>
    /// <param name="subject">The cell.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property NoArgumentIsMutated<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, int max = 8)
        where TParams : IParameterTree<TParams> =>
        ForAll(subject, max, NoArgumentIsMutated);

    /// <summary><see cref="NoArgumentIsMutated{TParams,TCarry,TCache}(CellUnderTest{TParams,TCarry,TCache},int)"/> for one case.</summary>
    /// <param name="subject">The cell.</param>
    /// <param name="c">A case drawn by <paramref name="subject"/>.</param>
    public static Property NoArgumentIsMutated<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject,
        CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        Require(subject, c);
        var cell = subject.Cell;
        double[] Arguments() =>
        [
            .. Tree.Flatten(c.P), .. c.Xs.SelectMany(Draw.Snapshot), .. cell.Split(c.Init).SelectMany(Draw.Snapshot),
            .. c.DOutputs.SelectMany(Draw.Snapshot), .. cell.Split(c.DFinal).SelectMany(Draw.Snapshot),
        ];
        double[] Results(Scanned<TCarry, TCache> s) => [.. s.Outputs.SelectMany(Draw.Snapshot), .. cell.Split(s.Final).SelectMany(Draw.Snapshot)];
        double[] Gradients(ScannedGradient<TParams, TCarry> g) =>
            [.. g.Dx.SelectMany(Draw.Snapshot), .. cell.Split(g.DInit).SelectMany(Draw.Snapshot), .. Tree.Flatten(g.Gradients)];

        var before = Arguments();
        var step = cell.Step(c.P, c.Init, c.Xs[0]);
        var stepAgain = cell.Step(c.P, c.Init, c.Xs[0]);
        var back = cell.Backward(step.Cache, c.DFinal, c.DOutputs[0]);
        var backAgain = cell.Backward(step.Cache, c.DFinal, c.DOutputs[0]);

        var forward = Recurrence.Forward(cell, c.P, c.Xs, c.Init);
        var results = Results(forward);
        var zero = Tree.ZerosLike(c.P);
        var gradients = Recurrence.Backward(cell, zero, forward.Caches, c.DOutputs, c.DFinal);
        var gradientsAgain = Recurrence.Backward(cell, zero, forward.Caches, c.DOutputs, c.DFinal);
        var forwardAgain = Recurrence.Forward(cell, c.P, c.Xs, c.Init);

        return Arguments().SequenceEqual(before).Label("parameters, inputs, initial carry and outside gradients unchanged")
            .And(Results(forward).SequenceEqual(results).Label("the forward's outputs and final carry unchanged by the backward"))
            .And(Tree.Flatten(zero).All(v => v == 0).Label("the zero seed of the backward unchanged"))
            .And((Same(step.Output, stepAgain.Output) && Same(cell.Split(step.Carry), cell.Split(stepAgain.Carry))).Label("Step twice: identical"))
            .And((Same(back.Dx, backAgain.Dx) && Same(cell.Split(back.DCarry), cell.Split(backAgain.DCarry)) && Same(back.Gradients, backAgain.Gradients))
                .Label("Backward twice on one cache: identical"))
            .And(Results(forwardAgain).SequenceEqual(results).Label("Recurrence.Forward twice: identical"))
            .And(Gradients(gradients).SequenceEqual(Gradients(gradientsAgain)).Label("Recurrence.Backward twice on the same caches: identical"));
    }

    // ---- gradients ----

    /// <summary>
    /// Back-propagation through time of the cell is the exact gradient of
    /// S(θ, xs, init) = Σ_t ⟨dOutputs⟨t⟩, output⟨t⟩⟩ + ⟨dFinal, final carry⟩ with respect to every parameter, every
    /// x⟨t⟩ and every matrix of the initial carry: each entry against finite differences
    /// (<see cref="CellUnderTest{TParams,TCarry,TCache}.Numeric"/>) to a relative error below
    /// <see cref="GradientProperty.Tolerance"/>, labelled with the failing leaves and entries.
    /// </summary>
    /// <param name="subject">The cell.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property GradientsMatchFiniteDifferences<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, int max = 8)
        where TParams : IParameterTree<TParams> =>
        ForAll(subject, max, GradientsMatchFiniteDifferences);

    /// <summary><see cref="GradientsMatchFiniteDifferences{TParams,TCarry,TCache}(CellUnderTest{TParams,TCarry,TCache},int)"/> for one case.</summary>
    /// <param name="subject">The cell.</param>
    /// <param name="c">A case drawn by <paramref name="subject"/>.</param>
    public static Property GradientsMatchFiniteDifferences<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject,
        CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        Require(subject, c);
        var cell = subject.Cell;
        var (steps, parts) = (c.Xs.Length, cell.Split(c.Init).Length);
        var g = Gradient(subject, c);
        var inputs = SequenceLeaves.Of("xs", c.Xs).AddRange(SequenceLeaves.Of("init", cell.Split(c.Init)));
        var dInputs = SequenceLeaves.Of("xs", g.Dx).AddRange(SequenceLeaves.Of("init", cell.Split(g.DInit)));
        return GradientProperty.Tree(p => Objective(subject, c, p, c.Xs, c.Init), c.P, g.Gradients, subject.Numeric)
            .And(GradientProperty.Leaves(
                leaves => Objective(subject, c, c.P, SequenceLeaves.Read(leaves, 0, steps), cell.Join(SequenceLeaves.Read(leaves, steps, parts))),
                inputs, dInputs, subject.Numeric));
    }

    /// <summary>
    /// The cheap variant of <see cref="GradientsMatchFiniteDifferences{TParams,TCarry,TCache}(CellUnderTest{TParams,TCarry,TCache},int)"/>
    /// for large models: the parameter gradient of S along one random direction (<see cref="GradientProperty.Directional{T}"/>),
    /// a few evaluations of S however many parameters the cell has.
    /// </summary>
    /// <param name="subject">The cell.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property DirectionalDerivativeMatches<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, int max = 8)
        where TParams : IParameterTree<TParams> =>
        ForAll(subject, max, DirectionalDerivativeMatches);

    /// <summary><see cref="DirectionalDerivativeMatches{TParams,TCarry,TCache}(CellUnderTest{TParams,TCarry,TCache},int)"/> for one case.</summary>
    /// <param name="subject">The cell.</param>
    /// <param name="c">A case drawn by <paramref name="subject"/>.</param>
    public static Property DirectionalDerivativeMatches<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject,
        CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        Require(subject, c);
        return GradientProperty.Directional(p => Objective(subject, c, p, c.Xs, c.Init), c.P, Gradient(subject, c).Gradients, c.DirectionSeed, subject.Numeric);
    }

    /// <summary>
    /// The scalar of the gradient laws, S = Σ_t ⟨dOutputs⟨t⟩, output⟨t⟩⟩ + ⟨dFinal, final carry⟩ for a scan of the
    /// cell from <paramref name="init"/> over <paramref name="xs"/>, summed with compensation so that its round-off
    /// stays near one ulp.
    /// </summary>
    /// <param name="subject">The cell.</param>
    /// <param name="c">The case whose outside gradients weigh the outputs and the final carry.</param>
    /// <param name="p">Parameters.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, each n_x×m.</param>
    /// <param name="init">The initial carry.</param>
    public static double Objective<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, CellCase<TParams, TCarry> c,
        TParams p, ImmutableArray<Matrix<double>> xs, TCarry init)
        where TParams : IParameterTree<TParams>
    {
        Require(subject, c);
        var scanned = Recurrence.Forward(subject.Cell, p, xs, init);
        return Inner(c.DOutputs.AddRange(subject.Cell.Split(c.DFinal)), scanned.Outputs.AddRange(subject.Cell.Split(scanned.Final)));
    }

    /// <summary>The gradient of <see cref="Objective{TParams,TCarry,TCache}"/> at the case's point, by back-propagation through time.</summary>
    /// <param name="subject">The cell.</param>
    /// <param name="c">A case drawn by <paramref name="subject"/>.</param>
    public static ScannedGradient<TParams, TCarry> Gradient<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject,
        CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        Require(subject, c);
        var forward = Recurrence.Forward(subject.Cell, c.P, c.Xs, c.Init);
        return Recurrence.Backward(subject.Cell, Tree.ZerosLike(c.P), forward.Caches, c.DOutputs, c.DFinal);
    }

    // ---- helpers ----

    private static Property ForAll<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, int max,
        Func<CellUnderTest<TParams, TCarry, TCache>, CellCase<TParams, TCarry>, Property> law)
        where TParams : IParameterTree<TParams>
    {
        ArgumentNullException.ThrowIfNull(subject);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        return Prop.ForAll(subject.Cases(max), c => law(subject, c));
    }

    private static void Require<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        ArgumentNullException.ThrowIfNull(subject);
        ArgumentNullException.ThrowIfNull(c);
    }

    /// <summary>Column j of <paramref name="m"/> as a rows×1 matrix.</summary>
    internal static Matrix<double> Column(Matrix<double> m, int j) => m.SubMatrix(0, m.RowCount, j, 1);

    /// <summary>Equal shapes and every entry equal (== on doubles, so NaN is never equal).</summary>
    internal static bool Same(Matrix<double> a, Matrix<double> b) =>
        a.RowCount == b.RowCount && a.ColumnCount == b.ColumnCount && Equal(Draw.Snapshot(a), Draw.Snapshot(b));

    internal static bool Same(ImmutableArray<Matrix<double>> a, ImmutableArray<Matrix<double>> b) =>
        a.Length == b.Length && a.Zip(b).All(p => Same(p.Item1, p.Item2));

    internal static bool Same<T>(T a, T b) where T : IParameterTree<T> => Equal(Tree.Flatten(a), Tree.Flatten(b));

    private static bool Equal(double[] a, double[] b) => a.Length == b.Length && a.Zip(b).All(p => p.Item1 == p.Item2);

    /// <summary>|a − b| ≤ tolerance·max(1, |a|) for every entry, shapes equal.</summary>
    internal static bool Close(Matrix<double> a, Matrix<double> b, double tolerance) =>
        a.RowCount == b.RowCount && a.ColumnCount == b.ColumnCount && Close(Draw.Snapshot(a), Draw.Snapshot(b), tolerance);

    internal static bool Close<T>(T a, T b, double tolerance) where T : IParameterTree<T> => Close(Tree.Flatten(a), Tree.Flatten(b), tolerance);

    private static bool Close(double[] a, double[] b, double tolerance) =>
        a.Length == b.Length && a.Zip(b).All(p => Math.Abs(p.Item1 - p.Item2) <= tolerance * Math.Max(1, Math.Abs(p.Item1)));

    /// <summary>Σ ⟨w_k, v_k⟩ over pairs of equally shaped matrices, with Neumaier's compensated summation.</summary>
    internal static double Inner(ImmutableArray<Matrix<double>> weights, ImmutableArray<Matrix<double>> values)
    {
        var (sum, compensation) = (0.0, 0.0);
        foreach (var (w, v) in weights.Zip(values))
        {
            var (ws, vs) = (Draw.Snapshot(w), Draw.Snapshot(v));
            for (var k = 0; k < ws.Length; k++)
            {
                var term = ws[k] * vs[k];
                var t = sum + term;
                compensation += Math.Abs(sum) >= Math.Abs(term) ? sum - t + term : term - t + sum;
                sum = t;
            }
        }
        return sum + compensation;
    }
}
