using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace RnnFunctional.Kernels;

/// <summary>
/// Loads and stores of <see cref="Vector{T}"/> lanes for element-wise loops written once, on whole vectors: such a
/// loop steps by <see cref="Width"/> from 0, and the last, shorter stretch of a span is read zero-padded and written
/// back only as far as the span reaches. Lane-wise +, − and × are correctly rounded (and never fused), so every
/// element gets the bits of the same formula on scalars, whatever the width and wherever the element sits.
/// </summary>
internal static class Lanes
{
    /// <summary>The number of doubles in a vector.</summary>
    public static int Width => Vector<double>.Count;

    /// <summary>Elements [at, at + <see cref="Width"/>) of <paramref name="s"/>, zeros past its end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<double> Load(ReadOnlySpan<double> s, int at) =>
        (uint)at + (uint)Width <= (uint)s.Length ? Vector.LoadUnsafe(ref MemoryMarshal.GetReference(s), (nuint)at) : LoadTail(s, at);

    /// <summary>Writes the lanes of <paramref name="v"/> to elements [at, at + <see cref="Width"/>) of <paramref name="s"/>, those that exist.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Span<double> s, int at, Vector<double> v)
    {
        if ((uint)at + (uint)Width <= (uint)s.Length) v.StoreUnsafe(ref MemoryMarshal.GetReference(s), (nuint)at);
        else StoreTail(s, at, v);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector<double> LoadTail(ReadOnlySpan<double> s, int at)
    {
        Span<double> pad = stackalloc double[Width];
        pad.Clear();
        s[at..].CopyTo(pad);
        return new Vector<double>(pad);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void StoreTail(Span<double> s, int at, Vector<double> v)
    {
        Span<double> pad = stackalloc double[Width];
        v.CopyTo(pad);
        pad[..(s.Length - at)].CopyTo(s[at..]);
    }
}
