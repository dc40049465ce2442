using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// The optimizers' element-wise updates (vectors over the whole vectors, a scalar loop for the tail) against their
/// formulas written entry by entry, bit for bit, over random RNN-shaped trees whose sizes are rarely a multiple of
/// the vector width; and the finiteness check that names the first bad entry.
/// </summary>
public sealed class OptimizerKernelTests
{
    private const double Lr = 0.05, Mu = 0.9, Rho = 0.99, Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8;

    /// <summary>One step of a scalar formula: (t, p, g, slots) with p and the slots updated in place.</summary>
    private delegate void Scalar(int t, double[] p, double[] g, double[][] slots);

    private static readonly (Func<Optimizer<RnnParameters>> Make, int Slots, Scalar Formula)[] Cases =
    [
        (() => Optimizers.Sgd<RnnParameters>(Lr), 0, (_, p, g, _) =>
        {
            for (var i = 0; i < p.Length; i++) p[i] = p[i] - Lr * g[i];
        }),
        (() => Optimizers.Momentum<RnnParameters>(Lr, Mu), 1, (_, p, g, s) =>
        {
            for (var i = 0; i < p.Length; i++)
            {
                s[0][i] = Mu * s[0][i] + g[i];
                p[i] = p[i] - Lr * s[0][i];
            }
        }),
        (() => Optimizers.Adagrad<RnnParameters>(Lr, Eps), 1, (_, p, g, s) =>
        {
            for (var i = 0; i < p.Length; i++)
            {
                s[0][i] = s[0][i] + g[i] * g[i];
                p[i] = p[i] - Lr * g[i] / Math.Sqrt(s[0][i] + Eps);
            }
        }),
        (() => Optimizers.RmsProp<RnnParameters>(Lr, Rho, Eps), 1, (_, p, g, s) =>
        {
            for (var i = 0; i < p.Length; i++)
            {
                s[0][i] = Rho * s[0][i] + (1 - Rho) * g[i] * g[i];
                p[i] = p[i] - Lr * g[i] / (Math.Sqrt(s[0][i]) + Eps);
            }
        }),
        (() => Optimizers.Adam<RnnParameters>(Lr, Beta1, Beta2, Eps), 2, (t, p, g, s) =>
        {
            var (c1, c2) = (1 - Math.Pow(Beta1, t), 1 - Math.Pow(Beta2, t));
            for (var i = 0; i < p.Length; i++)
            {
                s[0][i] = Beta1 * s[0][i] + (1 - Beta1) * g[i];
                s[1][i] = Beta2 * s[1][i] + (1 - Beta2) * g[i] * g[i];
                p[i] = p[i] - Lr * (s[0][i] / c1) / (Math.Sqrt(s[1][i] / c2) + Eps);
            }
        }),
    ];

    private static bool SameBits(double[] a, double[] b) =>
        a.Length == b.Length && a.Select(BitConverter.DoubleToInt64Bits).SequenceEqual(b.Select(BitConverter.DoubleToInt64Bits));

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 60)]
    public Property EveryOptimizerIsItsScalarFormulaBitForBitOverThreeSteps(LanguageCase c)
    {
        // Three different gradients, with entries of several magnitudes, so that the slots and the bias corrections move.
        var gradients = new[] { c.Direction, Tree.Map(c.Direction, x => 0.5 - x * x), Tree.Map(c.Direction, x => 1e-3 * x + 1e-6) };
        return Cases.Select(k =>
        {
            var optimizer = k.Make();
            var (p, state) = (c.P, optimizer.Init(c.P));
            var expected = Tree.Flatten(c.P);
            var slots = Enumerable.Range(0, k.Slots).Select(_ => new double[expected.Length]).ToArray();
            string? difference = null;
            for (var t = 1; t <= gradients.Length && difference is null; t++)
            {
                (p, state) = optimizer.Update(p, gradients[t - 1], state);
                k.Formula(t, expected, Tree.Flatten(gradients[t - 1]), slots);
                if (!SameBits(Tree.Flatten(p), expected)) difference = $"parameters after step {t}";
                else if (state.Slots.Select(Tree.Flatten).Zip(slots, SameBits).Any(same => !same)) difference = $"slots after step {t}";
            }
            return (difference is null).Label($"{optimizer.Name} on {expected.Length} entries: {difference ?? "same bits"}");
        }).Aggregate((a, b) => a.And(b));
    }

    [Fact]
    public void EveryOptimizerIsItsScalarFormulaBitForBitAcrossSlotChunks()
    {
        // 22,160 entries: two whole chunks of SlotChunks.Length and a shorter third one, read back through the trees of Slots.
        var p0 = RnnParameters.Initialize(60, 100, 60, seed: 5);
        var g0 = Tree.Map(RnnParameters.Initialize(60, 100, 60, seed: 6), x => 10 * x);
        Assert.True(Tree.Count(p0) > 2 * SlotChunks.Length && Tree.Count(p0) % SlotChunks.Length != 0);
        foreach (var k in Cases)
        {
            var optimizer = k.Make();
            var (p, state) = (p0, optimizer.Init(p0));
            var expected = Tree.Flatten(p0);
            var slots = Enumerable.Range(0, k.Slots).Select(_ => new double[expected.Length]).ToArray();
            for (var t = 1; t <= 3; t++)
            {
                var g = Tree.Scale(1.0 / t, g0);
                (p, state) = optimizer.Update(p, g, state);
                k.Formula(t, expected, Tree.Flatten(g), slots);
                Assert.True(SameBits(Tree.Flatten(p), expected), $"{optimizer.Name}: parameters after step {t}");
            }
            Assert.True(state.Slots.Select(Tree.Flatten).Zip(slots, SameBits).All(same => same), $"{optimizer.Name}: slots");
        }
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 60)]
    public Property UpdateNamesTheFirstEntryThatIsNotFinite(LanguageCase c, NonNegativeInt position, NonNegativeInt gap, byte kind)
    {
        var count = Tree.Count(c.P);
        var first = position.Get % count;
        var second = Math.Min(count - 1, first + 1 + gap.Get % 9);
        double[] bad = [double.NaN, double.PositiveInfinity, double.NegativeInfinity];
        var values = Tree.Flatten(c.Direction);
        values[first] = bad[kind % 3];
        values[second] = bad[(kind + 1) % 3];
        var g = Tree.Unflatten(c.P, values);
        var adam = Optimizers.Adam<RnnParameters>(Lr);
        var e = Record.Exception(() => adam.Update(c.P, g, adam.Init(c.P)));
        return (e is ArgumentException { ParamName: "gradients" } && e.Message.Contains($"entry {first} is ", StringComparison.Ordinal))
            .Label($"entry {first} of {count} named, got: {e?.Message}");
    }

    [Fact]
    public void FiniteGradientsOfEveryMagnitudePass()
    {
        var p = RnnParameters.Initialize(5, 7, 5, seed: 3);
        double[] extremes = [double.MaxValue, -double.MaxValue, double.Epsilon, -0.0, 0.0, 1e308, -1e-308];
        var values = Tree.Flatten(p).Select((_, i) => extremes[i % extremes.Length]).ToArray();
        var sgd = Optimizers.Sgd<RnnParameters>(1e-300);
        var (after, state) = sgd.Update(p, Tree.Unflatten(p, values), sgd.Init(p));
        Assert.Equal(1, state.Step);
        Assert.True(Tree.AllFinite(after));
    }
}
