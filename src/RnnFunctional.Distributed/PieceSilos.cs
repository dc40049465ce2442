using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Security.Cryptography;
using System.Text;
using Orleans.Concurrency;
using Orleans.Metadata;

namespace RnnFunctional.Distributed;

/// <summary>
/// The silos that host piece workers as one silo of the cluster sees them: the silos that its membership view holds
/// active and whose grain manifest, as it knows it, lists <see cref="PieceWorkerGrain"/>. This is the set that Orleans'
/// placement on that silo hands to <see cref="PiecePlacement"/> for a piece worker (its compatible silos), in the order
/// of <see cref="PiecePlacement.SiloOf"/>. A silo that hosts no piece workers (a coordinator's silo that only coordinates,
/// a client) is not in it; a silo joins it once the silo asked knows it as active and has its manifest, and leaves it when that silo
/// no longer holds it active.
/// </summary>
public interface IPieceSilosGrain : IGrainWithIntegerKey
{
    /// <summary>The silos hosting piece workers as the silo that answers sees them, ordered by address.</summary>
    Task<ImmutableArray<SiloAddress>> Current();
}

/// <summary>
/// <see cref="IPieceSilosGrain"/> on the silo that receives the call (a stateless worker: a cluster client's gateway,
/// or the caller's own silo): <see cref="PieceSilos.Of"/> of that silo's cluster manifest and active silos.
/// </summary>
/// <param name="manifest">The silo's cluster manifest.</param>
/// <param name="membership">The silo's view of the membership.</param>
[StatelessWorker]
public sealed class PieceSilosGrain(IClusterManifestProvider manifest, ISiloStatusOracle membership) : Grain, IPieceSilosGrain
{
    /// <inheritdoc />
    public Task<ImmutableArray<SiloAddress>> Current() =>
        Task.FromResult(PieceSilos.Of(manifest.Current, membership.GetApproximateSiloStatuses(onlyActive: true).Keys));
}

/// <summary>The silos hosting piece workers, and the placement slots of the blocks cut for them.</summary>
public static class PieceSilos
{
    /// <summary>The number of placement slots (<see cref="PieceTree.Key"/> keeps a slot in 21 bits).</summary>
    public const int Slots = 1 << 21;

    /// <summary>
    /// The silos of <paramref name="active"/> that are not clients and whose manifest in <paramref name="manifest"/>
    /// lists the grain type of <see cref="PieceWorkerGrain"/>, ordered by address as <see cref="PiecePlacement.SiloOf"/>
    /// orders them.
    /// </summary>
    /// <param name="manifest">A silo's cluster manifest.</param>
    /// <param name="active">The silos that silo holds active.</param>
    [Pure]
    public static ImmutableArray<SiloAddress> Of(ClusterManifest manifest, IEnumerable<SiloAddress> active)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(active);
        var type = GrainType.Create(PieceWorkerGrain.GrainTypeName);
        return PiecePlacement.Ordered(active.Distinct().Where(s => !s.IsClient && manifest.Silos.TryGetValue(s, out var m) && m.Grains.ContainsKey(type)));
    }

    /// <summary>
    /// The placement slot of a block to be computed on the silo at <paramref name="silo"/> in <paramref name="silos"/>
    /// (n silos, in the order of <see cref="Of"/>): <paramref name="silo"/> + n·g, where g in [0, ⌊2²¹/n⌋) is read
    /// from the SHA-256 of the silos' addresses. <see cref="PiecePlacement"/> puts it on that silo (slot mod n), so
    /// the k-th block of a step in the slot of the k-th silo goes to a silo of its own. An activation stays on the
    /// silo where it was placed, so a key activated while the cluster had other silos would stay where the rule of that
    /// time put it; g gives each set of silos keys of its own (two sets share keys only when their g agree), and a set
    /// that comes back finds its own activations again.
    /// </summary>
    /// <param name="silo">The index of the silo in <paramref name="silos"/>, in [0, n).</param>
    /// <param name="silos">The silos the step is cut for, at least one.</param>
    [Pure]
    public static int Slot(int silo, ImmutableArray<SiloAddress> silos)
    {
        if (silos.IsDefaultOrEmpty) throw new ArgumentException("expected at least one silo hosting piece workers but got none", nameof(silos));
        if (silo < 0 || silo >= silos.Length)
            throw new ArgumentOutOfRangeException(nameof(silo), silo, $"expected a silo index in [0, {silos.Length}) for {silos.Length} silos but got {silo}");
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', silos.Select(s => s.ToString()))));
        var generation = (int)(BinaryPrimitives.ReadUInt64LittleEndian(hash) % (ulong)(Slots / silos.Length));
        return silo + silos.Length * generation;
    }
}
