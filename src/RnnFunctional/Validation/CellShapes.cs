using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// The checks every sequence function of a cell makes once its parameters are known to be consistent: the inputs, the
/// initial states, the labels, the outside gradients and the checkpoint distance, from <see cref="Shapes"/>' checks.
/// </summary>
internal static class CellShapes
{
    /// <summary>An initial state argument: its name, its value and its rows with their name (for instance "n_a×m").</summary>
    public readonly record struct State(string Name, Matrix<double>? Value, int Rows, string Dims);

    /// <summary>A number that must be finite and above 0 (a normalization's ε).</summary>
    public static IEnumerable<Problem> PositiveFinite(string argument, string name, double value)
    {
        if (!(value > 0) || !double.IsFinite(value))
            yield return new(argument, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"expected {name} to be finite and above 0 but got {value}"));
    }

    /// <summary>m: the columns of x⟨1⟩, else of the first initial state given.</summary>
    public static int BatchSize(ImmutableArray<Matrix<double>> xs, params State[] initial) =>
        !xs.IsDefaultOrEmpty && xs[0] is { } x0 ? x0.ColumnCount : initial.Select(s => s.Value?.ColumnCount).FirstOrDefault(c => c is not null) ?? 0;

    /// <summary>Problems of the parameters, else of xs (T ≥ 1 matrices n_x×m) and of each initial state (rows×m).</summary>
    public static Problem[] Forward(Problem[] parameters, ImmutableArray<Matrix<double>> xs, int inputSize, params State[] initial)
    {
        if (parameters.Length > 0) return parameters;
        var m = BatchSize(xs, initial);
        return Shapes.All([Shapes.Sequence("xs", xs, inputSize, m, "n_x×m"), .. initial.Select(s => Shapes.Matrix(s.Name, s.Name, s.Value, s.Rows, m, s.Dims))]);
    }

    /// <summary>Problems of a forward's arguments, else of the labels (T×m classes in [0, n_y)) and of k ≥ 1.</summary>
    public static Problem[] Loss(Problem[] forward, ImmutableArray<ImmutableArray<int>> labels, ImmutableArray<Matrix<double>> xs, int m, int classes, int? every) =>
        forward.Length > 0
            ? forward
            : Shapes.All(Shapes.Labels(nameof(labels), labels, xs.Length, m, classes), Shapes.AtLeast(nameof(every), every ?? 1, 1));

    /// <summary>A forward result, then the outside gradients of its states: T matrices rows×m.</summary>
    public static Problem[] Backward(object? forward, string cell, ImmutableArray<Matrix<double>> states, ImmutableArray<Matrix<double>> da, int rows, string dims) =>
        forward is null
            ? [new(nameof(forward), $"expected forward to be the result of {cell}.Forward but got null")]
            : Shapes.All(Shapes.Sequence(nameof(da), da, rows, states[0].ColumnCount, dims, states.Length));
}
