using System.Collections.Immutable;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using LanguageExt;
using LanguageExt.Common;
using Microsoft.Extensions.Hosting;
using RnnFunctional.Distributed;

namespace RnnFunctional.Cli;

using System.CommandLine;

/// <summary>The options of <c>rnnf worker</c>.</summary>
internal sealed record WorkerOptions(string? Corpus, IPEndPoint Cluster, IPEndPoint? Listen, string ClusterId, int Parent);

/// <summary>
/// <c>rnnf worker</c>: a silo that joins the cluster of a <c>rnnf train --workers N</c> and computes the pieces the
/// coordinator places on it, reading its shard from its own corpus file. It ends when the coordinator ends or cannot
/// be reached for three seconds, or when its parent process (<c>--parent</c>) ends. A worker whose silo the cluster
/// declares dead (<see cref="SiloDeath"/>) leaves with it and joins again as a new silo, up to
/// <see cref="MaxRejoins"/> times.
/// </summary>
internal static partial class WorkerCommand
{
    private static readonly Option<string?> CorpusOption = Options.Text("--corpus", "FILE",
        "the corpus of the run, the same bytes as the trainer's (default: the embedded dinosaur names)");
    private static readonly Option<IPEndPoint?> ClusterOption = Endpoint("--cluster", "the address and port the coordinator (rnnf train --workers) listens on", null);
    private static readonly Option<IPEndPoint?> ListenOption = Endpoint("--listen", "the address and port this worker listens on (default: the --cluster address, a free port)", null);
    private static readonly Option<string?> ClusterIdOption = Options.Text("--cluster-id", "ID", "the cluster id of the run; a worker of another id is refused", ClusterHosting.DefaultClusterId);
    private static readonly Option<int> ParentOption = Options.Int("--parent", "PID", "end when the process PID ends (0 = no parent)", 0, 0, int.MaxValue);

    /// <summary>An "ADDR:PORT" option.</summary>
    public static Option<IPEndPoint?> Endpoint(string name, string description, IPEndPoint? fallback) =>
        Options.Make(name, "ADDR:PORT", description, fallback, (string text, out IPEndPoint? v) => (v = ClusterHosting.ParseEndpoint(text)) is not null,
            "an IP address and a port, e.g. 127.0.0.1:11111");

    /// <summary>The command <c>rnnf worker</c> and its options.</summary>
    public static readonly Command Command = CommandParser.Command("worker",
        "Joins the cluster of a data-parallel 'rnnf train --workers N --cluster ADDR:PORT' and computes the pieces of its "
        + "steps placed on it. It listens only on the --listen address, refuses a run whose corpus is not its own, and ends "
        + "when the coordinator ends.",
        CorpusOption, ClusterOption, ListenOption, ClusterIdOption, ParentOption);

    /// <summary>Parses the options; every problem is reported.</summary>
    public static Validation<Error, WorkerOptions> Parse(IReadOnlyList<string> args)
    {
        var parsed = CommandParser.Parse(Command, args);
        var more = parsed.GetResult(ClusterOption) is null ? ["option --cluster is required (ADDR:PORT of the coordinator)"] : Array.Empty<string>();
        return CommandParser.Check(parsed, more).Map(r => new WorkerOptions(r.GetValue(CorpusOption), r.GetValue(ClusterOption)!, r.GetValue(ListenOption),
            r.GetRequiredValue(ClusterIdOption)!, r.GetValue(ParentOption)));
    }

    /// <summary>Runs the worker until its coordinator or parent ends: 0 then, 2 on bad input or when the cluster cannot be joined.</summary>
    public static int Run(IReadOnlyList<string> args, Terminal terminal)
    {
        var parsed = CommandParser.Parse(Command, args);
        if (CommandParser.AsksForHelp(parsed)) return Cli.Help(terminal, parsed);
        var options = Parse(args).ToFin();
        if (options.IsFail) return options.Match(_ => 0, e => Cli.Fail(terminal, "worker", e));
        var o = options.Match(x => x, _ => throw new UnreachableException());
        var source = CliRunSource.Of(o.Corpus).Map(s => s.Telling(terminal.Error));
        if (source.IsFail) return source.Match(_ => 0, e => Cli.Fail(terminal, "worker", e));
        var listen = o.Listen ?? new IPEndPoint(o.Cluster.Address, 0);
        try
        {
            if (listen.Port == 0) listen = new IPEndPoint(listen.Address, ClusterHosting.FreePort(listen.Address));
        }
        catch (SocketException e)
        {
            return Cli.Fail(terminal, "worker", Error.New($"--listen {listen.Address}: cannot listen on that address ({e.Message})"));
        }
        var corpus = source.Match(s => s, _ => throw new UnreachableException());
        for (var joins = 0; ; joins++)
        {
            if (Serve(o, listen, corpus, terminal, joins) is { } code) return code;
            // Declared dead: join again as a new silo, on the port given or on a new free one.
            if (o.Listen is not { Port: > 0 }) listen = new IPEndPoint(listen.Address, ClusterHosting.FreePort(listen.Address));
        }
    }

    /// <summary>How many times a worker that the cluster declared dead joins it again as a new silo before it gives up.</summary>
    public const int MaxRejoins = 5;

    /// <summary>
    /// Joins the cluster as a new silo and computes pieces until the coordinator or the parent ends (0), or the join
    /// fails (2); null when the cluster declared this silo dead and it is to join again (at most
    /// <see cref="MaxRejoins"/> times, then 2).
    /// </summary>
    private static int? Serve(WorkerOptions o, IPEndPoint listen, CliRunSource source, Terminal terminal, int joins)
    {
        var log = new JoinLog();
        var death = new SiloDeath();
        using var host = ClusterHosting.Build(listen, o.Cluster, o.ClusterId, source, log, death);
        using var giveUp = new CancellationTokenSource();
        var start = host.StartAsync(giveUp.Token);
        try
        {
            // A handshake refused for another cluster id is final: the join is given up at once rather than retried.
            var first = Task.WaitAny(start, log.Refused, death.Declared);
            if (first == 1 && !start.IsCompleted)
            {
                giveUp.Cancel();
                throw new OperationCanceledException("the cluster refused this worker's cluster id");
            }
            if (first == 2 && !start.IsCompleted) giveUp.Cancel();
            else start.GetAwaiter().GetResult();
        }
        catch (Exception e) when (!death.Declared.IsCompleted)
        {
            var joining = $"cannot join cluster '{o.ClusterId}' at --cluster {o.Cluster} from {listen}";
            return Cli.Fail(terminal, "worker", Error.New(log.ClusterIdRefusal is { } refusal
                ? $"{joining}: the silo there belongs to another cluster ({refusal}); give this worker the run's --cluster-id"
                : $"{joining} (is the coordinator running there, with this --cluster-id?): {OneLine(e)}"));
        }
        catch (Exception)
        {
            // Declared dead while joining: handled below.
        }
        if (!death.Declared.IsCompleted)
        {
            terminal.Error.WriteLine($"rnnf worker: listening on {listen}, joined cluster '{o.ClusterId}' at {o.Cluster}{(joins > 0 ? $" (join {joins + 1})" : "")}");
            log.Echo = terminal.Error;
        }
        var reason = WaitForEnd(o, death.Declared);
        if (reason is null)
        {
            var said = $"rnnf worker: the cluster declared this silo ({listen}) dead: {death.Declared.Result}";
            Stop(host);
            if (joins >= MaxRejoins)
                return Cli.Fail(terminal, "worker", Error.New($"the cluster at --cluster {o.Cluster} declared this worker dead {joins + 1} times; giving up"));
            terminal.Error.WriteLine($"{said}; joining again as a new silo");
            return null;
        }
        terminal.Error.WriteLine($"rnnf worker: {reason}; leaving");
        Stop(host);
        return 0;
    }

    /// <summary>Stops a silo, giving up after 2 s (its cluster may be gone).</summary>
    private static void Stop(IHost host)
    {
        try
        {
            host.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(2)).Token).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The coordinator is gone, or the silo is dead; there is nobody to say goodbye to.
        }
    }

    /// <summary>
    /// Blocks until the parent process ends or the coordinator's port stops answering three times in a row, and says
    /// which; null as soon as <paramref name="declaredDead"/> completes.
    /// </summary>
    private static string? WaitForEnd(WorkerOptions o, Task declaredDead)
    {
        for (var missed = 0; ;)
        {
            if (declaredDead.Wait(1000)) return null;
            if (o.Parent > 0 && !Alive(o.Parent)) return $"the parent process {o.Parent} has ended";
            missed = Answers(o.Cluster) ? 0 : missed + 1;
            if (missed >= 3) return $"the coordinator at {o.Cluster} has not answered for 3 s";
        }
    }

    private static bool Alive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static bool Answers(IPEndPoint endpoint)
    {
        try
        {
            using var client = new TcpClient(endpoint.AddressFamily);
            return client.ConnectAsync(endpoint.Address, endpoint.Port).Wait(TimeSpan.FromSeconds(1));
        }
        catch (Exception e) when (e is SocketException or AggregateException)
        {
            return false;
        }
    }

    /// <summary>
    /// The innermost message of an exception, on one line. Orleans puts the text of the cause (its type, message and
    /// stack trace) in its own messages: the last cause's message is kept, without its type name and stack trace.
    /// </summary>
    public static string OneLine(Exception e)
    {
        ArgumentNullException.ThrowIfNull(e);
        while (e.InnerException is { } inner) e = inner;
        var message = e.Message.ReplaceLineEndings(" ");
        if (message.LastIndexOf("---> ", StringComparison.Ordinal) is >= 0 and var cause) message = message[(cause + 5)..];
        if (message.IndexOf("   at ", StringComparison.Ordinal) is > 0 and var stack) message = message[..stack];
        return ExceptionType().Replace(message.Trim(), "");
    }

    /// <summary>"Namespace.SomeException: " at the start of a message.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"^(?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*Exception: ")]
    private static partial System.Text.RegularExpressions.Regex ExceptionType();
}

/// <summary>
/// A worker's batches as <c>rnnf train</c> makes them: the tool's corpus (its distinct non-blank lines), vocabulary and
/// held-out split, and the run's mini-batches; a run whose corpus digest is not this corpus's is refused. Each shard
/// read (a block of a run placed on this worker for the first time) is told to <paramref name="told"/> when one is given.
/// </summary>
internal sealed class CliRunSource(CorpusText corpus, string digest, TextWriter? told = null) : IRunSource
{
    /// <summary>This source, telling each shard it reads to <paramref name="writer"/> in one line.</summary>
    public CliRunSource Telling(TextWriter writer) => new(corpus, digest, writer);

    /// <summary>The SHA-256 of the corpus's bytes (those of the embedded corpus when <c>--corpus</c> is not given).</summary>
    public string Digest => digest;

    /// <summary>The source of a corpus file, or of the embedded corpus.</summary>
    public static Fin<CliRunSource> Of(string? path) =>
        from corpus in CorpusSource.Load(path)
        from digest in DigestOf(path)
        select new CliRunSource(corpus, digest);

    /// <summary>The SHA-256 of a corpus file's bytes, or of the embedded corpus's.</summary>
    public static Fin<string> DigestOf(string? path)
    {
        try
        {
            using var stream = path is null ? typeof(CorpusSource).Assembly.GetManifestResourceStream("dinos.txt")! : File.OpenRead(path);
            return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fin<string>.Fail(Error.New($"cannot read --corpus {path}: {e.Message}"));
        }
    }

    /// <inheritdoc />
    public (int VocabularySize, IEnumerable<TokenBatch> Windows) Load(DataSpec data)
    {
        if (data.Digest != digest)
            throw new InvalidOperationException($"refused: this worker's corpus {corpus.Name} has SHA-256 {digest[..12]}… but the run's corpus {data.Path} has {data.Digest[..Math.Min(12, data.Digest.Length)]}…");
        told?.WriteLine($"rnnf worker: a block of the run on {data.Path} was placed here; reading its shard of {corpus.Name}");
        var vocabulary = Vocabulary.FromItems([corpus.Items.Characters]);
        var numbers = System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(Enumerable.Range(0, corpus.Items.Count).ToArray());
        var train = Corpus.Split(numbers, data.HeldOut, seed: 0).Train;
        var tokens = corpus.Items.Encoded(vocabulary, train);
        return (vocabulary.Size, Corpus.Epochs(tokens, data.BatchSize, data.Epochs, RandomState.Seeded(data.Seed)).Select(b => b.Windows(0)[0]));
    }
}
