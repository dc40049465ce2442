using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>Shared pieces of the gradient properties of the LSTM and GRU.</summary>
internal static class GradientChecks
{
    /// <summary>
    /// Every entry against <see cref="GradCheckOptions.Precise"/>: Ridders' estimate from h = 1e-2, made again from
    /// larger first steps where round-off alone could carry it past the bar of <see cref="GradientProperty.Tolerance"/>.
    /// </summary>
    /// <remarks>
    /// The LSTM and GRU reach gate gradients of about 1e-9 (an input gate shut, a unit that barely reaches the loss),
    /// where the bar asks the estimate for an absolute error of about 1e-14 while a loss of 16 is known to one ulp,
    /// 3.6e-15. From h = 1e-2 Ridders' method then misses by 1e-13 with an error estimate of its own that does not
    /// warn; from h = 0.3 it is within the bar.
    /// </remarks>
    /// <param name="f">The scalar as a function of the leaves.</param>
    /// <param name="at">The point.</param>
    /// <param name="gradient">The claimed gradient.</param>
    public static GradCheckReport LeavesCheck(Func<ImmutableArray<Leaf>, double> f, ImmutableArray<Leaf> at, ImmutableArray<Leaf> gradient) =>
        GradCheck.Leaves(f, at, gradient, GradCheckOptions.Precise);

    /// <summary><see cref="LeavesCheck"/> for a parameter tree.</summary>
    public static GradCheckReport TreeCheck<T>(Func<T, double> f, T at, T gradient) where T : IParameterTree<T> =>
        LeavesCheck(leaves => f(at.FromLeaves(leaves)), at.ToLeaves(), gradient.ToLeaves());

    /// <summary><see cref="LeavesCheck"/> for one matrix.</summary>
    public static GradCheckReport MatrixCheck(Func<Matrix<double>, double> f, Matrix<double> at, Matrix<double> gradient, string name) =>
        LeavesCheck(leaves => f(leaves[0].ToMatrix()), [Leaf.Of(name, at)], [Leaf.Of(name, gradient)]);

    /// <summary>Σ_t ⟨w⟨t⟩, v⟨t⟩⟩, summed with compensation so that its round-off stays at one ulp.</summary>
    public static double Inner(ImmutableArray<Matrix<double>> weights, ImmutableArray<Matrix<double>> values) =>
        Kernels.Ops.CompensatedSum(weights.Zip(values, (w, v) => w.PointwiseMultiply(v).Enumerate()).SelectMany(x => x));

    /// <summary>
    /// The gradient with respect to every x⟨t⟩ and every initial state as one check over the leaves
    /// xs[0..T−1] followed by the initial states, named as given.
    /// </summary>
    /// <param name="f">The scalar as a function of (xs, initial states in the order given).</param>
    /// <param name="xs">The point's sequence.</param>
    /// <param name="dx">The claimed gradients with respect to xs.</param>
    /// <param name="initial">Each initial state: its name, its value and its claimed gradient.</param>
    public static GradCheckReport InputCheck(Func<ImmutableArray<Matrix<double>>, ImmutableArray<Matrix<double>>, double> f,
        ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> dx, params (string Name, Matrix<double> At, Matrix<double> Gradient)[] initial)
    {
        var T = xs.Length;
        return LeavesCheck(
            leaves => f(SequenceLeaves.Read(leaves, 0, T), SequenceLeaves.Read(leaves, T, initial.Length)),
            SequenceLeaves.Of("xs", xs).AddRange(initial.Select(s => Leaf.Of(s.Name, s.At))),
            SequenceLeaves.Of("xs", dx).AddRange(initial.Select(s => Leaf.Of(s.Name, s.Gradient))));
    }

    /// <summary>Column j of m, as an n×1 matrix.</summary>
    public static Matrix<double> Column(Matrix<double> m, int j) => m.SubMatrix(0, m.RowCount, j, 1);
}
