using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace RnnFunctional.Distributed;

/// <summary>
/// The sum of a step's computed pieces in piece order, added one payload at a time straight from the wire's bytes:
/// the values of the first piece, then, for each later piece, every value added to the running sum
/// (s ← s + g, element by element). That is <see cref="PieceTraining.Sum{T}"/>'s left fold of
/// <see cref="Tree.Add{T}"/> over the same pieces, value for value, so the bits are the same, without a tree per
/// piece or a new tree per addition. The losses and token counts are summed in the same order.
/// </summary>
internal sealed class PieceSum
{
    private readonly long count;
    private double[]? values;
    private double loss;
    private int tokens;

    /// <summary>An empty sum of payloads of <paramref name="count"/> values each.</summary>
    /// <param name="count">The number of values of the model's parameter tree.</param>
    public PieceSum(long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        this.count = count;
    }

    /// <summary>Whether at least one piece has been added.</summary>
    public bool IsEmpty => values is null;

    /// <summary>
    /// Adds the next piece in piece order: its loss, tokens and gradient payload, which must hold exactly the model's
    /// number of values (<see cref="FlatTree.Expect"/>; <paramref name="what"/> names the payload in the error).
    /// </summary>
    /// <param name="pieceLoss">The piece's summed loss.</param>
    /// <param name="pieceTokens">Its number of real target tokens.</param>
    /// <param name="gradients">Its gradients.</param>
    /// <param name="what">What the payload is, for the error.</param>
    public void Add(double pieceLoss, int pieceTokens, FlatTree gradients, string what)
    {
        ArgumentNullException.ThrowIfNull(gradients);
        var bytes = gradients.Expect(count, what).Bytes.AsSpan();
        if (values is null)
        {
            values = FlatTree.Decode(bytes);
            (loss, tokens) = (pieceLoss, pieceTokens);
            return;
        }
        (loss, tokens) = (loss + pieceLoss, tokens + pieceTokens);
        if (BitConverter.IsLittleEndian) TensorPrimitives.Add(values, MemoryMarshal.Cast<byte, double>(bytes), values); // s[i] + g[i], one rounding each
        else
            for (var i = 0; i < values.Length; i++) values[i] += BinaryPrimitives.ReadDoubleLittleEndian(bytes[(i * FlatTree.BytesPerValue)..]);
    }

    /// <summary>The summed loss, tokens and gradients as a tree of <paramref name="like"/>'s structure.</summary>
    /// <param name="like">A tree of the model's structure.</param>
    public (double Loss, int Tokens, T Gradients) Result<T>(T like) where T : IParameterTree<T> =>
        values is null
            ? throw new InvalidOperationException("the sum has no piece")
            : (loss, tokens, Tree.Unflatten(like, values));
}
