using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// One recurrent layer of a <see cref="Stack"/>, whatever its cell: a parameter tree plus a run over a whole sequence
/// that leaves a tape for its backward. Build one with <see cref="Rnn(RnnParameters)"/>,
/// <see cref="Lstm(LstmParameters)"/>, <see cref="Gru(GruParameters)"/>, <see cref="Of{TParams,TCarry,TCache}"/> (any <see cref="Cell{TParams,TCarry,TCache}"/>) or
/// <see cref="Bidirectional"/>. A layer maps inputs x⟨t⟩ (<see cref="InputSize"/>×m) to outputs
/// (<see cref="OutputSize"/>×m), threading a state made of one or more matrices with rows <see cref="StateRows"/>
/// (a⟨t⟩ alone, or a⟨t⟩ and c⟨t⟩, …). Gradients of a layer are a layer of the same structure.
/// </summary>
/// <remarks>
/// A layer holds the recurrence only: the read-out of a cell's parameter record (Wya and By of
/// <see cref="RnnParameters"/>, Wy and By of <see cref="LstmParameters"/> and <see cref="GruParameters"/>) is
/// replaced by an empty one and is not a leaf. The read-out of a stack is its own
/// (<see cref="StackParameters.Wy"/>, <see cref="StackParameters.By"/>).
/// </remarks>
public abstract partial record Layer : IParameterTree<Layer>
{
    private protected Layer() { }

    /// <summary>Rows n_in of each input x⟨t⟩.</summary>
    public abstract int InputSize { get; }

    /// <summary>Rows n_out of each output (n_a for a cell, the sum of both directions' for a bidirectional layer).</summary>
    public abstract int OutputSize { get; }

    /// <summary>Rows of each matrix of the state, in order: [n_a] for RNN and GRU, [n_a, n_a] for LSTM; a bidirectional layer lists the forward direction's, then the reverse direction's.</summary>
    public abstract ImmutableArray<int> StateRows { get; }

    /// <inheritdoc />
    [Pure]
    public abstract ImmutableArray<Leaf> ToLeaves();

    /// <inheritdoc />
    [Pure]
    public abstract Layer FromLeaves(ImmutableArray<Leaf> leaves);

    /// <inheritdoc />
    [Pure]
    public abstract ImmutableArray<LeafShape> LeafShapes();

    /// <summary>The entries of <see cref="ToLeaves"/> one after another from <paramref name="destination"/>[0] (<see cref="IFlatTree"/>); returns their count.</summary>
    internal virtual int WriteValues(Span<double> destination) => Tree.Write(ToLeaves(), destination);

    /// <summary>The entries of <see cref="ToLeaves"/> overwritten in place (<see cref="IFlatTree.ReadValues"/>); −1 when the layer cannot be.</summary>
    internal virtual int ReadValues(ReadOnlySpan<double> source) => -1;

    /// <summary>Every problem of the layer's parameters, naming them as <paramref name="name"/>.Wax and so on.</summary>
    internal abstract IEnumerable<Problem> Check(string argument, string name);

    /// <summary>
    /// The layer's cells on the driver, one per direction (forward, then reverse), and how their gradients make the
    /// layer's; null for a layer that runs on the generic fold.
    /// </summary>
    internal virtual (FusedCell[] Cells, Func<Driver.Gradients[], Layer> Gradients)? OnDriver() => null;

    /// <summary>
    /// Runs the layer over a checked sequence: xs each InputSize×m, init shaped as <see cref="StateRows"/>×m, the
    /// length of every column (default when every column runs T steps), first to last or last to first, keeping the
    /// carry every <paramref name="every"/> steps only for its backward (a built-in cell; another keeps every step),
    /// its tape in <paramref name="storage"/> when given (a call whose tapes do not outlive it).
    /// </summary>
    /// <remarks>
    /// <paramref name="recurrent"/>: default, or one mask per direction (rows <see cref="RecurrentRows"/>×m) by which
    /// every step multiplies the state's first part where the cell reads it (variational dropout); a built-in cell's
    /// direction runs it on the driver, any other on the generic fold (<see cref="Ragged"/>).
    /// </remarks>
    internal abstract LayerTape Run(ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init,
        ImmutableArray<int> lengths, bool reverse, int every, Workspace? storage, ImmutableArray<Matrix<double>> recurrent = default);

    /// <summary>Rows of the first state part (the output fed back, a⟨t⟩) of each direction: what recurrent dropout masks.</summary>
    internal abstract ImmutableArray<int> RecurrentRows { get; }

    // ---- factories ----

    /// <summary>A vanilla-RNN layer a⟨t⟩ = tanh(Wax·x⟨t⟩ + Waa·a⟨t−1⟩ + ba) (or ReLU, as <paramref name="p"/>.Activation says).</summary>
    /// <param name="p">Wax n_a×n_x, Waa n_a×n_a, Ba n_a; its read-out Wya, By is not used and not kept.</param>
    /// <returns>A layer with leaves Wax, Waa, Ba, input size n_x, output size n_a and state rows [n_a].</returns>
    [Pure]
    public static Layer Rnn(RnnParameters p)
    {
        Shapes.ThrowIfAny(p is null ? [new(nameof(p), "expected p to be RnnParameters but got null")] : Shapes.All(RnnFunctional.Rnn.CheckRecurrence(p, nameof(p), "")));
        return new CellLayer<RnnParameters, Matrix<double>, RnnCache>(RnnFunctional.Rnn.Cell, WithoutReadOut(p!), RnnReadOut, RnnSizes, RnnFunctional.Rnn.CheckRecurrence)
        {
            Fused = new(RnnFused.Of, RnnFused.Gradients),
        };
    }

    /// <summary>A vanilla-RNN layer with random parameters, initialised as <see cref="RnnParameters.Initialize"/> does.</summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same layer.</param>
    /// <param name="activation">The cell's non-linearity.</param>
    [Pure]
    public static Layer Rnn(int inputSize, int hiddenSize, int seed, Activation activation = Activation.Tanh) =>
        Rnn(RnnParameters.Initialize(inputSize, hiddenSize, 1, seed) with { Activation = activation });

    /// <summary>
    /// An LSTM layer (the cell of <see cref="RnnFunctional.Lstm"/>): its state is [a⟨t⟩, c⟨t⟩] and its output a⟨t⟩.
    /// </summary>
    /// <param name="p">Wf, Wi, Wc, Wo n_a×(n_a+n_x), Bf, Bi, Bc, Bo n_a; its read-out Wy, By is not used and not kept.</param>
    /// <returns>A layer with leaves Wf, Bf, Wi, Bi, Wc, Bc, Wo, Bo, input size n_x, output size n_a and state rows [n_a, n_a].</returns>
    [Pure]
    public static Layer Lstm(LstmParameters p)
    {
        Shapes.ThrowIfAny(p is null ? [new(nameof(p), "expected p to be LstmParameters but got null")] : Shapes.All(RnnFunctional.Lstm.CheckRecurrence(p, nameof(p), "")));
        return new CellLayer<LstmParameters, LstmState, LstmCache>(RnnFunctional.Lstm.Cell,
            p! with { Wy = Matrix<double>.Build.Dense(0, p.HiddenSize), By = Vector<double>.Build.Dense(0) },
            LstmReadOut, q => new(q.InputSize, q.HiddenSize, [q.HiddenSize, q.HiddenSize]), RnnFunctional.Lstm.CheckRecurrence)
        {
            Fused = new(LstmFused.Of, LstmFused.Gradients),
        };
    }

    /// <summary>An LSTM layer with random parameters, initialised as <see cref="LstmParameters.Initialize"/> does.</summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same layer.</param>
    [Pure]
    public static Layer Lstm(int inputSize, int hiddenSize, int seed) => Lstm(LstmParameters.Initialize(inputSize, hiddenSize, 1, seed));

    /// <summary>A GRU layer (the cell of <see cref="RnnFunctional.Gru"/>): its state and its output are h⟨t⟩.</summary>
    /// <param name="p">Wih 3n_a×n_x, Whh 3n_a×n_a, Bih and Bhh 3n_a; its read-out Wy, By is not used and not kept.</param>
    /// <returns>A layer with leaves Wih, Whh, Bih, Bhh, input size n_x, output size n_a and state rows [n_a].</returns>
    [Pure]
    public static Layer Gru(GruParameters p)
    {
        Shapes.ThrowIfAny(p is null ? [new(nameof(p), "expected p to be GruParameters but got null")] : Shapes.All(RnnFunctional.Gru.CheckRecurrence(p, nameof(p), "")));
        return new CellLayer<GruParameters, Matrix<double>, GruCache>(RnnFunctional.Gru.Cell,
            p! with { Wy = Matrix<double>.Build.Dense(0, p.HiddenSize), By = Vector<double>.Build.Dense(0) },
            GruReadOut, q => new(q.InputSize, q.HiddenSize, [q.HiddenSize]), RnnFunctional.Gru.CheckRecurrence)
        {
            Fused = new(GruFused.Of, GruFused.Gradients),
        };
    }

    /// <summary>A GRU layer with random parameters, initialised as <see cref="GruParameters.Initialize"/> does.</summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same layer.</param>
    [Pure]
    public static Layer Gru(int inputSize, int hiddenSize, int seed) => Gru(GruParameters.Initialize(inputSize, hiddenSize, 1, seed));

    /// <summary>
    /// A bidirectional layer: <paramref name="forward"/> scans x⟨1⟩..x⟨T⟩, <paramref name="reverse"/> scans
    /// x⟨T⟩..x⟨1⟩ (in a ragged batch, from each column's own last step), and the output at step t is
    /// [forward's output⟨t⟩; reverse's output⟨t⟩], (n_fwd + n_rev)×m. Its leaves are forward.… then reverse.…, and
    /// its state is the forward direction's matrices followed by the reverse direction's.
    /// </summary>
    /// <param name="forward">The layer run first to last, input size n_x.</param>
    /// <param name="reverse">The layer run last to first, of the same input size n_x.</param>
    [Pure]
    public static Layer Bidirectional(Layer forward, Layer reverse)
    {
        Shapes.ThrowIfAny(Shapes.All(Shapes.NotNull(nameof(forward), forward), Shapes.NotNull(nameof(reverse), reverse)));
        Shapes.ThrowIfAny(reverse.InputSize == forward.InputSize ? [] :
            [new(nameof(reverse), $"expected reverse to have the input size of forward, n_x = {forward.InputSize}, but got {reverse.InputSize}")]);
        return new BidirectionalLayer(forward, reverse);
    }

    /// <summary>
    /// A layer of any cell. The sizes are declared, since a generic cell does not say them; every leaf of
    /// <paramref name="p"/> except <paramref name="unused"/> is a leaf of the layer.
    /// </summary>
    /// <param name="cell">The cell; its Split must give the matrices of <paramref name="stateRows"/>.</param>
    /// <param name="p">The cell's parameters.</param>
    /// <param name="inputSize">Rows n_x ≥ 1 of each input.</param>
    /// <param name="outputSize">Rows ≥ 1 of each output of the cell's step.</param>
    /// <param name="stateRows">Rows of each matrix of the carry's Split, in order, each ≥ 1.</param>
    /// <param name="unused">Names of leaves of <paramref name="p"/> the cell's step does not read (its read-out), left out of the layer's leaves.</param>
    [Pure]
    public static Layer Of<TParams, TCarry, TCache>(Cell<TParams, TCarry, TCache> cell, TParams p, int inputSize, int outputSize,
        ImmutableArray<int> stateRows, ImmutableArray<string> unused = default)
        where TParams : IParameterTree<TParams>
    {
        Shapes.ThrowIfAny(Shapes.All(Shapes.NotNull(nameof(cell), cell), Shapes.NotNull(nameof(p), p),
                                     Shapes.Positive(nameof(inputSize), inputSize), Shapes.Positive(nameof(outputSize), outputSize)));
        Shapes.ThrowIfAny(stateRows.IsDefaultOrEmpty
            ? [new(nameof(stateRows), "expected stateRows to hold at least one row count but it is empty")]
            : Shapes.All(stateRows.Select((rows, i) => Shapes.Positive($"{nameof(stateRows)}[{i}]", rows)).ToArray()));
        var names = p.LeafShapes().Select(l => l.Name).ToImmutableArray();
        var hidden = unused.IsDefault ? [] : unused;
        Shapes.ThrowIfAny([.. hidden.Where(n => !names.Contains(n)).Select(n =>
            new Problem(nameof(unused), $"expected unused to name leaves of p ({string.Join(", ", names)}) but got {n}"))]);
        var sizes = new LayerSizes(inputSize, outputSize, stateRows);
        return new CellLayer<TParams, TCarry, TCache>(cell, p, hidden, _ => sizes, (q, argument, name) => Shapes.Finite(argument, name, q.ToLeaves()));
    }

    // ---- the vanilla RNN as a layer ----

    private static readonly ImmutableArray<string> RnnReadOut = [nameof(RnnParameters.Wya), nameof(RnnParameters.By)];

    private static LayerSizes RnnSizes(RnnParameters p) => new(p.Wax.ColumnCount, p.Wax.RowCount, [p.Wax.RowCount]);

    private static RnnParameters WithoutReadOut(RnnParameters p) =>
        p with { Wya = Matrix<double>.Build.Dense(0, p.Wax.RowCount), By = Vector<double>.Build.Dense(0) };


    // ---- the LSTM and the GRU as layers ----

    private static readonly ImmutableArray<string> LstmReadOut = [nameof(LstmParameters.Wy), nameof(LstmParameters.By)];

    private static readonly ImmutableArray<string> GruReadOut = [nameof(GruParameters.Wy), nameof(GruParameters.By)];



    // ---- leaves of nested trees ----

    /// <summary>A leaf name inside a node: <c>layers[0].Wax</c>, or <c>Wax</c> at the top.</summary>
    internal static string Named(string node, string leaf) => node.Length == 0 ? leaf : $"{node}.{leaf}";

    /// <summary>The leaves of a node with the node's prefix taken off their names (the inverse of <see cref="Leaf.Under"/>).</summary>
    internal static ImmutableArray<Leaf> Inside(string node, IEnumerable<Leaf> leaves) =>
        [.. leaves.Select(l => l with { Name = l.Name[(node.Length + 1)..] })];
}

/// <summary>The sizes of a layer: rows of its inputs, of its outputs and of each matrix of its state.</summary>
internal readonly record struct LayerSizes(int Input, int Output, ImmutableArray<int> State);

/// <summary>A layer's run over a sequence: its outputs, its final state, and the backward of the run.</summary>
/// <param name="Outputs">Outputs ⟨1⟩..⟨T⟩, each n_out×m.</param>
/// <param name="Final">The state after the run, one matrix per part.</param>
/// <param name="Backward">(dOutputs, dFinal) → dx, gradient w.r.t. the initial state, parameter gradients.</param>
internal sealed record LayerTape(ImmutableArray<Matrix<double>> Outputs, ImmutableArray<Matrix<double>> Final,
    Func<ImmutableArray<Matrix<double>>, ImmutableArray<Matrix<double>>, LayerGradient> Backward);

/// <summary>The backward of a layer's run.</summary>
/// <param name="Dx">dx⟨1⟩..dx⟨T⟩, each n_in×m.</param>
/// <param name="DInit">Gradient w.r.t. each matrix of the initial state.</param>
/// <param name="Gradients">Parameter gradients, as a layer of the same structure.</param>
internal sealed record LayerGradient(ImmutableArray<Matrix<double>> Dx, ImmutableArray<Matrix<double>> DInit, Layer Gradients);

/// <summary>How a built-in cell runs on the sequence driver: its fused math, and its stacked gradients as its parameter record.</summary>
internal sealed record FusedKernel<TParams>(Func<TParams, FusedCell> Cell, Func<TParams, Driver.Gradients, TParams> Gradients);

/// <summary>
/// A layer made of a cell and its parameters. The built-in cells (<see cref="Layer.Rnn(RnnParameters)"/>,
/// <see cref="Layer.Lstm(LstmParameters)"/>, <see cref="Layer.Gru(GruParameters)"/>) run on the library's fused
/// sequence driver, ragged batches and reverse scans included; any other cell is scanned by <see cref="Ragged"/>
/// (which reproduces <see cref="Recurrence"/> bit for bit when every column runs for the whole sequence), the
/// reference every fused path is proven against.
/// </summary>
/// <typeparam name="TParams">The cell's parameter record.</typeparam>
/// <typeparam name="TCarry">The cell's carry.</typeparam>
/// <typeparam name="TCache">The cell's per-step cache.</typeparam>
public sealed record CellLayer<TParams, TCarry, TCache> : Layer where TParams : IParameterTree<TParams>
{
    private readonly Func<TParams, LayerSizes> sizes;
    private readonly Func<TParams, string, string, IEnumerable<Problem>> check;

    internal CellLayer(Cell<TParams, TCarry, TCache> cell, TParams parameters, ImmutableArray<string> unused,
        Func<TParams, LayerSizes> sizes, Func<TParams, string, string, IEnumerable<Problem>> check)
    {
        (Cell, Parameters, Unused, this.sizes, this.check) = (cell, parameters, unused, sizes, check);
    }

    /// <summary>The cell.</summary>
    public Cell<TParams, TCarry, TCache> Cell { get; }

    /// <summary>The cell's parameters (or gradients); the leaves named in <see cref="Unused"/> are not read.</summary>
    public TParams Parameters { get; }

    /// <summary>Names of the leaves of <see cref="Parameters"/> that are not leaves of the layer (the cell's read-out).</summary>
    public ImmutableArray<string> Unused { get; }

    /// <inheritdoc />
    public override int InputSize => sizes(Parameters).Input;

    /// <inheritdoc />
    public override int OutputSize => sizes(Parameters).Output;

    /// <inheritdoc />
    public override ImmutableArray<int> StateRows => sizes(Parameters).State;

    /// <inheritdoc />
    [Pure]
    public override ImmutableArray<Leaf> ToLeaves() => [.. Parameters.ToLeaves().Where(l => !Unused.Contains(l.Name))];

    /// <inheritdoc />
    [Pure]
    public override ImmutableArray<LeafShape> LeafShapes() => [.. Parameters.LeafShapes().Where(l => !Unused.Contains(l.Name))];

    internal override int WriteValues(Span<double> destination) =>
        Parameters is IFlatTree flat ? flat.WriteValues(destination, Unused) : base.WriteValues(destination);

    internal override int ReadValues(ReadOnlySpan<double> source) => Parameters is IFlatTree flat ? flat.ReadValues(source, Unused) : -1;

    /// <inheritdoc />
    [Pure]
    public override Layer FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(LeafShapes(), leaves, used =>
        {
            // The unused leaves keep the parameters' values; when all of them are empty (the built-in cells' dropped
            // read-outs) they are rebuilt from their shapes, without copying the parameters.
            var shapes = Parameters.LeafShapes();
            var kept = shapes.Any(l => l.Count > 0 && Unused.Contains(l.Name)) ? Parameters.ToLeaves() : default;
            var (merged, next) = (ImmutableArray.CreateBuilder<Leaf>(shapes.Length), 0);
            for (var i = 0; i < shapes.Length; i++)
                merged.Add(!Unused.Contains(shapes[i].Name) ? used[next++]
                    : kept.IsDefault ? new Leaf(shapes[i].Name, shapes[i].Rows, shapes[i].Columns, []) : kept[i]);
            return With(Parameters.FromLeaves(merged.MoveToImmutable()));
        });

    internal override IEnumerable<Problem> Check(string argument, string name) => check(Parameters, argument, name);

    /// <summary>The fused kernel of a built-in cell; null for a cell of <see cref="Layer.Of{TParams,TCarry,TCache}"/>, which runs on the generic fold.</summary>
    internal FusedKernel<TParams>? Fused { get; init; }

    /// <inheritdoc />
    internal override (FusedCell[] Cells, Func<Driver.Gradients[], Layer> Gradients)? OnDriver() =>
        Fused is { } fused ? ([fused.Cell(Parameters)], g => With(fused.Gradients(Parameters, g[0]))) : null;

    internal override ImmutableArray<int> RecurrentRows => [StateRows[0]];

    internal override LayerTape Run(ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init,
        ImmutableArray<int> lengths, bool reverse, int every, Workspace? storage, ImmutableArray<Matrix<double>> recurrent = default)
    {
        if (Fused is { } fused)
        {
            var kernel = fused.Cell(Parameters);
            var (na, rows) = (kernel.Hidden, kernel.OutputRows);                      // h⟨t⟩ in the first rows of the driver's n_a
            var run = Driver.Forward(kernel, xs, Driver.Padded(init, na), lengths, reverse, every, Summation.DefaultThreads, storage,
                recurrent: recurrent.IsDefault ? null : Driver.Padded(recurrent[0], na));
            return new(Driver.Top(run.Outputs, rows), Driver.TopFirst(run.Final, rows), (dOutputs, dFinal) =>
            {
                var back = Driver.Backward(run.Tape, Driver.Padded(dOutputs, na), Driver.Padded(dFinal, na), Summation.DefaultThreads);
                return new(back.Dx, Driver.TopFirst(back.DInit, rows), With(fused.Gradients(Parameters, back.Gradients)));
            });
        }
        var cell = recurrent.IsDefault ? Cell : RecurrentDropout(Cell, recurrent[0]);
        var masks = Ragged.MasksKernel(lengths.IsDefault ? [.. Enumerable.Repeat(xs.Length, xs[0].ColumnCount)] : lengths, xs.Length);
        var scanned = Ragged.ForwardKernel(cell, Parameters, xs, Cell.Join(init), masks, reverse);
        return new(scanned.Outputs, Cell.Split(scanned.Final), (dOutputs, dFinal) =>
        {
            var back = Ragged.BackwardKernel(cell, Tree.ZerosLike(Parameters), scanned.Caches, dOutputs, Cell.Join(dFinal), reverse);
            return new(back.Dx, Cell.Split(back.DInit), With(back.Gradients));
        });
    }

    /// <summary>
    /// The cell reading r ⊙ a⟨t−1⟩ wherever it reads the first part of its carry (variational recurrent dropout): the
    /// carry is masked on the way into each step only, and the gradient it receives is masked likewise (d a⟨t−1⟩ = r ⊙
    /// the cell's gradient of its masked input).
    /// </summary>
    private static Cell<TParams, TCarry, TCache> RecurrentDropout(Cell<TParams, TCarry, TCache> cell, Matrix<double> r)
    {
        TCarry Masked(TCarry carry)
        {
            var parts = cell.Split(carry);
            return cell.Join(parts.SetItem(0, parts[0].PointwiseMultiply(r)));
        }
        return cell with
        {
            Step = (p, carry, x) => cell.Step(p, Masked(carry), x),
            Backward = (cache, dCarry, dOutput) =>
            {
                var g = cell.Backward(cache, dCarry, dOutput);
                return g with { DCarry = Masked(g.DCarry) };
            },
        };
    }

    private CellLayer<TParams, TCarry, TCache> With(TParams parameters) => new(Cell, parameters, Unused, sizes, check) { Fused = Fused };

    /// <summary>Same cell (by reference), equal parameters and the same unused leaves.</summary>
    /// <param name="other">Another layer of the same cell types.</param>
    public bool Equals(CellLayer<TParams, TCarry, TCache>? other) =>
        other is not null && ReferenceEquals(Cell, other.Cell) && EqualityComparer<TParams>.Default.Equals(Parameters, other.Parameters)
        && Unused.SequenceEqual(other.Unused);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Cell, Parameters);
}
