using FsCheck;
using RnnFunctional.Testing;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace RnnFunctional.Tests;

/// <summary>Laws of the optimizers and of gradient clipping, over random RNN-shaped trees.</summary>
public sealed class OptimizerTests
{
    private static IEnumerable<Optimizer<RnnParameters>> All(double lr) =>
    [
        Optimizers.Sgd<RnnParameters>(lr), Optimizers.Momentum<RnnParameters>(lr), Optimizers.Adagrad<RnnParameters>(lr),
        Optimizers.RmsProp<RnnParameters>(lr), Optimizers.Adam<RnnParameters>(lr),
    ];

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property StepAgainstZeroGradientLeavesParametersUnchanged(LanguageCase c) =>
        All(0.1).Select(o =>
        {
            var (p, _) = o.Update(c.P, Tree.ZerosLike(c.P), o.Init(c.P));
            return Compare.Same(p, c.P).Label($"{o.Name} leaves p unchanged");
        }).Aggregate((a, b) => a.And(b));

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property AdamFirstStepMovesEachParameterByAboutTheLearningRate(LanguageCase c)
    {
        const double lr = 0.01;
        // Gradient entries of magnitude in [1e-3, 1): ε/|g| ≤ 1e-5, so |Δp| = lr·|g|/(|g| + ε) is lr to within 1e-5.
        var g = Tree.Map(c.Direction, x => Math.CopySign(1e-3 + Math.Abs(x) * (1 - 1e-3), x));
        var adam = Optimizers.Adam<RnnParameters>(lr);
        var (p, state) = adam.Update(c.P, g, adam.Init(c.P));
        var moves = Tree.Flatten(p).Zip(Tree.Flatten(c.P), (after, before) => after - before).ToArray();
        var signs = moves.Zip(Tree.Flatten(g), (d, gi) => Math.Sign(d) == -Math.Sign(gi)).All(ok => ok);
        var worst = moves.Max(d => Math.Abs(Math.Abs(d) - lr));
        return (signs && worst <= 1e-5 * lr + 1e-14 && state.Step == 1)
            .Label($"every |Δp| within {worst:E2} of lr = {lr}, against the gradient's sign");
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property SgdStepIsParametersMinusLearningRateTimesGradient(LanguageCase c)
    {
        var sgd = Optimizers.Sgd<RnnParameters>(0.25);
        var (p, _) = sgd.Update(c.P, c.Direction, sgd.Init(c.P));
        return Compare.Same(p, c.P - 0.25 * c.Direction).Label("p − lr·g");
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property AdagradMatchesMinCharRnnOverTwoSteps(LanguageCase c)
    {
        const double lr = 0.1;
        var (g1, g2) = (c.Direction, Tree.Map(c.Direction, x => 0.5 - x * x));
        var adagrad = Optimizers.Adagrad<RnnParameters>(lr);
        var (p1, s1) = adagrad.Update(c.P, g1, adagrad.Init(c.P));
        var (p2, _) = adagrad.Update(p1, g2, s1);
        // mem += g²; p -= lr·g/√(mem + 1e-8), entry by entry as in min-char-rnn.
        var (p, a, b) = (Tree.Flatten(c.P), Tree.Flatten(g1), Tree.Flatten(g2));
        var expected = p.Select((x, i) =>
        {
            var mem = a[i] * a[i];
            x -= lr * a[i] / Math.Sqrt(mem + 1e-8);
            mem += b[i] * b[i];
            return x - lr * b[i] / Math.Sqrt(mem + 1e-8);
        }).ToArray();
        return Tree.Flatten(p2).SequenceEqual(expected).Label("two Adagrad steps equal the hand-written update");
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property UpdatesLeaveTheirArgumentsUntouched(LanguageCase c)
    {
        var (p, g) = (Bits.Of(c.P), Bits.Of(c.Direction));
        return All(0.1).Select(o =>
        {
            var s0 = o.Init(c.P);
            var (_, s1) = o.Update(c.P, c.Direction, s0);
            var slots = s1.Slots.Select(Bits.Of).ToArray();
            o.Update(c.P, c.Direction, s1);
            return (Bits.Of(c.P).SequenceEqual(p) && Bits.Of(c.Direction).SequenceEqual(g)
                    && s0.Slots.All(s => Tree.Flatten(s).All(v => v == 0))
                    && s1.Slots.Select(Bits.Of).Zip(slots, (x, y) => x.SequenceEqual(y)).All(ok => ok))
                .Label($"{o.Name} mutates nothing");
        }).Aggregate((a, b) => a.And(b));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property ClipByGlobalNormNeverIncreasesTheNormAndIsTheIdentityBelowTheThreshold(LanguageCase c, PositiveInt threshold)
    {
        var g = Tree.Scale(3.0, c.Direction);
        var norm = Tree.Norm(g);
        var maxNorm = threshold.Get / 10.0;
        var clipped = Clip.ByGlobalNorm(g, maxNorm);
        var clippedNorm = Tree.Norm(clipped);
        return (clippedNorm <= norm).Label($"‖clip(g)‖ = {clippedNorm} ≤ ‖g‖ = {norm}")
            .And((norm > maxNorm ? Compare.Close(clippedNorm, maxNorm, 1e-12) : Compare.Same(clipped, g))
                .Label($"above {maxNorm}: rescaled to it; below: unchanged"))
            .And(Compare.Same(Clip.ByGlobalNorm(g, norm), g).Label("the identity at the threshold itself"))
            .And(Compare.Same(Clip.ByGlobalNorm(g, 2 * norm + 1e-300), g).Label("the identity below the threshold"));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property ClipByValueNeverIncreasesTheNormAndIsTheIdentityBelowTheThreshold(LanguageCase c, PositiveInt threshold)
    {
        var g = Tree.Scale(10.0, c.Direction);
        var limit = threshold.Get / 10.0;
        var clipped = Clip.ByValue(g, limit);
        var largest = Tree.Flatten(g).Max(Math.Abs);
        return (Tree.Norm(clipped) <= Tree.Norm(g)).Label("‖clip(g)‖ ≤ ‖g‖")
            .And(Tree.Flatten(clipped).All(x => Math.Abs(x) <= limit).Label($"every entry within ±{limit}"))
            .And(Tree.Flatten(clipped).Zip(Tree.Flatten(g), (x, y) => x == Math.Clamp(y, -limit, limit)).All(ok => ok).Label("entry-wise clamp"))
            .And(Compare.Same(Clip.ByValue(g, largest), g).Label("the identity when the limit is the largest entry"));
    }

    [Fact]
    public void ClippingValuesApplyTheirRule()
    {
        var p = RnnParameters.Initialize(2, 3, 2, seed: 4);
        var g = Tree.Scale(100, p);
        Assert.True(Compare.Same(Clipping.None.Apply(g), g));
        Assert.True(Compare.Same(Clipping.ByValue(0.5).Apply(g), Clip.ByValue(g, 0.5)));
        Assert.True(Compare.Same(Clipping.ByGlobalNorm(1).Apply(g), Clip.ByGlobalNorm(g, 1)));
    }

    [Fact]
    public void UpdateRejectsNonFiniteGradients()
    {
        var p = RnnParameters.Initialize(2, 3, 2, seed: 4);
        var bad = Tree.Map(p, x => x > 0 ? double.NaN : x);
        var adam = Optimizers.Adam<RnnParameters>(0.1);
        var e = Assert.Throws<ArgumentException>(() => adam.Update(p, bad, adam.Init(p)));
        Assert.Equal("gradients", e.ParamName);
        Assert.Contains("expected gradients to be finite", e.Message);
    }

    [Fact]
    public void UpdateRejectsGradientsOfAnotherShape()
    {
        var p = RnnParameters.Initialize(2, 3, 2, seed: 4);
        var other = RnnParameters.Initialize(2, 4, 2, seed: 4);
        var sgd = Optimizers.Sgd<RnnParameters>(0.1);
        var e = Assert.Throws<ArgumentException>(() => sgd.Update(p, other, sgd.Init(p)));
        Assert.Equal("gradients", e.ParamName);
        Assert.Contains("expected leaf 0 of gradients to be Wax 3×2 but got Wax 4×2", e.Message);
    }

    [Fact]
    public void ConstructorsRejectOutOfRangeHyperParameters()
    {
        Assert.Equal("learningRate", Assert.Throws<ArgumentOutOfRangeException>(() => Optimizers.Sgd<RnnParameters>(0)).ParamName);
        Assert.Equal("learningRate", Assert.Throws<ArgumentOutOfRangeException>(() => Optimizers.Adam<RnnParameters>(double.NaN)).ParamName);
        Assert.Equal("beta1", Assert.Throws<ArgumentOutOfRangeException>(() => Optimizers.Adam<RnnParameters>(0.1, beta1: 1)).ParamName);
        Assert.Equal("momentum", Assert.Throws<ArgumentOutOfRangeException>(() => Optimizers.Momentum<RnnParameters>(0.1, -0.5)).ParamName);
        Assert.Equal("maxNorm", Assert.Throws<ArgumentOutOfRangeException>(() => Clipping.ByGlobalNorm(0)).ParamName);
        Assert.Equal("limit", Assert.Throws<ArgumentOutOfRangeException>(() => Clipping.ByValue(double.PositiveInfinity)).ParamName);
    }
}
