using System.Collections.Immutable;
using System.Globalization;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// The check at the end of a backward: every gradient it returns is finite, or <see cref="NonFiniteException"/> says
/// which one overflowed. One vectorised pass over the results (<see cref="System.Numerics.Tensors.TensorPrimitives.IsFiniteAll{T}(ReadOnlySpan{T})"/>),
/// none inside the recurrence.
/// </summary>
internal static class Finite
{
    /// <summary>Throws unless every entry of the RNN's gradients, dx and the carry's gradient is finite.</summary>
    /// <param name="function">The function that computed them, for the message (e.g. <c>Rnn.Backward</c>).</param>
    /// <param name="gradients">The parameter gradients.</param>
    /// <param name="dx">dx⟨1⟩..dx⟨T⟩ (default when not computed).</param>
    /// <param name="dCarry">The gradient of the initial state (or of the previous state).</param>
    public static void Rnn(string function, RnnParameters gradients, ImmutableArray<Matrix<double>> dx, Matrix<double> dCarry)
    {
        Matrix(function, "dWax", gradients.Wax);
        Matrix(function, "dWaa", gradients.Waa);
        Vector(function, "dba", gradients.Ba);
        Matrix(function, "dWya", gradients.Wya);
        Vector(function, "dby", gradients.By);
        if (!dx.IsDefault)
            for (var t = 0; t < dx.Length; t++) Matrix(function, "dx", dx[t], t);
        Matrix(function, "the initial state's gradient", dCarry);
    }

    /// <summary>
    /// Throws unless every entry of <paramref name="m"/> is finite; the message names it <c>name</c>, or
    /// <c>name[index]</c> for one matrix of a sequence (the name is written only when the check fails).
    /// </summary>
    public static void Matrix(string function, string name, Matrix<double> m, int? index = null)
    {
        var values = m.AsColumnMajorArray() ?? m.ToColumnMajorArray();
        // IsFiniteAll is false for no values at all: an empty matrix is checked by its length.
        if (values.Length == 0 || System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<double>(values)) return;
        var k = Array.FindIndex(values, v => !double.IsFinite(v));
        throw Overflow(function, string.Create(CultureInfo.InvariantCulture,
            $"{name}{(index is { } i ? $"[{i}]" : "")} entry ({k % m.RowCount}, {k / m.RowCount}) is {values[k]}"));
    }

    /// <summary>Throws unless every entry of <paramref name="v"/> is finite.</summary>
    public static void Vector(string function, string name, Vector<double> v)
    {
        var values = v.AsArray() ?? v.ToArray();
        if (values.Length == 0 || System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<double>(values)) return;
        var k = Array.FindIndex(values, x => !double.IsFinite(x));
        throw Overflow(function, string.Create(CultureInfo.InvariantCulture, $"{name} entry {k} is {values[k]}"));
    }

    private static NonFiniteException Overflow(string function, string what) =>
        new($"expected the gradients of {function} to be finite but {what}: the inputs, states or outside gradients have grown too large for double precision (a ReLU recurrence does not saturate)");
}
