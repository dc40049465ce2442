using System.Collections.Immutable;
using System.Diagnostics.Contracts;

namespace RnnFunctional;

/// <summary>
/// A random-number generator as an immutable value (SplitMix64): every draw returns the number and the next state,
/// so randomness is passed explicitly like any other argument and the same seed always gives the same draws.
/// </summary>
/// <param name="State">The 64-bit state.</param>
public readonly record struct RandomState(ulong State)
{
    private const ulong Gamma = 0x9E3779B97F4A7C15UL;

    /// <summary>The state for a seed; distinct seeds give unrelated streams.</summary>
    /// <param name="seed">Any integer.</param>
    [Pure]
    public static RandomState Seeded(long seed) => new(Mix(unchecked((ulong)seed) ^ 0x5DEECE66DUL));

    /// <summary>
    /// The state of stream <paramref name="stream"/> of this one: a pure function of the state and the number, distinct
    /// numbers giving unrelated streams (step k of a training run draws from <c>Seeded(seed).Fork(k)</c>).
    /// </summary>
    /// <param name="stream">Any integer.</param>
    [Pure]
    public RandomState Fork(long stream) => new(Mix(State ^ Mix(unchecked((ulong)stream * Gamma + 0x2545F4914F6CDD1DUL))));

    /// <summary>64 uniformly distributed bits and the next state.</summary>
    [Pure]
    public (ulong Value, RandomState Next) NextBits()
    {
        var next = unchecked(State + Gamma);
        return (Mix(next), new RandomState(next));
    }

    /// <summary>A number uniform in [0, 1) with 53 random bits, and the next state.</summary>
    [Pure]
    public (double Value, RandomState Next) NextDouble()
    {
        var (bits, next) = NextBits();
        return ((bits >> 11) * (1.0 / (1UL << 53)), next);
    }

    /// <summary>An integer uniform in [0, n) (without modulo bias), and the next state.</summary>
    /// <param name="n">n ≥ 1.</param>
    [Pure]
    public (int Value, RandomState Next) NextInt(int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, $"expected n to be at least 1 but got {n}");
        var limit = ulong.MaxValue - ulong.MaxValue % (ulong)n;
        var state = this;
        while (true)
        {
            (var bits, state) = state.NextBits();
            if (bits < limit) return ((int)(bits % (ulong)n), state);
        }
    }

    /// <summary>A uniformly random permutation of <paramref name="items"/> (Fisher–Yates), and the next state.</summary>
    /// <param name="items">Any items; left untouched.</param>
    [Pure]
    public (ImmutableArray<T> Shuffled, RandomState Next) Shuffle<T>(ImmutableArray<T> items)
    {
        Shapes.ThrowIfDefault(items, nameof(items), "a list of items");
        var array = items.ToArray();
        var state = this;
        for (var i = array.Length - 1; i > 0; i--)
        {
            (var k, state) = state.NextInt(i + 1);
            (array[i], array[k]) = (array[k], array[i]);
        }
        return (System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(array), state);
    }

    private static ulong Mix(ulong z)
    {
        unchecked
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
