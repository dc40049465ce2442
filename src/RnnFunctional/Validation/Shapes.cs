using System.Collections.Immutable;
using System.Globalization;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>One thing wrong with an argument.</summary>
/// <param name="Argument">The parameter name of the public function that received the bad value.</param>
/// <param name="Message">What was expected and what was found, naming the argument (and its index, if any).</param>
internal readonly record struct Problem(string Argument, string Message);

/// <summary>
/// Every shape and value check of the library, in one place. Checks return the problems they find so that a
/// caller can report all of them at once, either as an <see cref="ArgumentException"/> or as a
/// <see cref="Validation{FAIL,SUCCESS}"/>.
/// </summary>
internal static class Shapes
{
    public static IEnumerable<Problem> Matrix(string argument, string name, Matrix<double>? m, int rows, int columns, string dims)
    {
        if (m is null)
            yield return new(argument, $"expected {name} to be {dims} = {rows}×{columns} but got null");
        else if (m.RowCount != rows || m.ColumnCount != columns)
            yield return new(argument, $"expected {name} to be {dims} = {rows}×{columns} but got {m.RowCount}×{m.ColumnCount}");
        else if (FirstNonFinite(m) is { } bad)
            yield return new(argument, string.Create(CultureInfo.InvariantCulture, $"expected {name} to be finite but entry ({bad.Row}, {bad.Column}) is {bad.Value}"));
    }

    public static IEnumerable<Problem> Vector(string argument, string name, Vector<double>? v, int length, string dim)
    {
        if (v is null)
            yield return new(argument, $"expected {name} to have length {dim} = {length} but got null");
        else if (v.Count != length)
            yield return new(argument, $"expected {name} to have length {dim} = {length} but got {v.Count}");
        else if (Enumerable.Range(0, v.Count).FirstOrDefault(i => !double.IsFinite(v[i]), -1) is var i and >= 0)
            yield return new(argument, string.Create(CultureInfo.InvariantCulture, $"expected {name} to be finite but entry {i} is {v[i]}"));
    }

    public static IEnumerable<Problem> NotNull(string argument, object? value)
    {
        if (value is null) yield return new(argument, $"expected {argument} but got null");
    }

    /// <summary>A sequence of T ≥ 1 matrices, each rows×columns (columns = m, the batch size).</summary>
    public static IEnumerable<Problem> Sequence(string argument, ImmutableArray<Matrix<double>> xs, int rows, int columns, string dims, int? length = null)
    {
        if (xs.IsDefault)
        {
            yield return new(argument, $"expected {argument} to be a sequence of {dims} matrices but got a default (null) array");
            yield break;
        }
        if (length is { } t && xs.Length != t)
            yield return new(argument, $"expected {argument} to have one matrix per step, T = {t}, but got {xs.Length}");
        else if (xs.Length == 0)
            yield return new(argument, $"expected {argument} to hold at least one step but it is empty");
        if (columns == 0 && xs.Length > 0)
            yield return new(argument, $"expected {argument} to hold at least one example (m ≥ 1 columns) but got {dims} = {rows}×0 matrices");
        for (var i = 0; i < xs.Length; i++)
            foreach (var p in Matrix(argument, $"{argument}[{i}]", xs[i], rows, columns, dims))
                yield return p;
    }

    /// <summary>Labels: labels[t][j] ∈ [0, n_y) for T steps and m examples.</summary>
    public static IEnumerable<Problem> Labels(string argument, ImmutableArray<ImmutableArray<int>> labels, int steps, int batch, int classes)
    {
        if (labels.IsDefault)
        {
            yield return new(argument, $"expected {argument} to be T×m = {steps}×{batch} class indices but got a default (null) array");
            yield break;
        }
        if (labels.Length != steps)
            yield return new(argument, $"expected {argument} to have one row per step, T = {steps}, but got {labels.Length}");
        for (var t = 0; t < labels.Length; t++)
        {
            var row = labels[t];
            if (row.IsDefault || row.Length != batch)
            {
                yield return new(argument, $"expected {argument}[{t}] to have one label per example, m = {batch}, but got {(row.IsDefault ? "null" : row.Length)}");
                continue;
            }
            for (var j = 0; j < batch; j++)
                if (row[j] < 0 || row[j] >= classes)
                    yield return new(argument, $"expected {argument}[{t}][{j}] to be a class in [0, n_y) = [0, {classes}) but got {row[j]}");
        }
    }

    /// <summary>An integer of at least <paramref name="minimum"/>.</summary>
    public static IEnumerable<Problem> AtLeast(string argument, int value, int minimum)
    {
        if (value < minimum) yield return new(argument, $"expected {argument} to be at least {minimum} but got {value}");
    }

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> naming <paramref name="argument"/> when <paramref name="array"/> is
    /// a default (null) immutable array, whose members would otherwise throw InvalidOperation or NullReference.
    /// </summary>
    public static void ThrowIfDefault<T>(ImmutableArray<T> array, string argument, string expected)
    {
        if (array.IsDefault) throw new ArgumentException($"expected {argument} to be {expected} but got a default (null) array", argument);
    }

    /// <summary>The problems of a set of independent checks, evaluated eagerly and in order.</summary>
    public static Problem[] All(params IEnumerable<Problem>[] checks) => checks.SelectMany(c => c).ToArray();

    /// <summary>Throws one <see cref="ArgumentException"/> that lists every problem, named after the first argument at fault.</summary>
    public static void ThrowIfAny(Problem[] problems)
    {
        if (problems.Length > 0)
            throw new ArgumentException(string.Join("; ", problems.Select(p => p.Message)), problems[0].Argument);
    }

    /// <summary>The problems as a LanguageExt validation: success with <paramref name="value"/> when there are none.</summary>
    public static Validation<Error, A> ToValidation<A>(Problem[] problems, Func<A> value) =>
        problems.Length == 0
            ? Validation<Error, A>.Success(value())
            : Validation<Error, A>.Fail(problems.Select(p => Error.New(p.Message)).ToSeq());

    /// <summary>A size of at least 1.</summary>
    public static IEnumerable<Problem> Positive(string argument, int value) => AtLeast(argument, value, 1);

    /// <summary>The lengths of a ragged batch: one per example, each in [1, T].</summary>
    public static IEnumerable<Problem> Lengths(string argument, ImmutableArray<int> lengths, int batch, int steps)
    {
        if (lengths.IsDefault)
        {
            yield return new(argument, $"expected {argument} to be m = {batch} lengths but got a default (null) array");
            yield break;
        }
        if (lengths.Length != batch)
            yield return new(argument, $"expected {argument} to have one length per example, m = {batch}, but got {lengths.Length}");
        for (var j = 0; j < lengths.Length; j++)
            if (lengths[j] < 1 || lengths[j] > steps)
                yield return new(argument, $"expected {argument}[{j}] to be a length in [1, T] = [1, {steps}] but got {lengths[j]}");
    }

    /// <summary>
    /// Labels of a ragged batch: labels[t][j] ∈ [0, n_y) for t &lt; len_j and <see cref="Ragged.Ignored"/> for
    /// t ≥ len_j, for T steps and m = lengths.Length examples. The lengths must already be valid.
    /// </summary>
    public static IEnumerable<Problem> RaggedLabels(string argument, ImmutableArray<ImmutableArray<int>> labels, ImmutableArray<int> lengths, int steps, int classes)
    {
        var batch = lengths.Length;
        if (labels.IsDefault)
        {
            yield return new(argument, $"expected {argument} to be T×m = {steps}×{batch} class indices but got a default (null) array");
            yield break;
        }
        if (labels.Length != steps)
            yield return new(argument, $"expected {argument} to have one row per step, T = {steps}, but got {labels.Length}");
        for (var t = 0; t < labels.Length; t++)
        {
            var row = labels[t];
            if (row.IsDefault || row.Length != batch)
            {
                yield return new(argument, $"expected {argument}[{t}] to have one label per example, m = {batch}, but got {(row.IsDefault ? "null" : row.Length)}");
                continue;
            }
            for (var j = 0; j < batch; j++)
                if (t < lengths[j] && (row[j] < 0 || row[j] >= classes))
                    yield return new(argument, $"expected {argument}[{t}][{j}] to be a class in [0, n_y) = [0, {classes}) (step {t} is within the length {lengths[j]} of example {j}) but got {row[j]}");
                else if (t >= lengths[j] && row[j] != Ragged.Ignored)
                    yield return new(argument, $"expected {argument}[{t}][{j}] to be Ragged.Ignored = {Ragged.Ignored} (step {t} is past the length {lengths[j]} of example {j}) but got {row[j]}");
        }
    }

    /// <summary>Every entry of every leaf is finite; names are prefixed with <paramref name="prefix"/>.</summary>
    public static IEnumerable<Problem> Finite(string argument, string prefix, ImmutableArray<Leaf> leaves)
    {
        foreach (var leaf in leaves)
        {
            var k = Enumerable.Range(0, leaf.Values.Length).FirstOrDefault(i => !double.IsFinite(leaf.Values[i]), -1);
            if (k >= 0)
                yield return new(argument, string.Create(CultureInfo.InvariantCulture,
                    $"expected {prefix}.{leaf.Name} to be finite but entry ({k % leaf.Rows}, {k / leaf.Rows}) is {leaf.Values[k]}"));
        }
    }

    /// <summary>The matrices of a state (the parts of a carry's Split), with the given row counts and m columns.</summary>
    public static IEnumerable<Problem> Parts(string argument, string name, ImmutableArray<Matrix<double>> parts, ImmutableArray<int> rows, int columns, string dims)
    {
        if (parts.IsDefault)
        {
            yield return new(argument, $"expected {name} to hold {rows.Length} {dims} matrices but got a default (null) array");
            yield break;
        }
        if (parts.Length != rows.Length)
        {
            yield return new(argument, $"expected {name} to hold {rows.Length} {dims} matrices, one per part of the state, but got {parts.Length}");
            yield break;
        }
        for (var i = 0; i < parts.Length; i++)
            foreach (var p in Matrix(argument, $"{name}[{i}]", parts[i], rows[i], columns, dims))
                yield return p;
    }

    /// <summary>
    /// The size most of the given sources agree on (the first of the most frequent, ignoring nulls; 0 when there is
    /// none), so that the one field that disagrees with the others is the one reported.
    /// </summary>
    public static int Consensus(params int?[] sizes) =>
        sizes.Where(s => s.HasValue).Select(s => s!.Value)
             .GroupBy(s => s).OrderByDescending(g => g.Count()).Select(g => g.Key).FirstOrDefault();

    private static (int Row, int Column, double Value)? FirstNonFinite(Matrix<double> m)
    {
        var values = m.AsColumnMajorArray() ?? m.ToColumnMajorArray();
        if (System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<double>(values)) return null;
        var k = Array.FindIndex(values, v => !double.IsFinite(v));
        return k < 0 ? null : (k % m.RowCount, k / m.RowCount, values[k]);
    }
}
