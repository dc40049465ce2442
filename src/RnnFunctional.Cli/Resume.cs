using System.Collections.Immutable;
using System.Globalization;
using System.Security.Cryptography;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

/// <summary>
/// <c>rnnf train --resume FILE</c>: the run whose model file FILE is, continued to the same bits. The file holds, with
/// the parameters, the optimizer's state, the updates and batches taken, every option that shapes the bits and a
/// digest of the training items; the resumed run takes those options from the file (one given with another value is
/// an error naming both), checks that the corpus gives the same items, and goes on from the file's step.
/// </summary>
internal static class Resume
{
    /// <summary>The option behind each metadata key that shapes the bits, in the order errors are reported.</summary>
    private static readonly ImmutableArray<(string Key, string Option)> Shaping =
    [
        ("cell", "--cell"), ("hidden", "--hidden"), ("layers", "--layers"), ("optimizer-kind", "--optimizer"), ("learning-rate", "--learning-rate"),
        ("batch-size", "--batch-size"), ("bptt", "--bptt"), ("seed", "--seed"), ("clip", "--clip"), ("held-out", "--held-out"),
        ("dropout", "--dropout"), ("recurrent-dropout", "--recurrent-dropout"), ("precision", "--precision"), ("pieces", "--pieces"),
    ];

    /// <summary>The metadata a run saves so that it can be continued: its shaping options, the step and batch reached, the items' digest.</summary>
    /// <param name="o">The run's options.</param>
    /// <param name="data">Its training data.</param>
    /// <param name="last">Its last step.</param>
    /// <param name="initialHeldOut">The held-out loss of the run's initial model (the reference of its divergence check).</param>
    public static IEnumerable<KeyValuePair<string, string>> Metadata<T>(TrainOptions o, TrainingData data, TrainingStep<T> last, double initialHeldOut)
        where T : IParameterTree<T> =>
        Canonical(o).Concat(new Dictionary<string, string>
        {
            ["batch"] = Text(last.Batch),
            ["items-digest"] = Digest(data.TrainTokens),
            ["initial-held-out"] = initialHeldOut.ToString("R", CultureInfo.InvariantCulture),
        });

    /// <summary>
    /// The options of a run resumed from <paramref name="document"/>: those that shape the bits and were not given are
    /// the file's; a given one that differs, or an option that cannot continue the saved run, is an error.
    /// </summary>
    /// <param name="document">The saved run's model file.</param>
    /// <param name="path">Its path (for messages).</param>
    /// <param name="o">The command line's options.</param>
    public static Fin<TrainOptions> Options(ModelDocument document, string path, TrainOptions o)
    {
        var file = document.Metadata;
        var missing = Shaping.Select(s => s.Key).Concat(["steps", "batch", "epochs", "items-digest", "initial-held-out", ModelDocument.OptimizerStepKey])
            .Where(key => !file.ContainsKey(key)).ToArray();
        if (missing.Length > 0)
            return Fail($"--resume {path}: the file was not saved by a run that can be continued (it has no {string.Join(", ", missing.Select(k => $"'{k}'"))} entry)");
        if (!int.TryParse(file["steps"], NumberStyles.None, CultureInfo.InvariantCulture, out var step)
            || !int.TryParse(file["batch"], NumberStyles.None, CultureInfo.InvariantCulture, out var batch) || batch > step
            || !double.TryParse(file["initial-held-out"], NumberStyles.Float, CultureInfo.InvariantCulture, out _)
            || file["items-digest"].Length != 64)
            return Fail($"--resume {path}: the file's step, batch, digest or initial loss is malformed");
        // The saved options are checked as a command line's are: a file is read as untrusted input.
        var saved = TrainCommand.Parse([.. Shaping.Where(s => s.Key != "pieces" || file[s.Key] != "0").SelectMany(s => new[] { s.Option, file[s.Key] }),
            "--epochs", file["epochs"]]);                                                            // no --pieces: an undivided update
        if (saved.IsFail)
            return Fail($"--resume {path}: the file's options are not valid: {string.Join("; ", saved.FailToSeq().Map(e => e.Message))}");
        var f = saved.SuccessToSeq().Head();
        var given = Canonical(o);
        var canonical = Canonical(f);
        var problems = Shaping
            .Where(s => o.Given.Contains(s.Option) && given[s.Key] != canonical[s.Key])
            .Select(s => $"{s.Option} {given[s.Key]} differs from the saved run's {canonical[s.Key]}")
            .ToList();
        var resumed = o with
        {
            Cell = f.Cell, Hidden = f.Hidden, Layers = f.Layers, Optimizer = f.Optimizer, LearningRate = f.LearningRate, BatchSize = f.BatchSize,
            Bptt = f.Bptt, Seed = f.Seed, Clipping = f.Clipping, HeldOut = f.HeldOut, Dropout = f.Dropout, Precision = f.Precision,
            // One piece is the undivided update bit for bit, so a run of this process continues on workers with P = 1.
            Pieces = f.Pieces == 0 && o.Workers > 0 ? 1 : f.Pieces,
            Epochs = o.Given.Contains("--epochs") ? o.Epochs : f.Epochs,
        };
        if (o.Given.Contains("--steps") && o.Steps <= step)
            problems.Add($"--steps {o.Steps} is not after the saved run's {step} updates (--steps counts from the start of the run)");
        if (resumed.Workers > 0 && (resumed.Dropout.Between > 0 || resumed.Dropout.Recurrent > 0))
            problems.Add("--workers does not train with dropout, and the saved run trained with it");
        if (resumed.Workers > 0 && resumed.Bptt != 0)
            problems.Add($"--workers needs --bptt 0, and the saved run trained with --bptt {resumed.Bptt}");
        if (resumed.Workers > 0 && resumed.Precision == Precision.Single)
            problems.Add("--workers trains in double precision, and the saved run trained with --precision single");
        if (OutputFile.Same(path, o.PlotPath))
            problems.Add($"--plot {o.PlotPath} is the file to resume from; writing it would destroy the saved run");
        return problems.Count == 0 ? Fin<TrainOptions>.Succ(resumed) : Fail($"--resume {path}: {string.Join("; ", problems)}");
    }

    /// <summary>An error when the corpus does not give the items and vocabulary the saved run trained on.</summary>
    /// <param name="document">The saved run's model file.</param>
    /// <param name="path">Its path.</param>
    /// <param name="data">This run's data.</param>
    public static Fin<Unit> SameItems(ModelDocument document, string path, TrainingData data) =>
        document.Get("vocabulary").Bind(v => v != data.Vocabulary.ToString()
            ? Fin<Unit>.Fail(Error.New($"--resume {path}: the corpus gives another vocabulary than the saved run's (give the --corpus it trained on)"))
            : Digest(data.TrainTokens) != document.Metadata["items-digest"]
                ? Fin<Unit>.Fail(Error.New($"--resume {path}: the corpus gives other training items than the saved run's (give the --corpus and --held-out it trained on)"))
                : Fin<Unit>.Succ(Unit.Default));

    /// <summary>
    /// The saved run's checkpoint, its parameters and optimizer state read into trees shaped like
    /// <paramref name="initial"/>; an error when it is not the end of one of <paramref name="batches"/>.
    /// </summary>
    /// <param name="document">The saved run's model file.</param>
    /// <param name="path">Its path.</param>
    /// <param name="initial">Parameters of the model's structure.</param>
    /// <param name="optimizer">The run's optimizer.</param>
    /// <param name="batches">The run's batches from its first.</param>
    /// <param name="window">The run's BPTT window.</param>
    public static Fin<TrainingCheckpoint<T>> Checkpoint<T>(ModelDocument document, string path, T initial, Optimizer<T> optimizer,
        IEnumerable<TokenBatch> batches, int window) where T : IParameterTree<T>
    {
        var (step, batch) = (int.Parse(document.Metadata["steps"], CultureInfo.InvariantCulture), int.Parse(document.Metadata["batch"], CultureInfo.InvariantCulture));
        var windows = batches.Take(batch).Sum(b => window <= 0 ? 1L : b.Windows(window).Length);
        if (windows != step)
            return Fin<TrainingCheckpoint<T>>.Fail(Error.New(windows > step
                ? $"--resume {path}: the saved run stopped within batch {batch} (after update {step}; the batch ends at update {windows}), and a run continues only from the end of a batch"
                : $"--resume {path}: the saved run's {step} updates are not the windows of its first {batch} batches ({windows})"));
        return from parameters in document.ReadInto(initial)
               from state in document.ReadOptimizerInto(initial, optimizer.Init(initial).Slots.Length)
               select new TrainingCheckpoint<T>(step, batch, new TrainingState<T>(parameters, state));
    }

    /// <summary>The held-out loss of the saved run's initial model.</summary>
    /// <param name="document">The saved run's model file.</param>
    public static double InitialHeldOut(ModelDocument document) => double.Parse(document.Metadata["initial-held-out"], NumberStyles.Float, CultureInfo.InvariantCulture);

    /// <summary>The SHA-256 of the training items, in order, each as its length and tokens (32-bit little-endian), in hexadecimal.</summary>
    /// <param name="items">The encoded training items.</param>
    public static string Digest(IReadOnlyList<ImmutableArray<int>> items)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var word = new byte[4];
        void Add(int x) { System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(word, x); hash.AppendData(word); }
        Add(items.Count);
        foreach (var item in items)
        {
            Add(item.Length);
            foreach (var token in item) Add(token);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>The options that shape the bits, each as the text the file keeps.</summary>
    private static Dictionary<string, string> Canonical(TrainOptions o) => new()
    {
        ["cell"] = o.Cell,
        ["hidden"] = Text(o.Hidden),
        ["layers"] = Text(o.Layers),
        ["optimizer-kind"] = o.Optimizer,
        ["learning-rate"] = o.LearningRate.ToString("R", CultureInfo.InvariantCulture),
        ["batch-size"] = Text(o.BatchSize),
        ["bptt"] = Text(o.Bptt),
        ["seed"] = Text(o.Seed),
        ["clip"] = o.Clipping.Kind switch
        {
            ClippingKind.Value => $"value:{o.Clipping.Threshold.ToString("R", CultureInfo.InvariantCulture)}",
            ClippingKind.GlobalNorm => $"norm:{o.Clipping.Threshold.ToString("R", CultureInfo.InvariantCulture)}",
            _ => "none",
        },
        ["held-out"] = o.HeldOut.ToString("R", CultureInfo.InvariantCulture),
        ["dropout"] = o.Dropout.Between.ToString("R", CultureInfo.InvariantCulture),
        ["recurrent-dropout"] = o.Dropout.Recurrent.ToString("R", CultureInfo.InvariantCulture),
        ["precision"] = o.Precision == Precision.Single ? "single" : "double",
        ["pieces"] = Text(o.Pieces),
    };

    private static string Text(int x) => x.ToString(CultureInfo.InvariantCulture);

    private static Fin<TrainOptions> Fail(string message) => Fin<TrainOptions>.Fail(Error.New(message));
}
