using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace RnnFunctional.Kernels;

/// <summary>
/// Element-wise loops on <see cref="Vector{T}"/> lanes, each formula written once over whole vectors: a loop steps by
/// <see cref="Width"/> from 0 and reads and writes through an <see cref="IAccess"/>, <see cref="Whole"/> when the
/// length is a multiple of the width (checked loads and stores, no tail), else <see cref="Padded"/>, which reads the
/// last, shorter stretch zero-padded and writes it back only as far as the span reaches. Lane-wise +, − and × are
/// correctly rounded (and never fused), so every element gets the bits of the same formula on scalars, whatever the
/// width and wherever the element sits.
/// </summary>
internal static class Lanes
{
    /// <summary>The number of doubles in a vector.</summary>
    public static int Width => Vector<double>.Count;

    /// <summary>Whether spans of <paramref name="length"/> elements hold whole vectors only (<see cref="Whole"/> reads them).</summary>
    public static bool IsWhole(int length) => length % Width == 0;

    /// <summary>How a loop reads and writes the vector at an element index.</summary>
    public interface IAccess
    {
        /// <summary>Elements [at, at + <see cref="Width"/>) of <paramref name="s"/>.</summary>
        static abstract Vector<double> Load(ReadOnlySpan<double> s, int at);

        /// <summary>Writes <paramref name="v"/> to elements [at, at + <see cref="Width"/>) of <paramref name="s"/>.</summary>
        static abstract void Store(Span<double> s, int at, Vector<double> v);
    }

    /// <summary>Spans of whole vectors: a load or store past the end throws.</summary>
    public readonly struct Whole : IAccess
    {
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<double> Load(ReadOnlySpan<double> s, int at)
        {
            if (at < 0 || at > s.Length - Width) PastTheEnd(s.Length, at);
            return Vector.LoadUnsafe(ref MemoryMarshal.GetReference(s), (nuint)at);
        }

        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(Span<double> s, int at, Vector<double> v)
        {
            if (at < 0 || at > s.Length - Width) PastTheEnd(s.Length, at);
            v.StoreUnsafe(ref MemoryMarshal.GetReference(s), (nuint)at);
        }

        [DoesNotReturn]
        private static void PastTheEnd(int length, int at) =>
            throw new ArgumentOutOfRangeException(nameof(at), $"expected a vector of {Width} within a span of {length} but it starts at {at}");
    }

    /// <summary>Spans of any length: the lanes past the end are read as zeros and not written.</summary>
    public readonly struct Padded : IAccess
    {
        /// <inheritdoc />
        public static Vector<double> Load(ReadOnlySpan<double> s, int at)
        {
            if (at + Width <= s.Length) return new(s[at..]);
            Span<double> pad = stackalloc double[Width];
            pad.Clear();
            s[at..].CopyTo(pad);
            return new(pad);
        }

        /// <inheritdoc />
        public static void Store(Span<double> s, int at, Vector<double> v)
        {
            if (at + Width <= s.Length)
            {
                v.CopyTo(s[at..]);
                return;
            }
            Span<double> pad = stackalloc double[Width];
            v.CopyTo(pad);
            pad[..(s.Length - at)].CopyTo(s[at..]);
        }
    }

    /// <summary>y = a⊙x, element-wise (y may be a or x).</summary>
    public static void Multiply(ReadOnlySpan<double> a, ReadOnlySpan<double> x, Span<double> y)
    {
        if (IsWhole(y.Length)) Multiply<Whole>(a, x, y);
        else Multiply<Padded>(a, x, y);
    }

    private static void Multiply<T>(ReadOnlySpan<double> a, ReadOnlySpan<double> x, Span<double> y) where T : struct, IAccess
    {
        for (var k = 0; k < y.Length; k += Width) T.Store(y, k, T.Load(a, k) * T.Load(x, k));
    }

    /// <summary>y = a·x, element-wise (y may be x).</summary>
    public static void Multiply(ReadOnlySpan<double> x, double a, Span<double> y)
    {
        var v = new Vector<double>(a);
        if (IsWhole(y.Length))
            for (var k = 0; k < y.Length; k += Width) Whole.Store(y, k, Whole.Load(x, k) * v);
        else
            for (var k = 0; k < y.Length; k += Width) Padded.Store(y, k, Padded.Load(x, k) * v);
    }

    /// <summary>y = a⊙x + b, element-wise, the product rounded before the sum (y may be any of the others).</summary>
    public static void MultiplyAdd(ReadOnlySpan<double> a, ReadOnlySpan<double> x, ReadOnlySpan<double> b, Span<double> y)
    {
        if (IsWhole(y.Length)) MultiplyAdd<Whole>(a, x, b, y);
        else MultiplyAdd<Padded>(a, x, b, y);
    }

    private static void MultiplyAdd<T>(ReadOnlySpan<double> a, ReadOnlySpan<double> x, ReadOnlySpan<double> b, Span<double> y) where T : struct, IAccess
    {
        for (var k = 0; k < y.Length; k += Width) T.Store(y, k, T.Load(a, k) * T.Load(x, k) + T.Load(b, k));
    }

    /// <summary>y = a⊙x + b⊙w, element-wise, each product rounded before the sum (y may be any of the others).</summary>
    public static void SumOfProducts(ReadOnlySpan<double> a, ReadOnlySpan<double> x, ReadOnlySpan<double> b, ReadOnlySpan<double> w, Span<double> y)
    {
        if (IsWhole(y.Length)) SumOfProducts<Whole>(a, x, b, w, y);
        else SumOfProducts<Padded>(a, x, b, w, y);
    }

    private static void SumOfProducts<T>(ReadOnlySpan<double> a, ReadOnlySpan<double> x, ReadOnlySpan<double> b, ReadOnlySpan<double> w, Span<double> y)
        where T : struct, IAccess
    {
        for (var k = 0; k < y.Length; k += Width) T.Store(y, k, T.Load(a, k) * T.Load(x, k) + T.Load(b, k) * T.Load(w, k));
    }

    /// <summary>y = a⊙x + b⊙w + c, element-wise, in this order (y may be any of the others).</summary>
    public static void SumOfProducts(ReadOnlySpan<double> a, ReadOnlySpan<double> x, ReadOnlySpan<double> b, ReadOnlySpan<double> w,
        ReadOnlySpan<double> c, Span<double> y)
    {
        if (IsWhole(y.Length)) SumOfProducts<Whole>(a, x, b, w, c, y);
        else SumOfProducts<Padded>(a, x, b, w, c, y);
    }

    private static void SumOfProducts<T>(ReadOnlySpan<double> a, ReadOnlySpan<double> x, ReadOnlySpan<double> b, ReadOnlySpan<double> w,
        ReadOnlySpan<double> c, Span<double> y) where T : struct, IAccess
    {
        for (var k = 0; k < y.Length; k += Width) T.Store(y, k, T.Load(a, k) * T.Load(x, k) + T.Load(b, k) * T.Load(w, k) + T.Load(c, k));
    }

    /// <summary>sum += x and sumTimes += x⊙y, element-wise: a bias's and a gain's gradient from the same x.</summary>
    public static void AddWithProduct(ReadOnlySpan<double> x, ReadOnlySpan<double> y, Span<double> sum, Span<double> sumTimes)
    {
        if (IsWhole(x.Length)) AddWithProduct<Whole>(x, y, sum, sumTimes);
        else AddWithProduct<Padded>(x, y, sum, sumTimes);
    }

    private static void AddWithProduct<T>(ReadOnlySpan<double> x, ReadOnlySpan<double> y, Span<double> sum, Span<double> sumTimes) where T : struct, IAccess
    {
        for (var k = 0; k < x.Length; k += Width)
        {
            var v = T.Load(x, k);
            T.Store(sum, k, T.Load(sum, k) + v);
            T.Store(sumTimes, k, T.Load(sumTimes, k) + v * T.Load(y, k));
        }
    }

    /// <summary>
    /// The backward of z = gx⊙x̂ + gh⊙ĥ + b on a block, in one pass, element-wise: db += dz, dgx += dz⊙x̂, dgh += dz⊙ĥ,
    /// dĥ = dz⊙gh, then dx̂ = dz⊙gx (<paramref name="dxHat"/> may be <paramref name="dz"/>).
    /// </summary>
    public static void GainsBackward(ReadOnlySpan<double> dz, ReadOnlySpan<double> xHat, ReadOnlySpan<double> hHat, ReadOnlySpan<double> gx,
        ReadOnlySpan<double> gh, Span<double> db, Span<double> dgx, Span<double> dgh, Span<double> dxHat, Span<double> dhHat)
    {
        if (IsWhole(dz.Length)) GainsBackward<Whole>(dz, xHat, hHat, gx, gh, db, dgx, dgh, dxHat, dhHat);
        else GainsBackward<Padded>(dz, xHat, hHat, gx, gh, db, dgx, dgh, dxHat, dhHat);
    }

    private static void GainsBackward<T>(ReadOnlySpan<double> dz, ReadOnlySpan<double> xHat, ReadOnlySpan<double> hHat, ReadOnlySpan<double> gx,
        ReadOnlySpan<double> gh, Span<double> db, Span<double> dgx, Span<double> dgh, Span<double> dxHat, Span<double> dhHat) where T : struct, IAccess
    {
        for (var k = 0; k < dz.Length; k += Width)
        {
            var d = T.Load(dz, k);
            T.Store(db, k, T.Load(db, k) + d);                                          // db += dz
            T.Store(dgx, k, T.Load(dgx, k) + d * T.Load(xHat, k));                      // dgx += dz⊙x̂
            T.Store(dgh, k, T.Load(dgh, k) + d * T.Load(hHat, k));                      // dgh += dz⊙ĥ
            T.Store(dhHat, k, d * T.Load(gh, k));                                       // dĥ = dz⊙gh
            T.Store(dxHat, k, d * T.Load(gx, k));                                       // dx̂ = dz⊙gx
        }
    }

    /// <summary>sum += x⊙y, element-wise: a gain's gradient.</summary>
    public static void AddProduct(ReadOnlySpan<double> x, ReadOnlySpan<double> y, Span<double> sum)
    {
        if (IsWhole(x.Length)) AddProduct<Whole>(x, y, sum);
        else AddProduct<Padded>(x, y, sum);
    }

    private static void AddProduct<T>(ReadOnlySpan<double> x, ReadOnlySpan<double> y, Span<double> sum) where T : struct, IAccess
    {
        for (var k = 0; k < x.Length; k += Width) T.Store(sum, k, T.Load(sum, k) + T.Load(x, k) * T.Load(y, k));
    }
}
