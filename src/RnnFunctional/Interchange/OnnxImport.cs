using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Globalization;
using Google.Protobuf;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace RnnFunctional;

/// <summary>
/// Import of ONNX models of the shape <see cref="OnnxExport"/> writes: one <c>RNN</c>, <c>LSTM</c> or <c>GRU</c>
/// node per layer (<c>direction</c> forward or bidirectional, weights W, R, B and an LSTM's peepholes P as
/// initializers of float or double: an <c>LSTM</c> node with <c>P</c> is a <see cref="Layer.PeepholeLstm(PeepholeLstmParameters)"/>
/// layer, one without it a <see cref="Layer.Lstm(LstmParameters)"/> layer),
/// in the order of the graph, then a read-out <c>MatMul</c> by an initializer [n_top, n_y], an <c>Add</c> of an
/// initializer [n_y] and a <c>Softmax</c>. The nodes that join them (<c>Squeeze</c>, <c>Transpose</c>,
/// <c>Reshape</c>, the mask) are not read: the layers are taken to feed each other in order, which their sizes must
/// agree with.
/// </summary>
/// <remarks>
/// What RnnFunctional cannot compute is refused, naming the node: a <c>reverse</c>-only direction, <c>clip</c>, <c>input_forget</c>, activations other than the defaults (an RNN's Tanh or Relu), a GRU
/// with <c>linear_before_reset = 0</c>, and non-finite weights. A float model's weights are read exactly (every float
/// is a double); a double model exported by <see cref="OnnxExport"/> comes back bit for bit.
/// </remarks>
public static class OnnxImport
{
    /// <summary>The stack of an ONNX model, or every problem found.</summary>
    /// <param name="model">A model, e.g. <c>ModelProto.Parser.ParseFrom(bytes)</c>.</param>
    [Pure]
    public static Validation<Error, StackParameters> ToStack(ModelProto model)
    {
        if (model?.Graph is not { } graph) return TorchStateDict.Fail<StackParameters>(["expected an ONNX model with a graph but got none"]);
        var problems = new List<string>();
        var initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in graph.Initializer)
            if (!initializers.TryAdd(t.Name, t)) problems.Add($"the initializer {t.Name} appears twice");
        var recurrent = graph.Node.Where(n => n.OpType is "RNN" or "LSTM" or "GRU" && n.Domain is "" or "ai.onnx").ToArray();
        if (recurrent.Length == 0) problems.Add("expected RNN, LSTM or GRU nodes but the graph has none");
        var layers = ImmutableArray.CreateBuilder<Layer>();
        var below = -1;                                                                             // the outputs' size of the layer below
        foreach (var node in recurrent)
        {
            var before = problems.Count;
            var layer = Recurrent(node, initializers, below, problems);
            if (layer is not null && problems.Count == before)
            {
                layers.Add(layer);
                below = layer.OutputSize;
            }
            else below = -2;                                                                        // unknown: sizes are not checked above it
        }
        var readOut = ReadOut(graph, initializers, below, problems);
        return problems.Count > 0 || readOut is not { } r
            ? TorchStateDict.Fail<StackParameters>(problems)
            : Validation<Error, StackParameters>.Success(new StackParameters(layers.ToImmutable(), r.Wy, r.By));
    }

    /// <summary>The stack of an ONNX model given as its bytes, or every problem (bytes that are not a model included).</summary>
    /// <param name="bytes">The content of an <c>.onnx</c> file.</param>
    [Pure]
    public static Validation<Error, StackParameters> Read(byte[] bytes)
    {
        if (bytes is null) return TorchStateDict.Fail<StackParameters>(["expected bytes but got null"]);
        try
        {
            return ToStack(ModelProto.Parser.ParseFrom(bytes));
        }
        catch (InvalidProtocolBufferException e)
        {
            return TorchStateDict.Fail<StackParameters>([$"not an ONNX model: {e.Message}"]);
        }
    }

    /// <summary>The stack of an ONNX file, or every problem (a missing or unreadable file included).</summary>
    /// <param name="path">The file.</param>
    [Pure]
    public static Validation<Error, StackParameters> Load(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) return TorchStateDict.Fail<StackParameters>(["expected path to name an ONNX file but it is empty"]);
        try
        {
            if (!File.Exists(path)) return TorchStateDict.Fail<StackParameters>([$"ONNX file {path} does not exist"]);
            using var stream = File.OpenRead(path);
            return ToStack(ModelProto.Parser.ParseFrom(stream));
        }
        catch (InvalidProtocolBufferException e)
        {
            return TorchStateDict.Fail<StackParameters>([$"{path} is not an ONNX model: {e.Message}"]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return TorchStateDict.Fail<StackParameters>([$"cannot read ONNX file {path}: {e.Message}"]);
        }
    }

    /// <summary>One layer from one node, or null with its problems recorded.</summary>
    private static Layer? Recurrent(NodeProto node, Dictionary<string, TensorProto> initializers, int below, List<string> problems)
    {
        var name = $"node {node.Name} ({node.OpType})";
        var attributes = node.Attribute.ToDictionary(a => a.Name, StringComparer.Ordinal);
        var gates = node.OpType switch { "LSTM" => 4, "GRU" => 3, _ => 1 };
        var direction = attributes.TryGetValue("direction", out var dir) ? dir.S.ToStringUtf8() : "forward";
        var d = direction switch { "forward" => 1, "bidirectional" => 2, _ => 0 };
        if (d == 0) problems.Add($"{name} has direction = \"{direction}\": only forward and bidirectional layers are read");
        if (!attributes.TryGetValue("hidden_size", out var hidden) || hidden.I < 1) problems.Add($"{name} has no hidden_size ≥ 1");
        foreach (var refused in new[] { "clip", "input_forget", "activation_alpha", "activation_beta", "layout" })
            if (attributes.TryGetValue(refused, out var a) && !(refused is "input_forget" or "layout" && a.I == 0))
                problems.Add($"{name} has the attribute {refused}, which RnnFunctional's cells do not have");
        if (node.OpType == "GRU" && (!attributes.TryGetValue("linear_before_reset", out var lbr) || lbr.I != 1))
            problems.Add($"{name} has linear_before_reset = 0: RnnFunctional's GRU (PyTorch's) is linear_before_reset = 1");
        var activations = attributes.TryGetValue("activations", out var acts) ? acts.Strings.Select(s => s.ToStringUtf8()).ToArray() : [];
        if (node.OpType == "RNN" && activations.Any(a => a is not ("Tanh" or "Relu")))
            problems.Add($"{name} has the activations [{string.Join(", ", activations)}]: only Tanh and Relu are read");
        if (node.OpType != "RNN" && activations.Length > 0 && !activations.SequenceEqual(Defaults(node.OpType, d)))
            problems.Add($"{name} has the activations [{string.Join(", ", activations)}]: only the defaults are read");
        var peepholes = node.OpType == "LSTM" && node.Input.Count > 7 && node.Input[7].Length > 0;
        if (d == 0 || hidden is not { I: >= 1 }) return null;

        var na = (int)hidden.I;
        double[]? Weights(int index, string what, long[] dims)
        {
            var input = node.Input.Count > index ? node.Input[index] : "";
            if (input.Length == 0) return index == 3 ? new double[dims.Aggregate(1L, (n, k) => n * k)] : Missing();
            if (!initializers.TryGetValue(input, out var tensor))
            {
                problems.Add($"expected {what} of {name} ({input}) to be an initializer but it is computed by the graph");
                return null;
            }
            return Values(tensor, $"{what} of {name}", dims, problems);
            double[]? Missing()
            {
                problems.Add($"{name} has no {what}");
                return null;
            }
        }
        var nin = node.Input.Count > 1 && initializers.TryGetValue(node.Input[1], out var wt) && wt.Dims.Count == 3 ? (int)wt.Dims[2] : 0;
        if (below >= 0 && nin != below)
            problems.Add($"expected {name} to read the {below} outputs of the layer below but its W has {nin} columns");
        var w = Weights(1, "W", [d, gates * na, nin]);
        var r = Weights(2, "R", [d, gates * na, na]);
        var b = Weights(3, "B", [d, 2 * gates * na]);
        var p = peepholes ? Weights(7, "P", [d, 3 * na]) : [];
        if (w is null || r is null || b is null || p is null || nin < 1) return null;
        Layer Direction(int k)
        {
            var wk = w.AsSpan(k * gates * na * nin, gates * na * nin);
            var rk = r.AsSpan(k * gates * na * na, gates * na * na);
            var bk = b.AsSpan(k * 2 * gates * na, 2 * gates * na);
            var layer = OnnxLayouts.FromOnnx(node.OpType, na, nin, wk, rk, bk[..(gates * na)], bk[(gates * na)..],
                activations.Length > k && activations[k] == "Relu" ? Activation.Relu : Activation.Tanh);
            return peepholes ? OnnxLayouts.WithPeepholes(layer, p.AsSpan(k * 3 * na, 3 * na)) : layer;
        }
        return d == 2 ? Layer.Bidirectional(Direction(0), Direction(1)) : Direction(0);
    }

    private static string[] Defaults(string op, int d) =>
        [.. Enumerable.Repeat(op == "LSTM" ? new[] { "Sigmoid", "Tanh", "Tanh" } : ["Sigmoid", "Tanh"], d).SelectMany(x => x)];

    /// <summary>Wy and By from the MatMul by an initializer [n_top, n_y] and the Add of an initializer [n_y]; a Softmax must follow.</summary>
    private static (Matrix<double> Wy, Vector<double> By)? ReadOut(GraphProto graph, Dictionary<string, TensorProto> initializers, int top, List<string> problems)
    {
        var matmul = graph.Node.FirstOrDefault(n => n.OpType == "MatMul" && n.Input.Count == 2 && initializers.TryGetValue(n.Input[1], out var t) && t.Dims.Count == 2);
        if (matmul is null)
        {
            problems.Add("expected a read-out MatMul by an initializer [n_top, n_y] but the graph has none");
            return null;
        }
        var weight = initializers[matmul.Input[1]];
        var (rows, ny) = ((int)weight.Dims[0], (int)weight.Dims[1]);
        if (top >= 0 && rows != top) problems.Add($"expected the read-out {weight.Name} to have the top layer's {top} rows but it has {rows}");
        var add = graph.Node.FirstOrDefault(n => n.OpType == "Add" && n.Input.Contains(matmul.Output[0]));
        var biasName = add?.Input.FirstOrDefault(i => i != matmul.Output[0] && initializers.ContainsKey(i));
        if (biasName is null) problems.Add($"expected an Add of an initializer [{ny}] to the output of {matmul.Name} but the graph has none");
        if (add is null || !graph.Node.Any(n => n.OpType == "Softmax" && n.Input.Contains(add.Output[0])))
            problems.Add("expected a Softmax of the read-out's logits but the graph has none");
        var wyT = Values(weight, $"the read-out {weight.Name}", [rows, ny], problems);
        var by = biasName is null ? null : Values(initializers[biasName], $"the read-out bias {biasName}", [ny], problems);
        // Wyᵀ row-major [n_top, n_y] is Wy column-major (n_y×n_top): the array is Wy's storage as it is.
        return wyT is null || by is null ? null : (Matrix<double>.Build.Dense(ny, rows, wyT), Vector<double>.Build.Dense(by));
    }

    /// <summary>A float or double tensor of the expected dimensions as doubles (raw_data or the typed fields), or null with the problem recorded.</summary>
    private static double[]? Values(TensorProto t, string what, long[] dims, List<string> problems)
    {
        if (!t.Dims.SequenceEqual(dims))
        {
            problems.Add($"expected {what} to be [{string.Join(", ", dims)}] but it is [{string.Join(", ", t.Dims)}]");
            return null;
        }
        var count = (int)dims.Aggregate(1L, (n, k) => n * k);
        var type = (DataType)t.DataType;
        if (type is not (DataType.Float or DataType.Double))
        {
            problems.Add($"expected {what} to hold float or double values but they are {type}");
            return null;
        }
        var size = type == DataType.Double ? sizeof(double) : sizeof(float);
        var stored = t.RawData.Length > 0 ? t.RawData.Length / size : type == DataType.Double ? t.DoubleData.Count : t.FloatData.Count;
        if (stored != count || (t.RawData.Length > 0 && t.RawData.Length % size != 0))
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"expected {what} to hold {count} values but it holds {stored}"));
            return null;
        }
        var values = new double[count];
        var raw = t.RawData.Span;
        for (var i = 0; i < count; i++)
            values[i] = raw.Length > 0
                ? type == DataType.Double ? BinaryPrimitives.ReadDoubleLittleEndian(raw[(8 * i)..]) : BinaryPrimitives.ReadSingleLittleEndian(raw[(4 * i)..])
                : type == DataType.Double ? t.DoubleData[i] : t.FloatData[i];
        if (TensorLayout.FirstNonFinite(values) is var bad and >= 0)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"expected {what} to be finite but entry {bad} is {values[bad]}"));
            return null;
        }
        return values;
    }
}

/// <summary>One direction of one layer from ONNX's layout, the inverse of <see cref="OnnxDirection"/>.</summary>
internal static class OnnxLayouts
{
    /// <summary>
    /// The peephole LSTM of an LSTM layer and its peepholes P = [P_i; P_o; P_f] (3·n_a, ONNX's order), each copied
    /// once into its vector.
    /// </summary>
    public static Layer WithPeepholes(Layer lstm, ReadOnlySpan<double> p)
    {
        var na = lstm.OutputSize;
        var (pi, po, pf) = (p[..na].ToArray(), p.Slice(na, na).ToArray(), p.Slice(2 * na, na).ToArray());   // ONNX: i | o | f
        var gates = ((CellLayer<LstmParameters, LstmState, LstmCache>)lstm).Parameters;
        return Layer.PeepholeLstm(PeepholeLstmParameters.Of(gates, Vector<double>.Build.Dense(pf), Vector<double>.Build.Dense(pi), Vector<double>.Build.Dense(po)));
    }

    /// <summary>
    /// A layer from W (G·n_a×n_in), R (G·n_a×n_a), Wb and Rb (G·n_a) in ONNX's gate order, each weight copied once
    /// into its matrix's storage: the RNN's Ba = Wb + Rb; the LSTM's gates i | o | f | c joined into [a | x] columns,
    /// B_G = Wb_G + Rb_G; the GRU's z | r | h moved to r | z | n, its two biases kept apart.
    /// </summary>
    public static Layer FromOnnx(string op, int na, int nin, ReadOnlySpan<double> w, ReadOnlySpan<double> r,
        ReadOnlySpan<double> wb, ReadOnlySpan<double> rb, Activation activation)
    {
        var none = (Matrix: Matrix<double>.Build.Dense(0, na), Vector: Vector<double>.Build.Dense(0));
        switch (op)
        {
            case "LSTM":
                var b = TorchLayouts.Sum(wb, rb);
                var gates = new Matrix<double>[4];
                for (var g = 0; g < 4; g++)                                                       // ONNX: i | o | f | c
                {
                    var storage = new double[na * (na + nin)];
                    TensorLayout.Transpose(r[(g * na * na)..], na, na, na, storage, na);
                    TensorLayout.Transpose(w[(g * na * nin)..], nin, na, nin, storage.AsSpan(na * na), na);
                    gates[g] = Matrix<double>.Build.Dense(na, na + nin, storage);
                }
                Vector<double> B(int g) => Vector<double>.Build.Dense(b.AsSpan(g * na, na).ToArray());
                return Layer.Lstm(new LstmParameters(gates[2], B(2), gates[0], B(0), gates[3], B(3), gates[1], B(1), none.Matrix, none.Vector));
            case "GRU":
                int[] order = [1, 0, 2];                                                          // our r | z | n from ONNX z | r | h
                var (wih, whh) = (new double[3 * na * nin], new double[3 * na * na]);
                var (bih, bhh) = (new double[3 * na], new double[3 * na]);
                for (var k = 0; k < 3; k++)
                {
                    TensorLayout.Transpose(w[(order[k] * na * nin)..], nin, na, nin, wih.AsSpan(k * na), 3 * na);
                    TensorLayout.Transpose(r[(order[k] * na * na)..], na, na, na, whh.AsSpan(k * na), 3 * na);
                    wb.Slice(order[k] * na, na).CopyTo(bih.AsSpan(k * na));
                    rb.Slice(order[k] * na, na).CopyTo(bhh.AsSpan(k * na));
                }
                return Layer.Gru(new GruParameters(Matrix<double>.Build.Dense(3 * na, nin, wih), Matrix<double>.Build.Dense(3 * na, na, whh),
                    Vector<double>.Build.Dense(bih), Vector<double>.Build.Dense(bhh), none.Matrix, none.Vector));
            default:
                return Layer.Rnn(new RnnParameters(TensorLayout.FromRowMajor(w, na, nin), TensorLayout.FromRowMajor(r, na, na),
                    Vector<double>.Build.Dense(TorchLayouts.Sum(wb, rb)), none.Matrix, none.Vector) { Activation = activation });
        }
    }
}
