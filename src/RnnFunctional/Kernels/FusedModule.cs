using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Kernels;

/// <summary>
/// The sequence functions of a cell's public module that runs on the <see cref="Driver"/> — the forward, the backward
/// of outside gradients and the read-out's loss, each with its checks — written once for every such cell, as PyTorch's
/// RNNBase serves each of its recurrent modules. A cell gives only what differs: its fused math and how the driver's
/// stacked gradients map back to its parameter record (<see cref="Kernel"/>), the check of its recurrence, its sizes,
/// its read-out, the names of its initial carry parts, and how its result records are made.
/// </summary>
/// <remarks>
/// The first carry part, h⟨t⟩, may have fewer rows than the driver's n_a (an LSTM with a projection, n_p ≤ n_a): it
/// is then padded with zero rows on the way in, and its outputs and its gradient are cut back to their first rows on
/// the way out; the read-out's Wy gets zero columns for the zero rows of h. A cell whose h has n_a rows passes through
/// unchanged.
/// </remarks>
/// <param name="Name">The module's name, as problems say it (<c>LayerNormLstm</c>); its parameter record is Name + <c>Parameters</c>.</param>
/// <param name="Kernel">The cell on the driver and its stacked gradients as its parameter record.</param>
/// <param name="Recurrence">The check of the recurrence's parameters, named <c>name.Leaf</c> in problems of the argument.</param>
/// <param name="Sizes">n_x, the rows of h⟨t⟩ (what the read-out reads) and the rows of each carry part.</param>
/// <param name="ReadOut">The read-out Wy (n_y × the rows of h) and By of a parameter record.</param>
/// <param name="WithReadOut">A parameter record with another read-out.</param>
/// <param name="Carry">Each initial carry part's argument name and the name of its rows (<c>("a0", "n_a")</c>).</param>
/// <param name="Forwarded">The forward record of the parameters, the states h⟨1⟩..h⟨T⟩ and the tape.</param>
/// <param name="Read">The parameters, the states and the tape of a forward record.</param>
/// <param name="Backwarded">The backward record of dx⟨1⟩..dx⟨T⟩, the gradient of each initial carry part and the parameter gradients.</param>
/// <param name="Lost">The loss record of the loss, the parameter gradients, dx⟨1⟩..dx⟨T⟩ and the gradient of each initial carry part.</param>
internal sealed record FusedModule<TParams, TForward, TGradient, TLoss>(
    string Name,
    FusedKernel<TParams> Kernel,
    Func<TParams, string, string, IEnumerable<Problem>> Recurrence,
    Func<TParams, LayerSizes> Sizes,
    Func<TParams, (Matrix<double>? Wy, Vector<double>? By)> ReadOut,
    Func<TParams, Matrix<double>, Vector<double>, TParams> WithReadOut,
    ImmutableArray<(string Name, string Rows)> Carry,
    Func<TParams, ImmutableArray<Matrix<double>>, Driver.Tape, TForward> Forwarded,
    Func<TForward, (TParams Parameters, ImmutableArray<Matrix<double>> States, Driver.Tape Tape)> Read,
    Func<ImmutableArray<Matrix<double>>, ImmutableArray<Matrix<double>>, TParams, TGradient> Backwarded,
    Func<double, TParams, ImmutableArray<Matrix<double>>, ImmutableArray<Matrix<double>>, TLoss> Lost)
    where TParams : class
    where TForward : class
{
    // ---- the sequence functions, checked ----

    /// <summary>The forward pass over xs from the initial carry parts <paramref name="init"/>.</summary>
    [Pure]
    public Checked<TForward> Forward(TParams p, ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init) =>
        new(Checks.Forward(p, xs, init), () => ForwardKernel(p, xs, init));

    /// <summary>Back-propagation through time of outside gradients <paramref name="da"/> on the states, with zero gradients on the final carry.</summary>
    [Pure]
    public Checked<TGradient> Backward(TForward forward, ImmutableArray<Matrix<double>> da) =>
        new(CheckBackward(forward, da), () => BackwardKernel(forward, da));

    /// <summary>The summed softmax cross-entropy of the read-out and its gradients; with <paramref name="every"/> = k, checkpointed every k steps.</summary>
    [Pure]
    public Checked<TLoss> Loss(TParams p, ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init,
        ImmutableArray<ImmutableArray<int>> labels, int? every) =>
        new(Checks.Loss(p, xs, init, labels, every), () => LossKernel(p, xs, init, labels, every ?? int.MaxValue));

    /// <summary>The parameters, or every problem found.</summary>
    [Pure]
    public Validation<Error, TParams> Validate(TParams p) => Shapes.ToValidation(CheckParameters(p), () => p);

    // ---- kernels: arguments already checked ----

    private TForward ForwardKernel(TParams p, ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init)
    {
        var cell = Kernel.Cell(p);
        var run = Driver.Forward(cell, xs, Driver.Padded(init, cell.Hidden), default, reverse: false, xs.Length, Summation.DefaultThreads);
        var rows = Sizes(p).Output;
        return Forwarded(p, Driver.Top(run.Outputs, rows), run.Tape);
    }

    private TGradient BackwardKernel(TForward forward, ImmutableArray<Matrix<double>> da)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var (p, _, tape) = Read(forward);
        var back = Driver.Backward(tape, Driver.Padded(da, tape.Cell.Hidden), Driver.ZeroCarry(tape.Cell, da[0].ColumnCount), Summation.DefaultThreads);
        var (wy, by) = ReadOut(p);
        return Backwarded(back.Dx, Driver.TopFirst(back.DInit, Sizes(p).Output), WithReadOut(Kernel.Gradients(p, back.Gradients), Ops.ZerosLike(wy!), Ops.ZerosLike(by!)));
    }

    private TLoss LossKernel(TParams p, ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init,
        ImmutableArray<ImmutableArray<int>> labels, int every)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var (cell, (wy, by)) = (Kernel.Cell(p), ReadOut(p));
        var result = Driver.Loss(cell, xs, Driver.Padded(init, cell.Hidden), labels, default, Block.Of(Widened(wy!, cell.Hidden)), Block.Of(by!), every,
            inputGradients: true, Summation.DefaultThreads);
        return Lost(Ops.CompensatedSum(result.Losses), Kernel.Gradients(p, result.Gradients), result.Dx, Driver.TopFirst(result.DInit, Sizes(p).Output));
    }

    /// <summary>Wy with zero columns on its right up to <paramref name="columns"/>, for the zero rows of h; itself when it has them.</summary>
    private static Matrix<double> Widened(Matrix<double> wy, int columns) =>
        wy.ColumnCount == columns ? wy : wy.Append(Matrix<double>.Build.Dense(wy.RowCount, columns - wy.ColumnCount));

    /// <summary>The parameters with an empty read-out, Wy 0 × the rows of h and By of length 0: those of a layer of the cell.</summary>
    [Pure]
    public TParams WithoutReadOut(TParams p) => WithReadOut(p, Matrix<double>.Build.Dense(0, Sizes(p).Output), Vector<double>.Build.Dense(0));

    // ---- checks ----

    /// <summary>The problems of a parameter record's recurrence, its read-out aside: the check of a layer of the cell.</summary>
    public Problem[] CheckRecurrence(TParams? p) =>
        p is null ? [new(nameof(p), $"expected p to be {Name}Parameters but got null")] : Shapes.All(Recurrence(p, nameof(p), ""));

    private Problem[] CheckParameters(TParams? p)
    {
        var recurrence = CheckRecurrence(p);
        if (recurrence.Length > 0 || p is null) return recurrence;
        var (wy, by) = ReadOut(p);
        var ny = Shapes.Consensus(wy?.RowCount, by?.Count);
        return Shapes.All(
            Shapes.Matrix(nameof(p), "Wy", wy, ny, Sizes(p).Output, $"n_y×{Carry[0].Rows}"),
            Shapes.Vector(nameof(p), "By", by, ny, "n_y"));
    }

    /// <summary>The checks of the arguments once the parameters are known.</summary>
    private CellChecks<TParams> Checks => field ??= new(Name, CheckParameters, Sizes, p => ReadOut(p).Wy!.RowCount, [.. Carry.Select(c => (c.Name, "", c.Rows))]);

    private Problem[] CheckBackward(TForward? forward, ImmutableArray<Matrix<double>> da)
    {
        var (p, states, _) = forward is null ? default : Read(forward);
        return Checks.Backward(forward, p, states.IsDefault ? 0 : states.Length, states.IsDefault ? 0 : states[0].ColumnCount, da);
    }
}

/// <summary>A checked call: the problems of its arguments, and the kernel that runs once there are none.</summary>
/// <param name="Problems">Every problem found in the arguments.</param>
/// <param name="Kernel">The call on arguments known to be right.</param>
internal readonly record struct Checked<T>(Problem[] Problems, Func<T> Kernel)
{
    /// <summary>The kernel's result, or one <see cref="ArgumentException"/> that lists every problem.</summary>
    public T OrThrow()
    {
        Shapes.ThrowIfAny(Problems);
        return Kernel();
    }

    /// <summary>The kernel's result, or every problem, as a validation.</summary>
    public Validation<Error, T> ToValidation() => Shapes.ToValidation(Problems, Kernel);
}
