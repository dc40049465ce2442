using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Testing;

/// <summary>
/// A well-shaped vanilla-RNN problem drawn from a <see cref="Shaped"/>: parameters, a sequence, an initial state,
/// labels and outside gradients, all consistent by construction.
/// </summary>
public sealed record RnnCase
{
    /// <summary>Draws every value of the case from <paramref name="shape"/>'s seed.</summary>
    /// <param name="shape">Sizes and seed.</param>
    /// <param name="activation">Non-linearity of the cell.</param>
    public RnnCase(Shaped shape, Activation activation = Activation.Tanh)
    {
        Shape = shape;
        var (d, random) = (shape.Dims, shape.NewRandom());
        P = DrawParameters(d, random, activation);
        Xs = Draw.Sequence(random, d.T, d.Nx, d.M);
        A0 = Draw.Matrix(random, d.Na, d.M, 0.5);
        Labels = Draw.Labels(random, d.T, d.M, d.Ny);
        Da = Draw.Sequence(random, d.T, d.Na, d.M);
    }

    /// <summary>
    /// Parameters for the sizes <paramref name="d"/>: the cell's weights uniform in ±1.5/√(n_a+n_x), the read-out's
    /// in ±1.5/√n_a, the biases in ±0.5, so that tanh is neither linear nor saturated.
    /// </summary>
    /// <param name="d">Sizes n_x, n_a, n_y.</param>
    /// <param name="random">The generator (advanced by the draw).</param>
    /// <param name="activation">Non-linearity of the cell.</param>
    public static RnnParameters DrawParameters(Dims d, Random random, Activation activation = Activation.Tanh)
    {
        ArgumentNullException.ThrowIfNull(d);
        ArgumentNullException.ThrowIfNull(random);
        var w = 1.5 / Math.Sqrt(d.Na + d.Nx);
        return new RnnParameters(Draw.Matrix(random, d.Na, d.Nx, w), Draw.Matrix(random, d.Na, d.Na, w), Draw.Vector(random, d.Na, 0.5),
                                 Draw.Matrix(random, d.Ny, d.Na, 1.5 / Math.Sqrt(d.Na)), Draw.Vector(random, d.Ny, 0.5)) { Activation = activation };
    }

    /// <summary>Sizes and seed the case was drawn from.</summary>
    public Shaped Shape { get; }

    /// <summary>Parameters: Wax n_a×n_x, Waa n_a×n_a, Ba n_a, Wya n_y×n_a, By n_y.</summary>
    public RnnParameters P { get; }

    /// <summary>x⟨1⟩..x⟨T⟩, each n_x×m, entries in (−1, 1).</summary>
    public ImmutableArray<Matrix<double>> Xs { get; }

    /// <summary>a⟨0⟩, n_a×m.</summary>
    public Matrix<double> A0 { get; }

    /// <summary>T rows of m labels in [0, n_y).</summary>
    public ImmutableArray<ImmutableArray<int>> Labels { get; }

    /// <summary>Outside gradients da⟨1⟩..da⟨T⟩, each n_a×m: the weights of the scalar Σ_t ⟨da⟨t⟩, a⟨t⟩⟩.</summary>
    public ImmutableArray<Matrix<double>> Da { get; }

    /// <summary>Cases with sizes up to <paramref name="max"/>, shrinking toward small sizes.</summary>
    /// <param name="max">Largest size of any component.</param>
    public static Arbitrary<RnnCase> Arbitrary(int max = 8) => Arbitrary(Dims.Smallest, max);

    /// <summary>Cases with sizes between <paramref name="least"/> and <paramref name="max"/>, shrinking toward <paramref name="least"/>.</summary>
    /// <param name="least">The smallest value of each component, e.g. m ≥ 2 for a batch against its columns.</param>
    /// <param name="max">Largest size of any component.</param>
    public static Arbitrary<RnnCase> Arbitrary(Dims least, int max = 8)
    {
        var shapes = Shaped.Arbitrary(least, max);
        return Arb.From(shapes.Generator.Select(s => new RnnCase(s)), c => shapes.Shrinker(c.Shape).Select(s => new RnnCase(s)));
    }

    /// <inheritdoc />
    public override string ToString() => $"RnnCase({Shape})";
}
