using System.Collections.Immutable;
using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// W5: one epoch of what <c>rnnf train</c> runs by default, through the public training fold: the embedded dinosaur
/// names, 10% held out (split seed 0), a batch of 32 names shuffled with seed 1, 96 hidden units, Adam at 0.006,
/// every gradient entry clipped into ±5, whole-name back-propagation. The default cell is the LSTM; the RNN and GRU
/// are the other choices of <c>--cell</c>; <see cref="Layers"/> = 2 is <c>--layers 2</c>. Characters per second are <see cref="Characters"/> over the time per epoch
/// (printed at set-up). Four jobs: the runtime's default garbage collector settings; <c>rnnf</c>'s (the server
/// collector and a large-object threshold of 4 MB: see src/RnnFunctional.Cli/RnnFunctional.Cli.csproj); those with
/// regions of 64 MB; and those with a first-generation budget of 256 MB too (<c>DOTNET_GCgen0size</c>).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
[Config(typeof(Settings))]
public class EpochBenchmarks
{
    private ImmutableArray<ImmutableArray<int>> train;
    private Vocabulary vocabulary = null!;

    [Params("lstm", "rnn", "gru")]
    public string Cell { get; set; } = "lstm";

    /// <summary>Stacked layers, as <c>rnnf train --layers N</c>: one is the cell's own model, more a <see cref="LanguageModel.Stack"/>.</summary>
    [Params(1, 2)]
    public int Layers { get; set; } = 1;

    /// <summary>Next-character targets in one epoch: every training name's characters and its end token.</summary>
    public int Characters { get; private set; }

    [GlobalSetup]
    public void Setup()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("dinos.txt")
            ?? throw new InvalidOperationException("the embedded corpus is missing");
        var items = Corpus.Items(new StreamReader(stream).ReadToEnd());
        vocabulary = Vocabulary.FromItems(items);
        var (names, _) = Corpus.Split(items, 0.1, seed: 0);
        train = [.. names.Select(vocabulary.Encode)];
        Characters = Corpus.Epoch(train, 32, RandomState.Seeded(1)).Batches.Sum(b => b.Tokens);
        Console.WriteLine($"// W5 {Cell}: {train.Length} training names, {Characters} characters per epoch");
    }

    [Benchmark(Description = "W5 one epoch of rnnf train")]
    public double Epoch()
    {
        var v = vocabulary.Size;
        if (Layers > 1)
        {
            // The layers and seeds of rnnf train --layers N (src/RnnFunctional.Cli/Models.cs).
            Func<int, int, int, Layer> layer = Cell switch { "rnn" => (x, h, s) => Layer.Rnn(x, h, s), "gru" => Layer.Gru, _ => Layer.Lstm };
            var layers = Enumerable.Range(0, Layers).Select(l => layer(l == 0 ? v : 96, 96, 1 + l)).ToImmutableArray();
            return Run(LanguageModel.Stack(v), StackParameters.Initialize(layers, v, 1 + Layers));
        }
        return Cell switch
        {
            "rnn" => Run(LanguageModel.Rnn(v), RnnParameters.Initialize(v, 96, v, 1)),
            "gru" => Run(LanguageModel.Gru(v), GruParameters.Initialize(v, 96, v, 1)),
            _ => Run(LanguageModel.Lstm(v), LstmParameters.Initialize(v, 96, v, 1)),
        };
    }

    private double Run<TParams, TState>(SequenceModel<TParams, TState> model, TParams initial) where TParams : IParameterTree<TParams> =>
        Training.Fold(model, Optimizers.Adam<TParams>(0.006), new TrainingOptions(0, Clipping.ByValue(5)), initial,
            Corpus.Epochs(train, 32, 1, RandomState.Seeded(1))).Last().Loss;

    private sealed class Settings : ManualConfig
    {
        public Settings()
        {
            var job = Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(9);
            AddJob(job.WithId("default GC"));
            // rnnf's settings (the server collector, a large-object threshold of 4 MB); then with regions of 64 MB,
            // then also with the first generation's budget raised to 256 MB (which only the environment can set).
            EnvironmentVariable[] rnnf = [new("DOTNET_gcServer", "1"), new("DOTNET_GCLOHThreshold", "0x400000")];
            AddJob(job.WithEnvironmentVariables(rnnf).WithId("rnnf GC"));
            AddJob(job.WithEnvironmentVariables([.. rnnf, new("DOTNET_GCRegionSize", "0x4000000")]).WithId("64 MB regions"));
            AddJob(job.WithEnvironmentVariables([.. rnnf, new("DOTNET_GCRegionSize", "0x4000000"), new("DOTNET_GCgen0size", "0x10000000")])
                .WithId("and gen0 256 MB"));
        }
    }
}
