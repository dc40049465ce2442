using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Testing;

/// <summary>The cells a generated layer can be made of.</summary>
public enum CellKind
{
    /// <summary>The vanilla RNN with tanh.</summary>
    RnnTanh,

    /// <summary>The vanilla RNN with ReLU.</summary>
    RnnRelu,

    /// <summary>The LSTM.</summary>
    Lstm,

    /// <summary>The GRU.</summary>
    Gru,

    /// <summary>The peephole LSTM.</summary>
    PeepholeLstm,

    /// <summary>The layer-normalized LSTM.</summary>
    LayerNormLstm,

    /// <summary>The layer-normalized GRU.</summary>
    LayerNormGru,

    /// <summary>The LSTM with a projection of n_p ∈ [1, n_a] rows.</summary>
    ProjectedLstm,
}

/// <summary>The architecture of one generated layer: one cell, or a bidirectional pair of cells.</summary>
/// <param name="Cell">The cell (of the forward direction, when bidirectional).</param>
/// <param name="Reverse">The cell of the reverse direction; null for a one-directional layer.</param>
public sealed record LayerSpec(CellKind Cell, CellKind? Reverse = null)
{
    /// <summary>A one-directional layer of <paramref name="cell"/>.</summary>
    /// <param name="cell">The cell.</param>
    public static LayerSpec Uni(CellKind cell) => new(cell);

    /// <summary>A bidirectional layer.</summary>
    /// <param name="forward">The cell scanning first to last.</param>
    /// <param name="reverse">The cell scanning last to first.</param>
    public static LayerSpec Bi(CellKind forward, CellKind reverse) => new(forward, reverse);

    /// <inheritdoc />
    public override string ToString() => Reverse is { } r ? $"Bi({Cell}, {r})" : Cell.ToString();
}

/// <summary>
/// A well-shaped stack problem drawn from a <see cref="Shaped"/>: layers of the given architecture (hidden sizes
/// drawn in [1, n_a] per direction), a read-out, a sequence, lengths (all T unless ragged), initial states, labels
/// (<see cref="Ragged.Ignored"/> past each column's end) and outside gradients of the top layer, all consistent by
/// construction. Shrinking shrinks the sizes and keeps the seed.
/// </summary>
public sealed record StackCase
{
    /// <summary>Draws every value of the case from <paramref name="shape"/>'s seed.</summary>
    /// <param name="shape">Sizes (n_x, the largest n_a, n_y, m, T) and seed.</param>
    /// <param name="architecture">One spec per layer, bottom first.</param>
    /// <param name="ragged">Whether each column draws its own length in [1, T].</param>
    public StackCase(Shaped shape, ImmutableArray<LayerSpec> architecture, bool ragged)
    {
        ArgumentNullException.ThrowIfNull(shape);
        (Shape, Architecture, IsRagged) = (shape, architecture, ragged);
        var (d, random) = (shape.Dims, shape.NewRandom());
        var layers = Scan.Fold(d.Nx, architecture, (input, spec) =>
        {
            var layer = spec.Reverse is { } reverse
                ? Layer.Bidirectional(DrawLayer(random, spec.Cell, input, random.Next(1, d.Na + 1)),
                                      DrawLayer(random, reverse, input, random.Next(1, d.Na + 1)))
                : DrawLayer(random, spec.Cell, input, random.Next(1, d.Na + 1));
            return (layer.OutputSize, layer);
        }).Outputs;
        var top = layers[^1].OutputSize;
        P = new StackParameters(layers, Draw.Matrix(random, d.Ny, top, 1.5 / Math.Sqrt(top)), Draw.Vector(random, d.Ny, 0.5));
        Xs = Draw.Sequence(random, d.T, d.Nx, d.M);
        Lengths = [.. Enumerable.Range(0, d.M).Select(_ => ragged ? random.Next(1, d.T + 1) : d.T)];
        Initial = [.. layers.Select(layer => layer.StateRows.Select(rows => Draw.Matrix(random, rows, d.M, 0.5)).ToImmutableArray())];
        Labels = [.. Enumerable.Range(0, d.T).Select(t => Lengths.Select(length => t < length ? random.Next(d.Ny) : Ragged.Ignored).ToImmutableArray())];
        DTop = Draw.Sequence(random, d.T, top, d.M);
        DFinal = [.. layers.Select(layer => layer.StateRows.Select(rows => Draw.Matrix(random, rows, d.M, 1.0)).ToImmutableArray())];
    }

    /// <summary>Sizes and seed the case was drawn from.</summary>
    public Shaped Shape { get; }

    /// <summary>One spec per layer, bottom first.</summary>
    public ImmutableArray<LayerSpec> Architecture { get; }

    /// <summary>Whether the lengths were drawn (else they are all T).</summary>
    public bool IsRagged { get; }

    /// <summary>The stack; the bottom layer takes n_x inputs, the read-out gives n_y classes.</summary>
    public StackParameters P { get; }

    /// <summary>x⟨1⟩..x⟨T⟩, each n_x×m, entries in (−1, 1) (past a column's end too: they must be ignored).</summary>
    public ImmutableArray<Matrix<double>> Xs { get; }

    /// <summary>len_j ∈ [1, T] for each column (all T unless ragged).</summary>
    public ImmutableArray<int> Lengths { get; }

    /// <summary>The lengths to pass to <see cref="Stack"/>: <see cref="Lengths"/> when ragged, else null (omitted).</summary>
    public ImmutableArray<int>? LengthsArgument => IsRagged ? Lengths : null;

    /// <summary>Initial[l][k]: part k of layer l's initial state, StateRows[k]×m, entries in (−0.5, 0.5).</summary>
    public ImmutableArray<ImmutableArray<Matrix<double>>> Initial { get; }

    /// <summary>T rows of m labels: a class in [0, n_y) before each column's end, <see cref="Ragged.Ignored"/> after.</summary>
    public ImmutableArray<ImmutableArray<int>> Labels { get; }

    /// <summary>Outside gradients of the top layer's outputs, each n_top×m (past a column's end too: they must be ignored).</summary>
    public ImmutableArray<Matrix<double>> DTop { get; }

    /// <summary>DFinal[l][k]: outside gradient of part k of layer l's final state, StateRows[k]×m, entries in (−1, 1).</summary>
    public ImmutableArray<ImmutableArray<Matrix<double>>> DFinal { get; }

    /// <summary>Cases of the given architecture with sizes up to <paramref name="max"/>, shrinking toward small sizes.</summary>
    /// <param name="architecture">One spec per layer, bottom first.</param>
    /// <param name="ragged">Whether each column draws its own length.</param>
    /// <param name="max">Largest size of any component.</param>
    public static Arbitrary<StackCase> Arbitrary(ImmutableArray<LayerSpec> architecture, bool ragged, int max = 8) =>
        Arbitrary(architecture, ragged, Dims.Smallest, max);

    /// <summary>Cases of the given architecture with sizes between <paramref name="least"/> and <paramref name="max"/>, shrinking toward <paramref name="least"/>.</summary>
    /// <param name="architecture">One spec per layer, bottom first.</param>
    /// <param name="ragged">Whether each column draws its own length.</param>
    /// <param name="least">The smallest value of each size (n_a is the largest hidden size), e.g. m ≥ 2 for a batch against its columns.</param>
    /// <param name="max">Largest size of any component.</param>
    public static Arbitrary<StackCase> Arbitrary(ImmutableArray<LayerSpec> architecture, bool ragged, Dims least, int max = 8)
    {
        var shapes = Shaped.Arbitrary(least, max);
        return Arb.From(shapes.Generator.Select(s => new StackCase(s, architecture, ragged)),
                        c => shapes.Shrinker(c.Shape).Select(s => new StackCase(s, architecture, ragged)));
    }

    /// <summary>
    /// A layer of the given cell with parameters drawn at the scale of <see cref="RnnCase"/>, <see cref="LstmCase"/>
    /// and <see cref="GruCase"/>: weights uniform in ±1.5/√(n_a+n_x), biases (and peephole weights) in ±0.5, layer-norm gains in 1 ± 0.5 with ε = 1 (no normalization amplifies, so
    /// finite differences resolve the loss; see LayerNormLstmParameters.Epsilon).
    /// </summary>
    /// <param name="random">The generator.</param>
    /// <param name="cell">The cell.</param>
    /// <param name="inputSize">n_x of the layer.</param>
    /// <param name="hiddenSize">n_a of the layer.</param>
    public static Layer DrawLayer(Random random, CellKind cell, int inputSize, int hiddenSize)
    {
        ArgumentNullException.ThrowIfNull(random);
        var (na, nx, w) = (hiddenSize, inputSize, 1.5 / Math.Sqrt(hiddenSize + inputSize));
        var (noWeights, noBias) = (Matrix<double>.Build.Dense(1, na), Vector<double>.Build.Dense(1)); // an unused read-out
        Matrix<double> Weights(int rows, int columns) => Draw.Matrix(random, rows, columns, w);
        Vector<double> Bias(int length) => Draw.Vector(random, length, 0.5);
        Vector<double> Gain(int length) => Draw.Vector(random, length, 0.5).Add(1.0);
        return cell switch
        {
            CellKind.RnnTanh or CellKind.RnnRelu => Layer.Rnn(
                new RnnParameters(Weights(na, nx), Weights(na, na), Bias(na), noWeights, noBias)
                { Activation = cell == CellKind.RnnTanh ? Activation.Tanh : Activation.Relu }),
            CellKind.Lstm => Layer.Lstm(new LstmParameters(Weights(na, na + nx), Bias(na), Weights(na, na + nx), Bias(na),
                                                           Weights(na, na + nx), Bias(na), Weights(na, na + nx), Bias(na), noWeights, noBias)),
            CellKind.Gru => Layer.Gru(new GruParameters(Weights(3 * na, nx), Weights(3 * na, na), Bias(3 * na), Bias(3 * na), noWeights, noBias)),
            CellKind.PeepholeLstm => Layer.PeepholeLstm(new PeepholeLstmParameters(Weights(na, na + nx), Bias(na), Weights(na, na + nx), Bias(na),
                Weights(na, na + nx), Bias(na), Weights(na, na + nx), Bias(na), Bias(na), Bias(na), Bias(na), noWeights, noBias)),
            CellKind.LayerNormLstm => Layer.LayerNormLstm(new LayerNormLstmParameters(Weights(4 * na, nx), Weights(4 * na, na), Bias(4 * na),
                Gain(4 * na), Gain(4 * na), Gain(na), Bias(na), noWeights, noBias) { Epsilon = 1 }),
            CellKind.LayerNormGru => Layer.LayerNormGru(new LayerNormGruParameters(Weights(3 * na, nx), Weights(3 * na, na), Bias(3 * na), Bias(3 * na),
                Gain(3 * na), Gain(3 * na), noWeights, noBias) { Epsilon = 1 }),
            CellKind.ProjectedLstm => ProjectedLayer(random, nx, na, w),
            _ => throw new ArgumentOutOfRangeException(nameof(cell), cell, "expected a known cell kind"),
        };
    }

    private static Layer ProjectedLayer(Random random, int nx, int na, double w)
    {
        var np = random.Next(1, na + 1);
        return Layer.ProjectedLstm(new ProjectedLstmParameters(Draw.Matrix(random, 4 * na, nx, w), Draw.Matrix(random, 4 * na, np, w),
            Draw.Vector(random, 4 * na, 0.5), Draw.Vector(random, 4 * na, 0.5), Draw.Matrix(random, np, na, 1.5 / Math.Sqrt(na)),
            Matrix<double>.Build.Dense(1, np), Vector<double>.Build.Dense(1)));
    }

    /// <inheritdoc />
    public override string ToString() => $"StackCase([{string.Join(", ", Architecture)}], {(IsRagged ? $"lengths [{string.Join(", ", Lengths)}]" : "full")}, {Shape})";
}

/// <summary>
/// A ragged batch for one vanilla-RNN cell: an <see cref="RnnCase"/> plus a length in [1, T] for each column and
/// labels that are <see cref="Ragged.Ignored"/> past each column's end.
/// </summary>
public sealed record RaggedCase
{
    /// <summary>Draws the case from <paramref name="shape"/>'s seed.</summary>
    /// <param name="shape">Sizes and seed.</param>
    /// <param name="activation">Non-linearity of the cell.</param>
    public RaggedCase(Shaped shape, Activation activation = Activation.Tanh)
    {
        ArgumentNullException.ThrowIfNull(shape);
        Rnn = new RnnCase(shape, activation);
        var (d, random) = (shape.Dims, new Random(shape.Seed ^ 0x5bd1e995));
        Lengths = [.. Enumerable.Range(0, d.M).Select(_ => random.Next(1, d.T + 1))];
        Labels = [.. Rnn.Labels.Select((row, t) => row.Select((label, j) => t < Lengths[j] ? label : Ragged.Ignored).ToImmutableArray())];
    }

    /// <summary>Parameters, inputs, a⟨0⟩ and outside gradients (their entries past a column's end must be ignored).</summary>
    public RnnCase Rnn { get; }

    /// <summary>len_j ∈ [1, T] for each of the m columns.</summary>
    public ImmutableArray<int> Lengths { get; }

    /// <summary>The labels of <see cref="Rnn"/> with <see cref="Ragged.Ignored"/> past each column's end.</summary>
    public ImmutableArray<ImmutableArray<int>> Labels { get; }

    /// <summary>Cases with sizes up to <paramref name="max"/>, shrinking toward small sizes.</summary>
    /// <param name="max">Largest size of any component.</param>
    public static Arbitrary<RaggedCase> Arbitrary(int max = 8) =>
        Arb.From(Shaped.Arbitrary(max).Generator.Select(s => new RaggedCase(s)),
                 c => Shaped.Arbitrary(max).Shrinker(c.Rnn.Shape).Select(s => new RaggedCase(s)));

    /// <inheritdoc />
    public override string ToString() => $"RaggedCase(lengths [{string.Join(", ", Lengths)}], {Rnn.Shape})";
}
