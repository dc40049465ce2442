using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;
using Xunit.Abstractions;

namespace RnnFunctional.Package.Tests;

/// <summary>
/// The packages of RnnFunctional.Packages.slnf, packed once into a temporary folder (the feed) for all the tests of
/// <see cref="PackageInstallTests"/>; build outputs go to the temporary folder, not to the repository's bin and obj.
/// </summary>
public sealed class PackedFeed : IDisposable
{
    /// <summary>The libraries, installed with <c>dotnet add package</c>.</summary>
    public static readonly string[] Libraries = ["RnnFunctional", "RnnFunctional.Testing"];

    /// <summary>The package id of the rnnf tool, installed with <c>dotnet tool install</c>.</summary>
    public const string Tool = "rnnf";

    public PackedFeed()
    {
        Repository = RepositoryRoot();
        Version = XDocument.Load(Path.Combine(Repository, "Directory.Build.props")).Descendants("Version").Single().Value;
        Work = Directory.CreateTempSubdirectory("rnnfunctional-package-");
        Feed = Path.Combine(Work.FullName, "feed");
        var pack = Dotnet.Run(Repository, new Dictionary<string, string>(), "pack", Path.Combine(Repository, "RnnFunctional.Packages.slnf"),
                              "-c", "Release", "-o", Feed, "--artifacts-path", Path.Combine(Work.FullName, "artifacts"));
        Log = pack.Summary;
        PackFailure = pack.ExitCode == 0 ? null : pack.Failure;
    }

    public string Repository { get; }

    /// <summary>The version of every package, from Directory.Build.props.</summary>
    public string Version { get; }

    /// <summary>The temporary folder; every test works under it.</summary>
    public DirectoryInfo Work { get; }

    /// <summary>The folder the packages were packed into.</summary>
    public string Feed { get; }

    /// <summary>How the pack went, for the test output.</summary>
    public string Log { get; }

    /// <summary>The pack command and its output if it failed (each test then fails with it).</summary>
    public string? PackFailure { get; }

    public void Dispose()
    {
        try { Work.Delete(recursive: true); }
        catch (IOException) { /* a process of a failed test may still hold a file; the folder is a temporary one */ }
    }

    private static string RepositoryRoot() =>
        Dotnet.Ancestors(AppContext.BaseDirectory).FirstOrDefault(dir => File.Exists(Path.Combine(dir, "RnnFunctional.sln")))
        ?? throw new InvalidOperationException($"no RnnFunctional.sln above {AppContext.BaseDirectory}");
}

/// <summary>
/// The packages as a user gets them: <c>dotnet pack</c> RnnFunctional.Packages.slnf into a temporary folder; create a
/// fresh console project outside the repository, add both libraries from that folder and run a gradient check that
/// uses both; install the rnnf tool from that folder into a fresh tool path and train, sample and fail with it.
/// </summary>
public sealed class PackageInstallTests(PackedFeed packed, ITestOutputHelper output) : IClassFixture<PackedFeed>
{
    private static readonly string[] Packages = PackedFeed.Libraries;

    [Fact]
    public void PackFilterMakesEachPackageAndItsSymbols()
    {
        Assert.True(packed.PackFailure is null, packed.PackFailure);
        var version = packed.Version;
        Assert.Equal(Packages.Append(PackedFeed.Tool).SelectMany(id => new[] { $"{id}.{version}.nupkg", $"{id}.{version}.snupkg" }).Order(),
                     Directory.GetFiles(packed.Feed).Select(Path.GetFileName).Order());
        foreach (var id in Packages) CheckPackage(packed.Feed, id, version, [$"lib/net10.0/{id}.dll", $"lib/net10.0/{id}.xml"], $"lib/net10.0/{id}.pdb");
        // The tool: the program, its own libraries and the runtime-specific native libraries of its plot (SkiaSharp),
        // and the settings file that names the command.
        CheckPackage(packed.Feed, PackedFeed.Tool, version,
                     ["tools/net10.0/any/rnnf.dll", "tools/net10.0/any/RnnFunctional.dll", "tools/net10.0/any/DotnetToolSettings.xml",
                      "tools/net10.0/any/runtimes/linux-x64/native/libSkiaSharp.so"], "tools/net10.0/any/rnnf.pdb");
        using var tool = ZipFile.OpenRead(Path.Combine(packed.Feed, $"{PackedFeed.Tool}.{version}.nupkg"));
        using var settings = tool.GetEntry("tools/net10.0/any/DotnetToolSettings.xml")!.Open();
        var command = XDocument.Load(settings).Descendants("Command").Single();
        Assert.Equal(("rnnf", "rnnf.dll"), ((string?)command.Attribute("Name"), (string?)command.Attribute("EntryPoint")));
        using var nuspec = tool.GetEntry($"{PackedFeed.Tool}.nuspec")!.Open();
        Assert.Contains(XDocument.Load(nuspec).Descendants().Where(e => e.Name.LocalName == "packageType"), t => (string?)t.Attribute("name") == "DotnetTool");
    }

    [Fact]
    public void PackagesInstallIntoAFreshConsoleProjectAndRunAGradientCheck()
    {
        Assert.True(packed.PackFailure is null, packed.PackFailure);
        output.WriteLine(packed.Log);
        var (repository, version, feed) = (packed.Repository, packed.Version, packed.Feed);
        var work = packed.Work.CreateSubdirectory("libraries");
        {
            var (packages, consumer) = (Path.Combine(work.FullName, "packages"), Path.Combine(work.FullName, "consumer"));

            // A fresh console project outside the repository: no Directory.Build.props or Directory.Packages.props applies.
            var imported = Ancestors(work.FullName).SelectMany(dir => new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" }
                .Select(name => Path.Combine(dir, name))).Where(File.Exists).ToArray();
            Assert.True(imported.Length == 0, $"the temporary folder {work.FullName} is under MSBuild files that would apply: {string.Join(", ", imported)}");
            Run(work.FullName, "new", "console", "--framework", "net10.0", "--output", consumer);
            File.WriteAllText(Path.Combine(consumer, "nuget.config"), NuGetConfig(feed, MachinePackagesFolder()));

            // A fresh packages folder: a package of the same version restored earlier can never be used.
            var environment = new Dictionary<string, string> { ["NUGET_PACKAGES"] = packages };
            foreach (var id in Packages) Run(consumer, environment, "add", "package", id, "--version", version);
            File.Copy(Path.Combine(repository, "tests", "RnnFunctional.Package.Tests", "Consumer", "Program.cs"), Path.Combine(consumer, "Program.cs"), overwrite: true);
            var run = Run(consumer, environment, "run", "-c", "Release");

            Assert.Contains("entries 57, max relative error", run);
            Assert.Equal(2, Regex.Matches(run, @"Ok, passed 20 tests\.").Count);
            Assert.Contains("gradient check passed", run);
            foreach (var id in Packages)
            {
                var restored = Path.Combine(packages, id.ToLowerInvariant(), version, $"{id.ToLowerInvariant()}.{version}.nupkg.sha512");
                Assert.True(File.Exists(restored), $"expected {id} {version} to be restored into the fresh packages folder at {restored}");
                Assert.Equal(Convert.ToBase64String(SHA512.HashData(File.ReadAllBytes(Path.Combine(feed, $"{id}.{version}.nupkg")))), File.ReadAllText(restored).Trim());
            }
        }
    }

    /// <summary>
    /// <c>dotnet tool install --tool-path</c> (not <c>--global</c>: nothing outside the temporary folder changes) from
    /// the feed in a fresh directory whose nuget.config lists no other source, then the installed command as a user
    /// runs it: <c>--version</c>, a tiny training, sampling from the model it wrote, and a bad input's exit code.
    /// </summary>
    [Fact]
    public void ToolInstallsIntoAFreshToolPathAndTrainsAndSamples()
    {
        Assert.True(packed.PackFailure is null, packed.PackFailure);
        output.WriteLine(packed.Log);
        var work = packed.Work.CreateSubdirectory("tool");
        var (tools, user) = (Path.Combine(work.FullName, "tools"), work.CreateSubdirectory("user").FullName);
        // No source but the feed given with --add-source: a package called rnnf elsewhere can never be installed, and
        // the package cache is a fresh folder, so a cached rnnf of the same version can never be used either.
        File.WriteAllText(Path.Combine(user, "nuget.config"), new XDocument(new XElement("configuration", new XElement("packageSources", new XElement("clear")))).ToString());
        var environment = new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(work.FullName, "packages") };
        var install = Run(user, environment, "tool", "install", "--tool-path", tools, PackedFeed.Tool, "--version", packed.Version, "--add-source", packed.Feed);
        Assert.Contains("rnnf", install);

        var rnnf = Path.Combine(tools, OperatingSystem.IsWindows() ? "rnnf.exe" : "rnnf");
        Assert.True(File.Exists(rnnf), $"expected the command at {rnnf}; the tool path holds {string.Join(", ", Directory.GetFileSystemEntries(tools).Select(Path.GetFileName))}");

        var version = RunTool(rnnf, user, "--version");
        Assert.Equal((0, packed.Version), (version.ExitCode, version.Output.Trim()));

        File.WriteAllText(Path.Combine(user, "names.txt"), string.Join("\n", Names) + "\n");
        var train = RunTool(rnnf, user, "train", "--corpus", "names.txt", "--cell", "gru", "--hidden", "8", "--epochs", "3", "--batch-size", "4",
                            "--held-out", "0.25", "--samples", "3", "--model", "out/names.rnnf", "--plot", "out/loss.png");
        Assert.True(train.ExitCode == 0, train.Failure);
        Assert.Contains("done: epoch 3/3", train.Output);
        Assert.Contains("model written to out/names.rnnf", train.Output);
        Assert.True(new FileInfo(Path.Combine(user, "out", "names.rnnf")).Length > 0);
        // The loss curve is drawn by SkiaSharp's native library, which the tool package carries for each runtime.
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(user, "out", "loss.png"))[..4]);

        var sample = RunTool(rnnf, user, "sample", "--model", "out/names.rnnf", "--count", "5", "--seed", "7");
        Assert.True(sample.ExitCode == 0, sample.Failure);
        Assert.Equal(5, sample.Output.Split('\n').Length - 1);
        Assert.Equal(sample.Output, RunTool(rnnf, user, "sample", "--model", "out/names.rnnf", "--count", "5", "--seed", "7").Output);

        var missing = RunTool(rnnf, user, "sample", "--model", "nowhere.rnnf");
        Assert.Equal(2, missing.ExitCode);
        Assert.StartsWith("rnnf sample: error:", missing.Output);
    }

    private static readonly string[] Names =
    [
        "Aachenosaurus", "Abelisaurus", "Brachiosaurus", "Camarasaurus", "Diplodocus", "Edmontosaurus", "Gallimimus",
        "Iguanodon", "Kentrosaurus", "Maiasaura", "Ornithomimus", "Pachycephalosaurus", "Stegosaurus", "Triceratops",
    ];

    /// <summary>
    /// Runs the installed command (the tool path's native launcher) with the .NET of the test host: DOTNET_ROOT
    /// tells the launcher where the runtime is, as it does for a user whose .NET is not in a default location.
    /// </summary>
    private Dotnet.Result RunTool(string command, string directory, params string[] arguments)
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        var environment = new Dictionary<string, string>();
        if (host is not null) environment["DOTNET_ROOT"] = Path.GetDirectoryName(Path.GetFullPath(host))!;
        var result = Dotnet.Run(command, directory, environment, arguments);
        output.WriteLine(result.Summary);
        return result;
    }

    /// <summary>The package and its symbols package exist and carry the metadata a user sees.</summary>
    private static void CheckPackage(string feed, string id, string version, string[] files, string symbols)
    {
        var path = Path.Combine(feed, $"{id}.{version}.nupkg");
        Assert.True(File.Exists(path), $"expected {path}; the feed holds {string.Join(", ", Directory.GetFiles(feed).Select(Path.GetFileName))}");
        using (var package = ZipFile.OpenRead(path))
        {
            var names = package.Entries.Select(e => e.FullName).ToHashSet();
            foreach (var expected in new[] { "README.md", "LICENSE" }.Concat(files))
                Assert.True(names.Contains(expected), $"expected {expected} in {path}; it holds {string.Join(", ", names)}");
            using var stream = package.GetEntry($"{id}.nuspec")!.Open();
            var metadata = XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
            string? Field(string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;
            var license = metadata.Elements().Single(e => e.Name.LocalName == "license");
            Assert.Equal(("expression", "MIT"), ((string?)license.Attribute("type"), license.Value));
            Assert.Equal("README.md", Field("readme"));
            Assert.Equal(version, Field("version"));
            Assert.False(string.IsNullOrWhiteSpace(Field("description")), $"{id} has no description");
            var repository = metadata.Elements().Single(e => e.Name.LocalName == "repository");
            Assert.Equal("git", (string?)repository.Attribute("type"));
            Assert.Matches("^[0-9a-f]{40}$", (string?)repository.Attribute("commit") ?? "");
        }
        var symbolsPackage = Path.Combine(feed, $"{id}.{version}.snupkg");
        Assert.True(File.Exists(symbolsPackage), $"expected the symbols package {symbolsPackage}");
        using var snupkg = ZipFile.OpenRead(symbolsPackage);
        Assert.Contains(symbols, snupkg.Entries.Select(e => e.FullName));
    }

    /// <summary>
    /// Sources of the consumer: the packed libraries only from the temporary feed (package source mapping), their
    /// dependencies from the machine's packages folder when it has them, else from nuget.org.
    /// </summary>
    private static string NuGetConfig(string feed, string? machinePackages) =>
        new XDocument(new XElement("configuration",
            new XElement("packageSources", new XElement("clear"),
                Source("feed", feed),
                machinePackages is null ? null : Source("machine", machinePackages),
                Source("nuget.org", "https://api.nuget.org/v3/index.json")),
            new XElement("packageSourceMapping",
                new XElement("packageSource", new XAttribute("key", "feed"), Pattern("RnnFunctional"), Pattern("RnnFunctional.*")),
                machinePackages is null ? null : new XElement("packageSource", new XAttribute("key", "machine"), Pattern("*")),
                new XElement("packageSource", new XAttribute("key", "nuget.org"), Pattern("*"))))).ToString();

    private static XElement Source(string key, string value) => new("add", new XAttribute("key", key), new XAttribute("value", value));

    private static XElement Pattern(string pattern) => new("package", new XAttribute("pattern", pattern));

    /// <summary>The machine's global packages folder, as <c>dotnet nuget locals</c> reports it, if it exists.</summary>
    private string? MachinePackagesFolder()
    {
        var listing = Run(Path.GetTempPath(), "nuget", "locals", "global-packages", "--list");
        var match = Regex.Match(listing, @"global-packages:\s*(\S.*?)\s*$", RegexOptions.Multiline);
        return match.Success && Directory.Exists(match.Groups[1].Value) ? match.Groups[1].Value : null;
    }

    private string Run(string directory, params string[] arguments) => Run(directory, new Dictionary<string, string>(), arguments);

    /// <summary>Runs <c>dotnet</c>; fails with the command, its exit code and its whole output unless it exits with 0.</summary>
    private string Run(string directory, IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        var result = Dotnet.Run(directory, environment, arguments);
        output.WriteLine(result.Summary);
        Assert.True(result.ExitCode == 0, result.Failure);
        return result.Output;
    }

    private static IEnumerable<string> Ancestors(string directory) => Dotnet.Ancestors(directory);
}

/// <summary>Runs <c>dotnet</c> or another program with a timeout, collecting standard output and error together.</summary>
internal static class Dotnet
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromMinutes(5);

    /// <summary>One finished run.</summary>
    /// <param name="ExitCode">The process's exit code.</param>
    /// <param name="Output">Standard output and standard error, interleaved as they arrived.</param>
    /// <param name="Command">The command line and its directory.</param>
    /// <param name="Elapsed">Wall time.</param>
    public sealed record Result(int ExitCode, string Output, string Command, TimeSpan Elapsed)
    {
        public string Summary => $"{Command}: exit code {ExitCode} after {Elapsed.TotalSeconds:F1} s";

        public string Failure => $"{Command} exited with code {ExitCode}; its output:\n{Output}";
    }

    /// <summary>The <c>dotnet</c> of the test host (DOTNET_HOST_PATH), else the one on the PATH.</summary>
    public static string Host => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

    public static Result Run(string directory, IReadOnlyDictionary<string, string> environment, params string[] arguments) =>
        Run(Host, directory, environment, arguments);

    public static Result Run(string program, string directory, IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        // No MSBuild state of the test host leaks in, and no build server outlives the command (it would keep the
        // output pipes open).
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToArray())
            start.Environment.Remove(name);
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["UseSharedCompilation"] = "false";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        start.Environment["DOTNET_CLI_UI_LANGUAGE"] = "en";
        foreach (var (name, value) in environment) start.Environment[name] = value;

        var text = new StringBuilder();
        var command = $"{(program == Host ? "dotnet" : program)} {string.Join(' ', arguments)} (in {directory})";
        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(StepTimeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (text) Assert.Fail($"{command} did not finish within {StepTimeout.TotalMinutes} minutes; its output so far:\n{text}");
        }
        process.WaitForExit();
        string all;
        lock (text) all = text.ToString();
        return new Result(process.ExitCode, all, command, clock.Elapsed);
    }

    public static IEnumerable<string> Ancestors(string directory)
    {
        for (var dir = new DirectoryInfo(directory); dir is not null; dir = dir.Parent) yield return dir.FullName;
    }
}
