using System.Diagnostics;
using System.Diagnostics.Contracts;
using System.Globalization;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional;

/// <summary>
/// The policy for files the library writes (model files, and through the command-line program its plots). A write
/// replaces only a <b>regular file</b> that is <b>not read-only</b>, or creates one in an existing directory:
/// <list type="bullet">
/// <item>a symbolic link is written through: its final target is replaced and the link stays a link (a link to a
/// missing file is refused);</item>
/// <item>a directory, device, FIFO or socket at the path is refused, so is a read-only file (it is never made
/// writable), and the permissions of a replaced file are kept;</item>
/// <item>the bytes go to a temporary file <c>.NAME.rnnf-PID-RANDOM.tmp</c> next to the target, flushed to disk, then
/// renamed over it, so a reader sees the old file or the new one, never a part. Temporary files left by a process
/// that was killed (its PID no longer runs) are removed by the next write to the same path.</item>
/// </list>
/// <see cref="Check"/> applies the same rules without writing anything but a probe, so that a program can refuse a bad
/// output path before it does its work.
/// </summary>
public static class OutputFile
{
    private const string TemporaryMarker = ".rnnf-";

    /// <summary>Temporary files being written by this process, removed if the process exits before renaming them.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> Pending = new(StringComparer.Ordinal);

    static OutputFile() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (var file in Pending.Keys) TryDelete(file);
    };
    private const string TemporarySuffix = ".tmp";

    /// <summary>
    /// The path a write to <paramref name="path"/> goes to (the final target of a symbolic link), or an error when it
    /// could not be written: empty path, missing directory, a directory, device, FIFO or socket at the path, a
    /// read-only file, a link to a missing file, or (with <paramref name="probe"/>) a directory in which no file can
    /// be created.
    /// </summary>
    /// <param name="path">The destination.</param>
    /// <param name="probe">Whether to create and remove a temporary file in the directory to prove it writable.</param>
    public static Fin<string> Check(string path, bool probe = true)
    {
        if (string.IsNullOrWhiteSpace(path)) return Fin<string>.Fail(Error.New("expected an output path but got an empty one"));
        try
        {
            var target = Target(path);
            if (target.IsFail) return target;
            var full = (string)target;
            var problem = FileEntry.Kind(full) switch
            {
                FileKind.Missing or FileKind.Regular => null,
                FileKind.Directory => "it is a directory",
                FileKind.CharacterDevice => "it is a character device, not a regular file",
                FileKind.BlockDevice => "it is a block device, not a regular file",
                FileKind.Fifo => "it is a FIFO (named pipe), not a regular file",
                FileKind.Socket => "it is a socket, not a regular file",
                _ => "it is not a regular file",
            };
            if (problem is null && File.Exists(full) && File.GetAttributes(full).HasFlag(FileAttributes.ReadOnly))
                problem = "it is read-only (rnnf does not replace a read-only file; make it writable or choose another path)";
            if (problem is null && Path.GetDirectoryName(full) is { } directory && !Directory.Exists(directory))
                problem = $"directory {directory} does not exist";
            if (problem is not null) return Fin<string>.Fail(Error.New($"cannot write {path}: {problem}"));
            if (probe)
            {
                var temporary = Temporary(full);
                using (new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
            }
            return Fin<string>.Succ(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            return Fin<string>.Fail(Error.New($"cannot write {path}: {e.Message}"));
        }
    }

    /// <summary>
    /// Writes bytes atomically under the rules of <see cref="OutputFile"/>: a temporary file next to the target,
    /// flushed to disk, then renamed over it. On any failure the temporary file is removed and the target is left
    /// as it was.
    /// </summary>
    /// <param name="path">The destination.</param>
    /// <param name="bytes">The whole content.</param>
    public static Fin<Unit> WriteAtomically(string path, ReadOnlySpan<byte> bytes) =>
        WriteAtomically(path, bytes, static (stream, content) => stream.Write(content));

    /// <summary>
    /// Writes a file atomically as <see cref="WriteAtomically(string, ReadOnlySpan{byte})"/> does, its content
    /// written by <paramref name="write"/> to the temporary file's stream (so that it need not be held in memory
    /// whole). An <see cref="IOException"/> thrown by <paramref name="write"/> fails the write as a full disk does.
    /// </summary>
    /// <param name="path">The destination.</param>
    /// <param name="write">Writes the whole content to the stream it is given (and does not close it).</param>
    public static Fin<Unit> WriteAtomically(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        return WriteAtomically(path, write, static (stream, w) => w(stream));
    }

    private delegate void Writer<TContent>(Stream stream, TContent content) where TContent : allows ref struct;

    private static Fin<Unit> WriteAtomically<TContent>(string path, TContent content, Writer<TContent> write) where TContent : allows ref struct
    {
        var checkedPath = Check(path, probe: false);
        if (checkedPath.IsFail) return checkedPath.Map(_ => Unit.Default);
        var full = (string)checkedPath;
        string? temporary = null;
        try
        {
            RemoveAbandoned(full);
            temporary = Temporary(full);
            Pending[temporary] = 0;
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream, content);
                stream.Flush(flushToDisk: true);
            }
            if (!OperatingSystem.IsWindows() && File.Exists(full)) File.SetUnixFileMode(temporary, File.GetUnixFileMode(full));
            File.Move(temporary, full, overwrite: true);
            Pending.TryRemove(temporary, out _);
            temporary = null;
            return Fin<Unit>.Succ(Unit.Default);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            return Fin<Unit>.Fail(Error.New($"cannot write {path}: {e.Message}"));
        }
        finally
        {
            if (temporary is not null)
            {
                TryDelete(temporary);
                Pending.TryRemove(temporary, out _);
            }
        }
    }

    /// <summary>
    /// The path with every symbolic link resolved (of the file and of its directories) and made absolute: two paths
    /// with the same canonical form name the same file. (Two hard links to one file have different canonical forms;
    /// <see cref="Same"/> recognises them.)
    /// </summary>
    /// <param name="path">Any path.</param>
    [Pure]
    public static string Canonical(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        return Resolve(Path.GetFullPath(path), 0);
    }

    /// <summary>
    /// Whether two paths name the same file: their canonical forms are equal (case-insensitively where the file system
    /// usually is), or, on Unix, both exist and are one file under two names — hard links, with the same device and
    /// inode.
    /// </summary>
    /// <param name="a">A path.</param>
    /// <param name="b">Another path.</param>
    [Pure]
    public static bool Same(string a, string b) =>
        string.Equals(Canonical(a), Canonical(b), OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase)
        || FileEntry.Identity(a) is { } x && FileEntry.Identity(b) is { } y && x == y;

    /// <summary>Whether <paramref name="fileName"/> is the name of a temporary file of a write to <paramref name="target"/>.</summary>
    internal static bool IsTemporaryOf(string fileName, string target) =>
        fileName.StartsWith($".{Path.GetFileName(target)}{TemporaryMarker}", StringComparison.Ordinal)
        && fileName.EndsWith(TemporarySuffix, StringComparison.Ordinal);

    private static string Temporary(string full) =>
        Path.Combine(Path.GetDirectoryName(full) ?? ".",
            $".{Path.GetFileName(full)}{TemporaryMarker}{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}-{Guid.NewGuid():N}{TemporarySuffix}");

    /// <summary>Removes the temporary files of earlier writes to <paramref name="full"/> whose process no longer runs.</summary>
    private static void RemoveAbandoned(string full)
    {
        var directory = Path.GetDirectoryName(full);
        if (directory is null) return;
        var prefix = $".{Path.GetFileName(full)}{TemporaryMarker}";
        foreach (var file in Directory.EnumerateFiles(directory, prefix + "*" + TemporarySuffix))
        {
            var name = Path.GetFileName(file);
            if (!IsTemporaryOf(name, full)) continue;
            var rest = name[prefix.Length..];
            var dash = rest.IndexOf('-', StringComparison.Ordinal);
            if (dash > 0 && int.TryParse(rest[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && !Running(pid))
                TryDelete(file);
        }
    }

    private static bool Running(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static void TryDelete(string file)
    {
        try { File.Delete(file); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>The path a write goes to: the path itself, or the final target of the symbolic link at it.</summary>
    private static Fin<string> Target(string path)
    {
        var full = Path.GetFullPath(path);
        var info = new FileInfo(full);
        if (info.LinkTarget is null) return Fin<string>.Succ(full);
        var target = info.ResolveLinkTarget(returnFinalTarget: true);
        return target is null || !target.Exists && !Directory.Exists(target.FullName)
            ? Fin<string>.Fail(Error.New($"cannot write {path}: it is a symbolic link to {info.LinkTarget}, which does not exist"))
            : Fin<string>.Succ(Resolve(target.FullName, 0));
    }

    private static string Resolve(string full, int depth)
    {
        if (depth > 40) return full;
        var root = Path.GetPathRoot(full) ?? "";
        var current = root;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            var next = Path.Combine(current, part);
            var link = new FileInfo(next).LinkTarget;
            current = link is null ? next : Resolve(Path.GetFullPath(link, current.Length == 0 ? root : current), depth + 1);
        }
        return current;
    }
}
