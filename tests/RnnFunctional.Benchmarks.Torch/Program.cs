using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

// Run with the private runtime of /work/shared/tools/torch-runtime.sh (see docs/performance.md): only a process
// started that way can load libtorch, so every benchmark runs in process.
// `--short` (this program's own switch) shortens every job to BenchmarkDotNet's ShortRun (1 launch, 3 warm-up and 3
// measured iterations), for a quick check: `--job short` would not, since it adds an out-of-process job next to the
// classes' [InProcess] one instead of shortening it; a mutator job applies to every job, attribute ones included.
// `interchange` (this program's own command) runs InterchangeCheck instead: safetensors files of PyTorch's
// state_dict names exchanged with libtorch modules through TorchSharp.PyBridge, outputs compared to 1e-12.
// `projected` runs ProjectedCheck: the LSTM with a projection against libtorch's torch.lstm op (through TorchScript),
// forward and gradients compared to 1e-12.
if (args is ["interchange"]) return RnnFunctional.Benchmarks.Torch.InterchangeCheck.Run();
if (args is ["projected"]) return RnnFunctional.Benchmarks.Torch.ProjectedCheck.Run();
var quick = args.Contains("--short");
var config = quick ? DefaultConfig.Instance.AddJob(Job.ShortRun.AsMutator()) : null;
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run([.. args.Where(a => a != "--short")], config);
return 0;
