using System.Collections.Immutable;
using System.Globalization;
using System.Text.RegularExpressions;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// Reading a PyTorch <c>state_dict</c>: the module the names imply, the expected name and shape of every tensor of
/// that module, and every problem with the tensors found, all at once.
/// </summary>
internal static partial class TorchReader
{
    [GeneratedRegex(@"^(weight_ih|weight_hh|weight_hr|bias_ih|bias_hh)_l(0|[1-9][0-9]{0,8})(_reverse)?$", RegexOptions.CultureInvariant)]
    private static partial Regex RecurrentName();

    /// <summary>One expected tensor: its full name, its shape and the shape's formula.</summary>
    private sealed record Expected(string Name, ImmutableArray<int> Shape, string Formula);

    /// <summary>What the names under the prefix imply: the module, or the problems that stop the inference.</summary>
    private sealed record Implied(TorchModule? Module, ImmutableArray<string> Problems);

    public static Validation<Error, TorchModule> Describe(IReadOnlyDictionary<string, SafetensorsTensor> tensors, TorchCell cell, string prefix)
    {
        var implied = Imply(tensors, cell, prefix);
        return implied.Module is { } module
            ? Validation<Error, TorchModule>.Success(module)
            : TorchStateDict.Fail<TorchModule>(implied.Problems);
    }

    public static Validation<Error, StackParameters> Read(IReadOnlyDictionary<string, SafetensorsTensor> tensors, TorchCell cell, string prefix, string? readOut)
    {
        var implied = Imply(tensors, cell, prefix);
        if (implied.Module is not { } module) return TorchStateDict.Fail<StackParameters>(implied.Problems);
        var expected = Recurrent(module, prefix ?? "");
        var top = (module.Bidirectional ? 2 : 1) * module.OutputSize;
        if (readOut is not null)
        {
            var (weight, bias) = (TorchStateDict.Name(readOut, "weight"), TorchStateDict.Name(readOut, "bias"));
            var ny = tensors.TryGetValue(weight, out var w) && w.Shape.Length == 2 ? w.Shape[0]
                   : tensors.TryGetValue(bias, out var b) && b.Shape.Length == 1 ? b.Shape[0] : 0;
            expected = [.. expected, new(weight, [ny, top], $"n_y×{(module.Bidirectional ? "2" : "")}{OutputSymbol(module)}"), new(bias, [ny], "n_y")];
        }
        var what = $"{module} under {(string.IsNullOrEmpty(prefix) ? "no prefix" : $"'{prefix}'")}{(readOut is null ? "" : $" with the read-out '{readOut}'")}";
        var problems = expected.SelectMany(e => Check(tensors, e, what))
            .Concat(tensors.Keys.Where(name => !expected.Any(e => e.Name == name)).Order(StringComparer.Ordinal)
                .Select(name => $"unexpected tensor {name}: it is not a tensor of {what}"))
            .ToArray();
        if (problems.Length > 0) return TorchStateDict.Fail<StackParameters>(problems);

        var layers = Enumerable.Range(0, module.NumLayers).Select(k =>
        {
            Layer Direction(string suffix)
            {
                var names = Names(prefix ?? "", k, suffix);
                return TorchLayouts.FromTorch(cell, tensors[names.WeightIh], tensors[names.WeightHh],
                    module.Bias ? tensors[names.BiasIh] : null, module.Bias ? tensors[names.BiasHh] : null,
                    module.ProjSize > 0 ? tensors[names.WeightHr] : null);
            }
            return module.Bidirectional ? Layer.Bidirectional(Direction(""), Direction("_reverse")) : Direction("");
        }).ToImmutableArray();
        return Validation<Error, StackParameters>.Success(readOut is null
            ? new StackParameters(layers, Matrix<double>.Build.Dense(0, top), Vector<double>.Build.Dense(0))
            : new StackParameters(layers, tensors[TorchStateDict.Name(readOut, "weight")].ToMatrix(), tensors[TorchStateDict.Name(readOut, "bias")].ToVector()));
    }

    /// <summary>
    /// num_layers = 1 + the highest l{k}, bidirectional when any name ends in _reverse, bias when any name is a
    /// bias_; n_a from the first weight_hh found (its columns), n_x from weight_ih_l0 (its columns). For an LSTM, any
    /// weight_hr means a projection: proj_size and n_a from the first weight_hr found (n_p×n_a), n_p &lt; n_a.
    /// </summary>
    private static Implied Imply(IReadOnlyDictionary<string, SafetensorsTensor> tensors, TorchCell cell, string? prefix)
    {
        if (tensors is null) return new(null, ["expected tensors to be a map of names to tensors but got null"]);
        if (!Enum.IsDefined(cell)) return new(null, [$"expected cell to be RnnTanh, RnnRelu, Lstm or Gru but got {(int)cell}"]);
        var head = string.IsNullOrEmpty(prefix) ? "" : prefix + ".";
        var found = tensors.Keys.Where(n => n.StartsWith(head, StringComparison.Ordinal))
            .Select(n => (Name: n, Match: RecurrentName().Match(n[head.Length..])))
            .Where(x => x.Match.Success)
            .Select(x => (x.Name, Kind: x.Match.Groups[1].Value, Layer: int.Parse(x.Match.Groups[2].Value, CultureInfo.InvariantCulture), Reverse: x.Match.Groups[3].Success))
            .ToArray();
        if (found.Length == 0)
            return new(null, [$"expected the weights of a recurrent module ({head}weight_ih_l0, {head}weight_hh_l0, …) but found none among {Sample(tensors.Keys)}"]);
        var layers = found.Max(f => f.Layer) + 1;
        if (layers > found.Length)
        {
            var highest = found.First(f => f.Layer == layers - 1).Name;
            return new(null, [$"{highest} implies num_layers = {layers} but only {found.Length} recurrent tensors are present"]);
        }
        var gates = Gates(cell);
        var hh = found.Where(f => f.Kind == "weight_hh").Select(f => tensors[f.Name]).FirstOrDefault(t => t.Shape.Length == 2);
        var na = hh is not null ? hh.Shape[1]
               : found.Select(f => tensors[f.Name]).FirstOrDefault(t => t.Shape.Length >= 1 && t.Shape[0] % gates == 0) is { } any ? any.Shape[0] / gates : 0;
        var ih = tensors.TryGetValue($"{head}weight_ih_l0", out var a) && a.Shape.Length == 2 ? a
               : tensors.TryGetValue($"{head}weight_ih_l0_reverse", out var r) && r.Shape.Length == 2 ? r : null;
        var problems = new List<string>();
        if (na < 1) problems.Add($"cannot tell the hidden size n_a: expected {head}weight_hh_l0 to be a {gates}n_a×n_a matrix with n_a ≥ 1");
        if (ih is null || ih.Shape[1] < 1) problems.Add($"cannot tell the input size n_x: expected {head}weight_ih_l0 to be a {gates}n_a×n_x matrix with n_x ≥ 1");
        var projection = 0;
        if (cell == TorchCell.Lstm && found.Any(f => f.Kind == "weight_hr"))
        {
            var hr = found.Where(f => f.Kind == "weight_hr").Select(f => (f.Name, Tensor: tensors[f.Name])).FirstOrDefault(x => x.Tensor.Shape.Length == 2);
            if (hr.Tensor is null || hr.Tensor.Shape[0] < 1 || hr.Tensor.Shape[0] >= hr.Tensor.Shape[1])
                problems.Add($"cannot tell the projection: expected {hr.Name ?? $"{head}weight_hr_l0"} to be an n_p×n_a matrix with 1 ≤ n_p < n_a (PyTorch's proj_size < hidden_size) but got {hr.Tensor?.ShapeText ?? "none of two dimensions"}");
            else (projection, na) = (hr.Tensor.Shape[0], hr.Tensor.Shape[1]);
        }
        return problems.Count > 0
            ? new(null, [.. problems])
            : new(new TorchModule(cell, ih!.Shape[1], na, layers, found.Any(f => f.Reverse), found.Any(f => f.Kind.StartsWith("bias", StringComparison.Ordinal))) { ProjSize = projection }, []);
    }

    /// <summary>The name and shape of every tensor of the module.</summary>
    private static ImmutableArray<Expected> Recurrent(TorchModule m, string prefix)
    {
        var g = Gates(m.Cell);
        var rows = g * m.HiddenSize;
        var gn = g == 1 ? "n_a" : $"{g}n_a";
        var result = ImmutableArray.CreateBuilder<Expected>();
        for (var k = 0; k < m.NumLayers; k++)
            foreach (var suffix in m.Bidirectional ? new[] { "", "_reverse" } : [""])
            {
                var names = Names(prefix, k, suffix);
                var (input, inputFormula) = k == 0 ? (m.InputSize, "n_x") : ((m.Bidirectional ? 2 : 1) * m.OutputSize, $"{(m.Bidirectional ? "2" : "")}{OutputSymbol(m)}");
                result.Add(new(names.WeightIh, [rows, input], $"{gn}×{inputFormula}"));
                result.Add(new(names.WeightHh, [rows, m.OutputSize], $"{gn}×{OutputSymbol(m)}"));
                if (m.ProjSize > 0) result.Add(new(names.WeightHr, [m.ProjSize, m.HiddenSize], "n_p×n_a"));
                if (!m.Bias) continue;
                result.Add(new(names.BiasIh, [rows], gn));
                result.Add(new(names.BiasHh, [rows], gn));
            }
        return result.ToImmutable();
    }

    private static IEnumerable<string> Check(IReadOnlyDictionary<string, SafetensorsTensor> tensors, Expected e, string what)
    {
        if (!tensors.TryGetValue(e.Name, out var t))
        {
            yield return $"missing {e.Name} ({e.Formula} = {Text(e.Shape)}) of {what}";
            yield break;
        }
        if (t is null)
        {
            yield return $"expected {e.Name} to be a tensor but got null";
            yield break;
        }
        if (!t.Shape.SequenceEqual(e.Shape))
            yield return $"expected {e.Name} to be {e.Formula} = {Text(e.Shape)} but got {t.ShapeText}";
        else if (TensorLayout.FirstNonFinite(t.Values.AsSpan()) is var i and >= 0)
            yield return string.Create(CultureInfo.InvariantCulture, $"expected {e.Name} to be finite but entry {i} (row-major) is {t.Values[i]}");
    }

    private static (string WeightIh, string WeightHh, string BiasIh, string BiasHh, string WeightHr) Names(string prefix, int k, string suffix) =>
        (TorchStateDict.Name(prefix, $"weight_ih_l{k}{suffix}"), TorchStateDict.Name(prefix, $"weight_hh_l{k}{suffix}"),
         TorchStateDict.Name(prefix, $"bias_ih_l{k}{suffix}"), TorchStateDict.Name(prefix, $"bias_hh_l{k}{suffix}"),
         TorchStateDict.Name(prefix, $"weight_hr_l{k}{suffix}"));

    /// <summary>The symbol of a direction's output size in messages: n_p with a projection, n_a without.</summary>
    private static string OutputSymbol(TorchModule m) => m.ProjSize > 0 ? "n_p" : "n_a";

    private static int Gates(TorchCell cell) => cell switch { TorchCell.Lstm => 4, TorchCell.Gru => 3, _ => 1 };

    private static string Text(ImmutableArray<int> shape) => shape.Length == 1 ? $"[{shape[0]}]" : string.Join("×", shape);

    private static string Sample(IEnumerable<string> names)
    {
        var all = names.Order(StringComparer.Ordinal).ToArray();
        return all.Length == 0 ? "no tensors" : string.Join(", ", all.Take(5)) + (all.Length > 5 ? $" and {all.Length - 5} more" : "");
    }
}
