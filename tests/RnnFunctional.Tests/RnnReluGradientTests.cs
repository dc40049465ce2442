using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using static RnnFunctional.Tests.GradientChecks;

namespace RnnFunctional.Tests;

public sealed class ReluArbitraries
{
    public static Arbitrary<RnnCase> Cases() =>
        Arb.From(Shaped.Arbitrary(8).Generator.Select(s => new RnnCase(s, Activation.Relu)),
                 c => Shaped.Arbitrary(8).Shrinker(c.Shape).Select(s => new RnnCase(s, Activation.Relu)));
}

/// <summary>
/// Every gradient of the vanilla RNN with <see cref="Activation.Relu"/> against Ridders' finite differences, at the
/// bar of 1e-6, entry by entry wherever a finite difference is a derivative.
/// </summary>
/// <remarks>
/// <para>
/// ReLU has a kink at z = 0. A central difference whose two points lie on either side of a kink of some
/// pre-activation z⟨t⟩[i, j] estimates neither one-sided derivative, so such an entry cannot be judged. Ridders'
/// method evaluates f at θ ± h_k for h_k = 1e-2, 1e-2/1.4, …: a bound on |z| that keeps every such point clear of
/// the kink would have to be |z| &gt; 1e-2·|∂z/∂θ| summed over the whole recurrence, which excludes almost every
/// case of more than a few units (with T·m·n_a up to 512 pre-activations, some z is nearly always that close to 0).
/// </para>
/// <para>
/// The check here is exact instead. Call the activation pattern the signs of every z⟨t⟩ (seen as a⟨t⟩ &gt; 0).
/// Where the pattern is the one at θ, the ReLU network computes exactly the smooth function F_θ that replaces each
/// max(0, z) by z or by 0 as the pattern at θ says (a polynomial in any one parameter, composed with the softmax
/// loss), and the analytic gradient at θ is ∇F_θ(θ). So every entry whose perturbed evaluations all keep the
/// pattern at θ is a finite difference of a smooth function taken exactly at the points the method uses, and it is
/// held to the full bar; an entry any of whose evaluations (those of <see cref="GradientChecks.LeavesCheck"/>'s
/// refinement included) changes the pattern straddles a kink and is excluded, and only that entry. The properties classify how many cases lose entries, and a case whose every entry
/// straddles a kink is discarded rather than counted as a pass.
/// </para>
/// </remarks>
public sealed class RnnReluGradientTests
{
    [Property(Arbitrary = [typeof(ReluArbitraries)], MaxTest = 100)]
    public Property CellBackwardMatchesFiniteDifferences(RnnCase c)
    {
        var (xt, da) = (c.Xs[0], c.Da[0]);
        var g = Rnn.CellBackward(da, Rnn.CellForward(c.P, xt, c.A0).Cache);
        return OnOnePiece(c, [xt], g.Gradients, [g.Dxt], g.DaPrev, (p, xs, a0) =>
        {
            var a = Rnn.CellForward(p, xs[0], a0).A;
            return (Inner([da], [a]), [a]);
        });
    }

    [Property(Arbitrary = [typeof(ReluArbitraries)], MaxTest = 100)]
    public Property BackwardMatchesFiniteDifferences(RnnCase c)
    {
        var g = Rnn.Backward(Rnn.Forward(c.P, c.Xs, c.A0), c.Da);
        return OnOnePiece(c, c.Xs, g.Gradients, g.Dx, g.Da0, (p, xs, a0) =>
        {
            var states = Rnn.Forward(p, xs, a0).States;
            return (Inner(c.Da, states), states);
        });
    }

    [Property(Arbitrary = [typeof(ReluArbitraries)], MaxTest = 100)]
    public Property LossAndGradientsMatchesFiniteDifferences(RnnCase c)
    {
        var g = Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);
        return OnOnePiece(c, c.Xs, g.Gradients, g.Dx, g.Da0,
            (p, xs, a0) => (Rnn.LossAndGradients(p, xs, a0, c.Labels).Loss, Rnn.Forward(p, xs, a0).States));
    }

    /// <summary>
    /// One check over the leaves of the parameters, of the inputs xs and of a0, in which an entry is compared only
    /// if every evaluation of f made for it kept the activation pattern of the unperturbed point.
    /// </summary>
    /// <param name="c">The case (its parameters and a0; <paramref name="xs"/> may be a prefix of its sequence).</param>
    /// <param name="xs">The inputs f reads.</param>
    /// <param name="gradients">The claimed parameter gradient.</param>
    /// <param name="dx">The claimed gradients with respect to xs.</param>
    /// <param name="da0">The claimed gradient with respect to a0.</param>
    /// <param name="f">The scalar and the states a⟨t⟩ whose signs make the activation pattern.</param>
    private static Property OnOnePiece(RnnCase c, ImmutableArray<Matrix<double>> xs, RnnParameters gradients,
        ImmutableArray<Matrix<double>> dx, Matrix<double> da0,
        Func<RnnParameters, ImmutableArray<Matrix<double>>, Matrix<double>, (double Value, ImmutableArray<Matrix<double>> States)> f)
    {
        var (parameterLeaves, T) = (c.P.ToLeaves().Length, xs.Length);
        (double Value, ImmutableArray<Matrix<double>> States) At(ImmutableArray<Leaf> leaves) =>
            f(c.P.FromLeaves(leaves[..parameterLeaves]), SequenceLeaves.Read(leaves, parameterLeaves, T), leaves[parameterLeaves + T].ToMatrix());
        static bool[] Pattern(ImmutableArray<Matrix<double>> states) => [.. states.SelectMany(s => s.Enumerate()).Select(v => v > 0)];

        var at = c.P.ToLeaves().AddRange(SequenceLeaves.Of("xs", xs)).Add(Leaf.Of("a0", c.A0));
        var claimed = gradients.ToLeaves().AddRange(SequenceLeaves.Of("xs", dx)).Add(Leaf.Of("a0", da0));
        var pattern = Pattern(At(at).States);
        var straddling = new HashSet<(string Leaf, int Row, int Column)>();
        var report = LeavesCheck(leaves =>
        {
            var (value, states) = At(leaves);
            if (!Pattern(states).AsSpan().SequenceEqual(pattern)) straddling.Add(Perturbed(at, leaves));
            return value;
        }, at, claimed);

        var kept = new GradCheckReport([.. report.Entries.Where(e => !straddling.Contains((e.Leaf, e.Row, e.Column)))]);
        return GradientProperty.Holds(kept)
            .When(!kept.Entries.IsEmpty)
            .Classify(straddling.Count == 0, "no entry straddles a kink")
            .Classify(straddling.Count > 0, "some entries straddle a kink and are excluded")
            .Classify(pattern.All(on => !on), "every unit inactive")
            .Collect($"excluded {Bucket(straddling.Count, report.Entries.Length)} of the entries");
    }

    /// <summary>The one entry in which <paramref name="leaves"/> differ from <paramref name="at"/>.</summary>
    private static (string Leaf, int Row, int Column) Perturbed(ImmutableArray<Leaf> at, ImmutableArray<Leaf> leaves)
    {
        for (var i = 0; i < at.Length; i++)
            for (var k = 0; k < at[i].Values.Length; k++)
                if (!at[i].Values[k].Equals(leaves[i].Values[k]))
                    return (at[i].Name, k % at[i].Rows, k / at[i].Rows);
        throw new InvalidOperationException("the activation pattern changed at the unperturbed point");
    }

    private static string Bucket(int excluded, int total) =>
        excluded == 0 ? "0%" : ((double)excluded / total) switch { <= 0.01 => "≤ 1%", <= 0.05 => "1–5%", <= 0.2 => "5–20%", _ => "> 20%" };
}
