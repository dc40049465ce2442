using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Double;

namespace RnnFunctional.Kernels;

/// <summary>
/// The matrix products and element-wise maps every cell is written in. All products of the library go through
/// <see cref="Product"/>, so the kernel behind them can change without touching a cell. Every function returns a
/// freshly allocated matrix and leaves its arguments untouched.
/// </summary>
internal static class Ops
{
    /// <summary>op(a)·op(b), where op transposes when the flag is set, computed by <see cref="Gemm"/> in <see cref="Compute.Precision"/>.</summary>
    public static Matrix<double> Product(Matrix<double> a, bool transA, Matrix<double> b, bool transB)
    {
        var (m, k) = transA ? (a.ColumnCount, a.RowCount) : (a.RowCount, a.ColumnCount);
        var n = transB ? b.RowCount : b.ColumnCount;
        var c = new double[m * n];
        Gemm.Multiply(Compute.Precision, transA, transB, m, n, k, 1.0, Storage(a), default, a.RowCount, Storage(b), b.RowCount, 0.0, c, m);
        return DenseMatrix.Build.Dense(m, n, c);
    }

    /// <summary>c + op(a)·op(b), written into <paramref name="c"/>, which must be a fresh matrix owned by the caller.</summary>
    private static Matrix<double> AddProduct(Matrix<double> c, Matrix<double> a, bool transA, Matrix<double> b, bool transB)
    {
        var (m, k) = transA ? (a.ColumnCount, a.RowCount) : (a.RowCount, a.ColumnCount);
        var n = transB ? b.RowCount : b.ColumnCount;
        Gemm.Multiply(Compute.Precision, transA, transB, m, n, k, 1.0, Storage(a), default, a.RowCount, Storage(b), b.RowCount, 1.0, Storage(c), m);
        return c;
    }

    /// <summary>a·b.</summary>
    public static Matrix<double> Mul(Matrix<double> a, Matrix<double> b) => Product(a, false, b, false);

    /// <summary>aᵀ·b.</summary>
    public static Matrix<double> MulTA(Matrix<double> a, Matrix<double> b) => Product(a, true, b, false);

    /// <summary>a·bᵀ.</summary>
    public static Matrix<double> MulTB(Matrix<double> a, Matrix<double> b) => Product(a, false, b, true);

    /// <summary>w·x + b·1ᵀ: an affine map applied to every column of x.</summary>
    public static Matrix<double> Affine(Matrix<double> w, Matrix<double> x, Vector<double> b) => AddColumn(Mul(w, x), b);

    /// <summary>
    /// (w1·x1 + b·1ᵀ) + w2·x2, in this order: a sequence kernel computes the first part for all steps at once and
    /// adds the second step by step, with the same bits.
    /// </summary>
    public static Matrix<double> Affine(Matrix<double> w1, Matrix<double> x1, Matrix<double> w2, Matrix<double> x2, Vector<double> b) =>
        AddProduct(AddColumn(Mul(w1, x1), b), w2, false, x2, false);

    /// <summary>
    /// w·[a; x] + b·1ᵀ for a gate matrix w = [w_a w_x] (its first a.RowCount columns act on a), computed as
    /// (w_x·x + b·1ᵀ) + w_a·a: the order in which a sequence kernel computes it, the x part for many steps at once.
    /// </summary>
    public static Matrix<double> GateAffine(Matrix<double> w, Matrix<double> a, Matrix<double> x, Vector<double> b)
    {
        var (gate, n) = (Block.Of(w), a.RowCount);
        var (z, zb) = Block.FreshUninitialized(w.RowCount, x.ColumnCount);
        var precision = Compute.Precision;
        Multiply(zb, gate.Slice(n, gate.Columns - n), false, Block.Of(x), false, precision: precision);
        Elementwise.AddToColumns(zb.Span, Block.Of(b).Span);
        Multiply(zb, gate.Slice(0, n), false, Block.Of(a), false, beta: 1, precision);
        return z;
    }

    /// <summary>
    /// c ← op(a)·op(b) + beta·c on blocks (beta = 0 overwrites c without reading it), in <paramref name="precision"/>
    /// (with a's float32 twin when it has one, <see cref="Block.Single"/>); an untransposed a may have more rows than c, the extra ones unread (<see cref="Block.Padded"/>).
    /// </summary>
    public static void Multiply(Block c, Block a, bool transA, Block b, bool transB, double beta = 0, Precision precision = Precision.Double)
    {
        var k = transA ? a.Rows : a.Columns;
        Debug.Assert((transA ? a.Columns == c.Rows : a.Rows >= c.Rows) && (transB ? b.Columns : b.Rows) == k && (transB ? b.Rows : b.Columns) == c.Columns,
            "Block shapes do not agree.");                                                                  // an untransposed a may be padded (Block.Padded)
        Gemm.Multiply(precision, transA, transB, c.Rows, c.Columns, k, 1.0, a.Span, a.SingleSpan, a.Rows, b.Span, b.Rows, beta, c.Span, c.Rows);
    }

    /// <summary>
    /// <see cref="Multiply(Block, Block, bool, Block, bool, double, Precision)"/> with the rows of c shared by a team's threads
    /// (<see cref="Team.Band"/>), the same bits as on one thread; on the calling thread alone when there is no team. A
    /// <paramref name="bias"/>, when given, is then added to every column (<see cref="Elementwise.AddToColumns"/>), each
    /// thread on its own rows.
    /// </summary>
    public static void Multiply(Team? team, Precision precision, Block c, Block a, bool transA, Block b, bool transB, double beta = 0, Block bias = default)
    {
        if (team is null || c.Rows < 32)
        {
            Multiply(c, a, transA, b, transB, beta, precision);
            if (bias.Data is not null) Elementwise.AddToColumns(c.Span, bias.Span);
            return;
        }
        var k = transA ? a.Rows : a.Columns;
        team.Run(i =>
        {
            var (r0, r1) = team.Band(c.Rows, i);
            var from = transA ? r0 * a.Rows : r0;
            if (r1 <= r0) return;
            Gemm.Multiply(precision, transA, transB, r1 - r0, c.Columns, k, 1.0, a.Span[from..], From(a.SingleSpan, from), a.Rows, b.Span, b.Rows, beta,
                c.Span[r0..], c.Rows);
            if (bias.Data is null) return;
            var band = bias.Span[r0..r1];                                                       // + bias·1ᵀ on the band's rows: the bits of AddToColumns
            var rows = r1 - r0;
            for (var j = 0; j < c.Columns; j++)
            {
                var column = c.Span.Slice(j * c.Rows + r0, rows);
                System.Numerics.Tensors.TensorPrimitives.Add(column, band, column);
            }
        });
    }

    /// <summary>
    /// sums += the sum of the columns of <paramref name="block"/>, first column first (<see cref="Elementwise.AddColumnsTo"/>),
    /// with the rows shared by a team's threads: each row's sum is added in the same order, so the bits are those of one thread.
    /// </summary>
    public static void AddColumnsTo(Team? team, Block block, Block sums)
    {
        if (team is null || block.Rows < 32)
        {
            Elementwise.AddColumnsTo(block.Span, sums.Span);
            return;
        }
        team.Run(i =>
        {
            var (r0, r1) = team.Band(block.Rows, i);
            var band = sums.Span[r0..r1];
            for (var j = 0; j < block.Columns; j++) System.Numerics.Tensors.TensorPrimitives.Add(band, block.Span.Slice(j * block.Rows + r0, r1 - r0), band);
        });
    }

    /// <summary>A float32 twin from <paramref name="start"/>, or empty when there is none.</summary>
    public static ReadOnlySpan<float> From(ReadOnlySpan<float> twin, int start) => twin.IsEmpty ? twin : twin[start..];

    /// <summary>m + b·1ᵀ, written into <paramref name="m"/>, which must be a fresh matrix owned by the caller.</summary>
    private static Matrix<double> AddColumn(Matrix<double> m, Vector<double> b)
    {
        var values = Storage(m);
        var rows = m.RowCount;
        for (var j = 0; j < m.ColumnCount; j++)
            for (var i = 0; i < rows; i++) values[j * rows + i] += b[i];
        return m;
    }

    /// <summary>The sum of each row, adding the columns first to last: a vector of length RowCount.</summary>
    public static Vector<double> RowSums(Matrix<double> m)
    {
        var sums = new double[m.RowCount];
        Elementwise.AddColumnsTo(Storage(m), sums);
        return Vector<double>.Build.Dense(sums);
    }

    /// <summary>Element-wise map into a new matrix.</summary>
    public static Matrix<double> Map(Matrix<double> m, Func<double, double> f) => m.Map(f);

    /// <summary>Element-wise tanh, by the same kernel as the sequence kernels.</summary>
    public static Matrix<double> Tanh(Matrix<double> m)
    {
        var values = new double[m.RowCount * m.ColumnCount];
        Elementwise.Tanh(Storage(m), values);
        return DenseMatrix.Build.Dense(m.RowCount, m.ColumnCount, values);
    }

    /// <summary>Element-wise max(0, x).</summary>
    public static Matrix<double> Relu(Matrix<double> m) => m.Map(static x => x > 0 ? x : 0.0);

    /// <summary>Element-wise logistic sigmoid 1/(1+e^−x), exact for large |x|.</summary>
    public static Matrix<double> Sigmoid(Matrix<double> m)
    {
        var values = new double[m.RowCount * m.ColumnCount];
        Elementwise.Sigmoid(Storage(m), values);
        return DenseMatrix.Build.Dense(m.RowCount, m.ColumnCount, values);
    }

    /// <summary>The logistic sigmoid of one number, without overflow for large |x|.</summary>
    public static double Sigmoid(double x) => x >= 0 ? 1.0 / (1.0 + Math.Exp(-x)) : Math.Exp(x) / (1.0 + Math.Exp(x));

    /// <summary>Element-wise product a⊙b.</summary>
    public static Matrix<double> Hadamard(Matrix<double> a, Matrix<double> b) => a.PointwiseMultiply(b);

    /// <summary>Element-wise sum a + b.</summary>
    public static Matrix<double> Add(Matrix<double> a, Matrix<double> b) => a.Add(b);

    /// <summary>Element-wise difference a − b.</summary>
    public static Matrix<double> Subtract(Matrix<double> a, Matrix<double> b) => a.Subtract(b);

    /// <summary>The sum of any number of matrices of one shape, added left to right.</summary>
    public static Matrix<double> Sum(params ReadOnlySpan<Matrix<double>> terms)
    {
        var sum = terms[0].Clone();
        for (var k = 1; k < terms.Length; k++) sum.Add(terms[k], sum);
        return sum;
    }

    /// <summary>Element-wise 1 − m: the complement of a gate.</summary>
    public static Matrix<double> OneMinus(Matrix<double> m) => m.Map(static v => 1.0 - v);

    /// <summary>
    /// The gradient through s = σ(z) given s and ds = ∂L/∂s: ∂L/∂z = ds ⊙ s ⊙ (1 − s). Exact where the sigmoid
    /// saturates: s = 1 gives 0.
    /// </summary>
    public static Matrix<double> SigmoidBackward(Matrix<double> s, Matrix<double> ds) => s.Map2(static (v, d) => d * v * (1.0 - v), ds, Zeros.Include);

    /// <summary>The gradient through t = tanh(z) given t and dt = ∂L/∂t: ∂L/∂z = dt ⊙ (1 − t²).</summary>
    public static Matrix<double> TanhBackward(Matrix<double> t, Matrix<double> dt) => t.Map2(static (v, d) => d * (1.0 - v * v), dt, Zeros.Include);

    /// <summary>
    /// The blocks stacked on top of each other, [b₀; b₁; …]: a (Σ rows)×columns matrix. Every block must have the
    /// same number of columns. The inverse of taking <see cref="Rows"/> of consecutive blocks.
    /// </summary>
    public static Matrix<double> StackRows(params ReadOnlySpan<Matrix<double>> blocks)
    {
        var columns = blocks[0].ColumnCount;
        var rows = 0;
        foreach (var b in blocks)
        {
            if (b.ColumnCount != columns)
                throw new ArgumentException($"expected every block to have {columns} columns but got {b.ColumnCount}", nameof(blocks));
            rows += b.RowCount;
        }
        var values = new double[rows * columns];
        var offset = 0;
        foreach (var b in blocks)
        {
            var source = b.AsColumnMajorArray() ?? b.ToColumnMajorArray();
            for (var j = 0; j < columns; j++) Array.Copy(source, j * b.RowCount, values, j * rows + offset, b.RowCount);
            offset += b.RowCount;
        }
        return Matrix<double>.Build.Dense(rows, columns, values);
    }

    /// <summary>A copy of rows start..start+count−1 of <paramref name="m"/>, every column: a count×columns matrix.</summary>
    public static Matrix<double> Rows(Matrix<double> m, int start, int count) => m.SubMatrix(start, count, 0, m.ColumnCount);

    /// <summary>Softmax of each column, each shifted by its own maximum (<see cref="Elementwise.SoftmaxColumn(ReadOnlySpan{double}, Span{double})"/>).</summary>
    public static Matrix<double> SoftmaxColumns(Matrix<double> logits)
    {
        var (rows, cols) = (logits.RowCount, logits.ColumnCount);
        var values = logits.ToColumnMajorArray();
        for (var j = 0; j < cols; j++) Elementwise.SoftmaxColumn(values.AsSpan(j * rows, rows), values.AsSpan(j * rows, rows));
        return DenseMatrix.Build.Dense(rows, cols, values);
    }

    /// <summary>
    /// Σ_t of the compensated sum of step t's m values, for per-example values laid out step after step (T×m): a loss
    /// summed per step, then over the steps, as a step-by-step evaluation sums it.
    /// </summary>
    public static double SumPerStep(double[] values, int m) =>
        CompensatedSum(Enumerable.Range(0, values.Length / m).Select(t => CompensatedSum(new ArraySegment<double>(values, t * m, m))));

    /// <summary>A zero matrix of the shape of <paramref name="like"/>.</summary>
    public static Matrix<double> ZerosLike(Matrix<double> like) => Matrix<double>.Build.Dense(like.RowCount, like.ColumnCount);

    /// <summary>A zero vector of the length of <paramref name="like"/>.</summary>
    public static Vector<double> ZerosLike(Vector<double> like) => Vector<double>.Build.Dense(like.Count);

    /// <summary>Σ values with Neumaier's compensated summation: the error does not grow with the number of terms.</summary>
    public static double CompensatedSum(IEnumerable<double> values)
    {
        var (sum, compensation) = (0.0, 0.0);
        foreach (var v in values)
        {
            var next = sum + v;
            compensation += Math.Abs(sum) >= Math.Abs(v) ? (sum - next) + v : (v - next) + sum;
            sum = next;
        }
        return sum + compensation;
    }

    /// <summary>The column-major entries of a matrix: the storage itself for a dense matrix, else a copy.</summary>
    private static double[] Storage(Matrix<double> m) => m.AsColumnMajorArray() ?? m.ToColumnMajorArray();
}
