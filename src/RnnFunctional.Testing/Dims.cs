using FsCheck;
using FsCheck.Fluent;

namespace RnnFunctional.Testing;

/// <summary>The sizes of a recurrent model and of a batch of sequences.</summary>
/// <param name="Nx">Input size n_x.</param>
/// <param name="Na">Hidden size n_a.</param>
/// <param name="Ny">Number of classes n_y.</param>
/// <param name="M">Batch size m.</param>
/// <param name="T">Sequence length T.</param>
public sealed record Dims(int Nx, int Na, int Ny, int M, int T)
{
    /// <summary>The smallest sizes drawn by default: n_x = n_a = m = T = 1, n_y = 2 (a softmax needs a choice).</summary>
    public static Dims Smallest { get; } = new(1, 1, 2, 1, 1);

    /// <summary>Sizes with every component in [1, max] (n_y in [2, max] so that a softmax has a choice).</summary>
    /// <param name="max">Largest size of any component.</param>
    public static Gen<Dims> Generator(int max = 8) => Generator(Smallest, max);

    /// <summary>
    /// Sizes with every component between that of <paramref name="least"/> and <paramref name="max"/>, for a law
    /// that means nothing below some size: a cut strictly inside a sequence needs T ≥ 2, a batch against its columns
    /// m ≥ 2 (with m = 1 both sides are the same computation).
    /// </summary>
    /// <param name="least">The smallest value of each component, e.g. <c>Dims.Smallest with { T = 2 }</c>; n_y at least 2.</param>
    /// <param name="max">Largest size of any component; at least every component of <paramref name="least"/> (n_y is drawn up to max(least n_y, max)).</param>
    public static Gen<Dims> Generator(Dims least, int max = 8)
    {
        RequireWithin(least, max);
        return from nx in Gen.Choose(least.Nx, max)
               from na in Gen.Choose(least.Na, max)
               from ny in Gen.Choose(least.Ny, Math.Max(least.Ny, max))
               from m in Gen.Choose(least.M, max)
               from t in Gen.Choose(least.T, max)
               select new Dims(nx, na, ny, m, t);
    }

    /// <summary>Smaller sizes, one component at a time, toward the smallest model: first halving, then by one.</summary>
    /// <param name="d">Sizes to shrink.</param>
    public static IEnumerable<Dims> Shrink(Dims d) => Shrink(d, Smallest);

    /// <summary>Smaller sizes, one component at a time, never below <paramref name="least"/>: first halving, then by one.</summary>
    /// <param name="d">Sizes to shrink.</param>
    /// <param name="least">The smallest value of each component.</param>
    public static IEnumerable<Dims> Shrink(Dims d, Dims least)
    {
        ArgumentNullException.ThrowIfNull(d);
        ArgumentNullException.ThrowIfNull(least);
        static IEnumerable<int> Smaller(int n, int min) =>
            new[] { min, (n + min) / 2, n - 1 }.Where(k => k >= min && k < n).Distinct();
        foreach (var k in Smaller(d.T, least.T)) yield return d with { T = k };
        foreach (var k in Smaller(d.M, least.M)) yield return d with { M = k };
        foreach (var k in Smaller(d.Na, least.Na)) yield return d with { Na = k };
        foreach (var k in Smaller(d.Nx, least.Nx)) yield return d with { Nx = k };
        foreach (var k in Smaller(d.Ny, least.Ny)) yield return d with { Ny = k };
    }

    private static void RequireWithin(Dims least, int max)
    {
        ArgumentNullException.ThrowIfNull(least);
        if (least.Nx < 1 || least.Na < 1 || least.Ny < 2 || least.M < 1 || least.T < 1)
            throw new ArgumentOutOfRangeException(nameof(least), least, "expected every smallest size to be at least 1 (n_y at least 2)");
        var largest = new[] { least.Nx, least.Na, least.M, least.T }.Max();
        if (max < largest)
            throw new ArgumentOutOfRangeException(nameof(max), max, $"expected max to be at least {largest}, the largest of the smallest sizes ({least})");
    }

    /// <inheritdoc />
    public override string ToString() => $"n_x={Nx} n_a={Na} n_y={Ny} m={M} T={T}";
}

/// <summary>
/// A test case: sizes plus a seed from which every value is drawn. Shrinking shrinks the sizes and keeps the seed,
/// so a failure shrinks toward the smallest model that still fails and prints as a reproducible pair.
/// </summary>
/// <param name="Dims">The sizes.</param>
/// <param name="Seed">Seed of the values.</param>
public sealed record Shaped(Dims Dims, int Seed)
{
    /// <summary>The generator seeded with <see cref="Seed"/>; each call starts afresh.</summary>
    public Random NewRandom() => new(Seed);

    /// <summary>Cases of sizes up to <paramref name="max"/>, shrinking toward small sizes.</summary>
    /// <param name="max">Largest size of any component.</param>
    public static Arbitrary<Shaped> Arbitrary(int max = 8) => Arbitrary(Dims.Smallest, max);

    /// <summary>Cases of sizes between <paramref name="least"/> and <paramref name="max"/>, shrinking toward <paramref name="least"/>.</summary>
    /// <param name="least">The smallest value of each component (see <see cref="Dims.Generator(Dims,int)"/>).</param>
    /// <param name="max">Largest size of any component.</param>
    public static Arbitrary<Shaped> Arbitrary(Dims least, int max = 8) =>
        Arb.From(
            from dims in Dims.Generator(least, max)
            from seed in Gen.Choose(0, int.MaxValue - 1)
            select new Shaped(dims, seed),
            s => Dims.Shrink(s.Dims, least).Select(d => s with { Dims = d }));

    /// <inheritdoc />
    public override string ToString() => $"{Dims} seed={Seed}";
}
