using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>The dropout masks of <see cref="Stack"/>'s functions: their checks, and input masks applied to whole matrices (the per-layer path).</summary>
public static partial class Stack
{
    /// <summary>mask⟨t⟩ ⊙ xs⟨t⟩ for every step, or <paramref name="xs"/> itself (the same matrices) when there is no mask.</summary>
    internal static ImmutableArray<Matrix<double>> Masked(ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> masks) =>
        masks.IsDefault ? xs : [.. xs.Zip(masks, (x, mask) => x.PointwiseMultiply(mask))];

    /// <summary>The problems found, or when there are none, the dropout mask's (which can be checked only against well-formed arguments).</summary>
    internal static Problem[] ThenDropout(Problem[] problems, StackParameters p, ImmutableArray<Matrix<double>> xs, DropoutMask? dropout) =>
        problems.Length > 0 ? problems : CheckDropout(p, xs, dropout);

    /// <summary>
    /// Every problem of a dropout mask for <paramref name="p"/> over <paramref name="xs"/>: one entry per layer (or
    /// default), each layer's input masks T of n_in×m, its recurrent masks one per direction of
    /// <see cref="Layer.RecurrentRows"/>×m, the read-out's T of n_top×m; every entry finite. Nothing when the
    /// arguments it depends on are themselves wrong (those are reported by the other checks).
    /// </summary>
    internal static Problem[] CheckDropout(StackParameters p, ImmutableArray<Matrix<double>> xs, DropoutMask? dropout)
    {
        if (dropout is null || p is null || p.Layers.IsDefaultOrEmpty || xs.IsDefaultOrEmpty || xs[0] is null) return [];
        var (layers, steps, m) = (p.Layers.Length, xs.Length, xs[0].ColumnCount);
        const string argument = nameof(dropout);

        IEnumerable<Problem> PerLayer<T>(ImmutableArray<T> entries, string name) =>
            entries.IsDefault || entries.Length == layers ? []
            : [new(argument, $"expected dropout.{name} to have one entry per layer, L = {layers}, but got {entries.Length}")];

        IEnumerable<Problem> Steps(ImmutableArray<Matrix<double>> masks, string name, int rows, string dims)
        {
            if (masks.IsDefault) return [];
            if (masks.Length != steps) return [new(argument, $"expected {name} to have one mask per step, T = {steps}, but got {masks.Length}")];
            return masks.SelectMany((mask, t) => Shapes.Matrix(argument, $"{name}[{t}]", mask, rows, m, dims));
        }

        IEnumerable<Problem> Directions(ImmutableArray<Matrix<double>> masks, string name, ImmutableArray<int> rows)
        {
            if (masks.IsDefault) return [];
            if (masks.Length != rows.Length)
                return [new(argument, $"expected {name} to have one mask per direction, {rows.Length}, but got {masks.Length}")];
            return masks.SelectMany((mask, d) => Shapes.Matrix(argument, $"{name}[{d}]", mask, rows[d], m, "n_a×m"));
        }

        var shapes = Shapes.All(PerLayer(dropout.Inputs, nameof(dropout.Inputs)), PerLayer(dropout.Recurrent, nameof(dropout.Recurrent)));
        if (shapes.Length > 0) return shapes;
        return Shapes.All(
            Shapes.All([.. p.Layers.Select((layer, l) => Steps(dropout.InputsOf(l), $"dropout.Inputs[{l}]", layer.InputSize, "n_in×m"))]),
            Shapes.All([.. p.Layers.Select((layer, l) => Directions(dropout.RecurrentOf(l), $"dropout.Recurrent[{l}]", layer.RecurrentRows))]),
            Steps(dropout.ReadOut, "dropout.ReadOut", p.Layers[^1].OutputSize, "n_top×m"));
    }
}
