using System.Collections.Immutable;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using MathNet.Numerics.LinearAlgebra;
using TorchSharp;
using static TorchSharp.torch;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// The compositions of <see cref="Stack"/> (one layer, two layers, a bidirectional layer, a ragged batch) for the LSTM
/// and the GRU, loss and gradients of the summed softmax cross-entropy of a linear read-out, on RnnFunctional and on
/// TorchSharp-cpu (libtorch) side by side: in one process, both on one thread, in double precision, at T = 100, m = 32,
/// n_x = 64, n_a = 128, n_y = 64, every initial state zero.
/// <list type="bullet">
/// <item>"LSTM 2 layers", "LSTM bidirectional", "LSTM ragged" and the same for the GRU: ours over libtorch's
/// (<c>nn.LSTM(num_layers: 2)</c>, <c>nn.LSTM(bidirectional: true)</c>, and <c>nn.LSTM</c> on a
/// <c>pack_padded_sequence(enforce_sorted: false)</c> of the same lengths, each with <c>nn.Linear</c> and a summed
/// <c>cross_entropy</c>, forward and backward).</item>
/// <item>"LSTM vs fused", "GRU vs fused": each composition over the fused single-cell kernel
/// (<see cref="Lstm.LossAndGradients"/>, <see cref="Gru.LossAndGradients"/>).</item>
/// </list>
/// libtorch's modules get RnnFunctional's parameters (copied as <see cref="VersusLibTorch"/> does, two-layer modules
/// included), and the set-up checks once per process that every pair computes the same loss to 1e-9 relative before
/// anything is timed. The ragged batch has len_j = ⌈T·(j+1)/m⌉ (from 4 to T) and its labels past each column's end
/// are <see cref="Ragged.Ignored"/>, libtorch's <c>ignore_index</c>.
/// A benchmark belongs to a single category (BenchmarkDotNet groups by the whole list of a benchmark's categories),
/// so the compositions appear twice, once against libtorch and once against the fused kernel, under two names that
/// run the same code.
/// </summary>
[InProcess]
[MemoryDiagnoser]
[MedianColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class CompositionsVersusLibTorch
{
    private const string LstmFused = "LSTM vs fused", GruFused = "GRU vs fused";
    private const string LstmTwo = "LSTM 2 layers", LstmBi = "LSTM bidirectional", LstmRagged = "LSTM ragged";
    private const string GruTwo = "GRU 2 layers", GruBi = "GRU bidirectional", GruRagged = "GRU ragged";

    private readonly Workload w = new();

    // ---- ours ----
    private Matrix<double> zeroState = null!;
    private ImmutableArray<int> lengths;
    private ImmutableArray<ImmutableArray<int>> raggedLabels;
    private StackParameters lstmOne = null!, lstmTwo = null!, lstmBi = null!;
    private StackParameters gruOne = null!, gruTwo = null!, gruBi = null!;

    // ---- libtorch ----
    private TorchSharp.Modules.LSTM torchLstmOne = null!, torchLstmTwo = null!, torchLstmBi = null!;
    private TorchSharp.Modules.GRU torchGruOne = null!, torchGruTwo = null!, torchGruBi = null!;
    private TorchSharp.Modules.Linear readLstmOne = null!, readLstmTwo = null!, readLstmBi = null!;
    private TorchSharp.Modules.Linear readGruOne = null!, readGruTwo = null!, readGruBi = null!;
    private Tensor x = null!, labels = null!, labelsRagged = null!, lengthsTensor = null!;
    private Tensor h1 = null!, c1 = null!, h2 = null!, c2 = null!;

    private static bool interopSet, checkedOnce;

    [GlobalSetup]
    public void Setup()
    {
        OneThread();
        var (t, m, nx, na, ny) = (w.Steps, w.Batch, w.Inputs, w.Hidden, w.Classes);
        zeroState = Matrix<double>.Build.Dense(na, m);
        lengths = [.. Enumerable.Range(0, m).Select(j => (t * (j + 1) + m - 1) / m)];   // ⌈T·(j+1)/m⌉
        raggedLabels = [.. w.Labels.Select((row, s) => row.Select((label, j) => s < lengths[j] ? label : Ragged.Ignored).ToImmutableArray())];

        // (b), (e): the workload's LSTM (and GRU) as one layer, with its own read-out.
        lstmOne = new StackParameters([Layer.Lstm(w.Lstm)], w.Lstm.Wy, w.Lstm.By);
        gruOne = new StackParameters([Layer.Gru(w.Gru)], w.Gru.Wy, w.Gru.By);
        // (c): two layers; (d): one bidirectional layer, read-out n_y×2n_a. Random layers and read-outs, from seeds.
        lstmTwo = StackParameters.Initialize([Layer.Lstm(nx, na, 11), Layer.Lstm(na, na, 12)], ny, 13);
        lstmBi = StackParameters.Initialize([Layer.Bidirectional(Layer.Lstm(nx, na, 21), Layer.Lstm(nx, na, 22))], ny, 23);
        gruTwo = StackParameters.Initialize([Layer.Gru(nx, na, 31), Layer.Gru(na, na, 32)], ny, 33);
        gruBi = StackParameters.Initialize([Layer.Bidirectional(Layer.Gru(nx, na, 41), Layer.Gru(nx, na, 42))], ny, 43);

        // libtorch's modules with the same parameters (layer l's are *_l{l}, the reverse direction's *_l0_reverse).
        torchLstmOne = nn.LSTM(nx, na, dtype: ScalarType.Float64);
        torchLstmTwo = nn.LSTM(nx, na, numLayers: 2, dtype: ScalarType.Float64);
        torchLstmBi = nn.LSTM(nx, na, bidirectional: true, dtype: ScalarType.Float64);
        torchGruOne = nn.GRU(nx, na, dtype: ScalarType.Float64);
        torchGruTwo = nn.GRU(nx, na, numLayers: 2, dtype: ScalarType.Float64);
        torchGruBi = nn.GRU(nx, na, bidirectional: true, dtype: ScalarType.Float64);
        using (no_grad())
        {
            CopyLstm(torchLstmOne, "_l0", w.Lstm);
            CopyLstm(torchLstmTwo, "_l0", LstmOf(lstmTwo.Layers[0]));
            CopyLstm(torchLstmTwo, "_l1", LstmOf(lstmTwo.Layers[1]));
            var lstmDirections = (BidirectionalLayer)lstmBi.Layers[0];
            CopyLstm(torchLstmBi, "_l0", LstmOf(lstmDirections.Forward));
            CopyLstm(torchLstmBi, "_l0_reverse", LstmOf(lstmDirections.Reverse));
            CopyGru(torchGruOne, "_l0", w.Gru);
            CopyGru(torchGruTwo, "_l0", GruOf(gruTwo.Layers[0]));
            CopyGru(torchGruTwo, "_l1", GruOf(gruTwo.Layers[1]));
            var gruDirections = (BidirectionalLayer)gruBi.Layers[0];
            CopyGru(torchGruBi, "_l0", GruOf(gruDirections.Forward));
            CopyGru(torchGruBi, "_l0_reverse", GruOf(gruDirections.Reverse));
        }
        readLstmOne = ReadOut(lstmOne);
        readLstmTwo = ReadOut(lstmTwo);
        readLstmBi = ReadOut(lstmBi);
        readGruOne = ReadOut(gruOne);
        readGruTwo = ReadOut(gruTwo);
        readGruBi = ReadOut(gruBi);

        // Column-major n×m matrices are row-major m×n: x⟨t⟩ stacked is (T, m, n_x), libtorch's layout.
        x = tensor(w.Xs.SelectMany(mx => mx.AsColumnMajorArray()).ToArray(), [t, m, nx], ScalarType.Float64, requires_grad: true);
        labels = tensor(w.Labels.SelectMany(row => row.Select(l => (long)l)).ToArray(), [t * m], ScalarType.Int64);
        labelsRagged = tensor(raggedLabels.SelectMany(row => row.Select(l => (long)l)).ToArray(), [t * m], ScalarType.Int64);
        lengthsTensor = tensor(lengths.Select(l => (long)l).ToArray(), [m], ScalarType.Int64);
        // Zero initial states that take gradients, as ours returns the gradients of its initial states.
        h1 = zeros(1, m, na, ScalarType.Float64).requires_grad_(true);
        c1 = zeros(1, m, na, ScalarType.Float64).requires_grad_(true);
        h2 = zeros(2, m, na, ScalarType.Float64).requires_grad_(true);
        c2 = zeros(2, m, na, ScalarType.Float64).requires_grad_(true);

        if (!checkedOnce) CheckBothSidesAgree();
        checkedOnce = true;
    }

    /// <summary>Both libraries on one thread (RnnFunctional through RNNFUNCTIONAL_THREADS); libtorch's interop pool can be sized only once per process.</summary>
    private static void OneThread()
    {
        Environment.SetEnvironmentVariable("RNNFUNCTIONAL_THREADS", "1");
        torch.set_num_threads(1);
        if (!interopSet && torch.get_num_interop_threads() != 1)
        {
            try { torch.set_num_interop_threads(1); }
            catch (Exception) { /* already sized in this process (by another benchmark class): nothing to do */ }
        }
        interopSet = true;
    }

    /// <summary>Every pair computes the same loss (same parameters, inputs and labels), to 1e-9 relative; else the setup throws.</summary>
    private void CheckBothSidesAgree()
    {
        static void Agree(string name, double ours, double theirs)
        {
            if (!(Math.Abs(ours - theirs) <= 1e-9 * Math.Abs(theirs)))
                throw new InvalidOperationException($"{name}: RnnFunctional's loss {ours:R} and the other's {theirs:R} differ by more than 1e-9 relative");
            Console.WriteLine($"// {name}: losses agree: {ours:R} and {theirs:R} (relative difference {Math.Abs(ours - theirs) / Math.Abs(theirs):E2})");
        }
        Agree("LSTM one layer vs fused", LstmStackOne().Loss, LstmFusedKernel().Loss);
        Agree("LSTM one layer vs libtorch", LstmStackOne().Loss, Torch(torchLstmOne, readLstmOne, h1, c1));
        Agree(LstmTwo, LstmStackTwo().Loss, LstmTwoLayersTorch());
        Agree(LstmBi, LstmStackBi().Loss, LstmBidirectionalTorch());
        Agree(LstmRagged, LstmStackRagged().Loss, LstmRaggedTorch());
        Agree("GRU one layer vs fused", GruStackOne().Loss, GruFusedKernel().Loss);
        Agree("GRU one layer vs libtorch", GruStackOne().Loss, Torch(torchGruOne, readGruOne, h1, null));
        Agree(GruTwo, GruStackTwo().Loss, GruTwoLayersTorch());
        Agree(GruBi, GruStackBi().Loss, GruBidirectionalTorch());
        Agree(GruRagged, GruStackRagged().Loss, GruRaggedTorch());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var tensor in new[] { x, labels, labelsRagged, lengthsTensor, h1, c1, h2, c2 }) tensor.Dispose();
        foreach (var module in new nn.Module[] { torchLstmOne, torchLstmTwo, torchLstmBi, torchGruOne, torchGruTwo, torchGruBi,
                                                 readLstmOne, readLstmTwo, readLstmBi, readGruOne, readGruTwo, readGruBi })
            module.Dispose();
    }

    // ---- ours: the calls measured ----

    private LstmLoss LstmFusedKernel() => Lstm.LossAndGradients(w.Lstm, w.Xs, zeroState, zeroState, w.Labels);
    private StackLoss LstmStackOne() => Stack.LossAndGradients(lstmOne, w.Xs, w.Labels);
    private StackLoss LstmStackTwo() => Stack.LossAndGradients(lstmTwo, w.Xs, w.Labels);
    private StackLoss LstmStackBi() => Stack.LossAndGradients(lstmBi, w.Xs, w.Labels);
    private StackLoss LstmStackRagged() => Stack.LossAndGradients(lstmOne, w.Xs, raggedLabels, lengths: lengths);
    private GruLoss GruFusedKernel() => Gru.LossAndGradients(w.Gru, w.Xs, zeroState, w.Labels);
    private StackLoss GruStackOne() => Stack.LossAndGradients(gruOne, w.Xs, w.Labels);
    private StackLoss GruStackTwo() => Stack.LossAndGradients(gruTwo, w.Xs, w.Labels);
    private StackLoss GruStackBi() => Stack.LossAndGradients(gruBi, w.Xs, w.Labels);
    private StackLoss GruStackRagged() => Stack.LossAndGradients(gruOne, w.Xs, raggedLabels, lengths: lengths);

    // ---- LSTM: the compositions against the fused kernel ----

    [BenchmarkCategory(LstmFused), Benchmark(Baseline = true, Description = "(a) Lstm.LossAndGradients (fused)")]
    public LstmLoss LstmA() => LstmFusedKernel();

    [BenchmarkCategory(LstmFused), Benchmark(Description = "(b) Stack, 1 LSTM layer")]
    public StackLoss LstmB() => LstmStackOne();

    [BenchmarkCategory(LstmFused), Benchmark(Description = "(c) Stack, 2 LSTM layers")]
    public StackLoss LstmC() => LstmStackTwo();

    [BenchmarkCategory(LstmFused), Benchmark(Description = "(d) Stack, bidirectional LSTM")]
    public StackLoss LstmD() => LstmStackBi();

    [BenchmarkCategory(LstmFused), Benchmark(Description = "(e) Stack, 1 LSTM layer, ragged")]
    public StackLoss LstmE() => LstmStackRagged();

    // ---- LSTM: against libtorch ----

    [BenchmarkCategory(LstmTwo), Benchmark(Description = "ours: Stack, 2 LSTM layers")]
    public StackLoss LstmTwoLayersOurs() => LstmStackTwo();

    [BenchmarkCategory(LstmTwo), Benchmark(Baseline = true, Description = "libtorch: nn.LSTM(num_layers: 2)")]
    public double LstmTwoLayersTorch() => Torch(torchLstmTwo, readLstmTwo, h2, c2);

    [BenchmarkCategory(LstmBi), Benchmark(Description = "ours: Stack, bidirectional LSTM")]
    public StackLoss LstmBidirectionalOurs() => LstmStackBi();

    [BenchmarkCategory(LstmBi), Benchmark(Baseline = true, Description = "libtorch: nn.LSTM(bidirectional: true)")]
    public double LstmBidirectionalTorch() => Torch(torchLstmBi, readLstmBi, h2, c2);

    [BenchmarkCategory(LstmRagged), Benchmark(Description = "ours: Stack, 1 LSTM layer, lengths")]
    public StackLoss LstmRaggedOurs() => LstmStackRagged();

    [BenchmarkCategory(LstmRagged), Benchmark(Baseline = true, Description = "libtorch: nn.LSTM on pack_padded_sequence")]
    public double LstmRaggedTorch() => TorchPacked(torchLstmOne, readLstmOne, h1, c1);

    // ---- GRU: the compositions against the fused kernel ----

    [BenchmarkCategory(GruFused), Benchmark(Baseline = true, Description = "(a) Gru.LossAndGradients (fused)")]
    public GruLoss GruA() => GruFusedKernel();

    [BenchmarkCategory(GruFused), Benchmark(Description = "(b) Stack, 1 GRU layer")]
    public StackLoss GruB() => GruStackOne();

    [BenchmarkCategory(GruFused), Benchmark(Description = "(c) Stack, 2 GRU layers")]
    public StackLoss GruC() => GruStackTwo();

    [BenchmarkCategory(GruFused), Benchmark(Description = "(d) Stack, bidirectional GRU")]
    public StackLoss GruD() => GruStackBi();

    [BenchmarkCategory(GruFused), Benchmark(Description = "(e) Stack, 1 GRU layer, ragged")]
    public StackLoss GruE() => GruStackRagged();

    // ---- GRU: against libtorch ----

    [BenchmarkCategory(GruTwo), Benchmark(Description = "ours: Stack, 2 GRU layers")]
    public StackLoss GruTwoLayersOurs() => GruStackTwo();

    [BenchmarkCategory(GruTwo), Benchmark(Baseline = true, Description = "libtorch: nn.GRU(num_layers: 2)")]
    public double GruTwoLayersTorch() => Torch(torchGruTwo, readGruTwo, h2, null);

    [BenchmarkCategory(GruBi), Benchmark(Description = "ours: Stack, bidirectional GRU")]
    public StackLoss GruBidirectionalOurs() => GruStackBi();

    [BenchmarkCategory(GruBi), Benchmark(Baseline = true, Description = "libtorch: nn.GRU(bidirectional: true)")]
    public double GruBidirectionalTorch() => Torch(torchGruBi, readGruBi, h2, null);

    [BenchmarkCategory(GruRagged), Benchmark(Description = "ours: Stack, 1 GRU layer, lengths")]
    public StackLoss GruRaggedOurs() => GruStackRagged();

    [BenchmarkCategory(GruRagged), Benchmark(Baseline = true, Description = "libtorch: nn.GRU on pack_padded_sequence")]
    public double GruRaggedTorch() => TorchPacked(torchGruOne, readGruOne, h1, null);

    // ---- libtorch: forward, read-out, summed cross-entropy, backward ----

    /// <summary>The module (an LSTM when <paramref name="c0"/> is given, else a GRU) over the whole batch, then the read-out's loss and the backward.</summary>
    private double Torch(nn.Module module, TorchSharp.Modules.Linear readOut, Tensor h0, Tensor? c0)
    {
        using var scope = NewDisposeScope();
        ZeroGradients(module, readOut, h0, c0);
        var output = module switch
        {
            TorchSharp.Modules.LSTM lstm => lstm.call(x, (h0, c0!)).Item1,
            TorchSharp.Modules.GRU gru => gru.call(x, h0).Item1,
            _ => throw new ArgumentException("expected an LSTM or a GRU", nameof(module)),
        };
        return Head(readOut, output, labels);
    }

    /// <summary>
    /// The module over the ragged batch packed with <c>pack_padded_sequence(enforce_sorted: false)</c>, its output
    /// padded back to (T, m, n_a) with zeros, then the read-out's loss with the padding's labels ignored, and the backward.
    /// </summary>
    private double TorchPacked(nn.Module module, TorchSharp.Modules.Linear readOut, Tensor h0, Tensor? c0)
    {
        using var scope = NewDisposeScope();
        ZeroGradients(module, readOut, h0, c0);
        using var packed = nn.utils.rnn.pack_padded_sequence(x, lengthsTensor, batch_first: false, enforce_sorted: false);
        using var packedOutput = module switch
        {
            TorchSharp.Modules.LSTM lstm => lstm.call(packed, (h0, c0!)).Item1,
            TorchSharp.Modules.GRU gru => gru.call(packed, h0).Item1,
            _ => throw new ArgumentException("expected an LSTM or a GRU", nameof(module)),
        };
        var (output, _) = nn.utils.rnn.pad_packed_sequence(packedOutput, batch_first: false, total_length: w.Steps);
        return Head(readOut, output, labelsRagged);
    }

    /// <summary>The read-out's summed cross-entropy of the outputs (T, m, n_out), ignoring the labels −1, and its backward.</summary>
    private double Head(TorchSharp.Modules.Linear readOut, Tensor output, Tensor target)
    {
        var logits = readOut.call(output).reshape(w.Steps * w.Batch, w.Classes);
        var loss = nn.functional.cross_entropy(logits, target, ignore_index: Ragged.Ignored, reduction: nn.Reduction.Sum);
        loss.backward();
        return loss.item<double>();
    }

    private void ZeroGradients(nn.Module module, nn.Module readOut, Tensor h0, Tensor? c0)
    {
        module.zero_grad();
        readOut.zero_grad();
        x.grad?.zero_();
        h0.grad?.zero_();
        c0?.grad?.zero_();
    }

    // ---- copying RnnFunctional's parameters into libtorch's modules ----

    private static LstmParameters LstmOf(Layer layer) => ((CellLayer<LstmParameters, LstmState, LstmCache>)layer).Parameters;

    private static GruParameters GruOf(Layer layer) => ((CellLayer<GruParameters, Matrix<double>, GruCache>)layer).Parameters;

    /// <summary>nn.LSTM stacks its gates as (i, f, g, o) on x and on h; the cell's gate matrices are [W_a W_x] and its one bias goes to bias_ih (bias_hh zero).</summary>
    private static void CopyLstm(nn.Module module, string suffix, LstmParameters p)
    {
        var (na, nx) = (p.HiddenSize, p.InputSize);
        var gates = new[] { p.Wi, p.Wf, p.Wc, p.Wo };
        Parameter(module, "weight_ih" + suffix).copy_(RowMajor(StackRows(gates.Select(g => g.SubMatrix(0, na, na, nx)))));
        Parameter(module, "weight_hh" + suffix).copy_(RowMajor(StackRows(gates.Select(g => g.SubMatrix(0, na, 0, na)))));
        Parameter(module, "bias_ih" + suffix).copy_(tensor(new[] { p.Bi, p.Bf, p.Bc, p.Bo }.SelectMany(b => b.ToArray()).ToArray(), ScalarType.Float64));
        Parameter(module, "bias_hh" + suffix).zero_();
    }

    /// <summary>The GRU's parameters are in PyTorch's layout.</summary>
    private static void CopyGru(nn.Module module, string suffix, GruParameters p)
    {
        Parameter(module, "weight_ih" + suffix).copy_(RowMajor(p.Wih));
        Parameter(module, "weight_hh" + suffix).copy_(RowMajor(p.Whh));
        Parameter(module, "bias_ih" + suffix).copy_(tensor(p.Bih.ToArray(), ScalarType.Float64));
        Parameter(module, "bias_hh" + suffix).copy_(tensor(p.Bhh.ToArray(), ScalarType.Float64));
    }

    /// <summary>nn.Linear(n_top, n_y) holding the stack's read-out Wy, By.</summary>
    private static TorchSharp.Modules.Linear ReadOut(StackParameters p)
    {
        var linear = nn.Linear(p.Wy.ColumnCount, p.Wy.RowCount, dtype: ScalarType.Float64);
        using (no_grad())
        {
            Parameter(linear, "weight").copy_(RowMajor(p.Wy));
            Parameter(linear, "bias").copy_(tensor(p.By.ToArray(), ScalarType.Float64));
        }
        return linear;
    }

    private static Tensor Parameter(nn.Module module, string name) =>
        module.named_parameters().Single(p => p.name == name).parameter;

    private static Matrix<double> StackRows(IEnumerable<Matrix<double>> blocks) =>
        blocks.Aggregate((top, bottom) => top.Stack(bottom));

    private static Tensor RowMajor(Matrix<double> m) => tensor(m.ToRowMajorArray(), [m.RowCount, m.ColumnCount], ScalarType.Float64);
}
