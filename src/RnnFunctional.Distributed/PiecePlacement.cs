using System.Collections.Immutable;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace RnnFunctional.Distributed;

/// <summary>
/// The placement of piece workers: the worker in slot s (<see cref="PieceTree.Key"/>) goes to silo s mod n of the n
/// silos that host piece workers (<see cref="PieceSilos"/>), the silos taken in the order of their addresses. The
/// coordinator puts piece i alone in slot i, and the k-th block of a step cut for n silos in slot
/// <see cref="PieceSilos.Slot"/>(k, silos) ≡ k (mod n), so its blocks go to distinct silos. Where a block is computed
/// is thus a function of its key and the cluster's membership at its activation, and a block whose silo leaves is
/// activated again on the silo that this rule names among those left. Bits never depend on placement; the rule makes
/// the load even and the runs repeatable.
/// </summary>
[Serializable, GenerateSerializer, Immutable, SuppressReferenceTracking]
public sealed class PiecePlacement : PlacementStrategy
{
    /// <summary>The silo of slot <paramref name="slot"/> among <paramref name="silos"/> (at least one), by the rule of <see cref="PiecePlacement"/>.</summary>
    /// <param name="slot">The placement slot, at least 0.</param>
    /// <param name="silos">The silos hosting piece workers.</param>
    public static SiloAddress SiloOf(long slot, IEnumerable<SiloAddress> silos)
    {
        ArgumentNullException.ThrowIfNull(silos);
        ArgumentOutOfRangeException.ThrowIfNegative(slot);
        var ordered = Ordered(silos);
        if (ordered.Length == 0) throw new InvalidOperationException($"no silo of the cluster hosts piece workers, so slot {slot} cannot be placed");
        return ordered[(int)(slot % ordered.Length)];
    }

    /// <summary>Silos in the order of <see cref="SiloOf"/>: by their addresses' text, ordinal.</summary>
    /// <param name="silos">Any silos.</param>
    public static ImmutableArray<SiloAddress> Ordered(IEnumerable<SiloAddress> silos)
    {
        ArgumentNullException.ThrowIfNull(silos);
        return [.. silos.OrderBy(s => s.ToString(), StringComparer.Ordinal)];
    }
}

/// <summary>Places a grain with <see cref="PiecePlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class PiecePlacementAttribute : PlacementAttribute
{
    /// <summary>The attribute.</summary>
    public PiecePlacementAttribute() : base(new PiecePlacement()) { }
}

/// <summary>The director of <see cref="PiecePlacement"/>: the slot is read from the integer part of the grain's key (<see cref="PieceTree.OfKey"/>).</summary>
internal sealed class PiecePlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context) =>
        Task.FromResult(PiecePlacement.SiloOf(PieceTree.OfKey(target.GrainIdentity.GetIntegerKey(out _)).Slot, context.GetCompatibleSilos(target)));
}

/// <summary>Registration of <see cref="PiecePlacement"/>.</summary>
internal static class PiecePlacementHosting
{
    public static IServiceCollection AddPiecePlacement(this IServiceCollection services)
    {
        services.AddPlacementDirector<PiecePlacement, PiecePlacementDirector>();
        return services;
    }
}
