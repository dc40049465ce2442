using BenchmarkDotNet.Running;

// Run with the private runtime of /work/shared/tools/torch-runtime.sh (see docs/performance.md): only a process
// started that way can load libtorch, so every benchmark runs in process.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
