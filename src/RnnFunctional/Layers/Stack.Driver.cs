using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>The one-pass loss of a stack on the stack driver: what training runs when every layer has a fused cell.</summary>
public static partial class Stack
{
    /// <summary>The loss of a stack whose layers all run on the driver, in one pass (<see cref="StackDriver"/>).</summary>
    internal sealed record DriverLoss(double[] Losses, StackParameters Gradients, ImmutableArray<Matrix<double>> Dx,
        ImmutableArray<ImmutableArray<Matrix<double>>> DInitial, ImmutableArray<ImmutableArray<Matrix<double>>> Final);

    /// <summary>
    /// The read-out's cross-entropy and every gradient on the stack driver (arguments checked), label(t, j) giving each
    /// column's class or <see cref="Ragged.Ignored"/>, on <paramref name="threads"/> threads (default: every core); null when a layer runs on the generic fold
    /// (a layer of a generic cell). Dropout masks (inputs, recurrent state, read-out) run on the driver.
    /// </summary>
    internal static DriverLoss? OnDriver(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<int> lengths,
        ImmutableArray<ImmutableArray<Matrix<double>>> initial, Func<int, int, int> label, bool inputGradients, DropoutMask? dropout = null, int? threads = null)
    {
        using var scratch = CallScratch.Open();                                        // no cell made here outlives the call
        var masks = dropout ?? DropoutMask.None;
        var layers = p.Layers.Select(layer => layer.OnDriver()).ToArray();
        if (layers.Any(layer => layer is null)) return null;
        var fused = layers.Select(layer => layer!.Value).ToArray();
        var ragged = Ragged.OrFull(lengths, xs.Length);
        var r = StackDriver.Loss([.. fused.Select(f => f.Cells)], xs, initial, ragged, label, Block.Of(p.Wy), Block.Of(p.By), inputGradients,
            threads ?? Summation.DefaultThreads, masks.Inputs, masks.ReadOut, masks.Recurrent);
        var gradients = p with { Layers = [.. fused.Select((f, l) => f.Gradients(r.Layers[l].Directions))], Wy = r.DWy.ToMatrix(), By = r.DBy.ToVector() };
        return new(r.Losses, gradients, r.Dx, [.. r.Layers.Select(l => l.DInit)], [.. r.Layers.Select(l => l.Final)]);
    }

    /// <summary><see cref="OnDriver"/> after the checks of <see cref="Forward"/>, without dx: a language model's loss.</summary>
    internal static DriverLoss? CheckedOnDriver(StackParameters p, ImmutableArray<Matrix<double>> xs, ImmutableArray<int> lengths,
        ImmutableArray<ImmutableArray<Matrix<double>>> initial, Func<int, int, int> label, DropoutMask? dropout = null)
    {
        Shapes.ThrowIfAny(CheckForward(p, xs, lengths, initial, null));
        Shapes.ThrowIfAny(CheckDropout(p, xs, dropout));
        return OnDriver(p, xs, lengths, initial, label, inputGradients: false, dropout);
    }
}
