using BenchmarkDotNet.Running;

if (args is ["memory", var mode]) RnnFunctional.Benchmarks.PeakMemory.Run(mode);
else if (args is ["loop", var which]) RnnFunctional.Benchmarks.Profile.Loop(which);
else if (args is ["profile"]) RnnFunctional.Benchmarks.Profile.Run();
else BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
