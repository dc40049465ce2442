using System.Collections.Immutable;
using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Orleans.Metadata;
using Xunit;

namespace RnnFunctional.Distributed.Tests;

/// <summary>The silos a step's blocks are cut for, and the placement slots of those blocks.</summary>
public sealed class PieceSilosTests
{
    private static SiloAddress Silo(int port, int generation = 1) => SiloAddress.New(new IPEndPoint(IPAddress.Loopback, port), generation);

    private static GrainManifest Hosting(params string[] grainTypes) => new(
        grainTypes.ToImmutableDictionary(GrainType.Create, _ => new GrainProperties(ImmutableDictionary.Create<string, string>(StringComparer.Ordinal))),
        ImmutableDictionary<GrainInterfaceType, GrainInterfaceProperties>.Empty);

    [Fact]
    public void OnlyActiveSilosWhoseManifestListsPieceWorkersAreCountedInAddressOrder()
    {
        var (a, b, noWorkers, inactive, client, unknown) = (Silo(11113), Silo(11111), Silo(11112), Silo(11114), Silo(11115, -1), Silo(11116));
        var manifest = new ClusterManifest(MajorMinorVersion.Zero, new Dictionary<SiloAddress, GrainManifest>
        {
            [a] = Hosting(PieceWorkerGrain.GrainTypeName, "piecesilos"),
            [b] = Hosting(PieceWorkerGrain.GrainTypeName),
            [noWorkers] = Hosting("piecesilos"),
            [inactive] = Hosting(PieceWorkerGrain.GrainTypeName),
            [client] = Hosting(PieceWorkerGrain.GrainTypeName),
        }.ToImmutableDictionary());
        Assert.True(client.IsClient);
        // Active: every silo but the inactive one, and one that the manifest does not know yet.
        Assert.Equal<SiloAddress>([b, a], PieceSilos.Of(manifest, [a, noWorkers, client, b, unknown, a]));
        Assert.Empty(PieceSilos.Of(manifest, [noWorkers, unknown]));
        Assert.Equal("manifest", Assert.Throws<ArgumentNullException>(() => PieceSilos.Of(null!, [a])).ParamName);
        Assert.Equal("active", Assert.Throws<ArgumentNullException>(() => PieceSilos.Of(manifest, null!)).ParamName);
    }

    [Property(MaxTest = 200)]
    public Property TheSlotOfTheKthSiloIsOnIt() =>
        Prop.ForAll(Gen.Choose(1, 40).ToArbitrary(), Gen.Choose(1000, 60000).ToArbitrary(), Gen.Choose(1, 1000).ToArbitrary(), (n, port, generation) =>
        {
            var silos = PiecePlacement.Ordered(Enumerable.Range(0, n).Select(i => Silo(port + 7 * i, generation + i)));
            for (var k = 0; k < n; k++)
            {
                var slot = PieceSilos.Slot(k, silos);
                Assert.InRange(slot, 0, PieceSilos.Slots - 1);
                Assert.Equal(silos[k], PiecePlacement.SiloOf(slot, silos));
                Assert.Equal(slot, PieceSilos.Slot(k, [.. silos]));
            }
        });

    /// <remarks>
    /// The slots of one to twelve silos against those of the same silos and one more, or one of them joined again as a
    /// new silo (another generation): no slot in common. (The generation is read from a hash, so two sets share slots
    /// only by chance, about once in 2²¹/n; these fixed sets do not.)
    /// </remarks>
    [Fact]
    public void EachSetOfSilosHasSlotsOfItsOwn()
    {
        foreach (var port in (int[])[11111, 30000])
            for (var n = 1; n <= 12; n++)
            {
                var silos = PiecePlacement.Ordered(Enumerable.Range(0, n).Select(i => Silo(port + i)));
                var slots = Slots(silos);
                Assert.Empty(slots.Intersect(Slots(PiecePlacement.Ordered([.. silos, Silo(port - 1)]))));
                Assert.Empty(slots.Intersect(Slots(PiecePlacement.Ordered([.. silos.Skip(1), Silo(port, 2)]))));
                if (n > 1) Assert.Empty(slots.Intersect(Slots(silos[1..])));
            }

        static int[] Slots(ImmutableArray<SiloAddress> silos) => [.. Enumerable.Range(0, silos.Length).Select(k => PieceSilos.Slot(k, silos))];
    }

    [Fact]
    public void ABadSiloIndexOrNoSiloIsRefusedNamingIt()
    {
        var silos = PiecePlacement.Ordered([Silo(11111), Silo(11112)]);
        Assert.Equal("silos", Assert.Throws<ArgumentException>(() => PieceSilos.Slot(0, [])).ParamName);
        Assert.Equal("silos", Assert.Throws<ArgumentException>(() => PieceSilos.Slot(0, default)).ParamName);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => PieceSilos.Slot(2, silos));
        Assert.Equal("silo", error.ParamName);
        Assert.Contains("expected a silo index in [0, 2) for 2 silos but got 2", error.Message);
        Assert.Equal("silo", Assert.Throws<ArgumentOutOfRangeException>(() => PieceSilos.Slot(-1, silos)).ParamName);
    }
}
