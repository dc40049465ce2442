using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using RnnFunctional.Kernels;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// A product <c>C = op(A)·op(B)</c> of the sizes met in an RNN with batch 32, 64 inputs, 128 hidden units,
/// 64 outputs and 100 time steps (3200 = 32·100 columns when all steps are stacked). The name gives the
/// transposes of A and B (N or T) and m, n, k: W·X is NN m128 n32 k128, Wᵀ·dZ is TN m128 n32 k128, a weight
/// gradient dZ·Xᵀ over all steps is NT m128 n64 k3200. The wide layers' per-step recurrent products (n_a = 512, batch
/// 32: the RNN's m512, the LSTM's m2048) are there with A's leading dimension as stored (lda = m, columns 4 KB apart) and
/// padded by 8 rows as the driver stores it (the name ends in +8).
/// </summary>
public sealed record GemmShape(string Name, bool TransA, bool TransB, int M, int N, int K, int Pad = 0)
{
    /// <summary>The leading dimension of A.</summary>
    public int Lda => (TransA ? K : M) + Pad;

    /// <summary>Floating-point operations of one product: a multiply and an add per term.</summary>
    public double Flops => 2.0 * M * N * K;

    public override string ToString() => Name;
}

/// <summary>Time of <see cref="Gemm.Multiply(SimdPath, bool, bool, int, int, int, double, ReadOnlySpan{double}, int, ReadOnlySpan{double}, int, double, Span{double}, int)"/> per shape and accelerated path, with a GFLOP/s column.</summary>
[Config(typeof(GflopsConfig))]
public class GemmBenchmarks
{
    private double[] a = [];
    private double[] b = [];
    private double[] c = [];
    private SimdPath path;

    public static IEnumerable<GemmShape> Shapes =>
    [
        new("NN m128 n32 k128", false, false, 128, 32, 128),
        new("TN m128 n32 k128", true, false, 128, 32, 128),
        new("NN m128 n3200 k64", false, false, 128, 3200, 64),
        new("NN m128 n3200 k128", false, false, 128, 3200, 128),
        new("NT m128 n64 k3200", false, true, 128, 64, 3200),
        new("NT m128 n128 k3200", false, true, 128, 128, 3200),
        new("NN m512 n32 k512", false, false, 512, 32, 512),
        new("NN m512 n32 k512+8", false, false, 512, 32, 512, 8),
        new("NN m2048 n32 k512", false, false, 2048, 32, 512),
        new("NN m2048 n32 k512+8", false, false, 2048, 32, 512, 8),
    ];

    public static IEnumerable<string> Paths => Enum.GetValues<SimdPath>().Where(Gemm.IsAccelerated).Select(p => p.ToString());

    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; } = null!;

    [ParamsSource(nameof(Paths))]
    public string Path { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        a = RandomMatrix(random, Shape.Lda * (Shape.TransA ? Shape.M : Shape.K));
        b = RandomMatrix(random, Shape.K * Shape.N);
        c = new double[Shape.M * Shape.N];
        path = Enum.Parse<SimdPath>(Path);
    }

    [Benchmark]
    public void Multiply() =>
        Gemm.Multiply(path, Shape.TransA, Shape.TransB, Shape.M, Shape.N, Shape.K, 1.0,
            a, Shape.Lda, b, Shape.TransB ? Shape.N : Shape.K, 0.0, c, Shape.M);

    private static double[] RandomMatrix(Random random, int length)
    {
        var values = new double[length];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = random.NextDouble() - 0.5;
        }

        return values;
    }

    private sealed class GflopsConfig : ManualConfig
    {
        public GflopsConfig() => AddColumn(new GflopsColumn());
    }

    /// <summary>Throughput of a case: 2·m·n·k floating-point operations over the mean time.</summary>
    private sealed class GflopsColumn : IColumn
    {
        public string Id => nameof(GflopsColumn);

        public string ColumnName => "GFLOP/s";

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Custom;

        public int PriorityInCategory => 0;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Dimensionless;

        public string Legend => "Billions of floating-point operations per second (2·m·n·k / mean time)";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
            GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) =>
            summary[benchmarkCase]?.ResultStatistics is { } statistics
            && benchmarkCase.Parameters["Shape"] is GemmShape shape
                ? (shape.Flops / statistics.Mean).ToString("F1", CultureInfo.InvariantCulture)
                : "NA";

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public bool IsAvailable(Summary summary) => true;
    }
}
