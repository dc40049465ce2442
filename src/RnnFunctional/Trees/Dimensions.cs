using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>Helpers for building parameter records of given sizes.</summary>
internal static class Dimensions
{
    public static void RequirePositive(params (string Name, int Value)[] sizes)
    {
        foreach (var (name, value) in sizes)
            foreach (var problem in Shapes.Positive(name, value)) throw new ArgumentOutOfRangeException(name, value, problem.Message);
    }

    /// <summary>A generator of matrices with entries uniform in (−bound, bound), deterministic for a seed.</summary>
    public static Func<int, int, Matrix<double>> Uniform(int seed, double bound)
    {
        var random = new Random(seed);
        return (rows, columns) => Matrix<double>.Build.Dense(rows, columns, (_, _) => (2 * random.NextDouble() - 1) * bound);
    }
}
