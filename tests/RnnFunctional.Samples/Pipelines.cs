using System.Collections.Immutable;
using LanguageExt;
using LanguageExt.Common;
using MathNet.Numerics.LinearAlgebra;
using Xunit;

namespace RnnFunctional.Samples;

/// <summary>The snippets of docs/pipelines.md.</summary>
public sealed class Pipelines
{
    private static readonly RnnParameters P = RnnParameters.Initialize(inputSize: 3, hiddenSize: 5, outputSize: 4, seed: 1);
    private static readonly ImmutableArray<Matrix<double>> Xs = [.. Enumerable.Range(0, 4).Select(t => Matrix<double>.Build.Random(3, 2, seed: t))];
    private static readonly Matrix<double> A0 = Matrix<double>.Build.Dense(5, 2);
    private static readonly ImmutableArray<ImmutableArray<int>> Labels = [[0, 3], [2, 1], [1, 1], [3, 0]];

    [Fact]
    public void TryFunctionsListEveryProblem()
    {
        var p = P;
        #region validation
        // Two mistakes at once: x⟨2⟩ has 2 columns instead of 3, and a⟨0⟩ has 4 rows instead of n_a = 5.
        var xs = ImmutableArray.Create(Matrix<double>.Build.Dense(3, 3), Matrix<double>.Build.Dense(3, 2));
        var a0 = Matrix<double>.Build.Dense(4, 3);

        Validation<Error, RnnForward> result = Rnn.TryForward(p, xs, a0);
        string[] problems = result.Match(Succ: _ => [], Fail: errors => errors.Map(e => e.Message).ToArray());
        // problems: "expected xs[1] to be n_x×m = 3×3 but got 3×2", "expected a0 to be n_a×m = 5×3 but got 4×3"
        #endregion

        Assert.Equal(["expected xs[1] to be n_x×m = 3×3 but got 3×2", "expected a0 to be n_a×m = 5×3 but got 4×3"], problems);
        Assert.Throws<ArgumentException>(() => Rnn.Forward(p, xs, a0));
    }

    #region validation-pipeline
    /// <summary>
    /// The loss after one step of clipped gradient descent, as one pipeline of checked stages: the first stage that
    /// finds a problem stops the pipeline and its problems are the result.
    /// </summary>
    public static Validation<Error, double> LossAfterOneStep(RnnParameters p, ImmutableArray<Matrix<double>> xs, Matrix<double> a0,
        ImmutableArray<ImmutableArray<int>> labels, double learningRate) =>
        from valid in Rnn.Validate(p)
        from before in Rnn.TryLossAndGradients(valid, xs, a0, labels)
        let updated = valid - learningRate * Clip.ByGlobalNorm(before.Gradients, maxNorm: 5.0)
        from after in Rnn.TryLossAndGradients(updated, xs, a0, labels)
        select after.Loss;
    #endregion

    [Fact]
    public void ValidationPipelineRunsOrStopsAtTheFirstProblem()
    {
        var before = Rnn.LossAndGradients(P, Xs, A0, Labels).Loss;
        var after = LossAfterOneStep(P, Xs, A0, Labels, 0.1);
        Assert.True(after.IsSuccess);
        Assert.True(after.Match(Succ: loss => loss < before, Fail: _ => false));

        var broken = LossAfterOneStep(P with { Ba = Vector<double>.Build.Dense(5, double.NaN) }, Xs, A0, Labels, 0.1);
        Assert.Equal(["expected Ba to be finite but entry 0 is NaN"], broken.Match(Succ: _ => [], Fail: errors => errors.Map(e => e.Message).ToArray()));
    }

    [Fact]
    public void ForwardIsAFoldOfTheCell()
    {
        var (p, xs, a0) = (P, Xs, A0);
        #region fold
        // Rnn.Forward is this fold of the cell over the sequence: the carry is a⟨t⟩, the output of each step ŷ⟨t⟩.
        var (aT, predictions) = Scan.Fold(a0, xs, (aPrev, x) =>
        {
            var step = Rnn.CellForward(p, x, aPrev);
            return (step.A, step.YHat);
        });
        #endregion

        var forward = Rnn.Forward(p, xs, a0);
        Assert.Equal(forward.States[^1], aT);
        Assert.True(forward.Predictions.Zip(predictions).All(p => p.Item1.Equals(p.Item2)),
            string.Join(" ", forward.Predictions.Zip(predictions).Select(p => (p.Item1 - p.Item2).Enumerate().Max(Math.Abs))));
    }

    [Fact]
    public void TreeArithmeticOnParametersAndGradients()
    {
        var (p, xs, a0, labels) = (P, Xs, A0, Labels);
        #region tree-arithmetic
        var g = Rnn.LossAndGradients(p, xs, a0, labels).Gradients;  // an RnnParameters, like p

        double norm = Tree.Norm(g);                                  // the global norm over every leaf
        var clipped = Tree.Map(g, v => Math.Clamp(v, -5, 5));        // clipping by value, entry by entry
        var velocity = Tree.Add(Tree.Scale(0.9, Tree.ZerosLike(p)), g); // momentum: v ← 0.9·v + g
        var next = p - 0.1 * velocity;                                // the record's own operators
        double[] flat = Tree.Flatten(next);                           // every entry, leaf after leaf
        var shapes = next.ToLeaves().Select(l => $"{l.Name} {l.Rows}×{l.Columns}"); // Wax 5×3, Waa 5×5, Ba 5×1, Wya 4×5, By 4×1
        #endregion

        Assert.Equal(Math.Sqrt(Tree.Dot(g, g)), norm);
        Assert.Equal(Tree.Flatten(g).Select(v => Math.Clamp(v, -5, 5)), Tree.Flatten(clipped));
        Assert.Equal(Tree.Flatten(g), Tree.Flatten(velocity));
        Assert.Equal(Tree.Flatten(p).Zip(Tree.Flatten(g), (a, b) => a - 0.1 * b), flat);
        Assert.Equal(["Wax 5×3", "Waa 5×5", "Ba 5×1", "Wya 4×5", "By 4×1"], shapes);
    }

    [Fact]
    public void TrainingIsAFoldOfAPureStep()
    {
        var (p, xs, a0, labels) = (P, Xs, A0, Labels);
        var initial = Tree.Flatten(p);
        #region training-fold
        // One training step is a pure function of (parameters, optimizer state): loss and gradients, clipping, update.
        var adam = Optimizers.Adam<RnnParameters>(learningRate: 0.01);
        (RnnParameters P, OptimizerState<RnnParameters> S) Step((RnnParameters P, OptimizerState<RnnParameters> S) state) =>
            adam.Update(state.P, Clip.ByGlobalNorm(Rnn.LossAndGradients(state.P, xs, a0, labels).Gradients, maxNorm: 5.0), state.S);

        // Training is a fold of that step; p itself is never changed.
        var (trained, _) = Enumerable.Range(0, 200).Aggregate((p, adam.Init(p)), (state, _) => Step(state));
        #endregion

        var (before, after) = (Rnn.LossAndGradients(p, xs, a0, labels).Loss, Rnn.LossAndGradients(trained, xs, a0, labels).Loss);
        Assert.True(after < before / 4, $"loss {before} → {after}");
        Assert.Equal(initial, Tree.Flatten(p));
    }
}
