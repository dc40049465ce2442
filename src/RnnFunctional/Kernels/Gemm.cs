using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RnnFunctional.Kernels;

/// <summary>
/// Single-threaded double-precision matrix product <c>C = alpha·op(A)·op(B) + beta·C</c> on column-major storage.
/// </summary>
/// <remarks>
/// The vector paths follow the GotoBLAS/BLIS scheme: op(B) is packed in panels of
/// <see cref="DepthBlock"/> × <see cref="ColumnBlock"/> and op(A) in blocks of <see cref="RowBlock"/> ×
/// <see cref="DepthBlock"/> into per-thread scratch, each packed as slivers as wide as the register tile of the
/// micro-kernel and zero-padded at the edges; an untransposed op(A) in a narrow product is read in place. The micro-kernel keeps a whole tile of C in vector registers while
/// it runs over the depth of a panel. The blocking depends only on the dimensions, so a given path always
/// sums in the same order and produces bitwise-identical results for identical inputs. Each entry of C is
/// computed from its row of op(A) and its column of op(B) alone, in an order fixed by k: a column of C has the same
/// bits whatever the other columns of the product, which lets a sequence kernel multiply all its time steps at
/// once and still agree bit for bit with a step-by-step fold.
/// </remarks>
internal static partial class Gemm
{
    /// <summary>Largest depth (columns of op(A), rows of op(B)) packed at a time.</summary>
    private const int DepthBlock = 256;

    /// <summary>Largest number of rows of op(A) packed at a time, rounded down to a multiple of the tile height.</summary>
    private const int RowBlock = 192;

    /// <summary>Largest number of columns of op(B) packed at a time, rounded down to a multiple of the tile width.</summary>
    private const int ColumnBlock = 1024;

    /// <summary>Widest product for which an untransposed op(A) is read in place rather than packed.</summary>
    private const int InPlaceMaxColumns = 256;

    /// <summary>Rows that <see cref="PackFromColumns"/> copies per depth step before moving on to the next step.</summary>
    private const int PackGroupRows = 64;

    /// <summary>Doubles per 64-byte cache line; the packed panels start on a cache-line boundary.</summary>
    private const int CacheLineDoubles = 8;

    /// <summary>Per-thread packing scratch, allocated on the pinned object heap so its address never changes.</summary>
    [ThreadStatic]
    private static double[]? packBuffer;

    /// <summary>The fastest path this machine accelerates, chosen once at start-up.</summary>
    public static SimdPath BestPath { get; } =
        IsAccelerated(SimdPath.Vector512) ? SimdPath.Vector512
        : IsAccelerated(SimdPath.Vector256) ? SimdPath.Vector256
        : SimdPath.Scalar;

    /// <summary>
    /// Whether <paramref name="path"/> runs on hardware instructions here. A path that is not accelerated still
    /// computes the same result when forced, only through slow software emulation of the vector operations.
    /// </summary>
    public static bool IsAccelerated(SimdPath path) => path switch
    {
        SimdPath.Scalar => true,
        SimdPath.Vector256 => Vector256.IsHardwareAccelerated && Fma.IsSupported,
        SimdPath.Vector512 => Vector512.IsHardwareAccelerated && (Fma.IsSupported || Avx512F.IsSupported),
        _ => false,
    };

    /// <summary>
    /// Computes <c>C = alpha·op(A)·op(B) + beta·C</c> on <see cref="BestPath"/>. All matrices are column-major;
    /// op(A) is <paramref name="m"/>×<paramref name="k"/>, op(B) is <paramref name="k"/>×<paramref name="n"/> and
    /// C is <paramref name="m"/>×<paramref name="n"/>.
    /// </summary>
    /// <param name="transA">
    /// False when A is stored as m×k (<paramref name="lda"/> ≥ m); true when A is stored as k×m
    /// (<paramref name="lda"/> ≥ k) and op(A) = Aᵀ.
    /// </param>
    /// <param name="transB">
    /// False when B is stored as k×n (<paramref name="ldb"/> ≥ k); true when B is stored as n×k
    /// (<paramref name="ldb"/> ≥ n) and op(B) = Bᵀ.
    /// </param>
    /// <param name="m">Rows of op(A) and of C.</param>
    /// <param name="n">Columns of op(B) and of C.</param>
    /// <param name="k">Columns of op(A) and rows of op(B).</param>
    /// <param name="alpha">Scale of the product. When zero, A and B are not read.</param>
    /// <param name="a">Storage of A.</param>
    /// <param name="lda">Distance between consecutive columns of the stored A.</param>
    /// <param name="b">Storage of B.</param>
    /// <param name="ldb">Distance between consecutive columns of the stored B.</param>
    /// <param name="beta">Scale of the previous C. When zero, C is overwritten without being read.</param>
    /// <param name="c">Storage of C; only its leading m rows of each column are read or written.</param>
    /// <param name="ldc">Distance between consecutive columns of C (≥ m).</param>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc) =>
        Multiply(BestPath, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>
    /// Computes <c>C = alpha·op(A)·op(B) + beta·C</c> on the given <paramref name="path"/>; the other arguments are
    /// those of <see cref="Multiply(bool, bool, int, int, int, double, ReadOnlySpan{double}, int, ReadOnlySpan{double}, int, double, Span{double}, int)"/>.
    /// </summary>
    /// <param name="path">The implementation to run.</param>
    /// <param name="transA">Whether op(A) = Aᵀ, with A stored as k×m.</param>
    /// <param name="transB">Whether op(B) = Bᵀ, with B stored as n×k.</param>
    /// <param name="m">Rows of op(A) and of C.</param>
    /// <param name="n">Columns of op(B) and of C.</param>
    /// <param name="k">Columns of op(A) and rows of op(B).</param>
    /// <param name="alpha">Scale of the product. When zero, A and B are not read.</param>
    /// <param name="a">Storage of A.</param>
    /// <param name="lda">Distance between consecutive columns of the stored A.</param>
    /// <param name="b">Storage of B.</param>
    /// <param name="ldb">Distance between consecutive columns of the stored B.</param>
    /// <param name="beta">Scale of the previous C. When zero, C is overwritten without being read.</param>
    /// <param name="c">Storage of C; only its leading m rows of each column are read or written.</param>
    /// <param name="ldc">Distance between consecutive columns of C (≥ m).</param>
    public static void Multiply(SimdPath path, bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        Debug.Assert(m >= 0 && n >= 0 && k >= 0, "Matrix dimensions must be non-negative.");

        // Slicing to the exact extents keeps every later access, including the pointer-based ones, inside the
        // spans even when the assertions are compiled out.
        a = a[..Extent(transA ? k : m, transA ? m : k, lda, a.Length)];
        b = b[..Extent(transB ? n : k, transB ? k : n, ldb, b.Length)];
        c = c[..Extent(m, n, ldc, c.Length)];

        if (m == 0 || n == 0)
        {
            return;
        }

        if (k == 0 || alpha == 0)
        {
            for (int j = 0; j < n; j++)
            {
                ScaleColumn(c.Slice(j * ldc, m), beta);
            }

            return;
        }

        switch (path)
        {
            case SimdPath.Vector512:
                MultiplyPacked<Kernel16x8>(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                break;
            case SimdPath.Vector256:
                MultiplyPacked<Kernel8x6>(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                break;
            default:
                MultiplyScalar(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                break;
        }
    }

    /// <summary>Length of the storage of a <paramref name="rows"/>×<paramref name="cols"/> column-major matrix.</summary>
    private static int Extent(int rows, int cols, int ld, int available)
    {
        Debug.Assert(ld >= Math.Max(1, rows), "Leading dimension is smaller than the number of stored rows.");
        int extent = rows == 0 || cols == 0 ? 0 : checked(((cols - 1) * ld) + rows);
        Debug.Assert(extent <= available, "Span is shorter than the matrix it stores.");
        return extent;
    }

    /// <summary>Sets <paramref name="column"/> to <paramref name="beta"/> times itself, or to zero without reading it when beta is zero.</summary>
    private static void ScaleColumn(Span<double> column, double beta)
    {
        if (beta == 0)
        {
            column.Clear();
        }
        else if (beta != 1)
        {
            for (int i = 0; i < column.Length; i++)
            {
                column[i] *= beta;
            }
        }
    }

    /// <summary>
    /// Scalar loops: inner products over contiguous rows of the stored A when it is transposed, otherwise
    /// column updates of C by scaled columns of A.
    /// </summary>
    private static void MultiplyScalar(bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        for (int j = 0; j < n; j++)
        {
            Span<double> cj = c.Slice(j * ldc, m);
            if (transA)
            {
                for (int i = 0; i < m; i++)
                {
                    ReadOnlySpan<double> ai = a.Slice(i * lda, k);
                    double sum = 0;
                    for (int p = 0; p < k; p++)
                    {
                        sum += ai[p] * (transB ? b[j + (p * ldb)] : b[p + (j * ldb)]);
                    }

                    cj[i] = beta == 0 ? alpha * sum : (alpha * sum) + (beta * cj[i]);
                }
            }
            else
            {
                ScaleColumn(cj, beta);
                for (int p = 0; p < k; p++)
                {
                    double scale = alpha * (transB ? b[j + (p * ldb)] : b[p + (j * ldb)]);
                    ReadOnlySpan<double> ap = a.Slice(p * lda, m);
                    for (int i = 0; i < m; i++)
                    {
                        cj[i] += scale * ap[i];
                    }
                }
            }
        }
    }

    /// <summary>
    /// Blocked product: for each column panel of op(B) and depth panel, packs op(B), then for each row block
    /// packs op(A) and sweeps the register tiles, with the tile columns outermost so that one packed sliver of
    /// op(B) stays in L1 while the packed block of op(A) streams from L2.
    /// </summary>
    [SkipLocalsInit] // the edge tile is written (beta 0) before it is read
    private static unsafe void MultiplyPacked<TKernel>(bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
        where TKernel : struct, IMicroKernel
    {
        int mr = TKernel.Rows;
        int nr = TKernel.Columns;
        int depthBlocks = (k + DepthBlock - 1) / DepthBlock;
        int kc = (k + depthBlocks - 1) / depthBlocks;
        int mcMax = Math.Min(RoundUp(m, mr), RowBlock / mr * mr);
        int ncMax = Math.Min(RoundUp(n, nr), ColumnBlock / nr * nr);

        // An untransposed A already holds the rows of each tile contiguously. When few tile columns share each
        // block of op(A), reading its full-height slivers in place costs less than copying them; only the partial
        // sliver at the bottom edge of a block is then packed. (A recurrent product W·a⟨t−1⟩ of a few hundred rows
        // and columns, repeated at every step, would otherwise copy all of W each time.)
        bool aInPlace = !transA && n <= InPlaceMaxColumns;

        double[] scratch = PackBuffer(((mcMax + ncMax) * kc) + CacheLineDoubles);
        double* edgeTile = stackalloc double[mr * nr];

        fixed (double* aBase = a, bBase = b, cBase = c, scratchBase = scratch)
        {
            double* aPack = AlignToCacheLine(scratchBase);
            double* bPack = aPack + (mcMax * kc);

            for (int jc = 0; jc < n; jc += ncMax)
            {
                int nc = Math.Min(ncMax, n - jc);
                for (int pc = 0; pc < k; pc += kc)
                {
                    int depth = Math.Min(kc, k - pc);
                    double betaPanel = pc == 0 ? beta : 1;
                    Pack(bBase, ldb, transB, jc, pc, nc, depth, nr, bPack);

                    for (int ic = 0; ic < m; ic += mcMax)
                    {
                        int mc = Math.Min(mcMax, m - ic);
                        int inPlaceRows = aInPlace ? mc / mr * mr : 0;
                        Pack(aBase, lda, !transA, ic + inPlaceRows, pc, mc - inPlaceRows, depth, mr, aPack);

                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            int cols = Math.Min(nr, nc - jr);
                            double* bSliver = bPack + (jr * depth);
                            double* cColumn = cBase + ((nint)(jc + jr) * ldc) + ic;
                            for (int ir = 0; ir < mc; ir += mr)
                            {
                                int rows = Math.Min(mr, mc - ir);
                                bool inPlace = ir < inPlaceRows;
                                double* aSliver = inPlace
                                    ? aBase + ic + ir + (pc * (nint)lda)
                                    : aPack + ((ir - inPlaceRows) * depth);
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

    /// <summary>
    /// Packs rows <paramref name="row0"/> to <paramref name="row0"/> + <paramref name="rows"/> − 1 and depth steps
    /// <paramref name="p0"/> to <paramref name="p0"/> + <paramref name="depth"/> − 1 of an operand whose element
    /// (r, p) is <c>matrix[r + p·ld]</c> when <paramref name="rowsContiguous"/>, else <c>matrix[r·ld + p]</c>.
    /// The rows are those of op(A), or the columns of op(B).
    /// </summary>
    private static unsafe void Pack(double* matrix, nint ld, bool rowsContiguous, int row0, int p0, int rows, int depth,
        int width, double* dst)
    {
        if (rowsContiguous)
        {
            PackFromColumns(matrix + row0 + (p0 * ld), ld, rows, depth, width, dst);
        }
        else
        {
            PackFromRows(matrix + (row0 * ld) + p0, ld, rows, depth, width, dst);
        }
    }

    /// <summary>
    /// Packs the <paramref name="rows"/>×<paramref name="depth"/> panel whose element (r, p) is
    /// <c>src[r + p·ld]</c> into slivers of <paramref name="width"/> rows: element (r, p) goes to
    /// <c>dst[(r / width)·width·depth + p·width + r % width]</c>. The rows missing from the last sliver are set
    /// to zero, so the lanes of an edge tile that are never stored compute on zeros rather than on stale scratch.
    /// </summary>
    private static unsafe void PackFromColumns(double* src, nint ld, int rows, int depth, int width, double* dst)
    {
        int groupRows = Math.Max(width, PackGroupRows / width * width);
        for (int g0 = 0; g0 < rows; g0 += groupRows, src += groupRows, dst += groupRows * depth)
        {
            int groupEnd = Math.Min(groupRows, rows - g0);
            int fullRows = groupEnd / width * width;
            for (int p = 0; p < depth; p++)
            {
                double* s = src + (p * ld);
                double* d = dst + (p * width);
                int r0 = 0;
                for (; r0 < fullRows; r0 += width, d += width * depth)
                {
                    Copy(s + r0, d, width);
                }

                if (r0 < groupEnd)
                {
                    Copy(s + r0, d, groupEnd - r0);
                    new Span<double>(d + (groupEnd - r0), width - (groupEnd - r0)).Clear();
                }
            }
        }
    }

    /// <summary>
    /// Packs like <see cref="PackFromColumns"/> the panel whose element (r, p) is <c>src[r·ld + p]</c>,
    /// transposing blocks of 4×4 in registers.
    /// </summary>
    private static unsafe void PackFromRows(double* src, nint ld, int rows, int depth, int width, double* dst)
    {
        for (int r0 = 0; r0 < rows; r0 += width, src += width * ld, dst += width * depth)
        {
            int height = Math.Min(width, rows - r0);
            int r = 0;
            if (Avx.IsSupported)
            {
                for (; r <= height - 4; r += 4)
                {
                    double* s0 = src + (r * ld);
                    double* s1 = s0 + ld;
                    double* s2 = s1 + ld;
                    double* s3 = s2 + ld;
                    double* d = dst + r;
                    int p = 0;
                    for (; p <= depth - 4; p += 4, d += 4 * width)
                    {
                        Vector256<double> r0p = Avx.LoadVector256(s0 + p);
                        Vector256<double> r1p = Avx.LoadVector256(s1 + p);
                        Vector256<double> r2p = Avx.LoadVector256(s2 + p);
                        Vector256<double> r3p = Avx.LoadVector256(s3 + p);
                        Vector256<double> even01 = Avx.UnpackLow(r0p, r1p);
                        Vector256<double> odd01 = Avx.UnpackHigh(r0p, r1p);
                        Vector256<double> even23 = Avx.UnpackLow(r2p, r3p);
                        Vector256<double> odd23 = Avx.UnpackHigh(r2p, r3p);
                        Avx.Store(d, Avx.Permute2x128(even01, even23, 0x20));
                        Avx.Store(d + width, Avx.Permute2x128(odd01, odd23, 0x20));
                        Avx.Store(d + (2 * width), Avx.Permute2x128(even01, even23, 0x31));
                        Avx.Store(d + (3 * width), Avx.Permute2x128(odd01, odd23, 0x31));
                    }

                    for (; p < depth; p++, d += width)
                    {
                        d[0] = s0[p];
                        d[1] = s1[p];
                        d[2] = s2[p];
                        d[3] = s3[p];
                    }
                }
            }

            for (; r < height; r++)
            {
                double* s = src + (r * ld);
                for (int p = 0; p < depth; p++)
                {
                    dst[(p * width) + r] = s[p];
                }
            }

            for (; r < width; r++)
            {
                for (int p = 0; p < depth; p++)
                {
                    dst[(p * width) + r] = 0;
                }
            }
        }
    }

    /// <summary>Copies <paramref name="count"/> doubles from <paramref name="src"/> to <paramref name="dst"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Copy(double* src, double* dst, int count)
    {
        int i = 0;
        for (; i <= count - Vector256<double>.Count; i += Vector256<double>.Count)
        {
            Vector256.Store(Vector256.Load(src + i), dst + i);
        }

        for (; i < count; i++)
        {
            dst[i] = src[i];
        }
    }

    /// <summary>Applies the unscaled partial tile <paramref name="tile"/> (leading dimension <paramref name="ldt"/>) to the valid part of C.</summary>
    private static unsafe void MergeEdgeTile(double* tile, int ldt, int rows, int cols, double* c, int ldc, double alpha, double beta)
    {
        for (int j = 0; j < cols; j++, tile += ldt, c += ldc)
        {
            for (int i = 0; i < rows; i++)
            {
                c[i] = beta == 0 ? alpha * tile[i] : Math.FusedMultiplyAdd(alpha, tile[i], beta * c[i]);
            }
        }
    }

    /// <summary>The smallest multiple of <paramref name="multiple"/> not below <paramref name="value"/>.</summary>
    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>The calling thread's packing scratch, grown to at least <paramref name="length"/> doubles.</summary>
    private static double[] PackBuffer(int length)
    {
        double[]? buffer = packBuffer;
        if (buffer is null || buffer.Length < length)
        {
            buffer = GC.AllocateUninitializedArray<double>(length, pinned: true);
            packBuffer = buffer;
        }

        return buffer;
    }

    /// <summary>The first address at or after <paramref name="p"/> on a cache-line boundary.</summary>
    private static unsafe double* AlignToCacheLine(double* p)
    {
        const nint mask = (CacheLineDoubles * sizeof(double)) - 1;
        return (double*)(((nint)p + mask) & ~mask);
    }

    /// <summary>
    /// A register-tiled kernel computing one <see cref="Rows"/>×<see cref="Columns"/> tile of C from packed
    /// slivers of op(A) and op(B).
    /// </summary>
    private interface IMicroKernel
    {
        /// <summary>Tile height: rows of C per call, and the width of a packed sliver of op(A).</summary>
        static abstract int Rows { get; }

        /// <summary>Tile width: columns of C per call, and the width of a packed sliver of op(B).</summary>
        static abstract int Columns { get; }

        /// <summary>
        /// Sets <c>c[i + j·ldc] = alpha·acc(i, j) + beta·c[i + j·ldc]</c>, where
        /// <c>acc(i, j) = Σₚ a[p·aStep + i]·b[p·Columns + j]</c> over <paramref name="depth"/> steps; with
        /// <paramref name="beta"/> zero C is written without being read. <paramref name="aStep"/> is
        /// <see cref="Rows"/> for a packed sliver of op(A), or the leading dimension when op(A) is read in place.
        /// </summary>
        static abstract unsafe void Run(int depth, double* a, nint aStep, double* b, double* c, nint ldc, double alpha, double beta);
    }

    /// <summary>16×8 tile on 512-bit vectors: sixteen accumulators of two vectors per column.</summary>
    private readonly struct Kernel16x8 : IMicroKernel
    {
        public static int Rows => 16;

        public static int Columns => 8;

        public static unsafe void Run(int depth, double* a, nint aStep, double* b, double* c, nint ldc, double alpha, double beta)
        {
            Vector512<double> c00 = default, c01 = default, c02 = default, c03 = default;
            Vector512<double> c04 = default, c05 = default, c06 = default, c07 = default;
            Vector512<double> c10 = default, c11 = default, c12 = default, c13 = default;
            Vector512<double> c14 = default, c15 = default, c16 = default, c17 = default;

            for (int p = 0; p < depth; p++, a += aStep, b += 8)
            {
                Vector512<double> a0 = Vector512.Load(a);
                Vector512<double> a1 = Vector512.Load(a + 8);
                Vector512<double> bj = Vector512.Create(b[0]);
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

            Vector512<double> va = Vector512.Create(alpha);
            Vector512<double> vb = Vector512.Create(beta);
            bool overwrite = beta == 0;
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
        private static unsafe void Update(double* c, Vector512<double> alpha, Vector512<double> beta, bool overwrite,
            Vector512<double> top, Vector512<double> bottom)
        {
            if (overwrite)
            {
                Vector512.Store(alpha * top, c);
                Vector512.Store(alpha * bottom, c + 8);
            }
            else
            {
                Vector512.Store(Vector512.FusedMultiplyAdd(alpha, top, beta * Vector512.Load(c)), c);
                Vector512.Store(Vector512.FusedMultiplyAdd(alpha, bottom, beta * Vector512.Load(c + 8)), c + 8);
            }
        }
    }

    /// <summary>8×6 tile on 256-bit vectors: twelve accumulators of two vectors per column.</summary>
    private readonly struct Kernel8x6 : IMicroKernel
    {
        public static int Rows => 8;

        public static int Columns => 6;

        public static unsafe void Run(int depth, double* a, nint aStep, double* b, double* c, nint ldc, double alpha, double beta)
        {
            Vector256<double> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default;
            Vector256<double> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;

            for (int p = 0; p < depth; p++, a += aStep, b += 6)
            {
                Vector256<double> a0 = Vector256.Load(a);
                Vector256<double> a1 = Vector256.Load(a + 4);
                Vector256<double> bj = Vector256.Create(b[0]);
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

            Vector256<double> va = Vector256.Create(alpha);
            Vector256<double> vb = Vector256.Create(beta);
            bool overwrite = beta == 0;
            Update(c, va, vb, overwrite, c00, c10);
            Update(c + ldc, va, vb, overwrite, c01, c11);
            Update(c + (2 * ldc), va, vb, overwrite, c02, c12);
            Update(c + (3 * ldc), va, vb, overwrite, c03, c13);
            Update(c + (4 * ldc), va, vb, overwrite, c04, c14);
            Update(c + (5 * ldc), va, vb, overwrite, c05, c15);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static unsafe void Update(double* c, Vector256<double> alpha, Vector256<double> beta, bool overwrite,
            Vector256<double> top, Vector256<double> bottom)
        {
            if (overwrite)
            {
                Vector256.Store(alpha * top, c);
                Vector256.Store(alpha * bottom, c + 4);
            }
            else
            {
                Vector256.Store(Vector256.FusedMultiplyAdd(alpha, top, beta * Vector256.Load(c)), c);
                Vector256.Store(Vector256.FusedMultiplyAdd(alpha, bottom, beta * Vector256.Load(c + 4)), c + 4);
            }
        }
    }
}
