using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Google.Protobuf;
using LanguageExt;
using LanguageExt.Common;
using Onnx;
using Kind = RnnFunctional.Tests.OnnxExportTests.Kind;

namespace RnnFunctional.Tests;

/// <summary>
/// ONNX models of the shape OnnxExport writes read back into stacks: a double export comes back bit for bit, a float
/// export as the weights rounded to float, from bytes, files and typed (not raw) initializers; and what the library's
/// cells cannot compute is refused, naming the node.
/// </summary>
public sealed class OnnxImportTests
{
    private static readonly Kind[] Every = [Kind.RnnTanh, Kind.RnnRelu, Kind.Lstm, Kind.Gru, Kind.PeepholeLstm];

    private static T Value<T>(Validation<Error, T> v) => v.Match(x => x, errors => throw new InvalidOperationException(string.Join("; ", errors.Select(e => e.Message))));

    private static string[] Errors<T>(Validation<Error, T> v) => v.Match(_ => [], errors => errors.Select(e => e.Message).ToArray());

    /// <summary>Every leaf's name, shape and the bits of its values, after <paramref name="round"/>.</summary>
    private static string Bits(StackParameters p, Func<double, double> round) =>
        string.Join("\n", p.ToLeaves().Select(l => $"{l.Name} {l.Rows}×{l.Columns} {string.Join(",", l.Values.Select(v => BitConverter.DoubleToInt64Bits(round(v))))}"));

    private static bool Activations(StackParameters a, StackParameters b) =>
        a.Layers.SelectMany(Directions).Select(ActivationOf).SequenceEqual(b.Layers.SelectMany(Directions).Select(ActivationOf));

    private static IEnumerable<Layer> Directions(Layer l) => l is BidirectionalLayer bi ? [bi.Forward, bi.Reverse] : [l];

    private static string ActivationOf(Layer l) => l is CellLayer<RnnParameters, MathNet.Numerics.LinearAlgebra.Matrix<double>, RnnCache> r
        ? r.Parameters.Activation.ToString()
        : string.Join(",", l.GetType().GetGenericArguments().Select(t => t.Name));                 // the cell's parameters, state and cache types

    [Property(MaxTest = 200)]
    public Property ADoubleExportReadsBackBitForBit() =>
        Prop.ForAll(OnnxExportTests.Cases(Every).ToArbitrary(), c =>
        {
            var p = OnnxExportTests.Instance(c).P;
            var back = Value(OnnxImport.Read(Value(OnnxExport.Serialize(p))));
            return (Bits(back, v => v) == Bits(p, v => v)).Label("leaves bit for bit")
                .And(Activations(back, p).Label("each direction's cell and activation"))
                .And((back.Layers.Select(l => l is BidirectionalLayer).SequenceEqual(p.Layers.Select(l => l is BidirectionalLayer))).Label("directions"));
        });

    [Property(MaxTest = 100)]
    public Property AFloatExportReadsBackAsTheWeightsRoundedToFloat() =>
        Prop.ForAll(OnnxExportTests.Cases(Every).ToArbitrary(), c =>
        {
            var p = OnnxExportTests.Instance(c).P;
            var back = Value(OnnxImport.Read(Value(OnnxExport.Serialize(p, OnnxPrecision.Float))));
            return Bits(back, v => v) == Bits(p, v => (float)v);
        });

    [Fact]
    public void AFileAndTypedInitializersReadAsRawOnes()
    {
        var p = OnnxExportTests.Instance(new OnnxExportTests.OnnxCase([(Kind.Lstm, Kind.Lstm, true, 3), (Kind.Gru, Kind.Gru, false, 2)], 2, 3, 1, [1], 4)).P;
        var model = Value(OnnxExport.ToModel(p));
        foreach (var t in model.Graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Double))
        {
            var raw = t.RawData.ToByteArray();
            t.DoubleData.AddRange(Enumerable.Range(0, raw.Length / 8).Select(i => BinaryPrimitives.ReadDoubleLittleEndian(raw.AsSpan(8 * i))));
            t.RawData = ByteString.Empty;
        }
        Assert.Equal(Bits(p, v => v), Bits(Value(OnnxImport.ToStack(model)), v => v));
        var directory = Directory.CreateTempSubdirectory("onnx-import-");
        try
        {
            var path = Path.Combine(directory.FullName, "model.onnx");
            Value(OnnxExport.Save(path, p));
            Assert.Equal(Bits(p, v => v), Bits(Value(OnnxImport.Load(path)), v => v));
            Assert.Equal([$"ONNX file {path}.missing does not exist"], Errors(OnnxImport.Load(path + ".missing")));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static ModelProto Model(Kind kind, bool bidirectional = false) =>
        Value(OnnxExport.ToModel(OnnxExportTests.Instance(new OnnxExportTests.OnnxCase([(kind, kind, bidirectional, 2)], 2, 3, 1, [1], 9)).P));

    private static NodeProto Node(ModelProto m, string op) => m.Graph.Node.Single(n => n.OpType == op);

    [Fact]
    public void WhatTheCellsCannotComputeIsRefusedNamingTheNode()
    {
        var gru = Model(Kind.Gru);
        Node(gru, "GRU").Attribute.Single(a => a.Name == "linear_before_reset").I = 0;
        Assert.Equal(["node GRU_0 (GRU) has linear_before_reset = 0: RnnFunctional's GRU (PyTorch's) is linear_before_reset = 1"], Errors(OnnxImport.ToStack(gru)));

        var lstm = Model(Kind.Lstm);
        var node = Node(lstm, "LSTM");
        node.Attribute.Single(a => a.Name == "direction").S = ByteString.CopyFromUtf8("reverse");
        node.Attribute.Add(new AttributeProto { Name = "clip", Type = AttributeProto.Types.AttributeType.Float, F = 3 });
        Assert.Equal([
            "node LSTM_0 (LSTM) has direction = \"reverse\": only forward and bidirectional layers are read",
            "node LSTM_0 (LSTM) has the attribute clip, which RnnFunctional's cells do not have"], Errors(OnnxImport.ToStack(lstm)));

        var rnn = Model(Kind.RnnTanh, bidirectional: true);
        Node(rnn, "RNN").Attribute.Single(a => a.Name == "activations").Strings[1] = ByteString.CopyFromUtf8("Sigmoid");
        Assert.Equal(["node RNN_0 (RNN) has the activations [Tanh, Sigmoid]: only Tanh and Relu are read"], Errors(OnnxImport.ToStack(rnn)));
    }

    [Fact]
    public void AnLstmNodeWithPIsAPeepholeLayerAndWithoutItAPlainOne()
    {
        var peephole = Model(Kind.PeepholeLstm, bidirectional: true);
        var layer = Assert.IsType<BidirectionalLayer>(Value(OnnxImport.ToStack(peephole)).Layers.Single());
        var forward = Assert.IsType<CellLayer<PeepholeLstmParameters, LstmState, PeepholeLstmCache>>(layer.Forward).Parameters;
        Assert.IsType<CellLayer<PeepholeLstmParameters, LstmState, PeepholeLstmCache>>(layer.Reverse);
        var p = peephole.Graph.Initializer.Single(t => t.Name == "P_l0");
        double P(int i) => BinaryPrimitives.ReadDoubleLittleEndian(p.RawData.Span[(8 * i)..]);
        Assert.Equal([P(0), P(1)], forward.Pi);                                                  // [P_i; P_o; P_f], n_a = 2 each
        Assert.Equal([P(2), P(3)], forward.Po);
        Assert.Equal([P(4), P(5)], forward.Pf);
        Assert.IsType<CellLayer<LstmParameters, LstmState, LstmCache>>(Value(OnnxImport.ToStack(Model(Kind.Lstm))).Layers.Single());

        var empty = Model(Kind.Lstm);
        Node(empty, "LSTM").Input.Add("");                                                       // an empty name: P omitted
        Assert.IsType<CellLayer<LstmParameters, LstmState, LstmCache>>(Value(OnnxImport.ToStack(empty)).Layers.Single());

        var shape = Model(Kind.PeepholeLstm);
        shape.Graph.Initializer.Single(t => t.Name == "P_l0").Dims[1] = 5;
        var computed = Model(Kind.PeepholeLstm);
        computed.Graph.Initializer.Remove(computed.Graph.Initializer.Single(t => t.Name == "P_l0"));
        Assert.Equal(["expected P of node LSTM_0 (LSTM) to be [1, 6] but it is [1, 5]"], Errors(OnnxImport.ToStack(shape)));
        Assert.Equal(["expected P of node LSTM_0 (LSTM) (P_l0) to be an initializer but it is computed by the graph"], Errors(OnnxImport.ToStack(computed)));
    }

    [Fact]
    public void BrokenGraphsAndBytesAreReported()
    {
        var nan = Model(Kind.Gru);
        var w = nan.Graph.Initializer.Single(t => t.Name == "W_l0");
        var bytes = w.RawData.ToByteArray();
        BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(8), double.NaN);
        w.RawData = ByteString.CopyFrom(bytes);
        Assert.Equal(["expected W of node GRU_0 (GRU) to be finite but entry 1 is NaN"], Errors(OnnxImport.ToStack(nan)));

        var noReadOut = Model(Kind.Lstm);
        noReadOut.Graph.Node.Remove(Node(noReadOut, "MatMul"));
        Assert.Equal(["expected a read-out MatMul by an initializer [n_top, n_y] but the graph has none"], Errors(OnnxImport.ToStack(noReadOut)));

        var shapes = Model(Kind.RnnRelu);
        shapes.Graph.Initializer.Single(t => t.Name == "R_l0").Dims[2] = 3;
        Assert.Equal(["expected R of node RNN_0 (RNN) to be [1, 2, 2] but it is [1, 2, 3]"], Errors(OnnxImport.ToStack(shapes)));

        var computed = Model(Kind.Gru);
        computed.Graph.Initializer.Remove(computed.Graph.Initializer.Single(t => t.Name == "B_l0"));
        Assert.Equal(["expected B of node GRU_0 (GRU) (B_l0) to be an initializer but it is computed by the graph"], Errors(OnnxImport.ToStack(computed)));

        var none = Model(Kind.Gru);
        none.Graph.Node.Remove(Node(none, "GRU"));
        Assert.Contains("expected RNN, LSTM or GRU nodes but the graph has none", Errors(OnnxImport.ToStack(none)));

        var serialized = Model(Kind.Lstm).ToByteArray();
        Assert.StartsWith("not an ONNX model: ", Assert.Single(Errors(OnnxImport.Read(serialized[..(serialized.Length / 2)]))));
    }

    [Fact]
    public void LayersThatDoNotFeedEachOtherAreReported()
    {
        var p = OnnxExportTests.Instance(new OnnxExportTests.OnnxCase([(Kind.Gru, Kind.Gru, false, 2), (Kind.Gru, Kind.Gru, false, 3)], 2, 3, 1, [1], 5)).P;
        var model = Value(OnnxExport.ToModel(p));
        var nodes = model.Graph.Node.Where(n => n.OpType == "GRU").ToArray();
        (nodes[0].Name, nodes[1].Name) = (nodes[1].Name, nodes[0].Name);
        var (first, second) = (model.Graph.Node.IndexOf(nodes[0]), model.Graph.Node.IndexOf(nodes[1]));
        (model.Graph.Node[first], model.Graph.Node[second]) = (nodes[1], nodes[0]);                 // the upper layer first
        Assert.Equal([$"expected node {nodes[0].Name} (GRU) to read the 3 outputs of the layer below but its W has 2 columns"], Errors(OnnxImport.ToStack(model)));
    }
}
