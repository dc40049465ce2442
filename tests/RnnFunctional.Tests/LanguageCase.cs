using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// A next-token problem drawn from a <see cref="Shaped"/>: an RNN over V = n_y tokens (n_x = n_y), m items of
/// random lengths 0..T−1 (so the batch is ragged, with 1..T steps per column), an initial state and a random
/// gradient-shaped tree.
/// </summary>
public sealed record LanguageCase
{
    public LanguageCase(Shaped shape)
    {
        Shape = shape;
        var (d, random) = (shape.Dims, shape.NewRandom());
        V = d.Ny;
        var w = 1.5 / Math.Sqrt(d.Na + V);
        P = new RnnParameters(Draw.Matrix(random, d.Na, V, w), Draw.Matrix(random, d.Na, d.Na, w), Draw.Vector(random, d.Na, 0.5),
                              Draw.Matrix(random, V, d.Na, 1.5 / Math.Sqrt(d.Na)), Draw.Vector(random, V, 0.5));
        Items = [.. Enumerable.Range(0, d.M).Select(_ => Enumerable.Range(0, random.Next(d.T)).Select(_ => random.Next(V)).ToImmutableArray())];
        Batch = TokenBatch.ForNextToken(Items);
        A0 = Draw.Matrix(random, d.Na, d.M, 0.5);
        Direction = Tree.Map(P, _ => 2 * random.NextDouble() - 1);
        Seed = random.Next();
        var tokens = new Shaped(d with { Nx = V }, random.Next());
        Lstm = new LstmCase(tokens).P;
        Gru = new GruCase(tokens).P;
        C0 = Draw.Matrix(random, d.Na, d.M, 0.5);
        Stack = StackParameters.Initialize([Layer.Lstm(V, d.Na, random.Next()), Layer.Gru(d.Na, d.Na, random.Next())], V, random.Next());
    }

    /// <summary>Two layers, an LSTM over V tokens under a GRU, with a read-out over V tokens.</summary>
    public StackParameters Stack { get; }

    /// <summary>A non-zero initial state of <see cref="Stack"/>: (a, c) of the LSTM, a of the GRU.</summary>
    public ImmutableArray<ImmutableArray<Matrix<double>>> StackInit => [[A0, C0], [A0 * 0.5]];

    /// <summary>An LSTM over V tokens, drawn as <see cref="LstmCase"/> draws its parameters.</summary>
    public LstmParameters Lstm { get; }

    /// <summary>A GRU over V tokens, drawn as <see cref="GruCase"/> draws its parameters.</summary>
    public GruParameters Gru { get; }

    /// <summary>A non-zero initial memory cell for the LSTM, n_a×m.</summary>
    public Matrix<double> C0 { get; }

    public Shaped Shape { get; }

    /// <summary>V, the number of tokens.</summary>
    public int V { get; }

    /// <summary>The RNN: Wax n_a×V, Waa n_a×n_a, Ba n_a, Wya V×n_a, By V.</summary>
    public RnnParameters P { get; }

    /// <summary>m items of 0..T−1 tokens in [0, V).</summary>
    public ImmutableArray<ImmutableArray<int>> Items { get; }

    /// <summary>The items as a ragged next-token batch (item j has Items[j].Length + 1 steps).</summary>
    public TokenBatch Batch { get; }

    /// <summary>A non-zero initial state, n_a×m.</summary>
    public Matrix<double> A0 { get; }

    /// <summary>A random tree shaped like <see cref="P"/>, entries in (−1, 1).</summary>
    public RnnParameters Direction { get; }

    /// <summary>A number in [0, n) drawn from <see cref="Seed"/> (the same for a given case).</summary>
    public int Random(int n) => new Random(Seed).Next(n);

    /// <summary>A further seed for draws made by a test.</summary>
    public int Seed { get; }

    public SequenceModel<RnnParameters, Matrix<double>> Model => LanguageModel.Rnn(V);

    public static Arbitrary<LanguageCase> Arbitrary(int max = 8) =>
        Arb.From(Shaped.Arbitrary(max).Generator.Select(s => new LanguageCase(s)),
                 c => Shaped.Arbitrary(max).Shrinker(c.Shape).Select(s => new LanguageCase(s)));

    public override string ToString() => $"LanguageCase({Shape})";
}

public sealed class LanguageArbitraries
{
    public static Arbitrary<LanguageCase> Cases() => LanguageCase.Arbitrary(8);
}

/// <summary>Snapshots shared by the training tests (comparisons are <see cref="RnnFunctional.Testing.Compare"/>).</summary>
internal static class Bits
{
    /// <summary>The IEEE-754 bit patterns of every entry of a tree, for bit-for-bit comparisons.</summary>
    public static long[] Of<T>(T tree) where T : IParameterTree<T> => [.. Tree.Flatten(tree).Select(BitConverter.DoubleToInt64Bits)];
}
