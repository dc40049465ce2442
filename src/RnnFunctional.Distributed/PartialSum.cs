using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace RnnFunctional.Distributed;

/// <summary>
/// The loss, tokens and gradients of a node of <see cref="PieceTree"/> as 8-byte values (the wire's format,
/// <see cref="FlatTree"/>): a piece's gradients, a payload received, or the sum of two partials. A worker sums its
/// block's pieces this way and the coordinator sums the blocks' payloads, with <see cref="Add"/> as the tree's
/// addition: s ← s + g element by element, one rounding each, as <see cref="Tree.Add{T}"/> computes it, so the bits
/// are those of <see cref="PieceTraining.Sum{T}"/>. A received payload is read, never written: the first addition into
/// it copies it.
/// </summary>
internal sealed class PartialSum
{
    private byte[]? owned;
    private FlatTree? received;

    private PartialSum(double loss, int tokens, byte[]? owned, FlatTree? received) => (Loss, Tokens, this.owned, this.received) = (loss, tokens, owned, received);

    /// <summary>The summed loss.</summary>
    public double Loss { get; private set; }

    /// <summary>The summed token count.</summary>
    public int Tokens { get; private set; }

    /// <summary>The values, 8 little-endian bytes each.</summary>
    public ReadOnlySpan<byte> Bytes => owned ?? received!.Bytes;

    /// <summary>A piece's loss, tokens and gradients.</summary>
    /// <param name="loss">The piece's summed loss.</param>
    /// <param name="tokens">Its number of real target tokens.</param>
    /// <param name="gradients">Its gradients.</param>
    public static PartialSum Of<T>(double loss, int tokens, T gradients) where T : IParameterTree<T> => new(loss, tokens, FlatTree.Of(gradients).Bytes, null);

    /// <summary>
    /// A partial sum received from a worker; its payload must hold exactly <paramref name="count"/> values
    /// (<see cref="FlatTree.Expect"/>, <paramref name="what"/> naming it in the error).
    /// </summary>
    /// <param name="loss">The partial's loss.</param>
    /// <param name="tokens">Its tokens.</param>
    /// <param name="payload">Its gradients.</param>
    /// <param name="count">The number of values of the model's parameter tree.</param>
    /// <param name="what">What the payload is, for the error.</param>
    public static PartialSum Received(double loss, int tokens, FlatTree payload, long count, string what)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return new(loss, tokens, null, payload.Expect(count, what));
    }

    /// <summary>left + right, the tree's addition: losses, tokens and every value; the result is left's storage (copied first when it was received).</summary>
    /// <param name="left">The left half's sum.</param>
    /// <param name="right">The right half's sum, of the same length.</param>
    public static PartialSum Add(PartialSum left, PartialSum right)
    {
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        if (left.Bytes.Length != right.Bytes.Length)
            throw new ArgumentException($"expected partial sums of the same length but got {left.Bytes.Length} and {right.Bytes.Length} bytes", nameof(right));
        var sum = left.owned ??= left.received!.Bytes.ToArray();
        left.received = null;
        (left.Loss, left.Tokens) = (left.Loss + right.Loss, left.Tokens + right.Tokens);
        var add = right.Bytes;
        if (BitConverter.IsLittleEndian) TensorPrimitives.Add(MemoryMarshal.Cast<byte, double>(sum.AsSpan()), MemoryMarshal.Cast<byte, double>(add), MemoryMarshal.Cast<byte, double>(sum.AsSpan()));
        else
            for (var i = 0; i < sum.Length; i += FlatTree.BytesPerValue)
                BinaryPrimitives.WriteDoubleLittleEndian(sum.AsSpan(i), BinaryPrimitives.ReadDoubleLittleEndian(sum.AsSpan(i)) + BinaryPrimitives.ReadDoubleLittleEndian(add[i..]));
        return left;
    }

    /// <summary>The values as a payload to send.</summary>
    public FlatTree ToPayload() => owned is { } bytes ? new FlatTree(bytes) : received!;

    /// <summary>The summed loss, tokens and gradients as a tree of <paramref name="like"/>'s structure.</summary>
    /// <param name="like">A tree of the model's structure.</param>
    public (double Loss, int Tokens, T Gradients) Result<T>(T like) where T : IParameterTree<T> =>
        (Loss, Tokens, Tree.Unflatten(like, BitConverter.IsLittleEndian ? MemoryMarshal.Cast<byte, double>(Bytes) : FlatTree.Decode(Bytes)));
}
