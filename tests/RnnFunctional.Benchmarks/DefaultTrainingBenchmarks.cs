using System.Collections.Immutable;
using BenchmarkDotNet.Attributes;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// One training update of the model that <c>rnnf train</c> runs by default: a stack of two LSTM layers of 160 units
/// over 53 tokens with dropout 0.2 between the layers, on the recurrent state and before the read-out, a batch of 32
/// names of 12 characters, clipping at ±5 and an Adam step. Beside it the loss and gradients under the same masks
/// alone and the Adam step alone, so that Update − DropoutLoss is the time of the update outside the model.
/// </summary>
[MemoryDiagnoser]
public class DefaultTrainingBenchmarks
{
    private const int Vocabulary = 53, Hidden = 160;
    private SequenceModel<StackParameters, ImmutableArray<ImmutableArray<MathNet.Numerics.LinearAlgebra.Matrix<double>>>> model = null!;
    private ImmutableArray<ImmutableArray<MathNet.Numerics.LinearAlgebra.Matrix<double>>> init;
    private TrainingState<StackParameters> state = null!;
    private Optimizer<StackParameters> adam = null!;
    private StackParameters gradients = null!;
    private TokenBatch batch = null!;
    private readonly RandomState random = RandomState.Seeded(7).Fork(1);

    [GlobalSetup]
    public void Setup()
    {
        var r = RandomState.Seeded(1);
        var items = ImmutableArray.CreateBuilder<ImmutableArray<int>>(32);
        for (var j = 0; j < 32; j++)
        {
            var item = new int[12];
            for (var t = 0; t < item.Length; t++) (item[t], r) = r.NextInt(Vocabulary);
            items.Add([.. item]);
        }
        batch = TokenBatch.ForNextToken(items.MoveToImmutable());
        model = LanguageModel.Stack(Vocabulary, new Dropout(Between: 0.2, Recurrent: 0.2, ReadOut: 0.2));
        var p = StackParameters.Initialize([Layer.Lstm(Vocabulary, Hidden, 1), Layer.Lstm(Hidden, Hidden, 2)], Vocabulary, 3);
        adam = Optimizers.Adam<StackParameters>(0.006);
        init = model.InitialState(p, batch.Size);
        // The state after one update, so that the Adam step reads slots kept flat, as every update of a run after the first does.
        state = Training.Update(model, adam, Clipping.ByValue(5), new TrainingState<StackParameters>(p, adam.Init(p)), batch, init, random).State;
        gradients = model.DropoutLoss!(state.Parameters, batch, init, random).Gradients;
    }

    [Benchmark(Description = "Training.Update (dropout loss, gradients, clip ±5, Adam)")]
    public double Update() => Training.Update(model, adam, Clipping.ByValue(5), state, batch, init, random).Loss;

    [Benchmark(Description = "DropoutLoss (loss and gradients alone)")]
    public double DropoutLoss() => model.DropoutLoss!(state.Parameters, batch, init, random).Loss;

    [Benchmark(Description = "Adam step alone (Optimizer.Update on trees)")]
    public int Adam() => adam.Update(state.Parameters, gradients, state.Optimizer).State.Step;
}
