using Xunit;

namespace RnnFunctional.Cli.Tests;

/// <summary><c>rnnf train --dropout P --recurrent-dropout P</c>: a stacked model trains with dropout, and the options are refused where they cannot apply.</summary>
public sealed class DropoutOptionTests : IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private RunResult Train(params string[] extra)
    {
        var corpus = scratch.Write("names.txt", "Aardonyx\nAbelisaurus\nAchelousaurus\nAchillobator\nAcrocanthosaurus\nAegyptosaurus\nAfrovenator\nAgilisaurus\n");
        var (output, error) = (new StringWriter(), new StringWriter());
        var code = Cli.Run(["train", "--corpus", corpus, "--hidden", "6", "--epochs", "2", "--batch-size", "4", "--held-out", "0.25",
            "--model", scratch["model.rnnf"], "--plot", scratch["loss.png"], "--samples", "2", .. extra], output, error, interactive: false);
        return new(code, output.ToString(), error.ToString());
    }

    [Fact]
    public void StackedModelTrainsWithDropoutAsAFunctionOfTheSeed()
    {
        byte[] Trained(params string[] options)
        {
            var r = Train(["--layers", "2", .. options]);
            Assert.True(r.ExitCode == 0, r.Out + r.Error);
            Assert.True(ModelFile.Load(scratch["model.rnnf"]).IsSucc);
            return File.ReadAllBytes(scratch["model.rnnf"]);
        }
        var dropped = Trained("--dropout", "0.2", "--recurrent-dropout", "0.3");
        Assert.Equal(dropped, Trained("--dropout", "0.2", "--recurrent-dropout", "0.3"));            // a function of --seed
        Assert.NotEqual(Trained(), dropped);                                                            // the masks change training
        Assert.Equal(Trained(), Trained("--dropout", "0", "--recurrent-dropout", "0"));                 // p = 0 is no dropout
    }

    [Fact]
    public void DropoutOfAOneLayerModelIsRefused()
    {
        var r = Train("--dropout", "0.2");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--dropout and --recurrent-dropout need --layers 2 or more", r.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(scratch["model.rnnf"]));
    }

    [Theory]
    [InlineData("--dropout", "1")]
    [InlineData("--recurrent-dropout", "-0.1")]
    public void RatesOutsideTheRangeAreRefused(string option, string value)
    {
        var r = Train("--layers", "2", option, value);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains($"{option} must be a number in [0, 0.95] but got '{value}'", r.Error, StringComparison.Ordinal);
    }
}
