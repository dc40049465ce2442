using System.Collections.Immutable;
using Xunit;

namespace RnnFunctional.Samples;

/// <summary>The examples of docs/layers.md.</summary>
public sealed class LayersSamples
{
    [Fact]
    public void StackLeavesAreTheParametersItUses()
    {
        #region layers-leaves
        var p = StackParameters.Initialize([Layer.Lstm(3, 5, seed: 1), Layer.Bidirectional(Layer.Gru(5, 4, seed: 2), Layer.Rnn(5, 2, seed: 3))], 7, seed: 4);
        var names = p.ToLeaves().Select(leaf => leaf.Name);
        #endregion

        Assert.Equal(
        [
            "layers[0].Wf", "layers[0].Bf", "layers[0].Wi", "layers[0].Bi", "layers[0].Wc", "layers[0].Bc", "layers[0].Wo", "layers[0].Bo",
            "layers[1].forward.Wih", "layers[1].forward.Whh", "layers[1].forward.Bih", "layers[1].forward.Bhh",
            "layers[1].reverse.Wax", "layers[1].reverse.Waa", "layers[1].reverse.Ba",
            "Wy", "By",
        ], names);
    }
}
