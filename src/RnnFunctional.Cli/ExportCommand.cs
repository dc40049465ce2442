using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

using System.CommandLine;

/// <summary>The options of <c>rnnf export</c>.</summary>
internal sealed record ExportOptions(string Model, string Format, string Output, OnnxPrecision Precision = OnnxPrecision.Float);

/// <summary>
/// <c>rnnf export</c>: writes a trained model file as a safetensors file holding the same leaves (RnnFunctional's own
/// names, F64, exact) and the same metadata (cell, sizes, vocabulary) in its <c>__metadata__</c>, which
/// <c>rnnf sample</c> reads like a model file; or as an ONNX model (<see cref="OnnxExport"/>) with the same metadata
/// in its <c>metadata_props</c>.
/// </summary>
internal static class ExportCommand
{
    private static readonly string[] Formats = ["safetensors", "onnx"];

    private static readonly Option<string?> ModelOption = Options.Text("--model", "FILE", "a model file written by rnnf train (required)");
    private static readonly Option<string?> FormatOption = Options.Choice("--format", "FORMAT", "safetensors or onnx (required)", null, Formats);
    private static readonly Option<string?> OutputOption = Options.Text("--output", "FILE", "the file to write (required)");
    private static readonly Option<string?> PrecisionOption = Options.Choice("--precision", "TYPE",
        "onnx only: float or double (ONNX Runtime runs RNN, LSTM and GRU in float only)", "float", ["float", "double"]);

    /// <summary>The command <c>rnnf export</c> and its options.</summary>
    public static readonly Command Command = CommandParser.Command("export",
        "Writes a trained model file as a safetensors file (leaves under their own names, metadata with the vocabulary) or "
        + "as an ONNX model (opset 14: RNN, LSTM or GRU nodes, a softmax read-out; the metadata in metadata_props).",
        ModelOption, FormatOption, OutputOption, PrecisionOption);

    /// <summary>The options of a parse; every problem is reported, each missing required option too.</summary>
    public static Validation<Error, ExportOptions> Parse(ParseResult parsed)
    {
        var problems = new Option[] { ModelOption, FormatOption, OutputOption }.Where(o => parsed.GetResult(o) is null or { Implicit: true }).Select(o => $"{o.Name} is required").ToList();
        if (parsed.GetResult(PrecisionOption) is { Implicit: false } && parsed.GetResult(FormatOption)?.Tokens is [var format]
            && !format.Value.Equals("onnx", StringComparison.OrdinalIgnoreCase))
            problems.Add("--precision applies to --format onnx only (safetensors models are written in double, exactly)");
        return CommandParser.Check(parsed, problems).Map(r => new ExportOptions(r.GetRequiredValue(ModelOption)!, r.GetRequiredValue(FormatOption)!,
            r.GetRequiredValue(OutputOption)!, r.GetValue(PrecisionOption) == "double" ? OnnxPrecision.Double : OnnxPrecision.Float));
    }

    public static int Run(IReadOnlyList<string> args, Terminal terminal)
    {
        var parsed = CommandParser.Parse(Command, args);
        if (CommandParser.AsksForHelp(parsed)) return Cli.Help(terminal, parsed);
        var result =
            from options in Parse(parsed).ToFin()
            from document in ModelFile.Load(options.Model)
            from stack in Models.Load(document, new ToStack())
            from written in options.Format == "onnx"
                ? OnnxExport.Save(options.Output, stack, options.Precision, metadata: document.Metadata).ToFin()
                : Safetensors.Save(options.Output, ToSafetensors(document))
            select options;
        return result.Match(o =>
        {
            terminal.Out.WriteLine($"wrote {o.Output}");
            return 0;
        }, e => Cli.Fail(terminal, "export", e));
    }

    /// <summary>A model file's metadata and leaves as a safetensors file: each leaf a Rows×Columns F64 tensor.</summary>
    public static SafetensorsFile ToSafetensors(ModelDocument document) =>
        SafetensorsFile.Of(document.Leaves.Select(l => KeyValuePair.Create(l.Name, SafetensorsTensor.Of(l.ToMatrix()))), document.Metadata);

    /// <summary>
    /// A safetensors file as a model document, or an error naming a tensor that is not 2-D. A safetensors file holds
    /// its tensors in ordinal name order; when the metadata names a known cell, a layer count and a vocabulary, the
    /// leaves are put in the order of that model's tree, the order <see cref="Models.Load"/> checks a model file in.
    /// </summary>
    public static Fin<ModelDocument> ToDocument(SafetensorsFile file) =>
        file.Tensors.FirstOrDefault(kv => kv.Value.Shape.Length != 2) is { Key: not null } bad
            ? Fin<ModelDocument>.Fail(Error.New($"safetensors model has the tensor {bad.Key} of shape {bad.Value.ShapeText}, expected a matrix"))
            : Fin<ModelDocument>.Succ(InModelOrder(new ModelDocument(file.Metadata, [.. file.Tensors.Select(kv => Leaf.Of(kv.Key, kv.Value.ToMatrix()))])));

    private static ModelDocument InModelOrder(ModelDocument document)
    {
        var metadata = document.Metadata;
        if (!metadata.TryGetValue("cell", out var cell) || !Models.Cells.Contains(cell)
            || !metadata.TryGetValue("layers", out var text) || !int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var layers)
            || layers < 1 || layers > document.Leaves.Length
            || !metadata.TryGetValue("vocabulary", out var symbols) || Vocabulary.FromSymbols(symbols).Case is not Vocabulary vocabulary)
            return document;
        var rank = Models.Shapes(new ModelSpec(cell, 1, layers, vocabulary)).Select((shape, i) => (shape.Name, i)).ToDictionary(x => x.Name, x => x.i);
        return document with { Leaves = [.. document.Leaves.OrderBy(l => rank.GetValueOrDefault(l.Name, int.MaxValue))] };
    }

    /// <summary>A model file, or a safetensors file when the path ends in <c>.safetensors</c>.</summary>
    public static Fin<ModelDocument> LoadAny(string path) =>
        path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? Safetensors.Load(path).Bind(ToDocument) : ModelFile.Load(path);

    /// <summary>A model as a stack: a stack as it is, a single cell as a one-layer stack with the cell's read-out.</summary>
    internal sealed class ToStack : IModelUse<StackParameters>
    {
        public StackParameters Use<TParams, TState>(ModelSpec spec, SequenceModel<TParams, TState> model, TParams parameters) where TParams : IParameterTree<TParams> =>
            parameters switch
            {
                StackParameters stack => stack,
                RnnParameters r => new([Layer.Rnn(r)], r.Wya, r.By),
                LstmParameters l => new([Layer.Lstm(l)], l.Wy, l.By),
                GruParameters g => new([Layer.Gru(g)], g.Wy, g.By),
                _ => throw new InvalidOperationException($"a model of {typeof(TParams).Name} has no stack"),
            };
    }
}
