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
