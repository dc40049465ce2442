namespace RnnFunctional;

/// <summary>
/// A computation on finite arguments left double precision: a value overflowed to ±∞ or became NaN (for example
/// the logits of a read-out whose weights have grown past 1e300 in a diverging training). Thrown rather than returning
/// a NaN loss or gradient.
/// </summary>
public sealed class NonFiniteException : ArithmeticException
{
    /// <summary>An exception with the given message.</summary>
    /// <param name="message">What overflowed and why.</param>
    public NonFiniteException(string message)
        : base(message)
    {
    }
}
