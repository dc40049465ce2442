using System.Collections.Immutable;
using System.Globalization;
using FsCheck;
using FsCheck.Fluent;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Testing;
using Xunit;
using Xunit.Abstractions;

namespace RnnFunctional.Tests;

/// <summary>
/// The margin of <see cref="GradCheckOptions.Precise"/>'s resolution on the library's own losses: every entry that
/// took the second look differs from its estimate by less than half its resolution (the check passes below the
/// whole), over random stacks, bidirectional, ragged and projected. The number of cases per architecture is 6 in CI
/// (about 20 s); a longer run, which also prints the distribution:
/// <c>RNNF_GRADCHECK_CASES=300 dotnet test tests/RnnFunctional.Tests --filter FullyQualifiedName~GradCheckMarginTests
/// --logger "console;verbosity=detailed"</c>.
/// </summary>
public sealed class GradCheckMarginTests(ITestOutputHelper output)
{
    private static int Cases => int.TryParse(Environment.GetEnvironmentVariable("RNNF_GRADCHECK_CASES"), out var n) && n > 0 ? n : 6;

    public static TheoryData<string> Architectures => new() { "lstm-over-gru", "bidirectional", "every-cell-ragged", "projected-ragged" };

    private static ImmutableArray<LayerSpec> Architecture(string name) => name switch
    {
        "lstm-over-gru" => [LayerSpec.Uni(CellKind.Gru), LayerSpec.Uni(CellKind.Lstm)],
        "bidirectional" => [LayerSpec.Bi(CellKind.RnnTanh, CellKind.Gru)],
        "every-cell-ragged" => [LayerSpec.Uni(CellKind.Lstm), LayerSpec.Bi(CellKind.Gru, CellKind.RnnTanh)],
        _ => [LayerSpec.Uni(CellKind.ProjectedLstm), LayerSpec.Bi(CellKind.ProjectedLstm, CellKind.PeepholeLstm)],
    };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void EverySecondLookDiffersFromTheAnalyticValueByLessThanHalfItsResolution(string name)
    {
        var ratios = new List<(double Ratio, double Step)>();
        var property = Prop.ForAll(StackCase.Arbitrary(Architecture(name), ragged: name.EndsWith("ragged", StringComparison.Ordinal)), c =>
        {
            var g = Stack.LossAndGradients(c.P, c.Xs, c.Labels, c.LengthsArgument, c.Initial);
            var inputs = c.Xs.Select((x, t) => Leaf.Of($"xs[{t}]", x)).ToImmutableArray();
            var parameters = GradCheck.Tree(p => Stack.Loss(p, c.Xs, c.Labels, c.LengthsArgument, c.Initial), c.P, g.Gradients, GradCheckOptions.Precise);
            var dx = GradCheck.Leaves(leaves => Stack.Loss(c.P, [.. leaves.Select(l => l.ToMatrix())], c.Labels, c.LengthsArgument, c.Initial),
                inputs, [.. g.Dx.Select((d, t) => Leaf.Of($"xs[{t}]", d))], GradCheckOptions.Precise);
            var looked = parameters.Entries.Concat(dx.Entries).Where(e => e.Step != GradCheckOptions.Precise.Epsilon)
                .Select(e => (e, Ratio: Math.Abs(e.Analytic - e.Numeric) / e.Resolution)).ToList();
            lock (ratios) ratios.AddRange(looked.Select(l => (l.Ratio, l.e.Step)));
            if (looked.Count == 0) return true.Label("no second look");
            var worst = looked.MaxBy(l => l.Ratio);
            return (worst.Ratio < 0.5).Label(string.Create(CultureInfo.InvariantCulture,
                $"{worst.e.Leaf}[{worst.e.Row},{worst.e.Column}]: analytic {worst.e.Analytic:E6} numeric {worst.e.Numeric:E6}, difference {worst.Ratio:F3} of the resolution {worst.e.Resolution:E2} (h = {worst.e.Step})"));
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(Cases).WithQuietOnSuccess(true), property);
        foreach (var step in ratios.GroupBy(r => r.Step).OrderBy(s => s.Key))
        {
            var sorted = step.Select(r => r.Ratio).Order().ToArray();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name}: first step {step.Key}: {sorted.Length} entries, difference / resolution median {sorted[sorted.Length / 2]:F3}, 99.9% {sorted[(int)(sorted.Length * 0.999)]:F3}, largest {sorted[^1]:F3}"));
        }
    }
}
