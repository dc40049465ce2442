using System.Collections.Immutable;

namespace RnnFunctional;

/// <summary>
/// The noise of a function computed in double precision: how far one evaluation of f may stray from the smooth function
/// it computes, measured rather than assumed. A loss whose terms cancel (an inner product of outputs with weights of
/// both signs, a loss of 0.001 made of terms near 1) carries round-off of the terms' size, far above ε·|f|.
/// </summary>
/// <remarks>
/// The estimate follows Moré and Wild's ECnoise ("Estimating computational noise", SIAM J. Sci. Comput. 33, 2011): f is
/// evaluated at seventeen points θ + j·s·v, j = −8…8, along a direction v with entries in [−1, 1] and s = 10⁻⁶, so small that
/// the smooth part of f contributes nothing to a fourth difference (about f⁗·s⁴) while every evaluation rounds
/// differently (where f moves by less than its rounding between the points, s = 10⁻⁴). For independent errors of standard deviation σ, the fourth differences Δ⁴f have mean square
/// σ²·C(8, 4) = 70·σ², so σ² is estimated by the mean of (Δ⁴f)² over the thirteen differences of a direction, divided
/// by 70; a check pools four fixed pseudo-random directions (52 differences, 68 evaluations of f). The directions depend on the shapes only: the estimate
/// never looks at a claimed gradient.
/// </remarks>
internal static class FunctionNoise
{
    /// <summary>The steps s between the points: the first, and the larger one tried when f barely moves at the first.</summary>
    private static readonly double[] Steps = [1e-6, 1e-4];

    /// <summary>Points per direction, θ + j·s·v for j = −8…8: thirteen fourth differences.</summary>
    private const int Points = 17;

    /// <summary>Directions measured by <see cref="Of"/>.</summary>
    private const int Directions = 4;

    /// <summary>Binomial coefficients of the fourth difference; the sum of their squares is 70.</summary>
    private static readonly double[] Fourth = [1, -4, 6, -4, 1];

    /// <summary>σ along one direction: <paramref name="g"/>(t) = f(θ + t·v).</summary>
    /// <param name="g">f along the direction.</param>
    public static double Along(Func<double, double> g) => Sigma([Squares(g)]);

    /// <summary>σ of f at <paramref name="at"/>, the fourth differences along four fixed pseudo-random directions pooled.</summary>
    /// <param name="f">The function of the leaves.</param>
    /// <param name="at">The point.</param>
    public static double Of(Func<ImmutableArray<Leaf>, double> f, ImmutableArray<Leaf> at)
    {
        var random = new Random(20111);
        var parts = new List<(double, int)>();
        for (var direction = 0; direction < Directions; direction++)
        {
            var v = at.Select(leaf => leaf.Values.Select(_ => 2 * random.NextDouble() - 1).ToArray()).ToArray();
            parts.Add(Squares(t => f([.. at.Select((leaf, i) => leaf.WithValues([.. leaf.Values.Select((x, k) => x + t * v[i][k])]))])));
        }
        return Sigma(parts);
    }

    /// <summary>
    /// The sum of the squared fourth differences of g at the points, and their number: at the step 10⁻⁶, or, when more
    /// than a quarter of the neighbouring values are equal (f moves by less than its rounding there, so the differences
    /// would not see it), at 10⁻⁴.
    /// </summary>
    private static (double Sum, int Count) Squares(Func<double, double> g)
    {
        var values = new double[Points];
        foreach (var step in Steps)
        {
            for (var j = 0; j < Points; j++) values[j] = g((j - Points / 2) * step);
            if (Enumerable.Range(1, Points - 1).Count(j => values[j] == values[j - 1]) <= (Points - 1) / 4) break;
        }
        var sum = 0.0;
        for (var i = 0; i + Fourth.Length <= Points; i++)
        {
            var d = 0.0;
            for (var k = 0; k < Fourth.Length; k++) d += Fourth[k] * values[i + k];
            sum += d * d;
        }
        return (sum, Points - Fourth.Length + 1);
    }

    /// <summary>√(Σ (Δ⁴f)² / (count · 70)), 0 when not finite.</summary>
    private static double Sigma(IEnumerable<(double Sum, int Count)> parts)
    {
        var (sum, count) = parts.Aggregate((0.0, 0), (a, p) => (a.Item1 + p.Sum, a.Item2 + p.Count));
        var sigma = Math.Sqrt(sum / count / 70);
        return double.IsFinite(sigma) ? sigma : 0;
    }
}
