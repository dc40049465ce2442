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

/// <summary>
/// Stack.LossAndGradients of two LSTM layers with a projection (n_a = 128, n_p = 64) at the sizes of
/// <see cref="CellBenchmarks"/> (T = 100, m = 32, n_x = 64, n_y = 64): on the stack driver, against the same stack of
/// generic layers (<see cref="Layer.Of{TParams,TCarry,TCache}"/> of <see cref="ProjectedLstm.Cell"/>, the path these
/// layers took before they ran on the driver), and against two plain LSTM layers of 128 units on the driver.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class ProjectedStackBenchmarks
{
    private readonly Workload w = new();
    private readonly StackParameters projected;
    private readonly StackParameters generic;
    private readonly StackParameters lstm;

    public ProjectedStackBenchmarks()
    {
        static Layer Projected(int inputs, int seed) =>
            Layer.ProjectedLstm(ProjectedLstmParameters.Initialize(inputs, 128, 64, 1, seed));
        static Layer Generic(Layer layer) => layer is CellLayer<ProjectedLstmParameters, LstmState, ProjectedLstmCache> c
            ? Layer.Of(ProjectedLstm.Cell, c.Parameters, c.InputSize, c.OutputSize, c.StateRows, c.Unused)
            : throw new ArgumentException("expected a projected LSTM layer", nameof(layer));
        projected = StackParameters.Initialize([Projected(w.Inputs, 1), Projected(64, 2)], w.Classes, seed: 3);
        generic = projected with { Layers = [.. projected.Layers.Select(Generic)] };
        lstm = StackParameters.Initialize([Layer.Lstm(w.Inputs, 128, 1), Layer.Lstm(128, 128, 2)], w.Classes, seed: 3);
    }

    [Benchmark(Baseline = true, Description = "2 projected LSTM layers, stack driver")]
    public StackLoss Projected() => Stack.LossAndGradients(projected, w.Xs, w.Labels);

    [Benchmark(Description = "2 projected LSTM layers, generic fold")]
    public StackLoss Generic() => Stack.LossAndGradients(generic, w.Xs, w.Labels);

    [Benchmark(Description = "2 LSTM layers of 128, stack driver")]
    public StackLoss Lstm() => Stack.LossAndGradients(lstm, w.Xs, w.Labels);
}
