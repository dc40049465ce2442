using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnFunctional.Testing;

namespace RnnFunctional.Tests;

/// <summary>
/// Laws of the training step on flat gradients (the path <see cref="Training.Update"/> takes for the optimizers of
/// <see cref="Optimizers"/>) and of the leaf shapes that let trees be checked and rebuilt without copies.
/// </summary>
public sealed class TrainingUpdateTests
{
    private static IEnumerable<Optimizer<T>> All<T>(double lr) where T : IParameterTree<T> =>
    [
        Optimizers.Sgd<T>(lr), Optimizers.Momentum<T>(lr), Optimizers.Adagrad<T>(lr), Optimizers.RmsProp<T>(lr), Optimizers.Adam<T>(lr),
    ];

    // Thresholds small enough that clipping changes most entries of these gradients, so a clipping done differently shows.
    private static readonly Clipping[] Clippings = [Clipping.None, Clipping.ByValue(1e-3), Clipping.ByGlobalNorm(1e-2)];

    /// <summary>The same optimizer with its update wrapped in a new delegate: <see cref="Training.Update"/> then takes the tree path.</summary>
    private static Optimizer<T> OnTrees<T>(Optimizer<T> o) where T : IParameterTree<T> => o with { Update = (p, g, s) => o.Update(p, g, s) };

    private static string? ThreeUpdatesDiffer<T, TState>(SequenceModel<T, TState> model, T initial, TokenBatch batch, Optimizer<T> optimizer, Clipping clipping)
        where T : IParameterTree<T>
    {
        var (fast, slow) = (new TrainingState<T>(initial, optimizer.Init(initial)), new TrainingState<T>(initial, optimizer.Init(initial)));
        var inPlace = new TrainingState<T>(initial, optimizer.Init(initial));
        var (tree, carry) = (OnTrees(optimizer), model.InitialState(initial, batch.Size));
        for (var step = 1; step <= 3; step++)
        {
            var a = Training.Update(model, optimizer, clipping, fast, batch, carry);
            var b = Training.Update(model, tree, clipping, slow, batch, carry);
            (fast, slow) = (a.State, b.State);
            // The same update on values already flat, the parameters read into a tree only when asked for.
            var result = model.LossAndGradients(inPlace.Parameters, batch, carry);
            var values = Tree.Flatten(inPlace.Parameters);
            var (next, loss, norm) = Training.UpdateInPlace(optimizer.Flat!, clipping, initial, initial.LeafShapes(), values, Tree.Flatten(result.Gradients),
                inPlace.Optimizer, result.Loss, result.Tokens);
            inPlace = new TrainingState<T>(() => Tree.Unflatten(initial, values), next!);
            var difference = Compare.FirstDifference(fast.Parameters, slow.Parameters)
                ?? (fast.Optimizer.Step != slow.Optimizer.Step ? $"steps {fast.Optimizer.Step} and {slow.Optimizer.Step}" : null)
                ?? fast.Optimizer.Slots.Zip(slow.Optimizer.Slots, (x, y) => Compare.FirstDifference(x, y)).FirstOrDefault(d => d is not null)
                ?? (Compare.Same(a.GradientNorm, b.GradientNorm) ? null : $"norms {a.GradientNorm:R} and {b.GradientNorm:R}")
                ?? Compare.FirstDifference(inPlace.Parameters, slow.Parameters)?.Insert(0, "in place: ")
                ?? inPlace.Optimizer.Slots.Zip(slow.Optimizer.Slots, (x, y) => Compare.FirstDifference(x, y)).FirstOrDefault(d => d is not null)?.Insert(0, "in place, slots: ")
                ?? (Compare.Same(norm, b.GradientNorm) && Compare.Same(loss, b.Loss) ? null : $"in place: norm {norm:R}, loss {loss:R} against {b.GradientNorm:R}, {b.Loss:R}");
            if (difference is not null) return $"{optimizer.Name}, clipping {clipping}, step {step}: {difference}";
        }
        return null;
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 20)]
    public Property TrainingOnFlatGradientsIsBitwiseTheTreeOptimizerForEveryOptimizerAndClipping(LanguageCase c)
    {
        var differences =
            from optimizer in All<StackParameters>(0.05)
            from clipping in Clippings
            select ThreeUpdatesDiffer(LanguageModel.Stack(c.V), c.Stack, c.Batch, optimizer, clipping);
        var rnn = All<RnnParameters>(0.05).Select(o => ThreeUpdatesDiffer(LanguageModel.Rnn(c.V), c.P, c.Batch, o, Clipping.ByValue(1e-3)));
        var first = differences.Concat(rnn).FirstOrDefault(d => d is not null);
        return (first is null).Label(first ?? "");
    }

    [Fact]
    public void AStateWhoseParametersAreBuiltWhenReadBuildsThemOnceAndIsTheStateOfThoseParameters()
    {
        var p = RnnParameters.Initialize(3, 4, 3, 5);
        var adam = Optimizers.Adam<RnnParameters>(0.01);
        var builds = 0;
        var lazy = new TrainingState<RnnParameters>(() => { builds++; return p; }, adam.Init(p));
        var eager = new TrainingState<RnnParameters>(p, lazy.Optimizer);
        Assert.Equal(0, builds);
        Assert.Same(p, lazy.Parameters);
        Assert.Same(p, lazy.Parameters);
        Assert.Equal(1, builds);
        Assert.Equal(eager, lazy);
        Assert.Equal(eager.GetHashCode(), lazy.GetHashCode());
        var (parameters, optimizer) = lazy;
        Assert.Same(p, parameters);
        Assert.Same(lazy.Optimizer, optimizer);
        var other = RnnParameters.Initialize(3, 4, 3, 6);
        Assert.Same(other, (lazy with { Parameters = other }).Parameters);
        Assert.NotEqual(eager, lazy with { Parameters = other });
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 30)]
    public Property MutatingReturnedSlotsChangesNoLaterUpdate(LanguageCase c)
    {
        var adam = Optimizers.Adam<RnnParameters>(0.05);
        var (p1, s1) = adam.Update(c.P, c.Direction, adam.Init(c.P));
        var (expected, expectedState) = adam.Update(p1, c.Direction, s1);
        foreach (var slot in s1.Slots)
        {
            slot.Wax.MapInplace(x => x + 1.0);
            slot.By.MapInplace(x => -x);
        }
        var (p2, s2) = adam.Update(p1, c.Direction, s1);
        return (Compare.Same(p2, expected) && expectedState.Slots.Zip(s2.Slots, (x, y) => Compare.Same(x, y)).All(ok => ok))
            .Label("the second update reads the slots as the first update left them");
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 50)]
    public Property LeafShapesAreTheShapesOfTheLeavesForEveryTree(LanguageCase c)
    {
        static bool Agree<T>(T tree) where T : IParameterTree<T> =>
            tree.LeafShapes().SequenceEqual(tree.ToLeaves().Select(l => l.Shape));
        var bidirectional = StackParameters.Initialize([Layer.Bidirectional(Layer.Lstm(c.V, 3, 1), Layer.Gru(c.V, 2, 2))], c.V, 3);
        var custom = new CoupledParameters(MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.Dense(6, c.V),
            MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.Dense(6, 2), MathNet.Numerics.LinearAlgebra.Vector<double>.Build.Dense(6));
        var checks = new (string Name, bool Ok)[]
        {
            ("rnn", Agree(c.P)), ("lstm", Agree(c.Lstm)), ("gru", Agree(c.Gru)), ("stack", Agree(c.Stack)),
            ("bidirectional stack", Agree(bidirectional)), ("layer", Agree(c.Stack.Layers[0])),
            ("a tree with the default LeafShapes", Agree<CoupledParameters>(custom)),
        };
        return checks.Select(x => x.Ok.Label(x.Name)).Aggregate((a, b) => a.And(b));
    }

    /// <summary>
    /// <see cref="Tree.Flatten{T}"/>, which writes the library's trees straight into one array, gives the entries of
    /// their leaves in leaf order, bit for bit: for stacks mixing every cell, one-direction and bidirectional layers,
    /// the same stacks with every layer a generic <see cref="Layer.Of"/> layer, and
    /// each cell's own parameters.
    /// </summary>
    [Property(MaxTest = 40)]
    public Property FlatteningGivesTheEntriesOfTheLeavesInOrder() =>
        Prop.ForAll((from layers in Gen.Choose(1, 3)
                     from kinds in Gen.Elements(Enum.GetValues<CellKind>()).ArrayOf(layers * 2)
                     from bidirectional in Gen.Elements(true, false).ArrayOf(layers)
                     from seed in Gen.Choose(0, int.MaxValue - 1)
                     select new StackCase(new Shaped(new Dims(3, 4, 3, 2, 2), seed),
                         [.. Enumerable.Range(0, layers).Select(l => bidirectional[l] ? LayerSpec.Bi(kinds[2 * l], kinds[2 * l + 1]) : LayerSpec.Uni(kinds[2 * l]))],
                         ragged: false)).ToArbitrary(), c =>
        {
            static bool Flat<T>(T tree) where T : IParameterTree<T> =>
                Tree.Flatten(tree).Select(BitConverter.DoubleToInt64Bits).SequenceEqual(tree.ToLeaves().SelectMany(l => l.Values).Select(BitConverter.DoubleToInt64Bits));
            static bool Cell(Layer layer) => layer switch
            {
                CellLayer<RnnParameters, MathNet.Numerics.LinearAlgebra.Matrix<double>, RnnCache> r => Flat(r.Parameters),
                CellLayer<LstmParameters, LstmState, LstmCache> l => Flat(l.Parameters),
                CellLayer<GruParameters, MathNet.Numerics.LinearAlgebra.Matrix<double>, GruCache> g => Flat(g.Parameters),
                BidirectionalLayer b => Cell(b.Forward) && Cell(b.Reverse),
                _ => true,
            };
            var withReadOut = Layer.Of(Lstm.Cell, LstmParameters.Initialize(3, 4, 2, c.Shape.Seed), 3, 4, [4, 4], ["Wy", "By"]);   // an unused read-out of 2×4 and 2
            var initialized = StackParameters.Initialize(
                [withReadOut, Layer.Bidirectional(Layer.Gru(4, 2, 2), Layer.Rnn(4, 3, 3)), Layer.LayerNormLstm(5, 2, 4)], 3, 5);
            return Flat(c.P).Label("the stack")
                .And(Flat(initialized).Label("a stack of initialized layers"))
                .And(Flat(NewCells.Generic(c.P)).Label("the stack of generic layers"))
                .And(c.P.Layers.All(Cell).Label("each cell's parameters"));
        });

    /// <summary>
    /// <see cref="Tree.TryOverwrite{T}"/>, which a worker uses to read new parameters into a scratch tree rather than a
    /// new one, gives bitwise <see cref="Tree.Unflatten{T}"/> for every cell's parameters and for stacks of one-direction
    /// layers (fused or generic), and refuses trees it cannot overwrite in place (bidirectional layers, a tree of its own kind)
    /// and values of another length; the tree whose copy is overwritten is left as it was.
    /// </summary>
    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 30)]
    public Property OverwritingAScratchCopyInPlaceIsBitwiseUnflattening(LanguageCase c)
    {
        static long[] Bits(IEnumerable<double> values) => [.. values.Select(BitConverter.DoubleToInt64Bits)];
        static bool? Overwrites<T>(T tree) where T : IParameterTree<T>
        {
            var (before, values) = (Bits(Tree.Flatten(tree)), Tree.Flatten(tree).Select(x => 2 * x + 1).ToArray());
            var scratch = Tree.Unflatten(tree, Tree.Flatten(tree));
            if (Tree.TryOverwrite(scratch, values.AsSpan(1)) || Tree.TryOverwrite(scratch, [.. values, 0.0])) return null;
            if (!Tree.TryOverwrite(scratch, values)) return false;
            return Bits(Tree.Flatten(scratch)).SequenceEqual(Bits(values)) && Bits(Tree.Flatten(tree)).SequenceEqual(before)
                && Bits(Tree.Flatten(Tree.Unflatten(tree, values))).SequenceEqual(Bits(Tree.Flatten(scratch)));
        }
        var stack = StackParameters.Initialize([Layer.Lstm(c.V, 4, 1), Layer.Gru(4, 3, 2), Layer.Rnn(3, 2, 3), Layer.LayerNormLstm(2, 3, 4)], c.V, 5);
        var bidirectional = StackParameters.Initialize([Layer.Bidirectional(Layer.Lstm(c.V, 3, 1), Layer.Gru(c.V, 2, 2))], c.V, 3);
        var custom = new CoupledParameters(MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.Dense(6, c.V),
            MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.Dense(6, 2), MathNet.Numerics.LinearAlgebra.Vector<double>.Build.Dense(6));
        return (Overwrites(c.P) == true).Label("rnn")
            .And((Overwrites(c.Lstm) == true).Label("lstm"))
            .And((Overwrites(c.Gru) == true).Label("gru"))
            .And((Overwrites(c.Stack) == true).Label("the case's stack"))
            .And((Overwrites(stack) == true).Label("a stack of four kinds of layer"))
            .And((Overwrites(NewCells.Generic(stack)) == true).Label("the same stack of generic layers"))
            .And((Overwrites(bidirectional) == false).Label("a bidirectional stack is refused"))
            .And((Overwrites(custom) == false).Label("a tree of its own kind is refused"));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 50)]
    public Property RebuildingFromOwnLeavesGivesAnEqualTreeThatSharesNoStorage(LanguageCase c)
    {
        var leaves = c.Stack.ToLeaves();
        var values = Tree.Concatenate(leaves);
        var rebuilt = c.Stack.FromLeaves(leaves);
        var equal = Compare.FirstDifference(rebuilt, c.Stack) is null && rebuilt.Layers.Length == c.Stack.Layers.Length;
        rebuilt.Wy.MapInplace(x => x + 1);
        return (equal && Compare.Same(Tree.Concatenate(leaves), values) && Compare.FirstDifference(c.Stack, rebuilt) is not null)
            .Label("FromLeaves ∘ ToLeaves is the identity, and the rebuilt tree owns its values");
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 30)]
    public Property EvaluatingACellsModelOverWholeBatchesIsBitwiseSteppingThroughIt(LanguageCase c)
    {
        var batches = new[] { c.Batch, TokenBatch.ForNextToken([.. c.Items.Reverse()]) };
        Property Agrees<TParams, TState>(string name, SequenceModel<TParams, TState> model, TParams p) where TParams : IParameterTree<TParams>
        {
            var (whole, tokens) = LanguageModel.Evaluate(model, p, batches);
            var (stepped, steppedTokens) = LanguageModel.Evaluate(model with { Score = null }, p, batches);
            return (model.Score is not null && Compare.Same(whole, stepped) && tokens == steppedTokens).Label($"{name}: whole batches {whole:R}, step by step {stepped:R}");
        }
        var (v, na, seed) = (c.V, c.P.HiddenSize, c.Shape.Seed);
        return Agrees("RNN", LanguageModel.Rnn(v), c.P)
            .And(Agrees("LSTM", LanguageModel.Lstm(v), LstmParameters.Initialize(v, na, v, seed)))
            .And(Agrees("GRU", LanguageModel.Gru(v), GruParameters.Initialize(v, na, v, seed)));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 50)]
    public Property EvaluatingAStackOverWholeBatchesIsBitwiseSteppingThroughIt(LanguageCase c)
    {
        var model = LanguageModel.Stack(c.V);
        var stepping = model with { Score = null };
        var batches = new[] { c.Batch, TokenBatch.ForNextToken([.. c.Items.Reverse()]) };
        var (whole, tokens) = LanguageModel.Evaluate(model, c.Stack, batches);
        var (stepped, steppedTokens) = LanguageModel.Evaluate(stepping, c.Stack, batches);
        return (model.Score is not null && Compare.Same(whole, stepped) && tokens == steppedTokens)
            .Label($"whole batches {whole:R}, step by step {stepped:R}");
    }
}
