using System.Collections;
using System.Collections.Immutable;
using System.Reflection;
using FsCheck;
using FsCheck.Fluent;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Testing;

/// <summary>
/// The matrices and vectors a caller can write into after a call: those it passed in and those it was handed out.
/// Built from explicit lists, or found through public properties with <see cref="Reachable"/>.
/// </summary>
public sealed class Writable
{
    private readonly ImmutableArray<Matrix<double>> matrices;
    private readonly ImmutableArray<Vector<double>> vectors;

    private Writable(ImmutableArray<Matrix<double>> matrices, ImmutableArray<Vector<double>> vectors) =>
        (this.matrices, this.vectors) = (matrices, vectors);

    /// <summary>Nothing to write into.</summary>
    public static Writable None { get; } = new([], []);

    /// <summary>The given matrices.</summary>
    /// <param name="matrices">Matrices the caller holds.</param>
    public static Writable Of(params IEnumerable<Matrix<double>> matrices) => None.And(matrices);

    /// <summary>
    /// Every matrix and vector reachable from <paramref name="values"/> through public instance properties of the
    /// library's types (records such as parameters, caches and results), immutable arrays and other sequences, each
    /// once. Reading a property runs its getter: a lazily computed property (a forward result's predictions) is then
    /// computed before the writes. To prove that such a property does not read buffers the caller can write into,
    /// leave it out (list the other matrices yourself) and read it in the law's <c>later</c>.
    /// </summary>
    /// <param name="values">Parameters, inputs, results.</param>
    public static Writable Reachable(params IEnumerable<object?> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var (ms, vs, seen) = (ImmutableArray.CreateBuilder<Matrix<double>>(), ImmutableArray.CreateBuilder<Vector<double>>(),
                              new HashSet<object>(ReferenceEqualityComparer.Instance));
        void Visit(object? value)
        {
            switch (value)
            {
                case null or string or Delegate: return;
                case Matrix<double> m: if (seen.Add(m)) ms.Add(m); return;
                case Vector<double> v: if (seen.Add(v)) vs.Add(v); return;
            }
            var type = value.GetType();
            if (type.IsPrimitive || type.IsEnum || (!type.IsValueType && !seen.Add(value))) return;
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ImmutableArray<>)
                && type.GetProperty(nameof(ImmutableArray<int>.IsDefault))?.GetValue(value) is true)
                return;
            if (value is IEnumerable sequence)
            {
                foreach (var item in sequence) Visit(item);
                return;
            }
            if (type.Namespace?.StartsWith(nameof(RnnFunctional), StringComparison.Ordinal) != true) return;
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
                if (property.GetIndexParameters().Length == 0 && property.GetMethod is { IsPublic: true })
                    Visit(property.GetValue(value));
        }
        foreach (var value in values) Visit(value);
        return new(ms.ToImmutable(), vs.ToImmutable());
    }

    /// <summary>These and the given matrices.</summary>
    /// <param name="more">More matrices.</param>
    public Writable And(params IEnumerable<Matrix<double>> more)
    {
        ArgumentNullException.ThrowIfNull(more);
        return new(matrices.AddRange(more), vectors);
    }

    /// <summary>These and the given vectors.</summary>
    /// <param name="more">More vectors.</param>
    public Writable And(IEnumerable<Vector<double>> more)
    {
        ArgumentNullException.ThrowIfNull(more);
        return new(matrices, vectors.AddRange(more));
    }

    /// <summary>These and those of <paramref name="more"/>.</summary>
    /// <param name="more">Another set.</param>
    public Writable And(Writable more)
    {
        ArgumentNullException.ThrowIfNull(more);
        return new(matrices.AddRange(more.matrices), vectors.AddRange(more.vectors));
    }

    /// <summary>The number of matrices and vectors.</summary>
    public int Count => matrices.Length + vectors.Length;

    /// <summary>The number of entries of all of them.</summary>
    public int Entries => matrices.Sum(m => m.RowCount * m.ColumnCount) + vectors.Sum(v => v.Count);

    /// <summary>Replaces every entry x of every matrix and vector by <paramref name="write"/>(x), in place.</summary>
    /// <param name="write">The new value of an entry.</param>
    public void Write(Func<double, double> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        foreach (var m in matrices) m.MapInplace(write, MathNet.Numerics.LinearAlgebra.Zeros.Include);
        foreach (var v in vectors) v.MapInplace(write, MathNet.Numerics.LinearAlgebra.Zeros.Include);
    }
}

/// <summary>
/// The law of values that cannot change behind the library's back: once a call has returned, the caller may write
/// into every matrix it passed in and every matrix it was handed out (refill an input buffer, edit a returned state),
/// and every later result — a backward over the forward, a lazily read prediction — is bit for bit what it would have
/// been without the writes.
/// </summary>
public static class MutationLaws
{
    /// <summary>The writes made into every entry, each in a run of its own: NaN, and x + 1.</summary>
    public static ImmutableArray<(string Name, Func<double, double> Write)> Writes { get; } =
        [("NaN", static _ => double.NaN), ("x + 1", static x => x + 1)];

    /// <summary>
    /// Runs <paramref name="forward"/> on fresh inputs and reads <paramref name="later"/> as the reference; then, for
    /// each of <see cref="Writes"/>, runs <paramref name="forward"/> on fresh inputs again, writes into every entry of
    /// every matrix and vector of <paramref name="exposed"/>, and reads <paramref name="later"/>: it must have the
    /// reference's bits (<see cref="Compare.Same(IReadOnlyList{double},IReadOnlyList{double})"/>). The label names the
    /// write and the first entry that changed, or the exception <paramref name="later"/> threw.
    /// </summary>
    /// <typeparam name="TInputs">Whatever the forward reads: parameters, inputs, outside gradients.</typeparam>
    /// <typeparam name="TResult">What the forward returns.</typeparam>
    /// <param name="inputs">
    /// Builds new inputs, equal at every call and sharing no matrix with earlier calls (e.g. a case drawn from a
    /// seed): the law writes into them. The law fails when a reference read after the writes differs from the first.
    /// </param>
    /// <param name="forward">The call whose results must not change, e.g. <c>c =&gt; Rnn.Forward(c.P, c.Xs, c.A0)</c>.</param>
    /// <param name="exposed">
    /// What the caller can write into after the call: the matrices it passed in and those it was handed out (see
    /// <see cref="Writable.Reachable"/>); not those <paramref name="later"/> itself passes in.
    /// </param>
    /// <param name="later">
    /// The later results, read after the writes, as numbers: e.g. every entry of <c>Rnn.Backward(result, c.Da)</c>.
    /// </param>
    public static Property ResultsIndependentOfMutation<TInputs, TResult>(
        Func<TInputs> inputs,
        Func<TInputs, TResult> forward,
        Func<TInputs, TResult, Writable> exposed,
        Func<TInputs, TResult, IEnumerable<double>> later)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(forward);
        ArgumentNullException.ThrowIfNull(exposed);
        ArgumentNullException.ThrowIfNull(later);

        double[] Reference() { var i = inputs(); return [.. later(i, forward(i))]; }
        var reference = Reference();

        Property Round(string name, Func<double, double> write)
        {
            var i = inputs();
            var result = forward(i);
            var writable = exposed(i, result);
            if (writable.Count == 0) return false.Label("nothing exposed: the law would compare a run with itself");
            writable.Write(write);
            try
            {
                double[] after = [.. later(i, result)];
                var difference = Compare.FirstDifference(reference, after);
                return (difference is null).Label(
                    $"after writing {name} into the {writable.Entries} entries of {writable.Count} exposed matrices and vectors, later results changed: {difference}");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return false.Label($"after writing {name} into {writable.Count} exposed matrices and vectors, reading the later results threw {e.GetType().Name}: {e.Message}");
            }
        }

        var rounds = Writes.Select(w => Round(w.Name, w.Write)).Aggregate((a, b) => a.And(b));
        var fresh = Compare.FirstDifference(reference, Reference());
        return rounds.And((fresh is null).Label($"inputs() must build fresh values: a second reference differs from the first: {fresh}"));
    }
}
