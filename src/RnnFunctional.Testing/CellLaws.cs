using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using MathNet.Numerics.LinearAlgebra;
using static RnnFunctional.Testing.Compare;

namespace RnnFunctional.Testing;

/// <summary>
/// The laws every recurrent cell obeys, as reusable FsCheck properties over any
/// <see cref="Cell{TParams,TCarry,TCache}"/>: scanned with <see cref="Recurrence"/>, a cell must compose over
/// concatenated sequences, treat the columns of a batch independently (ragged batches included), agree with itself
/// for one step, leave its arguments alone, and have the gradients its backward claims. Each law comes twice: over generated cases
/// (<c>Law(subject, max)</c>, for a <c>[Property]</c> test) and over one case (<c>Law(subject, case)</c>, to combine
/// with a generator of one's own).
/// </summary>
/// <remarks>
/// Results computed by the same operations in the same order are compared bit for bit (<see cref="Compare.Same(Matrix{double},Matrix{double})"/>);
/// results that only agree in exact arithmetic (a batch against its columns, a sum of gradients taken in another
/// order) within <see cref="CellUnderTest{TParams,TCarry,TCache}.Tolerance"/> (<see cref="Compare.Close(Matrix{double},Matrix{double},double)"/>).
/// </remarks>
public static class CellLaws
{
    // ---- fold/append ----

    /// <summary>
    /// The scan is a fold: scanning xs ++ ys from a carry equals scanning xs, then ys from xs's final carry (outputs
    /// and final carry bit for bit); and back-propagation over xs ++ ys equals back-propagation over ys, continued
    /// over xs from ys's gradient with respect to its initial carry (dx and the initial carry's gradient bit for bit,
    /// the parameter gradients as the sum of both halves'). Cases have T ≥ 2 and the cut is strictly inside,
    /// 1 ≤ k ≤ T − 1: xs and ys are never empty, so the two sides of the law are always different computations.
    /// </summary>
    /// <param name="subject">The cell.</param>
    /// <param name="max">Largest size of generated cases, at least 2.</param>
    public static Property ScanOverConcatenationContinuesFromFinalCarry<TParams, TCarry, TCache>(
        CellUnderTest<TParams, TCarry, TCache> subject, int max = 8)
        where TParams : IParameterTree<TParams> =>
        ForAll(subject, Dims.Smallest with { T = 2 }, max, ScanOverConcatenationContinuesFromFinalCarry);

    /// <summary><see cref="ScanOverConcatenationContinuesFromFinalCarry{TParams,TCarry,TCache}(CellUnderTest{TParams,TCarry,TCache},int)"/> for one case.</summary>
    /// <param name="subject">The cell.</param>
    /// <param name="c">A case drawn by <paramref name="subject"/>, with T ≥ 2 (see <see cref="CellUnderTest{TParams,TCarry,TCache}.Cases(Dims,int)"/>).</param>
    /// <exception cref="ArgumentException">The case's cut is not strictly inside its sequence (T = 1, or a case built with k = 0 or k = T).</exception>
    public static Property ScanOverConcatenationContinuesFromFinalCarry<TParams, TCarry, TCache>(
        CellUnderTest<TParams, TCarry, TCache> subject, CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        Require(subject, c);
        var (cell, k) = (subject.Cell, c.SplitAt);
        if (k < 1 || k > c.Xs.Length - 1)
            throw new ArgumentException(
                $"expected a cut 1 ≤ k ≤ T − 1 (both parts non-empty) but got k = {k} for T = {c.Xs.Length}; draw cases with T ≥ 2", nameof(c));
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
    /// columns'. Cases have m ≥ 2 (a batch of one column is the column: both sides would be the same computation).
    /// </summary>
    /// <param name="subject">The cell.</param>
    /// <param name="max">Largest size of generated cases, at least 2.</param>
    public static Property BatchEqualsColumnsRunAlone<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, int max = 8)
        where TParams : IParameterTree<TParams> =>
        ForAll(subject, Dims.Smallest with { M = 2 }, max, BatchEqualsColumnsRunAlone);

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

    // ---- ragged = alone ----

    /// <summary>
    /// A ragged batch (<see cref="Ragged"/>, column j running for its own length len_j drawn in [1, T]) equals each
    /// column run alone over its own steps, in both directions: the outputs up to len_j (zero after), the final carry,
    /// dx up to len_j (zero after) and the initial carry's gradient; and the batch's parameter gradients are the sum
    /// of the columns'. Scanned in reverse, column j runs alone over x⟨len_j⟩..x⟨1⟩.
    /// </summary>
    /// <param name="subject">The cell.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property RaggedBatchEqualsColumnsRunAlone<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, int max = 8)
        where TParams : IParameterTree<TParams> =>
        ForAll(subject, max, RaggedBatchEqualsColumnsRunAlone);

    /// <summary><see cref="RaggedBatchEqualsColumnsRunAlone{TParams,TCarry,TCache}(CellUnderTest{TParams,TCarry,TCache},int)"/> for one case.</summary>
    /// <param name="subject">The cell.</param>
    /// <param name="c">A case drawn by <paramref name="subject"/>.</param>
    public static Property RaggedBatchEqualsColumnsRunAlone<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject,
        CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        Require(subject, c);
        return RaggedAgainstColumns(subject, c, reverse: false).And(RaggedAgainstColumns(subject, c, reverse: true));
    }

    /// <summary>
    /// A ragged scan whose columns all run for T steps is the plain scan, in both directions, bit for bit:
    /// <see cref="Ragged.Forward{TParams,TCarry,TCache}"/> and <see cref="Ragged.Backward{TParams,TCarry,TCache}"/>
    /// give what <see cref="Recurrence"/> gives over xs (or over its reverse, with outputs and dx in input order).
    /// </summary>
    /// <param name="subject">The cell.</param>
    /// <param name="max">Largest size of generated cases.</param>
    public static Property FullLengthRaggedScanEqualsScan<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, int max = 8)
        where TParams : IParameterTree<TParams> =>
        ForAll(subject, max, FullLengthRaggedScanEqualsScan);

    /// <summary><see cref="FullLengthRaggedScanEqualsScan{TParams,TCarry,TCache}(CellUnderTest{TParams,TCarry,TCache},int)"/> for one case.</summary>
    /// <param name="subject">The cell.</param>
    /// <param name="c">A case drawn by <paramref name="subject"/>.</param>
    public static Property FullLengthRaggedScanEqualsScan<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject,
        CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        Require(subject, c);
        var cell = subject.Cell;
        var zero = Tree.ZerosLike(c.P);
        var full = Enumerable.Repeat(c.Xs.Length, c.Xs[0].ColumnCount).ToImmutableArray();
        Property Direction(bool reverse)
        {
            static ImmutableArray<T> Order<T>(ImmutableArray<T> xs, bool reverse) => reverse ? [.. xs.Reverse()] : xs;
            var ragged = Ragged.Forward(cell, c.P, c.Xs, c.Init, full, reverse);
            var raggedBack = Ragged.Backward(cell, zero, ragged.Caches, c.DOutputs, c.DFinal, reverse);
            var plain = Recurrence.Forward(cell, c.P, Order(c.Xs, reverse), c.Init);
            var plainBack = Recurrence.Backward(cell, zero, plain.Caches, Order(c.DOutputs, reverse), c.DFinal);
            var direction = reverse ? "reverse" : "forward";
            return (Same(ragged.Outputs, Order(plain.Outputs, reverse)) && Same(cell.Split(ragged.Final), cell.Split(plain.Final)))
                    .Label($"{direction}: outputs and final carry of the plain scan")
                .And((Same(raggedBack.Dx, Order(plainBack.Dx, reverse)) && Same(cell.Split(raggedBack.DInit), cell.Split(plainBack.DInit))
                      && Same(raggedBack.Gradients, plainBack.Gradients))
                    .Label($"{direction}: dx, initial carry's gradient and parameter gradients of the plain scan"));
        }
        return Direction(reverse: false).And(Direction(reverse: true));
    }

    private static Property RaggedAgainstColumns<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject,
        CellCase<TParams, TCarry> c, bool reverse)
        where TParams : IParameterTree<TParams>
    {
        var (cell, tolerance) = (subject.Cell, subject.Tolerance);
        var zero = Tree.ZerosLike(c.P);
        var ragged = Ragged.Forward(cell, c.P, c.Xs, c.Init, c.Lengths, reverse);
        var raggedBack = Ragged.Backward(cell, zero, ragged.Caches, c.DOutputs, c.DFinal, reverse);
        var m = c.Lengths.Length;

        // Column j alone: its first len_j steps, in scan order; step t of the batch is step t (or len_j − 1 − t) alone.
        var alone = Enumerable.Range(0, m).Select(j =>
        {
            var length = c.Lengths[j];
            ImmutableArray<Matrix<double>> Steps(ImmutableArray<Matrix<double>> ms) =>
                [.. Enumerable.Range(0, length).Select(k => Column(ms[reverse ? length - 1 - k : k], j))];
            TCarry CarryColumn(TCarry carry) => cell.Join([.. cell.Split(carry).Select(part => Column(part, j))]);
            var forward = Recurrence.Forward(cell, c.P, Steps(c.Xs), CarryColumn(c.Init));
            var back = Recurrence.Backward(cell, zero, forward.Caches, Steps(c.DOutputs), CarryColumn(c.DFinal));
            return (Forward: forward, Back: back);
        }).ToArray();

        bool PerStep(ImmutableArray<Matrix<double>> batch, Func<int, ImmutableArray<Matrix<double>>> columnAlone) =>
            Enumerable.Range(0, m).All(j =>
            {
                var (length, own) = (c.Lengths[j], columnAlone(j));
                return Enumerable.Range(0, batch.Length).All(t =>
                    t < length ? Close(Column(batch[t], j), own[reverse ? length - 1 - t : t], tolerance) : IsZero(Column(batch[t], j)));
            });
        bool PerPart(TCarry batch, Func<int, TCarry> columnAlone) =>
            Enumerable.Range(0, m).All(j => cell.Split(batch).Zip(cell.Split(columnAlone(j))).All(p => Close(Column(p.Item1, j), p.Item2, tolerance)));

        var direction = reverse ? "reverse" : "forward";
        var lengths = $"lengths [{string.Join(", ", c.Lengths)}]";
        return PerStep(ragged.Outputs, j => alone[j].Forward.Outputs).Label($"{direction}, {lengths}: outputs of each column, zero past its end")
            .And(PerPart(ragged.Final, j => alone[j].Forward.Final).Label($"{direction}: final carry of each column"))
            .And(PerStep(raggedBack.Dx, j => alone[j].Back.Dx).Label($"{direction}: dx of each column, zero past its end"))
            .And(PerPart(raggedBack.DInit, j => alone[j].Back.DInit).Label($"{direction}: initial carry's gradient of each column"))
            .And(Close(raggedBack.Gradients, alone.Select(a => a.Back.Gradients).Aggregate(Tree.Add), tolerance)
                .Label($"{direction}: parameter gradients = the sum of the columns'"));
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
        where TParams : IParameterTree<TParams> =>
        ForAll(subject, Dims.Smallest, max, law);

    private static Property ForAll<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, Dims least, int max,
        Func<CellUnderTest<TParams, TCarry, TCache>, CellCase<TParams, TCarry>, Property> law)
        where TParams : IParameterTree<TParams>
    {
        ArgumentNullException.ThrowIfNull(subject);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        return Prop.ForAll(subject.Cases(least, max), c => law(subject, c));
    }

    private static void Require<TParams, TCarry, TCache>(CellUnderTest<TParams, TCarry, TCache> subject, CellCase<TParams, TCarry> c)
        where TParams : IParameterTree<TParams>
    {
        ArgumentNullException.ThrowIfNull(subject);
        ArgumentNullException.ThrowIfNull(c);
    }

    /// <summary>Column j of <paramref name="m"/> as a rows×1 matrix.</summary>
    internal static Matrix<double> Column(Matrix<double> m, int j) => m.SubMatrix(0, m.RowCount, j, 1);

    internal static bool IsZero(Matrix<double> m) => Draw.Snapshot(m).All(v => v == 0);

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
