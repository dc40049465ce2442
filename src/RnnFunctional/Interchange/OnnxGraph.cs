using System.Buffers.Binary;
using Google.Protobuf;
using MathNet.Numerics.LinearAlgebra;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;
using AttributeType = Onnx.AttributeProto.Types.AttributeType;

namespace RnnFunctional;

/// <summary>
/// One direction of one layer in ONNX's layout for the <c>RNN</c>, <c>LSTM</c> and <c>GRU</c> operators: W
/// (G·n_a×n_in), R (G·n_a×n_a), Wb and Rb (G·n_a each), gate blocks in ONNX's order, and the activation of an RNN.
/// </summary>
internal sealed record OnnxDirection(Matrix<double> W, Matrix<double> R, Vector<double> Wb, Vector<double> Rb, string Activation)
{
    /// <summary>
    /// A direction of a built-in cell in ONNX's layout: the RNN's single block (its bias as Wb, Rb zero); the LSTM's
    /// gates reordered from ours (f, i, c, o, each reading [a; x]) to i | o | f | c split into x and a columns (its
    /// bias as Wb, Rb zero); the GRU's blocks reordered from r | z | n (PyTorch's and ours) to z | r | h.
    /// </summary>
    public static OnnxDirection Of(Layer layer) => layer switch
    {
        CellLayer<RnnParameters, Matrix<double>, RnnCache> r => new(r.Parameters.Wax, r.Parameters.Waa, r.Parameters.Ba,
            Vector<double>.Build.Dense(r.Parameters.HiddenSize), r.Parameters.Activation == RnnFunctional.Activation.Relu ? "Relu" : "Tanh"),
        CellLayer<LstmParameters, LstmState, LstmCache> l => Lstm(l.Parameters),
        CellLayer<GruParameters, Matrix<double>, GruCache> g => Gru(g.Parameters),
        _ => throw new InvalidOperationException($"{layer.GetType().Name} has no ONNX operator"),
    };

    private static OnnxDirection Lstm(LstmParameters p)
    {
        var (na, nx) = (p.HiddenSize, p.InputSize);
        Matrix<double>[] gates = [p.Wi, p.Wo, p.Wf, p.Wc];                                         // ONNX: i | o | f | c
        var (w, r) = (Matrix<double>.Build.Dense(4 * na, nx), Matrix<double>.Build.Dense(4 * na, na));
        for (var k = 0; k < 4; k++)
        {
            r.SetSubMatrix(k * na, 0, gates[k].SubMatrix(0, na, 0, na));                           // our gates read [a; x]
            w.SetSubMatrix(k * na, 0, gates[k].SubMatrix(0, na, na, nx));
        }
        var wb = Vector<double>.Build.DenseOfEnumerable(new[] { p.Bi, p.Bo, p.Bf, p.Bc }.SelectMany(b => b));
        return new(w, r, wb, Vector<double>.Build.Dense(4 * na), "");
    }

    private static OnnxDirection Gru(GruParameters p)
    {
        var na = p.Whh.ColumnCount;
        int[] order = [1, 0, 2];                                                                  // ONNX z | r | h from our r | z | n
        Matrix<double> Rows(Matrix<double> m) => Matrix<double>.Build.DenseOfMatrixArray(new[,] { { Block(m, order[0]) }, { Block(m, order[1]) }, { Block(m, order[2]) } });
        Matrix<double> Block(Matrix<double> m, int k) => m.SubMatrix(k * na, na, 0, m.ColumnCount);
        Vector<double> Entries(Vector<double> v) => Vector<double>.Build.DenseOfEnumerable(order.SelectMany(k => v.SubVector(k * na, na)));
        return new(Rows(p.Wih), Rows(p.Whh), Entries(p.Bih), Entries(p.Bhh), "");
    }
}

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

    /// <summary>A real tensor of the model's element type, row-major, as a constant of the graph.</summary>
    public string Constant(string tensor, long[] dims, IReadOnlyList<double> rowMajor)
    {
        var size = Type == DataType.Float ? sizeof(float) : sizeof(double);
        var bytes = new byte[rowMajor.Count * size];
        for (var i = 0; i < rowMajor.Count; i++)
            if (Type == DataType.Float) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * size), (float)rowMajor[i]);
            else BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(i * size), rowMajor[i]);
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
        var proto = new TensorProto { Name = tensor, DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
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
