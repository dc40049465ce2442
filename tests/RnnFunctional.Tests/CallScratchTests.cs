using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional.Tests;

/// <summary>
/// <see cref="CallScratch"/>: the arrays a loss or gradient call lays its weights out in (stacked gates, float32 twins,
/// the LSTM's stacked gradient sums) are reused by later calls, so nothing taken from them may be reachable from a
/// result; and a float32 twin holds each entry rounded as a cast rounds it.
/// </summary>
public sealed class CallScratchTests
{
    public sealed record Case(int Seed, int T, int M, Precision Precision);

    public static class Cases
    {
        // Sizes whose products with the read-out (n_y·n_a, n_y·4n_a, …) are powers of two, the lengths of the pool's
        // arrays, so that a result wrapping a rented array would share it rather than be copied from it.
        public static Arbitrary<Case> Case() =>
            (from seed in Gen.Choose(0, 1 << 20)
             from t in Gen.Choose(1, 5)
             from m in Gen.Elements(1, 2, 4)
             from single in Gen.Elements(false, true)
             select new Case(seed, t, m, single ? Precision.Single : Precision.Double)).ToArbitrary();
    }

    private const int Nx = 4, Na = 8, Ny = 4;

    private static (ImmutableArray<Matrix<double>> Xs, Matrix<double> A0, ImmutableArray<ImmutableArray<int>> Labels) Data(Case c, int salt)
    {
        var random = new Random(c.Seed * 31 + salt);
        Matrix<double> Draw(int rows) => Matrix<double>.Build.Dense(rows, c.M, (_, _) => 2 * random.NextDouble() - 1);
        return ([.. Enumerable.Range(0, c.T).Select(_ => Draw(Nx))], Draw(Na),
                [.. Enumerable.Range(0, c.T).Select(_ => Enumerable.Range(0, c.M).Select(_ => random.Next(Ny)).ToImmutableArray())]);
    }

    private static double[] Entries(IEnumerable<Matrix<double>> ms) => [.. ms.SelectMany(m => m.ToColumnMajorArray())];

    /// <summary>Every entry of every result of a call, read now.</summary>
    private static Func<double[]> Snapshotter<T>(T gradients, IEnumerable<Matrix<double>> others) where T : IParameterTree<T> =>
        () => [.. Tree.Flatten(gradients), .. Entries(others)];

    /// <summary>The loss calls of every cell and of a stack, each returning a reader of its results' entries.</summary>
    private static IEnumerable<(string Name, Func<Case, int, Func<double[]>> Call)> Calls()
    {
        yield return ("LSTM", (c, salt) =>
        {
            var (xs, a0, labels) = Data(c, salt);
            var r = Lstm.LossAndGradients(LstmParameters.Initialize(Nx, Na, Ny, c.Seed + salt), xs, a0, a0, labels);
            return Snapshotter(r.Gradients, [.. r.Dx, r.Da0, r.Dc0]);
        });
        yield return ("peephole LSTM", (c, salt) =>
        {
            var (xs, a0, labels) = Data(c, salt);
            var r = PeepholeLstm.LossAndGradients(PeepholeLstmParameters.Initialize(Nx, Na, Ny, c.Seed + salt), xs, a0, a0, labels);
            return Snapshotter(r.Gradients, [.. r.Dx, r.Da0, r.Dc0]);
        });
        yield return ("GRU", (c, salt) =>
        {
            var (xs, a0, labels) = Data(c, salt);
            var r = Gru.LossAndGradients(GruParameters.Initialize(Nx, Na, Ny, c.Seed + salt), xs, a0, labels);
            return Snapshotter(r.Gradients, [.. r.Dx, r.Da0]);
        });
        yield return ("RNN", (c, salt) =>
        {
            var (xs, a0, labels) = Data(c, salt);
            var r = Rnn.LossAndGradients(RnnParameters.Initialize(Nx, Na, Ny, c.Seed + salt), xs, a0, labels);
            return Snapshotter(r.Gradients, [.. r.Dx, r.Da0]);
        });
        yield return ("stack", (c, salt) =>
        {
            var (xs, _, labels) = Data(c, salt);
            var p = StackParameters.Initialize([Layer.Lstm(Nx, Na, c.Seed + salt), Layer.PeepholeLstm(Na, Na, c.Seed + salt + 1)], Ny, c.Seed + salt + 2);
            var r = Stack.LossAndGradients(p, xs, labels);
            return Snapshotter(r.Gradients, [.. r.Dx, .. r.DInitial.SelectMany(d => d)]);
        });
    }

    [Property(Arbitrary = [typeof(Cases)], MaxTest = 40)]
    public Property AResultKeepsItsBitsWhileLaterCallsReuseTheScratchOfItsCall(Case c) =>
        Calls().Select(call => Keeps(c, call.Call).Label($"{call.Name}: the results of a call changed when later calls ran"))
            .Aggregate((a, b) => a.And(b));

    private static bool Keeps(Case c, Func<Case, int, Func<double[]>> call)
    {
        var read = Compute.With(c.Precision, () => call(c, 0));
        var before = read();
        Compute.With(c.Precision, () => Calls().Select(other => other.Call(c, 1)()).ToArray()); // every call's scratch, reused
        return read().AsSpan().SequenceEqual(before);
    }

    [Fact]
    public void AScopeLendsItsArraysToTheNextScopeOnTheThread()
    {
        double[] first;
        using (CallScratch.Open()) first = CallScratch.Doubles(1000);
        using (CallScratch.Open()) Assert.Same(first, CallScratch.Doubles(1000));          // what the property relies on
        Assert.NotSame(CallScratch.Doubles(1000), CallScratch.Doubles(1000));              // without a scope, fresh arrays
    }

    [Fact]
    public void ATwinRoundsEveryEntryAsACastDoes()
    {
        var random = new Random(5);
        double[] special = [0, -0.0, double.Epsilon, 1e-40, -1e-45, 3.4028235677973366e38, 3.5e38, -1e300, double.NaN, double.PositiveInfinity,
            1 + Math.Pow(2, -24), 1 + 3 * Math.Pow(2, -24), 1 + Math.Pow(2, -24) + Math.Pow(2, -50)];
        var data = special.Concat(Enumerable.Range(0, 200).Select(_ => (random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-150, 130)))).ToArray();
        var block = new Block(data, 3, 7, (data.Length - 3) / 7);
        var twin = block.WithSingle().SingleSpan;
        for (var i = 0; i < block.Length; i++)
            Assert.Equal(BitConverter.SingleToInt32Bits((float)data[3 + i]), BitConverter.SingleToInt32Bits(twin[i]));
    }
}
