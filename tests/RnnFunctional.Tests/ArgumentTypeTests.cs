using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional.Tests;

/// <summary>
/// Arguments at the edges get an <see cref="ArgumentException"/> naming the argument, never a DivideByZero,
/// InvalidOperation or NullReference from inside: a batch of zero examples, default (null) immutable arrays, and a
/// vocabulary too wide for a dense bigram table.
/// </summary>
public sealed class ArgumentTypeTests
{
    private static readonly RnnParameters P = RnnParameters.Initialize(3, 2, 3, seed: 1);

    private static Matrix<double> Zeros(int rows, int columns) => Matrix<double>.Build.Dense(rows, columns);

    private static readonly ImmutableArray<Matrix<double>> NoExamples = [Zeros(3, 0), Zeros(3, 0)];

    private static readonly ImmutableArray<ImmutableArray<int>> NoLabels = [[], []];

    public static TheoryData<string, Action> ZeroExampleCalls => new()
    {
        { "Rnn.Forward", () => Rnn.Forward(P, NoExamples, Zeros(2, 0)) },
        { "Rnn.LossAndGradients", () => Rnn.LossAndGradients(P, NoExamples, Zeros(2, 0), NoLabels) },
        { "Rnn.LossAndGradientsCheckpointed", () => Rnn.LossAndGradientsCheckpointed(P, NoExamples, Zeros(2, 0), NoLabels, 1) },
        { "Lstm.LossAndGradients", () => Lstm.LossAndGradients(LstmParameters.Initialize(3, 2, 3, 1), NoExamples, Zeros(2, 0), Zeros(2, 0), NoLabels) },
        { "Gru.LossAndGradients", () => Gru.LossAndGradients(GruParameters.Initialize(3, 2, 3, 1), NoExamples, Zeros(2, 0), NoLabels) },
        { "Stack.LossAndGradients", () => Stack.LossAndGradients(StackParameters.Initialize([Layer.Rnn(3, 2, 1)], 3, 1), NoExamples, NoLabels) },
    };

    [Theory]
    [MemberData(nameof(ZeroExampleCalls))]
    public void ABatchOfZeroExamplesIsAnArgumentException(string function, Action call)
    {
        var e = Assert.Throws<ArgumentException>(call);
        Assert.True(e.ParamName == "xs", $"{function}: {e.ParamName}");
        Assert.Contains("expected xs to hold at least one example (m ≥ 1 columns) but got n_x×m = 3×0 matrices", e.Message);
    }

    public static TheoryData<string, string, Action> DefaultArrayCalls => new()
    {
        { "LanguageModel.OneHot", "tokens", () => LanguageModel.OneHot(default, 3) },
        { "TokenBatch.ForNextToken", "items", () => TokenBatch.ForNextToken([[1], default]) },
        { "new TokenBatch", "lengths", () => new TokenBatch(default, default, default) },
        { "Bigram.Fit", "items", () => Bigram.Fit([[1], default], 3) },
        { "Bigram.Evaluate", "items", () => Bigram.Fit([[1]], 3).Evaluate([default]) },
        { "RandomState.Shuffle", "items", () => RandomState.Seeded(1).Shuffle(default(ImmutableArray<int>)) },
        { "GradCheck.Leaves", "at", () => GradCheck.Leaves(_ => 0, default, P.ToLeaves()) },
        { "GradCheck.Leaves", "gradient", () => GradCheck.Leaves(_ => 0, P.ToLeaves(), default) },
        { "ModelFile.Serialize", "document", () => ModelFile.Serialize(new ModelDocument(ImmutableSortedDictionary<string, string>.Empty, default)) },
        { "RnnParameters.FromLeaves", "leaves", () => P.FromLeaves(default) },
        { "Tree.Rebuild", "leaves", () => Tree.Rebuild(P.ToLeaves(), [.. P.ToLeaves().SetItem(0, P.ToLeaves()[0] with { Values = default })], _ => 0) },
    };

    [Theory]
    [MemberData(nameof(DefaultArrayCalls))]
    public void ADefaultArrayIsAnArgumentExceptionNamingTheArgument(string function, string argument, Action call)
    {
        var e = Assert.Throws<ArgumentException>(call);
        Assert.True(e.ParamName == argument, $"{function}: expected the exception to name {argument} but it names {e.ParamName}");
        Assert.Contains("default (null)", e.Message);
    }

    [Fact]
    public void ADefaultLeafArrayIsAnErrorValueWhenReadIntoATree() =>
        Assert.Contains("default array", new ModelDocument(ImmutableSortedDictionary<string, string>.Empty, default).ReadInto(P).Match(_ => "", e => e.Message));

    [Fact]
    public void TheBigramBaselineIsLinearInTheVocabulary()
    {
        const int v = 20_000;
        var items = Enumerable.Range(0, 200).Select(i => ImmutableArray.Create(1 + i * 97 % (v - 1), 1 + i * 31 % (v - 1), 1 + i % (v - 1))).ToArray();
        var before = GC.GetAllocatedBytesForCurrentThread();
        var bigram = Bigram.Fit(items, v);
        var (loss, tokens) = bigram.Evaluate(items);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 64L << 20, $"fitting V = {v} allocated {allocated:N0} bytes; a dense V×V table would take {4L * v * v:N0}");
        Assert.Equal(800, tokens);
        Assert.True(double.IsFinite(loss) && loss > 0);
        Assert.Equal(items.Count(s => s[0] == 1 + 0 * 97), bigram.Count(Vocabulary.EndToken, 1));
    }

    [Fact]
    public void SparseCountsAreTheTransitionCounts()
    {
        var random = new Random(5);
        var items = Enumerable.Range(0, 40).Select(_ => Enumerable.Range(0, random.Next(0, 8)).Select(_ => random.Next(1, 6)).ToImmutableArray()).ToArray();
        var bigram = Bigram.Fit(items, 6, alpha: 0.3);
        var dense = new int[6, 6];
        foreach (var s in items)
            for (var t = 0; t <= s.Length; t++)
                dense[t == 0 ? 0 : s[t - 1], t < s.Length ? s[t] : 0]++;
        for (var a = 0; a < 6; a++)
            for (var b = 0; b < 6; b++)
            {
                Assert.Equal(dense[a, b], bigram.Count(a, b));
                var total = Enumerable.Range(0, 6).Sum(k => dense[a, k]);
                Assert.Equal(Math.Log((dense[a, b] + 0.3) / (total + 0.3 * 6)), bigram.LogProbability(a, b), 14);
            }
    }
}
