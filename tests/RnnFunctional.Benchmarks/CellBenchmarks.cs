using BenchmarkDotNet.Attributes;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// LossAndGradients of each new cell against the plain LSTM's (and the GRU's) at the sizes of the performance issue: T = 100, m = 32
/// (one chunk, so one thread), n_x = 64, n_a = 128, n_y = 64, every cell on the sequence driver.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
[MinColumn]
public class CellBenchmarks
{
    private readonly Workload w = new();
    private readonly PeepholeLstmParameters peephole;
    private readonly LayerNormLstmParameters layerNorm;
    private readonly LayerNormGruParameters layerNormGru;
    private readonly ProjectedLstmParameters projected;
    private readonly Matrix<double> c0;
    private readonly Matrix<double> h0;

    public CellBenchmarks()
    {
        peephole = PeepholeLstmParameters.Initialize(w.Inputs, w.Hidden, w.Classes, seed: 1);
        layerNorm = LayerNormLstmParameters.Initialize(w.Inputs, w.Hidden, w.Classes, seed: 1);
        layerNormGru = LayerNormGruParameters.Initialize(w.Inputs, w.Hidden, w.Classes, seed: 1);
        projected = ProjectedLstmParameters.Initialize(w.Inputs, w.Hidden, w.Hidden / 2, w.Classes, seed: 1);
        h0 = w.A0.SubMatrix(0, w.Hidden / 2, 0, w.Batch);
        c0 = w.A0.Clone();
    }

    [Benchmark(Baseline = true, Description = "Lstm.LossAndGradients")]
    public LstmLoss Lstm() => RnnFunctional.Lstm.LossAndGradients(w.Lstm, w.Xs, w.A0, c0, w.Labels);

    [Benchmark(Description = "PeepholeLstm.LossAndGradients")]
    public PeepholeLstmLoss Peephole() => PeepholeLstm.LossAndGradients(peephole, w.Xs, w.A0, c0, w.Labels);

    [Benchmark(Description = "LayerNormLstm.LossAndGradients")]
    public LayerNormLstmLoss LayerNorm() => LayerNormLstm.LossAndGradients(layerNorm, w.Xs, w.A0, c0, w.Labels);

    [Benchmark(Description = "Gru.LossAndGradients")]
    public GruLoss Gru() => RnnFunctional.Gru.LossAndGradients(w.Gru, w.Xs, w.A0, w.Labels);

    [Benchmark(Description = "LayerNormGru.LossAndGradients")]
    public LayerNormGruLoss LayerNormGru() => RnnFunctional.LayerNormGru.LossAndGradients(layerNormGru, w.Xs, w.A0, w.Labels);

    [Benchmark(Description = "ProjectedLstm.LossAndGradients n_p = 64")]
    public ProjectedLstmLoss Projected() => ProjectedLstm.LossAndGradients(projected, w.Xs, h0, c0, w.Labels);
}
