using System.Collections.Immutable;
using System.Globalization;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

/// <summary>The shape of a character model: which cell, how wide, how deep, over which characters.</summary>
/// <param name="Cell">Cell name, one of <see cref="Models.Cells"/>.</param>
/// <param name="Hidden">Hidden size n_a.</param>
/// <param name="Layers">Number of stacked layers.</param>
/// <param name="Vocabulary">The characters (the end token first).</param>
internal sealed record ModelSpec(string Cell, int Hidden, int Layers, Vocabulary Vocabulary)
{
    /// <summary>The dropout of training a stacked model (evaluation and sampling never drop); none by default.</summary>
    public Dropout Dropout { get; init; } = Dropout.None;
}

/// <summary>Something done with a model of any cell type (a generic method over the cell's parameter and state types).</summary>
/// <typeparam name="R">The result.</typeparam>
internal interface IModelUse<out R>
{
    /// <summary>Does it with the model and parameters.</summary>
    R Use<TParams, TState>(ModelSpec spec, SequenceModel<TParams, TState> model, TParams parameters) where TParams : IParameterTree<TParams>;
}

/// <summary>The cell types the program knows: building, initialising, saving and loading each one.</summary>
internal static class Models
{
    /// <summary>The value of the <c>format</c> metadata entry of a character model file.</summary>
    public const string Format = "rnnf-char-model";

    /// <summary>
    /// The value of the <c>tokens</c> metadata entry: the vocabulary's characters are Unicode scalar values. Files
    /// without the entry were written when tokens were UTF-16 code units; they load unchanged when their vocabulary
    /// is in the Basic Multilingual Plane (there both readings agree) and are refused otherwise.
    /// </summary>
    public const string Tokens = "unicode-scalar-values";

    /// <summary>Cell names accepted by --cell.</summary>
    public static readonly ImmutableArray<string> Cells = ["rnn", "lstm", "gru"];

    /// <summary>Largest number of layers accepted by --layers.</summary>
    public const int MaxLayers = 4;

    /// <summary>
    /// A freshly initialised model of <paramref name="spec"/>, handed to <paramref name="use"/>: one cell with its
    /// read-out, or for several layers a <see cref="StackParameters"/> of such cells (the bottom one reading the
    /// one-hot characters, each other one the layer below).
    /// </summary>
    public static R Initialize<R>(ModelSpec spec, int seed, IModelUse<R> use)
    {
        var v = spec.Vocabulary.Size;
        if (spec.Layers > 1)
        {
            Func<int, int, int, Layer> layer = spec.Cell switch
            {
                "rnn" => (input, hidden, s) => Layer.Rnn(input, hidden, s),
                "lstm" => Layer.Lstm,
                "gru" => Layer.Gru,
                _ => throw new ArgumentException($"unknown cell '{spec.Cell}'", nameof(spec)),
            };
            var layers = Enumerable.Range(0, spec.Layers).Select(l => layer(l == 0 ? v : spec.Hidden, spec.Hidden, seed + l)).ToImmutableArray();
            return use.Use(spec, LanguageModel.Stack(v, spec.Dropout), StackParameters.Initialize(layers, v, seed + spec.Layers));
        }
        return spec.Cell switch
        {
            "rnn" => use.Use(spec, LanguageModel.Rnn(v), RnnParameters.Initialize(v, spec.Hidden, v, seed)),
            "lstm" => use.Use(spec, LanguageModel.Lstm(v), LstmParameters.Initialize(v, spec.Hidden, v, seed)),
            "gru" => use.Use(spec, LanguageModel.Gru(v), GruParameters.Initialize(v, spec.Hidden, v, seed)),
            _ => throw new ArgumentException($"unknown cell '{spec.Cell}'", nameof(spec)),
        };
    }

    /// <summary>The model file document of trained parameters.</summary>
    public static ModelDocument Document<TParams>(ModelSpec spec, TParams parameters, IEnumerable<KeyValuePair<string, string>> extra)
        where TParams : IParameterTree<TParams> =>
        ModelDocument.Of(
            new Dictionary<string, string>
            {
                ["format"] = Format,
                ["cell"] = spec.Cell,
                ["hidden"] = spec.Hidden.ToString(CultureInfo.InvariantCulture),
                ["layers"] = spec.Layers.ToString(CultureInfo.InvariantCulture),
                ["vocabulary"] = spec.Vocabulary.ToString(),
                ["tokens"] = Tokens,
            }.Concat(extra.Where(kv => kv.Key is not ("format" or "cell" or "hidden" or "layers" or "vocabulary" or "tokens"))),
            parameters);

    /// <summary>The model of a loaded document, handed to <paramref name="use"/>; an error when the document is not a character model this build knows.</summary>
    public static Fin<R> Load<R>(ModelDocument document, IModelUse<R> use) =>
        from format in document.Get("format")
        from _ in format == Format ? Fin<Unit>.Succ(Unit.Default) : Fin<Unit>.Fail(Error.New($"model file holds a '{format}', not a {Format}"))
        from cell in document.Get("cell")
        from known in Cells.Contains(cell) ? Fin<string>.Succ(cell) : Fin<string>.Fail(Error.New($"model file has cell '{cell}', which this build does not know ({string.Join(", ", Cells)})"))
        from hidden in PositiveInt(document, "hidden")
        from layers in PositiveInt(document, "layers")
        from symbols in document.Get("vocabulary")
        from tokens in TokenKind(document, symbols)
        from vocabulary in Vocabulary.FromSymbols(symbols)
        let spec = new ModelSpec(known, hidden, layers, vocabulary)
        let ordered = InTreeOrder(document, Shapes(spec).Select(leaf => leaf.Name))
        from fits in Fits(spec, ordered)
        from result in Initialize(spec, 0, new Loader<R>(ordered, use))
        select result;

    /// <summary>
    /// The document's leaves in the model's tree order when it holds each of <paramref name="names"/> once and nothing
    /// else (a safetensors file's are in name order); otherwise the document as it is, for <see cref="Fits"/> to report.
    /// </summary>
    private static ModelDocument InTreeOrder(ModelDocument document, IEnumerable<string> names)
    {
        if (document.Leaves.IsDefault) return document;
        // No more names than the file has leaves are ever drawn: a file can declare a model of any size.
        var order = names.Take(document.Leaves.Length + 1).ToArray();
        var byName = document.Leaves.GroupBy(l => l.Name).ToDictionary(g => g.Key, g => g.First());
        return byName.Count == document.Leaves.Length && order.Length == byName.Count && order.All(byName.ContainsKey)
            ? document with { Leaves = [.. order.Select(n => byName[n])] }
            : document;
    }

    /// <summary>
    /// The names and shapes of the leaves of a model of <paramref name="spec"/>, in tree order, computed from the
    /// sizes alone (nothing is allocated): what a loaded file is compared with before any model is built, so that
    /// the sizes a file declares can never make the loader allocate more than the file itself holds.
    /// </summary>
    public static IEnumerable<(string Name, long Rows, long Columns)> Shapes(ModelSpec spec)
    {
        long v = spec.Vocabulary.Size, h = spec.Hidden;
        IEnumerable<(string, long, long)> Cell(long input) => spec.Cell switch
        {
            "rnn" => [("Wax", h, input), ("Waa", h, h), ("Ba", h, 1)],
            "lstm" => [("Wf", h, h + input), ("Bf", h, 1), ("Wi", h, h + input), ("Bi", h, 1), ("Wc", h, h + input), ("Bc", h, 1), ("Wo", h, h + input), ("Bo", h, 1)],
            "gru" => [("Wih", 3 * h, input), ("Whh", 3 * h, h), ("Bih", 3 * h, 1), ("Bhh", 3 * h, 1)],
            _ => throw new ArgumentException($"unknown cell '{spec.Cell}'", nameof(spec)),
        };
        if (spec.Layers == 1)
            return Cell(v).Concat([(spec.Cell == "rnn" ? "Wya" : "Wy", v, h), ("By", v, 1)]);
        return Enumerable.Range(0, spec.Layers)
            .SelectMany(l => Cell(l == 0 ? v : h).Select(leaf => ($"layers[{l}].{leaf.Item1}", leaf.Item2, leaf.Item3)))
            .Concat([("Wy", v, h), ("By", v, 1)]);
    }

    /// <summary>Whether the document's leaves have exactly the names and shapes of <paramref name="spec"/>, and finite values.</summary>
    private static Fin<Unit> Fits(ModelSpec spec, ModelDocument document)
    {
        var model = $"{spec.Cell}, hidden {spec.Hidden}, {spec.Layers} layer{(spec.Layers == 1 ? "" : "s")}, {spec.Vocabulary.Size} tokens";
        Fin<Unit> Misfit(string what) => Fin<Unit>.Fail(Error.New($"model file does not fit its declared model ({model}): {what}"));
        var leaves = document.Leaves.IsDefault ? [] : document.Leaves;
        var i = 0;
        foreach (var (name, rows, columns) in Shapes(spec))
        {
            if (i >= leaves.Length) return Misfit($"expected more than its {leaves.Length} leaves, next {name} {rows}×{columns}");
            var leaf = leaves[i];
            if (leaf.Name != name || leaf.Rows != rows || leaf.Columns != columns)
                return Misfit($"expected leaf {i} to be {name} {rows}×{columns} but got {leaf.Name} {leaf.Rows}×{leaf.Columns}");
            i++;
        }
        if (i != leaves.Length) return Misfit($"expected {i} leaves but got {leaves.Length}");
        return ModelFile.NonFinite(document) is { } problem
            ? Fin<Unit>.Fail(Error.New($"model file holds parameters that are not numbers: {problem}"))
            : Fin<Unit>.Succ(Unit.Default);
    }

    private static Fin<Unit> TokenKind(ModelDocument document, string symbols) =>
        document.Metadata.TryGetValue("tokens", out var tokens)
            ? tokens == Tokens
                ? Fin<Unit>.Succ(Unit.Default)
                : Fin<Unit>.Fail(Error.New($"model file has tokens '{tokens}', which this build does not know (it reads {Tokens})"))
            : symbols.Any(char.IsSurrogate)
                ? Fin<Unit>.Fail(Error.New("model file was written by an older rnnf whose tokens were UTF-16 code units, and its vocabulary holds characters outside the Basic Multilingual Plane; train it again"))
                : Fin<Unit>.Succ(Unit.Default);

    private static Fin<int> PositiveInt(ModelDocument document, string key) =>
        document.Get(key).Bind(text => int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 1
            ? Fin<int>.Succ(n)
            : Fin<int>.Fail(Error.New($"model file has an invalid '{key}' entry '{text}'")));

    /// <summary>Reads the document's leaves into a freshly initialised template of the same spec.</summary>
    private sealed class Loader<R>(ModelDocument document, IModelUse<R> use) : IModelUse<Fin<R>>
    {
        public Fin<R> Use<TParams, TState>(ModelSpec spec, SequenceModel<TParams, TState> model, TParams template) where TParams : IParameterTree<TParams> =>
            document.ReadInto(template).Map(p => use.Use(spec, model, p));
    }

    /// <summary>For each cell type, the gradient check of a small random model's loss on a ragged batch of random tokens.</summary>
    public static ImmutableArray<(string Cell, GradCheckReport Report)> GradientChecks(int seed) =>
        [.. Cells.Select(cell =>
        {
            var vocabulary = Vocabulary.FromItems(["abcd"]);
            var spec = new ModelSpec(cell, 4, 1, vocabulary);
            return (cell, Initialize(spec, seed, new GradientCheck(seed)));
        })];

    /// <summary>Checks LossAndGradients of a model on a ragged batch of random tokens against finite differences.</summary>
    private sealed class GradientCheck(int seed) : IModelUse<GradCheckReport>
    {
        public GradCheckReport Use<TParams, TState>(ModelSpec spec, SequenceModel<TParams, TState> model, TParams parameters) where TParams : IParameterTree<TParams>
        {
            var random = new Random(seed);
            var p = Tree.Map(parameters, _ => (2 * random.NextDouble() - 1) * 0.8);
            var v = spec.Vocabulary.Size;
            var items = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, random.Next(1, 6)).Select(_ => random.Next(1, v)).ToImmutableArray()).ToArray();
            var batch = TokenBatch.ForNextToken(items);
            var init = model.InitialState(p, batch.Size);
            var analytic = model.LossAndGradients(p, batch, init).Gradients;
            return GradCheck.Tree(q => model.LossAndGradients(q, batch, init).Loss, p, analytic, GradCheckOptions.Ridders);
        }
    }
}
