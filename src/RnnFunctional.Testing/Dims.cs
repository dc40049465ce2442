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
    /// <summary>Sizes with every component in [1, max] (n_y in [2, max] so that a softmax has a choice).</summary>
    /// <param name="max">Largest size of any component.</param>
    public static Gen<Dims> Generator(int max = 8) =>
        from nx in Gen.Choose(1, max)
        from na in Gen.Choose(1, max)
        from ny in Gen.Choose(2, Math.Max(2, max))
        from m in Gen.Choose(1, max)
        from t in Gen.Choose(1, max)
        select new Dims(nx, na, ny, m, t);

    /// <summary>Smaller sizes, one component at a time, toward the smallest model: first halving, then by one.</summary>
    /// <param name="d">Sizes to shrink.</param>
    public static IEnumerable<Dims> Shrink(Dims d)
    {
        static IEnumerable<int> Smaller(int n, int min) =>
            new[] { min, (n + min) / 2, n - 1 }.Where(k => k >= min && k < n).Distinct();
        foreach (var k in Smaller(d.T, 1)) yield return d with { T = k };
        foreach (var k in Smaller(d.M, 1)) yield return d with { M = k };
        foreach (var k in Smaller(d.Na, 1)) yield return d with { Na = k };
        foreach (var k in Smaller(d.Nx, 1)) yield return d with { Nx = k };
        foreach (var k in Smaller(d.Ny, 2)) yield return d with { Ny = k };
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
    public static Arbitrary<Shaped> Arbitrary(int max = 8) =>
        Arb.From(
            from dims in Dims.Generator(max)
            from seed in Gen.Choose(0, int.MaxValue - 1)
            select new Shaped(dims, seed),
            s => Dims.Shrink(s.Dims).Select(d => s with { Dims = d }));

    /// <inheritdoc />
    public override string ToString() => $"{Dims} seed={Seed}";
}
