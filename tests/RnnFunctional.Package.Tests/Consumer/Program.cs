// The program of the package test: a user's console project that references the RnnFunctional and
// RnnFunctional.Testing packages and checks gradients with both.
using FsCheck;
using FsCheck.Fluent;
using RnnFunctional;
using RnnFunctional.Testing;

// One well-shaped case drawn by the testing package, checked with the core package's GradCheck.
var c = new RnnCase(new Shaped(new Dims(Nx: 3, Na: 4, Ny: 5, M: 2, T: 3), Seed: 7));
var loss = Rnn.LossAndGradients(c.P, c.Xs, c.A0, c.Labels);
var report = GradCheck.Tree(p => Rnn.LossAndGradients(p, c.Xs, c.A0, c.Labels).Loss, c.P, loss.Gradients, GradCheckOptions.Ridders);
Console.WriteLine(report.Summary());
Console.WriteLine($"entries {report.Entries.Length}, max relative error {report.MaxRelativeError:E2}");

// The testing package's laws as FsCheck properties: throws on a failure.
Check.One(Config.QuickThrowOnFailure.WithMaxTest(20), CellLaws.GradientsMatchFiniteDifferences(CellUnderTest.Rnn()));
Check.One(Config.QuickThrowOnFailure.WithMaxTest(20), CellLaws.BatchEqualsColumnsRunAlone(CellUnderTest.Rnn()));

Console.WriteLine(report.Passes(GradientProperty.Tolerance) ? "gradient check passed" : "gradient check FAILED");
return report.Passes(GradientProperty.Tolerance) ? 0 : 1;
