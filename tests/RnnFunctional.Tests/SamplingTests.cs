using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Tests;

/// <summary>Sampling with an explicit random state.</summary>
public sealed class SamplingTests
{
    private static readonly SamplingOptions Options = new(1.0, 12);

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property SameSeedGivesTheSameSamples(LanguageCase c)
    {
        var (a, nextA) = Sampler.Tokens(c.Model, c.P, Options, RandomState.Seeded(c.Seed));
        var (b, nextB) = Sampler.Tokens(c.Model, c.P, Options, RandomState.Seeded(c.Seed));
        return (a.SequenceEqual(b) && nextA == nextB).Label("identical tokens and next state");
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property SamplesStopAtTheEndTokenOrTheMaximumLength(LanguageCase c)
    {
        var (texts, _) = Enumerable.Range(0, 5).Aggregate((Texts: ImmutableList<ImmutableArray<int>>.Empty, Random: RandomState.Seeded(c.Seed)), (acc, _) =>
        {
            var (tokens, next) = Sampler.Tokens(c.Model, c.P, Options, acc.Random);
            return (acc.Texts.Add(tokens), next);
        });
        return texts.All(t => t.Length <= Options.MaxLength && !t.Contains(Vocabulary.EndToken)).Label("at most MaxLength tokens, none of them the end token");
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property TemperatureZeroGivesTheArgmaxAndSmallTemperaturesApproachIt(LanguageCase c)
    {
        var greedy = ImmutableArray.CreateBuilder<int>();
        var (state, previous) = (c.Model.InitialState(c.P, 1), Vocabulary.EndToken);
        while (greedy.Count < Options.MaxLength)
        {
            var step = c.Model.Step(c.P, state, [previous]);
            previous = step.Logits.Column(0).MaximumIndex();
            if (previous == Vocabulary.EndToken) break;
            greedy.Add(previous);
            state = step.State;
        }
        var random = RandomState.Seeded(c.Seed);
        var (zero, next) = Sampler.Tokens(c.Model, c.P, Options with { Temperature = 0 }, random);
        var (cold, _) = Sampler.Tokens(c.Model, c.P, Options with { Temperature = 1e-9 }, random);
        return zero.SequenceEqual(greedy).Label("T = 0 is the argmax at every step")
            .And((next == random).Label("T = 0 draws no random number"))
            .And(cold.SequenceEqual(greedy).Label("T = 1e-9 gives the argmax"));
    }

    [Fact]
    public void CategoricalFrequenciesFollowTheSoftmax()
    {
        var logits = Vector<double>.Build.DenseOfArray([0.0, 1.0, 2.0, -1.0]);
        var probabilities = Softmax.Columns(logits.ToColumnMatrix()).Column(0);
        const int draws = 40000;
        var counts = new int[4];
        var random = RandomState.Seeded(11);
        for (var i = 0; i < draws; i++)
        {
            (var k, random) = Sampler.Categorical(logits, 1.0, random);
            counts[k]++;
        }
        // Each frequency within 5 standard deviations of its probability.
        for (var k = 0; k < 4; k++)
        {
            var sd = Math.Sqrt(probabilities[k] * (1 - probabilities[k]) / draws);
            Assert.InRange(counts[k] / (double)draws, probabilities[k] - 5 * sd, probabilities[k] + 5 * sd);
        }
    }

    [Fact]
    public void HighTemperatureFlattensTheDistribution()
    {
        var logits = Vector<double>.Build.DenseOfArray([0.0, 3.0]);
        int Count(double temperature)
        {
            var (ones, random) = (0, RandomState.Seeded(5));
            for (var i = 0; i < 10000; i++) { (var k, random) = Sampler.Categorical(logits, temperature, random); ones += k; }
            return ones;
        }
        // P(1) = σ(3/T): 0.9526 at T = 1, 0.8176 at T = 2, 0.5744 at T = 10; each range is ±5 standard deviations.
        Assert.InRange(Count(1), 9417, 9635);
        Assert.InRange(Count(2), 7983, 8369);
        Assert.InRange(Count(10), 5497, 5991);
    }

    [Fact]
    public void CategoricalRejectsBadArguments()
    {
        var logits = Vector<double>.Build.DenseOfArray([0.0, double.NaN]);
        Assert.Equal("logits", Assert.Throws<ArgumentException>(() => Sampler.Categorical(logits, 1, RandomState.Seeded(1))).ParamName);
        var fine = Vector<double>.Build.DenseOfArray([0.0, 1.0]);
        Assert.Equal("temperature", Assert.Throws<ArgumentOutOfRangeException>(() => Sampler.Categorical(fine, -1, RandomState.Seeded(1))).ParamName);
    }

    [Fact]
    public void RandomStateIsAValue()
    {
        var s = RandomState.Seeded(42);
        var (a, s1) = s.NextDouble();
        var (b, _) = s.NextDouble();
        Assert.Equal(a, b);
        Assert.NotEqual(s, s1);
        Assert.InRange(a, 0.0, 1.0);
        var (shuffled, _) = s.Shuffle(ImmutableArray.Create(1, 2, 3, 4, 5, 6, 7, 8));
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8], shuffled.Order().ToArray());
        Assert.Equal(shuffled.ToArray(), s.Shuffle(ImmutableArray.Create(1, 2, 3, 4, 5, 6, 7, 8)).Shuffled.ToArray());
    }
}
