using System.Collections.Immutable;

namespace RnnFunctional.Distributed;

/// <summary>
/// The run's batches as every worker and the reference read them: the items of the corpus file, its vocabulary and
/// the mini-batches of <see cref="Corpus.Epochs(ImmutableArray{ImmutableArray{int}}, int, int, RandomState, int)"/>, each as its full-BPTT window (<see cref="TokenBatch.Windows"/>
/// with k = 0, as <see cref="Training.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, T, IEnumerable{TokenBatch})"/> cuts it).
/// </summary>
public static class RunData
{
    /// <summary>The vocabulary and the windows of the run's batches, lazily, in step order.</summary>
    /// <param name="data">Where the batches come from; the file must have the spec's digest.</param>
    public static (Vocabulary Vocabulary, IEnumerable<TokenBatch> Windows) Load(DataSpec data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var bytes = File.ReadAllBytes(data.Path);
        if (DataSpec.DigestOf(bytes) is var digest && digest != data.Digest)
            throw new InvalidOperationException($"the corpus {data.Path} here has SHA-256 {digest} but the run's corpus has {data.Digest}");
        using var reader = new StreamReader(new MemoryStream(bytes), detectEncodingFromByteOrderMarks: true);
        var items = Corpus.Items(reader.ReadToEnd());
        var vocabulary = Vocabulary.FromItems(items);
        var tokens = items.Select(vocabulary.Encode).ToImmutableArray();
        if (data.HeldOut > 0)
            tokens = [.. Corpus.Split([.. Enumerable.Range(0, tokens.Length)], data.HeldOut, seed: 0).Train.Select(i => tokens[i])];
        return (vocabulary, Corpus.Epochs(tokens, data.BatchSize, data.Epochs, RandomState.Seeded(data.Seed)).Select(b => b.Windows(0)[0]));
    }
}

/// <summary>
/// Where a silo's piece workers read a run's batches: <see cref="RunData.Load"/> of the run's corpus file by default
/// (<see cref="FileRunSource"/>), or a source of the host's own (the command-line worker reads the corpus it was given
/// with the tool's own item rules). A source must refuse a run whose corpus digest is not that of its corpus.
/// </summary>
public interface IRunSource
{
    /// <summary>The vocabulary size and the full-BPTT windows of the run's batches in step order; throws when the run's corpus is not this source's.</summary>
    /// <param name="data">The run's data.</param>
    (int VocabularySize, IEnumerable<TokenBatch> Windows) Load(DataSpec data);
}

/// <summary><see cref="RunData.Load"/>: the run's corpus file read at its path.</summary>
public sealed class FileRunSource : IRunSource
{
    /// <inheritdoc />
    public (int VocabularySize, IEnumerable<TokenBatch> Windows) Load(DataSpec data)
    {
        var (vocabulary, windows) = RunData.Load(data);
        return (vocabulary.Size, windows);
    }
}

/// <summary>
/// One worker's part of the corpus: the pieces of <see cref="Block"/> of every batch of the run, read from the run's
/// corpus file when first needed and kept (the rest of each batch is dropped).
/// </summary>
internal sealed class Shard
{
    private readonly IEnumerator<TokenBatch> batches;
    private readonly List<ImmutableArray<TokenBatch?>> pieces = [];
    private readonly RunSpec run;

    private Shard(RunSpec run, PieceBlock block, IEnumerator<TokenBatch> batches) => (this.run, Block, this.batches) = (run, block, batches);

    /// <summary>Which pieces of each batch this shard holds.</summary>
    public PieceBlock Block { get; }

    /// <summary>Reads the corpus of <paramref name="run"/> from <paramref name="source"/>; its vocabulary must have the model's size.</summary>
    public static Shard Load(RunSpec run, PieceBlock block, IRunSource source)
    {
        if (block.Start < 0 || block.Count < 1 || block.End > run.Pieces)
            throw new ArgumentOutOfRangeException(nameof(block), block, $"expected a block of pieces within [0, {run.Pieces}) but got {block}");
        var (vocabulary, windows) = source.Load(run.Data);
        if (vocabulary != run.Model.Vocabulary)
            throw new InvalidOperationException($"the corpus {run.Data.Path} has a vocabulary of {vocabulary} tokens but run {run.RunId}'s model reads {run.Model.Vocabulary}");
        return new Shard(run, block, windows.GetEnumerator());
    }

    /// <summary>This shard's pieces of the window of step <paramref name="step"/>, in piece order (null for a piece with no column).</summary>
    public ImmutableArray<TokenBatch?> At(int step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        while (pieces.Count <= step)
        {
            if (!batches.MoveNext())
                throw new ArgumentOutOfRangeException(nameof(step), step, $"run {run.RunId} has {pieces.Count} steps but step {step} was asked for");
            pieces.Add(PieceTraining.Cut(batches.Current, run.Pieces)[Block.Start..Block.End]);
        }
        return pieces[step];
    }
}
