using FsCheck;
using FsCheck.Fluent;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// Sizes with T ≥ 2 and a cut strictly inside the sequence, 1 ≤ At ≤ T − 1: both parts are non-empty, so a law over
/// xs ++ ys never compares a computation with itself.
/// </summary>
/// <param name="Shape">Sizes (T ≥ 2) and seed.</param>
/// <param name="At">The length of the first part.</param>
public sealed record Cut(Shaped Shape, int At)
{
    private static readonly Arbitrary<Shaped> Shapes = Shaped.Arbitrary(Dims.Smallest with { T = 2 }, 8);

    /// <summary>Cuts of sizes up to 8, shrinking the sizes (never below T = 2) with the cut kept inside.</summary>
    public static Arbitrary<Cut> Arbitrary() =>
        Arb.From(
            from shape in Shapes.Generator
            from at in Gen.Choose(1, shape.Dims.T - 1)
            select new Cut(shape, at),
            c => Shapes.Shrinker(c.Shape).Select(s => new Cut(s, Math.Min(c.At, s.Dims.T - 1)))
                .Concat(c.At > 1 ? [c with { At = 1 }] : []));

    /// <inheritdoc />
    public override string ToString() => $"Cut(at {At}, {Shape})";
}

/// <summary>Cuts strictly inside the sequence, and batches of at least two columns, for the laws that need them.</summary>
public sealed class LawArbitraries
{
    private static readonly Dims TwoColumns = Dims.Smallest with { M = 2 };

    public static Arbitrary<Cut> Cuts() => Cut.Arbitrary();

    public static Arbitrary<RnnCase> Rnns() => RnnCase.Arbitrary(TwoColumns, 8);

    public static Arbitrary<LstmCase> Lstms() => LstmCase.Arbitrary(TwoColumns, 8);

    public static Arbitrary<GruCase> Grus() => GruCase.Arbitrary(TwoColumns, 8);
}
