using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using TorchSharp;
using static TorchSharp.torch;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// The grid of the precision-and-cores issue: loss and gradients of one recurrent layer with a linear read-out and a
/// summed softmax cross-entropy, for each cell and size, on RnnFunctional (double and single precision, its default threading)
/// and on TorchSharp-cpu (libtorch) in float32 and float64, on every core and on one, all in one process on the same
/// numbers. Sizes (T, m, n_x, n_a), n_y = n_x: tiny (20, 1, 16, 32), std (100, 32, 64, 128), wide (50, 32, 256, 512),
/// batch (50, 256, 64, 128). The baseline is libtorch float32 on every core, as a PyTorch user runs it; the set-up
/// checks that every libtorch variant's loss agrees with ours (float64 to 1e-9, float32 to 1e-4 relative).
/// libtorch's thread count is set for each benchmark by its own set-up; its inter-op pool is sized once, to one.
/// </summary>
[InProcess]
[MemoryDiagnoser]
[MedianColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByParams)]
public class GridVersusLibTorch
{
    private static bool interopSet;

    private Workload w = null!;
    private Tensor labels = null!;
    private readonly Dictionary<ScalarType, (nn.Module Recurrent, TorchSharp.Modules.Linear Linear, Tensor X, Tensor H0, Tensor C0)> modules = [];

    /// <summary>The cell: rnn (tanh), lstm or gru.</summary>
    [ParamsSource(nameof(Cells))]
    public string Cell { get; set; } = "lstm";

    /// <summary>The size of the grid.</summary>
    [ParamsSource(nameof(Sizes))]
    public string Size { get; set; } = "std";

    /// <summary>Every cell, or those named in <c>GRID_CELLS</c> (comma-separated), to measure a part of the grid again.</summary>
    public static IEnumerable<string> Cells => Subset("GRID_CELLS", ["rnn", "lstm", "gru"]);

    /// <summary>Every size, or those named in <c>GRID_SIZES</c> (comma-separated).</summary>
    public static IEnumerable<string> Sizes => Subset("GRID_SIZES", ["tiny", "std", "wide", "batch"]);

    private static string[] Subset(string variable, string[] all) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } named
            ? [.. named.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(n =>
                all.Contains(n) ? n : throw new ArgumentException($"{variable}: expected some of {string.Join(", ", all)} but got '{n}'"))]
            : all;

    [GlobalSetup(Targets = [nameof(Ours), nameof(OursSingle)])]
    public void SetupOurs() => Build(threads: Environment.ProcessorCount, ScalarType.Float64);

    [GlobalSetup(Targets = [nameof(Float32AllCores)])]
    public void SetupFloat32AllCores() => Build(Environment.ProcessorCount, ScalarType.Float32);

    [GlobalSetup(Targets = [nameof(Float32OneCore)])]
    public void SetupFloat32OneCore() => Build(1, ScalarType.Float32);

    [GlobalSetup(Targets = [nameof(Float64AllCores)])]
    public void SetupFloat64AllCores() => Build(Environment.ProcessorCount, ScalarType.Float64);

    [GlobalSetup(Targets = [nameof(Float64OneCore)])]
    public void SetupFloat64OneCore() => Build(1, ScalarType.Float64);

    [Benchmark(Description = "ours: double, default threads")]
    public double Ours() => Cell switch
    {
        "rnn" => Rnn.LossAndGradients(w.Rnn, w.Xs, w.A0, w.Labels).Loss,
        "lstm" => Lstm.LossAndGradients(w.Lstm, w.Xs, w.A0, w.A0, w.Labels).Loss,
        _ => Gru.LossAndGradients(w.Gru, w.Xs, w.A0, w.Labels).Loss,
    };

    [Benchmark(Description = "ours: single, default threads")]
    public double OursSingle() => Compute.With(Precision.Single, Ours);

    [Benchmark(Baseline = true, Description = "libtorch float32, every core")]
    public double Float32AllCores() => Torch(ScalarType.Float32);

    [Benchmark(Description = "libtorch float32, one core")]
    public double Float32OneCore() => Torch(ScalarType.Float32);

    [Benchmark(Description = "libtorch float64, every core")]
    public double Float64AllCores() => Torch(ScalarType.Float64);

    [Benchmark(Description = "libtorch float64, one core")]
    public double Float64OneCore() => Torch(ScalarType.Float64);

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var (recurrent, read, input, h, c) in modules.Values)
        {
            recurrent.Dispose();
            read.Dispose();
            input.Dispose();
            h.Dispose();
            c.Dispose();
        }
        modules.Clear();
        labels?.Dispose();
    }

    /// <summary>The workload of this cell and size, libtorch's modules of <paramref name="dtype"/> with its parameters, and the thread count.</summary>
    private void Build(int threads, ScalarType dtype)
    {
        if (!interopSet) torch.set_num_interop_threads(1);
        interopSet = true;
        torch.set_num_threads(threads);
        Environment.SetEnvironmentVariable("RNNFUNCTIONAL_THREADS", null);                           // ours on its default threads
        var (t, m, nx, na) = Size switch
        {
            "tiny" => (20, 1, 16, 32),
            "std" => (100, 32, 64, 128),
            "wide" => (50, 32, 256, 512),
            _ => (50, 256, 64, 128),
        };
        w = new Workload(t, m, nx, na, nx);
        Cleanup();
        // The layer's PyTorch state_dict from the library's own names and layouts.
        var (layer, cell, wy, by) = Cell switch
        {
            "rnn" => (Layer.Rnn(w.Rnn), TorchCell.RnnTanh, w.Rnn.Wya, w.Rnn.By),
            "lstm" => (Layer.Lstm(w.Lstm), TorchCell.Lstm, w.Lstm.Wy, w.Lstm.By),
            _ => (Layer.Gru(w.Gru), TorchCell.Gru, w.Gru.Wy, w.Gru.By),
        };
        var state = TorchStateDict.FromLayers([layer], cell).Match(s => s, e => throw new InvalidOperationException(string.Join("; ", e)));
        nn.Module recurrent = Cell switch
        {
            "rnn" => nn.RNN(nx, na, dtype: dtype),
            "lstm" => nn.LSTM(nx, na, dtype: dtype),
            _ => nn.GRU(nx, na, dtype: dtype),
        };
        var read = nn.Linear(na, w.Classes, dtype: dtype);
        using (no_grad())
        {
            foreach (var (name, parameter) in recurrent.named_parameters())
                parameter.copy_(tensor(state[name].Values.ToArray(), [.. state[name].Shape.Select(d => (long)d)], ScalarType.Float64).to_type(dtype));
            Parameter(read, "weight").copy_(tensor(wy.ToRowMajorArray(), [wy.RowCount, wy.ColumnCount], ScalarType.Float64).to_type(dtype));
            Parameter(read, "bias").copy_(tensor(by.ToArray(), ScalarType.Float64).to_type(dtype));
        }
        // Column-major n×m matrices are row-major m×n: x⟨t⟩ stacked is (T, m, n_x), libtorch's layout.
        var input = tensor(w.Xs.SelectMany(mx => mx.AsColumnMajorArray()).ToArray(), [t, m, nx], ScalarType.Float64).to_type(dtype).requires_grad_(true);
        var h = tensor(w.A0.AsColumnMajorArray(), [1, m, na], ScalarType.Float64).to_type(dtype).requires_grad_(true);
        var c = tensor(w.A0.AsColumnMajorArray(), [1, m, na], ScalarType.Float64).to_type(dtype).requires_grad_(true);
        labels = tensor(w.Labels.SelectMany(row => row.Select(l => (long)l)).ToArray(), [t * m], ScalarType.Int64);
        modules[dtype] = (recurrent, read, input, h, c);
        var (ours, theirs) = (Ours(), Torch(dtype));
        var tolerance = dtype == ScalarType.Float64 ? 1e-9 : 1e-4;
        if (Math.Abs(ours - theirs) > tolerance * Math.Abs(ours))
            throw new InvalidOperationException($"{Cell} {Size} {dtype}: RnnFunctional's loss {ours:R} and libtorch's {theirs:R} differ");
    }

    private static Tensor Parameter(nn.Module module, string name) => module.named_parameters().Single(q => q.name == name).parameter;

    /// <summary>libtorch's forward, read-out, summed cross-entropy and backward in <paramref name="dtype"/>.</summary>
    private double Torch(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var (recurrent, read, input, h, c) = modules[dtype];
        recurrent.zero_grad();
        read.zero_grad();
        input.grad?.zero_();
        h.grad?.zero_();
        c.grad?.zero_();
        var output = recurrent switch
        {
            TorchSharp.Modules.LSTM lstm => lstm.call(input, (h, c)).Item1,
            TorchSharp.Modules.GRU gru => gru.call(input, h).Item1,
            TorchSharp.Modules.RNN rnn => rnn.call(input, h).Item1,
            _ => throw new InvalidOperationException("expected an RNN, LSTM or GRU module"),
        };
        var logits = read.call(output).reshape(w.Steps * w.Batch, w.Classes);
        var loss = nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum);
        loss.backward();
        return loss.to_type(ScalarType.Float64).item<double>();
    }
}
