namespace RnnFunctional.Cli.Tests;

/// <summary>A temporary directory removed after each test; everything a test writes goes inside it.</summary>
public sealed class Scratch : IDisposable
{
    public DirectoryInfo Directory { get; } = System.IO.Directory.CreateTempSubdirectory("rnnf-cli-");

    public string this[string name] => Path.Combine(Directory.FullName, name);

    public string Write(string name, string text) { File.WriteAllText(this[name], text); return this[name]; }

    public string Write(string name, byte[] bytes) { File.WriteAllBytes(this[name], bytes); return this[name]; }

    public void Dispose() => Directory.Delete(recursive: true);
}

/// <summary>The result of one run of the program.</summary>
public sealed record RunResult(int ExitCode, string Out, string Error)
{
    /// <summary>Runs the program in this process on <paramref name="args"/>, not interactive, with both streams captured (progress every 2 s, as <see cref="Cli.Run(IReadOnlyList{string}, TextWriter, TextWriter, bool?)"/>).</summary>
    public static RunResult Of(IReadOnlyList<string> args) => Of(args, TimeSpan.FromSeconds(2));

    /// <summary>As <see cref="Of(IReadOnlyList{string})"/>, with the progress of a training written every <paramref name="progressEvery"/>.</summary>
    public static RunResult Of(IReadOnlyList<string> args, TimeSpan progressEvery) => Of(args, new StringWriter(), progressEvery);

    /// <summary>As <see cref="Of(IReadOnlyList{string})"/>, with standard output written to <paramref name="output"/> as the program writes it.</summary>
    public static RunResult Of(IReadOnlyList<string> args, StringWriter output) => Of(args, output, TimeSpan.FromSeconds(2));

    private static RunResult Of(IReadOnlyList<string> args, StringWriter output, TimeSpan progressEvery)
    {
        var error = new StringWriter();
        var code = Cli.Run(args, output, error, interactive: false, progressEvery);
        return new(code, output.ToString(), error.ToString());
    }
}
