using System.Net;
using Microsoft.Extensions.DependencyInjection;

namespace RnnFunctional.Cli.Tests;

/// <summary>A silo declared dead by the cluster is signalled to the worker or coordinator (which joins again, or ends its run with code 4) instead of ending the process.</summary>
public sealed class SiloDeathTests
{
    private const string Told =
        "I have been told I am dead, so this silo will stop! Reason: The membership view classifies this silo as Dead (in InnerTryToSuspectOrKill). "
        + "Membership: [Version: 6, 3 silos, SiloAddress=S127.0.0.1:40941:155475344 SiloName=Silo_620d6 Status=Dead].";

    [Fact]
    public async Task BeingToldItIsDeadIsSignalledWithTheReasonNotFatal()
    {
        var death = new SiloDeath();
        Assert.False(death.Declared.IsCompleted);
        death.OnFatalException(new object(), Told, null);
        Assert.True(death.Declared.IsCompleted);
        Assert.Equal("I have been told I am dead, so this silo will stop! Reason: The membership view classifies this silo as Dead (in InnerTryToSuspectOrKill).",
            await death.Declared);
        Assert.True(SiloDeath.IsDeclaredDead(Told));
        Assert.False(SiloDeath.IsDeclaredDead("Unexpected error in the silo's message loop"));
        Assert.False(SiloDeath.IsDeclaredDead(null));
    }

    [Fact]
    public void ASiloBuiltWithASiloDeathHandsItsFatalErrorsToItAndOneWithoutToOrleans()
    {
        var death = new SiloDeath();
        var endpoint = new IPEndPoint(IPAddress.Loopback, 1);
        using (var withDeath = ClusterHosting.Build(endpoint, endpoint, "c", new CliRunSource(null!, "d"), death: death))
            Assert.Same(death, withDeath.Services.GetRequiredService<IFatalErrorHandler>());
        using var without = ClusterHosting.Build(endpoint, endpoint, "c", source: null);
        Assert.IsNotType<SiloDeath>(without.Services.GetRequiredService<IFatalErrorHandler>());
    }
}
