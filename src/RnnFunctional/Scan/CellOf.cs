using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>The built-in cells as values, made from their step on matrices and its backward: the carry, its split and the output are the same for every cell of a kind.</summary>
internal static class CellOf
{
    /// <summary>
    /// A cell whose carry and output are h⟨t⟩: <paramref name="step"/>, (p, x⟨t⟩, h⟨t−1⟩) → (h⟨t⟩, cache), and
    /// <paramref name="back"/>, (dh, cache) → (dx⟨t⟩, dh⟨t−1⟩, gradients), whose dh is the carry's gradient plus the output's.
    /// </summary>
    public static Cell<TParams, Matrix<double>, TCache> Hidden<TParams, TCache>(
        Func<TParams, Matrix<double>, Matrix<double>, (Matrix<double> H, TCache Cache)> step,
        Func<Matrix<double>, TCache, (Matrix<double> Dxt, Matrix<double> DhPrev, TParams Gradients)> back)
        where TParams : IParameterTree<TParams> =>
        new((p, hPrev, xt) => { var (h, cache) = step(p, xt, hPrev); return new(h, h, cache); },
            (cache, dhNext, dhOut) => { var (dxt, dhPrev, gradients) = back(Ops.Add(dhNext, dhOut), cache); return new(dhPrev, dxt, gradients); },
            h => [h],
            parts => parts[0]);

    /// <summary>
    /// A cell whose carry is an <see cref="LstmState"/> (h⟨t⟩, c⟨t⟩) and whose output is h⟨t⟩: <paramref name="step"/>,
    /// (p, x⟨t⟩, h⟨t−1⟩, c⟨t−1⟩) → ((h⟨t⟩, c⟨t⟩), cache), and <paramref name="back"/>, (dh, dc, cache) → (dx⟨t⟩,
    /// dh⟨t−1⟩, dc⟨t−1⟩, gradients), whose dh is the carry's gradient plus the output's.
    /// </summary>
    public static Cell<TParams, LstmState, TCache> Lstm<TParams, TCache>(
        Func<TParams, Matrix<double>, Matrix<double>, Matrix<double>, (LstmState Next, TCache Cache)> step,
        Func<Matrix<double>, Matrix<double>, TCache, (Matrix<double> Dxt, Matrix<double> DhPrev, Matrix<double> DcPrev, TParams Gradients)> back)
        where TParams : IParameterTree<TParams> =>
        new((p, carry, xt) => { var (next, cache) = step(p, xt, carry.A, carry.C); return new(next, next.A, cache); },
            (cache, dNext, dhOut) =>
            {
                var (dxt, dhPrev, dcPrev, gradients) = back(Ops.Add(dNext.A, dhOut), dNext.C, cache);
                return new(new LstmState(dhPrev, dcPrev), dxt, gradients);
            },
            s => [s.A, s.C],
            parts => new(parts[0], parts[1]));
}
