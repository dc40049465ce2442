using System.Collections.Immutable;
using System.Globalization;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace RnnFunctional.Benchmarks.Torch;

/// <summary>
/// The LSTM with a projection checked against libtorch's own projected LSTM (<c>RnnFunctional.Benchmarks.Torch.dll
/// projected</c>). TorchSharp 0.107's <c>nn.LSTM</c> has no <c>proj_size</c>, but the aten op it calls,
/// <c>torch.lstm(input, [h0, c0], params, has_biases, num_layers, dropout, train, bidirectional, batch_first)</c>, runs a
/// projected LSTM when h0 has n_p &lt; n_a columns, reading each layer's and direction's params as
/// [w_ih, w_hh, b_ih, b_hh, w_hr] ([w_ih, w_hh, w_hr] without biases), which is PyTorch's <c>_flat_weights</c> order.
/// A TorchScript function compiled by <c>torch.jit.compile</c> calls that op; libtorch's autograd gives its gradients.
/// For a fixed list of random configurations (1–3 layers, one or two directions, with and without biases, see
/// <see cref="Cases"/>), in double:
/// <list type="number">
/// <item>libtorch → RnnFunctional: random weights in a module whose <c>state_dict</c> has PyTorch's names
/// (<c>rnn.weight_ih_l0</c>, …, <c>rnn.weight_hr_l0</c>, <c>fc.weight</c>, <c>fc.bias</c>), saved by PyBridge's
/// <c>save_safetensors</c> and read by <see cref="TorchStateDict.Load"/>;</item>
/// <item>RnnFunctional → libtorch: a random stack of <see cref="Layer.ProjectedLstm"/> layers saved by
/// <see cref="TorchStateDict.Save"/> and loaded by PyBridge's <c>load_safetensors</c> (strict);</item>
/// <item>a control: the file of 1. with one entry of <c>rnn.weight_hr_l0</c> moved by 1e-3 must differ, in the
/// forward and in the gradients, by more than <see cref="ControlFloor"/>.</item>
/// </list>
/// Each pair compares the output sequence, h_n and c_n of <see cref="Stack.Forward"/>; the summed cross-entropy of
/// softmax(fc(output)) of <see cref="Stack.LossAndGradients"/> against <c>cross_entropy(reduction: sum)</c>; the
/// gradient of every named tensor (ours mapped to PyTorch's names by <see cref="TorchStateDict.FromStack"/>); and the
/// gradients of the input, h0 and c0. A difference is the largest |ours − libtorch| of a quantity divided by
/// max(1, its largest |libtorch| entry), so absolute for values up to 1 and relative above; every one must be at most
/// <see cref="Tolerance"/>, and the exit code is 0 when all are.
/// </summary>
public static class ProjectedCheck
{
    /// <summary>The largest difference allowed, absolute below 1 and relative above (see the class).</summary>
    public const double Tolerance = 1e-12;

    /// <summary>The smallest difference the control must show.</summary>
    public const double ControlFloor = 1e-8;

    /// <summary>libtorch's LSTM op, as <c>nn.LSTM.forward</c> calls it with its <c>_flat_weights</c> (TorchScript wants the source to end with a newline).</summary>
    private const string Script = """
        def lstm(x: Tensor, h0: Tensor, c0: Tensor, params: List[Tensor], has_biases: bool, num_layers: int, bidirectional: bool):
            return torch.lstm(x, [h0, c0], params, has_biases, num_layers, 0.0, True, bidirectional, False)

        """;

    /// <summary>One configuration: nn.LSTM(Inputs, Hidden, Layers, bias, bidirectional, proj_size=Projection) + nn.Linear.</summary>
    private sealed record Case(int Layers, bool Bidirectional, bool Bias, int Inputs, int Hidden, int Projection, int Classes, int Steps, int Batch)
    {
        public int Directions => Bidirectional ? 2 : 1;

        /// <summary>The recurrent module's tensors in <c>_flat_weights</c> order, with their shapes.</summary>
        public IEnumerable<(string Name, long[] Shape)> Tensors()
        {
            for (var k = 0; k < Layers; k++)
                foreach (var s in Bidirectional ? new[] { "", "_reverse" } : [""])
                {
                    var nin = k == 0 ? Inputs : Directions * Projection;
                    yield return ($"weight_ih_l{k}{s}", [4 * Hidden, nin]);
                    yield return ($"weight_hh_l{k}{s}", [4 * Hidden, Projection]);
                    if (Bias)
                    {
                        yield return ($"bias_ih_l{k}{s}", [4 * Hidden]);
                        yield return ($"bias_hh_l{k}{s}", [4 * Hidden]);
                    }
                    yield return ($"weight_hr_l{k}{s}", [Projection, Hidden]);
                }
        }

        public override string ToString() =>
            new TorchModule(TorchCell.Lstm, Inputs, Hidden, Layers, Bidirectional, Bias) { ProjSize = Projection }
            + $" + nn.Linear({Directions * Projection}, {Classes}), T = {Steps}, m = {Batch}";
    }

    /// <summary>The recurrent module's parameters under PyTorch's names, uniform in (−1/√n_a, 1/√n_a) as nn.LSTM initialises them.</summary>
    private sealed class Weights : nn.Module
    {
        private readonly string[] names;

        public Weights(Case c) : base("LSTM")
        {
            var bound = 1 / Math.Sqrt(c.Hidden);
            names = [.. c.Tensors().Select(t => t.Name)];
            foreach (var (name, shape) in c.Tensors())
                register_parameter(name, new TorchSharp.Modules.Parameter(empty(shape, ScalarType.Float64).uniform_(-bound, bound)));
        }

        /// <summary>The parameters in <c>_flat_weights</c> order.</summary>
        public Tensor[] Flat()
        {
            var byName = named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
            return [.. names.Select(n => byName[n])];
        }
    }

    /// <summary>A module with the recurrent weights under <c>rnn</c> and the read-out under <c>fc</c>, as in a PyTorch model.</summary>
    private sealed class Net : nn.Module
    {
        public readonly Weights rnn;
        public readonly TorchSharp.Modules.Linear fc;

        public Net(Case c) : base("Net")
        {
            rnn = new Weights(c);
            fc = nn.Linear(c.Directions * c.Projection, c.Classes, dtype: ScalarType.Float64);
            RegisterComponents();
        }
    }

    /// <summary>What libtorch computed: forward values, the loss, and the gradient of every leaf.</summary>
    private sealed record Theirs(Tensor Output, Tensor H, Tensor C, double Loss, ImmutableDictionary<string, Tensor> Gradients, Tensor Dx, Tensor Dh0, Tensor Dc0);

    /// <summary>One input: x (T, m, n_x), h0 (L·D, m, n_p), c0 (L·D, m, n_a) and the labels.</summary>
    private sealed record Input(Tensor X, Tensor H0, Tensor C0, ImmutableArray<ImmutableArray<int>> Labels);

    public static int Run()
    {
        torch.set_num_threads(1);
        torch.manual_seed(2026);
        using var unit = torch.jit.compile(Script);
        var cases = Cases();
        var directory = Directory.CreateTempSubdirectory("rnnf-torch-projected-");
        var (checks, failures, largest, largestAt) = (0, 0, 0.0, "");
        try
        {
            foreach (var (c, i) in cases.Select((c, i) => (c, i)))
            {
                using var scope = NewDisposeScope();
                Console.WriteLine($"== {c}");
                var layout = new TorchLayout(TorchCell.Lstm, "rnn", "fc");
                var input = RandomInput(c, seed: 500 + i);

                // libtorch → RnnFunctional
                using var theirs = new Net(c);
                var path = Path.Combine(directory.FullName, $"torch{i}.safetensors");
                theirs.save_safetensors(path);
                var loaded = TorchStateDict.Load(path, layout);
                var reference = Torch(unit, theirs, c, input);
                foreach (var (what, d) in Differences(reference, loaded, c, input))
                    Count(Report($"libtorch → TorchStateDict.Load: {what}", d), $"{c}, libtorch → TorchStateDict.Load: {what}");

                // RnnFunctional → libtorch
                var ours = RandomStack(c, seed: 100 + i);
                var back = Path.Combine(directory.FullName, $"ours{i}.safetensors");
                using var fresh = new Net(c);
                var forOurs = TorchStateDict.Save(back, ours, layout, c.Bias).Map(_ =>
                {
                    fresh.load_safetensors(back, strict: true);
                    return Torch(unit, fresh, c, input);
                });
                foreach (var (what, d) in forOurs.Match(r => Differences(r, Validation<Error, StackParameters>.Success(ours), c, input), e => [("save and load", Validation<Error, double>.Fail(e))]))
                    Count(Report($"TorchStateDict.Save → libtorch: {what}", d), $"{c}, TorchStateDict.Save → libtorch: {what}");

                // A control: weight_hr_l0[0, 0] moved by 1e-3 in the file libtorch wrote must move the forward and the gradients.
                var moved = Safetensors.Load(path).Match(file => TorchStateDict.ToStack(Nudge(file.Tensors, "rnn.weight_hr_l0"), layout),
                    e => Validation<Error, StackParameters>.Fail(LanguageExt.Prelude.Seq1(e)));
                var control = Differences(reference, moved, c, input).ToList();
                // A stack that could not be read has no forward: 0, and the control fails.
                var forward = control.Where(p => p.What.StartsWith("forward", StringComparison.Ordinal)).Select(p => p.Difference.Match(d => d, _ => 0.0)).DefaultIfEmpty().Max();
                var gradients = control.Where(p => p.What.StartsWith("gradient", StringComparison.Ordinal)).Select(p => p.Difference.Match(d => d, _ => 0.0)).DefaultIfEmpty().Max();
                var differs = forward > ControlFloor && gradients > ControlFloor;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{(differs ? "ok  " : "FAIL")} control: rnn.weight_hr_l0[0, 0] + 1e-3 differs by more than {ControlFloor:E0}: forward {forward:E2}, gradients {gradients:E2}"));
                if (!differs) failures++;
            }
        }
        finally
        {
            directory.Delete(recursive: true);
        }
        Console.WriteLine(failures == 0
            ? string.Create(CultureInfo.InvariantCulture, $"all {checks} comparisons of {cases.Length} configurations agree to {Tolerance:E0}, the largest difference being {largest:E2} ({largestAt}); every control differs")
            : $"{failures} of {checks + cases.Length} checks failed");
        return failures == 0 ? 0 : 1;

        void Count((bool Failed, double Difference) r, string what)
        {
            checks++;
            if (r.Failed) failures++;
            else if (r.Difference > largest) (largest, largestAt) = (r.Difference, what);
        }
    }

    /// <summary>
    /// Eight small configurations from a seeded generator (layers 1, 2, 3 in turn, every pairing of directions and
    /// biases), then two that reach the driver's larger paths: T·m above <c>Summation.BlockColumns</c> = 256 (more than
    /// one time block per layer) and m ≥ 2·<c>Summation.ChunkColumns</c> = 256 (the batch split into chunks).
    /// </summary>
    private static Case[] Cases()
    {
        var random = new Random(2026);
        return [.. Enumerable.Range(0, 8).Select(i =>
        {
            var hidden = random.Next(2, 9);
            return new Case(Layers: 1 + i % 3, Bidirectional: i / 2 % 2 == 1, Bias: i % 2 == 0, Inputs: random.Next(1, 7), Hidden: hidden,
                Projection: random.Next(1, hidden), Classes: random.Next(2, 6), Steps: random.Next(1, 8), Batch: random.Next(1, 5));
        }),
            new Case(Layers: 2, Bidirectional: true, Bias: true, Inputs: 7, Hidden: 16, Projection: 5, Classes: 6, Steps: 60, Batch: 5),
            new Case(Layers: 2, Bidirectional: false, Bias: false, Inputs: 3, Hidden: 6, Projection: 4, Classes: 3, Steps: 3, Batch: 260)];
    }

    private static Input RandomInput(Case c, int seed)
    {
        var random = new Random(seed);
        var layers = c.Layers * c.Directions;
        return new(randn(c.Steps, c.Batch, c.Inputs, dtype: ScalarType.Float64), randn(layers, c.Batch, c.Projection, dtype: ScalarType.Float64),
            randn(layers, c.Batch, c.Hidden, dtype: ScalarType.Float64),
            [.. Enumerable.Range(0, c.Steps).Select(_ => Enumerable.Range(0, c.Batch).Select(_ => random.Next(c.Classes)).ToImmutableArray())]);
    }

    /// <summary>A random stack of projected layers and its read-out; without biases, zero biases, as a module without them computes.</summary>
    private static StackParameters RandomStack(Case c, int seed)
    {
        Layer One(int nin, int s)
        {
            var p = ProjectedLstmParameters.Initialize(nin, c.Hidden, c.Projection, 1, s);
            var zero = Vector<double>.Build.Dense(4 * c.Hidden);
            return Layer.ProjectedLstm(c.Bias ? p : p with { Bih = zero, Bhh = zero });
        }
        var layers = Enumerable.Range(0, c.Layers).Select(k =>
        {
            var nin = k == 0 ? c.Inputs : c.Directions * c.Projection;
            return c.Bidirectional ? Layer.Bidirectional(One(nin, seed * 10 + 2 * k), One(nin, seed * 10 + 2 * k + 1)) : One(nin, seed * 10 + k);
        }).ToImmutableArray();
        return StackParameters.Initialize(layers, c.Classes, seed);
    }

    /// <summary>The tensors with entry [0, 0] of <paramref name="name"/> moved by 1e-3.</summary>
    private static ImmutableDictionary<string, SafetensorsTensor> Nudge(IReadOnlyDictionary<string, SafetensorsTensor> tensors, string name) =>
        tensors.ToImmutableDictionary(p => p.Key, p => p.Key != name ? p.Value
            : new SafetensorsTensor(p.Value.DType, p.Value.Shape, p.Value.Values.SetItem(0, p.Value.Values[0] + 1e-3)));

    /// <summary>libtorch's forward (torch.lstm through TorchScript), read-out, summed cross-entropy and backward.</summary>
    private static Theirs Torch(torch.jit.CompilationUnit unit, Net net, Case c, Input input)
    {
        var x = input.X.detach().requires_grad_(true);
        var h0 = input.H0.detach().requires_grad_(true);
        var c0 = input.C0.detach().requires_grad_(true);
        net.zero_grad();
        var (output, h, cn) = ((Tensor, Tensor, Tensor))unit.invoke("lstm", x, h0, c0, net.rnn.Flat(), c.Bias, c.Layers, c.Bidirectional);
        var labels = tensor(input.Labels.SelectMany(row => row.Select(l => (long)l)).ToArray(), [c.Steps * c.Batch], ScalarType.Int64);
        var logits = net.fc.call(output).reshape(c.Steps * c.Batch, c.Classes);
        var loss = nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum);
        loss.backward();
        var gradients = net.named_parameters().ToImmutableDictionary(p => p.name, p => p.parameter.grad ?? throw new InvalidOperationException($"libtorch gave no gradient of {p.name}"));
        return new(output.detach(), h.detach(), cn.detach(), loss.item<double>(), gradients, x.grad!, h0.grad!, c0.grad!);
    }

    /// <summary>Every comparison of RnnFunctional's stack with libtorch's results, each the difference the class defines, or why the stack is missing.</summary>
    private static IEnumerable<(string What, Validation<Error, double> Difference)> Differences(Theirs theirs, Validation<Error, StackParameters> stack, Case c, Input input)
    {
        if (stack.IsFail)
        {
            yield return ("read", stack.Map(_ => 0.0));
            yield break;
        }
        var p = stack.Match(s => s, _ => throw new InvalidOperationException());
        var (d, np, na, m, t) = (c.Directions, c.Projection, c.Hidden, c.Batch, c.Steps);
        ImmutableArray<Matrix<double>> xs = [.. Enumerable.Range(0, t).Select(s => Slice(input.X, s, c.Inputs, m))];
        var initial = Enumerable.Range(0, c.Layers).Select(k => Enumerable.Range(0, d)
            .SelectMany(r => new[] { Slice(input.H0, d * k + r, np, m), Slice(input.C0, d * k + r, na, m) }).ToImmutableArray()).ToImmutableArray();

        var forward = Stack.Forward(p, xs, initial: initial);
        yield return ("forward output", MatrixDifference(Enumerable.Range(0, t).Select(s => (forward.Top[s], Slice(theirs.Output, s, d * np, m)))));
        var states = Enumerable.Range(0, c.Layers).SelectMany(k => Enumerable.Range(0, d).Select(r => (k, r))).ToList();
        yield return ("forward h_n", MatrixDifference(states.Select(s => (forward.Final[s.k][2 * s.r], Slice(theirs.H, d * s.k + s.r, np, m)))));
        yield return ("forward c_n", MatrixDifference(states.Select(s => (forward.Final[s.k][2 * s.r + 1], Slice(theirs.C, d * s.k + s.r, na, m)))));

        var loss = Stack.LossAndGradients(p, xs, input.Labels, initial: initial);
        yield return (string.Create(CultureInfo.InvariantCulture, $"forward loss (libtorch's {theirs.Loss:G6})"), Validation<Error, double>.Success(Math.Abs(loss.Loss - theirs.Loss) / Math.Max(1, Math.Abs(theirs.Loss))));

        // Our gradients under PyTorch's names; bias: true keeps the gradients of a bias-free module's zero biases, which libtorch has no tensor for.
        var named = TorchStateDict.FromStack(loss.Gradients, new TorchLayout(TorchCell.Lstm, "rnn", "fc"), bias: true);
        var missing = named.Match(ours => theirs.Gradients.Keys.Where(k => !ours.ContainsKey(k)).ToList(), _ => []);
        var worst = named.Match(ours => missing.Count > 0 ? ("", 0.0)
            : theirs.Gradients.Select(g => (Name: g.Key, Difference: Difference(ours[g.Key].Values.AsSpan(), g.Value))).MaxBy(g => g.Difference), _ => ("", 0.0));
        yield return (string.Create(CultureInfo.InvariantCulture, $"gradients of the {theirs.Gradients.Count} named tensors (largest at {worst.Item1})"),
            missing.Count > 0 ? Validation<Error, double>.Fail(LanguageExt.Prelude.Seq1(Error.New($"no gradient named {string.Join(", ", missing)}")))
            : named.Map(_ => worst.Item2));
        yield return ("gradient dx", MatrixDifference(Enumerable.Range(0, t).Select(s => (loss.Dx[s], Slice(theirs.Dx, s, c.Inputs, m)))));
        yield return ("gradient dh0", MatrixDifference(states.Select(s => (loss.DInitial[s.k][2 * s.r], Slice(theirs.Dh0, d * s.k + s.r, np, m)))));
        yield return ("gradient dc0", MatrixDifference(states.Select(s => (loss.DInitial[s.k][2 * s.r + 1], Slice(theirs.Dc0, d * s.k + s.r, na, m)))));
    }

    /// <summary>The difference of pairs of matrices, taken together as one quantity.</summary>
    private static Validation<Error, double> MatrixDifference(IEnumerable<(Matrix<double> Ours, Matrix<double> Theirs)> pairs)
    {
        var list = pairs.ToList();
        var scale = Math.Max(1, list.Max(p => p.Theirs.Enumerate().Max(Math.Abs)));
        return Validation<Error, double>.Success(list.Max(p => (p.Ours - p.Theirs).Enumerate().Max(Math.Abs)) / scale);
    }

    /// <summary>The difference of a row-major tensor of ours and libtorch's tensor of the same shape.</summary>
    private static double Difference(ReadOnlySpan<double> ours, Tensor theirs)
    {
        var values = theirs.contiguous().data<double>().ToArray();
        if (values.Length != ours.Length) return double.PositiveInfinity;
        var (largest, scale) = (0.0, 1.0);
        for (var i = 0; i < values.Length; i++)
        {
            largest = Math.Max(largest, Math.Abs(ours[i] - values[i]));
            scale = Math.Max(scale, Math.Abs(values[i]));
        }
        return largest / scale;
    }

    /// <summary>Entry <paramref name="index"/> of a (·, m, n) tensor as an n×m matrix: (m, n) row-major is n×m column-major.</summary>
    private static Matrix<double> Slice(Tensor tensor, long index, int rows, int columns) =>
        Matrix<double>.Build.Dense(rows, columns, tensor[index].contiguous().data<double>().ToArray());

    private static (bool Failed, double Difference) Report(string what, Validation<Error, double> difference)
    {
        var (line, failed, value) = difference.Match(
            d => (string.Create(CultureInfo.InvariantCulture, $"largest difference {d:E2}"), !(d <= Tolerance), d),
            errors => ("failed: " + string.Join("; ", errors.Select(e => e.Message)), true, double.NaN));
        Console.WriteLine($"{(failed ? "FAIL" : "ok  ")} {what}: {line}");
        return (failed, value);
    }
}
