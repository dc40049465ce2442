/// The code of docs/fsharp.md (between the `// <name>` and `// </name>` tags the article includes), run as tests.
module RnnFunctional.FSharp.Tests.Examples

open MathNet.Numerics.LinearAlgebra
open Xunit
open RnnFunctional
open RnnFunctional.FSharp

[<Fact>]
let ``an RNN's loss, gradients and update in a pipeline`` () =
    // <pipeline>
    let p = RnnParameters.Initialize(inputSize = 3, hiddenSize = 5, outputSize = 4, seed = 1)
    let xs = [ 2; 3 ] |> List.map (fun seed -> Matrix<float>.Build.Random(3, 2, seed)) |> iarr   // T = 2, n_x×m = 3×2
    let a0 = Matrix<float>.Build.Dense(5, 2)                                                     // n_a×m
    let ys = labels [ [ 0; 3 ]; [ 2; 1 ] ]                                                       // ys[t][j]

    let loss = Rnn.LossAndGradients(p, xs, a0, ys)           // .Loss, .Gradients (an RnnParameters), .Dx, .Da0
    let updated = p - 0.1 * loss.Gradients                   // gradients have the parameters' type

    // Twenty steps of gradient descent as a fold: the losses fall.
    let losses =
        Seq.unfold (fun q -> let l = Rnn.LossAndGradients(q, xs, a0, ys) in Some(l.Loss, q - 0.1 * l.Gradients)) p
        |> Seq.take 20
        |> List.ofSeq
    // </pipeline>

    Assert.True(Rnn.LossAndGradients(updated, xs, a0, ys).Loss < loss.Loss)
    Assert.Equal(loss.Loss, losses.Head)
    Assert.True(List.last losses < List.head losses, sprintf "losses %A" losses)

[<Fact>]
let ``a gradient check with an F# function`` () =
    let p = RnnParameters.Initialize(inputSize = 3, hiddenSize = 5, outputSize = 4, seed = 1)
    let xs = [ 2; 3 ] |> List.map (fun seed -> Matrix<float>.Build.Random(3, 2, seed)) |> iarr
    let a0 = Matrix<float>.Build.Dense(5, 2)
    let ys = labels [ [ 0; 3 ]; [ 2; 1 ] ]
    // <gradcheck>
    let loss q = Rnn.LossAndGradients(q, xs, a0, ys).Loss       // RnnParameters -> float
    let report = GradCheck.Tree(loss, p, Rnn.LossAndGradients(p, xs, a0, ys).Gradients, GradCheckOptions.Ridders)
    printfn "%s" (report.Summary())                            // worst entry of each leaf
    // </gradcheck>
    Assert.True(report.Passes 1e-7, report.Summary())
    Assert.Equal(5 * 3 + 5 * 5 + 5 + 4 * 5 + 4, report.Entries.Length)     // Wax, Waa, ba, Wya, by

[<Fact>]
let ``Try functions return a Validation that F# matches on`` () =
    let p = RnnParameters.Initialize(inputSize = 3, hiddenSize = 5, outputSize = 4, seed = 1)
    let xs = [ 2; 3 ] |> List.map (fun seed -> Matrix<float>.Build.Random(3, 2, seed)) |> iarr
    let ys = labels [ [ 0; 3 ]; [ 2; 1 ] ]
    // <validation>
    let describe a0 =
        match Rnn.TryLossAndGradients(p, xs, a0, ys) with
        | Valid loss -> sprintf "loss %.4f" loss.Loss
        | Invalid problems -> problems |> String.concat "; "       // every problem, not only the first

    let good = describe (Matrix<float>.Build.Dense(5, 2))
    let bad = describe (Matrix<float>.Build.Dense(5, 3))           // a0 must be n_a×m = 5×2

    // Or as an F# Result, to compose with Result.map and Result.bind:
    let perStep = Rnn.TryLossAndGradients(p, xs, Matrix<float>.Build.Dense(5, 2), ys)
                  |> Validation.toResult
                  |> Result.map (fun loss -> loss.Loss / float xs.Length)
    // </validation>
    Assert.StartsWith("loss ", good)
    Assert.Contains("expected a0 to be n_a×m = 5×2 but got 5×3", bad)
    match perStep with
    | Ok l -> Assert.True(l > 0.0)
    | Error problems -> Assert.Fail(String.concat "; " problems)

[<Fact>]
let ``every problem of a call is listed`` () =
    let p = RnnParameters.Initialize(inputSize = 3, hiddenSize = 5, outputSize = 4, seed = 1)
    let xs = [ Matrix<float>.Build.Dense(2, 2) ] |> iarr                 // n_x should be 3
    match Rnn.TryLossAndGradients(p, xs, Matrix<float>.Build.Dense(4, 2), labels [ [ 0; 1 ] ]) with
    | Valid _ -> Assert.Fail "expected the shapes to be refused"
    | Invalid problems ->
        Assert.Equal<string list>([ "expected xs[0] to be n_x×m = 3×2 but got 2×2"; "expected a0 to be n_a×m = 5×2 but got 4×2" ], problems)

[<Fact>]
let ``training is a lazy seq of immutable steps`` () =
    // <training>
    let names = Corpus.Items "Brachiosaurus\nStegosaurus\nTriceratops\nVelociraptor\nDiplodocus\nIguanodon\n"
    let vocabulary = Vocabulary.FromItems names
    let struct (train, heldOut) = Corpus.Split(names, heldOutFraction = 0.2, seed = 0L)
    let encoded = train |> Seq.map vocabulary.Encode |> iarr

    let model = LanguageModel.Rnn vocabulary.Size
    let initial = RnnParameters.Initialize(vocabulary.Size, 16, vocabulary.Size, seed = 1)
    let batches = Corpus.Epochs(encoded, batchSize = 2, epochs = 40, random = RandomState.Seeded 1L)
    let options = TrainingOptions(Window = 0, Clipping = Clipping.ByValue 5.0)

    // Training.Fold is a seq: nothing runs until it is enumerated, and each enumeration trains afresh.
    let history = Training.Fold(model, Optimizers.Adam<RnnParameters>(0.01), options, initial, batches)

    let last =
        history
        |> Seq.map (fun step ->                                             // progress, as the steps go by
            if step.Step % 30 = 0 then printfn "step %d: %.3f nats/char" step.Step step.Loss
            step)
        |> Seq.last

    // Stopping early is stopping the enumeration: Seq.tryFind, Seq.takeWhile and Seq.truncate stop the training.
    let firstBelow2 = history |> Seq.tryFind (fun step -> step.Loss < 2.0)

    let struct (perToken, tokens) = LanguageModel.Evaluate(model, last.Parameters, Corpus.InOrder(encoded, 8))
    let struct (samples, _) =
        Sampler.Texts(model, last.Parameters, vocabulary, 3, SamplingOptions(Temperature = 0.8, MaxLength = 20), RandomState.Seeded 7L)
    // </training>

    Assert.Equal(120, last.Step)                          // 5 training names in batches of 2: 3 updates per epoch
    Assert.True(perToken / float tokens < 1.0, sprintf "training loss %f nats per character" (perToken / float tokens))
    Assert.Equal(3, samples.Length)
    Assert.Equal(1, heldOut.Length)
    Assert.True(firstBelow2.IsSome && firstBelow2.Value.Step < last.Step)

[<Fact>]
let ``a stack of layers, a gradient check of it, and a ragged batch`` () =
    // <stack>
    let xs = [ 2; 3; 4 ] |> List.map (fun seed -> Matrix<float>.Build.Random(3, 2, seed)) |> iarr   // T = 3, m = 2
    let p =
        StackParameters.Initialize(
            iarr [ Layer.Rnn(inputSize = 3, hiddenSize = 8, seed = 1)                          // 3 → 8
                   Layer.Gru(inputSize = 8, hiddenSize = 6, seed = 2)                          // 8 → 6
                   Layer.Lstm(inputSize = 6, hiddenSize = 5, seed = 3) ],                      // 6 → 5
            outputSize = 4, seed = 4)                                                          // read-out 5 → 4 classes
    let ys = labels [ [ 0; 3 ]; [ 2; 1 ]; [ 1; 1 ] ]

    let loss = Stack.LossAndGradients(p, xs, ys)                 // optional arguments left out
    let report = GradCheck.Tree((fun q -> Stack.Loss(q, xs, ys)), p, loss.Gradients, GradCheckOptions.Ridders)

    // Ragged: column 1 has length 1; its labels past the end are Ragged.Ignored.
    let ragged = Stack.LossAndGradients(p, xs, labels [ [ 0; 3 ]; [ 2; Ragged.Ignored ]; [ 1; Ragged.Ignored ] ],
                                        lengths = iarr [ 3; 1 ])
    let leaves = p.ToLeaves() |> Seq.map (fun leaf -> leaf.Name) |> List.ofSeq   // layers[0].Wax, …, Wy, By
    // </stack>
    Assert.True(report.Passes 1e-6, report.Summary())
    Assert.True(ragged.Loss < loss.Loss)
    Assert.Contains("layers[2].Wf", leaves)
    Assert.Equal("By", List.last leaves)
