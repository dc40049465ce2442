using System.Collections.Immutable;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional;

// A small RNN (n_x = 3, n_a = 5, n_y = 4) on a batch of m = 2 sequences of T = 4 steps: forward, backward, and the
// gradient of the summed cross-entropy checked against finite differences, leaf by leaf.
const int nx = 3, na = 5, ny = 4, m = 2, T = 4;
var random = new Random(1);
Matrix<double> Draw(int rows, int columns) => Matrix<double>.Build.Dense(rows, columns, (_, _) => 2 * random.NextDouble() - 1);

var p = RnnParameters.Initialize(nx, na, ny, seed: 1);
var xs = Enumerable.Range(0, T).Select(_ => Draw(nx, m)).ToImmutableArray();
var a0 = Matrix<double>.Build.Dense(na, m);
var labels = Enumerable.Range(0, T).Select(_ => Enumerable.Range(0, m).Select(_ => random.Next(ny)).ToImmutableArray()).ToImmutableArray();

var forward = Rnn.Forward(p, xs, a0);
Console.WriteLine($"forward: {forward.States.Length} states of {forward.States[0].RowCount}×{forward.States[0].ColumnCount}, ŷ⟨T⟩ column 0 = [{string.Join(", ", forward.Predictions[^1].Column(0).Select(v => v.ToString("F4")))}]");

var result = Rnn.LossAndGradients(p, xs, a0, labels);
Console.WriteLine($"loss (sum over {T} steps × {m} examples): {result.Loss:F6}");
Console.WriteLine();

var report = GradCheck.Tree(q => Rnn.LossAndGradients(q, xs, a0, labels).Loss, p, result.Gradients, GradCheckOptions.Ridders);
Console.WriteLine("gradient check (Ridders' extrapolated central differences), worst entry per leaf:");
Console.Write(report.Summary());
Console.WriteLine($"max relative error {report.MaxRelativeError:E2} — {(report.Passes(1e-6) ? "pass" : "FAIL")} at 1e-6");
return report.Passes(1e-6) ? 0 : 1;
