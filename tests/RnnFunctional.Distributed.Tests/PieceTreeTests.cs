using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace RnnFunctional.Distributed.Tests;

/// <summary>The blocks a step is cut into, and their grain keys.</summary>
public sealed class PieceTreeTests
{
    [Property(MaxTest = 300)]
    public Property TheBlocksAreNodesOfTheTreeCoveringThePiecesInOrder() =>
        Prop.ForAll(Gen.Choose(1, 70).ToArbitrary(), Gen.Choose(1, 80).ToArbitrary(), (pieces, workers) =>
        {
            var blocks = PieceTree.Blocks(pieces, workers);
            Assert.Equal(Math.Min(pieces, workers), blocks.Length);
            Assert.Equal(0, blocks[0].Start);
            Assert.Equal(pieces, blocks[^1].End);
            for (var k = 1; k < blocks.Length; k++) Assert.Equal(blocks[k - 1].End, blocks[k].Start);
            foreach (var block in blocks) Assert.True(IsNode(new PieceBlock(0, pieces), block), $"{block} is not a node of the tree over {pieces} pieces");
            var (least, most) = (blocks.Min(b => b.Count), blocks.Max(b => b.Count));
            Assert.True(most <= 2 * least + 1, $"blocks of {least} to {most} pieces for {workers} workers and {pieces} pieces");
        });

    [Fact]
    public void TheBlocksOfEightPiecesForTwoAndThreeWorkers()
    {
        Assert.Equal<PieceBlock[]>([new(0, 4), new(4, 8)], [.. PieceTree.Blocks(8, 2)]);
        Assert.Equal<PieceBlock[]>([new(0, 2), new(2, 4), new(4, 8)], [.. PieceTree.Blocks(8, 3)]);
        Assert.Equal<PieceBlock[]>([new(0, 4), new(4, 6), new(6, 9)], [.. PieceTree.Blocks(9, 3)]);
        Assert.Equal<PieceBlock[]>([new(0, 8)], [.. PieceTree.Blocks(8, 1)]);
    }

    [Property(MaxTest = 300)]
    public Property AKeyNamesItsBlockAndSlot() =>
        Prop.ForAll(Gen.Choose(0, PieceTree.MaxPieces - 1).ToArbitrary(), Gen.Choose(1, PieceTree.MaxPieces).ToArbitrary(), Gen.Choose(0, (1 << 21) - 1).ToArbitrary(),
            (start, count, slot) =>
            {
                var block = new PieceBlock(start, Math.Min(PieceTree.MaxPieces, start + count));
                Assert.Equal((block, slot), PieceTree.OfKey(PieceTree.Key(block, slot)));
            });

    [Fact]
    public void PieceIAloneInSlotZeroIsKeyI()
    {
        foreach (var i in (int[])[0, 1, 7, PieceTree.MaxPieces - 1]) Assert.Equal(i, PieceTree.Key(new PieceBlock(i, i + 1), 0));
        Assert.Equal((new PieceBlock(0, 1), 0), PieceTree.OfKey(0));
    }

    [Fact]
    public void BadArgumentsAreRefusedNamingThem()
    {
        Assert.Equal("pieces", Assert.Throws<ArgumentOutOfRangeException>(() => PieceTree.Blocks(0, 1)).ParamName);
        Assert.Equal("pieces", Assert.Throws<ArgumentOutOfRangeException>(() => PieceTree.Singles(PieceTree.MaxPieces + 1)).ParamName);
        var workers = Assert.Throws<ArgumentOutOfRangeException>(() => PieceTree.Blocks(4, 0));
        Assert.Equal("workers", workers.ParamName);
        Assert.Contains("expected at least one worker but got 0", workers.Message);
        Assert.Equal("slot", Assert.Throws<ArgumentOutOfRangeException>(() => PieceTree.Key(new PieceBlock(0, 1), -1)).ParamName);
        Assert.Equal("block", Assert.Throws<ArgumentOutOfRangeException>(() => PieceTree.Key(new PieceBlock(2, 2), 0)).ParamName);
        Assert.Equal("node", Assert.Throws<ArgumentException>(() => PieceTree.Halves(new PieceBlock(3, 4))).ParamName);
    }

    private static bool IsNode(PieceBlock node, PieceBlock block)
    {
        if (node == block) return true;
        if (node.Count < 2 || block.Start < node.Start || block.End > node.End) return false;
        var (left, right) = PieceTree.Halves(node);
        return IsNode(left, block) || IsNode(right, block);
    }
}
