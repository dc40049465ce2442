using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Tests;

/// <summary>The layers of the cells beside the RNN, LSTM and GRU on the generic fold, the reference of their fused paths.</summary>
internal static class NewCells
{
    /// <summary>The same layer on the generic fold: each cell as a <see cref="Layer.Of"/> layer of its <c>Cell</c> value, or a bidirectional pair of them.</summary>
    public static Layer Generic(Layer layer) => layer switch
    {
        CellLayer<RnnParameters, Matrix<double>, RnnCache> r => Layer.Of(Rnn.Cell, r.Parameters, r.InputSize, r.OutputSize, r.StateRows, r.Unused),
        CellLayer<LstmParameters, LstmState, LstmCache> l => Layer.Of(Lstm.Cell, l.Parameters, l.InputSize, l.OutputSize, l.StateRows, l.Unused),
        CellLayer<GruParameters, Matrix<double>, GruCache> g => Layer.Of(Gru.Cell, g.Parameters, g.InputSize, g.OutputSize, g.StateRows, g.Unused),
        CellLayer<PeepholeLstmParameters, LstmState, PeepholeLstmCache> p =>
            Layer.Of(PeepholeLstm.Cell, p.Parameters, p.InputSize, p.OutputSize, p.StateRows, p.Unused),
        CellLayer<LayerNormLstmParameters, LstmState, LayerNormLstmCache> n =>
            Layer.Of(LayerNormLstm.Cell, n.Parameters, n.InputSize, n.OutputSize, n.StateRows, n.Unused),
        CellLayer<LayerNormGruParameters, Matrix<double>, LayerNormGruCache> n =>
            Layer.Of(LayerNormGru.Cell, n.Parameters, n.InputSize, n.OutputSize, n.StateRows, n.Unused),
        CellLayer<ProjectedLstmParameters, LstmState, ProjectedLstmCache> n =>
            Layer.Of(ProjectedLstm.Cell, n.Parameters, n.InputSize, n.OutputSize, n.StateRows, n.Unused),
        BidirectionalLayer b => Layer.Bidirectional(Generic(b.Forward), Generic(b.Reverse)),
        _ => throw new ArgumentException($"expected a layer of a known cell but got {layer}", nameof(layer)),
    };

    /// <summary>The stack with every layer on the generic fold.</summary>
    public static StackParameters Generic(StackParameters p) => p with { Layers = [.. p.Layers.Select(Generic)] };
}
