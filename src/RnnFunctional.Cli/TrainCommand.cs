using System.Collections.Immutable;
using System.Globalization;
using LanguageExt;
using LanguageExt.Common;
using RnnFunctional.Distributed;
using Spectre.Console;

namespace RnnFunctional.Cli;

using System.CommandLine;
using System.CommandLine.Parsing;

/// <summary>The options of <c>rnnf train</c>.</summary>
internal sealed record TrainOptions(
    string? Corpus, string Cell, int Hidden, int Layers, string Optimizer, double LearningRate, int Epochs, int BatchSize,
    int Bptt, int Seed, Clipping Clipping, double HeldOut, int Steps, string ModelPath, string PlotPath, int Samples,
    double Temperature, int MaxLength)
{
    /// <summary>P, the pieces of every update (0: one undivided window, as <see cref="Training.Fold{T, TState}(SequenceModel{T, TState}, Optimizer{T}, TrainingOptions, T, IEnumerable{TokenBatch})"/>).</summary>
    public int Pieces { get; init; }

    /// <summary>Number of workers of a data-parallel run, this process among them on loopback (0: train in this process alone).</summary>
    public int Workers { get; init; }

    /// <summary>Where the coordinator listens for workers started by hand (null: start N − 1 here, on loopback).</summary>
    public System.Net.IPEndPoint? Cluster { get; init; }

    /// <summary>The cluster id a worker must have.</summary>
    public string ClusterId { get; init; } = ClusterHosting.DefaultClusterId;

    /// <summary>
    /// The dropout of training (--dropout, --recurrent-dropout); when not given, <see cref="TrainCommand.DefaultDropout"/>
    /// for a stacked model trained in this process, none otherwise (see <see cref="TrainCommand.DropoutDefault"/>).
    /// </summary>
    public Dropout Dropout { get; init; } = Dropout.None;

    /// <summary>The precision of the products of training and evaluation (--precision).</summary>
    public Precision Precision { get; init; } = Precision.Double;

    /// <summary>The model file of the run to continue (--resume; null: a new run).</summary>
    public string? Resume { get; init; }

    /// <summary>The options on the command line (their names), as opposed to those left at their defaults.</summary>
    public ImmutableHashSet<string> Given { get; init; } = [];
}

/// <summary>
/// The corpus prepared for training: vocabulary, split, the items as token lists encoded when read (nothing per item
/// is kept beyond the corpus's own compact store) and the bigram baseline.
/// </summary>
internal sealed record TrainingData(
    CorpusText Corpus, Vocabulary Vocabulary, IReadOnlyList<ImmutableArray<int>> TrainTokens,
    IReadOnlyList<ImmutableArray<int>> HeldOutTokens, Bigram Bigram, double BaselineLoss);

/// <summary>What a training run produced.</summary>
internal sealed record TrainOutcome(
    int Steps, int Epochs, int Tokens, TimeSpan Elapsed, int ParameterCount, string OptimizerName, double TrainLoss, double HeldOutLoss,
    ImmutableArray<double> StepLosses, ImmutableArray<(double Step, double Loss)> HeldOutCurve, ImmutableArray<string> Samples,
    ModelDocument Document);

/// <summary><c>rnnf train</c>: trains a character-level model on a corpus, reports it against a bigram baseline and saves it.</summary>
internal static class TrainCommand
{
    public static readonly ImmutableArray<string> OptimizerNames = ["sgd", "momentum", "adagrad", "rmsprop", "adam"];

    private static readonly Option<string?> CorpusOption = Options.Text("--corpus", "FILE",
        "a regular file of UTF-8 text, one item (name) per line; blank lines and repeats are skipped (default: the embedded dinosaur names)");
    private static readonly Option<string?> CellOption = Options.Choice("--cell", "KIND", $"recurrent cell: {string.Join(", ", Models.Cells)}", "lstm", Models.Cells);
    private static readonly Option<int> HiddenOption = Options.Int("--hidden", "N", "hidden size n_a, in [1, 1024]", DefaultHidden, 1, 1024);
    private static readonly Option<int> LayersOption = Options.Int("--layers", "N", $"stacked recurrent layers, in [1, {Models.MaxLayers}]", DefaultLayers, 1, Models.MaxLayers);
    private static readonly Option<double?> DropoutOption = Options.OptionalNumber("--dropout", "P",
        $"dropout between the layers and on the read-out's input during training, in [0, 0.95] (needs --layers 2 or more; {DropoutDefaultText})", 0, 0.95);
    private static readonly Option<double?> RecurrentDropoutOption = Options.OptionalNumber("--recurrent-dropout", "P",
        $"variational dropout of the recurrent state during training, in [0, 0.95] (needs --layers 2 or more; {DropoutDefaultText})", 0, 0.95);
    private static readonly Option<string?> OptimizerOption = Options.Choice("--optimizer", "NAME", string.Join(", ", OptimizerNames), "adam", OptimizerNames);
    private static readonly Option<double> LearningRateOption = Options.Number("--learning-rate", "X", "step size, in (0, 10]", 0.006, 0, 10, exclusiveMin: true);
    private static readonly Option<int> EpochsOption = Options.Int("--epochs", "N", "passes over the training items, in [1, 10000]", 20, 1, 10000);
    private static readonly Option<int> BatchSizeOption = Options.Int("--batch-size", "N", "items per mini-batch, in [1, 4096]", 32, 1, 4096);
    private static readonly Option<int> BpttOption = Options.Int("--bptt", "K", "truncated back-propagation window in characters (0 = whole items), in [0, 10000]", 0, 0, 10000);
    private static readonly Option<int> SeedOption = Options.Int("--seed", "S", "seed of initialisation, shuffling and sampling", 1, int.MinValue, int.MaxValue);
    private static readonly Option<string> ClipOption = Options.Make("--clip", "RULE",
        "gradient clipping: none, value:L (each entry into ±L) or norm:N (global norm at most N)", "value:5",
        (string text, out string rule) => ParseClip(rule = text) is not null, "none, value:L or norm:N with a number > 0");
    private static readonly Option<double> HeldOutOption = Options.Number("--held-out", "F", "fraction of the items held out for evaluation, in (0, 0.5]", 0.1, 0, 0.5, exclusiveMin: true);
    private static readonly Option<int> StepsOption = Options.Int("--steps", "N", "stop after N updates (0 = run every epoch)", 0, 0, int.MaxValue);
    private static readonly Option<string?> ModelOption = Options.Text("--model", "FILE", "where to write the trained model", "out/model.rnnf");
    private static readonly Option<string?> PlotOption = Options.Text("--plot", "FILE", "where to write the loss curve (PNG)", "out/loss.png");
    private static readonly Option<int> SamplesOption = Options.Int("--samples", "N", "names to sample at the end, in [0, 1000]", 10, 0, 1000);
    private static readonly Option<double> TemperatureOption = Options.Number("--temperature", "T", "sampling temperature, in [0, 10] (0 = always the likeliest character)", 0.8, 0, 10);
    private static readonly Option<int> MaxLengthOption = Options.Int("--max-length", "N", "longest sampled name, in [1, 1000]", 40, 1, 1000);
    private static readonly Option<int> PiecesOption = Options.Int("--pieces", "P",
        $"cut every update's batch into P pieces summed by a fixed tree over them, in [1, 4096]; the bits depend on P, never on the workers (default: no cut, or {DefaultPieces} with --workers)", 0, 1, 4096);
    private static readonly Option<int> WorkersOption = Options.Int("--workers", "N", "train data-parallel on N workers, in [1, 64]: this process and N - 1 worker processes started on loopback, or with --cluster N started by hand (default: train in this process)", 0, 1, 64);
    private static readonly Option<System.Net.IPEndPoint?> ClusterOption = WorkerCommand.Endpoint("--cluster",
        "with --workers: listen on ADDR:PORT and wait for N workers started by hand with 'rnnf worker --cluster ADDR:PORT' (default: compute here and start N - 1 workers on loopback)", null);
    private static readonly Option<string?> PrecisionOption = Options.Choice("--precision", "TYPE",
        "precision of the products of training and evaluation: double, or single (float32 products on double values)", "double", ["double", "single"]);
    private static readonly Option<string?> ClusterIdOption = Options.Text("--cluster-id", "ID", "with --workers: the cluster id the workers must have", ClusterHosting.DefaultClusterId);
    private static readonly Option<string?> ResumeOption = Options.Text("--resume", "FILE",
        "continue the run saved in FILE (a model file of rnnf train) to the same bits as if it had not stopped: its options are the file's, --steps and --epochs count from its start");

    /// <summary>The pieces of a data-parallel run when --pieces is not given.</summary>
    public const int DefaultPieces = 8;

    /// <summary>The hidden size when --hidden is not given.</summary>
    public const int DefaultHidden = 160;

    /// <summary>The number of layers when --layers is not given.</summary>
    public const int DefaultLayers = 2;

    /// <summary>The rate of --dropout and of --recurrent-dropout when not given, for a model they apply to (see <see cref="DropoutDefault"/>).</summary>
    public const double DefaultDropout = 0.2;

    private const string DropoutDefaultText = "default: 0.2 with --layers 2 or more, else 0; 0 with --workers or --pieces";

    /// <summary>
    /// The rate of --dropout or --recurrent-dropout when the option is not given: <see cref="DefaultDropout"/> for a
    /// stacked model trained with undivided updates; 0 for a one-layer model (it trains on its cell's own kernel,
    /// without dropout) and for a run whose updates are cut into pieces (--pieces, and --workers, whose runs are:
    /// pieces train without dropout), so that a default never makes a command line fail.
    /// </summary>
    /// <param name="layers">The number of layers, at least 1.</param>
    /// <param name="pieces">Whether the updates are cut into pieces (--pieces or --workers given).</param>
    public static double DropoutDefault(int layers, bool pieces) =>
        layers < 1 ? throw new ArgumentOutOfRangeException(nameof(layers), layers, "the number of layers must be at least 1")
        : layers >= 2 && !pieces ? DefaultDropout : 0;

    /// <summary>The command <c>rnnf train</c> and its options.</summary>
    public static readonly Command Command = CommandParser.Command("train",
        "Trains a character-level language model on one-item-per-line text (by default the dinosaur names), showing "
        + "progress, then prints the held-out loss per character next to a smoothed character-bigram baseline on the same "
        + "split, samples names, and writes a loss-curve PNG and a checksummed model file. A training whose held-out loss "
        + "becomes non-finite or more than 3 times the initial model's writes nothing and exits with code 3.",
        CorpusOption, CellOption, HiddenOption, LayersOption, DropoutOption, RecurrentDropoutOption, OptimizerOption, LearningRateOption, EpochsOption, BatchSizeOption,
        BpttOption, SeedOption, ClipOption, HeldOutOption, StepsOption, ModelOption, PlotOption, SamplesOption, TemperatureOption, MaxLengthOption,
        PrecisionOption, PiecesOption, WorkersOption, ClusterOption, ClusterIdOption, ResumeOption);

    /// <summary>Parses the options; every problem is reported.</summary>
    public static Validation<Error, TrainOptions> Parse(IReadOnlyList<string> args) => Parse(CommandParser.Parse(Command, args));

    /// <summary>The options of a parse; every problem is reported.</summary>
    public static Validation<Error, TrainOptions> Parse(ParseResult parsed) =>
        CommandParser.Check(parsed, Together(parsed)).Map(r => new TrainOptions(
            r.GetValue(CorpusOption), r.GetRequiredValue(CellOption)!, r.GetValue(HiddenOption), r.GetValue(LayersOption),
            r.GetRequiredValue(OptimizerOption)!, r.GetValue(LearningRateOption), r.GetValue(EpochsOption), r.GetValue(BatchSizeOption),
            r.GetValue(BpttOption), r.GetValue(SeedOption), ParseClip(r.GetRequiredValue(ClipOption))!, r.GetValue(HeldOutOption), r.GetValue(StepsOption),
            r.GetRequiredValue(ModelOption)!, r.GetRequiredValue(PlotOption)!, r.GetValue(SamplesOption), r.GetValue(TemperatureOption),
            r.GetValue(MaxLengthOption))
        {
            Dropout = Rates(r),
            Workers = r.GetValue(WorkersOption),
            Pieces = !Given(r, PiecesOption) ? (r.GetValue(WorkersOption) > 0 ? DefaultPieces : 0) : r.GetValue(PiecesOption),
            Cluster = r.GetValue(ClusterOption),
            ClusterId = r.GetRequiredValue(ClusterIdOption)!,
            Precision = string.Equals(r.GetRequiredValue(PrecisionOption), "single", StringComparison.OrdinalIgnoreCase) ? Precision.Single : Precision.Double,
            Resume = r.GetValue(ResumeOption),
            Given = [.. Command.Options.Where(option => Given(r, option)).Select(option => option.Name)],
        });

    /// <summary>The dropout of a parse: each rate as given, or its default for the layers and workers (<see cref="DropoutDefault"/>).</summary>
    private static Dropout Rates(ParseResult r)
    {
        var fallback = DropoutDefault(r.GetValue(LayersOption), Given(r, WorkersOption) || Given(r, PiecesOption));
        var between = r.GetValue(DropoutOption) ?? fallback;
        return new Dropout(Between: between, Recurrent: r.GetValue(RecurrentDropoutOption) ?? fallback, ReadOut: between);
    }

    /// <summary>Whether the option is on the command line (not only its default).</summary>
    private static bool Given(ParseResult r, Option option) => r.GetResult(option) is { Implicit: false };

    /// <summary>The option's value, or <paramref name="fallback"/> when the value is itself a problem (reported on its own).</summary>
    private static T ValueOr<T>(ParseResult r, Option<T> option, T fallback) =>
        r.Errors.Any(e => e.SymbolResult is OptionResult o && o.Option == option || e.SymbolResult?.Parent is OptionResult p && p.Option == option)
            ? fallback : r.GetValue(option) ?? fallback;

    /// <summary>Options that do not go together.</summary>
    private static IEnumerable<string> Together(ParseResult r)
    {
        var workers = Given(r, WorkersOption);
        if (!workers && Given(r, ClusterOption)) yield return "--cluster needs --workers N (the number of workers to wait for)";
        if (!workers && Given(r, ClusterIdOption)) yield return "--cluster-id needs --workers N";
        // Only rates on the command line: the default rates are 0 wherever dropout cannot apply.
        var dropout = ValueOr(r, DropoutOption, null) > 0 || ValueOr(r, RecurrentDropoutOption, null) > 0;
        if (dropout && ValueOr(r, LayersOption, DefaultLayers) < 2)
            yield return "--dropout and --recurrent-dropout need --layers 2 or more (a one-layer model trains on its cell's own kernel, without dropout)";
        if (workers && dropout) yield return "--workers does not train with --dropout or --recurrent-dropout";
        else if (dropout && Given(r, PiecesOption)) yield return "--pieces does not train with --dropout or --recurrent-dropout (a piece's loss is the model's without dropout)";
        if (workers && string.Equals(ValueOr(r, PrecisionOption, "double"), "single", StringComparison.OrdinalIgnoreCase))
            yield return "--workers trains in double precision (--precision single runs in this process only)";
        if (workers && ValueOr(r, BpttOption, 0) != 0) yield return "--workers needs --bptt 0 (data-parallel training back-propagates through whole items)";
    }

    /// <summary><c>none</c>, <c>value:L</c> or <c>norm:N</c> with a finite L or N &gt; 0; null for any other text.</summary>
    private static Clipping? ParseClip(string text)
    {
        if (text.Equals("none", StringComparison.OrdinalIgnoreCase)) return Clipping.None;
        var parts = text.Split(':');
        if (parts.Length == 2 && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && x > 0 && double.IsFinite(x))
        {
            if (parts[0].Equals("value", StringComparison.OrdinalIgnoreCase)) return Clipping.ByValue(x);
            if (parts[0].Equals("norm", StringComparison.OrdinalIgnoreCase)) return Clipping.ByGlobalNorm(x);
        }
        return null;
    }

    /// <summary>Runs the command: 0 on success, 2 on bad input.</summary>
    public static int Run(IReadOnlyList<string> args, Terminal terminal)
    {
        var parsed = CommandParser.Parse(Command, args);
        if (CommandParser.AsksForHelp(parsed)) return Cli.Help(terminal, parsed);
        ModelDocument? saved = null;
        var result =
            from given in Parse(parsed).ToFin()
            from options in given.Resume is not { } path ? Fin<TrainOptions>.Succ(given)
                : ModelFile.Load(path).Match(Fin<ModelDocument>.Succ, e => Fin<ModelDocument>.Fail(Error.New($"--resume {path}: {e.Message}"))).Bind(document => Resume.Options(saved = document, path, given))
            from outputs in Outputs.Prepare(options)
            from corpus in CorpusSource.Load(options.Corpus, (read, size) => terminal.Heartbeat.Pulse(() => Reading(options.Corpus, read, size)))
            let data = Prepare(corpus, options, terminal.Heartbeat)
            from same in saved is null ? Fin<Unit>.Succ(Unit.Default) : Resume.SameItems(saved, options.Resume!, data)
            let spec = new ModelSpec(options.Cell, options.Hidden, options.Layers, data.Vocabulary) { Dropout = options.Dropout }
            select (options, data, spec);
        return result.Match(r => Train(r.options, r.data, r.spec, saved, terminal), e => Cli.Fail(terminal, "train", e));
    }

    /// <summary>Trains, in this process or on a cluster of workers, and writes what the run produced.</summary>
    private static int Train(TrainOptions options, TrainingData data, ModelSpec spec, ModelDocument? saved, Terminal terminal)
    {
        DataParallel? cluster = null;
        try
        {
            if (options.Workers > options.Pieces && options.Pieces > 0)
                terminal.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"rnnf train: every update is cut into {options.Pieces} piece{(options.Pieces == 1 ? "" : "s")}{(options.Resume is null ? "" : " (the saved run's)")}, so at most {options.Pieces} of the {options.Workers} workers compute"));
            if (options.Workers > 0)
            {
                var started = CliRunSource.DigestOf(options.Corpus).Bind(digest => DataParallel.Start(options, data, digest, terminal));
                if (started.IsFail) return started.Match(_ => 0, e => Cli.Fail(terminal, "train", e));
                cluster = started.Match(c => c, _ => throw new System.Diagnostics.UnreachableException());
            }
            return Compute.With(options.Precision, () => Models.Initialize(spec, options.Seed, new TrainingRun(options, data, terminal, cluster, saved))).Match(
                outcome => Write(options, data, outcome, terminal),
                e => Cli.Fail(terminal, "train", e, e.Code == Cli.Diverged ? Cli.Diverged : Cli.BadInput));
        }
        catch (ClusterFailure e)
        {
            return Cli.Fail(terminal, "train", Error.New(e.Message), Cli.ClusterFailed);
        }
        finally
        {
            cluster?.Dispose();
        }
    }

    private static string Reading(string? path, long read, long size) => string.Create(CultureInfo.InvariantCulture,
        $"reading corpus {path}: {read / 1e6:F1} of {size / 1e6:F1} MB{(size > 0 ? $" ({100.0 * read / size:F0}%)" : "")}");

    private static TrainingData Prepare(CorpusText corpus, TrainOptions options, Heartbeat heartbeat)
    {
        var vocabulary = Vocabulary.FromItems([corpus.Items.Characters]);
        var numbers = System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(Enumerable.Range(0, corpus.Items.Count).ToArray());
        var (train, heldOut) = Corpus.Split(numbers, options.HeldOut, seed: 0);
        var trainTokens = corpus.Items.Encoded(vocabulary, train);
        var heldOutTokens = corpus.Items.Encoded(vocabulary, heldOut);
        var bigram = Bigram.Fit(heartbeat.Track(trainTokens, k => Counted("fitting the bigram baseline", k, train.Length)), vocabulary.Size);
        var (loss, tokens) = bigram.Evaluate(heartbeat.Track(heldOutTokens, k => Counted("evaluating the bigram baseline", k, heldOut.Length)));
        return new(corpus, vocabulary, trainTokens, heldOutTokens, bigram, loss / tokens);
    }

    /// <summary>"what: k of n items".</summary>
    internal static string Counted(string what, long k, long n) => string.Create(CultureInfo.InvariantCulture, $"{what}: {k:N0} of {n:N0} items");

    /// <summary>
    /// How far the held-out loss may rise above the initial model's before the run counts as diverged: a training
    /// that ends (or reaches the end of an epoch) above <c>DivergenceFactor</c> times the held-out loss it started
    /// from has not learnt the corpus but lost it (a learning rate of 10 without clipping ends near 215 nats per
    /// character, against about 4 at the start).
    /// </summary>
    public const double DivergenceFactor = 3;

    /// <summary>A run that diverged: an error whose code is <see cref="Cli.Diverged"/>; nothing is written.</summary>
    private static Error Divergence(string detail) =>
        Error.New(Cli.Diverged, $"training diverged: {detail}; nothing was written (try a smaller --learning-rate or a --clip rule)");

    /// <summary>The training run for one cell type: the fold, its progress, the held-out evaluation and the samples.</summary>
    private sealed class TrainingRun(TrainOptions o, TrainingData data, Terminal terminal, DataParallel? cluster, ModelDocument? saved) : IModelUse<Fin<TrainOutcome>>
    {
        public Fin<TrainOutcome> Use<TParams, TState>(ModelSpec spec, SequenceModel<TParams, TState> model, TParams initial)
            where TParams : IParameterTree<TParams>
        {
            var optimizer = o.Optimizer switch
            {
                "sgd" => Optimizers.Sgd<TParams>(o.LearningRate),
                "momentum" => Optimizers.Momentum<TParams>(o.LearningRate),
                "adagrad" => Optimizers.Adagrad<TParams>(o.LearningRate),
                "rmsprop" => Optimizers.RmsProp<TParams>(o.LearningRate),
                _ => Optimizers.Adam<TParams>(o.LearningRate),
            };
            var batchesPerEpoch = (data.TrainTokens.Count + o.BatchSize - 1) / o.BatchSize;
            var heartbeat = terminal.Heartbeat;
            double HeldOut(TParams p, string what)
            {
                var batches = heartbeat.Track(Corpus.InOrder(data.HeldOutTokens, 256), k => Counted(what, Math.Min(k * 256, data.HeldOutTokens.Count), data.HeldOutTokens.Count));
                var (loss, tokens) = LanguageModel.Evaluate(model, p, batches);
                return loss / tokens;
            }

            var initialHeldOut = saved is null ? HeldOut(initial, "evaluating the initial model on the held-out items") : Resume.InitialHeldOut(saved);
            var limit = DivergenceFactor * initialHeldOut;
            string? Diverged(double heldOut, string when) => double.IsFinite(heldOut) && heldOut <= limit ? null
                : string.Create(CultureInfo.InvariantCulture,
                    $"the held-out loss {when} is {heldOut:G4} nats/char, more than {DivergenceFactor} times the initial model's {initialHeldOut:F4}");

            var totalBatches = o.Steps > 0 ? Math.Min(o.Steps, batchesPerEpoch * o.Epochs) : batchesPerEpoch * o.Epochs;
            var batches = Corpus.Epochs(data.TrainTokens, o.BatchSize, o.Epochs, RandomState.Seeded(o.Seed));
            var resumed = saved is null ? Fin<TrainingCheckpoint<TParams>>.Succ(TrainingCheckpoint<TParams>.Start(optimizer, initial))
                : Resume.Checkpoint(saved, o.Resume!, initial, optimizer, batches, o.Bptt);
            if (resumed.IsFail) return resumed.Match(_ => throw new System.Diagnostics.UnreachableException(), Fin<TrainOutcome>.Fail);
            var checkpoint = resumed.Match(c => c, _ => throw new System.Diagnostics.UnreachableException());
            if (checkpoint.Batch >= batchesPerEpoch * o.Epochs)
                return Fin<TrainOutcome>.Fail(Error.New($"--resume {o.Resume}: the saved run has already taken its {checkpoint.Batch} batches "
                    + $"({o.Epochs} epochs of {batchesPerEpoch}); give more --epochs or --steps to continue it"));
            var history = cluster is not null ? cluster.History(optimizer, o.Clipping, checkpoint, totalBatches)
                : o.Pieces > 0 ? PieceTraining.Fold(model, optimizer, new TrainingOptions(o.Bptt, o.Clipping), o.Pieces, checkpoint, batches)
                : Training.Fold(model, optimizer, new TrainingOptions(o.Bptt, o.Clipping), checkpoint, batches);
            if (o.Steps > 0) history = history.Take(o.Steps - checkpoint.Step);

            var progress = new ProgressView(terminal, totalBatches, batchesPerEpoch, o.Epochs);
            var (losses, curve, tokens) = (ImmutableArray.CreateBuilder<double>(), ImmutableArray.CreateBuilder<(double, double)>(), 0);
            TrainingStep<TParams>? last = null;
            string? diverged = null;
            try
            {
                progress.Run(report =>
                {
                    foreach (var step in history)
                    {
                        if (last is not null && step.Batch != last.Batch && last.Batch % batchesPerEpoch == 0)
                        {
                            var epoch = last.Batch / batchesPerEpoch;
                            curve.Add((last.Step, HeldOut(last.Parameters, $"epoch {epoch}: evaluating the held-out items")));
                            report.Epoch(epoch, last.Step, curve[^1].Item2);
                            diverged = Diverged(curve[^1].Item2, $"after epoch {epoch}");
                            if (diverged is not null) return;
                        }
                        last = step;
                        if (!step.IsFinite) break;
                        losses.Add(step.Loss);
                        tokens += step.Tokens;
                        report.Step(step.Batch, step.Loss, tokens, step.Elapsed);
                    }
                });
            }
            catch (NonFiniteException e)
            {
                return Fin<TrainOutcome>.Fail(Divergence(e.Message.ReplaceLineEndings(" ")));
            }
            if (diverged is not null) return Fin<TrainOutcome>.Fail(Divergence(diverged));
            if (last is null) return Fin<TrainOutcome>.Fail(Error.New("training took no step"));
            if (!last.IsFinite)
                return Fin<TrainOutcome>.Fail(Divergence(string.Create(CultureInfo.InvariantCulture,
                    $"at step {last.Step} the loss is {last.Loss} and the gradient norm {last.GradientNorm}")));

            var final = last.Parameters;
            var heldOut = HeldOut(final, "evaluating the trained model on the held-out items");
            if (Diverged(heldOut, "at the end") is { } end) return Fin<TrainOutcome>.Fail(Divergence(end));
            if (curve.Count == 0 || curve[^1].Item1 != last.Step) curve.Add((last.Step, heldOut));
            progress.Finish(last.Step, (last.Batch + batchesPerEpoch - 1) / batchesPerEpoch, losses.Count > 0 ? losses[^1] : double.NaN, heldOut, tokens, last.Elapsed);
            if (cluster is not null) progress.Workers(cluster.StepTimes);

            var (samples, _) = Sampler.Texts(model, final, data.Vocabulary, o.Samples, new SamplingOptions(o.Temperature, o.MaxLength), RandomState.Seeded(o.Seed));
            var document = Models.Document(spec, final, new Dictionary<string, string>
            {
                ["corpus"] = data.Corpus.Name,
                ["optimizer"] = optimizer.Name,
                ["epochs"] = o.Epochs.ToString(CultureInfo.InvariantCulture),
                ["steps"] = last.Step.ToString(CultureInfo.InvariantCulture),
                ["held-out-loss"] = heldOut.ToString("R", CultureInfo.InvariantCulture),
                ["bigram-loss"] = data.BaselineLoss.ToString("R", CultureInfo.InvariantCulture),
            }.Concat(Resume.Metadata(o, data, last, initialHeldOut))).WithOptimizer(last.State.Optimizer);
            var trainLoss = losses.Skip(Math.Max(0, losses.Count - batchesPerEpoch)).DefaultIfEmpty(double.NaN).Average();
            return Fin<TrainOutcome>.Succ(new TrainOutcome(
                last.Step, (last.Batch + batchesPerEpoch - 1) / batchesPerEpoch, tokens, last.Elapsed, Tree.Count(final), optimizer.Name,
                trainLoss, heldOut, losses.ToImmutable(), curve.ToImmutable(), samples, document));
        }
    }

    /// <summary>
    /// Writes what a finished run produced, the most valuable first: the model, then the loss curve, then the report.
    /// A later failure (the plot path, a closed or full standard output) never costs an earlier result; it is
    /// reported on standard error, with where the model went, and the exit code is 2.
    /// </summary>
    private static int Write(TrainOptions o, TrainingData data, TrainOutcome outcome, Terminal terminal)
    {
        var model = ModelFile.Save(o.ModelPath, outcome.Document);
        if (model.IsFail) return model.Match(_ => 0, e => Cli.Fail(terminal, "train", Error.New($"{e.Message}; the trained model is lost")));
        var plot = OutputFile.WriteAtomically(o.PlotPath, LossPlot.Png(outcome, data.BaselineLoss));
        Report.Summary(terminal, o, data, outcome);
        Report.Written(terminal, o.ModelPath, plot.IsSucc ? o.PlotPath : null);
        var problems = new List<string>();
        plot.IfFail(e => problems.Add($"the loss curve was not written ({e.Message})"));
        if (terminal.Out is GuardedWriter { Failure: { } failure })
            problems.Add($"the report was not shown: cannot write to standard output ({failure.Message})");
        return problems.Count == 0 ? 0 : Cli.Fail(terminal, "train", Error.New($"{string.Join("; ", problems)}; the model was written to {o.ModelPath}"));
    }
}

/// <summary>
/// Output paths, checked before training so that a bad path fails at once rather than after the work: the model
/// and the plot must be different files and neither may be the corpus (symbolic links resolved); their
/// directories are created; each must be writable under the rules of <see cref="OutputFile"/> (a regular file
/// that is not read-only, or a new file in a directory where one can be created).
/// </summary>
internal static class Outputs
{
    public static Fin<Unit> Prepare(TrainOptions o)
    {
        var outputs = new[] { ("--model", o.ModelPath), ("--plot", o.PlotPath) };
        try
        {
            if (OutputFile.Same(o.ModelPath, o.PlotPath))
                return Fin<Unit>.Fail(Error.New($"--model {o.ModelPath} and --plot {o.PlotPath} are the same file; give them different paths"));
            if (o.Corpus is { } corpus && (File.Exists(corpus) || Directory.Exists(corpus)))
                foreach (var (option, path) in outputs)
                    if (OutputFile.Same(corpus, path))
                        return Fin<Unit>.Fail(Error.New($"{option} {path} is the corpus file (--corpus {corpus}); writing it would destroy the corpus"));
            foreach (var (_, path) in outputs)
            {
                if (Directory.Exists(path)) return Fin<Unit>.Fail(Error.New($"output {path} is a directory"));
                var directory = Path.GetDirectoryName(Path.GetFullPath(path));
                if (directory is not null && File.Exists(directory)) return Fin<Unit>.Fail(Error.New($"cannot write {path}: {directory} is a file, not a directory"));
                if (directory is not null) Directory.CreateDirectory(directory);
                var writable = OutputFile.Check(path, probe: true);
                if (writable.IsFail) return writable.Map(_ => Unit.Default);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            return Fin<Unit>.Fail(Error.New($"cannot prepare the output paths: {e.Message}"));
        }
        return Fin<Unit>.Succ(Unit.Default);
    }
}
