using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using RnnFunctional.Distributed;

namespace RnnFunctional.Cli;

/// <summary>
/// The silos of rnnf's data-parallel training: the coordinator's (the primary silo, which holds the membership and
/// places the pieces, and computes pieces too when it is given a source) and the workers'. Every silo listens on the one address it is given and on no
/// gateway port (no client can connect from outside), and belongs to one cluster id: a silo of another id is refused
/// by Orleans' handshake.
/// </summary>
internal static class ClusterHosting
{
    /// <summary>The Orleans service id of every rnnf cluster.</summary>
    public const string ServiceId = "rnnf";

    /// <summary>The cluster id of a run when --cluster-id is not given.</summary>
    public const string DefaultClusterId = "rnnf";

    /// <summary>"ADDR:PORT" (ADDR an IPv4 or bracketed IPv6 address, PORT in [0, 65535]); null when the text is not one.</summary>
    public static IPEndPoint? ParseEndpoint(string text) =>
        IPEndPoint.TryParse(text, out var endpoint) && text.Contains(':', StringComparison.Ordinal)
        && (endpoint.AddressFamily != AddressFamily.InterNetworkV6 || text.StartsWith('[')) ? endpoint : null;

    /// <summary>A port of <paramref name="address"/> free at the moment of asking.</summary>
    public static int FreePort(IPAddress address)
    {
        using var listener = new TcpListener(address, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>"ADDR:PORT" as it is written on the command line.</summary>
    public static string Show(IPEndPoint endpoint) => endpoint.ToString();

    /// <summary>
    /// A host with one silo listening on <paramref name="listen"/> only, in the cluster whose primary silo is
    /// <paramref name="primary"/>, without a gateway, and logging only its warnings and errors into
    /// <paramref name="log"/> when one is given. A silo given no <paramref name="source"/> (a coordinator's that only
    /// coordinates) hosts no piece worker; <paramref name="threads"/>, when given, are the kernels' threads of each piece
    /// it computes. A worker's silo declared dead by the cluster signals <paramref name="death"/> (when given) instead
    /// of ending the process as Orleans does.
    /// </summary>
    public static IHost Build(IPEndPoint listen, IPEndPoint primary, string clusterId, IRunSource? source, JoinLog? log = null, SiloDeath? death = null, int? threads = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        if (log is not null) builder.Logging.AddProvider(log).SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleans(silo =>
        {
            silo.UseDevelopmentClustering(primary)
                .Configure<Orleans.Configuration.ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (clusterId, ServiceId))
                .Configure<EndpointOptions>(o =>
                {
                    o.AdvertisedIPAddress = listen.Address;
                    o.SiloPort = listen.Port;
                    o.SiloListeningEndpoint = listen;
                    o.GatewayPort = 0;
                    o.GatewayListeningEndpoint = null;
                })
                .Configure<ClusterMembershipOptions>(o =>
                {
                    // A worker that dies is declared dead after two missed probes of one second.
                    o.ProbeTimeout = TimeSpan.FromSeconds(1);
                    o.NumMissedProbesLimit = 2;
                    o.NumVotesForDeathDeclaration = 1;
                    o.MaxJoinAttemptTime = TimeSpan.FromSeconds(20);
                })
                .AddPieceWorkers(source, threads: threads);
            if (source is null)
                silo.Services.PostConfigure<Orleans.Configuration.GrainTypeOptions>(o => o.Classes.Remove(typeof(PieceWorkerGrain)));
        });
        if (death is not null)
        {
            builder.Services.RemoveAll<IFatalErrorHandler>();
            builder.Services.AddSingleton<IFatalErrorHandler>(death);
        }
        return builder.Build();
    }

    /// <summary>"N.N s".</summary>
    public static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("F0", CultureInfo.InvariantCulture) + " s";
}
