using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>The layers of the cells beside the RNN, the LSTM and the GRU: each runs on the sequence driver.</summary>
public abstract partial record Layer
{
    /// <summary>
    /// A peephole-LSTM layer (the cell of <see cref="RnnFunctional.PeepholeLstm"/>): its state is [a⟨t⟩, c⟨t⟩] and its
    /// output a⟨t⟩.
    /// </summary>
    /// <param name="p">Wf, Wi, Wc, Wo n_a×(n_a+n_x), Bf, Bi, Bc, Bo, Pf, Pi, Po n_a; its read-out Wy, By is not used and not kept.</param>
    /// <returns>A layer with leaves Wf, Bf, Wi, Bi, Wc, Bc, Wo, Bo, Pf, Pi, Po, input size n_x, output size n_a and state rows [n_a, n_a].</returns>
    [Pure]
    public static Layer PeepholeLstm(PeepholeLstmParameters p)
    {
        Shapes.ThrowIfAny(p is null
            ? [new(nameof(p), "expected p to be PeepholeLstmParameters but got null")]
            : Shapes.All(RnnFunctional.PeepholeLstm.CheckRecurrence(p, nameof(p), "")));
        return new CellLayer<PeepholeLstmParameters, LstmState, PeepholeLstmCache>(RnnFunctional.PeepholeLstm.Cell,
            p! with { Wy = Matrix<double>.Build.Dense(0, p.HiddenSize), By = Vector<double>.Build.Dense(0) },
            ReadOut, q => new(q.InputSize, q.HiddenSize, [q.HiddenSize, q.HiddenSize]), RnnFunctional.PeepholeLstm.CheckRecurrence)
        {
            Fused = new(PeepholeLstmFused.Of, PeepholeLstmFused.Gradients),
        };
    }

    /// <summary>A peephole-LSTM layer with random parameters, initialised as <see cref="PeepholeLstmParameters.Initialize"/> does.</summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same layer.</param>
    [Pure]
    public static Layer PeepholeLstm(int inputSize, int hiddenSize, int seed) => PeepholeLstm(PeepholeLstmParameters.Initialize(inputSize, hiddenSize, 1, seed));

    /// <summary>
    /// A layer-normalized LSTM layer (the cell of <see cref="RnnFunctional.LayerNormLstm"/>): its state is [a⟨t⟩, c⟨t⟩]
    /// and its output a⟨t⟩.
    /// </summary>
    /// <param name="p">Wx 4n_a×n_x, Wh 4n_a×n_a, B, GainX, GainH 4n_a, GainC, BiasC n_a; its read-out Wy, By is not used and not kept.</param>
    /// <returns>A layer with leaves Wx, Wh, B, GainX, GainH, GainC, BiasC, input size n_x, output size n_a and state rows [n_a, n_a].</returns>
    [Pure]
    public static Layer LayerNormLstm(LayerNormLstmParameters p)
    {
        Shapes.ThrowIfAny(p is null
            ? [new(nameof(p), "expected p to be LayerNormLstmParameters but got null")]
            : Shapes.All(RnnFunctional.LayerNormLstm.CheckRecurrence(p, nameof(p), "")));
        return new CellLayer<LayerNormLstmParameters, LstmState, LayerNormLstmCache>(RnnFunctional.LayerNormLstm.Cell,
            p! with { Wy = Matrix<double>.Build.Dense(0, p.HiddenSize), By = Vector<double>.Build.Dense(0) },
            ReadOut, q => new(q.InputSize, q.HiddenSize, [q.HiddenSize, q.HiddenSize]), RnnFunctional.LayerNormLstm.CheckRecurrence)
        {
            Fused = new(LayerNormLstmFused.Of, LayerNormLstmFused.Gradients),
        };
    }

    /// <summary>A layer-normalized LSTM layer with random parameters, initialised as <see cref="LayerNormLstmParameters.Initialize"/> does.</summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same layer.</param>
    [Pure]
    public static Layer LayerNormLstm(int inputSize, int hiddenSize, int seed) => LayerNormLstm(LayerNormLstmParameters.Initialize(inputSize, hiddenSize, 1, seed));

    /// <summary>A layer-normalized GRU layer (the cell of <see cref="RnnFunctional.LayerNormGru"/>): its state and its output are h⟨t⟩.</summary>
    /// <param name="p">Wih 3n_a×n_x, Whh 3n_a×n_a, Bih, Bhh, GainIh, GainHh 3n_a; its read-out Wy, By is not used and not kept.</param>
    /// <returns>A layer with leaves Wih, Whh, Bih, Bhh, GainIh, GainHh, input size n_x, output size n_a and state rows [n_a].</returns>
    [Pure]
    public static Layer LayerNormGru(LayerNormGruParameters p)
    {
        Shapes.ThrowIfAny(p is null
            ? [new(nameof(p), "expected p to be LayerNormGruParameters but got null")]
            : Shapes.All(RnnFunctional.LayerNormGru.CheckRecurrence(p, nameof(p), "")));
        return new CellLayer<LayerNormGruParameters, Matrix<double>, LayerNormGruCache>(RnnFunctional.LayerNormGru.Cell,
            p! with { Wy = Matrix<double>.Build.Dense(0, p.HiddenSize), By = Vector<double>.Build.Dense(0) },
            ReadOut, q => new(q.InputSize, q.HiddenSize, [q.HiddenSize]), RnnFunctional.LayerNormGru.CheckRecurrence)
        {
            Fused = new(LayerNormGruFused.Of, LayerNormGruFused.Gradients),
        };
    }

    /// <summary>A layer-normalized GRU layer with random parameters, initialised as <see cref="LayerNormGruParameters.Initialize"/> does.</summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same layer.</param>
    [Pure]
    public static Layer LayerNormGru(int inputSize, int hiddenSize, int seed) => LayerNormGru(LayerNormGruParameters.Initialize(inputSize, hiddenSize, 1, seed));

    /// <summary>
    /// An LSTM layer with a projection (the cell of <see cref="RnnFunctional.ProjectedLstm"/>): its state is [h⟨t⟩, c⟨t⟩]
    /// (n_p and n_a rows) and its output h⟨t⟩. The layer runs on the generic fold (<see cref="Ragged"/>), not on the
    /// sequence driver: the driver keeps every part of a layer's state with n_a rows, and this layer's output has n_p.
    /// </summary>
    /// <param name="p">Wih 4n_a×n_x, Whh 4n_a×n_p, Bih, Bhh 4n_a, Whr n_p×n_a; its read-out Wy, By is not used and not kept.</param>
    /// <returns>A layer with leaves Wih, Whh, Bih, Bhh, Whr, input size n_x, output size n_p and state rows [n_p, n_a].</returns>
    [Pure]
    public static Layer ProjectedLstm(ProjectedLstmParameters p)
    {
        Shapes.ThrowIfAny(p is null
            ? [new(nameof(p), "expected p to be ProjectedLstmParameters but got null")]
            : Shapes.All(RnnFunctional.ProjectedLstm.CheckRecurrence(p, nameof(p), "")));
        return new CellLayer<ProjectedLstmParameters, LstmState, ProjectedLstmCache>(RnnFunctional.ProjectedLstm.Cell,
            p! with { Wy = Matrix<double>.Build.Dense(0, p.ProjectionSize), By = Vector<double>.Build.Dense(0) },
            ReadOut, q => new(q.InputSize, q.ProjectionSize, [q.ProjectionSize, q.HiddenSize]), RnnFunctional.ProjectedLstm.CheckRecurrence);
    }

    /// <summary>The read-out leaves of the cells' parameter records, which a layer does not keep.</summary>
    private static readonly ImmutableArray<string> ReadOut = ["Wy", "By"];
}
