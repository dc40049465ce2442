using System.Collections.Immutable;
using System.Diagnostics.Contracts;

namespace RnnFunctional;

/// <summary>
/// The two folds every recurrence is built from, like JAX's <c>lax.scan</c>: a left-to-right scan and a
/// right-to-left scan whose outputs stay aligned with their inputs (<c>lax.scan(reverse=True)</c>).
/// </summary>
public static class Scan
{
    /// <summary>Threads a carry through <paramref name="xs"/> from first to last, collecting one output per element.</summary>
    /// <param name="init">The carry before the first element.</param>
    /// <param name="xs">The elements, in order.</param>
    /// <param name="step">A pure function of (carry, element) giving (next carry, output).</param>
    /// <returns>The final carry and the outputs, output t belonging to xs[t].</returns>
    [Pure]
    public static (TCarry Carry, ImmutableArray<TOut> Outputs) Fold<TCarry, TIn, TOut>(
        TCarry init, ImmutableArray<TIn> xs, Func<TCarry, TIn, (TCarry Carry, TOut Output)> step)
    {
        var outputs = ImmutableArray.CreateBuilder<TOut>(xs.Length);
        var carry = init;
        foreach (var x in xs)
        {
            (carry, var output) = step(carry, x);
            outputs.Add(output);
        }
        return (carry, outputs.MoveToImmutable());
    }

    /// <summary>
    /// Threads a carry through <paramref name="xs"/> from last to first. Outputs keep the order of the inputs:
    /// output t belongs to xs[t] although it is computed after xs[t+1].
    /// </summary>
    /// <param name="init">The carry before the last element.</param>
    /// <param name="xs">The elements, in order.</param>
    /// <param name="step">A pure function of (carry, element) giving (next carry, output).</param>
    /// <returns>The carry after the first element and the time-aligned outputs.</returns>
    [Pure]
    public static (TCarry Carry, ImmutableArray<TOut> Outputs) FoldBack<TCarry, TIn, TOut>(
        TCarry init, ImmutableArray<TIn> xs, Func<TCarry, TIn, (TCarry Carry, TOut Output)> step)
    {
        var outputs = new TOut[xs.Length];
        var carry = init;
        for (var t = xs.Length - 1; t >= 0; t--)
            (carry, outputs[t]) = step(carry, xs[t]);
        return (carry, System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(outputs));
    }
}
