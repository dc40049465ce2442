using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnFunctional.Kernels;
using RnnFunctional.Testing;
using static RnnFunctional.Testing.Compare;

namespace RnnFunctional.Tests;

/// <summary>
/// A batch of one chunk on two threads (<see cref="Team"/>: the rows of every product shared, cut at multiples of 16
/// rows) has the bits of one thread, for every cell, its forward, backward and loss, and for stacks on the driver, with
/// the products in either precision.
/// Sizes are drawn so that the products have from 32 to a few hundred rows, most not a multiple of 16.
/// </summary>
public sealed class TeamTests
{
    private static Gen<Shaped> Shapes =>
        from nx in Gen.Choose(17, 70)
        from na in Gen.Choose(17, 70)
        from ny in Gen.Choose(2, 40)
        from m in Gen.Choose(1, 40)
        from t in Gen.Choose(1, 6)
        from seed in Gen.Choose(0, int.MaxValue - 1)
        select new Shaped(new Dims(nx, na, ny, m, t), seed);

    /// <summary>Both precisions of the products (<see cref="Compute.With{T}"/>): the bits of one thread and many agree in each.</summary>
    private static Arbitrary<Precision> Precisions => Gen.Elements(Precision.Double, Precision.Single).ToArbitrary();

    /// <summary>Runs <paramref name="body"/> with a team formed for every call of this thread, whatever its size.</summary>
    private static T Teamed<T>(Func<T> body)
    {
        Team.Always = true;
        try
        {
            return body();
        }
        finally
        {
            Team.Always = false;
        }
    }

    /// <summary>A team of two threads, waited for up to 30 s: the helpers may be serving another test's team.</summary>
    private static Team TeamOfTwo()
    {
        Team? team = null;
        for (var tries = 0; team is null && tries < 3000; tries++)
            if ((team = Team.Of(2)) is null) Thread.Sleep(10);
        Assert.NotNull(team);
        return team;
    }

    /// <summary>
    /// A band whose helper has not started it by the time the caller's own band is done is computed by the caller, a
    /// band whose helper is on time by the helper, and each band of a run exactly once: the helper that comes late finds
    /// its band taken.
    /// </summary>
    [Fact]
    public async Task ABandItsHelperHasNotStartedIsComputedOnceByTheCaller()
    {
        var team = TeamOfTwo();
        using var gate = new SemaphoreSlim(0);
        var (ran, where) = (new int[2], new int[2]);
        var caller = 0;
        var runs = Task.Run(() =>                                                                             // a broken claim could leave Run waiting forever
        {
            caller = Environment.CurrentManagedThreadId;
            team.BeforeClaim = () => gate.Wait(TimeSpan.FromSeconds(20));                                 // the helper is late: held until released
            team.Run(i => (ran[i], where[i]) = (ran[i] + 1, Environment.CurrentManagedThreadId));
            Assert.Equal([1, 1], ran);
            Assert.Equal(caller, where[1]);
            team.BeforeClaim = null;
            gate.Release();
            var deadline = DateTime.UtcNow.AddSeconds(60);
            team.Run(i =>                                                                                   // band 0 waits for band 1 to start: the helper's
            {
                if (i == 1) (ran[1], where[1]) = (ran[1] + 1, Environment.CurrentManagedThreadId);
                else
                {
                    while (Volatile.Read(ref ran[1]) < 2 && DateTime.UtcNow < deadline) Thread.Yield();
                    ran[0]++;
                }
            });
        });
        try
        {
            await runs.WaitAsync(TimeSpan.FromSeconds(120));                                                 // TimeoutException when they do not end
        }
        finally
        {
            team.Dispose();
        }
        Assert.Equal([2, 2], ran);
        Assert.NotEqual(caller, where[1]);
    }

    /// <summary>
    /// Many runs in a row, the helper held up at random between seeing a run and claiming its band (sometimes until
    /// later runs have begun): every band of every run is computed exactly once and every run ends.
    /// </summary>
    [Fact]
    public async Task EveryBandOfEveryRunIsComputedOnceWhenTheHelperIsLate()
    {
        var team = TeamOfTwo();
        const int runs = 20_000;
        var counts = new int[2];
        var wrong = 0;
        team.BeforeClaim = () =>
        {
            var r = Random.Shared.Next(64);
            if (r == 0) Thread.Sleep(1);
            else if (r < 8) Thread.Yield();
        };
        var work = Task.Run(() =>
        {
            for (var k = 1; k <= runs; k++)
            {
                team.Run(i => Interlocked.Increment(ref counts[i]));
                if (Volatile.Read(ref counts[0]) != k || Volatile.Read(ref counts[1]) != k) Interlocked.Increment(ref wrong);
            }
        });
        try
        {
            await work.WaitAsync(TimeSpan.FromSeconds(120));                                                  // TimeoutException when a run never ends
        }
        finally
        {
            team.BeforeClaim = null;
            team.Dispose();
        }
        Assert.Equal(0, wrong);
        Assert.Equal([runs, runs], counts);
    }

    /// <summary>
    /// A run whose own band throws ends, with that exception, only once its helper's band is done, so that band cannot
    /// count against a later run; the runs after it each compute every band once.
    /// </summary>
    [Fact]
    public async Task ARunWhoseBandThrowsEndsOnlyOnceEveryBandIsDone()
    {
        var team = TeamOfTwo();
        using var started = new ManualResetEventSlim();
        using var gate = new ManualResetEventSlim();
        var (helperBand, thrown, counts) = (0, (Exception?)null, new int[2]);
        var work = Task.Run(() =>
        {
            try
            {
                team.Run(i =>
                {
                    if (i == 1)
                    {
                        started.Set();
                        gate.Wait(TimeSpan.FromSeconds(30));
                        Volatile.Write(ref helperBand, 1);
                        return;
                    }
                    started.Wait(TimeSpan.FromSeconds(30));                                                     // the helper is inside its band
                    _ = Task.Delay(100).ContinueWith(_ => gate.Set(), TaskScheduler.Default);
                    throw new InvalidOperationException("band 0");
                });
            }
            catch (InvalidOperationException e)
            {
                thrown = e;
            }
            var whenThrown = Volatile.Read(ref helperBand);
            for (var k = 0; k < 1000; k++) team.Run(i => Interlocked.Increment(ref counts[i]));
            return whenThrown;
        });
        try
        {
            Assert.Equal(1, await work.WaitAsync(TimeSpan.FromSeconds(120)));                                 // the helper's band was done first
        }
        finally
        {
            team.Dispose();
        }
        Assert.Equal("band 0", thrown?.Message);
        Assert.Equal([1000, 1000], counts);
    }

    [Property(MaxTest = 16)]
    public Property RnnOnATeamHasTheBitsOfOneThread() =>
        Prop.ForAll(Shapes.ToArbitrary(), Precisions, (shape, precision) => Compute.With(precision, () =>
        {
            var c = new RnnCase(shape);
            var one = Rnn.LossKernel(c.P, c.Xs, c.A0, c.Labels, c.Xs.Length, threads: 1);
            var two = Teamed(() => Rnn.LossKernel(c.P, c.Xs, c.A0, c.Labels, c.Xs.Length, threads: 2));
            var backOne = Rnn.BackwardKernel(Rnn.ForwardKernel(c.P, c.Xs, c.A0, threads: 1), c.Da, threads: 1);
            var backTwo = Teamed(() => Rnn.BackwardKernel(Rnn.ForwardKernel(c.P, c.Xs, c.A0, threads: 2), c.Da, threads: 2));
            return (Same(one.Loss, two.Loss) && Same(one.Gradients, two.Gradients) && Same(one.Dx, two.Dx) && Same(one.Da0, two.Da0)).Label("loss and gradients")
                .And((Same(backOne.Gradients, backTwo.Gradients) && Same(backOne.Dx, backTwo.Dx) && Same(backOne.Da0, backTwo.Da0)).Label("backward"));
        }));

    [Property(MaxTest = 16)]
    public Property LstmOnATeamHasTheBitsOfOneThread() =>
        Prop.ForAll(Shapes.ToArbitrary(), Precisions, (shape, precision) => Compute.With(precision, () =>
        {
            var c = new LstmCase(shape);
            var one = Lstm.LossKernel(c.P, c.Xs, c.A0, c.C0, c.Labels, threads: 1);
            var two = Teamed(() => Lstm.LossKernel(c.P, c.Xs, c.A0, c.C0, c.Labels, threads: 2));
            var forwardOne = Lstm.ForwardKernel(c.P, c.Xs, c.A0, c.C0, threads: 1);
            var forwardTwo = Teamed(() => Lstm.ForwardKernel(c.P, c.Xs, c.A0, c.C0, threads: 2));
            var (backOne, backTwo) = (Lstm.BackwardKernel(forwardOne, c.Da, threads: 1), Teamed(() => Lstm.BackwardKernel(forwardTwo, c.Da, threads: 2)));
            return (Same(one.Loss, two.Loss) && Same(one.Gradients, two.Gradients) && Same(one.Dx, two.Dx) && Same(one.Da0, two.Da0)
                    && Same(one.Dc0, two.Dc0)).Label("loss and gradients")
                .And((Same(forwardOne.States, forwardTwo.States) && Same(forwardOne.Cells, forwardTwo.Cells)).Label("states and cells"))
                .And((Same(backOne.Gradients, backTwo.Gradients) && Same(backOne.Dx, backTwo.Dx)).Label("backward"));
        }));

    [Property(MaxTest = 16)]
    public Property GruOnATeamHasTheBitsOfOneThread() =>
        Prop.ForAll(Shapes.ToArbitrary(), Precisions, (shape, precision) => Compute.With(precision, () =>
        {
            var c = new GruCase(shape);
            var one = Gru.LossKernel(c.P, c.Xs, c.A0, c.Labels, threads: 1);
            var two = Teamed(() => Gru.LossKernel(c.P, c.Xs, c.A0, c.Labels, threads: 2));
            var backOne = Gru.BackwardKernel(Gru.ForwardKernel(c.P, c.Xs, c.A0, threads: 1), c.Da, threads: 1);
            var backTwo = Teamed(() => Gru.BackwardKernel(Gru.ForwardKernel(c.P, c.Xs, c.A0, threads: 2), c.Da, threads: 2));
            return (Same(one.Loss, two.Loss) && Same(one.Gradients, two.Gradients) && Same(one.Dx, two.Dx) && Same(one.Da0, two.Da0)).Label("loss and gradients")
                .And((Same(backOne.Gradients, backTwo.Gradients) && Same(backOne.Dx, backTwo.Dx)).Label("backward"));
        }));

    [Property(MaxTest = 12)]
    public Property StacksOnATeamHaveTheBitsOfOneThread() =>
        Prop.ForAll(Shapes.ToArbitrary(), Precisions, (shape, precision) => Compute.With(precision, () =>
        {
            var c = new StackCase(shape, [LayerSpec.Uni(CellKind.Lstm), LayerSpec.Bi(CellKind.Gru, CellKind.RnnTanh)], ragged: true);
            var lengths = c.LengthsArgument ?? [.. Enumerable.Repeat(c.Xs.Length, c.Xs[0].ColumnCount)];
            Func<int, int, int> label = (t, j) => t < lengths[j] ? c.Labels[t][j] : Ragged.Ignored;
            var one = Stack.OnDriver(c.P, c.Xs, lengths, c.Initial, label, inputGradients: true, threads: 1)!;
            var two = Teamed(() => Stack.OnDriver(c.P, c.Xs, lengths, c.Initial, label, inputGradients: true, threads: 3)!);   // more threads than layers: a team
            return (Same(one.Losses, two.Losses) && Same(one.Gradients, two.Gradients) && Same(one.Dx, two.Dx) && Same(one.DInitial, two.DInitial)
                    && Same(one.Final, two.Final)).Label("stack loss and gradients");
        }));

    /// <summary>
    /// A layer of every cell on a team: the products in bands of rows and the cell's step and its backward in bands of
    /// columns (one a thread, or, for a cell with a column-wise gradient of its own parameters, the fixed bands of its
    /// own sums) give the bits of one thread.
    /// </summary>
    [Property(MaxTest = 24)]
    public Property ALayerOfEveryCellOnATeamHasTheBitsOfOneThread() =>
        Prop.ForAll(Shapes.ToArbitrary(), Gen.Elements(Enum.GetValues<CellKind>()).Two().ToArbitrary(), Precisions, (shape, kinds, precision) => Compute.With(precision, () =>
        {
            var c = new StackCase(shape, [LayerSpec.Uni(kinds.Item1), LayerSpec.Bi(kinds.Item2, kinds.Item1)], ragged: true);
            Func<int, int, int> label = (t, j) => t < c.Lengths[j] ? c.Labels[t][j] : Ragged.Ignored;
            var one = Stack.OnDriver(c.P, c.Xs, c.Lengths, c.Initial, label, inputGradients: true, threads: 1);
            var two = Teamed(() => Stack.OnDriver(c.P, c.Xs, c.Lengths, c.Initial, label, inputGradients: true, threads: 3));   // more threads than layers: a team
            return (one is not null && two is not null && Same(one.Losses, two.Losses) && Same(one.Gradients, two.Gradients) && Same(one.Dx, two.Dx)
                    && Same(one.DInitial, two.DInitial) && Same(one.Final, two.Final)).Label($"{c}: the same bits on a team");
        }));

    /// <summary>
    /// A layer of a cell with a column-wise gradient of its own parameters (peephole weights, layer-norm gains and
    /// biases), one-directional or bidirectional, on teams of two and three threads: the backward runs in the fixed
    /// bands of 8 columns of the own sums (batches of 17–64 columns, ragged, so from one to eight bands a step, shared
    /// unevenly), and gives the bits of one thread, in both precisions.
    /// </summary>
    [Property(MaxTest = 24)]
    public Property CellsWithOwnParametersOnTeamsOfAnySizeHaveTheBitsOfOneThread() =>
        Prop.ForAll((from kinds in Gen.Elements(CellKind.PeepholeLstm, CellKind.LayerNormLstm, CellKind.LayerNormGru).Two()
                     from bidirectional in Gen.Elements(true, false)
                     from nx in Gen.Choose(3, 40)
                     from na in Gen.Choose(3, 40)
                     from m in Gen.Choose(17, 64)
                     from t in Gen.Choose(1, 6)
                     from seed in Gen.Choose(0, int.MaxValue - 1)
                     select (Spec: bidirectional ? LayerSpec.Bi(kinds.Item1, kinds.Item2) : LayerSpec.Uni(kinds.Item1),
                             Shape: new Shaped(new Dims(nx, na, 5, m, t), seed))).ToArbitrary(), Precisions, (d, precision) => Compute.With(precision, () =>
        {
            var c = new StackCase(d.Shape, [d.Spec], ragged: true);
            Func<int, int, int> label = (t, j) => t < c.Lengths[j] ? c.Labels[t][j] : Ragged.Ignored;
            var one = Stack.OnDriver(c.P, c.Xs, c.Lengths, c.Initial, label, inputGradients: true, threads: 1)!;
            return new[] { 2, 3 }.Select(threads =>
                {
                    var team = Teamed(() => Stack.OnDriver(c.P, c.Xs, c.Lengths, c.Initial, label, inputGradients: true, threads: threads)!);
                    return (Same(one.Losses, team.Losses) && Same(one.Gradients, team.Gradients) && Same(one.Dx, team.Dx) && Same(one.DInitial, team.DInitial)
                            && Same(one.Final, team.Final)).Label($"{c}: one thread and a team of {threads}, the same bits");
                })
                .Aggregate((a, b) => a.And(b));
        }));

    /// <summary>
    /// A stack of LSTM layers with a projection, one-directional under bidirectional (their n_p-row outputs copied out of
    /// the driver's n_a-row parts for the next layer), on a team of three threads, the rows of every product shared, has
    /// the bits of one thread.
    /// </summary>
    [Property(MaxTest = 8)]
    public Property ProjectedStacksOnATeamHaveTheBitsOfOneThread() =>
        Prop.ForAll(Shapes.ToArbitrary(), shape =>
        {
            var c = new StackCase(shape, [LayerSpec.Uni(CellKind.ProjectedLstm), LayerSpec.Bi(CellKind.ProjectedLstm, CellKind.Gru)], ragged: true);
            Func<int, int, int> label = (t, j) => t < c.Lengths[j] ? c.Labels[t][j] : Ragged.Ignored;
            var one = Stack.OnDriver(c.P, c.Xs, c.Lengths, c.Initial, label, inputGradients: true, threads: 1)!;
            var team = Teamed(() => Stack.OnDriver(c.P, c.Xs, c.Lengths, c.Initial, label, inputGradients: true, threads: 3)!);
            return (Same(one.Losses, team.Losses) && Same(one.Gradients, team.Gradients) && Same(one.Dx, team.Dx) && Same(one.DInitial, team.DInitial)
                    && Same(one.Final, team.Final)).Label("stack loss and gradients");
        });

    /// <summary>
    /// The layers of a stack with LSTM layers with a projection side by side, one on each thread: a projected layer
    /// hands each step's n_p rows to the layer above as soon as the step is done, and takes their gradient back step
    /// after step. One, two and three threads give the same bits, with every kind of dropout mask or none.
    /// </summary>
    [Property(MaxTest = 20)]
    public Property ProjectedStackLayersSideBySideHaveTheBitsOfOneThread() =>
        Prop.ForAll((from layers in Gen.Choose(2, 4)
                     from kinds in Gen.Elements(CellKind.ProjectedLstm, CellKind.ProjectedLstm, CellKind.Lstm, CellKind.Gru).ArrayOf(layers)
                     from bidirectional in Gen.Choose(0, 3).ArrayOf(layers)
                     from m in Gen.Choose(17, 64)
                     from t in Gen.Choose(1, 24)
                     from dropout in Gen.Elements(true, false)
                     from seed in Gen.Choose(0, int.MaxValue - 1)
                     select (Specs: kinds.Select((k, l) => l == 0 ? LayerSpec.Uni(CellKind.ProjectedLstm)
                                                    : bidirectional[l] == 0 ? LayerSpec.Bi(k, kinds[(l + 1) % layers]) : LayerSpec.Uni(k)).ToArray(),
                             Shape: new Shaped(new Dims(5, 6, 4, m, t), seed), Dropout: dropout)).ToArbitrary(), d =>
        {
            var c = new StackCase(d.Shape, [.. d.Specs], ragged: true);
            Func<int, int, int> label = (t, j) => t < c.Lengths[j] ? c.Labels[t][j] : Ragged.Ignored;
            var masks = d.Dropout
                ? new Dropout(Between: 0.3, Recurrent: 0.3, Inputs: 0.2, ReadOut: 0.3).Draw(c.P, c.Xs.Length, c.Xs[0].ColumnCount, RandomState.Seeded(d.Shape.Seed)).Mask
                : null;
            var runs = new[] { 1, 2, 3 }.Select(threads => Stack.OnDriver(c.P, c.Xs, c.Lengths, c.Initial, label, inputGradients: true, masks, threads)!).ToArray();
            return runs.Skip(1).Select((r, i) => (Same(runs[0].Losses, r.Losses) && Same(runs[0].Gradients, r.Gradients) && Same(runs[0].Dx, r.Dx)
                    && Same(runs[0].DInitial, r.DInitial) && Same(runs[0].Final, r.Final)).Label($"one thread and {i + 2}: same bits"))
                .Aggregate((a, b) => a.And(b));
        });

    /// <summary>
    /// The layers of a stack side by side, one on each thread (batches too small to share rows): one, two and three
    /// threads give the same bits, for stacks of two to four layers mixing cells, one-direction and bidirectional layers,
    /// ragged lengths and dropout masks between the layers and on the read-out. Batches of 17–64 columns and up to 24
    /// steps make time blocks of 4–15 steps, so a layer's steps arrive while the next layer runs a block.
    /// </summary>
    [Property(MaxTest = 24)]
    public Property StackLayersSideBySideHaveTheBitsOfOneThread() =>
        Prop.ForAll((from layers in Gen.Choose(2, 4)
                     from kinds in Gen.Elements(CellKind.Lstm, CellKind.Gru, CellKind.RnnTanh, CellKind.RnnRelu).ArrayOf(layers)
                     from bidirectional in Gen.Choose(0, 3).ArrayOf(layers)
                     from m in Gen.Choose(17, 64)
                     from t in Gen.Choose(1, 24)
                     from dropout in Gen.Elements(true, false)
                     from seed in Gen.Choose(0, int.MaxValue - 1)
                     select (Specs: kinds.Select((k, l) => bidirectional[l] == 0 ? LayerSpec.Bi(k, kinds[(l + 1) % layers]) : LayerSpec.Uni(k)).ToArray(),
                             Shape: new Shaped(new Dims(5, 6, 4, m, t), seed), Dropout: dropout)).ToArbitrary(), Precisions, (d, precision) => Compute.With(precision, () =>
        {
            var c = new StackCase(d.Shape, [.. d.Specs], ragged: true);
            var (steps, m) = (c.Xs.Length, c.Xs[0].ColumnCount);
            Func<int, int, int> label = (t, j) => t < c.Lengths[j] ? c.Labels[t][j] : Ragged.Ignored;
            var random = RandomState.Seeded(d.Shape.Seed);
            System.Collections.Immutable.ImmutableArray<MathNet.Numerics.LinearAlgebra.Matrix<double>> Masks(int rows) =>
                [.. Enumerable.Range(0, steps).Select(_ => { var (mask, next) = Dropout.Bernoulli(0.3, rows, m, random); random = next; return mask; })];
            var masks = d.Dropout ? new DropoutMask([.. c.P.Layers.Select((layer, l) => l == 0 ? default : Masks(layer.InputSize))], default, Masks(c.P.Layers[^1].OutputSize)) : null;
            var runs = new[] { 1, 2, 3 }.Select(threads => Stack.OnDriver(c.P, c.Xs, c.Lengths, c.Initial, label, inputGradients: true, masks, threads)!).ToArray();
            return runs.Skip(1).Select((r, i) => (Same(runs[0].Losses, r.Losses) && Same(runs[0].Gradients, r.Gradients) && Same(runs[0].Dx, r.Dx)
                    && Same(runs[0].DInitial, r.DInitial) && Same(runs[0].Final, r.Final)).Label($"one thread and {i + 2}: same bits"))
                .Aggregate((a, b) => a.And(b));
        }));
}
