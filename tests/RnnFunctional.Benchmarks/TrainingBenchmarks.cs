using System.Collections.Immutable;
using BenchmarkDotNet.Attributes;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// One training update of the character model that <c>rnnf train</c> runs by default: a vanilla RNN of 96 hidden
/// units over 53 tokens, a batch of 32 names of similar length (12 characters, 13 steps with the end token), the
/// loss and its gradients, clipping and an Adam step. Also the loss and gradients alone, and forward-only scoring.
/// </summary>
[MemoryDiagnoser]
public class TrainingBenchmarks
{
    private SequenceModel<RnnParameters, Matrix<double>> model = null!;
    private SequenceModel<RnnParameters, Matrix<double>> genericFold = null!;
    private TrainingState<RnnParameters> state = null!;
    private Optimizer<RnnParameters> adam = null!;
    private TokenBatch batch = null!;
    private Matrix<double> zero = null!;

    [GlobalSetup]
    public void Setup()
    {
        const int vocabulary = 53, hidden = 96, size = 32, length = 12;
        var random = RandomState.Seeded(1);
        var items = ImmutableArray.CreateBuilder<ImmutableArray<int>>(size);
        for (var j = 0; j < size; j++)
        {
            var item = new int[length];
            for (var t = 0; t < length; t++)
            {
                (var k, random) = random.NextInt(vocabulary - 1);
                item[t] = k + 1;
            }
            items.Add([.. item]);
        }
        batch = TokenBatch.ForNextToken(items.MoveToImmutable());
        model = LanguageModel.Rnn(vocabulary);
        genericFold = LanguageModel.FromCell(Rnn.Cell, vocabulary, (p, m) => Matrix<double>.Build.Dense(p.HiddenSize, m),
            p => (p.Wya, p.By), (g, dWy, dBy) => g with { Wya = dWy, By = dBy });
        var p = RnnParameters.Initialize(vocabulary, hidden, vocabulary, seed: 1);
        adam = Optimizers.Adam<RnnParameters>(0.006);
        state = new TrainingState<RnnParameters>(p, adam.Init(p));
        zero = Matrix<double>.Build.Dense(hidden, size);
    }

    [Benchmark(Description = "Training.Update (loss, gradients, clip ±5, Adam)")]
    public double Update() => Training.Update(model, adam, Clipping.ByValue(5), state, batch, zero).Loss;

    [Benchmark(Description = "LossAndGradients")]
    public double LossAndGradients() => model.LossAndGradients(state.Parameters, batch, zero).Loss;

    [Benchmark(Description = "LossAndGradients on the generic fold of Rnn.Cell")]
    public double LossAndGradientsGenericFold() => genericFold.LossAndGradients(state.Parameters, batch, zero).Loss;

    [Benchmark(Description = "Evaluate (forward only)")]
    public double Evaluate() => LanguageModel.Evaluate(model, state.Parameters, [batch]).Loss;
}

/// <summary>
/// One update of the character model of <c>rnnf train --layers N</c> (LSTM, 96 hidden units per layer, 27 tokens, a
/// batch of 32 names of 12 characters): one layer is <see cref="LanguageModel.Lstm"/>, more layers are
/// <see cref="LanguageModel.Stack"/>. The ratio of the two updates is the ratio of characters per second.
/// </summary>
[MemoryDiagnoser]
public class StackedLanguageModelBenchmarks
{
    private const int Vocabulary = 27, Hidden = 96;
    private TokenBatch batch = null!;
    private Func<double> update = null!, loss = null!, evaluate = null!;

    /// <summary>Layers; 0 is one layer as a <see cref="LanguageModel.Stack"/>, to compare the stack's path with the cell's own.</summary>
    [Params(0, 1, 2)]
    public int Layers { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        var random = RandomState.Seeded(1);
        var items = ImmutableArray.CreateBuilder<ImmutableArray<int>>(32);
        for (var j = 0; j < 32; j++)
        {
            var item = new int[12];
            for (var t = 0; t < item.Length; t++) (item[t], random) = random.NextInt(Vocabulary);
            items.Add([.. item]);
        }
        batch = TokenBatch.ForNextToken(items.MoveToImmutable());
        if (Layers == 1) Bind(LanguageModel.Lstm(Vocabulary), LstmParameters.Initialize(Vocabulary, Hidden, Vocabulary, 1));
        else
            Bind(LanguageModel.Stack(Vocabulary), StackParameters.Initialize(
                [.. Enumerable.Range(0, Math.Max(1, Layers)).Select(l => Layer.Lstm(l == 0 ? Vocabulary : Hidden, Hidden, 1 + l))], Vocabulary, 1 + Layers));
    }

    private void Bind<TParams, TState>(SequenceModel<TParams, TState> model, TParams p) where TParams : IParameterTree<TParams>
    {
        var adam = Optimizers.Adam<TParams>(0.006);
        var state = new TrainingState<TParams>(p, adam.Init(p));
        var init = model.InitialState(p, batch.Size);
        update = () => Training.Update(model, adam, Clipping.ByValue(5), state, batch, init).Loss;
        loss = () => model.LossAndGradients(p, batch, init).Loss;
        evaluate = () => LanguageModel.Evaluate(model, p, [batch]).Loss;
    }

    [Benchmark(Description = "Training.Update (loss, gradients, clip ±5, Adam)")]
    public double Update() => update();

    [Benchmark(Description = "LossAndGradients")]
    public double LossAndGradients() => loss();

    [Benchmark(Description = "Evaluate (forward only, step by step)")]
    public double Evaluate() => evaluate();
}
