using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Runtime.InteropServices;

namespace RnnFunctional.Distributed;

/// <summary>The contiguous pieces [<see cref="Start"/>, <see cref="End"/>) of a step, a node of <see cref="PieceTree"/>.</summary>
/// <param name="Start">The first piece.</param>
/// <param name="End">One past the last piece.</param>
public readonly record struct PieceBlock(int Start, int End)
{
    /// <summary>The number of pieces.</summary>
    public int Count => End - Start;

    /// <inheritdoc />
    public override string ToString() => $"pieces [{Start}, {End})";
}

/// <summary>
/// The fixed order in which the P pieces of a step are summed: a balanced binary tree over the pieces in piece order.
/// The node [s, e) with more than one piece is the sum of its halves [s, s + ⌊(e−s)/2⌋) and [s + ⌊(e−s)/2⌋, e), left
/// plus right; a piece with no column is left out of the sum (a node with one present half is that half, unchanged).
/// The tree depends on P alone, so any node's sum is the same bits wherever it is computed: a worker that computes a
/// node's pieces (a block, <see cref="Blocks"/>) sends one partial sum, and the coordinator adds the blocks' partials
/// by the nodes above them. <see cref="PieceTraining.Sum{T}"/> is this sum of the pieces' trees.
/// </summary>
public static class PieceTree
{
    /// <summary>The largest piece count a run may have: blocks are named in 20 bits of a grain key.</summary>
    public const int MaxPieces = 1 << 20;

    /// <summary>The halves of a node of at least two pieces: the left one has ⌊count/2⌋ pieces.</summary>
    /// <param name="node">A node of two pieces or more.</param>
    [Pure]
    public static (PieceBlock Left, PieceBlock Right) Halves(PieceBlock node)
    {
        if (node.Count < 2) throw new ArgumentException($"expected a node of at least two pieces but got {node}", nameof(node));
        var middle = node.Start + node.Count / 2;
        return (new(node.Start, middle), new(middle, node.End));
    }

    /// <summary>
    /// The blocks of a step for <paramref name="workers"/> workers: min(workers, P) nodes of the tree that cover the
    /// pieces in order, got from the root by halving the largest block (the first of the largest) until there are
    /// enough. Each is a node of the tree, so a worker computes one and sends one partial sum.
    /// </summary>
    /// <param name="pieces">P ≥ 1.</param>
    /// <param name="workers">The number of workers, at least 1.</param>
    [Pure]
    public static ImmutableArray<PieceBlock> Blocks(int pieces, int workers)
    {
        CheckPieces(pieces);
        if (workers < 1) throw new ArgumentOutOfRangeException(nameof(workers), workers, $"expected at least one worker but got {workers}");
        var blocks = new List<PieceBlock> { new(0, pieces) };
        while (blocks.Count < Math.Min(workers, pieces))
        {
            var largest = 0;
            for (var i = 1; i < blocks.Count; i++)
                if (blocks[i].Count > blocks[largest].Count) largest = i;
            var (left, right) = Halves(blocks[largest]);
            blocks[largest] = left;
            blocks.Insert(largest + 1, right);
        }
        return [.. blocks];
    }

    /// <summary>
    /// Which group of a step's columns each piece position holds (<see cref="PieceTraining.Cut"/>): groups 0 … P−1, in
    /// column order, dealt from the root down, at each node in the order left, right, right, left, left, right, … (a
    /// side that is full is skipped), so each half of every node holds groups from the whole range. For P = 8 the
    /// positions hold groups 0, 7, 3, 4, 1, 6, 2, 5: each half holds groups summing to 14, each quarter to 7.
    /// </summary>
    /// <param name="pieces">P ≥ 1.</param>
    [Pure]
    public static ImmutableArray<int> Deal(int pieces)
    {
        CheckPieces(pieces);
        var groups = new int[pieces];
        DealInto(new PieceBlock(0, pieces), [.. Enumerable.Range(0, pieces)], groups);
        return ImmutableCollectionsMarshal.AsImmutableArray(groups);
    }

    private static void DealInto(PieceBlock node, int[] sorted, int[] groups)
    {
        if (node.Count == 1)
        {
            groups[node.Start] = sorted[0];
            return;
        }
        var (l, r) = Halves(node);
        var (left, right) = (new List<int>(l.Count), new List<int>(r.Count));
        for (var k = 0; k < sorted.Length; k++)
            if ((k % 4 is 0 or 3 && left.Count < l.Count) || right.Count == r.Count) left.Add(sorted[k]);
            else right.Add(sorted[k]);
        DealInto(l, [.. left], groups);
        DealInto(r, [.. right], groups);
    }

    /// <summary>Every piece of the step as its own block: [i, i+1) for i in [0, P).</summary>
    /// <param name="pieces">P ≥ 1.</param>
    [Pure]
    public static ImmutableArray<PieceBlock> Singles(int pieces)
    {
        CheckPieces(pieces);
        return [.. Enumerable.Range(0, pieces).Select(i => new PieceBlock(i, i + 1))];
    }

    /// <summary>
    /// The sum of <paramref name="node"/> by the tree: a node for which <paramref name="isLeaf"/> holds is
    /// <paramref name="leaf"/> of it (null when it has no piece with a column); any other node is
    /// <paramref name="add"/>(left, right) of its halves, the left one computed first, or the one that is not null.
    /// Null when no piece of the node has a column.
    /// </summary>
    /// <param name="node">The node to sum.</param>
    /// <param name="isLeaf">Whether a node's sum is given by <paramref name="leaf"/>; every single piece must be one.</param>
    /// <param name="leaf">The sum of a leaf node.</param>
    /// <param name="add">left + right (it may reuse left's storage).</param>
    public static TPartial? Reduce<TPartial>(PieceBlock node, Func<PieceBlock, bool> isLeaf, Func<PieceBlock, TPartial?> leaf, Func<TPartial, TPartial, TPartial> add)
        where TPartial : class
    {
        ArgumentNullException.ThrowIfNull(isLeaf);
        ArgumentNullException.ThrowIfNull(leaf);
        ArgumentNullException.ThrowIfNull(add);
        if (isLeaf(node)) return leaf(node);
        if (node.Count < 2) throw new ArgumentException($"expected {node} to be a leaf of the sum", nameof(isLeaf));
        var (l, r) = Halves(node);
        var left = Reduce(l, isLeaf, leaf, add);
        var right = Reduce(r, isLeaf, leaf, add);
        return left is null ? right : right is null ? left : add(left, right);
    }

    /// <summary>
    /// The grain key of the worker of <paramref name="block"/> placed in slot <paramref name="slot"/>
    /// (<see cref="PiecePlacement"/>): the block's start in bits 0–19, its count − 1 in bits 20–39 and the slot in bits
    /// 40–61. The key of piece i alone in slot 0 is i.
    /// </summary>
    /// <param name="block">A block of a run of at most <see cref="MaxPieces"/> pieces.</param>
    /// <param name="slot">The placement slot, in [0, 2²¹).</param>
    [Pure]
    public static long Key(PieceBlock block, int slot)
    {
        if (block.Start < 0 || block.Count < 1 || block.End > MaxPieces)
            throw new ArgumentOutOfRangeException(nameof(block), block, $"expected a block of one piece or more within [0, {MaxPieces}) but got {block}");
        if (slot is < 0 or >= 1 << 21) throw new ArgumentOutOfRangeException(nameof(slot), slot, $"expected a slot in [0, {1 << 21}) but got {slot}");
        return (long)block.Start + ((long)(block.Count - 1) << 20) + ((long)slot << 40);
    }

    /// <summary>The block and slot of a grain key (<see cref="Key"/>).</summary>
    /// <param name="key">A key made by <see cref="Key"/>.</param>
    [Pure]
    public static (PieceBlock Block, int Slot) OfKey(long key)
    {
        if (key < 0) throw new ArgumentOutOfRangeException(nameof(key), key, $"expected a non-negative key but got {key}");
        var start = (int)(key & (MaxPieces - 1));
        var count = (int)((key >> 20) & (MaxPieces - 1)) + 1;
        return (new PieceBlock(start, start + count), (int)(key >> 40));
    }

    private static void CheckPieces(int pieces)
    {
        if (pieces is < 1 or > MaxPieces)
            throw new ArgumentOutOfRangeException(nameof(pieces), pieces, $"expected the piece count to be in [1, {MaxPieces}] but got {pieces}");
    }
}
