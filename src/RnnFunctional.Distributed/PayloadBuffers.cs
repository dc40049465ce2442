namespace RnnFunctional.Distributed;

/// <summary>
/// Payload-sized byte arrays kept for reuse by one process's payloads: a silo's partial sums
/// (<see cref="SiloParameters.Buffers"/>), and the payloads read off the wire and a coordinator's sums
/// (<see cref="Received"/>). A wide model's payload is about 10 MB, so every new one is a large-object allocation whose
/// pages the kernel maps afresh; an array handed back here is given out again for the next payload of the same length.
/// An array is handed back only once nothing reads it any more: a partial sum once added, a payload sent once Orleans has
/// written it or, passed by reference within the process, once its coordinator has summed it (<see cref="FlatTree.Lent"/>), a parameter payload once its silo holds a newer version
/// (<see cref="SiloParameters.Set"/>). Arrays are given out uninitialized: their user writes every byte.
/// </summary>
internal sealed class PayloadBuffers
{
    private readonly Lock gate = new();
    private readonly List<byte[]> kept = [];
    private readonly int capacity;

    /// <summary>Buffers keeping up to <paramref name="capacity"/> arrays.</summary>
    /// <param name="capacity">How many arrays are kept at most, at least 0.</param>
    public PayloadBuffers(int capacity = 4)
    {
        if (capacity < 0)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"expected the number of arrays kept to be at least 0 but got {capacity}");
        this.capacity = capacity;
    }

    /// <summary>
    /// The arrays that received payloads are read into (<see cref="FlatTreeCodec"/>), one set per process; a coordinator
    /// sums into them too and hands back a step's arrays once the step is summed.
    /// </summary>
    public static PayloadBuffers Received { get; } = new();

    /// <summary>Arrays given out that were new (not reused): a count for tests and measurements.</summary>
    public long Allocated { get; private set; }

    /// <summary>An array of exactly <paramref name="length"/> bytes, kept (the last one kept of that length) or new, of undefined contents.</summary>
    /// <param name="length">The length in bytes, at least 0.</param>
    public byte[] Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        lock (gate)
        {
            var index = kept.FindLastIndex(array => array.Length == length);
            if (index >= 0)
            {
                var array = kept[index];
                kept.RemoveAt(index);
                return array;
            }
            Allocated++;
        }
        return GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>
    /// Keeps <paramref name="array"/> for a later <see cref="Rent"/>, in place of the array kept longest when
    /// <see cref="Capacity"/> are kept already; the caller no longer reads or writes it.
    /// </summary>
    /// <param name="array">An array that nothing reads any more.</param>
    public void Return(byte[] array)
    {
        ArgumentNullException.ThrowIfNull(array);
        lock (gate)
        {
            if (capacity == 0 || kept.Contains(array)) return;
            if (kept.Count == capacity) kept.RemoveAt(0);
            kept.Add(array);
        }
    }

    /// <summary>How many arrays are kept at most.</summary>
    public int Capacity => capacity;
}
