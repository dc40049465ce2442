using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace RnnFunctional.Cli;

/// <summary>
/// The causes of the first warnings and errors Orleans logs in a silo (each exception's innermost message, on one
/// line), kept so that a join that fails can be explained by its cause: a handshake refused for another cluster id is
/// logged when it happens, while the join itself may fail later with whatever its last attempt met (a connection
/// refused or closed). At most <see cref="Capacity"/> causes are kept. Once <see cref="Echo"/> is set (a worker
/// that has joined), every warning and error is also written there on one line, with its level, category and message,
/// except Orleans' warnings that a grain call held its scheduler for long, which every piece computation gives.
/// </summary>
internal sealed class JoinLog : ILoggerProvider
{
    /// <summary>The most causes kept.</summary>
    public const int Capacity = 256;

    private readonly ConcurrentQueue<string> causes = new();
    private readonly TaskCompletionSource refused = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Where every warning and error is written as it is logged, or null.</summary>
    public TextWriter? Echo { get; set; }

    /// <summary>The causes kept, in the order logged.</summary>
    public IReadOnlyList<string> Causes => [.. causes];

    /// <summary>The first cause that is Orleans' handshake refusing a silo of another cluster id, or null.</summary>
    public string? ClusterIdRefusal => causes.FirstOrDefault(IsClusterIdRefusal);

    /// <summary>Completed when a cause is Orleans' handshake refusing a silo of another cluster id (a refusal that no later attempt can change).</summary>
    public Task Refused => refused.Task;

    private static bool IsClusterIdRefusal(string cause) => cause.Contains("cluster id", StringComparison.OrdinalIgnoreCase);

    private void Add(string cause)
    {
        causes.Enqueue(cause);
        if (IsClusterIdRefusal(cause)) refused.TrySetResult();
    }

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <inheritdoc />
    public void Dispose()
    {
    }

    /// <summary>The category of Orleans' warnings that a grain call held its scheduler for long (every piece computation does), not echoed.</summary>
    private const string LongTurns = "Orleans.Runtime.Scheduler.WorkItemGroup";

    private sealed class Logger(JoinLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning && (log.Echo is not null || log.causes.Count < Capacity);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            if (exception is not null && log.causes.Count < Capacity) log.Add(WorkerCommand.OneLine(exception));
            if (log.Echo is { } echo && (logLevel >= LogLevel.Error || category != LongTurns))
                echo.WriteLine($"rnnf worker: {logLevel} {category}: {formatter(state, exception).ReplaceLineEndings(" ")}"
                    + (exception is null ? "" : $" ({exception.GetType().Name}: {WorkerCommand.OneLine(exception)})"));
        }
    }
}
