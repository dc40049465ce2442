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
/// The interchange checked against libtorch itself (<c>RnnFunctional.Benchmarks.Torch.dll interchange</c>): for
/// nn.RNN (tanh and relu), nn.LSTM and nn.GRU modules with an nn.Linear read-out, each in double,
/// <list type="number">
/// <item>libtorch → RnnFunctional: the module's <c>state_dict</c> saved as safetensors by TorchSharp.PyBridge's
/// <c>save_safetensors</c>, loaded by <see cref="TorchStateDict.Load"/>; softmax(fc(output)) and h_n, c_n of libtorch's
/// forward equal <see cref="Stack.Forward"/>'s predictions and final states on the same input and initial states;</item>
/// <item>RnnFunctional → libtorch: a random stack saved by <see cref="TorchStateDict.Save"/>, loaded into a fresh
/// module by PyBridge's <c>load_safetensors</c> (strict), with the same comparison;</item>
/// <item>a pickled <c>.pt</c> of PyBridge's <c>save_py</c>, which RnnFunctional does not read: the error it gives.</item>
/// </list>
/// Every difference must be at most <see cref="Tolerance"/>; the exit code is 0 when all are.
/// </summary>
public static class InterchangeCheck
{
    /// <summary>The largest absolute difference allowed between libtorch's and RnnFunctional's outputs.</summary>
    public const double Tolerance = 1e-12;

    /// <summary>A module with its parts under the attribute names <c>rnn</c> and <c>fc</c>, as in a PyTorch model.</summary>
    private sealed class Net : nn.Module
    {
        public readonly nn.Module rnn;
        public readonly TorchSharp.Modules.Linear fc;

        public Net(TorchCell cell, int nx, int na, int layers, bool bidirectional, bool bias, int ny) : base("Net")
        {
            rnn = cell switch
            {
                TorchCell.Lstm => nn.LSTM(nx, na, layers, bias, bidirectional: bidirectional, dtype: ScalarType.Float64),
                TorchCell.Gru => nn.GRU(nx, na, layers, bias, bidirectional: bidirectional, dtype: ScalarType.Float64),
                _ => nn.RNN(nx, na, layers, cell == TorchCell.RnnRelu ? nn.NonLinearities.ReLU : nn.NonLinearities.Tanh, bias,
                    bidirectional: bidirectional, dtype: ScalarType.Float64),
            };
            fc = nn.Linear((bidirectional ? 2 : 1) * na, ny, dtype: ScalarType.Float64);
            RegisterComponents();
        }

        /// <summary>softmax(fc(output)) over the classes, h_n and (LSTM) c_n.</summary>
        public (Tensor Probabilities, Tensor H, Tensor? C) Run(Tensor x, Tensor h0, Tensor? c0)
        {
            var (output, h, c) = rnn switch
            {
                TorchSharp.Modules.LSTM lstm => lstm.call(x, (h0, c0!)) is var (o, hn, cn) ? (o, hn, (Tensor?)cn) : default,
                TorchSharp.Modules.GRU gru => gru.call(x, h0) is var (o, hn) ? (o, hn, null) : default,
                TorchSharp.Modules.RNN r => r.call(x, h0) is var (o, hn) ? (o, hn, null) : default,
                _ => throw new InvalidOperationException("not a recurrent module"),
            };
            return (fc.call(output).softmax(-1), h, c);
        }
    }

    private sealed record Case(TorchCell Cell, int Layers, bool Bidirectional, bool Bias)
    {
        public override string ToString() =>
            new TorchModule(Cell, Inputs, Hidden, Layers, Bidirectional, Bias) + $" + nn.Linear({(Bidirectional ? 2 : 1) * Hidden}, {Classes})";
    }

    private const int Inputs = 5, Hidden = 7, Classes = 4, Steps = 6, Batch = 3;

    private static readonly Case[] Cases =
    [
        new(TorchCell.RnnTanh, 2, true, true), new(TorchCell.RnnRelu, 2, true, true), new(TorchCell.Lstm, 2, true, true),
        new(TorchCell.Gru, 2, true, true), new(TorchCell.Lstm, 3, false, false), new(TorchCell.Gru, 1, false, false),
    ];

    public static int Run()
    {
        torch.set_num_threads(1);
        torch.manual_seed(12);
        var directory = Directory.CreateTempSubdirectory("rnnf-torch-interchange-");
        var failures = 0;
        try
        {
            foreach (var (c, i) in Cases.Select((c, i) => (c, i)))
            {
                var layout = new TorchLayout(c.Cell, "rnn", "fc");
                using var scope = NewDisposeScope();

                // libtorch → RnnFunctional
                var theirs = new Net(c.Cell, Inputs, Hidden, c.Layers, c.Bidirectional, c.Bias, Classes);
                var path = Path.Combine(directory.FullName, $"torch{i}.safetensors");
                theirs.save_safetensors(path);
                var loaded = TorchStateDict.Load(path, layout);
                failures += Report($"{c}: libtorch save_safetensors → TorchStateDict.Load", loaded.Map(p => Compare(theirs, p, c)));
                if (c.Cell == TorchCell.RnnTanh)
                {
                    // A control: the same file read as a ReLU module must differ, so that agreement above means something.
                    var wrong = TorchStateDict.Load(path, layout with { Cell = TorchCell.RnnRelu }).Map(p => Compare(theirs, p, c));
                    var differs = wrong.Match(d => d > 1e-3, _ => false);
                    Console.WriteLine($"{(differs ? "ok  " : "FAIL")} control: the same file read as nn.RNN(nonlinearity=\"relu\") differs: {wrong.Match(d => d.ToString("E2", CultureInfo.InvariantCulture), _ => "failed")}");
                    if (!differs) failures++;
                }

                // RnnFunctional → libtorch
                var ours = Random(c, seed: 100 + i);
                var back = Path.Combine(directory.FullName, $"ours{i}.safetensors");
                var fresh = new Net(c.Cell, Inputs, Hidden, c.Layers, c.Bidirectional, c.Bias, Classes);
                var saved = TorchStateDict.Save(back, ours, layout, c.Bias);
                failures += Report($"{c}: TorchStateDict.Save → libtorch load_safetensors", saved.Map(_ =>
                {
                    fresh.load_safetensors(back, strict: true);
                    return Compare(fresh, ours, c);
                }));
                theirs.Dispose();
                fresh.Dispose();
            }

            // A pickled state_dict (torch.save's format) is not read: the reader says what it found.
            using var net = new Net(TorchCell.Lstm, Inputs, Hidden, 1, false, true, Classes);
            var pickled = Path.Combine(directory.FullName, "model.pt");
            net.save_py(pickled);
            var refused = TorchStateDict.Load(pickled, new TorchLayout(TorchCell.Lstm, "rnn", "fc"));
            Console.WriteLine($"PyBridge save_py .pt ({new FileInfo(pickled).Length} bytes) → TorchStateDict.Load: "
                + refused.Match(_ => "read (unexpected)", errors => "refused: " + string.Join("; ", errors.Select(e => e.Message))));
            if (refused.IsSuccess) failures++;
        }
        finally
        {
            directory.Delete(recursive: true);
        }
        Console.WriteLine(failures == 0 ? $"all {2 * Cases.Length} checks agree to {Tolerance}" : $"{failures} of {2 * Cases.Length} checks failed");
        return failures == 0 ? 0 : 1;
    }

    private static int Report(string what, Validation<Error, double> difference)
    {
        var (line, failed) = difference.Match(
            d => (string.Create(CultureInfo.InvariantCulture, $"largest difference {d:E2}"), d > Tolerance),
            errors => ("failed: " + string.Join("; ", errors.Select(e => e.Message)), true));
        Console.WriteLine($"{(failed ? "FAIL" : "ok  ")} {what}: {line}");
        return failed ? 1 : 0;
    }

    /// <summary>A random stack of the case's module, read-out included.</summary>
    private static StackParameters Random(Case c, int seed)
    {
        Layer One(int nin, int s) => c.Cell switch
        {
            TorchCell.Lstm => Layer.Lstm(nin, Hidden, s),
            TorchCell.Gru => Layer.Gru(nin, Hidden, s),
            _ => Layer.Rnn(nin, Hidden, s, c.Cell == TorchCell.RnnRelu ? Activation.Relu : Activation.Tanh),
        };
        var d = c.Bidirectional ? 2 : 1;
        var layers = Enumerable.Range(0, c.Layers).Select(k =>
        {
            var nin = k == 0 ? Inputs : d * Hidden;
            return c.Bidirectional ? Layer.Bidirectional(One(nin, seed * 10 + 2 * k), One(nin, seed * 10 + 2 * k + 1)) : One(nin, seed * 10 + k);
        }).ToImmutableArray();
        var p = StackParameters.Initialize(layers, Classes, seed);
        // bias=False: the biases are zero, as a module without them computes.
        return c.Bias ? p : p.FromLeaves([.. p.ToLeaves().Select(l => l.Name.Split('.')[^1].StartsWith('B') && l.Name != "By" ? l.WithValues(new double[l.Values.Length]) : l)]);
    }

    /// <summary>
    /// The largest difference between libtorch's forward of <paramref name="net"/> and <see cref="Stack.Forward"/> of
    /// <paramref name="p"/> on one random input and random initial states: probabilities, h_n and c_n.
    /// </summary>
    private static double Compare(Net net, StackParameters p, Case c)
    {
        var d = c.Bidirectional ? 2 : 1;
        var x = randn(Steps, Batch, Inputs, dtype: ScalarType.Float64);
        var h0 = randn(c.Layers * d, Batch, Hidden, dtype: ScalarType.Float64);
        var c0 = c.Cell == TorchCell.Lstm ? randn(c.Layers * d, Batch, Hidden, dtype: ScalarType.Float64) : null;
        var (probabilities, h, cn) = net.Run(x, h0, c0);

        // (T, m, n) row-major is T column-major n×m matrices: column j of xs[t] is x[t, j, :].
        Matrix<double> Slice(Tensor tensor, int index, int rows) =>
            Matrix<double>.Build.Dense(rows, Batch, tensor[index].contiguous().data<double>().ToArray());
        ImmutableArray<Matrix<double>> xs = [.. Enumerable.Range(0, Steps).Select(t => Slice(x, t, Inputs))];
        var initial = Enumerable.Range(0, c.Layers).Select(k => Enumerable.Range(0, d)
            .SelectMany(r => c0 is null ? [Slice(h0, d * k + r, Hidden)] : new[] { Slice(h0, d * k + r, Hidden), Slice(c0, d * k + r, Hidden) })
            .ToImmutableArray()).ToImmutableArray();
        var forward = Stack.Forward(p, xs, initial: initial);

        var largest = Enumerable.Range(0, Steps).Max(t => (forward.Predictions[t] - Slice(probabilities, t, Classes)).Enumerate().Max(Math.Abs));
        for (var k = 0; k < c.Layers; k++)
            for (var r = 0; r < d; r++)
            {
                var parts = c0 is null ? 1 : 2;
                largest = Math.Max(largest, (forward.Final[k][parts * r] - Slice(h, d * k + r, Hidden)).Enumerate().Max(Math.Abs));
                if (cn is not null) largest = Math.Max(largest, (forward.Final[k][parts * r + 1] - Slice(cn, d * k + r, Hidden)).Enumerate().Max(Math.Abs));
            }
        return largest;
    }
}
