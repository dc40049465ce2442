using System.Collections.Immutable;
using System.Text.RegularExpressions;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using Xunit;

namespace RnnFunctional.Samples;

/// <summary>The code of the packages' READMEs (src/*/README.md), compiled and run here; the READMEs must quote it exactly.</summary>
public sealed class PackageReadmes
{
    [Fact]
    public void CoreReadmeExampleRuns()
    {
        #region readme-core
        var p = RnnParameters.Initialize(inputSize: 3, hiddenSize: 5, outputSize: 4, seed: 1);
        var xs = ImmutableArray.Create(Matrix<double>.Build.Random(3, 2, seed: 2), Matrix<double>.Build.Random(3, 2, seed: 3));
        var a0 = Matrix<double>.Build.Dense(5, 2);                    // n_a×m: 5 hidden units, a batch of 2
        ImmutableArray<ImmutableArray<int>> labels = [[0, 3], [2, 1]]; // labels[t][j]: class of example j at step t

        var loss = Rnn.LossAndGradients(p, xs, a0, labels);           // .Loss, .Gradients (an RnnParameters), .Dx, .Da0
        var updated = p - 0.1 * loss.Gradients;                       // gradients have the parameters' type

        var report = GradCheck.Tree(q => Rnn.LossAndGradients(q, xs, a0, labels).Loss, p, loss.Gradients, GradCheckOptions.Ridders);
        Console.WriteLine(report.Summary());                          // worst entry of each leaf: analytic, numeric, error
        #endregion

        Assert.True(report.Passes(1e-6), report.Summary());
        Assert.True(Rnn.LossAndGradients(updated, xs, a0, labels).Loss < loss.Loss);
    }

    #region readme-testing
    // The gradients of the RNN's loss against finite differences, on random well-shaped cases that shrink.
    [Property(MaxTest = 100)]
    public Property LossGradientsMatchFiniteDifferences() =>
        Prop.ForAll(RnnCase.Arbitrary(max: 8), c =>
        {
            var loss = Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);
            return GradientProperty.Tree(p => Rnn.LossAndGradients(p, c.Xs, c.A0, c.Labels).Loss, c.P, loss.Gradients);
        });

    // The laws of a cell, yours included: CellUnderTest.Of(name, cell, parameters, stateRows).
    [Property(MaxTest = 100)]
    public Property RnnCellScanIsAFold() => CellLaws.ScanOverConcatenationContinuesFromFinalCarry(CellUnderTest.Rnn());
    #endregion

    [Theory]
    [InlineData("src/RnnFunctional/README.md", "tests/RnnFunctional.Samples/PackageReadmes.cs", "readme-core")]
    [InlineData("src/RnnFunctional.Testing/README.md", "tests/RnnFunctional.Samples/PackageReadmes.cs", "readme-testing")]
    public void ReadmeQuotesCompiledCode(string readme, string source, string region)
    {
        var quoted = Regex.Match(File.ReadAllText(Repository.File(readme)), "```csharp\n(.*?)```", RegexOptions.Singleline);
        Assert.True(quoted.Success, $"{readme} has no C# block");
        Assert.Equal(Repository.Region(source, region), Repository.Dedent(quoted.Groups[1].Value));
    }
}

/// <summary>Files of the repository, found from the test's output folder.</summary>
internal static class Repository
{
    public static string Root { get; } = FindRoot();

    public static string File(string relative) => Path.Combine(Root, relative);

    /// <summary>The lines between <c>#region name</c> and its <c>#endregion</c>, without their common indentation.</summary>
    public static string Region(string relative, string name)
    {
        var text = System.IO.File.ReadAllText(File(relative));
        var match = Regex.Match(text, $@"#region {Regex.Escape(name)}\n(.*?)\n[ \t]*#endregion", RegexOptions.Singleline);
        Assert.True(match.Success, $"{relative} has no region {name}");
        return Dedent(match.Groups[1].Value);
    }

    public static string Dedent(string block)
    {
        var lines = block.Replace("\r\n", "\n").TrimEnd('\n').Split('\n');
        var indent = lines.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        return string.Join("\n", lines.Select(l => l.Length >= indent ? l[indent..].TrimEnd() : l.Trim()));
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "RnnFunctional.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no RnnFunctional.sln above {AppContext.BaseDirectory}");
    }
}
