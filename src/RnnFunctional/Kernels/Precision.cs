namespace RnnFunctional;

/// <summary>The precision in which the matrix products of the sequence kernels are computed.</summary>
public enum Precision
{
    /// <summary>Every product in double precision: the default and the reference.</summary>
    Double,

    /// <summary>
    /// The products of the fused sequence kernels in single precision: each operand is rounded to float32 as it is
    /// packed for the product, sums run in float32 over a depth panel of at most 256 terms, and the result is widened
    /// back to double. Storage, element-wise maps, sums over time blocks and chunks, and every record stay in double.
    /// </summary>
    Single,
}

/// <summary>
/// The precision of the products computed on the calling flow of execution, set for the duration of a function
/// (in the manner of a context manager): <c>Compute.With(Precision.Single, () =&gt; Lstm.LossAndGradients(…))</c>.
/// </summary>
/// <remarks>
/// Every product computed inside <see cref="With{T}"/> follows the setting. A fused sequence function reads it once,
/// when it starts, on the thread that calls it, and all the threads of that call use it; a backward from a forward
/// result runs in the precision of its forward. Single-step functions and custom cells on the generic fold read it
/// at each product.
/// </remarks>
public static class Compute
{
    private static readonly AsyncLocal<Precision> Current = new();

    /// <summary>The precision in force here: <see cref="RnnFunctional.Precision.Double"/> unless set by <see cref="With{T}"/>.</summary>
    public static Precision Precision => Current.Value;

    /// <summary>The value of <paramref name="body"/> computed with the products in <paramref name="precision"/>; the previous setting is restored after.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="precision"/> is not a defined value.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    public static T With<T>(Precision precision, Func<T> body)
    {
        if (!Enum.IsDefined(precision))
            throw new ArgumentOutOfRangeException(nameof(precision), precision, "expected precision to be Precision.Double or Precision.Single");
        ArgumentNullException.ThrowIfNull(body);
        var saved = Current.Value;
        Current.Value = precision;
        try
        {
            return body();
        }
        finally
        {
            Current.Value = saved;
        }
    }
}
