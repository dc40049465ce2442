using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnFunctional.Kernels;
using Xunit.Abstractions;

namespace RnnFunctional.Tests;

/// <summary>
/// Every accelerated path of <see cref="Gemm"/> against a reference triple loop, with padded leading
/// dimensions whose padding holds NaN: a path that lets padding reach the result, or writes outside the m×n block
/// of C, fails.
/// </summary>
public sealed class GemmTests(ITestOutputHelper output)
{
    private const double RelativeTolerance = 1e-12;

    internal static readonly SimdPath[] AcceleratedPaths = Enum.GetValues<SimdPath>().Where(Gemm.IsAccelerated).ToArray();

    /// <summary>Filler of matrix padding and of C when beta is zero; a NaN with a payload that arithmetic does not produce.</summary>
    internal static readonly double Poison = BitConverter.Int64BitsToDouble(0x7FF8_0000_DEAD_BEEF);

    [Fact]
    public void BestPathIsTheWidestAcceleratedPathAndScalarIsAlwaysAvailable()
    {
        output.WriteLine($"Accelerated paths: {string.Join(", ", AcceleratedPaths)}; best: {Gemm.BestPath}");
        Assert.Contains(SimdPath.Scalar, AcceleratedPaths);
        Assert.Equal(AcceleratedPaths.Max(), Gemm.BestPath);
    }

    [Property(MaxTest = 200)]
    public Property EveryAcceleratedPathMatchesTheReferenceOnSmallPaddedShapes() =>
        Prop.ForAll(Cases(maxDimension: 70, maxPadding: 5).ToArbitrary(), AssertMatchesReference);

    [Property(MaxTest = 12)]
    public Property EveryAcceleratedPathMatchesTheReferenceOnShapesSpanningSeveralBlocks() =>
        Prop.ForAll(Cases(maxDimension: 300, maxPadding: 3).ToArbitrary(), AssertMatchesReference);

    [Property(MaxTest = 50)]
    public Property RepeatedCallsAreBitwiseIdenticalWhateverRanInBetween() =>
        Prop.ForAll(Cases(maxDimension: 70, maxPadding: 2).ToArbitrary(), g =>
        {
            double[] first = Run(g);
            DirtyScratch(g.Path);
            double[] second = Run(g);
            Assert.Equal(Bits(first), Bits(second));
        });

    /// <summary>
    /// The sequence kernels multiply many time steps at once and rely on each column of C having the same bits as in
    /// a product of that column alone.
    /// </summary>
    [Property(MaxTest = 60)]
    public Property EachColumnHasTheBitsOfTheProductOfThatColumnAlone() =>
        Prop.ForAll(Cases(maxDimension: 300, maxPadding: 2).ToArbitrary(), Gen.Choose(0, 1000).ToArbitrary(), (g, pick) =>
        {
            if (g.N == 0) return;
            double[] whole = Run(g);
            int j = pick % g.N;
            double[] column = (double[])g.C.Clone();
            int bOffset = g.TransB ? j : j * g.Ldb;
            Gemm.Multiply(g.Path, g.TransA, g.TransB, g.M, 1, g.K, g.Alpha, g.A, g.Lda, g.B.AsSpan(bOffset), g.Ldb,
                g.Beta, column.AsSpan(j * g.Ldc), g.Ldc);
            Assert.Equal(Bits(whole.AsSpan(j * g.Ldc, g.M).ToArray()), Bits(column.AsSpan(j * g.Ldc, g.M).ToArray()));
        });

    [Fact]
    public void ProductsWiderThanOneColumnPanelAndDeeperThanOneDepthPanelMatchTheReference()
    {
        var random = new Random(7);
        foreach (SimdPath path in AcceleratedPaths)
        {
            foreach ((bool transA, bool transB) in TransposeCombinations)
            {
                AssertMatchesReference(RandomCase(random, path, transA, transB, m: 37, n: 1100, k: 300, alpha: 0.75, beta: -1.25));
            }
        }
    }

    [Fact]
    public void ZeroDepthOrZeroAlphaScalesCByBetaAndZeroBetaClearsNaN()
    {
        var random = new Random(11);
        foreach (SimdPath path in AcceleratedPaths)
        {
            foreach ((bool transA, bool transB) in TransposeCombinations)
            {
                foreach (double beta in new[] { 0.0, 1.0, -2.5 })
                {
                    AssertMatchesReference(RandomCase(random, path, transA, transB, m: 9, n: 5, k: 0, alpha: 1.5, beta));
                    AssertMatchesReference(RandomCase(random, path, transA, transB, m: 9, n: 5, k: 4, alpha: 0.0, beta));
                }
            }
        }
    }

    private static readonly (bool TransA, bool TransB)[] TransposeCombinations =
        [(false, false), (false, true), (true, false), (true, true)];

    /// <summary>
    /// A product to check: A, B and C are stored with their leading dimensions, NaN in the padding rows and in
    /// one extra column; C is all NaN when <see cref="Beta"/> is zero.
    /// </summary>
    internal sealed record GemmCase(SimdPath Path, bool TransA, bool TransB, int M, int N, int K,
        double Alpha, double Beta, double[] A, int Lda, double[] B, int Ldb, double[] C, int Ldc)
    {
        public double OpA(int i, int p) => TransA ? A[p + (i * Lda)] : A[i + (p * Lda)];

        public double OpB(int p, int j) => TransB ? B[j + (p * Ldb)] : B[p + (j * Ldb)];

        public override string ToString() =>
            $"{Path} transA={TransA} transB={TransB} m={M} n={N} k={K} lda={Lda} ldb={Ldb} ldc={Ldc} alpha={Alpha} beta={Beta}";
    }

    internal static Gen<GemmCase> Cases(int maxDimension, int maxPadding) =>
        from path in Gen.Elements(AcceleratedPaths)
        from transA in Gen.Elements(false, true)
        from transB in Gen.Elements(false, true)
        from m in Gen.Choose(0, maxDimension)
        from n in Gen.Choose(0, maxDimension)
        from k in Gen.Choose(0, maxDimension)
        from padA in Gen.Choose(0, maxPadding)
        from padB in Gen.Choose(0, maxPadding)
        from padC in Gen.Choose(0, maxPadding)
        from alpha in Gen.OneOf(Gen.Constant(1.0), Gen.Constant(-1.0), Scalars)
        from beta in Gen.OneOf(Gen.Constant(0.0), Gen.Constant(1.0), Scalars)
        let rowsA = transA ? k : m
        let colsA = transA ? m : k
        let rowsB = transB ? n : k
        let colsB = transB ? k : n
        from a in Gen.ArrayOf(Entries, rowsA * colsA)
        from b in Gen.ArrayOf(Entries, rowsB * colsB)
        from c in Gen.ArrayOf(Entries, m * n)
        select new GemmCase(path, transA, transB, m, n, k, alpha, beta,
            Store(a, rowsA, colsA, Math.Max(1, rowsA) + padA), Math.Max(1, rowsA) + padA,
            Store(b, rowsB, colsB, Math.Max(1, rowsB) + padB), Math.Max(1, rowsB) + padB,
            Store(beta == 0 ? [] : c, m, n, Math.Max(1, m) + padC), Math.Max(1, m) + padC);

    /// <summary>Entries in [-10, 10] with two decimals, so products round.</summary>
    internal static Gen<double> Entries => Gen.Choose(-1000, 1000).Select(i => i / 100.0);

    private static Gen<double> Scalars => Gen.Choose(-300, 300).Select(i => i / 100.0);

    internal static GemmCase RandomCase(Random random, SimdPath path, bool transA, bool transB, int m, int n, int k,
        double alpha, double beta)
    {
        int rowsA = transA ? k : m, colsA = transA ? m : k, rowsB = transB ? n : k, colsB = transB ? k : n;
        double[] Values(int count) => Enumerable.Range(0, count).Select(_ => random.Next(-1000, 1001) / 100.0).ToArray();
        return new GemmCase(path, transA, transB, m, n, k, alpha, beta,
            Store(Values(rowsA * colsA), rowsA, colsA, rowsA + 3), rowsA + 3,
            Store(Values(rowsB * colsB), rowsB, colsB, rowsB + 1), rowsB + 1,
            Store(beta == 0 ? [] : Values(m * n), m, n, m + 2), m + 2);
    }

    /// <summary>
    /// Column-major storage of <paramref name="values"/> (or of NaN when empty) with leading dimension
    /// <paramref name="ld"/>, NaN padding rows and one extra NaN column.
    /// </summary>
    internal static double[] Store(double[] values, int rows, int cols, int ld)
    {
        var storage = new double[ld * (cols + 1)];
        Array.Fill(storage, Poison);
        if (values.Length > 0)
        {
            for (int j = 0; j < cols; j++)
            {
                Array.Copy(values, j * rows, storage, j * ld, rows);
            }
        }

        return storage;
    }

    private static double[] Run(GemmCase g)
    {
        double[] c = (double[])g.C.Clone();
        Gemm.Multiply(g.Path, g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, g.A, g.Lda, g.B, g.Ldb, g.Beta, c, g.Ldc);
        return c;
    }

    /// <summary>
    /// Checks every entry of the m×n block against the reference within
    /// <c>1e-12·(|alpha|·Σₚ|op(A)ᵢₚ·op(B)ₚⱼ| + |beta·Cᵢⱼ|)</c>, and that all other storage of C is bitwise unchanged.
    /// </summary>
    private static void AssertMatchesReference(GemmCase g)
    {
        double[] c = Run(g);
        for (int j = 0; j < g.N; j++)
        {
            for (int i = 0; i < g.M; i++)
            {
                double sum = 0, magnitude = 0;
                for (int p = 0; p < g.K; p++)
                {
                    double term = g.OpA(i, p) * g.OpB(p, j);
                    sum += term;
                    magnitude += Math.Abs(term);
                }

                double before = g.C[i + (j * g.Ldc)];
                double expected = g.Beta == 0 ? g.Alpha * sum : (g.Alpha * sum) + (g.Beta * before);
                double bound = RelativeTolerance * (Math.Abs(g.Alpha) * magnitude + (g.Beta == 0 ? 0 : Math.Abs(g.Beta * before)));
                double actual = c[i + (j * g.Ldc)];
                Assert.True(Math.Abs(actual - expected) <= bound,
                    $"C[{i},{j}] = {actual:R}, reference {expected:R} (bound {bound:R}) for {g}");
            }
        }

        for (int index = 0; index < c.Length; index++)
        {
            bool inBlock = index % g.Ldc < g.M && index / g.Ldc < g.N;
            Assert.True(inBlock || Bits(c[index]) == Bits(g.C[index]),
                $"Storage of C at {index}, outside the {g.M}×{g.N} block, was written for {g}");
        }
    }

    /// <summary>Runs a larger product with NaN-filled operands on <paramref name="path"/>, leaving NaN in its scratch.</summary>
    private static void DirtyScratch(SimdPath path)
    {
        const int size = 200;
        var nan = new double[size * size];
        Array.Fill(nan, double.NaN);
        Gemm.Multiply(path, false, false, size, size, size, 1.0, nan, size, nan, size, 0.0, new double[size * size], size);
    }

    private static long Bits(double value) => BitConverter.DoubleToInt64Bits(value);

    private static long[] Bits(double[] values) => Array.ConvertAll(values, Bits);
}
