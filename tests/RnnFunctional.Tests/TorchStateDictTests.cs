using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Tests;

/// <summary>
/// PyTorch state_dicts in and out: a loaded model computes PyTorch's equations (evaluated independently by
/// <see cref="TorchReference"/>), our models survive the PyTorch names bit for bit, and loading reports every problem.
/// </summary>
public sealed class TorchStateDictTests
{
    /// <summary>A PyTorch module, its read-out, its input and initial states, all drawn from one seed.</summary>
    public sealed record TorchCase(TorchModule Module, int OutputSize, int Batch, int Steps, string Prefix, SafetensorsDType DType, int Seed)
    {
        public override string ToString() => $"{Module} → nn.Linear({Module.OutputSize * (Module.Bidirectional ? 2 : 1)}, {OutputSize}), m = {Batch}, T = {Steps}, prefix '{Prefix}', {DType}, seed {Seed}";
    }

    /// <summary>Random modules of the given cells; an LSTM with n_a ≥ 2 has a proj_size in [1, n_a) when <paramref name="projection"/> says so.</summary>
    private static Gen<TorchCase> CasesOf(Gen<bool> projection, params TorchCell[] cells) =>
        from cell in Gen.Elements(cells)
        from projected in projection.Select(x => x && cell == TorchCell.Lstm)
        from nx in Gen.Choose(1, 4)
        from na in Gen.Choose(projected ? 2 : 1, 4)
        from np in projected ? Gen.Choose(1, na - 1) : Gen.Constant(0)
        from layers in Gen.Choose(1, 3)
        from bidirectional in Gen.Elements(false, true)
        from bias in Gen.Elements(true, true, false)
        from ny in Gen.Choose(1, 4)
        from m in Gen.Choose(1, 3)
        from t in Gen.Choose(1, 5)
        from prefix in Gen.Elements("", "rnn", "encoder.lstm")
        from dtype in Gen.Elements(SafetensorsDType.F64, SafetensorsDType.F32)
        from seed in Gen.Choose(0, int.MaxValue)
        select new TorchCase(new TorchModule(cell, nx, na, layers, bidirectional, bias) { ProjSize = np }, ny, m, t, prefix, dtype, seed);

    /// <summary>Every cell, the LSTM with or without a projection.</summary>
    private static readonly Gen<TorchCase> Cases = CasesOf(Gen.Elements(false, true), TorchCell.RnnTanh, TorchCell.RnnRelu, TorchCell.Lstm, TorchCell.Gru);

    /// <summary>nn.LSTM(proj_size) only.</summary>
    private static readonly Gen<TorchCase> Projected = CasesOf(Gen.Constant(true), TorchCell.Lstm);

    private static T Value<T>(Validation<Error, T> v) => v.Match(x => x, errors => throw new InvalidOperationException(string.Join("; ", errors.Select(e => e.Message))));

    private static string[] Errors<T>(Validation<Error, T> v) => v.Match(_ => [], errors => errors.Select(e => e.Message).ToArray());

    private static bool Close(double expected, double actual) => Math.Abs(expected - actual) <= 1e-12 * Math.Max(1, Math.Abs(expected));

    private static byte[] Bytes(SafetensorsFile file) => Safetensors.Serialize(file).Match(b => b, e => throw new InvalidOperationException(e.Message));

    private static SafetensorsFile Read(byte[] bytes) => Safetensors.Read(bytes).Match(f => f, e => throw new InvalidOperationException(e.Message));

    private static ImmutableArray<long> Bits<T>(T tree) where T : IParameterTree<T> => [.. Tree.Flatten(tree).Select(BitConverter.DoubleToInt64Bits)];

    [Property(MaxTest = 150)]
    public Property ALoadedModelComputesPyTorchsEquations() => Prop.ForAll(Cases.ToArbitrary(), ComputesPyTorchsEquations);

    /// <summary>h = W_hr·(o⊙tanh c) of n_p rows, the recurrence and the layers above reading it, to 1e-12.</summary>
    [Property(MaxTest = 100)]
    public Property ALoadedProjectedLstmComputesPyTorchsEquations() => Prop.ForAll(Projected.ToArbitrary(), ComputesPyTorchsEquations);

    private static Property ComputesPyTorchsEquations(TorchCase c) =>
        ((Func<Property>)(() =>
        {
            var (module, random) = (c.Module, new Random(c.Seed));
            var stateDict = TorchReference.RandomStateDict(module, c.OutputSize, c.Prefix, "fc", random, c.DType);
            double[][][] Draw(int outer, int rows, int columns) =>
                [.. Enumerable.Range(0, outer).Select(_ => Enumerable.Range(0, rows).Select(_ => Enumerable.Range(0, columns).Select(_ => 2 * random.NextDouble() - 1).ToArray()).ToArray())];
            var directions = module.Bidirectional ? 2 : 1;
            var (input, h0, c0) = (Draw(c.Steps, c.Batch, module.InputSize), Draw(module.NumLayers * directions, c.Batch, module.OutputSize),
                                   Draw(module.NumLayers * directions, c.Batch, module.HiddenSize));
            var (output, probabilities) = new TorchReference(stateDict, module, c.Prefix, "fc").Run(input, h0, module.Cell == TorchCell.Lstm ? c0 : Draw(module.NumLayers * directions, c.Batch, module.HiddenSize).Select(l => l.Select(r => new double[r.Length]).ToArray()).ToArray());

            var file = Read(Bytes(SafetensorsFile.Of(stateDict)));                     // through the bytes of a .safetensors file
            var p = Value(TorchStateDict.ToStack(file.Tensors, new TorchLayout(module.Cell, c.Prefix, "fc")));
            Matrix<double> Columns(double[][] rows) => Matrix<double>.Build.Dense(rows[0].Length, rows.Length, (i, j) => rows[j][i]);   // (m, n) → n×m
            ImmutableArray<Matrix<double>> xs = [.. input.Select(Columns)];
            ImmutableArray<ImmutableArray<Matrix<double>>> initial = [.. Enumerable.Range(0, module.NumLayers).Select(k =>
                Enumerable.Range(0, directions).SelectMany(d => module.Cell == TorchCell.Lstm
                    ? new[] { Columns(h0[k * directions + d]), Columns(c0[k * directions + d]) }
                    : [Columns(h0[k * directions + d])]).ToImmutableArray())];
            var forward = Stack.Forward(p, xs, initial: initial);
            var top = Enumerable.Range(0, c.Steps).All(t => Enumerable.Range(0, c.Batch).All(j =>
                Enumerable.Range(0, directions * module.OutputSize).All(i => Close(output[t][j][i], forward.Top[t][i, j]))));
            var predictions = Enumerable.Range(0, c.Steps).All(t => Enumerable.Range(0, c.Batch).All(j =>
                Enumerable.Range(0, c.OutputSize).All(i => Close(probabilities[t][j][i], forward.Predictions[t][i, j]))));
            return top.Label("outputs equal PyTorch's to 1e-12").And(predictions.Label("softmax of the read-out equals PyTorch's to 1e-12"))
                .And(Value(TorchStateDict.ModuleOf(file.Tensors, module.Cell, c.Prefix)).Equals(module).Label("the names imply the module"));
        }))();

    /// <summary>A stack of one PyTorch module made by the library's factories, with some biases zero (and −0) and, without biases, all of them.</summary>
    private static StackParameters OurStack(TorchCase c)
    {
        var m = c.Module;
        Layer One(int input, int seed) => m.Cell switch
        {
            TorchCell.Lstm when m.ProjSize > 0 => Layer.ProjectedLstm(ProjectedLstmParameters.Initialize(input, m.HiddenSize, m.ProjSize, 1, seed)),
            TorchCell.Lstm => Layer.Lstm(input, m.HiddenSize, seed),
            TorchCell.Gru => Layer.Gru(input, m.HiddenSize, seed),
            _ => Layer.Rnn(input, m.HiddenSize, seed, m.Cell == TorchCell.RnnRelu ? Activation.Relu : Activation.Tanh),
        };
        var layers = Enumerable.Range(0, m.NumLayers).Select(k =>
        {
            var input = k == 0 ? m.InputSize : (m.Bidirectional ? 2 : 1) * m.OutputSize;
            return m.Bidirectional ? Layer.Bidirectional(One(input, c.Seed + 2 * k), One(input, c.Seed + 2 * k + 1)) : One(input, c.Seed + 2 * k);
        }).ToImmutableArray();
        var p = StackParameters.Initialize(layers, c.OutputSize, c.Seed);
        var random = new Random(c.Seed);
        static bool IsBias(Leaf l) => l.Name.Contains(".B", StringComparison.Ordinal);
        return p.FromLeaves([.. p.ToLeaves().Select(l => !IsBias(l) ? l
            : l.WithValues([.. l.Values.Select(v => !m.Bias ? 0.0 : random.Next(4) switch { 0 => 0.0, 1 => -0.0, _ => v })])) ]);
    }

    [Property(MaxTest = 150)]
    public Property OurModelRoundTripsThroughPyTorchNamesBitForBit() => Prop.ForAll(Cases.ToArbitrary(), RoundTripsBitForBit);

    [Property(MaxTest = 100)]
    public Property OurProjectedLstmRoundTripsThroughPyTorchNamesBitForBit() => Prop.ForAll(Projected.ToArbitrary(), RoundTripsBitForBit);

    private static Property RoundTripsBitForBit(TorchCase c) =>
        ((Func<Property>)(() =>
        {
            var p = OurStack(c);
            var layout = new TorchLayout(c.Module.Cell, c.Prefix, "fc");
            var names = Value(TorchStateDict.FromStack(p, layout, c.Module.Bias));
            var back = Value(TorchStateDict.ToStack(Read(Bytes(SafetensorsFile.Of(names))).Tensors, layout));
            var again = Value(TorchStateDict.FromStack(back, layout, c.Module.Bias));
            return (back == p).Label("the same layers and read-out")
                .And(Bits(back).SequenceEqual(Bits(p)).Label("bit for bit"))
                .And(names.SequenceEqual(again).Label("the same names and tensors written again"))
                .And((Value(TorchStateDict.ModuleOf(p.Layers, c.Module.Cell, c.Module.Bias)) == c.Module with { InputSize = p.InputSize }).Label("the module described"))
                .And(names.Keys.Any(n => n.Contains("bias_", StringComparison.Ordinal)) == c.Module.Bias).Label("biases written when the module has them")
                .And(names.Keys.Any(n => n.Contains("weight_hr_", StringComparison.Ordinal)) == c.Module.ProjSize > 0).Label("weight_hr written when the module has a projection");
        }))();

    [Property(MaxTest = 100)]
    public Property APyTorchStateDictWithZeroHiddenBiasesRoundTripsThroughOurModel() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var stateDict = TorchReference.RandomStateDict(c.Module, c.OutputSize, c.Prefix, "fc", new Random(c.Seed), SafetensorsDType.F64);
            var rnnOrLstm = c.Module.Cell != TorchCell.Gru;
            var written = stateDict.ToImmutableSortedDictionary(kv => kv.Key,
                kv => rnnOrLstm && kv.Key.Contains("bias_hh", StringComparison.Ordinal) ? new SafetensorsTensor(SafetensorsDType.F64, kv.Value.Shape, [.. kv.Value.Values.Select(_ => 0.0)]) : kv.Value,
                StringComparer.Ordinal);
            var layout = new TorchLayout(c.Module.Cell, c.Prefix, "fc");
            var again = Value(TorchStateDict.FromStack(Value(TorchStateDict.ToStack(written, layout)), layout, c.Module.Bias));
            return again.SequenceEqual(written).Label("PyTorch names → our model → PyTorch names is the identity");
        });

    // ---- names and problems ----

    private static readonly TorchModule BiLstm = new(TorchCell.Lstm, 3, 4, 2, true, true);

    private static ImmutableSortedDictionary<string, SafetensorsTensor> BiLstmStateDict() =>
        TorchReference.RandomStateDict(BiLstm, 5, "rnn", "fc", new Random(1), SafetensorsDType.F64);

    [Fact]
    public void WritesTheNamesAndShapesOfPyTorch()
    {
        var p = OurStack(new TorchCase(BiLstm, 5, 1, 1, "rnn", SafetensorsDType.F64, 9));
        var names = Value(TorchStateDict.FromStack(p, new TorchLayout(TorchCell.Lstm, "rnn", "fc")));
        Assert.Equal(BiLstmStateDict().Select(kv => (kv.Key, kv.Value.ShapeText)), names.Select(kv => (kv.Key, kv.Value.ShapeText)));
        Assert.Equal("nn.LSTM(3, 4, num_layers=2, bidirectional=True)", Value(TorchStateDict.ModuleOf(p.Layers, TorchCell.Lstm)).ToString());
        Assert.Equal("nn.RNN(2, 3, nonlinearity=\"relu\", bias=False)", new TorchModule(TorchCell.RnnRelu, 2, 3, 1, false, false).ToString());
    }

    [Fact]
    public void MapsTheLstmGatesAndBiasesOfPyTorch()
    {
        var stateDict = TorchReference.RandomStateDict(new TorchModule(TorchCell.Lstm, 2, 3, 1, false, true), 1, "", "fc", new Random(2), SafetensorsDType.F64)
            .Remove("fc.weight").Remove("fc.bias");
        var lstm = ((CellLayer<LstmParameters, LstmState, LstmCache>)Value(TorchStateDict.ToLayers(stateDict, TorchCell.Lstm))[0]).Parameters;
        var (wih, whh, bih, bhh) = (stateDict["weight_ih_l0"].ToMatrix(), stateDict["weight_hh_l0"].ToMatrix(), stateDict["bias_ih_l0"].ToVector(), stateDict["bias_hh_l0"].ToVector());
        Assert.Equal(whh.SubMatrix(3, 3, 0, 3), lstm.Wf.SubMatrix(0, 3, 0, 3));                  // f is PyTorch's block 1, recurrent columns first
        Assert.Equal(wih.SubMatrix(3, 3, 0, 2), lstm.Wf.SubMatrix(0, 3, 3, 2));
        Assert.Equal(wih.SubMatrix(6, 3, 0, 2), lstm.Wc.SubMatrix(0, 3, 3, 2));                  // g = c̃ is block 2
        Assert.Equal((bih + bhh).SubVector(0, 3), lstm.Bi);                                     // i is block 0, the biases summed
        Assert.Equal((bih + bhh).SubVector(9, 3), lstm.Bo);
    }

    private static readonly TorchModule BiProjected = new(TorchCell.Lstm, 3, 4, 2, true, true) { ProjSize = 2 };

    private static ImmutableSortedDictionary<string, SafetensorsTensor> BiProjectedStateDict() =>
        TorchReference.RandomStateDict(BiProjected, 5, "rnn", "fc", new Random(5), SafetensorsDType.F64);

    private static SafetensorsTensor Zeros(params int[] shape) => new(SafetensorsDType.F64, [.. shape], [.. new double[shape.Aggregate(1, (a, b) => a * b)]]);

    [Fact]
    public void WritesTheNamesAndShapesOfPyTorchForAProjectedLstm()
    {
        var p = OurStack(new TorchCase(BiProjected, 5, 1, 1, "rnn", SafetensorsDType.F64, 9));
        var names = Value(TorchStateDict.FromStack(p, new TorchLayout(TorchCell.Lstm, "rnn", "fc")));
        Assert.Equal(BiProjectedStateDict().Select(kv => (kv.Key, kv.Value.ShapeText)), names.Select(kv => (kv.Key, kv.Value.ShapeText)));
        Assert.Equal("16×3", names["rnn.weight_ih_l0"].ShapeText);                             // 4n_a×n_x
        Assert.Equal("16×2", names["rnn.weight_hh_l0_reverse"].ShapeText);                     // 4n_a×n_p
        Assert.Equal("2×4", names["rnn.weight_hr_l1"].ShapeText);                              // n_p×n_a
        Assert.Equal("16×4", names["rnn.weight_ih_l1"].ShapeText);                             // 4n_a×2n_p
        Assert.Equal("5×4", names["fc.weight"].ShapeText);                                     // n_y×2n_p
        Assert.Equal("nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)", Value(TorchStateDict.ModuleOf(p.Layers, TorchCell.Lstm)).ToString());
    }

    [Fact]
    public void AWeightHrMakesAProjectedLstmWhoseTensorsAreTakenAsTheyAre()
    {
        var stateDict = BiProjectedStateDict();
        var p = Value(TorchStateDict.ToStack(stateDict, new TorchLayout(TorchCell.Lstm, "rnn", "fc")));
        var reverse = Assert.IsType<CellLayer<ProjectedLstmParameters, LstmState, ProjectedLstmCache>>(Assert.IsType<BidirectionalLayer>(p.Layers[1]).Reverse).Parameters;
        Assert.Equal(stateDict["rnn.weight_ih_l1_reverse"].ToMatrix(), reverse.Wih);
        Assert.Equal(stateDict["rnn.weight_hh_l1_reverse"].ToMatrix(), reverse.Whh);
        Assert.Equal(stateDict["rnn.weight_hr_l1_reverse"].ToMatrix(), reverse.Whr);
        Assert.Equal(stateDict["rnn.bias_ih_l1_reverse"].ToVector(), reverse.Bih);             // both biases kept apart
        Assert.Equal(stateDict["rnn.bias_hh_l1_reverse"].ToVector(), reverse.Bhh);
        Assert.Equal(BiProjected, Value(TorchStateDict.ModuleOf(stateDict, TorchCell.Lstm, "rnn")));
        var plain = BiLstmStateDict();
        Assert.IsType<CellLayer<LstmParameters, LstmState, LstmCache>>(Assert.IsType<BidirectionalLayer>(Value(TorchStateDict.ToStack(plain, new TorchLayout(TorchCell.Lstm, "rnn", "fc"))).Layers[0]).Forward);
    }

    [Fact]
    public void ReportsEveryProblemOfAProjectedLstmAtOnce()
    {
        var stateDict = BiProjectedStateDict()
            .Remove("rnn.weight_hr_l1_reverse")
            .SetItem("rnn.weight_hh_l0", Zeros(16, 4))
            .SetItem("rnn.weight_ih_l1", Zeros(16, 8))
            .SetItem("rnn.weight_hr_l0_reverse", Zeros(2, 3))
            .SetItem("fc.weight", Zeros(5, 8));
        const string module = "nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2) under 'rnn' with the read-out 'fc'";
        Assert.Equal(
        [
            "expected rnn.weight_hh_l0 to be 4n_a×n_p = 16×2 but got 16×4",
            "expected rnn.weight_hr_l0_reverse to be n_p×n_a = 2×4 but got 2×3",
            "expected rnn.weight_ih_l1 to be 4n_a×2n_p = 16×4 but got 16×8",
            $"missing rnn.weight_hr_l1_reverse (n_p×n_a = 2×4) of {module}",
            "expected fc.weight to be n_y×2n_p = 5×4 but got 5×8",
        ], Errors(TorchStateDict.ToStack(stateDict, new TorchLayout(TorchCell.Lstm, "rnn", "fc"))));

        var square = BiProjectedStateDict().SetItem("rnn.weight_hr_l0", Zeros(4, 4));
        Assert.Equal(["cannot tell the projection: expected rnn.weight_hr_l0 to be an n_p×n_a matrix with 1 ≤ n_p < n_a (PyTorch's proj_size < hidden_size) but got 4×4"],
            Errors(TorchStateDict.ToStack(square, new TorchLayout(TorchCell.Lstm, "rnn", "fc"))));
        var gru = TorchReference.RandomStateDict(new TorchModule(TorchCell.Gru, 2, 3, 1, false, true), 2, "", "fc", new Random(6), SafetensorsDType.F64)
            .Add("weight_hr_l0", Zeros(2, 3));
        Assert.Equal(["unexpected tensor weight_hr_l0: it is not a tensor of nn.GRU(2, 3) under no prefix with the read-out 'fc'"],
            Errors(TorchStateDict.ToStack(gru, new TorchLayout(TorchCell.Gru, "", "fc"))));
    }

    [Fact]
    public void RefusesToWriteProjectionsThatAreNotOnePyTorchModule()
    {
        ProjectedLstmParameters Projected(int input, int na, int np, int seed) => ProjectedLstmParameters.Initialize(input, na, np, 1, seed);
        var mixed = StackParameters.Initialize(
            [Layer.ProjectedLstm(Projected(2, 4, 2, 1)), Layer.ProjectedLstm(Projected(2, 4, 3, 2)), Layer.Lstm(3, 4, 3)], 2, 4);
        Assert.Equal(
        [
            "expected layers[1] to have the projection of layers[0], n_p = 2, as every layer of a PyTorch module has (one proj_size), but got n_p = 3",
            "expected layers[2] to have the projection of layers[0], n_p = 2, as every layer of a PyTorch module has (one proj_size), but got none",
        ], Errors(TorchStateDict.FromStack(mixed, new TorchLayout(TorchCell.Lstm, "rnn"))));
        var square = StackParameters.Initialize([Layer.ProjectedLstm(Projected(2, 3, 3, 1))], 2, 4);
        Assert.Equal(["expected layers[0]'s projection n_p = 3 to be smaller than its hidden size n_a = 3, as PyTorch's proj_size must be"],
            Errors(TorchStateDict.FromStack(square, new TorchLayout(TorchCell.Lstm))));
        Assert.Equal(["expected layers[0] to be a layer of Gru (Layer.Gru) but got an LSTM with a projection (Layer.ProjectedLstm)"],
            Errors(TorchStateDict.FromStack(square, new TorchLayout(TorchCell.Gru))));
    }

    [Fact]
    public void ReportsEveryProblemAtOnce()
    {
        var stateDict = BiLstmStateDict()
            .Remove("rnn.weight_hh_l1_reverse")
            .SetItem("rnn.bias_ih_l0", new SafetensorsTensor(SafetensorsDType.F64, [15], [.. new double[15]]))
            .SetItem("rnn.weight_ih_l1", new SafetensorsTensor(SafetensorsDType.F64, [16, 4], [.. new double[64]]))
            .Add("rnn.weight_xy_l0", new SafetensorsTensor(SafetensorsDType.F64, [4, 2], [.. new double[8]]))
            .SetItem("fc.bias", new SafetensorsTensor(SafetensorsDType.F64, [5], [1, 2, double.NaN, 4, 5]));
        var errors = Errors(TorchStateDict.ToStack(stateDict, new TorchLayout(TorchCell.Lstm, "rnn", "fc")));
        const string module = "nn.LSTM(3, 4, num_layers=2, bidirectional=True) under 'rnn' with the read-out 'fc'";
        Assert.Equal(
        [
            "expected rnn.bias_ih_l0 to be 4n_a = [16] but got [15]",
            "expected rnn.weight_ih_l1 to be 4n_a×2n_a = 16×8 but got 16×4",
            $"missing rnn.weight_hh_l1_reverse (4n_a×n_a = 16×4) of {module}",
            "expected fc.bias to be finite but entry 2 (row-major) is NaN",
            $"unexpected tensor rnn.weight_xy_l0: it is not a tensor of {module}",
        ], errors);
    }

    [Fact]
    public void TheNamesImplyTheNumberOfLayersAndTheDirections()
    {
        var stateDict = TorchReference.RandomStateDict(new TorchModule(TorchCell.Gru, 2, 3, 1, false, false), 2, "", "fc", new Random(3), SafetensorsDType.F32)
            .Add("weight_hh_l2_reverse", new SafetensorsTensor(SafetensorsDType.F32, [9, 3], [.. new double[27]]))
            .Add("weight_ih_l2", new SafetensorsTensor(SafetensorsDType.F32, [9, 6], [.. new double[54]]));
        var errors = Errors(TorchStateDict.ToStack(stateDict, new TorchLayout(TorchCell.Gru, "", "fc")));
        const string module = "nn.GRU(2, 3, num_layers=3, bidirectional=True, bias=False) under no prefix with the read-out 'fc'";
        Assert.Contains($"missing weight_ih_l0_reverse (3n_a×n_x = 9×2) of {module}", errors);
        Assert.Contains($"missing weight_hh_l1 (3n_a×n_a = 9×3) of {module}", errors);
        Assert.Contains("expected fc.weight to be n_y×2n_a = 2×6 but got 2×3", errors);
        Assert.Equal(9, errors.Length);                                                        // 8 of the 12 weights missing, and the read-out
        var firstLayer = BiLstmStateDict().Where(kv => kv.Key.EndsWith("_l0", StringComparison.Ordinal)).ToImmutableSortedDictionary();   // 4 tensors
        Assert.Equal(["rnn.weight_ih_l7 implies num_layers = 8 but only 5 recurrent tensors are present"],
            Errors(TorchStateDict.ModuleOf(firstLayer.Add("rnn.weight_ih_l7", firstLayer["rnn.weight_ih_l0"]), TorchCell.Lstm, "rnn")));
    }

    [Fact]
    public void AStateDictOfAnotherCellIsShapeErrors()
    {
        var errors = Errors(TorchStateDict.ToStack(BiLstmStateDict(), new TorchLayout(TorchCell.Gru, "rnn", "fc")));
        Assert.Contains("expected rnn.weight_ih_l0 to be 3n_a×n_x = 12×3 but got 16×3", errors);
        Assert.Contains("expected rnn.weight_hh_l0 to be 3n_a×n_a = 12×4 but got 16×4", errors);
        Assert.Equal(["expected the weights of a recurrent module (lstm.weight_ih_l0, lstm.weight_hh_l0, …) but found none among fc.bias, fc.weight, rnn.bias_hh_l0, rnn.bias_hh_l0_reverse, rnn.bias_hh_l1 and 13 more"],
            Errors(TorchStateDict.ToStack(BiLstmStateDict(), new TorchLayout(TorchCell.Lstm, "lstm", "fc"))));
    }

    [Fact]
    public void ReadsTheStateDictOfAModuleAlone()
    {
        var module = new TorchModule(TorchCell.RnnRelu, 2, 3, 2, false, true);
        var stateDict = TorchReference.RandomStateDict(module, 1, "", "fc", new Random(4), SafetensorsDType.F64).Remove("fc.weight").Remove("fc.bias");
        var layers = Value(TorchStateDict.ToLayers(stateDict, TorchCell.RnnRelu));
        Assert.Equal((2, 3), (layers[0].InputSize, layers[1].OutputSize));
        Assert.Equal(stateDict["bias_ih_l1"].ToVector() + stateDict["bias_hh_l1"].ToVector(),
            ((CellLayer<RnnParameters, Matrix<double>, RnnCache>)layers[1]).Parameters.Ba);
        Assert.Equal(Activation.Relu, ((CellLayer<RnnParameters, Matrix<double>, RnnCache>)layers[0]).Parameters.Activation);
        Assert.Equal(["unexpected tensor extra: it is not a tensor of nn.RNN(2, 3, num_layers=2, nonlinearity=\"relu\") under no prefix"],
            Errors(TorchStateDict.ToLayers(stateDict.Add("extra", stateDict["bias_ih_l0"]), TorchCell.RnnRelu)));
    }

    [Fact]
    public void RefusesToWriteWhatIsNotOnePyTorchModule()
    {
        var mixed = StackParameters.Initialize([Layer.Lstm(2, 3, 1), Layer.Bidirectional(Layer.Gru(3, 3, 2), Layer.Lstm(3, 2, 3))], 2, 4);
        Assert.Equal(
        [
            "expected layers[1] to be one-directional as layers[0] is, since a PyTorch module has one direction setting",
            "expected layers[1] to be a layer of Lstm (Layer.Lstm) but got Gru",
            "expected layers[1].reverse to have the hidden size of layers[0], n_a = 3, as every layer of a PyTorch module has, but got 2",
        ], Errors(TorchStateDict.FromStack(mixed, new TorchLayout(TorchCell.Lstm, "rnn"))));
        var relu = StackParameters.Initialize([Layer.Rnn(2, 3, 1, Activation.Relu)], 2, 4);
        Assert.Equal(["expected layers[0] to have the activation of RnnTanh but it is RnnRelu"], Errors(TorchStateDict.FromStack(relu, new TorchLayout(TorchCell.RnnTanh))));
        Assert.Equal(["expected layers[0].Ba to be zero for a module with bias=False but it is not"],
            Errors(TorchStateDict.FromStack(relu, new TorchLayout(TorchCell.RnnRelu), bias: false)));
    }
}
