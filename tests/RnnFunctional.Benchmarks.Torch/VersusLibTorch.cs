using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using MathNet.Numerics.LinearAlgebra;
using TorchSharp;
using static TorchSharp.torch;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// The workloads of the performance issue on RnnFunctional and on TorchSharp-cpu (libtorch) side by side, in one
/// process, both on one thread, on the same numbers: libtorch's modules get RnnFunctional's parameters (its second
/// RNN bias is zero). Each category's ratio is ours over libtorch's.
/// </summary>
[InProcess]
[MemoryDiagnoser]
[MedianColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class VersusLibTorch
{
    private readonly Workload w = new();
    private TorchSharp.Modules.RNN rnn = null!;
    private TorchSharp.Modules.Linear linear = null!;
    private TorchSharp.Modules.LSTM lstm = null!;
    private TorchSharp.Modules.GRU gru = null!;
    private Tensor c0 = null!;
    private Tensor x = null!, h0 = null!, da = null!, labels = null!;

    [GlobalSetup]
    public void Setup()
    {
        OneThread();
        var (t, m, nx, na, ny) = (w.Steps, w.Batch, w.Inputs, w.Hidden, w.Classes);
        rnn = nn.RNN(nx, na, dtype: ScalarType.Float64);
        lstm = nn.LSTM(nx, na, dtype: ScalarType.Float64);
        gru = nn.GRU(nx, na, dtype: ScalarType.Float64);
        linear = nn.Linear(na, ny, dtype: ScalarType.Float64);
        using (no_grad())
        {
            Parameter(rnn, "weight_ih_l0").copy_(RowMajor(w.Rnn.Wax));
            Parameter(rnn, "weight_hh_l0").copy_(RowMajor(w.Rnn.Waa));
            Parameter(rnn, "bias_ih_l0").copy_(tensor(w.Rnn.Ba.ToArray(), ScalarType.Float64));
            Parameter(rnn, "bias_hh_l0").zero_();
            // nn.LSTM stacks its gates as (i, f, g, o) on x and on h; the cell's gate matrices are [W_a W_x].
            var gates = new[] { w.Lstm.Wi, w.Lstm.Wf, w.Lstm.Wc, w.Lstm.Wo };
            Parameter(lstm, "weight_ih_l0").copy_(RowMajor(Stack(gates.Select(g => g.SubMatrix(0, na, na, nx)))));
            Parameter(lstm, "weight_hh_l0").copy_(RowMajor(Stack(gates.Select(g => g.SubMatrix(0, na, 0, na)))));
            Parameter(lstm, "bias_ih_l0").copy_(tensor(new[] { w.Lstm.Bi, w.Lstm.Bf, w.Lstm.Bc, w.Lstm.Bo }.SelectMany(b => b.ToArray()).ToArray(), ScalarType.Float64));
            Parameter(lstm, "bias_hh_l0").zero_();
            // The GRU's parameters are in PyTorch's layout.
            Parameter(gru, "weight_ih_l0").copy_(RowMajor(w.Gru.Wih));
            Parameter(gru, "weight_hh_l0").copy_(RowMajor(w.Gru.Whh));
            Parameter(gru, "bias_ih_l0").copy_(tensor(w.Gru.Bih.ToArray(), ScalarType.Float64));
            Parameter(gru, "bias_hh_l0").copy_(tensor(w.Gru.Bhh.ToArray(), ScalarType.Float64));
            Parameter(linear, "weight").copy_(RowMajor(w.Rnn.Wya));
            Parameter(linear, "bias").copy_(tensor(w.Rnn.By.ToArray(), ScalarType.Float64));
        }
        // Column-major n×m matrices are row-major m×n: x⟨t⟩ stacked is (T, m, n_x), libtorch's layout.
        x = tensor(w.Xs.SelectMany(m => m.AsColumnMajorArray()).ToArray(), [t, m, nx], ScalarType.Float64, requires_grad: true);
        h0 = tensor(w.A0.AsColumnMajorArray(), [1, m, na], ScalarType.Float64, requires_grad: true);
        c0 = tensor(w.A0.AsColumnMajorArray(), [1, m, na], ScalarType.Float64, requires_grad: true);
        da = tensor(w.Da.SelectMany(m => m.AsColumnMajorArray()).ToArray(), [t, m, na], ScalarType.Float64);
        labels = tensor(w.Labels.SelectMany(row => row.Select(l => (long)l)).ToArray(), [t * m], ScalarType.Int64);
        CheckBothSidesAgree();
    }

    /// <summary>Both libraries on one thread (RnnFunctional through RNNFUNCTIONAL_THREADS); libtorch's interop pool can be sized only once per process.</summary>
    private static void OneThread()
    {
        Environment.SetEnvironmentVariable("RNNFUNCTIONAL_THREADS", "1");
        torch.set_num_threads(1);
        if (!interopSet) torch.set_num_interop_threads(1);
        interopSet = true;
    }

    private static bool interopSet;

    /// <summary>Both sides compute the same losses (same parameters, inputs and labels), to 1e-10 relative; else the setup throws.</summary>
    private void CheckBothSidesAgree()
    {
        void Agree(string name, double ours, double theirs)
        {
            if (Math.Abs(ours - theirs) > 1e-10 * Math.Abs(theirs))
                throw new InvalidOperationException($"{name}: RnnFunctional's loss {ours:R} and libtorch's {theirs:R} differ");
        }
        Agree("W2", W2Ours().Loss, W2Torch());
        Agree("W3", W3Ours().Loss, WithReadOut(w.Lstm.Wy, w.Lstm.By, W3Torch));
        Agree("W4", W4Ours().Loss, WithReadOut(w.Gru.Wy, w.Gru.By, W4Torch));
    }

    /// <summary>Runs <paramref name="run"/> with the read-out's parameters set to (wy, by), then back to the RNN's.</summary>
    private double WithReadOut(Matrix<double> wy, MathNet.Numerics.LinearAlgebra.Vector<double> by, Func<double> run)
    {
        void Set(Matrix<double> weight, MathNet.Numerics.LinearAlgebra.Vector<double> bias)
        {
            using (no_grad())
            {
                Parameter(linear, "weight").copy_(RowMajor(weight));
                Parameter(linear, "bias").copy_(tensor(bias.ToArray(), ScalarType.Float64));
            }
        }
        Set(wy, by);
        var loss = run();
        Set(w.Rnn.Wya, w.Rnn.By);
        return loss;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var tensor in new[] { x, h0, c0, da, labels }) tensor.Dispose();
        rnn.Dispose();
        lstm.Dispose();
        gru.Dispose();
        linear.Dispose();
    }

    [BenchmarkCategory("W1"), Benchmark(Description = "W1 RnnFunctional: Rnn.Forward + Rnn.Backward")]
    public RnnGradient W1Ours() => Rnn.Backward(Rnn.Forward(w.Rnn, w.Xs, w.A0), w.Da);

    /// <summary>W1 with the predictions read as well: the read-out that <see cref="SequenceForward{TParams,TCache}.Predictions"/> computes when first read.</summary>
    [BenchmarkCategory("W1"), Benchmark(Description = "W1 RnnFunctional, predictions read too")]
    public RnnGradient W1OursWithPredictions()
    {
        var forward = Rnn.Forward(w.Rnn, w.Xs, w.A0);
        _ = forward.Predictions;
        return Rnn.Backward(forward, w.Da);
    }

    [BenchmarkCategory("W1"), Benchmark(Baseline = true, Description = "W1 libtorch: nn.RNN forward + backward")]
    public double W1Torch()
    {
        using var scope = NewDisposeScope();
        ZeroGradients();
        var (output, _) = rnn.call(x, h0);
        output.backward([da]);
        return x.grad!.data<double>()[0];
    }

    [BenchmarkCategory("W2"), Benchmark(Description = "W2 RnnFunctional: Rnn.LossAndGradients")]
    public RnnLoss W2Ours() => Rnn.LossAndGradients(w.Rnn, w.Xs, w.A0, w.Labels);

    [BenchmarkCategory("W2"), Benchmark(Baseline = true, Description = "W2 libtorch: nn.RNN + nn.Linear + cross_entropy(sum)")]
    public double W2Torch()
    {
        using var scope = NewDisposeScope();
        ZeroGradients();
        var (output, _) = rnn.call(x, h0);
        var logits = linear.call(output).reshape(w.Steps * w.Batch, w.Classes);
        var loss = nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum);
        loss.backward();
        return loss.item<double>();
    }

    [BenchmarkCategory("W3"), Benchmark(Description = "W3 RnnFunctional: Lstm.LossAndGradients")]
    public LstmLoss W3Ours() => Lstm.LossAndGradients(w.Lstm, w.Xs, w.A0, w.A0, w.Labels);

    [BenchmarkCategory("W3"), Benchmark(Baseline = true, Description = "W3 libtorch: nn.LSTM + nn.Linear + cross_entropy(sum)")]
    public double W3Torch()
    {
        using var scope = NewDisposeScope();
        ZeroGradients();
        var (output, _, _) = lstm.call(x, (h0, c0));
        return Head(output);
    }

    [BenchmarkCategory("W4"), Benchmark(Description = "W4 RnnFunctional: Gru.LossAndGradients")]
    public GruLoss W4Ours() => Gru.LossAndGradients(w.Gru, w.Xs, w.A0, w.Labels);

    [BenchmarkCategory("W4"), Benchmark(Baseline = true, Description = "W4 libtorch: nn.GRU + nn.Linear + cross_entropy(sum)")]
    public double W4Torch()
    {
        using var scope = NewDisposeScope();
        ZeroGradients();
        var (output, _) = gru.call(x, h0);
        return Head(output);
    }

    /// <summary>The read-out's summed cross-entropy of the outputs (T, m, n_a) and its backward.</summary>
    private double Head(Tensor output)
    {
        var logits = linear.call(output).reshape(w.Steps * w.Batch, w.Classes);
        var loss = nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum);
        loss.backward();
        return loss.item<double>();
    }

    private void ZeroGradients()
    {
        lstm.zero_grad();
        gru.zero_grad();
        c0.grad?.zero_();
        rnn.zero_grad();
        linear.zero_grad();
        x.grad?.zero_();
        h0.grad?.zero_();
    }

    private static Tensor Parameter(nn.Module module, string name) =>
        module.named_parameters().Single(p => p.name == name).parameter;

    private static Matrix<double> Stack(IEnumerable<Matrix<double>> blocks) =>
        blocks.Aggregate((top, bottom) => top.Stack(bottom));

    private static Tensor RowMajor(Matrix<double> m) => tensor(m.ToRowMajorArray(), [m.RowCount, m.ColumnCount], ScalarType.Float64);
}
