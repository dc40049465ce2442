using System.Globalization;
using BenchmarkDotNet.Running;

if (args is ["memory", var mode]) RnnFunctional.Benchmarks.PeakMemory.Run(mode);
else if (args is ["memory-interchange", var operation, .. var rest])
    return RnnFunctional.Benchmarks.InterchangeMemory.Run(operation, rest is [var limit] ? double.Parse(limit, CultureInfo.InvariantCulture) : null);
else BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
