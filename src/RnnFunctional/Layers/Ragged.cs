using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>What one step of a ragged scan keeps for its backward.</summary>
/// <typeparam name="TCache">The cell's own cache.</typeparam>
/// <param name="Cell">The cell's cache of the step (computed for every column, read only for the running ones).</param>
/// <param name="Active">Active[j] is true when column j is still running at this step (t &lt; len_j), length m.</param>
public sealed record RaggedCache<TCache>(TCache Cell, ImmutableArray<bool> Active);

/// <summary>
/// Ragged batches without sorting or packing: column j of a batch runs for its own length len_j ∈ [1, T] and is
/// frozen afterwards. With mask⟨t⟩[j] = 1 when t &lt; len_j (steps counted from 0), each step of any cell becomes
/// <code>
///   carry' = mask⊙new + (1−mask)⊙old      (column by column, on every matrix of the carry's Split)
///   output' = mask⊙out
/// </code>
/// and its backward
/// <code>
///   dNew = mask⊙dCarry',  dOut = mask⊙dOutput',  (dCarryPrev, dx, dθ) = cell.Backward(cache, dNew, dOut)
///   dOld = mask⊙dCarryPrev + (1−mask)⊙dCarry',  dx' = mask⊙dx
/// </code>
/// so a column's carry stops at its last step, its outputs past the end are zero, and its steps past the end add
/// nothing to the loss or the gradients. The mask is applied by selecting columns, never by multiplying, so a full
/// mask reproduces the unmasked scan bit for bit. Scanning from last to first (<c>reverse</c>) starts each column at
/// its own last step, as PyTorch's packed sequences do for the reverse direction of a bidirectional layer.
/// </summary>
/// <remarks>
/// The columns of a batch are independent examples: a cell's step reads column j of its inputs only to produce
/// column j of its results. This is what makes the masked columns' parameter gradients exactly zero.
/// </remarks>
public static class Ragged
{
    /// <summary>
    /// The label of a step past the end of its column: <c>labels[t][j]</c> must be <see cref="Ignored"/> when
    /// t ≥ len_j, and a class in [0, n_y) when t &lt; len_j.
    /// </summary>
    public const int Ignored = -1;

    /// <summary>The lengths as the driver takes them: default (one full-length batch) when every column runs all <paramref name="steps"/>.</summary>
    internal static ImmutableArray<int> OrFull(ImmutableArray<int> lengths, int steps) => lengths.Any(length => length != steps) ? lengths : default;

    /// <summary>The masks of a ragged batch: mask⟨t⟩[j] = t &lt; len_j, for t = 0 … T−1.</summary>
    /// <param name="lengths">len_j ∈ [1, <paramref name="steps"/>] for each of the m columns.</param>
    /// <param name="steps">T ≥ 1.</param>
    /// <returns>T arrays of m flags.</returns>
    [Pure]
    public static ImmutableArray<ImmutableArray<bool>> Masks(ImmutableArray<int> lengths, int steps)
    {
        Shapes.ThrowIfAny(Shapes.All(Shapes.Positive(nameof(steps), steps),
                                     Shapes.Lengths(nameof(lengths), lengths, lengths.IsDefault ? 0 : lengths.Length, Math.Max(steps, 1))));
        return MasksKernel(lengths, steps);
    }

    /// <summary>
    /// The scan of <see cref="Recurrence.Forward{TParams,TCarry,TCache}"/> over a ragged batch: column j runs for
    /// len_j steps, then its carry is frozen and its outputs are zero.
    /// </summary>
    /// <param name="cell">Any cell.</param>
    /// <param name="p">The cell's parameters.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, each n_x×m; the columns past a column's end are not read (they must be finite).</param>
    /// <param name="init">The carry before the first step of every column (the last step when <paramref name="reverse"/>).</param>
    /// <param name="lengths">len_j ∈ [1, T] for each of the m columns.</param>
    /// <param name="reverse">
    /// Scan from x⟨T⟩ to x⟨1⟩, as <see cref="Scan.FoldBack{TCarry,TIn,TOut}"/>: column j starts from
    /// <paramref name="init"/> at its own last step len_j and ends at step 1. Outputs stay aligned with the inputs.
    /// </param>
    /// <returns>
    /// Outputs⟨1⟩..⟨T⟩ (each the cell's output size×m, zero past each column's end), the caches, and the final
    /// carry: for each column, the carry after its own last step (after step 1 when <paramref name="reverse"/>).
    /// </returns>
    [Pure]
    public static Scanned<TCarry, RaggedCache<TCache>> Forward<TParams, TCarry, TCache>(
        Cell<TParams, TCarry, TCache> cell, TParams p, ImmutableArray<Matrix<double>> xs, TCarry init,
        ImmutableArray<int> lengths, bool reverse = false)
        where TParams : IParameterTree<TParams>
    {
        Shapes.ThrowIfAny(CheckForward(cell, p, xs, init, lengths));
        return ForwardKernel(cell, p, xs, init, MasksKernel(lengths, xs.Length), reverse);
    }

    /// <summary>
    /// Back-propagation through a ragged scan: the fold of <see cref="Recurrence.Backward{TParams,TCarry,TCache}"/>
    /// with each step's gradients masked as in the class summary.
    /// </summary>
    /// <param name="cell">The cell of the forward scan.</param>
    /// <param name="zeroGradients">A zero of the parameter record (the fold's seed).</param>
    /// <param name="caches">The caches of <see cref="Forward{TParams,TCarry,TCache}"/>.</param>
    /// <param name="dOutputs">Gradients w.r.t. each output, each output size×m; entries past a column's end are ignored.</param>
    /// <param name="dFinal">Gradient w.r.t. the final carry (zero when nothing downstream reads it).</param>
    /// <param name="reverse">The direction of the forward scan.</param>
    /// <returns>dx⟨1⟩..dx⟨T⟩ (zero past each column's end), the gradient w.r.t. the initial carry, and the summed parameter gradients.</returns>
    [Pure]
    public static ScannedGradient<TParams, TCarry> Backward<TParams, TCarry, TCache>(
        Cell<TParams, TCarry, TCache> cell, TParams zeroGradients, ImmutableArray<RaggedCache<TCache>> caches,
        ImmutableArray<Matrix<double>> dOutputs, TCarry dFinal, bool reverse = false)
        where TParams : IParameterTree<TParams>
    {
        Shapes.ThrowIfAny(CheckBackward(cell, zeroGradients, caches, dOutputs, dFinal));
        return BackwardKernel(cell, zeroGradients, caches, dOutputs, dFinal, reverse);
    }

    // ---- one masked step, forward and backward side by side ----

    private static (TCarry Carry, (Matrix<double> Output, RaggedCache<TCache> Cache)) Step<TParams, TCarry, TCache>(
        Cell<TParams, TCarry, TCache> cell, TParams p, TCarry old, Matrix<double> x, ImmutableArray<bool> mask)
        where TParams : IParameterTree<TParams>
    {
        var step = cell.Step(p, old, x);
        var cache = new RaggedCache<TCache>(step.Cache, mask);
        if (AllActive(mask)) return (step.Carry, (step.Output, cache));
        var carry = cell.Join([.. cell.Split(step.Carry).Zip(cell.Split(old), (n, o) => Select(mask, n, o))]); // mask⊙new + (1−mask)⊙old
        return (carry, (Keep(mask, step.Output), cache));                                                       // mask⊙out
    }

    private static (TCarry DOld, Matrix<double> Dx, TParams Gradients) Back<TParams, TCarry, TCache>(
        Cell<TParams, TCarry, TCache> cell, RaggedCache<TCache> cache, TCarry dCarry, Matrix<double> dOutput)
        where TParams : IParameterTree<TParams>
    {
        var mask = cache.Active;
        if (AllActive(mask))
        {
            var full = cell.Backward(cache.Cell, dCarry, dOutput);
            return (full.DCarry, full.Dx, full.Gradients);
        }
        var dParts = cell.Split(dCarry);
        var dNew = cell.Join([.. dParts.Select(d => Keep(mask, d))]);                                            // dNew = mask⊙dCarry'
        var back = cell.Backward(cache.Cell, dNew, Keep(mask, dOutput));                                         // dOut = mask⊙dOutput'
        var dOld = cell.Join([.. dParts.Zip(cell.Split(back.DCarry), (d, dPrev) => Select(mask, dPrev, d))]);             // mask⊙dCarryPrev + (1−mask)⊙dCarry'
        return (dOld, Keep(mask, back.Dx), back.Gradients);                                                     // dx' = mask⊙dx
    }

    // ---- kernels: arguments already checked ----

    internal static ImmutableArray<ImmutableArray<bool>> MasksKernel(ImmutableArray<int> lengths, int steps) =>
        [.. Enumerable.Range(0, steps).Select(t => lengths.Select(length => t < length).ToImmutableArray())];

    internal static Scanned<TCarry, RaggedCache<TCache>> ForwardKernel<TParams, TCarry, TCache>(
        Cell<TParams, TCarry, TCache> cell, TParams p, ImmutableArray<Matrix<double>> xs, TCarry init,
        ImmutableArray<ImmutableArray<bool>> masks, bool reverse)
        where TParams : IParameterTree<TParams>
    {
        var steps = xs.Zip(masks, (x, mask) => (x, mask)).ToImmutableArray();
        Func<TCarry, (Matrix<double> x, ImmutableArray<bool> mask), (TCarry, (Matrix<double>, RaggedCache<TCache>))> step =
            (carry, s) => Step(cell, p, carry, s.x, s.mask);
        var (final, outputs) = reverse ? Scan.FoldBack(init, steps, step) : Scan.Fold(init, steps, step);
        return new([.. outputs.Select(o => o.Item1)], [.. outputs.Select(o => o.Item2)], final);
    }

    internal static ScannedGradient<TParams, TCarry> BackwardKernel<TParams, TCarry, TCache>(
        Cell<TParams, TCarry, TCache> cell, TParams zeroGradients, ImmutableArray<RaggedCache<TCache>> caches,
        ImmutableArray<Matrix<double>> dOutputs, TCarry dFinal, bool reverse)
        where TParams : IParameterTree<TParams>
    {
        var steps = caches.Zip(dOutputs, (cache, dOut) => (cache, dOut)).ToImmutableArray();
        var seed = (DCarry: dFinal, Sum: zeroGradients);
        Func<(TCarry DCarry, TParams Sum), (RaggedCache<TCache> cache, Matrix<double> dOut), ((TCarry, TParams), Matrix<double>)> step =
            (acc, s) =>
            {
                var (dOld, dx, gradients) = Back(cell, s.cache, acc.DCarry, s.dOut);
                return ((dOld, Tree.Add(acc.Sum, gradients)), dx);
            };
        // The backward of a first-to-last scan runs last-to-first, and the other way round.
        var ((dInit, sum), dxs) = reverse ? Scan.Fold(seed, steps, step) : Scan.FoldBack(seed, steps, step);
        return new(dxs, dInit, sum);
    }

    // ---- column selection ----

    private static bool AllActive(ImmutableArray<bool> mask) => !mask.Contains(false);

    /// <summary>Column j of <paramref name="whenActive"/> where mask[j], else column j of <paramref name="whenInactive"/>.</summary>
    internal static Matrix<double> Select(ImmutableArray<bool> mask, Matrix<double> whenActive, Matrix<double> whenInactive)
    {
        var rows = whenActive.RowCount;
        var (a, b) = (ColumnMajor(whenActive), ColumnMajor(whenInactive));
        var result = new double[a.Length];
        for (var j = 0; j < mask.Length; j++)
            Array.Copy(mask[j] ? a : b, j * rows, result, j * rows, rows);
        return Matrix<double>.Build.Dense(rows, mask.Length, result);
    }

    /// <summary>mask⊙m: the active columns of <paramref name="m"/>, zeros elsewhere.</summary>
    internal static Matrix<double> Keep(ImmutableArray<bool> mask, Matrix<double> m) =>
        Select(mask, m, Matrix<double>.Build.Dense(m.RowCount, m.ColumnCount));

    private static double[] ColumnMajor(Matrix<double> m) => m.AsColumnMajorArray() ?? m.ToColumnMajorArray();

    // ---- checks ----

    private static Problem[] CheckForward<TParams, TCarry, TCache>(
        Cell<TParams, TCarry, TCache> cell, TParams p, ImmutableArray<Matrix<double>> xs, TCarry init, ImmutableArray<int> lengths)
        where TParams : IParameterTree<TParams>
    {
        var present = Shapes.All(Shapes.NotNull(nameof(cell), cell), Shapes.NotNull(nameof(p), p), Shapes.NotNull(nameof(init), init));
        if (present.Length > 0) return present;
        var m = !xs.IsDefaultOrEmpty && xs[0] is { } x0 ? x0.ColumnCount : 0;
        var sequence = Shapes.All(Shapes.Sequence(nameof(xs), xs, xs.IsDefaultOrEmpty || xs[0] is null ? 0 : xs[0].RowCount, m, "n_x×m"));
        return sequence.Length > 0 ? sequence : Shapes.All(Shapes.Lengths(nameof(lengths), lengths, m, xs.Length));
    }

    private static Problem[] CheckBackward<TParams, TCarry, TCache>(
        Cell<TParams, TCarry, TCache> cell, TParams zeroGradients, ImmutableArray<RaggedCache<TCache>> caches,
        ImmutableArray<Matrix<double>> dOutputs, TCarry dFinal)
        where TParams : IParameterTree<TParams>
    {
        var present = Shapes.All(Shapes.NotNull(nameof(cell), cell), Shapes.NotNull(nameof(zeroGradients), zeroGradients),
                                 Shapes.NotNull(nameof(dFinal), dFinal));
        if (present.Length > 0) return present;
        if (caches.IsDefaultOrEmpty || caches.Any(c => c is null || c.Active.IsDefault))
            return [new(nameof(caches), "expected caches to be the caches of Ragged.Forward but got an empty array or a null cache")];
        var rows = !dOutputs.IsDefaultOrEmpty && dOutputs[0] is { } d0 ? d0.RowCount : 0;
        return Shapes.All(Shapes.Sequence(nameof(dOutputs), dOutputs, rows, caches[0].Active.Length, "n_out×m", caches.Length));
    }
}
