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
/// it writes the sum into another array. The arrays come from a <see cref="PayloadBuffers"/> when one is given, and
/// the right operand's array goes back to it once added (a partial is added into another at most once).
/// </summary>
internal sealed class PartialSum
{
    private byte[]? owned;
    private FlatTree? received;
    private bool spent;

    private PartialSum(double loss, int tokens, byte[]? owned, FlatTree? received) => (Loss, Tokens, this.owned, this.received) = (loss, tokens, owned, received);

    /// <summary>The summed loss.</summary>
    public double Loss { get; private set; }

    /// <summary>The summed token count.</summary>
    public int Tokens { get; private set; }

    /// <summary>The values, 8 little-endian bytes each.</summary>
    public ReadOnlySpan<byte> Bytes => Live().owned ?? received!.Bytes;

    /// <summary>A piece's loss, tokens and gradients, the gradients written once into an array of <paramref name="buffers"/> (a new one without).</summary>
    /// <param name="loss">The piece's summed loss.</param>
    /// <param name="tokens">Its number of real target tokens.</param>
    /// <param name="gradients">Its gradients.</param>
    /// <param name="buffers">Where the array comes from.</param>
    public static PartialSum Of<T>(double loss, int tokens, T gradients, PayloadBuffers? buffers = null) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(gradients);
        return new(loss, tokens, FlatTree.Write(gradients, buffers), null);
    }

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

    /// <summary>
    /// left + right, the tree's addition: losses, tokens and every value. The result is left: its own array, or, when
    /// left was received, an array of <paramref name="buffers"/> (a new one without) holding the sum, written in the
    /// same pass. Right is spent: its own array goes back to <paramref name="buffers"/>, and reading it again throws.
    /// </summary>
    /// <param name="left">The left half's sum.</param>
    /// <param name="right">The right half's sum, of the same length.</param>
    /// <param name="buffers">Where arrays come from and go back to.</param>
    public static PartialSum Add(PartialSum left, PartialSum right, PayloadBuffers? buffers = null)
    {
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        if (ReferenceEquals(left, right)) throw new ArgumentException("expected two partial sums but got the same one twice", nameof(right));
        ReadOnlySpan<byte> augend = left.Bytes, addend = right.Bytes;
        if (augend.Length != addend.Length)
            throw new ArgumentException($"expected partial sums of the same length but got {augend.Length} and {addend.Length} bytes", nameof(right));
        var sum = left.owned ?? buffers?.Rent(augend.Length) ?? GC.AllocateUninitializedArray<byte>(augend.Length);
        if (BitConverter.IsLittleEndian) TensorPrimitives.Add(MemoryMarshal.Cast<byte, double>(augend), MemoryMarshal.Cast<byte, double>(addend), MemoryMarshal.Cast<byte, double>(sum.AsSpan()));
        else
            for (var i = 0; i < sum.Length; i += FlatTree.BytesPerValue)
                BinaryPrimitives.WriteDoubleLittleEndian(sum.AsSpan(i), BinaryPrimitives.ReadDoubleLittleEndian(augend[i..]) + BinaryPrimitives.ReadDoubleLittleEndian(addend[i..]));
        (left.owned, left.received) = (sum, null);
        (left.Loss, left.Tokens) = (left.Loss + right.Loss, left.Tokens + right.Tokens);
        right.Spend(buffers);
        return left;
    }

    /// <summary>
    /// The values, to be overwritten in place: this partial's own array, into which a received payload's values are
    /// first copied (an array of <paramref name="buffers"/>, a new one without), so a payload is never written.
    /// </summary>
    /// <param name="buffers">Where the array comes from.</param>
    public Span<byte> Writable(PayloadBuffers? buffers)
    {
        if (Live().owned is null)
        {
            var bytes = received!.Bytes;
            owned = buffers?.Rent(bytes.Length) ?? GC.AllocateUninitializedArray<byte>(bytes.Length);
            bytes.CopyTo(owned, 0);
            received = null;
        }
        return owned;
    }

    /// <summary>
    /// The values as a payload to send. Without <paramref name="lender"/> the array leaves with it and is never handed
    /// back; with it, the array goes back to <paramref name="lender"/> once Orleans has written the payload to the wire,
    /// or once a coordinator in the same process that got it by reference has summed it (<see cref="FlatTree.Lent"/>),
    /// for a sender that reads it no more.
    /// </summary>
    /// <param name="lender">Where the array goes back once written, or null.</param>
    public FlatTree ToPayload(PayloadBuffers? lender = null) =>
        Live().owned is { } bytes ? (lender is null ? new FlatTree(bytes) : FlatTree.Lent(bytes, lender)) : received!;

    /// <summary>The summed loss, tokens and gradients as a tree of <paramref name="like"/>'s structure.</summary>
    /// <param name="like">A tree of the model's structure.</param>
    public (double Loss, int Tokens, T Gradients) Result<T>(T like) where T : IParameterTree<T> =>
        (Loss, Tokens, Tree.Unflatten(like, BitConverter.IsLittleEndian ? MemoryMarshal.Cast<byte, double>(Bytes) : FlatTree.Decode(Bytes)));

    /// <summary>Ends this partial: its own array goes back to <paramref name="buffers"/> (when given), and reading it again throws.</summary>
    /// <param name="buffers">Where the array goes back to.</param>
    public void Spend(PayloadBuffers? buffers)
    {
        Live();
        if (owned is { } array) buffers?.Return(array);
        (owned, received, spent) = (null, null, true);
    }

    private PartialSum Live() => spent ? throw new InvalidOperationException("expected a partial sum not yet added into another or handed back, but this one was") : this;
}
