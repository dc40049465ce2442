using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>What one step of a cell produces.</summary>
/// <typeparam name="TCarry">The cell's recurrent state (a⟨t⟩ for RNN and GRU; a⟨t⟩ and c⟨t⟩ for LSTM).</typeparam>
/// <typeparam name="TCache">What the step keeps for its backward.</typeparam>
/// <param name="Carry">The state after the step.</param>
/// <param name="Output">The step's output seen by the next layer or a head: the hidden state, n_a×m.</param>
/// <param name="Cache">The values the backward of this step needs.</param>
public readonly record struct CellStep<TCarry, TCache>(TCarry Carry, Matrix<double> Output, TCache Cache);

/// <summary>What the backward of one step produces.</summary>
/// <typeparam name="TParams">The cell's parameter record; gradients have the same type.</typeparam>
/// <typeparam name="TCarry">The cell's recurrent state.</typeparam>
/// <param name="DCarry">Gradient with respect to the carry entering the step.</param>
/// <param name="Dx">Gradient with respect to the step's input x⟨t⟩, n_x×m.</param>
/// <param name="Gradients">The step's contribution to the parameter gradients.</param>
public readonly record struct CellGradient<TParams, TCarry>(TCarry DCarry, Matrix<double> Dx, TParams Gradients);

/// <summary>
/// A recurrent cell as a value: a pure step and its pure backward. Sequencing lives outside the cell, in
/// <see cref="Recurrence"/>, which is written once for every cell.
/// </summary>
/// <typeparam name="TParams">The parameter record.</typeparam>
/// <typeparam name="TCarry">The recurrent state.</typeparam>
/// <typeparam name="TCache">What a step keeps for its backward.</typeparam>
/// <param name="Step">(parameters, carry, x⟨t⟩ n_x×m) → next carry, output n_a×m, cache.</param>
/// <param name="Backward">
/// (cache, gradient w.r.t. the carry leaving the step, gradient w.r.t. the step's output from outside the
/// recurrence, n_a×m) → gradient w.r.t. the carry entering the step, dx⟨t⟩, parameter gradients.
/// </param>
/// <param name="Split">The carry as its matrices, each with one column per example (a⟨t⟩ alone, or a⟨t⟩ and c⟨t⟩).</param>
/// <param name="Join">The inverse of <paramref name="Split"/>.</param>
public sealed record Cell<TParams, TCarry, TCache>(
    Func<TParams, TCarry, Matrix<double>, CellStep<TCarry, TCache>> Step,
    Func<TCache, TCarry, Matrix<double>, CellGradient<TParams, TCarry>> Backward,
    Func<TCarry, ImmutableArray<Matrix<double>>> Split,
    Func<ImmutableArray<Matrix<double>>, TCarry> Join)
    where TParams : IParameterTree<TParams>;

/// <summary>A cell scanned over a sequence.</summary>
/// <typeparam name="TCarry">The recurrent state.</typeparam>
/// <typeparam name="TCache">Per-step cache.</typeparam>
/// <param name="Outputs">The outputs ⟨1⟩..⟨T⟩, each n_a×m.</param>
/// <param name="Caches">The caches ⟨1⟩..⟨T⟩.</param>
/// <param name="Final">The carry after step T.</param>
public sealed record Scanned<TCarry, TCache>(ImmutableArray<Matrix<double>> Outputs, ImmutableArray<TCache> Caches, TCarry Final);

/// <summary>Gradients of a scanned cell.</summary>
/// <typeparam name="TParams">The parameter record.</typeparam>
/// <typeparam name="TCarry">The recurrent state.</typeparam>
/// <param name="Dx">dx⟨1⟩..dx⟨T⟩, each n_x×m.</param>
/// <param name="DInit">Gradient with respect to the initial carry.</param>
/// <param name="Gradients">Parameter gradients summed over the steps.</param>
public sealed record ScannedGradient<TParams, TCarry>(ImmutableArray<Matrix<double>> Dx, TCarry DInit, TParams Gradients);

/// <summary>
/// What the forward pass of a cell with a softmax read-out returns over a sequence (<see cref="RnnForward"/>,
/// <see cref="LstmForward"/>, <see cref="GruForward"/>): the parameters, the states, the predictions and one cache per
/// step. The predictions of a forward pass are computed when <see cref="Predictions"/> is first read (once,
/// thread-safe), with the bits of the step-by-step read-out: a backward pass from an outside gradient on the states
/// does not pay for them.
/// </summary>
/// <typeparam name="TParams">The parameter record.</typeparam>
/// <typeparam name="TCache">Per-step cache.</typeparam>
public abstract record SequenceForward<TParams, TCache>
{
    private readonly Lazy<ImmutableArray<Matrix<double>>> states;
    private readonly Lazy<ImmutableArray<Matrix<double>>> predictions;
    private readonly Lazy<ImmutableArray<TCache>> caches;
    private readonly TParams parameters;

    /// <summary>A forward result whose predictions and caches are given, or computed when first read.</summary>
    /// <param name="parameters">The parameters the sequence ran with.</param>
    /// <param name="states">The states after each step, each n_a×m, or how to copy them out of the tape.</param>
    /// <param name="predictions">ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m, or how to compute them.</param>
    /// <param name="caches">One cache per step, in time order, or how to compute them.</param>
    /// <param name="tape">The sequence driver's own copy of what a backward reads, when the result comes from a forward pass.</param>
    private protected SequenceForward(TParams parameters, Lazy<ImmutableArray<Matrix<double>>> states,
        Lazy<ImmutableArray<Matrix<double>>> predictions, Lazy<ImmutableArray<TCache>> caches, Kernels.Driver.Tape? tape = null) =>
        (this.parameters, this.states, this.predictions, this.caches, Tape) = (parameters, states, predictions, caches, tape);

    /// <summary>The parameters the sequence ran with.</summary>
    public TParams Parameters
    {
        get => parameters;
        init => (parameters, Tape) = (value, null);
    }

    /// <summary>
    /// The states after each step, each n_a×m: a⟨1⟩..a⟨T⟩ (h⟨1⟩..h⟨T⟩ for the GRU); from a forward pass, fresh copies
    /// made when first read (a forward followed by its backward never copies them).
    /// </summary>
    public ImmutableArray<Matrix<double>> States
    {
        get => states.Value;
        init => states = new Lazy<ImmutableArray<Matrix<double>>>(value);
    }

    /// <summary>ŷ⟨1⟩..ŷ⟨T⟩, each n_y×m: from a forward pass, computed from the states and the read-out when first read.</summary>
    public ImmutableArray<Matrix<double>> Predictions
    {
        get => predictions.Value;
        init => predictions = new Lazy<ImmutableArray<Matrix<double>>>(value);
    }

    /// <summary>One cache per step, in time order; from a forward pass, fresh copies made when first read.</summary>
    public ImmutableArray<TCache> Caches
    {
        get => caches.Value;
        init => (caches, Tape) = (new Lazy<ImmutableArray<TCache>>(value), null);
    }

    /// <summary>
    /// What a backward reads, as the forward pass left it (copies of its inputs and parameters, its own states), so that
    /// no later change to a matrix passed in or handed out changes a backward; null once the parameters or the caches
    /// are replaced (then the backward reads the caches).
    /// </summary>
    internal Kernels.Driver.Tape? Tape { get; private init; }

    /// <summary>T and m of the sequence, read from the tape when there is one (so that a check does not copy the states out).</summary>
    internal (int Steps, int M) Shape => Tape is { } tape ? (tape.Steps, tape.M) : (States.Length, States[0].ColumnCount);
}

/// <summary>The forward scan and the reverse fold of back-propagation through time, generic over the cell.</summary>
public static class Recurrence
{
    /// <summary>Folds the cell's step over the sequence, keeping every cache.</summary>
    /// <param name="cell">The cell.</param>
    /// <param name="p">Parameters.</param>
    /// <param name="xs">x⟨1⟩..x⟨T⟩, each n_x×m.</param>
    /// <param name="init">The carry before step 1.</param>
    [Pure]
    public static Scanned<TCarry, TCache> Forward<TParams, TCarry, TCache>(
        Cell<TParams, TCarry, TCache> cell, TParams p, ImmutableArray<Matrix<double>> xs, TCarry init)
        where TParams : IParameterTree<TParams>
    {
        var (final, steps) = Scan.Fold(init, xs, (carry, x) =>
        {
            var step = cell.Step(p, carry, x);
            return (step.Carry, (step.Output, step.Cache));
        });
        return new(steps.Select(s => s.Output).ToImmutableArray(), steps.Select(s => s.Cache).ToImmutableArray(), final);
    }

    /// <summary>
    /// Back-propagation through time: a reverse fold over the caches threading the carry gradient and summing the
    /// parameter gradients.
    /// </summary>
    /// <param name="cell">The cell.</param>
    /// <param name="zeroGradients">A zero of the parameter record (the fold's seed).</param>
    /// <param name="caches">The caches of <see cref="Forward{TParams,TCarry,TCache}"/>.</param>
    /// <param name="dOutputs">Gradients w.r.t. each output from outside the recurrence, each n_a×m.</param>
    /// <param name="dFinal">Gradient w.r.t. the final carry (zero when nothing downstream reads it).</param>
    [Pure]
    public static ScannedGradient<TParams, TCarry> Backward<TParams, TCarry, TCache>(
        Cell<TParams, TCarry, TCache> cell, TParams zeroGradients, ImmutableArray<TCache> caches,
        ImmutableArray<Matrix<double>> dOutputs, TCarry dFinal)
        where TParams : IParameterTree<TParams>
    {
        var steps = caches.Zip(dOutputs, (cache, dOut) => (cache, dOut)).ToImmutableArray();
        var seed = (DCarry: dFinal, Sum: zeroGradients);
        var ((dInit, gradients), dx) = Scan.FoldBack(seed, steps, (acc, s) =>
        {
            var back = cell.Backward(s.cache, acc.DCarry, s.dOut);
            return ((back.DCarry, Tree.Add(acc.Sum, back.Gradients)), back.Dx);
        });
        return new(dx, dInit, gradients);
    }
}
