using System.Collections.Immutable;

namespace RnnFunctional.Distributed;

/// <summary>Something done with the model of a <see cref="ModelSpec"/> (a generic method over its parameter and state types).</summary>
/// <typeparam name="R">The result.</typeparam>
public interface IModelUse<out R>
{
    /// <summary>Does it with the model.</summary>
    /// <param name="model">The next-token model of the spec.</param>
    /// <param name="initialize">seed → freshly initialised parameters of the spec.</param>
    R Use<TParams, TState>(SequenceModel<TParams, TState> model, Func<int, TParams> initialize) where TParams : IParameterTree<TParams>;
}

/// <summary>The models a run can train: the three cells alone or stacked, as in the command-line tool.</summary>
public static class DistributedModels
{
    /// <summary>Cell names accepted in <see cref="ModelSpec.Cell"/>.</summary>
    public static readonly ImmutableArray<string> Cells = ["rnn", "lstm", "gru"];

    /// <summary>
    /// Builds the model of <paramref name="spec"/> and hands it to <paramref name="use"/>: one cell with its read-out,
    /// or for several layers a <see cref="StackParameters"/> stack of such cells.
    /// </summary>
    /// <param name="spec">The model.</param>
    /// <param name="use">What to do with it.</param>
    public static R Use<R>(ModelSpec spec, IModelUse<R> use)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(use);
        var (v, n) = (spec.Vocabulary, spec.Hidden);
        if (v < 1 || n < 1 || spec.Layers < 1)
            throw new ArgumentException($"expected a model spec with V, n_a and layers at least 1 but got V = {v}, n_a = {n}, layers = {spec.Layers}", nameof(spec));
        if (spec.Layers > 1)
        {
            Func<int, int, int, Layer> layer = spec.Cell switch
            {
                "rnn" => (input, hidden, s) => Layer.Rnn(input, hidden, s),
                "lstm" => Layer.Lstm,
                "gru" => Layer.Gru,
                _ => throw Unknown(spec),
            };
            return use.Use(LanguageModel.Stack(v), seed => StackParameters.Initialize(
                [.. Enumerable.Range(0, spec.Layers).Select(l => layer(l == 0 ? v : n, n, seed + l))], v, seed + spec.Layers));
        }
        return spec.Cell switch
        {
            "rnn" => use.Use(LanguageModel.Rnn(v), seed => RnnParameters.Initialize(v, n, v, seed)),
            "lstm" => use.Use(LanguageModel.Lstm(v), seed => LstmParameters.Initialize(v, n, v, seed)),
            "gru" => use.Use(LanguageModel.Gru(v), seed => GruParameters.Initialize(v, n, v, seed)),
            _ => throw Unknown(spec),
        };
    }

    private static ArgumentException Unknown(ModelSpec spec) =>
        new($"expected the cell to be one of {string.Join(", ", Cells)} but got '{spec.Cell}'", nameof(spec));
}
