using System.Collections.Immutable;
using Xunit;

namespace RnnFunctional.Samples;

public sealed class TrainingSample
{
    [Fact]
    public void CharacterModelTrainsAndSamples()
    {
        #region training
        // A corpus, its vocabulary (token 0 is the end-of-name token) and a deterministic split.
        var names = Corpus.Items("Brachiosaurus\nStegosaurus\nTriceratops\nVelociraptor\nDiplodocus\nIguanodon\n");
        var vocabulary = Vocabulary.FromItems(names);
        var (train, heldOut) = Corpus.Split(names, heldOutFraction: 0.2, seed: 0);
        var encoded = train.Select(vocabulary.Encode).ToImmutableArray();

        // The model is a record of pure functions; the optimizer is a value; the batches are a lazy sequence.
        var model = LanguageModel.Rnn(vocabulary.Size);
        var initial = RnnParameters.Initialize(vocabulary.Size, hiddenSize: 16, vocabulary.Size, seed: 1);
        var batches = Corpus.Epochs(encoded, batchSize: 2, epochs: 40, RandomState.Seeded(1));
        var options = new TrainingOptions(Window: 0, Clipping.ByValue(5));

        // Training is a fold that yields an immutable history: observe it by enumerating it.
        var history = Training.Fold(model, Optimizers.Adam<RnnParameters>(0.01), options, initial, batches);
        var last = history.Aggregate((previous, step) => step);   // or .Where(s => s.Step % 10 == 0) to log progress

        var (perToken, tokens) = LanguageModel.Evaluate(model, last.Parameters, Corpus.InOrder(encoded, 8));
        var (samples, _) = Sampler.Texts(model, last.Parameters, vocabulary, count: 3,
                                         new SamplingOptions(Temperature: 0.8, MaxLength: 20), RandomState.Seeded(7));
        #endregion

        Assert.Equal(40 * 3, last.Step);                     // 5 training names in batches of 2: 3 updates per epoch
        Assert.True(perToken / tokens < 1.0, $"training loss {perToken / tokens} nats per character");
        Assert.Equal(3, samples.Length);
        Assert.Single(heldOut);
    }

    [Fact]
    public void StackTrainsWithDropout()
    {
        var names = Corpus.Items("Brachiosaurus\nStegosaurus\nTriceratops\nVelociraptor\nDiplodocus\nIguanodon\n");
        var vocabulary = Vocabulary.FromItems(names);
        var encoded = names.Select(vocabulary.Encode).ToImmutableArray();
        var v = vocabulary.Size;

        #region dropout
        // Rates are a value: PyTorch's dropout between the layers, dropout of the read-out's input, and variational
        // (Gal and Ghahramani) dropout of the recurrent state, one mask per sequence fixed in time.
        var rates = new Dropout(Between: 0.2, Recurrent: 0.2, ReadOut: 0.2);
        var model = LanguageModel.Stack(v, rates);              // Step and LossAndGradients never drop; DropoutLoss does
        var initial = StackParameters.Initialize([Layer.Lstm(v, 16, seed: 1), Layer.Lstm(16, 16, seed: 2)], v, seed: 3);

        // Update k draws its masks from RandomState.Seeded(Seed).Fork(k): a run is a function of the seed.
        var options = new TrainingOptions(Window: 0, Clipping.ByValue(5)) { Seed = 42 };
        var last = Training.Fold(model, Optimizers.Adam<StackParameters>(0.01), options, initial,
                                 Corpus.Epochs(encoded, batchSize: 3, epochs: 20, RandomState.Seeded(1))).Last();

        // A mask is a value too: the loss of one masked step and its exact gradients, the mask held fixed.
        var xs = ImmutableArray.Create(LanguageModel.OneHot([1, 2, 3], v), LanguageModel.OneHot([2, 3, 1], v));
        var labels = ImmutableArray.Create(ImmutableArray.Create(2, 3, 1), ImmutableArray.Create(0, 0, 0));
        var (mask, next) = rates.Draw(last.Parameters, steps: 2, m: 3, RandomState.Seeded(7));
        var masked = Stack.LossAndGradients(last.Parameters, xs, labels, dropout: mask);
        #endregion

        Assert.True(last.IsFinite);
        Assert.True(double.IsFinite(masked.Loss));
        Assert.NotEqual(RandomState.Seeded(7), next);
    }
}
