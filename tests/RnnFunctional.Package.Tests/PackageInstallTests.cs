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
/// The packages as a user gets them: <c>dotnet pack</c> both libraries into a temporary folder, create a fresh console
/// project outside the repository, add both packages from that folder, and run a gradient check that uses both.
/// </summary>
public sealed class PackageInstallTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromMinutes(5);
    private static readonly string[] Packages = ["RnnFunctional", "RnnFunctional.Testing"];

    [Fact]
    public void PackagesInstallIntoAFreshConsoleProjectAndRunAGradientCheck()
    {
        var repository = RepositoryRoot();
        var version = XDocument.Load(Path.Combine(repository, "Directory.Build.props")).Descendants("Version").Single().Value;
        var work = Directory.CreateTempSubdirectory("rnnfunctional-package-");
        try
        {
            var (feed, artifacts, packages, consumer) =
                (Path.Combine(work.FullName, "feed"), Path.Combine(work.FullName, "artifacts"),
                 Path.Combine(work.FullName, "packages"), Path.Combine(work.FullName, "consumer"));

            // Pack both libraries (the solution filter lists them); build outputs go to the temporary folder, not to the
            // repository's bin and obj.
            Run(repository, "pack", Path.Combine(repository, "RnnFunctional.Packages.slnf"), "-c", "Release", "-o", feed, "--artifacts-path", artifacts);
            Assert.Equal(Packages.SelectMany(id => new[] { $"{id}.{version}.nupkg", $"{id}.{version}.snupkg" }).Order(),
                         Directory.GetFiles(feed).Select(Path.GetFileName).Order());
            foreach (var id in Packages) CheckPackage(feed, id, version);

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
        finally
        {
            try { work.Delete(recursive: true); }
            catch (IOException e) { output.WriteLine($"could not delete {work.FullName}: {e.Message}"); }
        }
    }

    /// <summary>The package and its symbols package exist and carry the metadata a user sees.</summary>
    private static void CheckPackage(string feed, string id, string version)
    {
        var path = Path.Combine(feed, $"{id}.{version}.nupkg");
        Assert.True(File.Exists(path), $"expected {path}; the feed holds {string.Join(", ", Directory.GetFiles(feed).Select(Path.GetFileName))}");
        using (var package = ZipFile.OpenRead(path))
        {
            var names = package.Entries.Select(e => e.FullName).ToHashSet();
            foreach (var expected in new[] { "README.md", "LICENSE", $"lib/net10.0/{id}.dll", $"lib/net10.0/{id}.xml" })
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
        var symbols = Path.Combine(feed, $"{id}.{version}.snupkg");
        Assert.True(File.Exists(symbols), $"expected the symbols package {symbols}");
        using var snupkg = ZipFile.OpenRead(symbols);
        Assert.Contains($"lib/net10.0/{id}.pdb", snupkg.Entries.Select(e => e.FullName));
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

    /// <summary>Runs <c>dotnet</c> with a timeout; fails with the command, its exit code and its whole output.</summary>
    private string Run(string directory, IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
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
        var command = $"dotnet {string.Join(' ', arguments)} (in {directory})";
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
            Assert.Fail($"{command} did not finish within {StepTimeout.TotalMinutes} minutes; its output so far:\n{text}");
        }
        process.WaitForExit();
        output.WriteLine($"{command}: exit code {process.ExitCode} after {clock.Elapsed.TotalSeconds:F1} s");
        string all;
        lock (text) all = text.ToString();
        Assert.True(process.ExitCode == 0, $"{command} exited with code {process.ExitCode}; its output:\n{all}");
        return all;
    }

    private static IEnumerable<string> Ancestors(string directory)
    {
        for (var dir = new DirectoryInfo(directory); dir is not null; dir = dir.Parent) yield return dir.FullName;
    }

    private static string RepositoryRoot() =>
        Ancestors(AppContext.BaseDirectory).FirstOrDefault(dir => File.Exists(Path.Combine(dir, "RnnFunctional.sln")))
        ?? throw new InvalidOperationException($"no RnnFunctional.sln above {AppContext.BaseDirectory}");
}
