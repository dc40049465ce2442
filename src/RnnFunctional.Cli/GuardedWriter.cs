using System.Text;

namespace RnnFunctional.Cli;

/// <summary>
/// A writer that never throws an I/O error: the first <see cref="IOException"/> of the writer it wraps (a closed
/// pipe, a full disk) is kept in <see cref="Failure"/> and every later write is dropped. The program's standard
/// output goes through one, so that a report that cannot be shown never costs the work already done (the model is
/// written first and the failure is reported on standard error at the end).
/// </summary>
/// <param name="inner">The writer written to until it fails.</param>
internal sealed class GuardedWriter(TextWriter inner) : TextWriter
{
    /// <summary>The first I/O error of the wrapped writer, or null while it works.</summary>
    public IOException? Failure { get; private set; }

    /// <inheritdoc />
    public override Encoding Encoding => inner.Encoding;

    /// <inheritdoc />
    public override IFormatProvider FormatProvider => inner.FormatProvider;

    /// <inheritdoc />
    [System.Diagnostics.CodeAnalysis.AllowNull]
    public override string NewLine { get => inner.NewLine; set => inner.NewLine = value; }

    /// <inheritdoc />
    public override void Write(char value) => Guard(() => inner.Write(value));

    /// <inheritdoc />
    public override void Write(string? value) => Guard(() => inner.Write(value));

    /// <inheritdoc />
    public override void Write(char[] buffer, int index, int count) => Guard(() => inner.Write(buffer, index, count));

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<char> buffer)
    {
        var copy = buffer.ToString();
        Guard(() => inner.Write(copy));
    }

    /// <inheritdoc />
    public override void WriteLine() => Guard(inner.WriteLine);

    /// <inheritdoc />
    public override void WriteLine(string? value) => Guard(() => inner.WriteLine(value));

    /// <inheritdoc />
    public override void Flush() => Guard(inner.Flush);

    private void Guard(Action write)
    {
        if (Failure is not null) return;
        try
        {
            write();
        }
        catch (IOException e)
        {
            Failure = e;
        }
    }
}
