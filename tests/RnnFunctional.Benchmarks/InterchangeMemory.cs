using System.Diagnostics;
using System.Globalization;
using LanguageExt;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// The peak memory of one export or import call of <see cref="InterchangeBenchmarks"/>'s model (9.4 million
/// parameters, 75 MB of doubles), each call in a fresh process:
/// <c>dotnet run -c Release -- memory-interchange OPERATION [LIMIT]</c>, or <c>… memory-interchange all [LIMIT]</c> to
/// run every operation in a child process of its own. The baseline is taken after the model (and, for an import,
/// the file or its bytes) is made and a full compacting collection; the figures are the call's peak above it,
/// its result included:
/// <list type="bullet">
/// <item>managed: the highest managed heap seen (<see cref="GC.GetTotalMemory"/> and the heap size before each
/// collection, <see cref="GCGenerationInfo.SizeBeforeBytes"/>), sampled every millisecond by another thread;</item>
/// <item>resident: VmHWM of /proc/self/status (the most memory the process has held) minus VmRSS at the baseline;</item>
/// <item>with LIMIT (a multiple of the weights' bytes), the GC's hard heap limit is set to the committed bytes at
/// the baseline plus LIMIT × the weights before the call (<see cref="GC.RefreshMemoryLimit"/>): the call must then
/// finish without an <see cref="OutOfMemoryException"/>, whatever garbage the collector would otherwise keep.</item>
/// </list>
/// </summary>
public static class InterchangeMemory
{
    /// <summary>Every operation measured, by name.</summary>
    public static readonly string[] Operations =
    [
        "export-bytes", "export-file", "import-bytes", "import-file", "onnx-bytes", "onnx-file", "own-export-file", "own-import-file",
    ];

    private static readonly TorchLayout Layout = new(TorchCell.Lstm, "lstm", "fc");

    public static int Run(string operation, double? limit)
    {
        if (operation == "all") return RunAll(limit);
        if (!Operations.Contains(operation))
        {
            Console.Error.WriteLine($"unknown operation {operation}: expected one of {string.Join(", ", Operations)} or all");
            return 2;
        }
        var model = StackParameters.Initialize([Layer.Lstm(512, 1024, seed: 1)], 3000, seed: 2);
        var weights = model.ToLeaves().Sum(l => (long)l.Values.Length) * sizeof(double);
        var directory = Directory.CreateTempSubdirectory("rnnf-memory-");
        try
        {
            var (torchFile, ownFile) = (Path.Combine(directory.FullName, "torch.safetensors"), Path.Combine(directory.FullName, "own.safetensors"));
            if (operation.StartsWith("import", StringComparison.Ordinal)) Value(TorchStateDict.Save(torchFile, model, Layout));
            if (operation == "own-import-file") Value(Safetensors.Save(ownFile, SafetensorsFile.OfTree(model)));
            var bytes = operation == "import-bytes" ? File.ReadAllBytes(torchFile) : [];
            Func<object> call = operation switch
            {
                "export-bytes" => () => Value(Safetensors.Serialize(SafetensorsFile.Of(Value(TorchStateDict.FromStack(model, Layout))))),
                "export-file" => () => Value(TorchStateDict.Save(Path.Combine(directory.FullName, "out.safetensors"), model, Layout)),
                "import-bytes" => () => Value(TorchStateDict.ToStack(Value(Safetensors.Read(bytes)).Tensors, Layout)),
                "import-file" => () => Value(TorchStateDict.Load(torchFile, Layout)),
                "onnx-bytes" => () => Value(OnnxExport.Serialize(model)),
                "onnx-file" => () => Value(OnnxExport.Save(Path.Combine(directory.FullName, "out.onnx"), model)),
                "own-export-file" => () => Value(Safetensors.Save(Path.Combine(directory.FullName, "out.safetensors"), SafetensorsFile.OfTree(model))),
                _ => () => Value(Safetensors.LoadInto(ownFile, model)),
            };
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            var (managed, resident, committed) = (GC.GetTotalMemory(false), Status("VmRSS"), GC.GetGCMemoryInfo().TotalCommittedBytes);
            if (limit is { } factor)
            {
                AppContext.SetData("GCHeapHardLimit", (ulong)(committed + factor * weights));
                GC.RefreshMemoryLimit();
            }
            var peak = managed;
            var done = false;
            var sampler = new Thread(() =>
            {
                while (!Volatile.Read(ref done))
                {
                    var info = GC.GetGCMemoryInfo(GCKind.Any);
                    var before = 0L;
                    foreach (var g in info.GenerationInfo) before += g.SizeBeforeBytes;
                    peak = Math.Max(peak, Math.Max(GC.GetTotalMemory(false), info.Index > 0 ? before : 0));
                    Thread.Sleep(1);
                }
            }) { IsBackground = true, Priority = ThreadPriority.AboveNormal };
            sampler.Start();
            var watch = Stopwatch.StartNew();
            object result;
            try
            {
                result = call();
            }
            catch (OutOfMemoryException)
            {
                Console.WriteLine($"{operation}: out of memory under the hard heap limit of the baseline + {limit:F2} × the weights");
                return 1;
            }
            var elapsed = watch.Elapsed;
            Volatile.Write(ref done, true);
            sampler.Join();
            peak = Math.Max(peak, GC.GetTotalMemory(false));
            var residentPeak = Status("VmHWM") - resident;
            GC.KeepAlive(result);
            string Times(long b) => string.Create(CultureInfo.InvariantCulture, $"{b / 1e6,7:F0} MB = {(double)b / weights,4:F2} ×");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{operation,-16} weights {weights / 1e6:F0} MB | peak above baseline: managed {Times(peak - managed)}, resident {Times(residentPeak)} | {elapsed.TotalMilliseconds:F0} ms{(limit is { } f ? $" | within a hard limit of baseline + {f:F2} ×" : "")}"));
            return 0;
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>Each operation in a process of its own (this program started again).</summary>
    private static int RunAll(double? limit)
    {
        var failures = 0;
        foreach (var operation in Operations)
        {
            var start = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") start.ArgumentList.Add(typeof(InterchangeMemory).Assembly.Location);
            foreach (var a in new[] { "memory-interchange", operation }.Concat(limit is { } l ? [l.ToString(CultureInfo.InvariantCulture)] : []))
                start.ArgumentList.Add(a);
            using var child = Process.Start(start)!;
            child.WaitForExit();
            if (child.ExitCode != 0) failures++;
        }
        return failures == 0 ? 0 : 1;
    }

    /// <summary>A size in bytes from /proc/self/status (VmRSS, VmHWM).</summary>
    private static long Status(string field) =>
        File.ReadLines("/proc/self/status").Where(l => l.StartsWith(field + ":", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024).Single();

    private static T Value<T>(Validation<LanguageExt.Common.Error, T> v) =>
        v.Match(x => x, errors => throw new InvalidOperationException(string.Join("; ", errors.Map(e => e.Message))));

    private static T Value<T>(Fin<T> f) => f.Match(x => x, e => throw new InvalidOperationException(e.Message));
}
