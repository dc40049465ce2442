using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

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
    public static Layer PeepholeLstm(PeepholeLstmParameters p) => OfModule(RnnFunctional.PeepholeLstm.Cell, RnnFunctional.PeepholeLstm.Module, p);

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
    public static Layer LayerNormLstm(LayerNormLstmParameters p) => OfModule(RnnFunctional.LayerNormLstm.Cell, RnnFunctional.LayerNormLstm.Module, p);

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
    public static Layer LayerNormGru(LayerNormGruParameters p) => OfModule(RnnFunctional.LayerNormGru.Cell, RnnFunctional.LayerNormGru.Module, p);

    /// <summary>A layer-normalized GRU layer with random parameters, initialised as <see cref="LayerNormGruParameters.Initialize"/> does.</summary>
    /// <param name="inputSize">n_x ≥ 1.</param>
    /// <param name="hiddenSize">n_a ≥ 1.</param>
    /// <param name="seed">Seed of the generator; the same seed gives the same layer.</param>
    [Pure]
    public static Layer LayerNormGru(int inputSize, int hiddenSize, int seed) => LayerNormGru(LayerNormGruParameters.Initialize(inputSize, hiddenSize, 1, seed));

    /// <summary>
    /// An LSTM layer with a projection (the cell of <see cref="RnnFunctional.ProjectedLstm"/>): its state is [h⟨t⟩, c⟨t⟩]
    /// (n_p and n_a rows) and its output h⟨t⟩. On the sequence driver, whose parts have n_a rows, h⟨t⟩ is kept in the
    /// first n_p rows with zeros below; the layer hands on, and takes gradients back for, those n_p rows only.
    /// </summary>
    /// <param name="p">Wih 4n_a×n_x, Whh 4n_a×n_p, Bih, Bhh 4n_a, Whr n_p×n_a; its read-out Wy, By is not used and not kept.</param>
    /// <returns>A layer with leaves Wih, Whh, Bih, Bhh, Whr, input size n_x, output size n_p and state rows [n_p, n_a].</returns>
    [Pure]
    public static Layer ProjectedLstm(ProjectedLstmParameters p) => OfModule(RnnFunctional.ProjectedLstm.Cell, RnnFunctional.ProjectedLstm.Module, p);

    /// <summary>
    /// The layer of a cell whose public module runs on the driver (<paramref name="module"/>): its checks, its sizes, its
    /// parameters without read-out and its fused kernel are the module's.
    /// </summary>
    private static CellLayer<TParams, TCarry, TCache> OfModule<TParams, TCarry, TCache, TForward, TGradient, TLoss>(Cell<TParams, TCarry, TCache> cell,
        FusedModule<TParams, TForward, TGradient, TLoss> module, TParams? p)
        where TParams : class, IParameterTree<TParams>
        where TForward : class
    {
        Shapes.ThrowIfAny(module.CheckRecurrence(p));
        return new(cell, module.WithoutReadOut(p!), ReadOut, module.Sizes, module.Recurrence) { Fused = module.Kernel };
    }

    /// <summary>The read-out leaves of the cells' parameter records, which a layer does not keep.</summary>
    private static readonly ImmutableArray<string> ReadOut = ["Wy", "By"];
}
