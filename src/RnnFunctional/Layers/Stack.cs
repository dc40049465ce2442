using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// Parameters of a stack of recurrent layers with a softmax read-out on the top layer:
/// h₀⟨t⟩ = x⟨t⟩, h_l = layer l scanned over h_{l−1}, ŷ⟨t⟩ = softmax(Wy·h_L⟨t⟩ + By). Gradients have this same type.
/// Its leaves are the layers' leaves prefixed with <c>layers[l].</c> (<c>layers[0].Wax</c>,
/// <c>layers[1].forward.Waa</c>, …) followed by <c>Wy</c> and <c>By</c>.
/// </summary>
/// <param name="Layers">L ≥ 1 layers, layer l's input size being layer l−1's output size.</param>
/// <param name="Wy">Read-out weights, n_y×n_top (n_top = the top layer's output size).</param>
/// <param name="By">Read-out bias, length n_y.</param>
public sealed record StackParameters(ImmutableArray<Layer> Layers, Matrix<double> Wy, Vector<double> By) : IParameterTree<StackParameters>, IFlatTree
{
    /// <summary>Input size n_x of the bottom layer.</summary>
    public int InputSize =>
        Layers.IsDefaultOrEmpty || Layers[0] is null
            ? throw new InvalidOperationException("expected Layers to hold at least one layer but it is empty")
            : Layers[0].InputSize;

    /// <summary>Number of classes n_y of the read-out.</summary>
    public int OutputSize => Wy.RowCount;

    /// <summary>
    /// A stack of the given layers with a random read-out initialised as PyTorch's nn.Linear: every entry uniform
    /// in (−1/√n_top, 1/√n_top).
    /// </summary>
    /// <param name="layers">L ≥ 1 layers, each taking the outputs of the one below (see <see cref="Layer"/>'s factories).</param>
    /// <param name="outputSize">n_y ≥ 1.</param>
    /// <param name="seed">Seed of the read-out's generator.</param>
    [Pure]
    public static StackParameters Initialize(ImmutableArray<Layer> layers, int outputSize, int seed)
    {
        Dimensions.RequirePositive((nameof(outputSize), outputSize));
        Shapes.ThrowIfAny(Stack.CheckLayers(nameof(layers), nameof(layers), layers));
        var top = layers[^1].OutputSize;
        var uniform = Dimensions.Uniform(seed, 1.0 / Math.Sqrt(top));
        return new(layers, uniform(outputSize, top), uniform(outputSize, 1).Column(0));
    }

    /// <inheritdoc />
    [Pure]
    public ImmutableArray<Leaf> ToLeaves() =>
        [.. Layers.SelectMany((layer, l) => layer.ToLeaves().Select(leaf => leaf.Under($"layers[{l}]"))), Leaf.Of(nameof(Wy), Wy), Leaf.Of(nameof(By), By)];

    /// <inheritdoc />
    int IFlatTree.WriteValues(Span<double> destination, ImmutableArray<string> skip)
    {
        var offset = 0;
        if (!skip.IsDefaultOrEmpty) return Tree.Write([.. ToLeaves().Where(l => !skip.Contains(l.Name))], destination);
        foreach (var layer in Layers) offset += layer.WriteValues(destination[offset..]);
        offset += ((Part)(nameof(Wy), Wy)).WriteTo(destination[offset..]);
        return offset + ((Part)(nameof(By), By)).WriteTo(destination[offset..]);
    }

    /// <inheritdoc />
    int IFlatTree.ReadValues(ReadOnlySpan<double> source, ImmutableArray<string> skip)
    {
        if (!skip.IsDefaultOrEmpty) return -1;
        var offset = 0;
        foreach (var layer in Layers)
        {
            var read = layer.ReadValues(source[offset..]);
            if (read < 0) return -1;
            offset += read;
        }
        return Part.ReadAll([(nameof(Wy), Wy), (nameof(By), By)], source[offset..], default) is var top and >= 0 ? offset + top : -1;
    }

    /// <inheritdoc />
    [Pure]
    public ImmutableArray<LeafShape> LeafShapes() =>
    [
        .. Layers.SelectMany((layer, l) => layer.LeafShapes().Select(leaf => leaf.Under($"layers[{l}]"))),
        new(nameof(Wy), Wy.RowCount, Wy.ColumnCount), new(nameof(By), By.Count, 1),
    ];

    /// <inheritdoc />
    [Pure]
    public StackParameters FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(LeafShapes(), leaves, l =>
        {
            var indexed = Layers.Select((layer, i) => (layer, i)).ToImmutableArray();
            var (head, layers) = Scan.Fold(0, indexed, (offset, x) =>
            {
                var count = x.layer.LeafShapes().Length;
                return (offset + count, x.layer.FromLeaves(Layer.Inside($"layers[{x.i}]", l.Skip(offset).Take(count))));
            });
            return this with { Layers = layers, Wy = l[head].ToMatrix(), By = l[head + 1].ToVector() };
        });

    /// <summary>Equal layers, in order, and equal read-outs.</summary>
    /// <param name="other">Another stack.</param>
    public bool Equals(StackParameters? other) =>
        other is not null && (Layers.IsDefault ? other.Layers.IsDefault : !other.Layers.IsDefault && Layers.SequenceEqual(other.Layers))
        && Equals(Wy, other.Wy) && Equals(By, other.By);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Layers.IsDefault ? -1 : Layers.Length, Wy, By);

    /// <summary>Entry-wise sum.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same structure.</param>
    public static StackParameters operator +(StackParameters a, StackParameters b) => Tree.Add(a, b);

    /// <summary>Entry-wise difference.</summary>
    /// <param name="a">Parameters or gradients.</param>
    /// <param name="b">Of the same structure.</param>
    public static StackParameters operator -(StackParameters a, StackParameters b) => Tree.Subtract(a, b);

    /// <summary>Scaling by a number.</summary>
    /// <param name="s">Scale.</param>
    /// <param name="a">Parameters or gradients.</param>
    public static StackParameters operator *(double s, StackParameters a) => Tree.Scale(s, a);
}

/// <summary>The result of <see cref="Stack.Forward"/>: every layer's outputs, final states and the predictions.</summary>
public sealed record StackForward
{
    internal StackForward(StackParameters parameters, ImmutableArray<int> lengths, ImmutableArray<LayerTape> tapes,
        ImmutableArray<Matrix<double>> predictions, DropoutMask dropout)
    {
        (Parameters, Lengths, Tapes, Predictions, Dropout) = (parameters, lengths, tapes, predictions, dropout);
        States = [.. tapes.Select(tape => tape.Outputs)];
        Final = [.. tapes.Select(tape => tape.Final)];
    }

    /// <summary>The parameters the sequence ran with.</summary>
    public StackParameters Parameters { get; }

    /// <summary>len_j of each of the m columns (T for every column of a full batch).</summary>
    public ImmutableArray<int> Lengths { get; }

    /// <summary>States[l][t]: the output of layer l at step t, n_l×m (n_l = the layer's output size); zero past each column's end.</summary>
    public ImmutableArray<ImmutableArray<Matrix<double>>> States { get; }

    /// <summary>The top layer's outputs h_L⟨1⟩..h_L⟨T⟩, each n_top×m: what the read-out reads.</summary>
    public ImmutableArray<Matrix<double>> Top => States[^1];

    /// <summary>
    /// Final[l]: layer l's state after its last step, one matrix per part (see <see cref="Layer.StateRows"/>). Column j
    /// holds the state after its own last step len_j; a reverse direction's state is the one after step 1.
    /// </summary>
    public ImmutableArray<ImmutableArray<Matrix<double>>> Final { get; }

    /// <summary>ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m; zero past each column's end.</summary>
    public ImmutableArray<Matrix<double>> Predictions { get; }

    internal ImmutableArray<LayerTape> Tapes { get; }

    /// <summary>The dropout masks the sequence ran with (<see cref="DropoutMask.None"/> for none).</summary>
    public DropoutMask Dropout { get; }
}

/// <summary>The result of <see cref="Stack.Backward"/>.</summary>
/// <param name="Dx">dx⟨1⟩..dx⟨T⟩, each n_x×m; zero past each column's end.</param>
/// <param name="DInitial">DInitial[l]: gradient w.r.t. each matrix of layer l's initial state.</param>
/// <param name="Gradients">Parameter gradients summed over time; dWy and dBy are zero.</param>
public sealed record StackGradient(ImmutableArray<Matrix<double>> Dx, ImmutableArray<ImmutableArray<Matrix<double>>> DInitial, StackParameters Gradients);

/// <summary>The result of <see cref="Stack.LossAndGradients"/>.</summary>
/// <param name="Loss">Σ_j Σ_{t &lt; len_j} −log ŷ⟨t⟩[labels[t][j], j].</param>
/// <param name="Gradients">Gradients of the loss for every parameter, the read-out included.</param>
/// <param name="Dx">Gradients of the loss w.r.t. x⟨1⟩..x⟨T⟩, each n_x×m; zero past each column's end.</param>
/// <param name="DInitial">DInitial[l]: gradient of the loss w.r.t. each matrix of layer l's initial state.</param>
public sealed record StackLoss(double Loss, StackParameters Gradients, ImmutableArray<Matrix<double>> Dx, ImmutableArray<ImmutableArray<Matrix<double>>> DInitial);

/// <summary>
/// Stacked, bidirectional and ragged recurrent networks over any mix of cells. Layer l reads the outputs of layer
/// l−1 (the bottom layer reads x⟨t⟩, n_x×m); a softmax read-out reads the top layer. Optional arguments:
/// <list type="bullet">
/// <item><c>lengths</c>: len_j ∈ [1, T] for each column j, for a ragged batch (see <see cref="Ragged"/>); omitted,
/// every column runs for T steps. Inputs past a column's end are not read (they must be finite), its outputs and
/// predictions there are zero and its labels there must be <see cref="Ragged.Ignored"/>.</item>
/// <item><c>initial</c>: initial[l] = layer l's initial state, one matrix per part (<see cref="Layer.StateRows"/>×m,
/// a bidirectional layer's forward parts then reverse parts); omitted, every state starts at zero.</item>
/// </list>
/// Every function checks its arguments (throwing <see cref="ArgumentException"/> naming the argument and the expected
/// shape); the <c>Try</c> variants return every problem as a <see cref="Validation{FAIL,SUCCESS}"/>.
/// </summary>
public static partial class Stack
{
    /// <summary>Runs every layer over the sequence, bottom to top, and the read-out over the top layer.</summary>
    /// <param name="p">The stack: layers and read-out Wy n_y×n_top, By n_y.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="lengths">len_j ∈ [1, T] for each of the m columns; omitted, all T.</param>
    /// <param name="initial">initial[l][k]: part k of layer l's initial state, StateRows[k]×m; omitted, zeros.</param>
    /// <param name="every">
    /// k ≥ 1: what the result keeps for <see cref="Backward"/> is each layer's inputs and its carry every k steps only
    /// (O(T/k + k) states rather than T), and the backward recomputes each segment of k steps just before running over
    /// it, with bitwise the same results; omitted, every step's values are kept. Layers of the built-in cells only;
    /// a layer of <see cref="Layer.Of{TParams,TCarry,TCache}"/> keeps every step.
    /// </param>
    /// <param name="dropout">
    /// The dropout masks of this run (see <see cref="DropoutMask"/>; <see cref="StackForward.States"/> are the layers' outputs
    /// before any mask, the predictions read the masked top outputs); omitted, none.
    /// </param>
    /// <returns>Every layer's outputs and final state, the predictions ŷ⟨t⟩ (n_y×m) and what <see cref="Backward"/> needs.</returns>
    [Pure]
    public static StackForward Forward(StackParameters p, ImmutableArray<Matrix<double>> xs,
        ImmutableArray<int>? lengths = null, ImmutableArray<ImmutableArray<Matrix<double>>>? initial = null, int? every = null,
        DropoutMask? dropout = null)
    {
        Shapes.ThrowIfAny(CheckForward(p, xs, lengths, initial, every));
        Shapes.ThrowIfAny(CheckDropout(p, xs, dropout));
        return ForwardKernel(p, xs, Full(xs, lengths), initial ?? Zeros(p, xs), every ?? int.MaxValue, dropout ?? DropoutMask.None);
    }

    /// <summary><see cref="Forward"/> with its checks as a value: every problem found, or the result.</summary>
    /// <param name="p">As in <see cref="Forward"/>.</param>
    /// <param name="xs">As in <see cref="Forward"/>.</param>
    /// <param name="lengths">As in <see cref="Forward"/>.</param>
    /// <param name="initial">As in <see cref="Forward"/>.</param>
    /// <param name="every">As in <see cref="Forward"/>.</param>
    /// <param name="dropout">As in <see cref="Forward"/>.</param>
    [Pure]
    public static Validation<Error, StackForward> TryForward(StackParameters p, ImmutableArray<Matrix<double>> xs,
        ImmutableArray<int>? lengths = null, ImmutableArray<ImmutableArray<Matrix<double>>>? initial = null, int? every = null,
        DropoutMask? dropout = null) =>
        Shapes.ToValidation(ThenDropout(CheckForward(p, xs, lengths, initial, every), p, xs, dropout),
            () => ForwardKernel(p, xs, Full(xs, lengths), initial ?? Zeros(p, xs), every ?? int.MaxValue, dropout ?? DropoutMask.None));

    /// <summary>
    /// Back-propagation through the stack, top to bottom: each layer's reverse fold turns the gradient of its outputs
    /// into the gradient of its inputs, which are the outputs of the layer below.
    /// </summary>
    /// <param name="forward">The result of <see cref="Forward"/>.</param>
    /// <param name="dTop">dh_L⟨1⟩..dh_L⟨T⟩, each n_top×m: the gradient each top output receives; entries past a column's end are ignored.</param>
    /// <param name="dFinal">
    /// dFinal[l][k]: the gradient part k of layer l's final state receives (shaped as <see cref="StackForward.Final"/>,
    /// column j at its own last step), as PyTorch's gradient of h_n; omitted, zeros.
    /// </param>
    /// <returns>dx⟨1⟩..dx⟨T⟩, the gradient w.r.t. every initial state, and the summed gradients (read-out entries zero).</returns>
    [Pure]
    public static StackGradient Backward(StackForward forward, ImmutableArray<Matrix<double>> dTop,
        ImmutableArray<ImmutableArray<Matrix<double>>>? dFinal = null)
    {
        Shapes.ThrowIfAny(CheckBackward(forward, dTop, dFinal));
        return BackwardKernel(forward.Parameters, forward.Tapes, dTop, forward.Dropout, dFinal);
    }

    /// <summary><see cref="Backward"/> with its checks as a value.</summary>
    /// <param name="forward">As in <see cref="Backward"/>.</param>
    /// <param name="dTop">As in <see cref="Backward"/>.</param>
    /// <param name="dFinal">As in <see cref="Backward"/>.</param>
    [Pure]
    public static Validation<Error, StackGradient> TryBackward(StackForward forward, ImmutableArray<Matrix<double>> dTop,
        ImmutableArray<ImmutableArray<Matrix<double>>>? dFinal = null) =>
        Shapes.ToValidation(CheckBackward(forward, dTop, dFinal), () => BackwardKernel(forward.Parameters, forward.Tapes, dTop, forward.Dropout, dFinal));

    /// <summary>
    /// The summed softmax cross-entropy of the read-out over every column's own steps,
    /// Σ_j Σ_{t &lt; len_j} −log ŷ⟨t⟩[labels[t][j], j], and its exact gradients.
    /// </summary>
    /// <param name="p">The stack.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, T ≥ 1, each n_x×m.</param>
    /// <param name="labels">
    /// T rows of m labels: labels[t][j] ∈ [0, n_y) for t &lt; len_j, and <see cref="Ragged.Ignored"/> (−1) for t ≥ len_j.
    /// </param>
    /// <param name="lengths">len_j ∈ [1, T] for each of the m columns; omitted, all T.</param>
    /// <param name="initial">initial[l][k]: part k of layer l's initial state, StateRows[k]×m; omitted, zeros.</param>
    /// <param name="every">k ≥ 1: keep each layer's carry every k steps only, as in <see cref="Forward"/>; the same bits.</param>
    /// <param name="dropout">
    /// The dropout masks of this step (<see cref="Dropout.Draw"/>): the loss and gradients of the masked network, the
    /// masks held fixed; omitted, none. Every mask runs on the sequence driver (the layers of a generic cell, on the
    /// generic fold).
    /// </param>
    [Pure]
    public static StackLoss LossAndGradients(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<int>> labels,
        ImmutableArray<int>? lengths = null, ImmutableArray<ImmutableArray<Matrix<double>>>? initial = null, int? every = null,
        DropoutMask? dropout = null)
    {
        Shapes.ThrowIfAny(CheckLoss(p, xs, labels, lengths, initial, every));
        Shapes.ThrowIfAny(CheckDropout(p, xs, dropout));
        return LossKernel(p, xs, labels, Full(xs, lengths), initial ?? Zeros(p, xs), every ?? int.MaxValue, dropout ?? DropoutMask.None);
    }

    /// <summary><see cref="LossAndGradients"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="lengths">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="initial">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="every">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="dropout">As in <see cref="LossAndGradients"/>.</param>
    [Pure]
    public static Validation<Error, StackLoss> TryLossAndGradients(StackParameters p, ImmutableArray<Matrix<double>> xs,
        ImmutableArray<ImmutableArray<int>> labels, ImmutableArray<int>? lengths = null,
        ImmutableArray<ImmutableArray<Matrix<double>>>? initial = null, int? every = null, DropoutMask? dropout = null) =>
        Shapes.ToValidation(ThenDropout(CheckLoss(p, xs, labels, lengths, initial, every), p, xs, dropout),
            () => LossKernel(p, xs, labels, Full(xs, lengths), initial ?? Zeros(p, xs), every ?? int.MaxValue, dropout ?? DropoutMask.None));

    /// <summary>
    /// The loss of <see cref="LossAndGradients"/> alone, without its backward (the same number, bit for bit): for
    /// evaluation, and for finite differences of the loss.
    /// </summary>
    /// <param name="p">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="lengths">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="initial">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="dropout">As in <see cref="LossAndGradients"/>.</param>
    /// <returns>Σ_j Σ_{t &lt; len_j} −log ŷ⟨t⟩[labels[t][j], j].</returns>
    [Pure]
    public static double Loss(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<int>> labels,
        ImmutableArray<int>? lengths = null, ImmutableArray<ImmutableArray<Matrix<double>>>? initial = null, DropoutMask? dropout = null)
    {
        Shapes.ThrowIfAny(CheckLoss(p, xs, labels, lengths, initial, null));
        Shapes.ThrowIfAny(CheckDropout(p, xs, dropout));
        return LossOnly(p, xs, labels, Full(xs, lengths), initial ?? Zeros(p, xs), dropout ?? DropoutMask.None);
    }

    /// <summary><see cref="Loss"/> with its checks as a value.</summary>
    /// <param name="p">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="xs">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="labels">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="lengths">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="initial">As in <see cref="LossAndGradients"/>.</param>
    /// <param name="dropout">As in <see cref="LossAndGradients"/>.</param>
    [Pure]
    public static Validation<Error, double> TryLoss(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<int>> labels,
        ImmutableArray<int>? lengths = null, ImmutableArray<ImmutableArray<Matrix<double>>>? initial = null, DropoutMask? dropout = null) =>
        Shapes.ToValidation(ThenDropout(CheckLoss(p, xs, labels, lengths, initial, null), p, xs, dropout),
            () => LossOnly(p, xs, labels, Full(xs, lengths), initial ?? Zeros(p, xs), dropout ?? DropoutMask.None));

    /// <summary>Checks that the layers are finite, chain (each input size is the output size below) and match the read-out.</summary>
    /// <param name="p">Parameters to check.</param>
    /// <returns>The parameters, or every problem found.</returns>
    [Pure]
    public static Validation<Error, StackParameters> Validate(StackParameters p) => Shapes.ToValidation(CheckParameters(p), () => p);

    // ---- kernels: arguments already checked ----

    private static ImmutableArray<LayerTape> Run(StackParameters p, ImmutableArray<Matrix<double>> xs,
        ImmutableArray<int> lengths, ImmutableArray<ImmutableArray<Matrix<double>>> initial, int every, DropoutMask dropout, Workspace? storage = null)
    {
        var ragged = Ragged.OrFull(lengths, xs.Length);
        var layers = p.Layers.Select((layer, l) => (layer, init: initial[l], l)).ToImmutableArray();
        return Scan.Fold(xs, layers, (inputs, l) =>                                     // h_l = layer l over M_l ⊙ h_{l−1}, h_0 = x
        {
            var tape = l.layer.Run(Masked(inputs, dropout.InputsOf(l.l)), l.init, ragged, reverse: false, every, storage, dropout.RecurrentOf(l.l));
            return (tape.Outputs, tape);
        }).Outputs;
    }

    private static StackForward ForwardKernel(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<int> lengths,
        ImmutableArray<ImmutableArray<Matrix<double>>> initial, int every, DropoutMask dropout, Workspace? storage = null)
    {
        var masks = Ragged.MasksKernel(lengths, xs.Length);
        var tapes = Run(p, xs, lengths, initial, every, dropout, storage);
        var predictions = Masked(tapes[^1].Outputs, dropout.ReadOut)
            .Zip(masks, (h, mask) => Ragged.Keep(mask, Softmax.Predict(p.Wy, p.By, h))).ToImmutableArray();
        return new(p, lengths, tapes, predictions, dropout);
    }

    private static StackGradient BackwardKernel(StackParameters p, ImmutableArray<LayerTape> tapes, ImmutableArray<Matrix<double>> dTop,
        DropoutMask dropout, ImmutableArray<ImmutableArray<Matrix<double>>>? dFinal = null)
    {
        var layers = tapes.Select((tape, l) => (Tape: tape, DFinal: dFinal?[l] ?? [.. tape.Final.Select(f => Matrix<double>.Build.Dense(f.RowCount, f.ColumnCount))], L: l))
            .ToImmutableArray();
        var (dx, grads) = Scan.FoldBack(dTop, layers, (dOutputs, layer) =>         // dh_{l−1} = M_l ⊙ dx of layer l
        {
            var g = layer.Tape.Backward(dOutputs, layer.DFinal);
            return (Masked(g.Dx, dropout.InputsOf(layer.L)), g);
        });
        var head = (Wy: Matrix<double>.Build.Dense(p.Wy.RowCount, p.Wy.ColumnCount), By: Vector<double>.Build.Dense(p.By.Count));
        return new(dx, [.. grads.Select(g => g.DInit)], p with { Layers = [.. grads.Select(g => g.Gradients)], Wy = head.Wy, By = head.By });
    }

    private static StackLoss LossKernel(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<int>> labels,
        ImmutableArray<int> lengths, ImmutableArray<ImmutableArray<Matrix<double>>> initial, int every, DropoutMask dropout)
    {
        if (every >= xs.Length && OnDriver(p, xs, lengths, initial, (t, j) => t < lengths[j] ? labels[t][j] : Ragged.Ignored, inputGradients: true, dropout) is { } fused)
            return new(Ops.CompensatedSum(fused.Losses), fused.Gradients, fused.Dx, fused.DInitial);
        using var storage = new Workspace();                                             // the tapes do not outlive the call
        var tapes = Run(p, xs, lengths, initial, every, dropout, storage);
        var head = ReadOut(p.Wy, p.By, Masked(tapes[^1].Outputs, dropout.ReadOut), labels, lengths);
        var back = BackwardKernel(p, tapes, Masked(head.DStates, dropout.ReadOut), dropout);
        return new(head.Loss, back.Gradients with { Wy = head.DWy, By = head.DBy }, back.Dx, back.DInitial);
    }

    private static double LossOnly(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<int>> labels,
        ImmutableArray<int> lengths, ImmutableArray<ImmutableArray<Matrix<double>>> initial, DropoutMask dropout)
    {
        using var storage = new Workspace();
        return ReadOut(p.Wy, p.By, Masked(Run(p, xs, lengths, initial, int.MaxValue, dropout, storage)[^1].Outputs, dropout.ReadOut), labels, lengths).Loss;
    }

    /// <summary>
    /// The read-out's cross-entropy over the running columns (<see cref="StackDriver.ReadOut(Block, Block, ImmutableArray{Matrix{double}}, ImmutableArray{int}, Func{int, int, int}, int)"/>): the per-example losses
    /// summed in the order (t, j) of the labels (a compensated sum), dWy, dBy and the gradient of each top output.
    /// With every column running it is the read-out of <see cref="Rnn.LossAndGradients"/>, column for column.
    /// </summary>
    private static HeadGradient ReadOut(Matrix<double> wy, Vector<double> by, ImmutableArray<Matrix<double>> states,
        ImmutableArray<ImmutableArray<int>> labels, ImmutableArray<int> lengths)
    {
        var ragged = Ragged.OrFull(lengths, states.Length);
        var (losses, dWy, dBy, dStates) = StackDriver.ReadOut(Block.Of(wy), Block.Of(by), states, ragged,
            (t, j) => t < lengths[j] ? labels[t][j] : Ragged.Ignored, Summation.DefaultThreads);
        return new(Ops.CompensatedSum(losses), dWy.ToMatrix(), dBy.ToVector(), dStates);
    }

    /// <summary>
    /// <paramref name="use"/> of the top layer's outputs of a forward over every step of every column (arguments
    /// checked as <see cref="Forward"/> does), while the storage of the layers' tapes lives.
    /// </summary>
    internal static T Top<T>(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<Matrix<double>>> initial,
        Func<ImmutableArray<Matrix<double>>, T> use)
    {
        Shapes.ThrowIfAny(CheckForward(p, xs, null, initial, null));
        using var storage = new Workspace();
        return use(Run(p, xs, Full(xs, null), initial, int.MaxValue, DropoutMask.None, storage)[^1].Outputs);
    }

    /// <summary>
    /// <paramref name="use"/> of a forward whose tapes live in pooled storage for the duration of the call only: a
    /// forward and its backward inside one function (a language model's loss), with results that reference nothing of
    /// the storage (every result of the forward and the backward is freshly allocated).
    /// </summary>
    internal static T Scoped<T>(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<int> lengths,
        ImmutableArray<ImmutableArray<Matrix<double>>> initial, Func<StackForward, T> use, DropoutMask? dropout = null)
    {
        Shapes.ThrowIfAny(CheckForward(p, xs, lengths, initial, null));
        Shapes.ThrowIfAny(CheckDropout(p, xs, dropout));
        using var storage = new Workspace();
        return use(ForwardKernel(p, xs, lengths, initial, int.MaxValue, dropout ?? DropoutMask.None, storage));
    }

    private static ImmutableArray<int> Full(ImmutableArray<Matrix<double>> xs, ImmutableArray<int>? lengths) =>
        lengths ?? [.. Enumerable.Repeat(xs.Length, xs[0].ColumnCount)];

    private static ImmutableArray<ImmutableArray<Matrix<double>>> Zeros(StackParameters p, ImmutableArray<Matrix<double>> xs) =>
        [.. p.Layers.Select(layer => layer.StateRows.Select(rows => Matrix<double>.Build.Dense(rows, xs[0].ColumnCount)).ToImmutableArray())];
}
