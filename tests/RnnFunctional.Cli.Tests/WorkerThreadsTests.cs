namespace RnnFunctional.Cli.Tests;

/// <summary>The kernels' threads of the workers <c>rnnf train --workers N</c> starts: the cores shared out, or the inherited setting.</summary>
public sealed class WorkerThreadsTests
{
    [Theory]
    [InlineData(2, 1, "2")]
    [InlineData(2, 2, "1")]
    [InlineData(2, 3, "1")]
    [InlineData(8, 2, "4")]
    [InlineData(8, 3, "2")]
    [InlineData(1, 64, "1")]
    public void TheCoresAreSharedOutAmongTheWorkersAtLeastOneEach(int processors, int workers, string expected) =>
        Assert.Equal(expected, DataParallel.WorkerThreads(null, processors, workers));

    [Theory]
    [InlineData("1")]
    [InlineData("3")]
    public void ASettingOfTheTrainerIsLeftForTheWorkersToInherit(string inherited) =>
        Assert.Null(DataParallel.WorkerThreads(inherited, 8, 2));

    [Fact]
    public void AnEmptySettingIsNoSetting() => Assert.Equal("4", DataParallel.WorkerThreads("", 8, 2));

    [Theory]
    [InlineData(0, 2, "processors")]
    [InlineData(2, 0, "workers")]
    public void NoCoresOrNoWorkersAreRefusedNamingTheArgument(int processors, int workers, string argument) =>
        Assert.Equal(argument, Assert.Throws<ArgumentOutOfRangeException>(() => DataParallel.WorkerThreads(null, processors, workers)).ParamName);
}
