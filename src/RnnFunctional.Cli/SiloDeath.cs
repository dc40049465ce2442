namespace RnnFunctional.Cli;

/// <summary>
/// The fatal-error handler of a worker's silo. Orleans ends the process (<see cref="Environment.FailFast(string?)"/>,
/// exit code 134 on Linux) when the cluster declares the silo dead, which happens to a live worker whose probes go
/// unanswered for two seconds: under heavy load, a worker still starting up right after it joined. This handler
/// completes <see cref="Declared"/> instead, so that the worker leaves with its silo and joins again as a new one
/// (<see cref="WorkerCommand"/>); any other fatal error ends the process as Orleans' own handler does.
/// </summary>
internal sealed class SiloDeath : IFatalErrorHandler
{
    private readonly TaskCompletionSource<string> declared = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed, with Orleans' reason on one line, when the cluster has declared this silo dead.</summary>
    public Task<string> Declared => declared.Task;

    /// <summary>Whether a fatal error is Orleans' membership telling the silo that it is dead.</summary>
    public static bool IsDeclaredDead(string? context) =>
        context is not null && context.Contains("I have been told I am dead", StringComparison.Ordinal);

    /// <inheritdoc />
    public bool IsUnexpected(Exception exception) => exception is not OperationCanceledException;

    /// <inheritdoc />
    public void OnFatalException(object? sender = null, string? context = null, Exception? exception = null)
    {
        if (IsDeclaredDead(context))
        {
            var reason = context!.ReplaceLineEndings(" ");
            declared.TrySetResult(reason.IndexOf(" Membership: ", StringComparison.Ordinal) is > 0 and var cut ? reason[..cut] : reason);
            return;
        }
        Environment.FailFast($"FATAL EXCEPTION from {sender?.GetType().FullName ?? "null"}. Context: {context ?? "null"}. Exception: {exception?.ToString() ?? "null"}", exception);
    }
}
