using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Runtime.InteropServices;
using LanguageExt;
using LanguageExt.Common;
using static LanguageExt.Prelude;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>The PyTorch recurrent modules whose <c>state_dict</c> RnnFunctional reads and writes.</summary>
public enum TorchCell
{
    /// <summary><c>nn.RNN(nonlinearity="tanh")</c>: one gate, a <see cref="RnnParameters"/> layer with <see cref="Activation.Tanh"/>.</summary>
    RnnTanh,

    /// <summary><c>nn.RNN(nonlinearity="relu")</c>: one gate, a <see cref="RnnParameters"/> layer with <see cref="Activation.Relu"/>.</summary>
    RnnRelu,

    /// <summary>
    /// <c>nn.LSTM</c>: four gates stacked i | f | g | o, a <see cref="LstmParameters"/> layer; with <c>proj_size</c>
    /// (tensors <c>weight_hr_l{k}</c>), a <see cref="ProjectedLstmParameters"/> layer.
    /// </summary>
    Lstm,

    /// <summary><c>nn.GRU</c>: three gates stacked r | z | n, a <see cref="GruParameters"/> layer.</summary>
    Gru,
}

/// <summary>Where a model's tensors are in a PyTorch <c>state_dict</c>.</summary>
/// <param name="Cell">The recurrent module.</param>
/// <param name="Prefix">
/// The recurrent module's attribute path: <c>"rnn"</c> for names <c>rnn.weight_ih_l0</c>, …; empty for the module's own
/// <c>state_dict()</c> (names <c>weight_ih_l0</c>, …).
/// </param>
/// <param name="ReadOut">The <c>nn.Linear</c> read-out's attribute path: <c>"fc"</c> for <c>fc.weight</c> and <c>fc.bias</c>.</param>
public sealed record TorchLayout(TorchCell Cell, string Prefix = "", string ReadOut = "fc");

/// <summary>
/// The constructor arguments of the PyTorch module that a set of names implies (or that a stack exports to):
/// <c>nn.LSTM(InputSize, HiddenSize, num_layers=NumLayers, bidirectional=Bidirectional, bias=Bias, proj_size=ProjSize)</c>.
/// </summary>
/// <param name="Cell">The module.</param>
/// <param name="InputSize">input_size, n_x.</param>
/// <param name="HiddenSize">hidden_size, n_a of every layer and direction.</param>
/// <param name="NumLayers">num_layers.</param>
/// <param name="Bidirectional">bidirectional.</param>
/// <param name="Bias">bias (false: no bias_ih / bias_hh tensors).</param>
public sealed record TorchModule(TorchCell Cell, int InputSize, int HiddenSize, int NumLayers, bool Bidirectional, bool Bias)
{
    /// <summary>
    /// proj_size of an <c>nn.LSTM</c>, n_p in [1, n_a): each layer's output h⟨t⟩ = W_hr·(o⟨t⟩ ⊙ tanh c⟨t⟩) has n_p
    /// rows (layers of <see cref="ProjectedLstmParameters"/>); 0, the default, for no projection.
    /// </summary>
    public int ProjSize { get; init; }

    /// <summary>The size of each direction's output h⟨t⟩: <see cref="ProjSize"/> with a projection, else <see cref="HiddenSize"/>.</summary>
    public int OutputSize => ProjSize > 0 ? ProjSize : HiddenSize;

    /// <summary>The module as Python source, e.g. <c>nn.LSTM(3, 4, num_layers=2, bidirectional=True)</c>.</summary>
    public override string ToString()
    {
        var name = Cell switch { TorchCell.Lstm => "nn.LSTM", TorchCell.Gru => "nn.GRU", _ => "nn.RNN" };
        var options = new List<string> { $"{InputSize}", $"{HiddenSize}" };
        if (NumLayers != 1) options.Add($"num_layers={NumLayers}");
        if (Cell == TorchCell.RnnRelu) options.Add("nonlinearity=\"relu\"");
        if (Bidirectional) options.Add("bidirectional=True");
        if (!Bias) options.Add("bias=False");
        if (ProjSize > 0) options.Add($"proj_size={ProjSize}");
        return $"{name}({string.Join(", ", options)})";
    }
}

/// <summary>
/// PyTorch <c>state_dict</c> names and layouts for <c>nn.RNN</c>, <c>nn.LSTM</c> (with or without <c>proj_size</c>)
/// and <c>nn.GRU</c> (any <c>num_layers</c>, <c>bidirectional</c>, <c>bias</c>) and an <c>nn.Linear</c> read-out, to and from
/// <see cref="StackParameters"/>: layer k's direction d has <c>weight_ih_l{k}{s}</c> (g·n_a×n_in),
/// <c>weight_hh_l{k}{s}</c> (g·n_a×n_a), <c>bias_ih_l{k}{s}</c> and <c>bias_hh_l{k}{s}</c> (g·n_a), s being empty for
/// the forward direction and <c>_reverse</c> for the reverse one, g = 1, 4 (i | f | g | o) or 3 (r | z | n), n_in = n_x
/// for layer 0 and (1 or 2)·n_a above. An LSTM with a projection (<see cref="Layer.ProjectedLstm(ProjectedLstmParameters)"/>)
/// also has <c>weight_hr_l{k}{s}</c> (n_p×n_a), its <c>weight_hh_l{k}{s}</c> is 4n_a×n_p and the layers above and the
/// read-out read (1 or 2)·n_p. Tensors are <see cref="SafetensorsTensor"/> values, so a
/// <see cref="SafetensorsFile"/>'s <see cref="SafetensorsFile.Tensors"/> is read as it is.
/// </summary>
/// <remarks>
/// PyTorch's two biases add up to one: RnnFunctional's vanilla-RNN bias Ba and LSTM gate biases are read as
/// bias_ih + bias_hh and written as bias_ih = b, bias_hh = 0 (a GRU keeps both, its b_hn being inside the reset gate's
/// product, and so does the projected LSTM, whose parameters are in PyTorch's layout). Reading then writing, or writing then reading, gives the same values bit for bit.
/// </remarks>
public static class TorchStateDict
{
    /// <summary>
    /// A stack read from a <c>state_dict</c> of the recurrent module and its read-out. The number of layers, the
    /// directions, the presence of biases and an LSTM's projection are those the names under <paramref name="layout"/>'s
    /// prefix imply (the highest l{k}, any <c>_reverse</c>, any <c>bias_</c>, any <c>weight_hr_</c>); every name missing for that module, every tensor of
    /// another shape, every non-finite value and every name left over are reported together.
    /// </summary>
    /// <param name="tensors">Name → tensor, e.g. <see cref="SafetensorsFile.Tensors"/>.</param>
    /// <param name="layout">The module, its prefix and the read-out's prefix.</param>
    [Pure]
    public static Validation<Error, StackParameters> ToStack(IReadOnlyDictionary<string, SafetensorsTensor> tensors, TorchLayout layout) =>
        layout is null
            ? Fail<StackParameters>(["expected layout to be a TorchLayout but got null"])
            : TorchReader.Read(tensors, layout.Cell, layout.Prefix, layout.ReadOut);

    /// <summary>
    /// A stack read from a safetensors file of a PyTorch <c>state_dict</c> (<c>safetensors.torch.save_file(model.state_dict(), path)</c>):
    /// <see cref="Safetensors.Load"/> then <see cref="ToStack"/>, every problem of either reported.
    /// </summary>
    /// <param name="path">The safetensors file.</param>
    /// <param name="layout">The module, its prefix and the read-out's prefix.</param>
    [Pure]
    public static Validation<Error, StackParameters> Load(string path, TorchLayout layout) =>
        Safetensors.Load(path).Match(file => ToStack(file.Tensors, layout), error => Validation<Error, StackParameters>.Fail(Seq1(error)));

    /// <summary>
    /// Writes a stack's <c>state_dict</c> (<see cref="FromStack"/>) to a safetensors file, atomically
    /// (<see cref="Safetensors.Save"/>): PyTorch reads it with <c>model.load_state_dict(safetensors.torch.load_file(path))</c>.
    /// </summary>
    /// <param name="path">Destination file.</param>
    /// <param name="p">The stack.</param>
    /// <param name="layout">The module, its prefix and the read-out's prefix.</param>
    /// <param name="bias">Whether the module has biases.</param>
    /// <param name="dtype">F32 for a float PyTorch model, F64 (exact) for a <c>model.double()</c>.</param>
    /// <param name="metadata">The file's <c>__metadata__</c>; omitted, none.</param>
    public static Validation<Error, Unit> Save(string path, StackParameters p, TorchLayout layout, bool bias = true,
        SafetensorsDType dtype = SafetensorsDType.F64, IEnumerable<KeyValuePair<string, string>>? metadata = null) =>
        FromStack(p, layout, bias, dtype).Bind(tensors => Safetensors.Save(path, SafetensorsFile.Of(tensors, metadata))
            .Match(Validation<Error, Unit>.Success, error => Validation<Error, Unit>.Fail(Seq1(error))));

    /// <summary>
    /// The layers alone read from the <c>state_dict</c> of a recurrent module (<c>lstm.state_dict()</c>, with no
    /// read-out), as <see cref="ToStack"/> reads them; every name that is not the module's is reported as left over.
    /// </summary>
    /// <param name="tensors">Name → tensor.</param>
    /// <param name="cell">The module.</param>
    /// <param name="prefix">The module's attribute path, empty for its own state_dict.</param>
    [Pure]
    public static Validation<Error, ImmutableArray<Layer>> ToLayers(IReadOnlyDictionary<string, SafetensorsTensor> tensors, TorchCell cell, string prefix = "") =>
        TorchReader.Read(tensors, cell, prefix, readOut: null).Map(p => p.Layers);

    /// <summary>The module that the names under a prefix imply, with its sizes, or every problem with the names.</summary>
    /// <param name="tensors">Name → tensor.</param>
    /// <param name="cell">The module.</param>
    /// <param name="prefix">The module's attribute path, empty for its own state_dict.</param>
    [Pure]
    public static Validation<Error, TorchModule> ModuleOf(IReadOnlyDictionary<string, SafetensorsTensor> tensors, TorchCell cell, string prefix = "") =>
        TorchReader.Describe(tensors, cell, prefix);

    /// <summary>
    /// The <c>state_dict</c> of a stack: the recurrent module's tensors under <paramref name="layout"/>'s prefix and
    /// the read-out's <c>weight</c> (n_y×n_top) and <c>bias</c> under its read-out prefix. The stack must be one
    /// PyTorch module: every layer of <paramref name="layout"/>'s cell (the library's own), one hidden size, every
    /// layer bidirectional or none, for an LSTM every layer projected to one n_p &lt; n_a or none; with <paramref name="bias"/> false every bias must be zero.
    /// </summary>
    /// <param name="p">The stack.</param>
    /// <param name="layout">The module, its prefix and the read-out's prefix.</param>
    /// <param name="bias">Whether the module has biases (PyTorch's bias argument).</param>
    /// <param name="dtype">The element type the tensors are to be stored as (F64 keeps every value exactly).</param>
    [Pure]
    public static Validation<Error, ImmutableSortedDictionary<string, SafetensorsTensor>> FromStack(StackParameters p, TorchLayout layout,
        bool bias = true, SafetensorsDType dtype = SafetensorsDType.F64)
    {
        if (p is null) return Fail<ImmutableSortedDictionary<string, SafetensorsTensor>>(["expected p to be StackParameters but got null"]);
        if (layout is null) return Fail<ImmutableSortedDictionary<string, SafetensorsTensor>>(["expected layout to be a TorchLayout but got null"]);
        var stack = Stack.Validate(p);
        if (stack.IsFail) return stack.Map(_ => ImmutableSortedDictionary<string, SafetensorsTensor>.Empty);
        return FromLayers(p.Layers, layout.Cell, layout.Prefix, bias, dtype).Map(tensors => tensors
            .Add(Name(layout.ReadOut, "weight"), SafetensorsTensor.Of(p.Wy, dtype))
            .Add(Name(layout.ReadOut, "bias"), SafetensorsTensor.Of(p.By, dtype)));
    }

    /// <summary>The <c>state_dict</c> of the layers alone, as <see cref="FromStack"/> writes them.</summary>
    /// <param name="layers">L ≥ 1 layers forming one PyTorch module.</param>
    /// <param name="cell">The module.</param>
    /// <param name="prefix">The module's attribute path, empty for its own state_dict.</param>
    /// <param name="bias">Whether the module has biases.</param>
    /// <param name="dtype">The element type the tensors are to be stored as.</param>
    [Pure]
    public static Validation<Error, ImmutableSortedDictionary<string, SafetensorsTensor>> FromLayers(ImmutableArray<Layer> layers, TorchCell cell,
        string prefix = "", bool bias = true, SafetensorsDType dtype = SafetensorsDType.F64) =>
        ModuleOf(layers, cell, bias).Map(module =>
        {
            var tensors = ImmutableSortedDictionary.CreateBuilder<string, SafetensorsTensor>(StringComparer.Ordinal);
            for (var k = 0; k < layers.Length; k++)
                foreach (var (direction, suffix) in Directions(layers[k]))
                    foreach (var (name, tensor) in TorchLayouts.ToTorch(direction, bias))
                        tensors.Add(Name(prefix ?? "", $"{name}_l{k}{suffix}"), tensor.As(dtype));
            return tensors.ToImmutable();
        });

    /// <summary>
    /// The PyTorch module the layers export to, or every reason they do not make one: a layer of another cell (or a
    /// custom cell), hidden sizes that differ, directions that differ, projections that differ or are not smaller than
    /// the hidden size (PyTorch's proj_size &lt; hidden_size), non-zero biases when <paramref name="bias"/> is false.
    /// </summary>
    /// <param name="layers">L ≥ 1 layers, each taking the outputs of the one below.</param>
    /// <param name="cell">The module.</param>
    /// <param name="bias">Whether the module has biases.</param>
    [Pure]
    public static Validation<Error, TorchModule> ModuleOf(ImmutableArray<Layer> layers, TorchCell cell, bool bias = true)
    {
        var chained = Stack.CheckLayers(nameof(layers), nameof(layers), layers);
        if (chained.Length > 0) return Fail<TorchModule>(chained.Select(c => c.Message));
        var bidirectional = layers[0] is BidirectionalLayer;
        var na = TorchLayouts.HiddenSizeOf(Directions(layers[0])[0].Layer);
        var projection = TorchLayouts.ProjectionOf(Directions(layers[0])[0].Layer);
        var problems = new List<string>();
        if (cell == TorchCell.Lstm && projection >= na)
            problems.Add($"expected layers[0]'s projection n_p = {projection} to be smaller than its hidden size n_a = {na}, as PyTorch's proj_size must be");
        for (var k = 0; k < layers.Length; k++)
        {
            if (layers[k] is BidirectionalLayer != bidirectional)
                problems.Add($"expected layers[{k}] to be {(bidirectional ? "bidirectional" : "one-directional")} as layers[0] is, since a PyTorch module has one direction setting");
            foreach (var (direction, suffix) in Directions(layers[k]))
            {
                var name = suffix.Length == 0 ? (bidirectional ? $"layers[{k}].forward" : $"layers[{k}]") : $"layers[{k}].reverse";
                if (TorchLayouts.CellOf(direction) is not { } found || (found != cell && !(IsRnn(found) && IsRnn(cell))))
                    problems.Add($"expected {name} to be a layer of {cell} (Layer.{(IsRnn(cell) ? "Rnn" : cell.ToString())}) but got {TorchLayouts.Describe(direction)}");
                else if (found != cell)
                    problems.Add($"expected {name} to have the activation of {cell} but it is {found}");
                if (TorchLayouts.HiddenSizeOf(direction) != na)
                    problems.Add($"expected {name} to have the hidden size of layers[0], n_a = {na}, as every layer of a PyTorch module has, but got {TorchLayouts.HiddenSizeOf(direction)}");
                if (TorchLayouts.CellOf(direction) == TorchCell.Lstm && TorchLayouts.ProjectionOf(direction) is var np && np != projection)
                    problems.Add($"expected {name} to have the projection of layers[0], {Projection(projection)}, as every layer of a PyTorch module has (one proj_size), but got {Projection(np)}");
                if (!bias && TorchLayouts.CellOf(direction) is not null && direction.ToLeaves().FirstOrDefault(l => l.Name.StartsWith('B') && l.Values.Any(v => v != 0)) is { } nonZero)
                    problems.Add($"expected {name}.{nonZero.Name} to be zero for a module with bias=False but it is not");
            }
        }
        return problems.Count > 0
            ? Fail<TorchModule>(problems)
            : Validation<Error, TorchModule>.Success(new(cell, layers[0].InputSize, na, layers.Length, bidirectional, bias) { ProjSize = projection });
    }

    private static string Projection(int np) => np == 0 ? "none" : $"n_p = {np}";

    private static bool IsRnn(TorchCell cell) => cell is TorchCell.RnnTanh or TorchCell.RnnRelu;

    private static ImmutableArray<(Layer Layer, string Suffix)> Directions(Layer layer) =>
        layer is BidirectionalLayer bi ? [(bi.Forward, ""), (bi.Reverse, "_reverse")] : [(layer, "")];

    internal static string Name(string prefix, string name) => string.IsNullOrEmpty(prefix) ? name : $"{prefix}.{name}";

    internal static Validation<Error, T> Fail<T>(IEnumerable<string> problems) => Validation<Error, T>.Fail(problems.Select(Error.New).ToSeq());
}

/// <summary>The rearrangement of one direction of one layer between RnnFunctional's parameters and PyTorch's four tensors.</summary>
internal static class TorchLayouts
{
    public static TorchCell? CellOf(Layer layer) => layer switch
    {
        CellLayer<RnnParameters, Matrix<double>, RnnCache> r when ReferenceEquals(r.Cell, RnnFunctional.Rnn.Cell) =>
            r.Parameters.Activation == Activation.Relu ? TorchCell.RnnRelu : TorchCell.RnnTanh,
        CellLayer<LstmParameters, LstmState, LstmCache> l when ReferenceEquals(l.Cell, RnnFunctional.Lstm.Cell) => TorchCell.Lstm,
        CellLayer<ProjectedLstmParameters, LstmState, ProjectedLstmCache> p when ReferenceEquals(p.Cell, RnnFunctional.ProjectedLstm.Cell) => TorchCell.Lstm,
        CellLayer<GruParameters, Matrix<double>, GruCache> g when ReferenceEquals(g.Cell, RnnFunctional.Gru.Cell) => TorchCell.Gru,
        _ => null,
    };

    /// <summary>n_p of an LSTM with a projection, 0 for any other layer.</summary>
    public static int ProjectionOf(Layer layer) => layer is CellLayer<ProjectedLstmParameters, LstmState, ProjectedLstmCache> p ? p.Parameters.ProjectionSize : 0;

    /// <summary>n_a: the cell size of an LSTM with a projection, the output size of any other layer.</summary>
    public static int HiddenSizeOf(Layer layer) => layer is CellLayer<ProjectedLstmParameters, LstmState, ProjectedLstmCache> p ? p.Parameters.HiddenSize : layer.OutputSize;

    /// <summary>What a layer is, for a message: its PyTorch cell, the library's cell without one, a nested bidirectional layer or a custom cell.</summary>
    public static string Describe(Layer layer) => layer switch
    {
        CellLayer<ProjectedLstmParameters, LstmState, ProjectedLstmCache> p when ReferenceEquals(p.Cell, RnnFunctional.ProjectedLstm.Cell) => "an LSTM with a projection (Layer.ProjectedLstm)",
        CellLayer<PeepholeLstmParameters, LstmState, PeepholeLstmCache> p when ReferenceEquals(p.Cell, RnnFunctional.PeepholeLstm.Cell) => "a peephole LSTM (Layer.PeepholeLstm)",
        CellLayer<LayerNormLstmParameters, LstmState, LayerNormLstmCache> n when ReferenceEquals(n.Cell, RnnFunctional.LayerNormLstm.Cell) => "a layer-normalized LSTM (Layer.LayerNormLstm)",
        CellLayer<LayerNormGruParameters, Matrix<double>, LayerNormGruCache> n when ReferenceEquals(n.Cell, RnnFunctional.LayerNormGru.Cell) => "a layer-normalized GRU (Layer.LayerNormGru)",
        _ => CellOf(layer)?.ToString() ?? (layer is BidirectionalLayer ? "a nested bidirectional layer" : $"a layer of a custom cell ({layer.GetType().Name})"),
    };

    /// <summary>
    /// weight_ih, weight_hh, with biases bias_ih and bias_hh, and an LSTM's projection weight_hr, of one direction (a
    /// layer of a known cell), each copied once from the parameters' storage into its row-major tensor.
    /// </summary>
    public static IEnumerable<(string Name, SafetensorsTensor Tensor)> ToTorch(Layer layer, bool bias)
    {
        var (wih, whh, bih, bhh) = layer switch
        {
            CellLayer<RnnParameters, Matrix<double>, RnnCache> r =>
                (Tensor(r.Parameters.Wax), Tensor(r.Parameters.Waa), Tensor(r.Parameters.Ba), Zeros(r.Parameters.HiddenSize)),
            CellLayer<LstmParameters, LstmState, LstmCache> l => LstmToTorch(l.Parameters),
            CellLayer<ProjectedLstmParameters, LstmState, ProjectedLstmCache> p =>
                (Tensor(p.Parameters.Wih), Tensor(p.Parameters.Whh), Tensor(p.Parameters.Bih), Tensor(p.Parameters.Bhh)),
            CellLayer<GruParameters, Matrix<double>, GruCache> g =>
                (Tensor(g.Parameters.Wih), Tensor(g.Parameters.Whh), Tensor(g.Parameters.Bih), Tensor(g.Parameters.Bhh)),
            _ => throw new InvalidOperationException($"{layer.GetType().Name} has no PyTorch layout"),
        };
        yield return ("weight_ih", wih);
        yield return ("weight_hh", whh);
        if (layer is CellLayer<ProjectedLstmParameters, LstmState, ProjectedLstmCache> projected) yield return ("weight_hr", Tensor(projected.Parameters.Whr));
        if (!bias) yield break;
        yield return ("bias_ih", bih);
        yield return ("bias_hh", bhh);
    }

    private static SafetensorsTensor Tensor(Matrix<double> m) => SafetensorsTensor.Of(m);

    private static SafetensorsTensor Tensor(Vector<double> v) => SafetensorsTensor.Of(v);

    private static SafetensorsTensor Zeros(int count) => Tensor([count], new double[count]);

    private static SafetensorsTensor Tensor(ImmutableArray<int> shape, double[] values) =>
        new(SafetensorsDType.F64, shape, ImmutableCollectionsMarshal.AsImmutableArray(values));

    /// <summary>
    /// Our gates f, i, c, o each read [a; x] (n_a×(n_a+n_x), recurrent block first); PyTorch stacks i | f | g | o in
    /// row blocks of weight_ih (the x columns) and weight_hh (the a columns), and bias_ih + bias_hh.
    /// </summary>
    private static (SafetensorsTensor, SafetensorsTensor, SafetensorsTensor, SafetensorsTensor) LstmToTorch(LstmParameters p)
    {
        var (na, nx) = (p.HiddenSize, p.InputSize);
        Matrix<double>[] gates = [p.Wi, p.Wf, p.Wc, p.Wo];
        Vector<double>[] biases = [p.Bi, p.Bf, p.Bc, p.Bo];
        var (wih, whh, bih) = (new double[4 * na * nx], new double[4 * na * na], new double[4 * na]);
        for (var k = 0; k < 4; k++)
        {
            var storage = TensorLayout.Storage(gates[k]);                                         // column-major: column c at c·n_a
            TensorLayout.Transpose(storage, na, na, na, whh.AsSpan(k * na * na), na);             // the a columns 0..n_a
            TensorLayout.Transpose(storage.AsSpan(na * na), na, nx, na, wih.AsSpan(k * na * nx), nx); // the x columns
            TensorLayout.Storage(biases[k]).CopyTo(bih, k * na);
        }
        return (Tensor([4 * na, nx], wih), Tensor([4 * na, na], whh), Tensor([4 * na], bih), Zeros(4 * na));
    }

    /// <summary>
    /// One direction of one layer from PyTorch's tensors, already checked (biases null when the module has none,
    /// <paramref name="whr"/> null without a projection): each weight copied once from its row-major tensor into the
    /// storage of its matrix.
    /// </summary>
    public static Layer FromTorch(TorchCell cell, SafetensorsTensor wih, SafetensorsTensor whh, SafetensorsTensor? bih, SafetensorsTensor? bhh,
        SafetensorsTensor? whr = null)
    {
        var (rows, nin, na) = (wih.Shape[0], wih.Shape[1], whh.Shape[1]);
        ReadOnlySpan<double> ih = bih is null ? new double[rows] : bih.Values.AsSpan();
        ReadOnlySpan<double> hh = bhh is null ? new double[rows] : bhh.Values.AsSpan();
        var none = (Matrix: Matrix<double>.Build.Dense(0, na), Vector: Vector<double>.Build.Dense(0));
        switch (cell)
        {
            case TorchCell.Gru:
                return Layer.Gru(new GruParameters(wih.ToMatrix(), whh.ToMatrix(), Vector<double>.Build.Dense(ih.ToArray()),
                    Vector<double>.Build.Dense(hh.ToArray()), none.Matrix, none.Vector));
            case TorchCell.Lstm when whr is not null:                                            // PyTorch's layout as it is, both biases kept
                return Layer.ProjectedLstm(new ProjectedLstmParameters(wih.ToMatrix(), whh.ToMatrix(), Vector<double>.Build.Dense(ih.ToArray()),
                    Vector<double>.Build.Dense(hh.ToArray()), whr.ToMatrix(), Matrix<double>.Build.Dense(0, whr.Shape[0]), none.Vector));
            case TorchCell.Lstm:
                var b = Sum(ih, hh);
                Matrix<double> W(int k)
                {
                    var storage = new double[na * (na + nin)];                                    // column-major [a | x] columns
                    TensorLayout.Transpose(whh.Values.AsSpan()[(k * na * na)..], na, na, na, storage, na);
                    TensorLayout.Transpose(wih.Values.AsSpan()[(k * na * nin)..], nin, na, nin, storage.AsSpan(na * na), na);
                    return Matrix<double>.Build.Dense(na, na + nin, storage);
                }
                Vector<double> B(int k) => Vector<double>.Build.Dense(b.AsSpan(k * na, na).ToArray());
                return Layer.Lstm(new LstmParameters(W(1), B(1), W(0), B(0), W(2), B(2), W(3), B(3), none.Matrix, none.Vector));   // f = 1, i = 0, g = 2, o = 3
            default:
                return Layer.Rnn(new RnnParameters(wih.ToMatrix(), whh.ToMatrix(), Vector<double>.Build.Dense(Sum(ih, hh)), none.Matrix, none.Vector)
                    { Activation = cell == TorchCell.RnnRelu ? Activation.Relu : Activation.Tanh });
        }
    }

    /// <summary>bias_ih + bias_hh, keeping bias_ih's bits where bias_hh is zero (so −0 survives a round trip).</summary>
    internal static double[] Sum(ReadOnlySpan<double> ih, ReadOnlySpan<double> hh)
    {
        var sum = new double[ih.Length];
        for (var i = 0; i < sum.Length; i++) sum[i] = hh[i] == 0 ? ih[i] : ih[i] + hh[i];
        return sum;
    }
}
