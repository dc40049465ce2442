using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using MathNet.Numerics.LinearAlgebra;
using RnnFunctional.Kernels;

namespace RnnFunctional;

/// <summary>
/// Two layers over the same inputs, one scanning first to last and one last to first (<see cref="Scan.FoldBack{TCarry,TIn,TOut}"/>,
/// outputs kept aligned with time), their outputs stacked per step:
/// <code>
///   h⟨t⟩ = [ f⟨t⟩ ; r⟨t⟩ ],   f = Forward scanned over x⟨1⟩..x⟨T⟩,   r = Reverse scanned over x⟨T⟩..x⟨1⟩
/// </code>
/// (n_fwd + n_rev)×m. Its backward splits dh⟨t⟩ into the two halves, runs each direction's backward and adds their
/// dx⟨t⟩. In a ragged batch the reverse direction of column j starts at its own last step len_j. Build one with
/// <see cref="Layer.Bidirectional"/>.
/// </summary>
public sealed record BidirectionalLayer : Layer
{
    internal BidirectionalLayer(Layer forward, Layer reverse) => (Forward, Reverse) = (forward, reverse);

    /// <summary>The direction that scans x⟨1⟩..x⟨T⟩; its leaves are named <c>forward.…</c>.</summary>
    public Layer Forward { get; }

    /// <summary>The direction that scans x⟨T⟩..x⟨1⟩; its leaves are named <c>reverse.…</c>.</summary>
    public Layer Reverse { get; }

    /// <inheritdoc />
    public override int InputSize => Forward.InputSize;

    /// <inheritdoc />
    public override int OutputSize => Forward.OutputSize + Reverse.OutputSize;

    /// <inheritdoc />
    public override ImmutableArray<int> StateRows => Forward.StateRows.AddRange(Reverse.StateRows);

    /// <inheritdoc />
    [Pure]
    public override ImmutableArray<Leaf> ToLeaves() =>
        [.. Forward.ToLeaves().Select(l => l.Under("forward")), .. Reverse.ToLeaves().Select(l => l.Under("reverse"))];

    /// <inheritdoc />
    [Pure]
    public override ImmutableArray<LeafShape> LeafShapes() =>
        [.. Forward.LeafShapes().Select(l => l.Under("forward")), .. Reverse.LeafShapes().Select(l => l.Under("reverse"))];

    internal override int WriteValues(Span<double> destination)
    {
        var forward = Forward.WriteValues(destination);
        return forward + Reverse.WriteValues(destination[forward..]);
    }

    /// <inheritdoc />
    [Pure]
    public override Layer FromLeaves(ImmutableArray<Leaf> leaves) =>
        Tree.Rebuild(LeafShapes(), leaves, l =>
        {
            var n = Forward.LeafShapes().Length;
            return new BidirectionalLayer(Forward.FromLeaves(Inside("forward", l[..n])), Reverse.FromLeaves(Inside("reverse", l[n..])));
        });

    internal override IEnumerable<Problem> Check(string argument, string name)
    {
        var (forward, reverse) = (Named(name, "forward"), Named(name, "reverse"));
        var directions = Shapes.All(Forward.Check(argument, forward), Reverse.Check(argument, reverse));
        return directions.Length > 0 || Reverse.InputSize == Forward.InputSize
            ? directions
            : [new(argument, $"expected {reverse} to have the input size of {forward}, n_x = {Forward.InputSize}, but got {Reverse.InputSize}")];
    }

    internal override ImmutableArray<int> RecurrentRows => Forward.RecurrentRows.AddRange(Reverse.RecurrentRows);

    internal override (FusedCell[] Cells, Func<Driver.Gradients[], Layer> Gradients)? OnDriver() =>
        (Forward.OnDriver(), Reverse.OnDriver()) is ({ Cells.Length: 1 } f, { Cells.Length: 1 } r)
            ? ([f.Cells[0], r.Cells[0]], g => new BidirectionalLayer(f.Gradients([g[0]]), r.Gradients([g[1]])))
            : null;

    internal override LayerTape Run(ImmutableArray<Matrix<double>> xs, ImmutableArray<Matrix<double>> init,
        ImmutableArray<int> lengths, bool reverse, int every, Workspace? storage, ImmutableArray<Matrix<double>> recurrent = default)
    {
        var (k, kr) = (Forward.StateRows.Length, Forward.RecurrentRows.Length);
        var f = Forward.Run(xs, init[..k], lengths, reverse, every, storage, recurrent.IsDefault ? default : recurrent[..kr]);
        var r = Reverse.Run(xs, init[k..], lengths, !reverse, every, storage, recurrent.IsDefault ? default : recurrent[kr..]);
        var outputs = f.Outputs.Zip(r.Outputs, (fo, ro) => Ops.StackRows(fo, ro)).ToImmutableArray();       // h⟨t⟩ = [f⟨t⟩; r⟨t⟩]
        return new(outputs, f.Final.AddRange(r.Final), (dOutputs, dFinal) =>
        {
            var n = Forward.OutputSize;
            var df = f.Backward([.. dOutputs.Select(d => Ops.Rows(d, 0, n))], dFinal[..k]);            // df⟨t⟩ = dh⟨t⟩[:n_fwd]
            var dr = r.Backward([.. dOutputs.Select(d => Ops.Rows(d, n, d.RowCount - n))], dFinal[k..]); // dr⟨t⟩ = dh⟨t⟩[n_fwd:]
            return new([.. df.Dx.Zip(dr.Dx, Ops.Add)], df.DInit.AddRange(dr.DInit),                                 // dx⟨t⟩ = dx_f⟨t⟩ + dx_r⟨t⟩
                       new BidirectionalLayer(df.Gradients, dr.Gradients));
        });
    }
}
