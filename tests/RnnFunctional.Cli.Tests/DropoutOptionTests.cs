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
        Assert.NotEqual(Trained("--dropout", "0", "--recurrent-dropout", "0"), dropped);                // the masks change training
        Assert.NotEqual(Trained("--dropout", "0.2", "--recurrent-dropout", "0.2"), dropped);            // and so does each rate
    }

    [Theory]
    [InlineData("--dropout")]
    [InlineData("--recurrent-dropout")]
    public void DropoutOfAOneLayerModelIsRefused(string option)
    {
        var r = Train("--layers", "1", option, "0.2");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--dropout and --recurrent-dropout need --layers 2 or more", r.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(scratch["model.rnnf"]));
    }

    private static TrainOptions Parsed(params string[] args) =>
        TrainCommand.Parse(args).Match(o => o, errors => throw new Xunit.Sdk.XunitException(string.Join("; ", errors.Map(e => e.Message))));

    [Fact]
    public void TheDefaultModelIsTwoLayersOf160WithDropout02()
    {
        var o = Parsed();
        Assert.Equal((2, 160), (o.Layers, o.Hidden));
        Assert.Equal(new Dropout(Between: 0.2, Recurrent: 0.2, ReadOut: 0.2), o.Dropout);
        Assert.Equal(new Dropout(Between: 0.2, Recurrent: 0.2, ReadOut: 0.2), Parsed("--layers", "3").Dropout);
        // A rate given alone leaves the other at its default.
        Assert.Equal(new Dropout(Between: 0.5, Recurrent: 0.2, ReadOut: 0.5), Parsed("--dropout", "0.5").Dropout);
        Assert.Equal(new Dropout(Between: 0.2, Recurrent: 0, ReadOut: 0.2), Parsed("--recurrent-dropout", "0").Dropout);
    }

    [Fact]
    public void OneLayerOrWorkersDefaultToNoDropout()
    {
        Assert.Equal(Dropout.None, Parsed("--layers", "1").Dropout);
        var workers = Parsed("--workers", "2");
        Assert.Equal((2, 160, Dropout.None), (workers.Layers, workers.Hidden, workers.Dropout));
        Assert.Equal(Dropout.None, Parsed("--pieces", "4").Dropout);
        Assert.Equal(0, TrainCommand.DropoutDefault(1, pieces: false));
        Assert.Equal(0, TrainCommand.DropoutDefault(2, pieces: true));
        Assert.Equal(0.2, TrainCommand.DropoutDefault(2, pieces: false));
        Assert.Throws<ArgumentOutOfRangeException>("layers", () => TrainCommand.DropoutDefault(0, pieces: false));
    }

    [Fact]
    public void TheDefaultStackTrainsWithDropout02AndOneLayerWithout()
    {
        byte[] Trained(params string[] options)
        {
            var r = Train(options);
            Assert.True(r.ExitCode == 0, r.Out + r.Error);
            return File.ReadAllBytes(scratch["model.rnnf"]);
        }
        var byDefault = Train();
        Assert.True(byDefault.ExitCode == 0, byDefault.Out + byDefault.Error);
        Assert.Contains("lstm n_a=6 ×2 layers, dropout 0.2 / recurrent 0.2", byDefault.Out, StringComparison.Ordinal);
        var model = File.ReadAllBytes(scratch["model.rnnf"]);
        Assert.Equal(Trained("--layers", "2", "--dropout", "0.2", "--recurrent-dropout", "0.2"), model);
        Assert.NotEqual(Trained("--layers", "2", "--dropout", "0", "--recurrent-dropout", "0"), model);

        var one = Train("--layers", "1");
        Assert.True(one.ExitCode == 0, one.Out + one.Error);
        Assert.Contains("lstm n_a=6 ", one.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("dropout", one.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("layers", one.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void TheHelpStatesTheDropoutDefault()
    {
        var r = RunResult.Of(["train", "--help"]);
        Assert.Equal(0, r.ExitCode);
        var help = string.Join(" ", r.Out.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--dropout <P> dropout between the layers and on the read-out's input during training, in [0, 0.95] (needs --layers 2 or more; default: 0.2 with --layers 2 or more, else 0; 0 with --workers or --pieces)", help, StringComparison.Ordinal);
        Assert.Contains("(needs --layers 2 or more; default: 0.2 with --layers 2 or more, else 0; 0 with --workers or --pieces)", help[help.IndexOf("--recurrent-dropout <P>", StringComparison.Ordinal)..], StringComparison.Ordinal);
        Assert.Contains("--hidden <N> hidden size n_a, in [1, 1024] [default: 160]", help, StringComparison.Ordinal);
        Assert.Contains("--layers <N> stacked recurrent layers, in [1, 4] [default: 2]", help, StringComparison.Ordinal);
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
