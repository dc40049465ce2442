using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Testing;

/// <summary>
/// A cell to be proven by <see cref="CellLaws"/>: the cell itself, how to draw its parameters for given sizes, and
/// the shapes of its carry. This is all a property suite needs to know about a cell, the library's or a user's.
/// </summary>
/// <typeparam name="TParams">The cell's parameter record.</typeparam>
/// <typeparam name="TCarry">The cell's recurrent state.</typeparam>
/// <typeparam name="TCache">What a step keeps for its backward.</typeparam>
/// <param name="Name">Name shown in failing cases, e.g. <c>Rnn</c> or <c>CoupledLstm</c>.</param>
/// <param name="Cell">The cell.</param>
/// <param name="Parameters">
/// Draws parameters for input size <see cref="Dims.Nx"/> and hidden size <see cref="Dims.Na"/> from the generator;
/// every value must come from the generator so that a case is reproducible from its seed.
/// </param>
/// <param name="StateRows">Rows of each matrix of the carry's Split, in order: [n_a] for RNN and GRU, [n_a, n_a] for LSTM.</param>
public sealed record CellUnderTest<TParams, TCarry, TCache>(
    string Name,
    Cell<TParams, TCarry, TCache> Cell,
    Func<Dims, Random, TParams> Parameters,
    Func<Dims, ImmutableArray<int>> StateRows)
    where TParams : IParameterTree<TParams>
{
    /// <summary>Rows of each output of the cell's step for the given sizes; n_a unless set.</summary>
    public Func<Dims, int> OutputRows { get; init; } = static d => d.Na;

    /// <summary>
    /// The τ of <see cref="Compare.Close(Matrix{double},Matrix{double},double)"/> (|a − b| ≤ τ·max(1, min(|a|, |b|)))
    /// between results that are equal in exact arithmetic but computed in another order (a batch against its columns,
    /// a sum of per-column gradients): 1e-12 unless set. Results computed by the very same operations are compared
    /// bit for bit (<see cref="Compare.Same(Matrix{double},Matrix{double})"/>).
    /// </summary>
    public double Tolerance { get; init; } = 1e-12;

    /// <summary>
    /// How the gradient laws estimate derivatives: unless set, <see cref="GradCheckOptions.Precise"/> (Ridders' method
    /// with a second look at entries too imprecise to be judged; see <see cref="GradientProperty.Tree{T}"/>).
    /// </summary>
    public GradCheckOptions? Numeric { get; init; }

    /// <summary>Draws a case of the given sizes from the shape's seed.</summary>
    /// <param name="shape">Sizes and seed.</param>
    public CellCase<TParams, TCarry> Draw(Shaped shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var (d, random) = (shape.Dims, shape.NewRandom());
        var rows = StateRows(d);
        TCarry State(double scale) => Cell.Join([.. rows.Select(r => Testing.Draw.Matrix(random, r, d.M, scale))]);
        var p = Parameters(d, random);
        var xs = Testing.Draw.Sequence(random, d.T, d.Nx, d.M);
        var init = State(0.5);
        var dOutputs = Testing.Draw.Sequence(random, d.T, OutputRows(d), d.M);
        var dFinal = State(1.0);
        var splitAt = random.Next(1, Math.Max(2, d.T));
        var lengths = Enumerable.Range(0, d.M).Select(_ => random.Next(1, d.T + 1)).ToImmutableArray();
        return new(Name, shape, p, xs, init, dOutputs, dFinal, splitAt, lengths, random.Next());
    }

    /// <summary>Cases with sizes up to <paramref name="max"/>, shrinking toward small sizes (the seed is kept).</summary>
    /// <param name="max">Largest size of any component.</param>
    public Arbitrary<CellCase<TParams, TCarry>> Cases(int max = 8) => Cases(Dims.Smallest, max);

    /// <summary>Cases with sizes between <paramref name="least"/> and <paramref name="max"/>, shrinking toward <paramref name="least"/> (the seed is kept).</summary>
    /// <param name="least">The smallest value of each component, e.g. T ≥ 2 for a cut strictly inside the sequence.</param>
    /// <param name="max">Largest size of any component.</param>
    public Arbitrary<CellCase<TParams, TCarry>> Cases(Dims least, int max = 8)
    {
        var shapes = Shaped.Arbitrary(least, max);
        return Arb.From(shapes.Generator.Select(Draw), c => shapes.Shrinker(c.Shape).Select(Draw));
    }
}

/// <summary>Builds a <see cref="CellUnderTest{TParams,TCarry,TCache}"/> with its type arguments inferred.</summary>
public static class CellUnderTest
{
    /// <summary>A cell to be proven by <see cref="CellLaws"/>.</summary>
    /// <param name="name">Name shown in failing cases.</param>
    /// <param name="cell">The cell.</param>
    /// <param name="parameters">Draws parameters for sizes n_x, n_a from the generator.</param>
    /// <param name="stateRows">Rows of each matrix of the carry's Split, in order.</param>
    public static CellUnderTest<TParams, TCarry, TCache> Of<TParams, TCarry, TCache>(string name, Cell<TParams, TCarry, TCache> cell,
        Func<Dims, Random, TParams> parameters, Func<Dims, ImmutableArray<int>> stateRows)
        where TParams : IParameterTree<TParams> =>
        new(name, cell, parameters, stateRows);

    /// <summary>The vanilla RNN cell (<see cref="Rnn.Cell"/>) with parameters drawn as <see cref="RnnCase"/> does.</summary>
    /// <param name="activation">The cell's non-linearity.</param>
    public static CellUnderTest<RnnParameters, Matrix<double>, RnnCache> Rnn(Activation activation = Activation.Tanh) =>
        Of($"Rnn{activation}", RnnFunctional.Rnn.Cell, (d, random) => RnnCase.DrawParameters(d, random, activation), d => [d.Na]);

    /// <summary>The LSTM cell (<see cref="Lstm.Cell"/>), carry (a⟨t⟩, c⟨t⟩), with parameters drawn as <see cref="LstmCase"/> does.</summary>
    public static CellUnderTest<LstmParameters, LstmState, LstmCache> Lstm() =>
        Of("Lstm", RnnFunctional.Lstm.Cell, LstmCase.DrawParameters, d => [d.Na, d.Na]);

    /// <summary>The GRU cell (<see cref="Gru.Cell"/>), carry h⟨t⟩, with parameters drawn as <see cref="GruCase"/> does.</summary>
    public static CellUnderTest<GruParameters, Matrix<double>, GruCache> Gru() =>
        Of("Gru", RnnFunctional.Gru.Cell, GruCase.DrawParameters, d => [d.Na]);
}

/// <summary>
/// One drawn case of a <see cref="CellUnderTest{TParams,TCarry,TCache}"/>: parameters, a batch of sequences, an initial
/// carry and outside gradients, with the sizes of its <see cref="Shaped"/> (n_x, n_a, m, T) and consistent by
/// construction.
/// </summary>
/// <typeparam name="TParams">The cell's parameter record.</typeparam>
/// <typeparam name="TCarry">The cell's recurrent state.</typeparam>
/// <param name="Name">The cell's name.</param>
/// <param name="Shape">Sizes and seed the case was drawn from.</param>
/// <param name="P">Parameters.</param>
/// <param name="Xs">x⟨1⟩..x⟨T⟩, each n_x×m, entries in (−1, 1).</param>
/// <param name="Init">The carry before step 1; entries in (−0.5, 0.5).</param>
/// <param name="DOutputs">Outside gradients of the outputs ⟨1⟩..⟨T⟩, each output rows×m.</param>
/// <param name="DFinal">Outside gradient of the final carry.</param>
/// <param name="SplitAt">
/// Where the laws cut the sequence in two: 1 ≤ k ≤ T − 1 when T ≥ 2, so that both parts are non-empty and the two
/// sides of a law are different computations; 1 (= T, no cut inside) when T = 1.
/// </param>
/// <param name="Lengths">len_j ∈ [1, T] for each of the m columns, for ragged batches.</param>
/// <param name="DirectionSeed">Seed of the direction of the directional gradient check.</param>
public sealed record CellCase<TParams, TCarry>(
    string Name, Shaped Shape, TParams P, ImmutableArray<Matrix<double>> Xs, TCarry Init,
    ImmutableArray<Matrix<double>> DOutputs, TCarry DFinal, int SplitAt, ImmutableArray<int> Lengths, int DirectionSeed)
{
    /// <inheritdoc />
    public override string ToString() => $"{Name}({Shape})";
}
