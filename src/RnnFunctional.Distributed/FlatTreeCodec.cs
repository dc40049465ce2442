using System.Buffers;
using Orleans.Serialization.Buffers;
using Orleans.Serialization.Codecs;
using Orleans.Serialization.WireProtocol;

namespace RnnFunctional.Distributed;

/// <summary>
/// Orleans' codec of <see cref="FlatTree"/>: a field header, the payload's length and its bytes as one block (null as
/// Orleans' null reference). A payload is read into an array of <see cref="PayloadBuffers.Received"/>, which may be
/// one handed back after an earlier step rather than a new large array; a payload lent to the wire
/// (<see cref="FlatTree.Lent"/>) hands its array back to its lender once written (a payload passed by reference within
/// a process is never written: its coordinator hands the array back once summed). The copier of <see cref="FlatTree"/> is the
/// identity (the type is <see cref="ImmutableAttribute"/>).
/// </summary>
[RegisterSerializer]
internal sealed class FlatTreeCodec : IFieldCodec<FlatTree>
{
    /// <inheritdoc />
    public void WriteField<TBufferWriter>(ref Writer<TBufferWriter> writer, uint fieldIdDelta, Type? expectedType, FlatTree? value)
        where TBufferWriter : IBufferWriter<byte>
    {
        if (ReferenceCodec.TryWriteReferenceField(ref writer, fieldIdDelta, expectedType, value)) return;
        writer.WriteFieldHeader(fieldIdDelta, expectedType, typeof(FlatTree), WireType.LengthPrefixed);
        var bytes = value!.Bytes ?? [];
        writer.WriteVarUInt32((uint)bytes.Length);
        writer.Write(bytes);
        // A lent payload is written once and never read again here: its array serves the sender's next payload. Orleans
        // (10.4) writes a message once: a response that cannot be sent is dropped, not written again.
        if (value.TakeLender() is { } lender) lender.Return(bytes);
    }

    /// <inheritdoc />
    public FlatTree? ReadValue<TInput>(ref Reader<TInput> reader, Field field)
    {
        if (field.WireType == WireType.Reference) return ReferenceCodec.ReadReference<FlatTree, TInput>(ref reader, field);
        field.EnsureWireType(WireType.LengthPrefixed);
        var length = reader.ReadVarUInt32();
        if (length > Array.MaxLength) throw new InvalidDataException($"expected a payload of at most {Array.MaxLength} bytes but its length reads {length}");
        var bytes = PayloadBuffers.Received.Rent((int)length);
        reader.ReadBytes(bytes);
        var result = FlatTree.Received(bytes);
        ReferenceCodec.RecordObject(reader.Session, result);
        return result;
    }
}
