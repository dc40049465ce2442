namespace RnnFunctional.Benchmarks;

/// <summary>
/// The peak resident memory of a process that makes one call of W2 at T = 10,000, full or checkpointed: run each in a
/// fresh process (<c>dotnet run -c Release -- memory full</c>, <c>… memory checkpointed</c>). The data alone (inputs,
/// labels and the returned dx) is reported first, so that the difference is the working memory of the call.
/// </summary>
public static class PeakMemory
{
    public static void Run(string mode)
    {
        var w = new Workload(steps: 10_000);
        Console.WriteLine($"after drawing the data: {PeakResidentMegabytes():F0} MB");
        var result = mode == "full"
            ? Rnn.LossAndGradients(w.Rnn, w.Xs, w.A0, w.Labels)
            : Rnn.LossAndGradientsCheckpointed(w.Rnn, w.Xs, w.A0, w.Labels, every: 100);
        Console.WriteLine($"{mode}: loss {result.Loss:R}, peak resident {PeakResidentMegabytes():F0} MB");
    }

    /// <summary>VmHWM of /proc/self/status: the most memory this process has held.</summary>
    private static double PeakResidentMegabytes() =>
        File.ReadLines("/proc/self/status").Where(l => l.StartsWith("VmHWM:")).Select(l => double.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024).Single();
}
