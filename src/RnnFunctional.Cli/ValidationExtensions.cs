using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

/// <summary>Conversions between LanguageExt result types at the program's boundary.</summary>
internal static class ValidationExtensions
{
    /// <summary>A validation as a <see cref="Fin{A}"/>: every failure kept, as one error or as many.</summary>
    public static Fin<A> ToFin<A>(this Validation<Error, A> validation) =>
        validation.Match(
            Succ: Fin<A>.Succ,
            Fail: errors => Fin<A>.Fail(errors.Count == 1 ? errors.Head : Error.Many(errors)));
}
