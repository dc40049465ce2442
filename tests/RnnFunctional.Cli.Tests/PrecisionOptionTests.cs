using System.Globalization;
using System.Text.RegularExpressions;
using Xunit;

namespace RnnFunctional.Cli.Tests;

/// <summary><c>rnnf train --precision single|double</c>: single precision trains a model of its own bits, as a function of the seed, close to double's.</summary>
public sealed partial class PrecisionOptionTests : IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private RunResult Train(params string[] extra)
    {
        var corpus = scratch.Write("names.txt", "Aardonyx\nAbelisaurus\nAchelousaurus\nAchillobator\nAcrocanthosaurus\nAegyptosaurus\nAfrovenator\nAgilisaurus\n");
        var (output, error) = (new StringWriter(), new StringWriter());
        var code = Cli.Run(["train", "--corpus", corpus, "--hidden", "40", "--epochs", "3", "--batch-size", "4", "--held-out", "0.25",
            "--model", scratch["model.rnnf"], "--plot", scratch["loss.png"], "--samples", "2", .. extra], output, error, interactive: false);
        return new(code, output.ToString(), error.ToString());
    }

    [GeneratedRegex(@"^done:.* held-out (?<loss>[0-9.]+)", RegexOptions.Multiline)]
    private static partial Regex HeldOut();

    [Theory]
    [InlineData("1")]
    [InlineData("2")]
    public void SinglePrecisionTrainsItsOwnBitsCloseToDouble(string layers)
    {
        (byte[] Model, double HeldOut) Trained(string precision)
        {
            var r = Train("--layers", layers, "--precision", precision);
            Assert.True(r.ExitCode == 0, r.Out + r.Error);
            Assert.True(ModelFile.Load(scratch["model.rnnf"]).IsSucc);
            var heldOut = HeldOut().Match(r.Out);
            Assert.True(heldOut.Success, r.Out);
            return (File.ReadAllBytes(scratch["model.rnnf"]), double.Parse(heldOut.Groups["loss"].Value, CultureInfo.InvariantCulture));
        }
        var (single, dbl) = (Trained("single"), Trained("double"));
        Assert.Equal(single.Model, Trained("single").Model);                                           // a function of --seed
        Assert.NotEqual(dbl.Model, single.Model);                                                      // the products ran in float32
        Assert.Equal(dbl.Model, Train("--layers", layers).ExitCode == 0 ? File.ReadAllBytes(scratch["model.rnnf"]) : []); // double is the default
        Assert.True(Math.Abs(single.HeldOut - dbl.HeldOut) <= 0.01, $"held-out {single.HeldOut} in single against {dbl.HeldOut} in double");
    }

    [Fact]
    public void AnUnknownPrecisionAndSinglePrecisionWithWorkersAreRefused()
    {
        var r = Train("--precision", "half");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--precision must be one of double, single but got 'half'", r.Error, StringComparison.Ordinal);
        r = Train("--precision", "single", "--workers", "2");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--workers trains in double precision", r.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(scratch["model.rnnf"]));
    }
}
