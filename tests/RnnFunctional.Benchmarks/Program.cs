using BenchmarkDotNet.Running;

if (args is ["memory", var mode]) RnnFunctional.Benchmarks.PeakMemory.Run(mode);
else BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
