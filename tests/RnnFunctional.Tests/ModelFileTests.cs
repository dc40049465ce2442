using System.Collections.Immutable;
using FsCheck;
using RnnFunctional.Testing;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace RnnFunctional.Tests;

/// <summary>The model file: exact round trips, detection of every corruption, atomic writes.</summary>
public sealed class ModelFileTests
{
    private static readonly ImmutableDictionary<string, string> Metadata = new Dictionary<string, string>
    {
        ["format"] = "test", ["cell"] = "rnn", ["vocabulary"] = "\nabcé🦕",
    }.ToImmutableDictionary();

    /// <summary>Every cell type's parameters with random bit patterns (NaN payloads, ±0, ±∞, subnormals included).</summary>
    private static IEnumerable<(string Cell, ModelDocument Document, Func<ModelDocument, bool> RoundTrips)> Models(LanguageCase c)
    {
        var random = new Random(c.Seed);
        var rnn = Tree.Map(c.P, _ => BitConverter.Int64BitsToDouble(random.NextInt64(long.MinValue, long.MaxValue)));
        var lstm = Tree.Map(c.Lstm, _ => BitConverter.Int64BitsToDouble(random.NextInt64(long.MinValue, long.MaxValue)));
        var gru = Tree.Map(c.Gru, _ => BitConverter.Int64BitsToDouble(random.NextInt64(long.MinValue, long.MaxValue)));
        yield return ("rnn", ModelDocument.Of(Metadata, rnn), d => d.ReadInto(c.P).Match(p => Compare.Same(p, rnn), _ => false));
        yield return ("lstm", ModelDocument.Of(Metadata, lstm), d => d.ReadInto(c.Lstm).Match(p => Compare.Same(p, lstm), _ => false));
        var stack = Tree.Map(c.Stack, _ => BitConverter.Int64BitsToDouble(random.NextInt64(long.MinValue, long.MaxValue)));
        yield return ("gru", ModelDocument.Of(Metadata, gru), d => d.ReadInto(c.Gru).Match(p => Compare.Same(p, gru), _ => false));
        yield return ("stack", ModelDocument.Of(Metadata, stack), d => d.ReadInto(c.Stack).Match(p => Compare.Same(p, stack), _ => false));
    }

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property RoundTripIsBitExactForEveryCellType(LanguageCase c) =>
        Models(c).Select(m =>
        {
            var back = ModelFile.Deserialize(ModelFile.Serialize(m.Document));
            return back.Match(d => d.IdenticalTo(m.Document) && m.RoundTrips(d), _ => false).Label($"{m.Cell}: identical after a round trip");
        }).Aggregate((a, b) => a.And(b));

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 100)]
    public Property EverySingleByteCorruptionIsDetected(LanguageCase c)
    {
        var random = new Random(c.Seed);
        var models = Models(c).ToArray();
        var bytes = ModelFile.Serialize(models[random.Next(models.Length)].Document);
        var missed = Enumerable.Range(0, bytes.Length).Where(i =>
        {
            var corrupted = (byte[])bytes.Clone();
            corrupted[i] ^= (byte)random.Next(1, 256);
            return ModelFile.Deserialize(corrupted).IsSucc;
        }).ToArray();
        return (missed.Length == 0).Label($"all {bytes.Length} positions detected; missed: {string.Join(", ", missed.Take(5))}");
    }

    [Fact]
    public void EveryTruncationIsDetected()
    {
        var bytes = ModelFile.Serialize(ModelDocument.Of(Metadata, RnnParameters.Initialize(3, 2, 3, seed: 1)));
        for (var n = 0; n < bytes.Length; n++)
            Assert.True(ModelFile.Deserialize(bytes.AsSpan(0, n)).IsFail, $"a prefix of {n} of {bytes.Length} bytes was accepted");
        Assert.Contains("truncated", Message(ModelFile.Deserialize(bytes.AsSpan(0, bytes.Length - 1))));
        Assert.True(ModelFile.Deserialize([.. bytes, 0]).IsFail);
    }

    [Fact]
    public void ErrorsSayWhatIsWrong()
    {
        var bytes = ModelFile.Serialize(ModelDocument.Of(Metadata, RnnParameters.Initialize(3, 2, 3, seed: 1)));
        Assert.Contains("not a model file", Message(ModelFile.Deserialize("hello, world"u8)));
        var version = (byte[])bytes.Clone();
        version[8] = 2;
        Assert.Contains("format version 2 but this build reads version 1", Message(ModelFile.Deserialize(version)));
        var flipped = (byte[])bytes.Clone();
        flipped[^40] ^= 1;
        Assert.Contains("checksum", Message(ModelFile.Deserialize(flipped)));
        Assert.Contains("does not exist", Message(ModelFile.Load(Path.Combine(Path.GetTempPath(), $"{Guid.NewGuid():N}.rnnf"))));
    }

    [Fact]
    public void ReadIntoRejectsAnotherShape()
    {
        var document = ModelDocument.Of(Metadata, RnnParameters.Initialize(3, 2, 3, seed: 1));
        var error = document.ReadInto(RnnParameters.Initialize(3, 4, 3, seed: 1));
        Assert.Contains("expected leaf 0 of leaves to be Wax 4×3 but got Wax 2×3", Message(error));
    }

    [Fact]
    public void SaveWritesAtomicallyAndLoadsBackIdentical()
    {
        var directory = Directory.CreateTempSubdirectory("rnnf-test-");
        try
        {
            var path = Path.Combine(directory.FullName, "model.rnnf");
            var first = ModelDocument.Of(Metadata, RnnParameters.Initialize(3, 2, 3, seed: 1));
            var second = ModelDocument.Of(Metadata, RnnParameters.Initialize(3, 5, 3, seed: 2));
            Assert.True(ModelFile.Save(path, first).IsSucc);
            Assert.True(ModelFile.Load(path).Match(d => d.IdenticalTo(first), _ => false));
            Assert.True(ModelFile.Save(path, second).IsSucc);
            Assert.True(ModelFile.Load(path).Match(d => d.IdenticalTo(second), _ => false));
            Assert.Equal(["model.rnnf"], directory.GetFiles().Select(f => f.Name));
            Assert.True(ModelFile.Save(Path.Combine(directory.FullName, "missing", "model.rnnf"), first).IsFail);
            Assert.Equal(["model.rnnf"], directory.GetFiles().Select(f => f.Name));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static string Message<T>(LanguageExt.Fin<T> result) => result.Match(_ => "(success)", e => e.Message);
}
