using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;
using MathNet.Numerics.LinearAlgebra;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;
using AttributeType = Onnx.AttributeProto.Types.AttributeType;

namespace RnnFunctional;

/// <summary>
/// One direction of one layer of a built-in cell in ONNX's layout for the <c>RNN</c>, <c>LSTM</c> and <c>GRU</c>
/// operators: W (G·n_a×n_in), R (G·n_a×n_a) and B = [Wb; Rb] (2·G·n_a), gate blocks in ONNX's order, each written
/// straight from the parameters' storage into the initializer's values; the peephole weights P (3·n_a) of a
/// peephole LSTM; and the activation of an RNN.
/// </summary>
internal sealed record OnnxDirection(Layer Layer, int Gates, int HiddenSize, int InputSize, string Activation)
{
    /// <summary>
    /// The ONNX operator that runs a layer (<c>RNN</c>, <c>LSTM</c> or <c>GRU</c>), or null for a layer of another
    /// cell: the library's own RNN, LSTM, GRU and peephole LSTM (the <c>LSTM</c> operator with its input <c>P</c>).
    /// </summary>
    public static string? OperatorOf(Layer layer) => layer switch
    {
        CellLayer<PeepholeLstmParameters, LstmState, PeepholeLstmCache> p when ReferenceEquals(p.Cell, PeepholeLstm.Cell) => "LSTM",
        _ => TorchLayouts.CellOf(layer) switch
        {
            TorchCell.Lstm when layer is CellLayer<LstmParameters, LstmState, LstmCache> => "LSTM",
            TorchCell.Gru => "GRU",
            TorchCell.RnnTanh or TorchCell.RnnRelu => "RNN",
            _ => null,
        },
    };

    /// <summary>Whether a layer is a peephole LSTM, whose ONNX node has the input <c>P</c>.</summary>
    public static bool HasPeepholes(Layer layer) => layer is CellLayer<PeepholeLstmParameters, LstmState, PeepholeLstmCache>;

    /// <summary>
    /// A direction of a built-in cell: the RNN's single block (its bias as Wb, Rb zero); the LSTM's and the peephole
    /// LSTM's gates reordered from ours (f, i, c, o, each reading [a; x]) to i | o | f | c split into x and a columns
    /// (its bias as Wb, Rb zero); the GRU's blocks reordered from r | z | n (PyTorch's and ours) to z | r | h.
    /// </summary>
    public static OnnxDirection Of(Layer layer) => layer switch
    {
        CellLayer<RnnParameters, Matrix<double>, RnnCache> r => new(layer, 1, r.Parameters.HiddenSize, r.Parameters.Wax.ColumnCount,
            r.Parameters.Activation == RnnFunctional.Activation.Relu ? "Relu" : "Tanh"),
        CellLayer<LstmParameters, LstmState, LstmCache> l => new(layer, 4, l.Parameters.HiddenSize, l.Parameters.InputSize, ""),
        CellLayer<PeepholeLstmParameters, LstmState, PeepholeLstmCache> p => new(layer, 4, p.Parameters.HiddenSize, p.Parameters.InputSize, ""),
        CellLayer<GruParameters, Matrix<double>, GruCache> g => new(layer, 3, g.Parameters.Whh.ColumnCount, g.Parameters.Wih.ColumnCount, ""),
        _ => throw new InvalidOperationException($"{layer.GetType().Name} has no ONNX operator"),
    };

    /// <summary>The LSTM gates of this direction (a plain LSTM's, or a peephole LSTM's without its peepholes), or null for another cell.</summary>
    private LstmParameters? LstmGates => Layer switch
    {
        CellLayer<LstmParameters, LstmState, LstmCache> l => l.Parameters,
        CellLayer<PeepholeLstmParameters, LstmState, PeepholeLstmCache> p => p.Parameters.WithoutPeepholes,
        _ => null,
    };

    /// <summary>ONNX's z | r | h from our r | z | n.</summary>
    private static readonly int[] GruOrder = [1, 0, 2];

    /// <summary>W, G·n_a×n_in row-major, into <paramref name="destination"/>.</summary>
    public void WriteW(Span<double> destination) => Write(destination, input: true);

    /// <summary>R, G·n_a×n_a row-major, into <paramref name="destination"/>.</summary>
    public void WriteR(Span<double> destination) => Write(destination, input: false);

    /// <summary>
    /// P = [P_i; P_o; P_f], 3·n_a, into <paramref name="destination"/>: the ONNX order of the peepholes, ours being
    /// Pi and Pf on c⟨t−1⟩ and Po on c⟨t⟩, as the operator's equations read them.
    /// </summary>
    public void WriteP(Span<double> destination)
    {
        var p = ((CellLayer<PeepholeLstmParameters, LstmState, PeepholeLstmCache>)Layer).Parameters;
        Vector<double>[] peepholes = [p.Pi, p.Po, p.Pf];                                                  // ONNX: i | o | f
        for (var g = 0; g < 3; g++) TensorLayout.Storage(peepholes[g]).CopyTo(destination[(g * HiddenSize)..]);
    }

    private void Write(Span<double> destination, bool input)
    {
        var (na, columns) = (HiddenSize, input ? InputSize : HiddenSize);
        if (LstmGates is { } lstm)
        {
            Matrix<double>[] gates = [lstm.Wi, lstm.Wo, lstm.Wf, lstm.Wc];                                // ONNX: i | o | f | c
            for (var g = 0; g < 4; g++)                                                                    // our gates read [a; x]
                TensorLayout.Transpose(TensorLayout.Storage(gates[g]).AsSpan(input ? na * na : 0), na, columns, na, destination[(g * na * columns)..], columns);
            return;
        }
        switch (Layer)
        {
            case CellLayer<RnnParameters, Matrix<double>, RnnCache> r:
                RowMajor(input ? r.Parameters.Wax : r.Parameters.Waa, destination);
                break;
            case CellLayer<GruParameters, Matrix<double>, GruCache> gru:
                var storage = TensorLayout.Storage(input ? gru.Parameters.Wih : gru.Parameters.Whh);             // column-major 3n_a×n_in
                for (var g = 0; g < 3; g++)
                    TensorLayout.Transpose(storage.AsSpan(GruOrder[g] * na), 3 * na, columns, na, destination[(g * na * columns)..], columns);
                break;
        }
    }

    /// <summary>B = [Wb; Rb], 2·G·n_a, into <paramref name="destination"/> (zeroed first).</summary>
    public void WriteB(Span<double> destination)
    {
        var na = HiddenSize;
        destination.Clear();
        if (LstmGates is { } lstm)
        {
            Vector<double>[] biases = [lstm.Bi, lstm.Bo, lstm.Bf, lstm.Bc];
            for (var g = 0; g < 4; g++) TensorLayout.Storage(biases[g]).CopyTo(destination[(g * na)..]);
            return;
        }
        switch (Layer)
        {
            case CellLayer<RnnParameters, Matrix<double>, RnnCache> r:
                TensorLayout.Storage(r.Parameters.Ba).CopyTo(destination);
                break;
            case CellLayer<GruParameters, Matrix<double>, GruCache> gru:
                var (ih, hh) = (TensorLayout.Storage(gru.Parameters.Bih), TensorLayout.Storage(gru.Parameters.Bhh));
                for (var g = 0; g < 3; g++)
                {
                    ih.AsSpan(GruOrder[g] * na, na).CopyTo(destination[(g * na)..]);
                    hh.AsSpan(GruOrder[g] * na, na).CopyTo(destination[((3 + g) * na)..]);
                }
                break;
        }
    }

    private static void RowMajor(Matrix<double> m, Span<double> destination) =>
        TensorLayout.Transpose(TensorLayout.Storage(m), m.RowCount, m.ColumnCount, m.RowCount, destination, m.ColumnCount);
}

/// <summary>Writes the row-major values of a tensor into the span it is given.</summary>
internal delegate void TensorValues(Span<double> destination);

/// <summary>
/// The nodes, initializers, inputs and outputs of one ONNX graph as it is built. A builder lives inside one export
/// (<see cref="OnnxExport.ToModel"/>), which is pure: nothing else sees it.
/// </summary>
internal sealed class OnnxGraphBuilder(string name, OnnxPrecision precision)
{
    private int nodes;

    public GraphProto Graph { get; } = new() { Name = name };

    /// <summary>The element type of the model's values: double or float.</summary>
    public DataType Type { get; } = precision == OnnxPrecision.Float ? DataType.Float : DataType.Double;

    /// <summary>
    /// A real tensor of the model's element type as a constant of the graph, its <paramref name="count"/> row-major
    /// values written by <paramref name="values"/>: straight into the initializer's bytes in double (which the
    /// initializer then holds without a copy), through one temporary array of doubles in float.
    /// </summary>
    public string Constant(string tensor, long[] dims, int count, TensorValues values)
    {
        byte[] bytes;
        if (Type == DataType.Double)
        {
            bytes = new byte[(long)count * sizeof(double)];
            var doubles = MemoryMarshal.Cast<byte, double>(bytes.AsSpan());
            values(doubles);
            if (!BitConverter.IsLittleEndian) BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<double, long>(doubles), MemoryMarshal.Cast<double, long>(doubles));
        }
        else
        {
            var doubles = new double[count];
            values(doubles);
            bytes = new byte[(long)count * sizeof(float)];
            for (var i = 0; i < count; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), (float)doubles[i]);
        }
        return Initializer(tensor, Type, dims, bytes);
    }

    /// <summary>An int64 tensor (a scalar when <paramref name="dims"/> is empty) as a constant of the graph.</summary>
    public string Int64s(string tensor, long[] dims, params long[] values)
    {
        var bytes = new byte[values.Length * sizeof(long)];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * sizeof(long)), values[i]);
        return Initializer(tensor, DataType.Int64, dims, bytes);
    }

    private string Initializer(string tensor, DataType type, long[] dims, byte[] bytes)
    {
        var proto = new TensorProto { Name = tensor, DataType = (int)type, RawData = UnsafeByteOperations.UnsafeWrap(bytes) };   // the builder's own array, not written again
        proto.Dims.AddRange(dims);
        Graph.Initializer.Add(proto);
        return tensor;
    }

    /// <summary>A node of the default domain; its outputs are named <paramref name="outputs"/> (an empty name: not produced).</summary>
    public string[] Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = $"{op}_{nodes++}" };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return outputs;
    }

    /// <summary>A node with one output, named after the node.</summary>
    public string Node(string op, string[] inputs, params AttributeProto[] attributes) =>
        Node(op, inputs, [$"{op.ToLowerInvariant()}_{nodes}"], attributes)[0];

    /// <summary>A graph input of the given element type and dimensions (a string: a symbolic dimension).</summary>
    public void Input(string tensor, DataType type, params object[] dims) => Graph.Input.Add(Value(tensor, type, dims));

    /// <summary>A graph output of the given element type and dimensions.</summary>
    public void Output(string tensor, DataType type, params object[] dims) => Graph.Output.Add(Value(tensor, type, dims));

    private static ValueInfoProto Value(string tensor, DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
            shape.Dim.Add(dim is string symbol
                ? new TensorShapeProto.Types.Dimension { DimParam = symbol }
                : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(dim, System.Globalization.CultureInfo.InvariantCulture) });
        return new ValueInfoProto { Name = tensor, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    public static AttributeProto Int(string attribute, long value) => new() { Name = attribute, Type = AttributeType.Int, I = value };

    public static AttributeProto Ints(string attribute, params long[] values)
    {
        var proto = new AttributeProto { Name = attribute, Type = AttributeType.Ints };
        proto.Ints.AddRange(values);
        return proto;
    }

    public static AttributeProto String(string attribute, string value) =>
        new() { Name = attribute, Type = AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto Strings(string attribute, params string[] values)
    {
        var proto = new AttributeProto { Name = attribute, Type = AttributeType.Strings };
        proto.Strings.AddRange(values.Select(ByteString.CopyFromUtf8));
        return proto;
    }
}
