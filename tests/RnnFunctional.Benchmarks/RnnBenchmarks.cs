using BenchmarkDotNet.Attributes;

namespace RnnFunctional.Benchmarks;

/// <summary>W1 and W2 of the performance issue through the public API: T = 100, m = 32, n_x = 64, n_a = 128, n_y = 64.</summary>
[MemoryDiagnoser]
[MedianColumn]
public class RnnBenchmarks
{
    private readonly Workload w = new();

    [Benchmark(Description = "W1 Rnn.Forward + Rnn.Backward")]
    public RnnGradient W1() => Rnn.Backward(Rnn.Forward(w.Rnn, w.Xs, w.A0), w.Da);

    [Benchmark(Description = "W1 with the predictions read")]
    public RnnGradient W1WithPredictions()
    {
        var forward = Rnn.Forward(w.Rnn, w.Xs, w.A0);
        _ = forward.Predictions;
        return Rnn.Backward(forward, w.Da);
    }

    [Benchmark(Description = "W2 Rnn.LossAndGradients")]
    public RnnLoss W2() => Rnn.LossAndGradients(w.Rnn, w.Xs, w.A0, w.Labels);
}

/// <summary>W2 with a batch of 32 (one chunk: the rows of its products shared) on one thread and on every core: the same bits, in less time.</summary>
[MemoryDiagnoser]
[MedianColumn]
public class TeamBenchmarks
{
    private readonly Workload w = new();

    [Params(1, 2)]
    public int Threads { get; set; }

    [Benchmark(Description = "W2 m=32")]
    public RnnLoss W2() => Rnn.LossKernel(w.Rnn, w.Xs, w.A0, w.Labels, w.Steps, Threads);

    [Benchmark(Description = "W3 m=32")]
    public LstmLoss W3() => Lstm.LossKernel(w.Lstm, w.Xs, w.A0, w.A0, w.Labels, Threads);

    [Benchmark(Description = "W4 m=32")]
    public GruLoss W4() => Gru.LossKernel(w.Gru, w.Xs, w.A0, w.Labels, Threads);
}

/// <summary>W2 with a batch of 256 on one thread and split over every core: the same bits, in less time.</summary>
[MemoryDiagnoser]
[MedianColumn]
public class BatchSplitBenchmarks
{
    private readonly Workload w = new(batch: 256);

    [Params(1, 2)]
    public int Threads { get; set; }

    [Benchmark(Description = "W2 m=256")]
    public RnnLoss W2() => Rnn.LossKernel(w.Rnn, w.Xs, w.A0, w.Labels, w.Steps, Threads);
}

/// <summary>W2 at T = 10,000: the full backward against the checkpointed one keeping every 100th state.</summary>
[MemoryDiagnoser]
[MedianColumn]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 9)]
public class LongSequenceBenchmarks
{
    private readonly Workload w = new(steps: 10_000);

    [Benchmark(Baseline = true, Description = "T=10000 Rnn.LossAndGradients")]
    public RnnLoss Full() => Rnn.LossAndGradients(w.Rnn, w.Xs, w.A0, w.Labels);

    [Benchmark(Description = "T=10000 Rnn.LossAndGradientsCheckpointed k=100")]
    public RnnLoss Checkpointed() => Rnn.LossAndGradientsCheckpointed(w.Rnn, w.Xs, w.A0, w.Labels, every: 100);
}

/// <summary>
/// Loss and gradients of one layer with its read-out in double and in single precision (<see cref="Compute.With{T}"/>),
/// on the library's default threads, at the std (T = 100, m = 32, n_x = 64, n_a = 128) and wide (T = 50, m = 32,
/// n_x = 256, n_a = 512) sizes of the grid.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class PrecisionBenchmarks
{
    private Workload w = null!;

    /// <summary>The size of the grid.</summary>
    [Params("std", "wide")]
    public string Size { get; set; } = "std";

    /// <summary>The precision of the products.</summary>
    [Params(Precision.Double, Precision.Single)]
    public Precision Precision { get; set; }

    [GlobalSetup]
    public void Setup() => w = Size == "wide" ? new Workload(50, 32, 256, 512, 256) : new Workload(100, 32, 64, 128, 64);

    [Benchmark(Description = "Rnn.LossAndGradients")]
    public RnnLoss Rnn() => Compute.With(Precision, () => RnnFunctional.Rnn.LossAndGradients(w.Rnn, w.Xs, w.A0, w.Labels));

    [Benchmark(Description = "Lstm.LossAndGradients")]
    public LstmLoss Lstm() => Compute.With(Precision, () => RnnFunctional.Lstm.LossAndGradients(w.Lstm, w.Xs, w.A0, w.A0, w.Labels));

    [Benchmark(Description = "Gru.LossAndGradients")]
    public GruLoss Gru() => Compute.With(Precision, () => RnnFunctional.Gru.LossAndGradients(w.Gru, w.Xs, w.A0, w.Labels));
}
