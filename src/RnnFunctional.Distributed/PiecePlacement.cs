using Microsoft.Extensions.DependencyInjection;
using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace RnnFunctional.Distributed;

/// <summary>
/// The placement of piece workers: piece i of a run goes to silo i mod n of the n silos that host piece workers, the
/// silos taken in the order of their addresses. Where a piece is computed is thus a function of the cluster's
/// membership alone (with 3 silos and 9 pieces each silo holds 3), and a piece whose silo leaves is activated again on
/// the silo that this rule names among those left. Bits never depend on placement; the rule makes the load even and
/// the runs repeatable.
/// </summary>
[Serializable, GenerateSerializer, Immutable, SuppressReferenceTracking]
public sealed class PiecePlacement : PlacementStrategy
{
    /// <summary>The silo of piece <paramref name="piece"/> among <paramref name="silos"/> (at least one), by the rule of <see cref="PiecePlacement"/>.</summary>
    /// <param name="piece">The piece index, at least 0.</param>
    /// <param name="silos">The silos hosting piece workers.</param>
    public static SiloAddress SiloOf(long piece, IEnumerable<SiloAddress> silos)
    {
        ArgumentNullException.ThrowIfNull(silos);
        ArgumentOutOfRangeException.ThrowIfNegative(piece);
        var ordered = silos.OrderBy(s => s.ToString(), StringComparer.Ordinal).ToArray();
        if (ordered.Length == 0) throw new InvalidOperationException($"no silo of the cluster hosts piece workers, so piece {piece} cannot be placed");
        return ordered[piece % ordered.Length];
    }
}

/// <summary>Places a grain with <see cref="PiecePlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class PiecePlacementAttribute : PlacementAttribute
{
    /// <summary>The attribute.</summary>
    public PiecePlacementAttribute() : base(new PiecePlacement()) { }
}

/// <summary>The director of <see cref="PiecePlacement"/>: the piece index is the integer part of the grain's key.</summary>
internal sealed class PiecePlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context) =>
        Task.FromResult(PiecePlacement.SiloOf(target.GrainIdentity.GetIntegerKey(out _), context.GetCompatibleSilos(target)));
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
