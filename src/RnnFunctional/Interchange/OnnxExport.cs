using System.Diagnostics.Contracts;
using Google.Protobuf;
using LanguageExt;
using LanguageExt.Common;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;
using static RnnFunctional.OnnxGraphBuilder;

namespace RnnFunctional;

/// <summary>The element type of an exported ONNX model's weights, inputs and outputs.</summary>
public enum OnnxPrecision
{
    /// <summary><c>tensor(double)</c>: every weight exactly as trained.</summary>
    Double,

    /// <summary><c>tensor(float)</c>: every weight rounded to the nearest float, for runtimes and kernels that have float only.</summary>
    Float,
}

/// <summary>
/// Export of a <see cref="StackParameters"/> to an ONNX model (opset <see cref="Opset"/>) made of standard operators
/// only: one <c>RNN</c>, <c>LSTM</c> or <c>GRU</c> node per layer (a bidirectional layer is one node with
/// <c>direction = "bidirectional"</c>; a peephole LSTM's node has its peephole weights as the input <c>P</c>), <c>Squeeze</c> or <c>Transpose</c> + <c>Reshape</c> between layers,
/// <c>MatMul</c>, <c>Add</c> and <c>Softmax</c> for the read-out, and a mask made of <c>Shape</c>, <c>Gather</c>,
/// <c>Range</c>, <c>Unsqueeze</c>, <c>Cast</c>, <c>Less</c> and <c>Mul</c> that zeroes the predictions past each
/// column's length, as <see cref="Stack.Forward"/> does.
/// </summary>
/// <remarks>
/// The model's inputs are <see cref="Input"/> [seq, batch, n_x], <see cref="Lengths"/> [batch] (int32, each in
/// [1, seq]) and, for each layer k, <see cref="InitialH"/>(k) [D, batch, n_a] (and <see cref="InitialC"/>(k) for an
/// LSTM), D = 2 for a bidirectional layer (the forward direction first) and 1 otherwise; its outputs are
/// <see cref="Predictions"/> [seq, batch, n_y] and, when asked for, each layer's final states
/// <see cref="FinalH"/>(k) (and <see cref="FinalC"/>(k)) [D, batch, n_a]. Column j of <c>Stack.Forward</c>'s
/// x⟨t⟩ is <c>X[t, j, :]</c>, part d of its <c>initial[k]</c> column j is <c>initial_h_lk[d, j, :]</c>, and
/// <c>Predictions[t]</c> column j is <c>Y[t, j, :]</c>.
/// </remarks>
public static class OnnxExport
{
    /// <summary>The opset of the default ONNX domain the models import.</summary>
    public const int Opset = 14;

    /// <summary>The ONNX IR version of the models (7, the version of opsets 13 and 14).</summary>
    public const long IrVersion = 7;

    /// <summary>The input sequence, [seq, batch, n_x].</summary>
    public const string Input = "X";

    /// <summary>Each column's length, [batch] int32, each in [1, seq].</summary>
    public const string Lengths = "sequence_lens";

    /// <summary>The softmax predictions, [seq, batch, n_y]; zero past each column's length.</summary>
    public const string Predictions = "Y";

    /// <summary>The input holding layer k's initial hidden state, [D, batch, n_a].</summary>
    /// <param name="layer">k, from 0.</param>
    [Pure]
    public static string InitialH(int layer) => $"initial_h_l{layer}";

    /// <summary>The input holding LSTM layer k's initial cell state, [D, batch, n_a].</summary>
    /// <param name="layer">k, from 0.</param>
    [Pure]
    public static string InitialC(int layer) => $"initial_c_l{layer}";

    /// <summary>The output holding layer k's final hidden state (each column's, after its own last step), [D, batch, n_a].</summary>
    /// <param name="layer">k, from 0.</param>
    [Pure]
    public static string FinalH(int layer) => $"Y_h_l{layer}";

    /// <summary>The output holding LSTM layer k's final cell state, [D, batch, n_a].</summary>
    /// <param name="layer">k, from 0.</param>
    [Pure]
    public static string FinalC(int layer) => $"Y_c_l{layer}";

    /// <summary>
    /// The ONNX model of a stack, or every reason it has none: a layer of a custom cell, a nested bidirectional
    /// layer, a bidirectional layer whose directions are of different cells or hidden sizes (one ONNX node runs
    /// both), a stack that <see cref="Stack.Validate"/> rejects, a weight beyond float's range for a float export.
    /// </summary>
    /// <param name="p">The stack: layers of <see cref="Layer.Rnn(RnnParameters)"/> (tanh or ReLU),
    /// <see cref="Layer.Lstm(LstmParameters)"/>, <see cref="Layer.PeepholeLstm(PeepholeLstmParameters)"/>, <see cref="Layer.Gru(GruParameters)"/>, or
    /// <see cref="Layer.Bidirectional"/> of two of one cell, and a read-out.</param>
    /// <param name="precision">The element type of the model.</param>
    /// <param name="finalStates">Whether the model also outputs each layer's final states.</param>
    /// <param name="metadata">Key → value pairs for the model's <c>metadata_props</c> (a vocabulary, …); omitted, none.</param>
    [Pure]
    public static Validation<Error, ModelProto> ToModel(StackParameters p, OnnxPrecision precision = OnnxPrecision.Double,
        bool finalStates = true, IEnumerable<KeyValuePair<string, string>>? metadata = null)
    {
        var problems = Problems(p, precision).ToList();
        if (problems.Count > 0) return TorchStateDict.Fail<ModelProto>(problems);
        return Model(Build(p, precision, finalStates), metadata,
            "A recurrent stack exported by RnnFunctional: X [seq, batch, n_x], sequence_lens [batch], initial states per layer → Y [seq, batch, n_y].");
    }

    /// <summary>
    /// The read-out of <see cref="ToModel"/>'s model alone, on an input <c>H</c> [seq, batch, n_top] (the top layer's
    /// outputs) and <see cref="Lengths"/>: the part of the model that ONNX Runtime's CPU provider runs in double.
    /// </summary>
    internal static ModelProto ReadOutModel(StackParameters p, OnnxPrecision precision)
    {
        var b = new OnnxGraphBuilder("rnnfunctional_readout", precision);
        b.Input("H", b.Type, "seq", "batch", p.Wy.ColumnCount);
        b.Input(Lengths, DataType.Int32, "batch");
        ReadOut(b, p, "H");
        return Model(b.Graph, null, "The read-out of a stack exported by RnnFunctional.");
    }

    private static ModelProto Model(GraphProto graph, IEnumerable<KeyValuePair<string, string>>? metadata, string doc)
    {
        var model = new ModelProto { IrVersion = IrVersion, ProducerName = "RnnFunctional", DocString = doc, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (key, value) in metadata ?? [])
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model;
    }

    /// <summary>The bytes of <see cref="ToModel"/>'s model (the protobuf encoding ONNX Runtime loads), or every problem.</summary>
    /// <param name="p">As in <see cref="ToModel"/>.</param>
    /// <param name="precision">As in <see cref="ToModel"/>.</param>
    /// <param name="finalStates">As in <see cref="ToModel"/>.</param>
    /// <param name="metadata">As in <see cref="ToModel"/>.</param>
    [Pure]
    public static Validation<Error, byte[]> Serialize(StackParameters p, OnnxPrecision precision = OnnxPrecision.Double,
        bool finalStates = true, IEnumerable<KeyValuePair<string, string>>? metadata = null) =>
        ToModel(p, precision, finalStates, metadata).Map(model => model.ToByteArray());

    /// <summary>
    /// Writes <see cref="Serialize"/>'s bytes to a file atomically (a temporary file in the same directory, then
    /// renamed: a failed save leaves nothing behind and an existing file unchanged), encoding the model straight
    /// into the file's stream rather than into an array first.
    /// </summary>
    /// <param name="path">Destination file, conventionally <c>*.onnx</c>.</param>
    /// <param name="p">As in <see cref="ToModel"/>.</param>
    /// <param name="precision">As in <see cref="ToModel"/>.</param>
    /// <param name="finalStates">As in <see cref="ToModel"/>.</param>
    /// <param name="metadata">As in <see cref="ToModel"/>.</param>
    public static Validation<Error, Unit> Save(string path, StackParameters p, OnnxPrecision precision = OnnxPrecision.Double,
        bool finalStates = true, IEnumerable<KeyValuePair<string, string>>? metadata = null) =>
        ToModel(p, precision, finalStates, metadata).Bind(model => OutputFile.WriteAtomically(path, stream => model.WriteTo(stream))
            .Match(Validation<Error, Unit>.Success, error => Validation<Error, Unit>.Fail(Prelude.Seq1(error))));

    // ---- the graph ----

    private static GraphProto Build(StackParameters p, OnnxPrecision precision, bool finalStates)
    {
        var b = new OnnxGraphBuilder("rnnfunctional_stack", precision);
        b.Input(Input, b.Type, "seq", "batch", p.InputSize);
        b.Input(Lengths, DataType.Int32, "batch");
        var below = Input;
        for (var k = 0; k < p.Layers.Length; k++)
            below = Recurrent(b, k, p.Layers[k], below, finalStates);
        ReadOut(b, p, below);
        return b.Graph;
    }

    /// <summary>Y = softmax(top·Wyᵀ + By) over the last axis, zero past each column's length.</summary>
    private static void ReadOut(OnnxGraphBuilder b, StackParameters p, string top)
    {
        var wyT = b.Constant("Wy_T", [p.Wy.ColumnCount, p.Wy.RowCount], p.Wy.RowCount * p.Wy.ColumnCount,
            destination => TensorLayout.Storage(p.Wy).CopyTo(destination));                           // Wyᵀ row-major: Wy column-major
        var by = b.Constant("By", [p.By.Count], p.By.Count, destination => TensorLayout.Storage(p.By).CopyTo(destination));
        var logits = b.Node("Add", [b.Node("MatMul", [top, wyT]), by]);
        var probabilities = b.Node("Softmax", [logits], Int("axis", 2));
        b.Node("Mul", [probabilities, Mask(b, top)], [Predictions]);
        b.Output(Predictions, b.Type, "seq", "batch", p.OutputSize);
    }

    /// <summary>
    /// Layer k as one ONNX node reading <paramref name="below"/> [seq, batch, n_in]; its Y [seq, D, batch, n_a]
    /// becomes [seq, batch, D·n_a] with the forward direction's n_a first ([f; r], the output of a bidirectional layer).
    /// </summary>
    private static string Recurrent(OnnxGraphBuilder b, int k, Layer layer, string below, bool finalStates)
    {
        OnnxDirection[] directions = layer is BidirectionalLayer bi ? [OnnxDirection.Of(bi.Forward), OnnxDirection.Of(bi.Reverse)] : [OnnxDirection.Of(layer)];
        var op = OnnxDirection.OperatorOf(directions[0].Layer) ?? throw new InvalidOperationException("checked");
        var peepholes = OnnxDirection.HasPeepholes(directions[0].Layer);
        var (d, na, nin, gates) = (directions.Length, directions[0].HiddenSize, directions[0].InputSize, directions[0].Gates);
        TensorValues Each(int size, Action<OnnxDirection, Span<double>> write) => destination =>
        {
            for (var i = 0; i < d; i++) write(directions[i], destination.Slice(i * size, size));
        };
        var w = b.Constant($"W_l{k}", [d, gates * na, nin], d * gates * na * nin, Each(gates * na * nin, (x, s) => x.WriteW(s)));
        var r = b.Constant($"R_l{k}", [d, gates * na, na], d * gates * na * na, Each(gates * na * na, (x, s) => x.WriteR(s)));
        var bias = b.Constant($"B_l{k}", [d, 2 * gates * na], d * 2 * gates * na, Each(2 * gates * na, (x, s) => x.WriteB(s)));
        string[] p = peepholes ? [b.Constant($"P_l{k}", [d, 3 * na], d * 3 * na, Each(3 * na, (x, s) => x.WriteP(s)))] : [];
        var lstm = op == "LSTM";
        string[] states = lstm ? [InitialH(k), InitialC(k)] : [InitialH(k)];
        foreach (var state in states) b.Input(state, b.Type, d, "batch", na);
        var attributes = new List<AttributeProto> { Int("hidden_size", na), String("direction", d == 2 ? "bidirectional" : "forward") };
        if (op == "RNN") attributes.Add(Strings("activations", [.. directions.Select(x => x.Activation)]));
        if (op == "GRU") attributes.Add(Int("linear_before_reset", 1));
        string[] finals = !finalStates ? [] : lstm ? [FinalH(k), FinalC(k)] : [FinalH(k)];
        foreach (var final in finals) b.Output(final, b.Type, d, "batch", na);
        var y = $"y_l{k}";
        b.Node(op, [below, w, r, bias, Lengths, .. states, .. p], [y, .. finals], [.. attributes]);   // P is input 7, after initial_c
        if (d == 1) return b.Node("Squeeze", [y, b.Int64s($"axes_l{k}", [1], 1)]);
        var steps = b.Node("Transpose", [y], Ints("perm", 0, 2, 1, 3));                       // [seq, batch, 2, n_a]
        return b.Node("Reshape", [steps, b.Int64s($"shape_l{k}", [3], 0, 0, 2 * na)]);
    }

    /// <summary>[seq, batch, 1] of the model's type (seq the first dimension of <paramref name="sequence"/>): 1 where step t &lt; sequence_lens[j], else 0.</summary>
    private static string Mask(OnnxGraphBuilder b, string sequence)
    {
        var seq = b.Node("Gather", [b.Node("Shape", [sequence]), b.Int64s("zero", [], 0)], Int("axis", 0));
        var steps = b.Node("Range", [b.Int64s("start", [], 0), seq, b.Int64s("one", [], 1)]);
        var column = b.Node("Unsqueeze", [steps, b.Int64s("axes_steps", [1], 1)]);               // [seq, 1]
        var lengths = b.Node("Cast", [Lengths], Int("to", (long)DataType.Int64));
        var running = b.Node("Less", [column, lengths]);                                          // [seq, batch]
        var mask = b.Node("Cast", [running], Int("to", (long)b.Type));
        return b.Node("Unsqueeze", [mask, b.Int64s("axes_mask", [1], 2)]);
    }

    // ---- checks ----

    private static string Kind(Layer layer) => OnnxDirection.HasPeepholes(layer) ? "peephole LSTM" : OnnxDirection.OperatorOf(layer) ?? "";

    private static IEnumerable<string> Problems(StackParameters? p, OnnxPrecision precision)
    {
        if (p is null) return ["expected p to be StackParameters but got null"];
        var valid = Stack.Validate(p);
        if (valid.IsFail) return valid.Match(_ => [], errors => errors.Select(e => e.Message).ToList());
        var problems = new List<string>();
        for (var k = 0; k < p.Layers.Length; k++)
        {
            const string supported = "Layer.Rnn, Layer.Lstm, Layer.PeepholeLstm, Layer.Gru, or Layer.Bidirectional of two of one cell, which ONNX's RNN, LSTM and GRU operators run";
            if (p.Layers[k] is BidirectionalLayer bi)
            {
                var (forward, reverse) = (OnnxDirection.OperatorOf(bi.Forward), OnnxDirection.OperatorOf(bi.Reverse));
                if (forward is null) problems.Add($"expected layers[{k}].forward to be a layer of {supported}, but got {TorchLayouts.Describe(bi.Forward)}");
                if (reverse is null) problems.Add($"expected layers[{k}].reverse to be a layer of {supported}, but got {TorchLayouts.Describe(bi.Reverse)}");
                if (forward is not null && reverse is not null && Kind(bi.Forward) != Kind(bi.Reverse))
                    problems.Add($"expected layers[{k}].reverse to be of the cell of layers[{k}].forward ({Kind(bi.Forward)}), since one ONNX node runs both directions, but got {Kind(bi.Reverse)}");
                else if (bi.Forward.OutputSize != bi.Reverse.OutputSize)
                    problems.Add($"expected layers[{k}].reverse to have the hidden size of layers[{k}].forward, n_a = {bi.Forward.OutputSize}, since one ONNX node runs both directions, but got {bi.Reverse.OutputSize}");
            }
            else if (OnnxDirection.OperatorOf(p.Layers[k]) is null)
                problems.Add($"expected layers[{k}] to be {supported}, but got {TorchLayouts.Describe(p.Layers[k])}");
        }
        if (precision == OnnxPrecision.Float)
            problems.AddRange(p.ToLeaves().Select(leaf => (leaf.Name, Index: leaf.Values.Select((v, i) => Math.Abs(v) > float.MaxValue ? i : -1).FirstOrDefault(i => i >= 0, -1)))
                .Where(x => x.Index >= 0)
                .Select(x => $"expected {x.Name} to fit in a float for a float export but entry {x.Index} is beyond ±{float.MaxValue:R}"));
        return problems;
    }
}
