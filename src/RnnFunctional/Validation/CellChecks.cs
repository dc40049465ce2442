using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// The checks of a cell module's functions, written once for every cell: its parameters' own check first, then, on
/// parameters known to be consistent, the shapes of x⟨t⟩ or xs, of the carry parts, of the labels, of the outside
/// gradients and of the checkpoint distance (<see cref="CellShapes"/>).
/// </summary>
/// <typeparam name="TParams">The cell's parameter record.</typeparam>
/// <param name="Name">The module's name, as problems say it (<c>Gru</c>).</param>
/// <param name="Parameters">The check of a parameter record, null included.</param>
/// <param name="Sizes">n_x, the rows of h⟨t⟩ and the rows of each carry part.</param>
/// <param name="Classes">n_y, the classes of the read-out.</param>
/// <param name="Carry">Each carry part's initial argument name (<c>a0</c>), its argument name in one step (<c>aPrev</c>) and the name of its rows (<c>n_a</c>).</param>
internal sealed record CellChecks<TParams>(string Name, Func<TParams?, Problem[]> Parameters, Func<TParams, LayerSizes> Sizes, Func<TParams, int> Classes,
    ImmutableArray<(string Initial, string Previous, string Rows)> Carry)
    where TParams : class
{
    /// <summary>The problems of one step's arguments: x⟨t⟩ (n_x×m) and each previous carry part, m the columns of x⟨t⟩, else of the first part given.</summary>
    public Problem[] Step(TParams? p, Matrix<double>? xt, params Matrix<double>?[] prev)
    {
        var parameters = Parameters(p);
        if (parameters.Length > 0 || p is null) return parameters;
        var (sizes, m) = (Sizes(p), xt?.ColumnCount ?? prev.Select(s => s?.ColumnCount).FirstOrDefault(c => c is not null) ?? 0);
        return Shapes.All([Shapes.Matrix(nameof(xt), nameof(xt), xt, sizes.Input, m, "n_x×m"),
            .. prev.Select((s, k) => Shapes.Matrix(Carry[k].Previous, Carry[k].Previous, s, sizes.State[k], m, $"{Carry[k].Rows}×m"))]);
    }

    /// <summary>The problems of a sequence's arguments: xs (T ≥ 1 matrices n_x×m) and each initial carry part.</summary>
    public Problem[] Forward(TParams? p, ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init)
    {
        var parameters = Parameters(p);
        return parameters.Length > 0 || p is null ? parameters : CellShapes.Forward(parameters, xs, Sizes(p).Input, Initial(p, init));
    }

    /// <summary>A forward's arguments, then the labels (T×m classes in [0, n_y)) and k ≥ 1 when given.</summary>
    public Problem[] Loss(TParams? p, ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init, ImmutableArray<ImmutableArray<int>> labels,
        int? every)
    {
        var forward = Forward(p, xs, init);
        return forward.Length > 0 || p is null ? forward : CellShapes.Loss(forward, labels, xs, CellShapes.BatchSize(xs, Initial(p, init)), Classes(p), every);
    }

    /// <summary>The problems of a loss's arguments and, besides them, of k ≥ 1.</summary>
    public Problem[] LossCheckpointed(TParams? p, ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init,
        ImmutableArray<ImmutableArray<int>> labels, int every) =>
        Shapes.All(Loss(p, xs, init, labels, null), Shapes.AtLeast(nameof(every), every, 1));

    /// <summary>A forward's arguments, then the outside gradients da (T matrices, rows of h⟨t⟩×m) and k ≥ 1.</summary>
    public Problem[] BackwardCheckpointed(TParams? p, ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init,
        ImmutableArray<Matrix<double>> da, int every)
    {
        var forward = Forward(p, xs, init);
        return forward.Length > 0 || p is null
            ? forward
            : Shapes.All(Shapes.Sequence(nameof(da), da, Sizes(p).Output, CellShapes.BatchSize(xs, Initial(p, init)), $"{Carry[0].Rows}×m", xs.Length),
                Shapes.AtLeast(nameof(every), every, 1));
    }

    /// <summary>A forward result (null is a problem), then the outside gradients da of its states: T matrices, rows of h⟨t⟩×m.</summary>
    public Problem[] Backward(object? forward, TParams? p, int steps, int m, ImmutableArray<Matrix<double>> da) =>
        forward is null || p is null
            ? [new(nameof(forward), $"expected forward to be the result of {Name}.Forward but got null")]
            : Shapes.All(Shapes.Sequence(nameof(da), da, Sizes(p).Output, m, $"{Carry[0].Rows}×m", steps));

    /// <summary>A forward over the sequence driver or a fold (null is a problem), then the outside gradients of its states.</summary>
    public Problem[] Backward<TCache>(SequenceForward<TParams, TCache>? forward, ImmutableArray<Matrix<double>> da) =>
        Backward(forward, forward?.Parameters, forward?.Shape.Steps ?? 0, forward?.Shape.M ?? 0, da);

    private CellShapes.State[] Initial(TParams p, ImmutableArray<Matrix<double>> init)
    {
        var rows = Sizes(p).State;
        return [.. Carry.Select((c, k) => new CellShapes.State(c.Initial, init[k], rows[k], $"{c.Rows}×m"))];
    }
}
