/// FsCheck properties written in F#, with FsCheck.Xunit's [<Property>] and RnnFunctional.Testing's GradientProperty.
module RnnFunctional.FSharp.Tests.Properties

open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open MathNet.Numerics.LinearAlgebra
open RnnFunctional
open RnnFunctional.FSharp
open RnnFunctional.Testing

// <properties>
/// A GRU's gradients agree with finite differences for any seed and batch size.
[<Property(MaxTest = 20)>]
let ``a GRU's gradients match finite differences`` (seed: int) (PositiveInt batch) =
    let m = 1 + batch % 3
    let p = GruParameters.Initialize(3, 4, 2, seed)
    let xs = [ 1 .. 3 ] |> List.map (fun t -> Matrix<float>.Build.Random(3, m, seed + t)) |> iarr
    let a0 = Matrix<float>.Build.Dense(4, m)
    let ys = [ for t in 0 .. 2 -> [ for j in 0 .. m - 1 -> (t + j + abs (seed % 2)) % 2 ] ] |> labels
    let loss = Gru.LossAndGradients(p, xs, a0, ys)
    GradCheck.Tree((fun q -> Gru.LossAndGradients(q, xs, a0, ys).Loss), p, loss.Gradients, GradCheckOptions.Ridders)
    |> GradientProperty.Holds

/// The training fold is lazy and finite: one step per batch of each epoch, whatever the batch size.
[<Property(MaxTest = 15)>]
let ``the training fold takes one step per batch`` (PositiveInt batchSize) (PositiveInt epochs) =
    let batchSize, epochs = 1 + batchSize % 5, 1 + epochs % 3
    let names = Corpus.Items "ab\nabc\nba\ncab\nbca\n"
    let vocabulary = Vocabulary.FromItems names
    let encoded = names |> Seq.map vocabulary.Encode |> iarr
    let history =
        Training.Fold(LanguageModel.Rnn vocabulary.Size, Optimizers.Sgd<RnnParameters>(0.1), TrainingOptions.Default,
                      RnnParameters.Initialize(vocabulary.Size, 4, vocabulary.Size, seed = 1),
                      Corpus.Epochs(encoded, batchSize, epochs, RandomState.Seeded 3L))
    let steps = history |> Seq.map (fun step -> step.Step) |> List.ofSeq
    steps = [ 1 .. epochs * ((5 + batchSize - 1) / batchSize) ]
    |> Prop.label (sprintf "batch size %d, %d epochs: steps %A" batchSize epochs steps)
// </properties>
