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
}
