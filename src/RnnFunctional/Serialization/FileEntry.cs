using System.Runtime.InteropServices;

namespace RnnFunctional;

/// <summary>What is at a path: nothing, a regular file, a directory, a device, a FIFO, a socket or something else.</summary>
internal enum FileKind { Missing, Regular, Directory, CharacterDevice, BlockDevice, Fifo, Socket, Other }

/// <summary>
/// What stat(2) says about a path (links followed): its kind, and on Unix its identity (device and inode), so that
/// two names of one file — a hard link — are recognised as the same file.
/// </summary>
internal static class FileEntry
{
    /// <summary>The kind of <paramref name="path"/>; on Unix from stat(2), elsewhere from the attributes.</summary>
    public static FileKind Kind(string path)
    {
        if (Stat(path) is { } status)
            return (BitConverter.ToInt32(status, ModeOffset) & 0xF000) switch
            {
                0x8000 => FileKind.Regular,
                0x4000 => FileKind.Directory,
                0x2000 => FileKind.CharacterDevice,
                0x6000 => FileKind.BlockDevice,
                0x1000 => FileKind.Fifo,
                0xC000 => FileKind.Socket,
                _ => FileKind.Other,
            };
        if (!OperatingSystem.IsWindows() && Native.Available && (File.Exists(path) || Directory.Exists(path))) return FileKind.Other;
        return Directory.Exists(path) ? FileKind.Directory
            : File.Exists(path) ? FileKind.Regular
            : FileKind.Missing;
    }

    /// <summary>What the kind is called in a message: "a directory", "a FIFO (named pipe)", ….</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "missing",
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a directory",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.Socket => "a socket",
        _ => "not a regular file",
    };

    /// <summary>
    /// The identity of the file at <paramref name="path"/> (device, inode, size and modification time), or null when
    /// there is none to read (no file, or not on Unix). Two paths with equal identities name one file.
    /// </summary>
    public static (long Device, long Inode, long Size, long ModifiedSeconds, long ModifiedNanoseconds)? Identity(string path) =>
        Stat(path) is { } s
            ? (BitConverter.ToInt64(s, DeviceOffset), BitConverter.ToInt64(s, InodeOffset), BitConverter.ToInt64(s, SizeOffset),
               BitConverter.ToInt64(s, ModifiedOffset), BitConverter.ToInt64(s, ModifiedOffset + 8))
            : null;

    // Offsets in the runtime's FileStatus record (pal_io.h of .NET 7 and later): Flags, Mode, Uid, Gid (4 bytes each),
    // then Size, ATime, ATimeNsec, MTime, MTimeNsec, CTime, CTimeNsec, BirthTime, BirthTimeNsec, Dev, RDev, Ino (8 each).
    private const int ModeOffset = 4;
    private const int SizeOffset = 16;
    private const int ModifiedOffset = 40;
    private const int DeviceOffset = 88;
    private const int InodeOffset = 104;

    private static byte[]? Stat(string path)
    {
        if (OperatingSystem.IsWindows() || !Native.Available) return null;
        try
        {
            var status = new byte[512];
            return Native.Stat(path, status) == 0 ? status : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            Native.Available = false;
            return null;
        }
    }

    /// <summary>
    /// stat(2) through the runtime's own native shim (libSystem.Native, present in every .NET on Unix): it fills a
    /// platform-independent record (FileStatus). The buffer is larger than the record.
    /// </summary>
    private static class Native
    {
        public static volatile bool Available = true;

        [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat", SetLastError = true)]
        public static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [Out] byte[] status);
    }
}
