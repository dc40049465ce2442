using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RnnFunctional.Kernels;

/// <summary>
/// The product <c>C = alpha·op(A)·op(B) + beta·C</c> computed in single precision on double storage
/// (<see cref="Precision.Single"/>).
/// </summary>
/// <remarks>
/// The blocking is that of the double product: op(B) and op(A) are packed into panels, and each operand is rounded
/// to float32 as it is packed, so the conversion costs no pass of its own. The micro-kernel keeps its tile in float32
/// registers over the depth of a panel (at most <see cref="DepthBlock"/> terms), then widens the tile to double, where
/// alpha, beta and the sum over depth panels are applied as in the double product. An operand given in float32
/// already (<c>aSingle</c>, a twin of A with the same layout, made once per call for a weight matrix) is packed by
/// copying, or read in place. As in the double product, every entry of C is computed from its row of op(A) and its
/// column of op(B) alone in an order fixed by k, so a column of C has the same bits whatever the other columns, and a
/// product split by rows among threads has the bits of one thread.
/// </remarks>
internal static partial class Gemm
{
    /// <summary>Floats per 64-byte cache line.</summary>
    private const int CacheLineFloats = 16;

    /// <summary>Per-thread packing scratch of the single-precision product.</summary>
    [ThreadStatic]
    private static float[]? singlePackBuffer;

    /// <summary>
    /// <c>C = alpha·op(A)·op(B) + beta·C</c> in the given <paramref name="precision"/> on <see cref="BestPath"/>: the double
    /// product, or <see cref="MultiplySingle(SimdPath, bool, bool, int, int, int, double, ReadOnlySpan{double}, ReadOnlySpan{float}, int, ReadOnlySpan{double}, int, double, Span{double}, int)"/>.
    /// </summary>
    public static void Multiply(Precision precision, bool transA, bool transB, int m, int n, int k, double alpha, ReadOnlySpan<double> a,
        ReadOnlySpan<float> aSingle, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        if (precision == Precision.Single) MultiplySingle(BestPath, transA, transB, m, n, k, alpha, a, aSingle, lda, b, ldb, beta, c, ldc);
        else Multiply(BestPath, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    /// <summary>
    /// <c>C = alpha·op(A)·op(B) + beta·C</c> in single precision on the given <paramref name="path"/>; the arguments are
    /// those of the double product, with <paramref name="aSingle"/> either empty or A rounded to float32 in A's layout.
    /// </summary>
    public static void MultiplySingle(SimdPath path, bool transA, bool transB, int m, int n, int k, double alpha, ReadOnlySpan<double> a,
        ReadOnlySpan<float> aSingle, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        a = a[..Extent(transA ? k : m, transA ? m : k, lda, a.Length)];
        if (!aSingle.IsEmpty) aSingle = aSingle[..a.Length];
        b = b[..Extent(transB ? n : k, transB ? k : n, ldb, b.Length)];
        c = c[..Extent(m, n, ldc, c.Length)];
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0)
        {
            for (var j = 0; j < n; j++) ScaleColumn(c.Slice(j * ldc, m), beta);
            return;
        }
        switch (path)
        {
            case SimdPath.Vector512:
                MultiplyPackedSingle<SingleKernel32x8>(transA, transB, m, n, k, alpha, a, aSingle, lda, b, ldb, beta, c, ldc);
                break;
            case SimdPath.Vector256:
                MultiplyPackedSingle<SingleKernel16x6>(transA, transB, m, n, k, alpha, a, aSingle, lda, b, ldb, beta, c, ldc);
                break;
            default:
                MultiplyScalarSingle(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                break;
        }
    }

    /// <summary>Scalar loops: each entry a float32 sum over all of k, then scaled in double.</summary>
    private static void MultiplyScalarSingle(bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        for (var j = 0; j < n; j++)
        {
            var cj = c.Slice(j * ldc, m);
            for (var i = 0; i < m; i++)
            {
                var sum = 0f;
                for (var p = 0; p < k; p++)
                    sum += (float)(transA ? a[p + (i * lda)] : a[i + (p * lda)]) * (float)(transB ? b[j + (p * ldb)] : b[p + (j * ldb)]);
                cj[i] = beta == 0 ? alpha * sum : Math.FusedMultiplyAdd(alpha, sum, beta * cj[i]);
            }
        }
    }

    /// <summary>The blocked product of <see cref="MultiplyPacked{TKernel}"/> on float32 panels.</summary>
    [SkipLocalsInit] // the edge tile is written (beta 0) before it is read
    private static unsafe void MultiplyPackedSingle<TKernel>(bool transA, bool transB, int m, int n, int k, double alpha, ReadOnlySpan<double> a,
        ReadOnlySpan<float> aSingle, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
        where TKernel : struct, ISingleMicroKernel
    {
        var (mr, nr) = (TKernel.Rows, TKernel.Columns);
        var depthBlocks = (k + DepthBlock - 1) / DepthBlock;
        var kc = (k + depthBlocks - 1) / depthBlocks;
        var mcMax = Math.Min(RoundUp(m, mr), RowBlock / mr * mr);
        var ncMax = Math.Min(RoundUp(n, nr), ColumnBlock / nr * nr);
        var twin = !aSingle.IsEmpty;
        var aInPlace = twin && !transA && n <= InPlaceMaxColumns;                  // a float32 twin of an untransposed A is read in place

        var scratch = SinglePackBuffer(((mcMax + ncMax) * kc) + CacheLineFloats);
        var edgeTile = stackalloc double[mr * nr];

        fixed (double* aBase = a, bBase = b, cBase = c)
        fixed (float* twinBase = aSingle, scratchBase = scratch)
        {
            var aPack = AlignToCacheLine(scratchBase);
            var bPack = aPack + (mcMax * kc);
            for (var jc = 0; jc < n; jc += ncMax)
            {
                var nc = Math.Min(ncMax, n - jc);
                for (var pc = 0; pc < k; pc += kc)
                {
                    var depth = Math.Min(kc, k - pc);
                    var betaPanel = pc == 0 ? beta : 1;
                    PackSingle(bBase, ldb, transB, jc, pc, nc, depth, nr, bPack);
                    for (var ic = 0; ic < m; ic += mcMax)
                    {
                        var mc = Math.Min(mcMax, m - ic);
                        var inPlaceRows = aInPlace ? mc / mr * mr : 0;
                        if (twin) PackSingle(twinBase, lda, !transA, ic + inPlaceRows, pc, mc - inPlaceRows, depth, mr, aPack);
                        else PackSingle(aBase, lda, !transA, ic + inPlaceRows, pc, mc - inPlaceRows, depth, mr, aPack);
                        for (var jr = 0; jr < nc; jr += nr)
                        {
                            var cols = Math.Min(nr, nc - jr);
                            var bSliver = bPack + (jr * depth);
                            var cColumn = cBase + ((nint)(jc + jr) * ldc) + ic;
                            for (var ir = 0; ir < mc; ir += mr)
                            {
                                var rows = Math.Min(mr, mc - ir);
                                var inPlace = ir < inPlaceRows;
                                var aSliver = inPlace ? twinBase + ic + ir + (pc * (nint)lda) : aPack + ((ir - inPlaceRows) * depth);
                                nint aStep = inPlace ? lda : mr;
                                if (rows == mr && cols == nr)
                                {
                                    TKernel.Run(depth, aSliver, aStep, bSliver, cColumn + ir, ldc, alpha, betaPanel);
                                }
                                else
                                {
                                    TKernel.Run(depth, aSliver, aStep, bSliver, edgeTile, mr, 1, 0);
                                    MergeEdgeTile(edgeTile, mr, rows, cols, cColumn + ir, ldc, alpha, betaPanel);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary><see cref="Pack"/> into float32 slivers, rounding a double operand to nearest.</summary>
    private static unsafe void PackSingle<TSource>(TSource* matrix, nint ld, bool rowsContiguous, int row0, int p0, int rows, int depth,
        int width, float* dst)
        where TSource : unmanaged
    {
        if (rowsContiguous) PackSingleFromColumns(matrix + row0 + (p0 * ld), ld, rows, depth, width, dst);
        else PackSingleFromRows(matrix + (row0 * ld) + p0, ld, rows, depth, width, dst);
    }

    /// <summary><see cref="PackFromColumns"/> into float32 slivers.</summary>
    private static unsafe void PackSingleFromColumns<TSource>(TSource* src, nint ld, int rows, int depth, int width, float* dst)
        where TSource : unmanaged
    {
        var groupRows = Math.Max(width, PackGroupRows / width * width);
        for (var g0 = 0; g0 < rows; g0 += groupRows, src += groupRows, dst += groupRows * depth)
        {
            var groupEnd = Math.Min(groupRows, rows - g0);
            var fullRows = groupEnd / width * width;
            for (var p = 0; p < depth; p++)
            {
                var s = src + (p * ld);
                var d = dst + (p * width);
                var r0 = 0;
                for (; r0 < fullRows; r0 += width, d += width * depth) CopySingle(s + r0, d, width);
                if (r0 < groupEnd)
                {
                    CopySingle(s + r0, d, groupEnd - r0);
                    new Span<float>(d + (groupEnd - r0), width - (groupEnd - r0)).Clear();
                }
            }
        }
    }

    /// <summary>
    /// <see cref="PackFromRows"/> into float32 slivers; a double operand is transposed in blocks of 4×4 in registers, as
    /// the double product does, and each column of a block rounded to float32 as it is stored.
    /// </summary>
    private static unsafe void PackSingleFromRows<TSource>(TSource* src, nint ld, int rows, int depth, int width, float* dst)
        where TSource : unmanaged
    {
        for (var r0 = 0; r0 < rows; r0 += width, src += width * ld, dst += width * depth)
        {
            var height = Math.Min(width, rows - r0);
            var r = 0;
            if (typeof(TSource) == typeof(double) && Avx.IsSupported)
            {
                for (; r <= height - 4; r += 4)
                {
                    var s0 = (double*)src + (r * ld);
                    var s1 = s0 + ld;
                    var s2 = s1 + ld;
                    var s3 = s2 + ld;
                    var d = dst + r;
                    var p = 0;
                    for (; p <= depth - 4; p += 4, d += 4 * width)
                    {
                        var (r0p, r1p, r2p, r3p) = (Avx.LoadVector256(s0 + p), Avx.LoadVector256(s1 + p), Avx.LoadVector256(s2 + p), Avx.LoadVector256(s3 + p));
                        var (even01, odd01) = (Avx.UnpackLow(r0p, r1p), Avx.UnpackHigh(r0p, r1p));
                        var (even23, odd23) = (Avx.UnpackLow(r2p, r3p), Avx.UnpackHigh(r2p, r3p));
                        Sse.Store(d, Avx.ConvertToVector128Single(Avx.Permute2x128(even01, even23, 0x20)));
                        Sse.Store(d + width, Avx.ConvertToVector128Single(Avx.Permute2x128(odd01, odd23, 0x20)));
                        Sse.Store(d + (2 * width), Avx.ConvertToVector128Single(Avx.Permute2x128(even01, even23, 0x31)));
                        Sse.Store(d + (3 * width), Avx.ConvertToVector128Single(Avx.Permute2x128(odd01, odd23, 0x31)));
                    }
                    for (; p < depth; p++, d += width) (d[0], d[1], d[2], d[3]) = ((float)s0[p], (float)s1[p], (float)s2[p], (float)s3[p]);
                }
            }
            for (; r < height; r++)
            {
                var s = src + (r * ld);
                for (var p = 0; p < depth; p++) dst[(p * width) + r] = ToSingle(s[p]);
            }
            for (; r < width; r++)
                for (var p = 0; p < depth; p++) dst[(p * width) + r] = 0;
        }
    }

    /// <summary>Copies <paramref name="count"/> values to float32, rounding doubles to nearest.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void CopySingle<TSource>(TSource* src, float* dst, int count)
        where TSource : unmanaged
    {
        var i = 0;
        if (typeof(TSource) == typeof(double))
        {
            var d = (double*)src;
            for (; i <= count - Vector256<float>.Count; i += Vector256<float>.Count)
                Vector256.Store(Vector256.Narrow(Vector256.Load(d + i), Vector256.Load(d + i + Vector256<double>.Count)), dst + i);
        }
        else
        {
            var f = (float*)src;
            for (; i <= count - Vector256<float>.Count; i += Vector256<float>.Count) Vector256.Store(Vector256.Load(f + i), dst + i);
        }
        for (; i < count; i++) dst[i] = ToSingle(src[i]);
    }

    /// <summary>A double rounded to the nearest float32, or a float32 as it is.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ToSingle<TSource>(TSource value)
        where TSource : unmanaged =>
        typeof(TSource) == typeof(double) ? (float)Unsafe.As<TSource, double>(ref value) : Unsafe.As<TSource, float>(ref value);

    /// <summary>The calling thread's single-precision packing scratch, grown to at least <paramref name="length"/> floats.</summary>
    private static float[] SinglePackBuffer(int length)
    {
        var buffer = singlePackBuffer;
        if (buffer is null || buffer.Length < length)
        {
            buffer = GC.AllocateUninitializedArray<float>(length, pinned: true);
            singlePackBuffer = buffer;
        }
        return buffer;
    }

    /// <summary>The first address at or after <paramref name="p"/> on a cache-line boundary.</summary>
    private static unsafe float* AlignToCacheLine(float* p)
    {
        const nint mask = (CacheLineFloats * sizeof(float)) - 1;
        return (float*)(((nint)p + mask) & ~mask);
    }

    /// <summary>A register-tiled kernel of the single-precision product: float32 slivers in, a double tile of C out.</summary>
    private interface ISingleMicroKernel
    {
        /// <summary>Tile height: rows of C per call, and the width of a packed sliver of op(A).</summary>
        static abstract int Rows { get; }

        /// <summary>Tile width: columns of C per call, and the width of a packed sliver of op(B).</summary>
        static abstract int Columns { get; }

        /// <summary>
        /// Sets <c>c[i + j·ldc] = alpha·acc(i, j) + beta·c[i + j·ldc]</c> in double, where acc(i, j) is the float32 sum
        /// Σₚ a[p·aStep + i]·b[p·Columns + j] over <paramref name="depth"/> steps, widened; with beta zero C is not read.
        /// </summary>
        static abstract unsafe void Run(int depth, float* a, nint aStep, float* b, double* c, nint ldc, double alpha, double beta);
    }

    /// <summary>32×8 tile on 512-bit vectors: sixteen float32 accumulators of two vectors per column.</summary>
    private readonly struct SingleKernel32x8 : ISingleMicroKernel
    {
        public static int Rows => 32;

        public static int Columns => 8;

        public static unsafe void Run(int depth, float* a, nint aStep, float* b, double* c, nint ldc, double alpha, double beta)
        {
            Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
            Vector512<float> c04 = default, c05 = default, c06 = default, c07 = default;
            Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
            Vector512<float> c14 = default, c15 = default, c16 = default, c17 = default;
            for (var p = 0; p < depth; p++, a += aStep, b += 8)
            {
                var a0 = Vector512.Load(a);
                var a1 = Vector512.Load(a + 16);
                var bj = Vector512.Create(b[0]);
                c00 = Vector512.FusedMultiplyAdd(a0, bj, c00);
                c10 = Vector512.FusedMultiplyAdd(a1, bj, c10);
                bj = Vector512.Create(b[1]);
                c01 = Vector512.FusedMultiplyAdd(a0, bj, c01);
                c11 = Vector512.FusedMultiplyAdd(a1, bj, c11);
                bj = Vector512.Create(b[2]);
                c02 = Vector512.FusedMultiplyAdd(a0, bj, c02);
                c12 = Vector512.FusedMultiplyAdd(a1, bj, c12);
                bj = Vector512.Create(b[3]);
                c03 = Vector512.FusedMultiplyAdd(a0, bj, c03);
                c13 = Vector512.FusedMultiplyAdd(a1, bj, c13);
                bj = Vector512.Create(b[4]);
                c04 = Vector512.FusedMultiplyAdd(a0, bj, c04);
                c14 = Vector512.FusedMultiplyAdd(a1, bj, c14);
                bj = Vector512.Create(b[5]);
                c05 = Vector512.FusedMultiplyAdd(a0, bj, c05);
                c15 = Vector512.FusedMultiplyAdd(a1, bj, c15);
                bj = Vector512.Create(b[6]);
                c06 = Vector512.FusedMultiplyAdd(a0, bj, c06);
                c16 = Vector512.FusedMultiplyAdd(a1, bj, c16);
                bj = Vector512.Create(b[7]);
                c07 = Vector512.FusedMultiplyAdd(a0, bj, c07);
                c17 = Vector512.FusedMultiplyAdd(a1, bj, c17);
            }
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            var overwrite = beta == 0;
            Update(c, va, vb, overwrite, c00, c10);
            Update(c + ldc, va, vb, overwrite, c01, c11);
            Update(c + (2 * ldc), va, vb, overwrite, c02, c12);
            Update(c + (3 * ldc), va, vb, overwrite, c03, c13);
            Update(c + (4 * ldc), va, vb, overwrite, c04, c14);
            Update(c + (5 * ldc), va, vb, overwrite, c05, c15);
            Update(c + (6 * ldc), va, vb, overwrite, c06, c16);
            Update(c + (7 * ldc), va, vb, overwrite, c07, c17);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static unsafe void Update(double* c, Vector512<double> alpha, Vector512<double> beta, bool overwrite, Vector512<float> top,
            Vector512<float> bottom)
        {
            Store(c, alpha, beta, overwrite, Vector512.WidenLower(top));
            Store(c + 8, alpha, beta, overwrite, Vector512.WidenUpper(top));
            Store(c + 16, alpha, beta, overwrite, Vector512.WidenLower(bottom));
            Store(c + 24, alpha, beta, overwrite, Vector512.WidenUpper(bottom));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static unsafe void Store(double* c, Vector512<double> alpha, Vector512<double> beta, bool overwrite, Vector512<double> sum) =>
            Vector512.Store(overwrite ? alpha * sum : Vector512.FusedMultiplyAdd(alpha, sum, beta * Vector512.Load(c)), c);
    }

    /// <summary>16×6 tile on 256-bit vectors: twelve float32 accumulators of two vectors per column.</summary>
    private readonly struct SingleKernel16x6 : ISingleMicroKernel
    {
        public static int Rows => 16;

        public static int Columns => 6;

        public static unsafe void Run(int depth, float* a, nint aStep, float* b, double* c, nint ldc, double alpha, double beta)
        {
            Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default;
            Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
            for (var p = 0; p < depth; p++, a += aStep, b += 6)
            {
                var a0 = Vector256.Load(a);
                var a1 = Vector256.Load(a + 8);
                var bj = Vector256.Create(b[0]);
                c00 = Vector256.FusedMultiplyAdd(a0, bj, c00);
                c10 = Vector256.FusedMultiplyAdd(a1, bj, c10);
                bj = Vector256.Create(b[1]);
                c01 = Vector256.FusedMultiplyAdd(a0, bj, c01);
                c11 = Vector256.FusedMultiplyAdd(a1, bj, c11);
                bj = Vector256.Create(b[2]);
                c02 = Vector256.FusedMultiplyAdd(a0, bj, c02);
                c12 = Vector256.FusedMultiplyAdd(a1, bj, c12);
                bj = Vector256.Create(b[3]);
                c03 = Vector256.FusedMultiplyAdd(a0, bj, c03);
                c13 = Vector256.FusedMultiplyAdd(a1, bj, c13);
                bj = Vector256.Create(b[4]);
                c04 = Vector256.FusedMultiplyAdd(a0, bj, c04);
                c14 = Vector256.FusedMultiplyAdd(a1, bj, c14);
                bj = Vector256.Create(b[5]);
                c05 = Vector256.FusedMultiplyAdd(a0, bj, c05);
                c15 = Vector256.FusedMultiplyAdd(a1, bj, c15);
            }
            var va = Vector256.Create(alpha);
            var vb = Vector256.Create(beta);
            var overwrite = beta == 0;
            Update(c, va, vb, overwrite, c00, c10);
            Update(c + ldc, va, vb, overwrite, c01, c11);
            Update(c + (2 * ldc), va, vb, overwrite, c02, c12);
            Update(c + (3 * ldc), va, vb, overwrite, c03, c13);
            Update(c + (4 * ldc), va, vb, overwrite, c04, c14);
            Update(c + (5 * ldc), va, vb, overwrite, c05, c15);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static unsafe void Update(double* c, Vector256<double> alpha, Vector256<double> beta, bool overwrite, Vector256<float> top,
            Vector256<float> bottom)
        {
            Store(c, alpha, beta, overwrite, Vector256.WidenLower(top));
            Store(c + 4, alpha, beta, overwrite, Vector256.WidenUpper(top));
            Store(c + 8, alpha, beta, overwrite, Vector256.WidenLower(bottom));
            Store(c + 12, alpha, beta, overwrite, Vector256.WidenUpper(bottom));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static unsafe void Store(double* c, Vector256<double> alpha, Vector256<double> beta, bool overwrite, Vector256<double> sum) =>
            Vector256.Store(overwrite ? alpha * sum : Vector256.FusedMultiplyAdd(alpha, sum, beta * Vector256.Load(c)), c);
    }
}
