using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>The argument checks of <see cref="Stack"/>'s functions, each problem naming the argument and the shape expected.</summary>
public static partial class Stack
{
    // ---- checks ----

    /// <summary>The layers are present, each is well formed, and each takes the outputs of the one below.</summary>
    internal static Problem[] CheckLayers(string argument, string name, ImmutableArray<Layer> layers)
    {
        if (layers.IsDefaultOrEmpty) return [new(argument, $"expected {name} to hold at least one layer but it is empty")];
        var present = Shapes.All([.. layers.Select((layer, l) => layer is null
            ? [new Problem(argument, $"expected layers[{l}] to be a Layer but got null")]
            : Enumerable.Empty<Problem>())]);
        if (present.Length > 0) return present;
        var each = Shapes.All([.. layers.Select((layer, l) => layer.Check(argument, $"layers[{l}]"))]);
        if (each.Length > 0) return each;
        return [.. Enumerable.Range(1, layers.Length - 1)
            .Where(l => layers[l].InputSize != layers[l - 1].OutputSize)
            .Select(l => new Problem(argument,
                $"expected layers[{l}] to take the outputs of layers[{l - 1}], n_in = {layers[l - 1].OutputSize}, but its input size is {layers[l].InputSize}"))];
    }

    private static Problem[] CheckParameters(StackParameters? p)
    {
        if (p is null) return [new(nameof(p), "expected p to be StackParameters but got null")];
        var layers = CheckLayers(nameof(p), "p.Layers", p.Layers);
        if (layers.Length > 0) return layers;
        var (ny, top) = (p.Wy?.RowCount ?? p.By?.Count ?? 0, p.Layers[^1].OutputSize);
        return Shapes.All(Shapes.Matrix(nameof(p), nameof(p.Wy), p.Wy, ny, top, "n_y×n_top"), Shapes.Vector(nameof(p), nameof(p.By), p.By, ny, "n_y"));
    }

    private static Problem[] CheckForward(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<int>? lengths,
        ImmutableArray<ImmutableArray<Matrix<double>>>? initial, int? every)
    {
        var parameters = CheckParameters(p);
        if (parameters.Length > 0) return parameters;
        var m = BatchSize(xs, lengths, initial);
        var sequence = Shapes.All(Shapes.Sequence(nameof(xs), xs, p.InputSize, m, "n_x×m"));
        var steps = xs.IsDefaultOrEmpty ? 1 : xs.Length;
        return Shapes.All(
            sequence,
            lengths is { } l ? Shapes.Lengths(nameof(lengths), l, m, steps) : [],
            initial is { } i ? CheckStates(nameof(initial), p, i, m) : [],
            every is { } k ? Shapes.AtLeast(nameof(every), k, 1) : []);
    }

    /// <summary>One state per layer, each of the layer's parts n_a×m: initial states, or the gradients of final states.</summary>
    private static IEnumerable<Problem> CheckStates(string argument, StackParameters p, ImmutableArray<ImmutableArray<Matrix<double>>> states, int m)
    {
        if (states.IsDefault || states.Length != p.Layers.Length)
            return [new(argument, $"expected {argument} to have one state per layer, L = {p.Layers.Length}, but got {(states.IsDefault ? "a default (null) array" : states.Length)}")];
        return Shapes.All([.. p.Layers.Select((layer, l) => Shapes.Parts(argument, $"{argument}[{l}]", states[l], layer.StateRows, m, "n_a×m"))]);
    }

    private static Problem[] CheckBackward(StackForward forward, ImmutableArray<Matrix<double>> dTop, ImmutableArray<ImmutableArray<Matrix<double>>>? dFinal) =>
        forward is null
            ? [new(nameof(forward), "expected forward to be the result of Stack.Forward but got null")]
            : Shapes.All(Shapes.Sequence(nameof(dTop), dTop, forward.Top[0].RowCount, forward.Top[0].ColumnCount, "n_top×m", forward.Top.Length),
                         dFinal is { } d ? CheckStates(nameof(dFinal), forward.Parameters, d, forward.Top[0].ColumnCount) : []);

    private static Problem[] CheckLoss(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<ImmutableArray<int>> labels,
        ImmutableArray<int>? lengths, ImmutableArray<ImmutableArray<Matrix<double>>>? initial, int? every)
    {
        var forward = CheckForward(p, xs, lengths, initial, every);
        if (forward.Length > 0) return forward;
        return lengths is { } l
            ? Shapes.All(Shapes.RaggedLabels(nameof(labels), labels, l, xs.Length, p.OutputSize))
            : Shapes.All(Shapes.Labels(nameof(labels), labels, xs.Length, xs[0].ColumnCount, p.OutputSize));
    }

    /// <summary>m as the first present argument says: x⟨1⟩, else the lengths, else the first initial state.</summary>
    private static int BatchSize(ImmutableArray<Matrix<double>> xs, ImmutableArray<int>? lengths, ImmutableArray<ImmutableArray<Matrix<double>>>? initial) =>
        !xs.IsDefaultOrEmpty && xs[0] is { } x0 ? x0.ColumnCount
        : lengths is { IsDefault: false } l ? l.Length
        : initial is { IsDefaultOrEmpty: false } i && !i[0].IsDefaultOrEmpty && i[0][0] is { } s ? s.ColumnCount
        : 0;
}
