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

    /// <summary>An optimizer state of two slots shaped like <paramref name="like"/>, of random bit patterns.</summary>
    private static OptimizerState<T> RandomState<T>(T like, Random random) where T : IParameterTree<T> =>
        new(random.Next(0, 1000), [.. Enumerable.Range(0, 2).Select(_ => Tree.Map(like, _ => BitConverter.Int64BitsToDouble(random.NextInt64(long.MinValue, long.MaxValue))))]);

    [Property(Arbitrary = [typeof(LanguageArbitraries)], MaxTest = 50)]
    public Property AnOptimizerStateSavedWithTheParametersComesBackBitForBitInAVersion2File(LanguageCase c)
    {
        var random = new Random(c.Seed);
        var (lstm, stack) = (RandomState(c.Lstm, random), RandomState(c.Stack, random));
        var lstmDocument = ModelDocument.Of(Metadata, c.Lstm).WithOptimizer(lstm);
        var stackDocument = ModelDocument.Of(Metadata, c.Stack).WithOptimizer(stack);
        bool SameState<T>(OptimizerState<T> a, OptimizerState<T> b) where T : IParameterTree<T> =>
            a.Step == b.Step && a.Slots.Length == b.Slots.Length && a.Slots.Zip(b.Slots, (x, y) => Compare.Same(x, y)).All(same => same);
        bool Back<T>(ModelDocument document, T like, OptimizerState<T> state) where T : IParameterTree<T>
        {
            var bytes = ModelFile.Serialize(document);
            return bytes[8] == 2 && ModelFile.Deserialize(bytes).Match(
                d => d.IdenticalTo(document) && d.ReadInto(like).Match(p => Compare.Same(p, like), _ => false)
                     && d.ReadOptimizerInto(like, 2).Match(back => SameState(back, state), _ => false),
                _ => false);
        }
        var plain = ModelFile.Serialize(ModelDocument.Of(Metadata, c.Lstm));
        return Back(lstmDocument, c.Lstm, lstm).Label("lstm: parameters and optimizer state identical after a round trip")
            .And(Back(stackDocument, c.Stack, stack).Label("stack: parameters and optimizer state identical after a round trip"))
            .And((plain[8] == 1).Label("a document without an optimizer state is a version 1 file"))
            .And((!lstmDocument.IdenticalTo(ModelDocument.Of(Metadata, c.Lstm).WithOptimizer(lstm with { Step = lstm.Step + 1 }))
                  && !lstmDocument.IdenticalTo(ModelDocument.Of(Metadata, c.Lstm))).Label("another optimizer state is another document"));
    }

    [Fact]
    public void ReadingAnOptimizerStateNamesWhatDoesNotFit()
    {
        var p = RnnParameters.Initialize(3, 2, 3, seed: 1);
        var document = ModelDocument.Of(Metadata, p).WithOptimizer(Optimizers.Adam<RnnParameters>(0.01).Init(p));
        Assert.Contains("holds no optimizer state", Message(ModelDocument.Of(Metadata, p).ReadOptimizerInto(p, 2)));
        Assert.Contains("holds 10 optimizer leaves but the optimizer keeps 1 slot(s) of 5 leaves", Message(document.ReadOptimizerInto(p, 1)));
        Assert.Contains("optimizer state does not fit", Message(document.ReadOptimizerInto(RnnParameters.Initialize(3, 4, 3, seed: 1), 2)));
        Assert.Contains("expected optimizer leaf 1/By to be named 0/NAME",
            Message((document with { OptimizerSlots = [.. document.OptimizerSlots.Reverse()] }).ReadOptimizerInto(p, 2)));
    }

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
        version[8] = 3;
        Assert.Contains("format version 3 but this build reads versions 1 to 2", Message(ModelFile.Deserialize(version)));
        version[8] = 0;
        Assert.Contains("format version 0 but this build reads versions 1 to 2", Message(ModelFile.Deserialize(version)));
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

    // ---- untrusted files: declared sizes bounded by the bytes, non-finite values refused ----

    /// <summary>A model file around any payload, with a correct header and checksum (what a crafted file looks like).</summary>
    internal static byte[] Crafted(Action<BinaryWriter> payload, long? declaredLength = null, int version = 1)
    {
        using var body = new MemoryStream();
        using (var w = new BinaryWriter(body, System.Text.Encoding.UTF8, leaveOpen: true)) payload(w);
        var content = body.ToArray();
        using var file = new MemoryStream();
        using (var w = new BinaryWriter(file, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write("RNNFMODL"u8);
            w.Write(version);
            w.Write(declaredLength ?? content.Length);
            w.Write(content);
        }
        var bytes = file.ToArray();
        return [.. bytes, .. System.Security.Cryptography.SHA256.HashData(bytes)];
    }

    private static void Text(BinaryWriter w, string s) { var b = System.Text.Encoding.UTF8.GetBytes(s); w.Write(b.Length); w.Write(b); }

    [Theory]
    [InlineData(int.MaxValue, 0, 0, 0, "the number of metadata entries (2147483647) is impossible")]
    [InlineData(0, int.MaxValue, 0, 0, "the number of leaves (2147483647) is impossible")]
    [InlineData(0, 1, int.MaxValue, int.MaxValue, "leaf W declares 2147483647×2147483647 values, more than the file holds")]
    [InlineData(0, 1, 65536, 65536, "leaf W declares 65536×65536 values, more than the file holds")]
    [InlineData(0, 1, 1, 2, "leaf W declares 1×2 values, more than the file holds")]
    [InlineData(0, 1, -1, 4, "leaf W declares a negative size -1×4")]
    public void DeclaredSizesAreBoundedByTheBytesOfTheFile(int metadata, int leaves, int rows, int columns, string message)
    {
        var bytes = Crafted(w =>
        {
            w.Write(metadata);
            w.Write(leaves);
            if (leaves != 1) return;
            Text(w, "W");
            w.Write(rows);
            w.Write(columns);
            w.Write(1.0);
        });
        Assert.Contains(message, Message(ModelFile.Deserialize(bytes)));
    }

    /// <summary>
    /// Fuzzing with a fixed budget (200 cases in CI; set FsCheck's MaxTest higher for a longer run): a valid file's
    /// payload with random bytes overwritten, inserted or removed, its checksum recomputed so that the parser — not
    /// the hash — is what meets the damage. Every input ends in a document or an error value, never an exception.
    /// </summary>
    [Property(MaxTest = 200)]
    public Property MutatedPayloadsEndInAValueOrAnError(PositiveInt seed)
    {
        var random = new Random(seed.Get);
        var p = RnnParameters.Initialize(3, 2, 3, seed: 1);
        var version = random.Next(1, 3);
        var document = ModelDocument.Of(Metadata, p);
        var valid = ModelFile.Serialize(version == 1 ? document : document.WithOptimizer(Optimizers.Adam<RnnParameters>(0.01).Init(p)));
        var payload = valid[20..^32].ToList();
        for (var k = random.Next(1, 6); k > 0; k--)
        {
            var at = random.Next(payload.Count);
            switch (random.Next(3))
            {
                case 0: payload[at] = (byte)random.Next(256); break;
                case 1: payload.InsertRange(at, Enumerable.Range(0, random.Next(1, 9)).Select(_ => (byte)random.Next(256))); break;
                default: payload.RemoveRange(at, Math.Min(payload.Count - at, random.Next(1, 9))); break;
            }
            if (random.Next(4) == 0 && payload.Count >= 8)
                BitConverter.TryWriteBytes(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(payload).Slice(random.Next(payload.Count - 4), 4), random.Next(2) == 0 ? int.MaxValue : -random.Next());
        }
        var bytes = Crafted(w => w.Write(payload.ToArray()), version: version);
        var outcome = Record.Exception(() => ModelFile.Deserialize(bytes));
        return (outcome is null).Label($"threw {outcome?.GetType().Name}: {outcome?.Message}");
    }

    [Fact]
    public void AnImpossiblePayloadLengthIsCorruption() =>
        Assert.Contains("its header announces a payload of 9223372036854775807 bytes",
            Message(ModelFile.Deserialize(Crafted(w => { w.Write(0); w.Write(0); }, declaredLength: long.MaxValue))));

    [Theory]
    [InlineData(double.NaN, "NaN")]
    [InlineData(double.PositiveInfinity, "Infinity")]
    [InlineData(double.NegativeInfinity, "-Infinity")]
    public void SaveRefusesNonFiniteParametersNamingThem(double bad, string shown)
    {
        var p = RnnParameters.Initialize(3, 2, 3, seed: 1);
        var leaves = p.ToLeaves();
        var values = leaves[1].Values.SetItem(3, bad);
        var document = new ModelDocument(Metadata.ToImmutableSortedDictionary(StringComparer.Ordinal), leaves.SetItem(1, leaves[1] with { Values = values }));
        var path = Path.Combine(Path.GetTempPath(), $"{Guid.NewGuid():N}.rnnf");
        var e = Assert.Throws<ArgumentException>(() => ModelFile.Save(path, document));
        Assert.Equal("document", e.ParamName);
        Assert.Contains($"leaf Waa (entry (1, 1) is {shown}) is not finite", e.Message);
        Assert.False(File.Exists(path));

        File.WriteAllBytes(path, ModelFile.Serialize(document));
        try
        {
            Assert.Contains("holds parameters that are not numbers: leaf Waa", Message(ModelFile.Load(path)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    // ---- what a write may replace ----

    private static ModelDocument Small => ModelDocument.Of(Metadata, RnnParameters.Initialize(3, 2, 3, seed: 1));

    private static void InTemporaryDirectory(Action<DirectoryInfo> test)
    {
        var directory = Directory.CreateTempSubdirectory("rnnf-test-");
        try { test(directory); }
        finally
        {
            foreach (var f in directory.GetFiles()) f.Attributes = FileAttributes.Normal;
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void SaveNeverReplacesADeviceOrAFifo()
    {
        Assert.Contains("cannot write /dev/null: it is a character device, not a regular file", Message(ModelFile.Save("/dev/null", Small)));
        InTemporaryDirectory(directory =>
        {
            var fifo = Path.Combine(directory.FullName, "pipe");
            using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", fifo)) mkfifo.WaitForExit();
            Assert.Contains("it is a FIFO (named pipe), not a regular file", Message(ModelFile.Save(fifo, Small)));
            Assert.Contains("it is a directory", Message(ModelFile.Save(directory.FullName, Small)));
            Assert.Equal(["pipe"], directory.GetFileSystemInfos().Select(f => f.Name));
        });
    }

    [Fact]
    public void SaveRefusesAReadOnlyFileAndLeavesItReadOnly() => InTemporaryDirectory(directory =>
    {
        var path = Path.Combine(directory.FullName, "model.rnnf");
        File.WriteAllText(path, "keep me");
        File.SetAttributes(path, FileAttributes.ReadOnly);
        Assert.Contains("it is read-only", Message(ModelFile.Save(path, Small)));
        Assert.Equal("keep me", File.ReadAllText(path));
        Assert.True(File.GetAttributes(path).HasFlag(FileAttributes.ReadOnly));
    });

    [Fact]
    public void SaveWritesThroughASymbolicLinkAndRefusesADanglingOne() => InTemporaryDirectory(directory =>
    {
        var (target, link) = (Path.Combine(directory.FullName, "target.rnnf"), Path.Combine(directory.FullName, "link.rnnf"));
        File.WriteAllText(target, "old");
        File.CreateSymbolicLink(link, target);
        Assert.True(ModelFile.Save(link, Small).IsSucc);
        Assert.Equal(target, new FileInfo(link).ResolveLinkTarget(returnFinalTarget: true)?.FullName);
        Assert.True(ModelFile.Load(target).Match(d => d.IdenticalTo(Small), _ => false));

        var dangling = Path.Combine(directory.FullName, "dangling.rnnf");
        File.CreateSymbolicLink(dangling, Path.Combine(directory.FullName, "missing.rnnf"));
        Assert.Contains("is a symbolic link to", Message(ModelFile.Save(dangling, Small)));
        Assert.False(File.Exists(Path.Combine(directory.FullName, "missing.rnnf")));
    });

    [Fact]
    public void TemporaryFilesOfKilledWritersAreRemovedByTheNextWrite() => InTemporaryDirectory(directory =>
    {
        var path = Path.Combine(directory.FullName, "model.rnnf");
        var dead = Enumerable.Range(0, 1000).Select(i => 4_000_000 - i).First(pid =>
        {
            try { using var p = System.Diagnostics.Process.GetProcessById(pid); return false; }
            catch (ArgumentException) { return true; }
        });
        var abandoned = Path.Combine(directory.FullName, $".model.rnnf.rnnf-{dead}-0123456789abcdef.tmp");
        var live = Path.Combine(directory.FullName, $".model.rnnf.rnnf-{Environment.ProcessId}-0123456789abcdef.tmp");
        var other = Path.Combine(directory.FullName, $".other.rnnf.rnnf-{dead}-0123456789abcdef.tmp");
        foreach (var f in new[] { abandoned, live, other }) File.WriteAllText(f, "partial");
        Assert.True(ModelFile.Save(path, Small).IsSucc);
        Assert.False(File.Exists(abandoned));
        Assert.True(File.Exists(live));
        Assert.True(File.Exists(other));
    });

    private static string Message<T>(LanguageExt.Fin<T> result) => result.Match(_ => "(success)", e => e.Message);
}
