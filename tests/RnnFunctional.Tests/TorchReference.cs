using System.Collections.Immutable;

namespace RnnFunctional.Tests;

/// <summary>
/// PyTorch's documented equations of nn.RNN, nn.LSTM (with or without proj_size), nn.GRU (num_layers, bidirectional,
/// bias) and nn.Linear, in plain
/// loops over PyTorch's own layout: tensors as they are in a state_dict (row-major, gates stacked i | f | g | o and
/// r | z | n), input (T, m, n_x), h_0 (num_layers·num_directions, m, proj_size or n_a) and c_0 (num_layers·num_directions, m, n_a). Nothing of the library is used but
/// the tensor record that carries the state_dict.
/// </summary>
internal sealed class TorchReference(IReadOnlyDictionary<string, SafetensorsTensor> stateDict, TorchModule module, string prefix, string readOut)
{
    private double[] Tensor(string name) => stateDict[string.IsNullOrEmpty(prefix) || name.StartsWith(readOut + ".", StringComparison.Ordinal) ? name : $"{prefix}.{name}"].Values.ToArray();

    private static double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));

    /// <summary>W[row, :]·v for a row-major W with v.Length columns.</summary>
    private static double Dot(double[] w, int row, double[] v)
    {
        var sum = 0.0;
        for (var c = 0; c < v.Length; c++) sum += w[row * v.Length + c] * v[c];
        return sum;
    }

    /// <summary>The top layer's output (T, m, D·n_a) and the softmax of the read-out at every step (T, m, n_y).</summary>
    public (double[][][] Output, double[][][] Probabilities) Run(double[][][] input, double[][][] h0, double[][][] c0)
    {
        var (na, directions) = (module.OutputSize, module.Bidirectional ? 2 : 1);                  // h's size: proj_size or hidden_size
        var layerInput = input;
        for (var k = 0; k < module.NumLayers; k++)
        {
            var output = input.Select(step => step.Select(_ => new double[directions * na]).ToArray()).ToArray();
            for (var d = 0; d < directions; d++)
            {
                var suffix = $"_l{k}{(d == 1 ? "_reverse" : "")}";
                var (wih, whh) = (Tensor("weight_ih" + suffix), Tensor("weight_hh" + suffix));
                var whr = module.ProjSize > 0 ? Tensor("weight_hr" + suffix) : null;
                var rows = whh.Length / na;
                var (bih, bhh) = module.Bias ? (Tensor("bias_ih" + suffix), Tensor("bias_hh" + suffix)) : (new double[rows], new double[rows]);
                for (var j = 0; j < input[0].Length; j++)
                {
                    var (h, c) = ((double[])h0[k * directions + d][j].Clone(), (double[])c0[k * directions + d][j].Clone());
                    for (var s = 0; s < input.Length; s++)
                    {
                        var t = d == 0 ? s : input.Length - 1 - s;
                        var x = layerInput[t][j];
                        (h, c) = Step(x, h, c, wih, whh, bih, bhh, whr);
                        Array.Copy(h, 0, output[t][j], d * na, na);
                    }
                }
            }
            layerInput = output;
        }
        var (weight, bias) = (Tensor(readOut + ".weight"), Tensor(readOut + ".bias"));
        var probabilities = layerInput.Select(step => step.Select(h =>
        {
            var logits = Enumerable.Range(0, bias.Length).Select(i => Dot(weight, i, h) + bias[i]).ToArray();
            var max = logits.Max();
            var sum = logits.Sum(l => Math.Exp(l - max));
            return logits.Select(l => Math.Exp(l - max) / sum).ToArray();
        }).ToArray()).ToArray();
        return (layerInput, probabilities);
    }

    private (double[] H, double[] C) Step(double[] x, double[] h, double[] c, double[] wih, double[] whh, double[] bih, double[] bhh, double[]? whr)
    {
        var na = module.HiddenSize;
        double Input(int row) => Dot(wih, row, x) + bih[row];
        double Hidden(int row) => Dot(whh, row, h) + bhh[row];
        var (hNext, cNext) = (new double[na], new double[na]);
        for (var i = 0; i < na; i++)
            switch (module.Cell)
            {
                case TorchCell.RnnTanh:
                    hNext[i] = Math.Tanh(Input(i) + Hidden(i));                           // h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
                    break;
                case TorchCell.RnnRelu:
                    hNext[i] = Math.Max(0, Input(i) + Hidden(i));
                    break;
                case TorchCell.Lstm:
                    var ig = Sigmoid(Input(i) + Hidden(i));                               // i | f | g | o
                    var fg = Sigmoid(Input(na + i) + Hidden(na + i));
                    var gg = Math.Tanh(Input(2 * na + i) + Hidden(2 * na + i));
                    var og = Sigmoid(Input(3 * na + i) + Hidden(3 * na + i));
                    cNext[i] = fg * c[i] + ig * gg;
                    hNext[i] = og * Math.Tanh(cNext[i]);
                    break;
                case TorchCell.Gru:
                    var r = Sigmoid(Input(i) + Hidden(i));                                // r | z | n
                    var z = Sigmoid(Input(na + i) + Hidden(na + i));
                    var n = Math.Tanh(Input(2 * na + i) + r * Hidden(2 * na + i));       // n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
                    hNext[i] = (1 - z) * n + z * h[i];
                    break;
            }
        // proj_size: h_t = W_hr (o_t ⊙ tanh(c_t)), W_hr (proj_size, hidden_size)
        return (whr is null ? hNext : [.. Enumerable.Range(0, module.ProjSize).Select(row => Dot(whr, row, hNext))], cNext);
    }

    /// <summary>A random state_dict of the module and an nn.Linear read-out, every entry uniform in (−scale, scale), both biases non-zero.</summary>
    public static ImmutableSortedDictionary<string, SafetensorsTensor> RandomStateDict(TorchModule m, int outputSize, string prefix, string readOut,
        Random random, SafetensorsDType dtype, double scale = 0.8)
    {
        SafetensorsTensor Tensor(params int[] shape) => new(dtype, [.. shape], [.. Enumerable.Range(0, shape.Aggregate(1, (a, b) => a * b))
            .Select(_ => dtype == SafetensorsDType.F32 ? (float)(scale * (2 * random.NextDouble() - 1)) : scale * (2 * random.NextDouble() - 1))]);
        var rows = (m.Cell switch { TorchCell.Lstm => 4, TorchCell.Gru => 3, _ => 1 }) * m.HiddenSize;
        var directions = m.Bidirectional ? 2 : 1;
        var result = ImmutableSortedDictionary.CreateBuilder<string, SafetensorsTensor>(StringComparer.Ordinal);
        string Name(string n) => string.IsNullOrEmpty(prefix) ? n : $"{prefix}.{n}";
        for (var k = 0; k < m.NumLayers; k++)
            for (var d = 0; d < directions; d++)
            {
                var suffix = $"_l{k}{(d == 1 ? "_reverse" : "")}";
                result.Add(Name("weight_ih" + suffix), Tensor(rows, k == 0 ? m.InputSize : directions * m.OutputSize));
                result.Add(Name("weight_hh" + suffix), Tensor(rows, m.OutputSize));
                if (m.ProjSize > 0) result.Add(Name("weight_hr" + suffix), Tensor(m.ProjSize, m.HiddenSize));
                if (!m.Bias) continue;
                result.Add(Name("bias_ih" + suffix), Tensor(rows));
                result.Add(Name("bias_hh" + suffix), Tensor(rows));
            }
        result.Add($"{readOut}.weight", Tensor(outputSize, directions * m.OutputSize));
        result.Add($"{readOut}.bias", Tensor(outputSize));
        return result.ToImmutable();
    }
}
