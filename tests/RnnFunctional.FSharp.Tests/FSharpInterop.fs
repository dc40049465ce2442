namespace RnnFunctional.FSharp

open System.Collections.Immutable

/// ImmutableArray values from F# lists, arrays and sequences: the library's inputs are ImmutableArrays, which F#
/// has no literal for.
[<AutoOpen>]
module Collections =
    /// The elements of a list, array or sequence as an ImmutableArray.
    let iarr (items: seq<'T>) : ImmutableArray<'T> = ImmutableArray.CreateRange items

    /// labels[t][j] (the class of example j at step t) from one list per time step.
    let labels (rows: int list list) : ImmutableArray<ImmutableArray<int>> = rows |> Seq.map iarr |> iarr

/// LanguageExt's Validation<Error, 'T>, returned by the library's Try… functions, as F# values. Nothing here needs
/// `open LanguageExt` (whose List, Seq, Map and Option types would shadow F#'s modules of the same names).
module Validation =
    /// Every problem's message, in order (a ManyErrors is flattened).
    let messages (errors: seq<LanguageExt.Common.Error>) : string list =
        errors
        |> Seq.collect (fun e ->
            match e with
            | :? LanguageExt.Common.ManyErrors as many -> many.Errors |> Seq.map (fun inner -> inner.Message)
            | e -> Seq.singleton e.Message)
        |> List.ofSeq

    /// Ok with the value, or Error with every problem's message.
    let toResult (validation: LanguageExt.Validation<LanguageExt.Common.Error, 'T>) : Result<'T, string list> =
        validation.Match(
            (fun (value: 'T) -> Ok value),
            (fun (errors: LanguageExt.Seq<LanguageExt.Common.Error>) -> Result.Error(messages errors)))

/// `match validation with Valid value -> … | Invalid problems -> …`.
[<AutoOpen>]
module ValidationPatterns =
    /// Valid with the value, or Invalid with every problem's message.
    let (|Valid|Invalid|) (validation: LanguageExt.Validation<LanguageExt.Common.Error, 'T>) =
        match Validation.toResult validation with
        | Ok value -> Valid value
        | Result.Error problems -> Invalid problems
