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

    [Fact]
    public void LayersReadmeExampleRuns()
    {
        var xs = ImmutableArray.Create(Matrix<double>.Build.Random(3, 2, seed: 2), Matrix<double>.Build.Random(3, 2, seed: 3),
                                       Matrix<double>.Build.Random(3, 2, seed: 4));
        #region readme-layers
        // A stack: layer l reads layer l−1's outputs; a softmax read-out on the top only.
        var p = StackParameters.Initialize(
            [Layer.Rnn(inputSize: 3, hiddenSize: 8, seed: 1),                     // 3 → 8
             Layer.Rnn(inputSize: 8, hiddenSize: 5, seed: 2, Activation.Relu)],    // 8 → 5
            outputSize: 4, seed: 3);                                                // read-out 5 → 4 classes
        var loss = Stack.LossAndGradients(p, xs, [[0, 3], [2, 1], [1, 1]]);         // T = 3, m = 2
        var next = p - 0.1 * loss.Gradients;

        // Bidirectional: the output at step t is [forward⟨t⟩; reverse⟨t⟩], here 8×m. Any cells, e.g. an LSTM over it.
        var bi = StackParameters.Initialize(
            [Layer.Bidirectional(Layer.Gru(3, 4, seed: 1), Layer.Gru(3, 4, seed: 2)), Layer.Lstm(8, 6, seed: 3)], 4, seed: 4);
        var states = Stack.Forward(bi, xs).States[0];             // the bidirectional layer's outputs

        // Ragged: column 1 has length 1; its labels past the end are Ragged.Ignored. No sorting, no packing.
        var ragged = Stack.LossAndGradients(p, xs, [[0, 3], [2, Ragged.Ignored], [1, Ragged.Ignored]], lengths: [3, 1]);
        #endregion

        Assert.True(Stack.LossAndGradients(next, xs, [[0, 3], [2, 1], [1, 1]]).Loss < loss.Loss);
        Assert.Equal(3, states.Length);
        Assert.All(states, s => Assert.Equal((8, 2), (s.RowCount, s.ColumnCount)));
        Assert.True(ragged.Loss < loss.Loss);
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

    /// <summary>Every C# block of a README, in order, quotes one region of this file.</summary>
    [Theory]
    [InlineData("src/RnnFunctional/README.md", "readme-core")]
    [InlineData("src/RnnFunctional.Testing/README.md", "readme-testing")]
    [InlineData("README.md", "readme-core", "readme-layers")]
    public void ReadmeQuotesCompiledCode(string readme, params string[] regions)
    {
        var quoted = Regex.Matches(File.ReadAllText(Repository.File(readme)), "```csharp\n(.*?)```", RegexOptions.Singleline)
            .Select(m => Repository.Dedent(m.Groups[1].Value)).ToArray();
        Assert.Equal(regions.Select(r => Repository.Region("tests/RnnFunctional.Samples/PackageReadmes.cs", r)), quoted);
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
