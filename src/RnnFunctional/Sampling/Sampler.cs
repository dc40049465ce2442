using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Globalization;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>How to sample.</summary>
/// <param name="Temperature">
/// T ≥ 0: tokens are drawn from softmax(logits / T); T = 1 is the model's distribution, smaller is more
/// conservative, and T = 0 always takes the most likely token (the argmax, the first one on a tie).
/// </param>
/// <param name="MaxLength">Largest number of tokens of a sample, the end token excluded; at least 1.</param>
public sealed record SamplingOptions(double Temperature = 1.0, int MaxLength = 40)
{
    /// <summary>The options, or an exception naming the bad one.</summary>
    internal SamplingOptions Checked() =>
        !(Temperature >= 0 && double.IsFinite(Temperature))
            ? throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, string.Create(CultureInfo.InvariantCulture, $"expected Temperature to be a finite number ≥ 0 but got {Temperature}"))
            : MaxLength < 1
                ? throw new ArgumentOutOfRangeException(nameof(MaxLength), MaxLength, $"expected MaxLength to be at least 1 but got {MaxLength}")
                : this;
}

/// <summary>Sampling from a next-token model with an explicit random state: the same state gives the same samples.</summary>
public static class Sampler
{
    /// <summary>
    /// One sequence: starting from the end token, feed each drawn token back until the end token is drawn or
    /// <see cref="SamplingOptions.MaxLength"/> tokens have been drawn.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="p">Its parameters.</param>
    /// <param name="options">Temperature and maximum length.</param>
    /// <param name="random">The random state; the next one is returned.</param>
    /// <param name="endToken">The token that starts and ends a sequence.</param>
    /// <returns>The drawn tokens without the end token, and the next random state.</returns>
    [Pure]
    public static (ImmutableArray<int> Tokens, RandomState Next) Tokens<TParams, TState>(SequenceModel<TParams, TState> model, TParams p,
        SamplingOptions options, RandomState random, int endToken = Vocabulary.EndToken)
        where TParams : IParameterTree<TParams>
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Checked();
        var tokens = ImmutableArray.CreateBuilder<int>();
        var (state, previous) = (model.InitialState(p, 1), endToken);
        while (tokens.Count < options.MaxLength)
        {
            var step = model.Step(p, state, [previous]);
            (previous, random) = Categorical(step.Logits.Column(0), options.Temperature, random);
            if (previous == endToken) break;
            tokens.Add(previous);
            state = step.State;
        }
        return (tokens.ToImmutable(), random);
    }

    /// <summary><paramref name="count"/> samples decoded as text, the random state threaded from one to the next.</summary>
    /// <param name="model">The model.</param>
    /// <param name="p">Its parameters.</param>
    /// <param name="vocabulary">The vocabulary of the model's tokens.</param>
    /// <param name="count">Number of samples, at least 0.</param>
    /// <param name="options">Temperature and maximum length.</param>
    /// <param name="random">The random state; the next one is returned.</param>
    [Pure]
    public static (ImmutableArray<string> Texts, RandomState Next) Texts<TParams, TState>(SequenceModel<TParams, TState> model, TParams p,
        Vocabulary vocabulary, int count, SamplingOptions options, RandomState random)
        where TParams : IParameterTree<TParams>
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, $"expected count to be at least 0 but got {count}");
        var texts = ImmutableArray.CreateBuilder<string>(count);
        for (var i = 0; i < count; i++)
        {
            (var tokens, random) = Tokens(model, p, options, random);
            texts.Add(vocabulary.Decode(tokens));
        }
        return (texts.MoveToImmutable(), random);
    }

    /// <summary>
    /// A draw from softmax(logits / T) by inverting the cumulative distribution at one uniform number; T = 0 gives
    /// the index of the largest logit (the first on a tie) and consumes no randomness.
    /// </summary>
    /// <param name="logits">n ≥ 1 finite logits.</param>
    /// <param name="temperature">T ≥ 0.</param>
    /// <param name="random">The random state; the next one is returned.</param>
    [Pure]
    public static (int Token, RandomState Next) Categorical(Vector<double> logits, double temperature, RandomState random)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (logits.Count == 0) throw new ArgumentException("expected logits to hold at least one entry but it is empty", nameof(logits));
        if (logits.Find(v => !double.IsFinite(v)) is { } bad)
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"expected logits to be finite but entry {bad.Item1} is {bad.Item2}"), nameof(logits));
        if (!(temperature >= 0 && double.IsFinite(temperature)))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, string.Create(CultureInfo.InvariantCulture, $"expected temperature to be a finite number ≥ 0 but got {temperature}"));
        var argmax = logits.MaximumIndex();
        if (temperature == 0) return (argmax, random);
        var weights = new double[logits.Count];
        var max = logits[argmax];
        for (var i = 0; i < weights.Length; i++) weights[i] = Math.Exp((logits[i] - max) / temperature);
        var total = Kernels.Ops.CompensatedSum(weights);
        var (u, next) = random.NextDouble();
        var target = u * total;
        var cumulative = 0.0;
        for (var i = 0; i < weights.Length; i++)
        {
            cumulative += weights[i];
            if (target < cumulative) return (i, next);
        }
        return (Array.FindLastIndex(weights, w => w > 0), next);
    }
}
