using System.Collections.Immutable;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

/// <summary>The options of <c>rnnf export</c>.</summary>
internal sealed record ExportOptions(string Model, string Format, string Output);

/// <summary>
/// <c>rnnf export</c>: writes a trained model file as a safetensors file holding the same leaves (RnnFunctional's own
/// names, F64, exact) and the same metadata (cell, sizes, vocabulary) in its <c>__metadata__</c>, which
/// <c>rnnf sample</c> reads like a model file.
/// </summary>
internal static class ExportCommand
{
    public static readonly ImmutableArray<OptionSpec> Specs =
    [
        new("model", "FILE", "a model file written by rnnf train (required)"),
        new("format", "FORMAT", "safetensors (onnx is not supported yet) (required)"),
        new("output", "FILE", "the file to write (required)"),
    ];

    public static string Help => Arguments.Help("rnnf export --model FILE --format safetensors --output FILE",
        "Writes a trained model file as a safetensors file (leaves under their own names, metadata with the vocabulary).", Specs);

    public static Validation<Error, ExportOptions> Parse(IReadOnlyList<string> args) =>
        Arguments.Parse(args, Specs).Bind(a =>
        {
            foreach (var required in new[] { "model", "format", "output" }.Where(r => !a.Has(r)))
                a.Problem($"--{required} is required");
            var format = a.Text("format", "safetensors")!;
            if (a.Has("format") && format != "safetensors")
                a.Problem(format == "onnx" ? "--format onnx is not supported yet (expected safetensors)" : $"--format must be safetensors but got '{format}'");
            return a.Build(() => new ExportOptions(a.Text("model", "")!, format, a.Text("output", "")!));
        });

    public static int Run(IReadOnlyList<string> args, Terminal terminal)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            terminal.Out.Write(Help);
            return 0;
        }
        var result =
            from options in Parse(args).ToFin()
            from document in ModelFile.Load(options.Model)
            from _ in Models.Load(document, new Check())
            from written in Safetensors.Save(options.Output, ToSafetensors(document))
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
    /// A safetensors file as a model document (leaves in ordinal name order; <see cref="Models.Load"/> puts them in the
    /// model's order), or an error naming a tensor that is not 2-D.
    /// </summary>
    public static Fin<ModelDocument> ToDocument(SafetensorsFile file) =>
        file.Tensors.FirstOrDefault(kv => kv.Value.Shape.Length != 2) is { Key: not null } bad
            ? Fin<ModelDocument>.Fail(Error.New($"safetensors model has the tensor {bad.Key} of shape {bad.Value.ShapeText}, expected a matrix"))
            : Fin<ModelDocument>.Succ(new ModelDocument(file.Metadata, [.. file.Tensors.Select(kv => Leaf.Of(kv.Key, kv.Value.ToMatrix()))]));

    /// <summary>A model file, or a safetensors file when the path ends in <c>.safetensors</c>.</summary>
    public static Fin<ModelDocument> LoadAny(string path) =>
        path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? Safetensors.Load(path).Bind(ToDocument) : ModelFile.Load(path);

    private sealed class Check : IModelUse<Unit>
    {
        public Unit Use<TParams, TState>(ModelSpec spec, SequenceModel<TParams, TState> model, TParams parameters) where TParams : IParameterTree<TParams> => Unit.Default;
    }
}
