using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Globalization;
using MathNet.Numerics.LinearAlgebra;

namespace RnnFunctional;

/// <summary>
/// The dropout masks of one forward and backward of a <see cref="Stack"/>: immutable values, each entry 0 (dropped)
/// or 1/(1−p) (kept, inverted scaling), drawn by <see cref="Dropout.Draw"/> or built by hand. A default (empty)
/// array anywhere means "no mask there"; <see cref="None"/> is no dropout at all and gives the bits of the stack
/// without a mask.
/// </summary>
/// <param name="Inputs">
/// Default, or one entry per layer: <c>Inputs[l]</c> is default (layer l reads its inputs as they are) or T masks,
/// each n_in×m, and layer l reads <c>Inputs[l][t] ⊙ h_{l−1}⟨t⟩</c> (h₀ = x). Between-layer dropout (per element per
/// step) and variational input dropout (per column, the same matrix at every step) are both masks of this kind.
/// </param>
/// <param name="Recurrent">
/// Default, or one entry per layer: <c>Recurrent[l]</c> is default or one matrix per direction (forward, then
/// reverse), each with the rows of that direction's first state part (a⟨t⟩, h⟨t⟩ for the GRU and the projected
/// LSTM) by m; every step of that direction reads <c>Recurrent[l][d] ⊙ a⟨t−1⟩</c> where the cell reads a⟨t−1⟩ (the
/// carried state itself is not masked, and c⟨t⟩ of an LSTM never is). Variational dropout in the sense of Gal and
/// Ghahramani: one mask per sequence (column), the same at every step.
/// </param>
/// <param name="ReadOut">Default, or T masks, each n_top×m: the read-out reads <c>ReadOut[t] ⊙ h_L⟨t⟩</c>.</param>
public sealed record DropoutMask(
    ImmutableArray<ImmutableArray<Matrix<double>>> Inputs,
    ImmutableArray<ImmutableArray<Matrix<double>>> Recurrent,
    ImmutableArray<Matrix<double>> ReadOut)
{
    /// <summary>No mask anywhere: the stack exactly as without dropout.</summary>
    public static DropoutMask None { get; } = new(default, default, default);

    /// <summary>The masks of layer l's inputs (T of them), or default when its inputs are not masked.</summary>
    internal ImmutableArray<Matrix<double>> InputsOf(int l) => Inputs.IsDefault ? default : Inputs[l];

    /// <summary>The recurrent masks of layer l (one per direction), or default when its state is not masked.</summary>
    internal ImmutableArray<Matrix<double>> RecurrentOf(int l) => Recurrent.IsDefault ? default : Recurrent[l];

}

/// <summary>
/// Dropout rates of a <see cref="Stack"/>, each p ∈ [0, 1) (0: no mask of that kind), and the pure function that
/// draws a step's masks from a <see cref="RandomState"/>. Evaluation and sampling never drop: only the training
/// loss takes a mask.
/// </summary>
/// <param name="Between">
/// PyTorch's <c>dropout</c> of <c>nn.LSTM</c>: every output of every layer but the top one, per element and per step,
/// before the next layer reads it.
/// </param>
/// <param name="Recurrent">Variational dropout of the recurrent state a⟨t−1⟩ (see <see cref="DropoutMask.Recurrent"/>), one mask per column fixed in time.</param>
/// <param name="Inputs">Variational dropout of every layer's inputs (the bottom layer's x included), one mask per column fixed in time.</param>
/// <param name="ReadOut">Dropout of the top layer's outputs before the read-out, per element and per step (not done by PyTorch's <c>dropout</c>; ask for it here).</param>
public sealed record Dropout(double Between = 0, double Recurrent = 0, double Inputs = 0, double ReadOut = 0)
{
    /// <inheritdoc cref="Dropout" path="/param[@name='Between']"/>
    public double Between { get; init; } = Rate(nameof(Between), Between);

    /// <inheritdoc cref="Dropout" path="/param[@name='Recurrent']"/>
    public double Recurrent { get; init; } = Rate(nameof(Recurrent), Recurrent);

    /// <inheritdoc cref="Dropout" path="/param[@name='Inputs']"/>
    public double Inputs { get; init; } = Rate(nameof(Inputs), Inputs);

    /// <inheritdoc cref="Dropout" path="/param[@name='ReadOut']"/>
    public double ReadOut { get; init; } = Rate(nameof(ReadOut), ReadOut);

    /// <summary>Every rate 0: no dropout.</summary>
    public static Dropout None { get; } = new();

    /// <summary>Whether every rate is 0.</summary>
    public bool IsNone => Between == 0 && Recurrent == 0 && Inputs == 0 && ReadOut == 0;

    /// <summary>
    /// The masks of one forward and backward of <paramref name="p"/> over T steps and m columns, and the next state.
    /// The draws are made in this order: for each layer bottom to top, its between-layer masks step after step (not
    /// for the bottom layer), its variational input mask, its recurrent masks direction after direction; then the
    /// read-out's masks step after step. A rate of 0 draws nothing and leaves no mask (so <see cref="None"/> is
    /// <see cref="DropoutMask.None"/>, bit for bit the stack without dropout); where both between-layer and input
    /// dropout are asked for, a layer's input mask is their product.
    /// </summary>
    /// <param name="p">The stack the masks are for.</param>
    /// <param name="steps">T ≥ 1.</param>
    /// <param name="m">m ≥ 1 columns.</param>
    /// <param name="random">The generator's state.</param>
    [Pure]
    public (DropoutMask Mask, RandomState Next) Draw(StackParameters p, int steps, int m, RandomState random)
    {
        Shapes.ThrowIfAny(Shapes.All(Shapes.NotNull(nameof(p), p), Shapes.Positive(nameof(steps), steps), Shapes.Positive(nameof(m), m), CheckRates()));
        Shapes.ThrowIfAny(Stack.CheckLayers(nameof(p), "p.Layers", p.Layers));
        if (IsNone) return (DropoutMask.None, random);
        var (inputs, recurrent) = (ImmutableArray.CreateBuilder<ImmutableArray<Matrix<double>>>(), ImmutableArray.CreateBuilder<ImmutableArray<Matrix<double>>>());
        for (var l = 0; l < p.Layers.Length; l++)
        {
            var layer = p.Layers[l];
            var between = default(ImmutableArray<Matrix<double>>);
            if (l > 0 && Between > 0) (between, random) = Sequence(Between, layer.InputSize, m, steps, random);
            var variational = default(Matrix<double>);
            if (Inputs > 0) (variational, random) = Bernoulli(Inputs, layer.InputSize, m, random);
            inputs.Add(variational is null ? between
                : between.IsDefault ? [.. Enumerable.Repeat(variational, steps)]
                : [.. between.Select(b => b.PointwiseMultiply(variational))]);
            var directions = ImmutableArray.CreateBuilder<Matrix<double>>();
            if (Recurrent > 0)
                foreach (var rows in layer.RecurrentRows)
                {
                    (var mask, random) = Bernoulli(Recurrent, rows, m, random);
                    directions.Add(mask);
                }
            recurrent.Add(Recurrent > 0 ? directions.ToImmutable() : default);
        }
        var readOut = default(ImmutableArray<Matrix<double>>);
        if (ReadOut > 0) (readOut, random) = Sequence(ReadOut, p.Layers[^1].OutputSize, m, steps, random);
        return (new DropoutMask(Between > 0 || Inputs > 0 ? inputs.ToImmutable() : default, Recurrent > 0 ? recurrent.ToImmutable() : default, readOut), random);
    }

    /// <summary>
    /// A rows×columns mask, entries drawn independently in column-major order: 1/(1−p) with probability 1−p (a
    /// uniform u ∈ [0, 1) of 53 bits with u ≥ p), else 0; and the next state. Its entries have mean 1 and a fraction
    /// 1−p of them are kept. p = 0 gives ones.
    /// </summary>
    /// <param name="p">The probability of dropping an entry, in [0, 1).</param>
    /// <param name="rows">Rows ≥ 1.</param>
    /// <param name="columns">Columns ≥ 1.</param>
    /// <param name="random">The generator's state.</param>
    [Pure]
    public static (Matrix<double> Mask, RandomState Next) Bernoulli(double p, int rows, int columns, RandomState random)
    {
        Shapes.ThrowIfAny(Shapes.All(RateProblems(nameof(p), p), Shapes.Positive(nameof(rows), rows), Shapes.Positive(nameof(columns), columns)));
        var (values, scale) = (new double[rows * columns], 1.0 / (1.0 - p));
        for (var i = 0; i < values.Length; i++)
        {
            (var u, random) = random.NextDouble();
            values[i] = u >= p ? scale : 0.0;
        }
        return (Matrix<double>.Build.Dense(rows, columns, values), random);
    }

    /// <summary>Checks each rate: every problem found (a rate outside [0, 1) or NaN), or the rates.</summary>
    [Pure]
    public LanguageExt.Validation<LanguageExt.Common.Error, Dropout> Validate() => Shapes.ToValidation(CheckRates(), () => this);

    private Problem[] CheckRates() => Shapes.All(RateProblems(nameof(Between), Between), RateProblems(nameof(Recurrent), Recurrent),
                                                 RateProblems(nameof(Inputs), Inputs), RateProblems(nameof(ReadOut), ReadOut));

    private static (ImmutableArray<Matrix<double>> Masks, RandomState Next) Sequence(double p, int rows, int m, int steps, RandomState random)
    {
        var masks = ImmutableArray.CreateBuilder<Matrix<double>>(steps);
        for (var t = 0; t < steps; t++)
        {
            (var mask, random) = Bernoulli(p, rows, m, random);
            masks.Add(mask);
        }
        return (masks.MoveToImmutable(), random);
    }

    private static double Rate(string name, double p)
    {
        Shapes.ThrowIfAny(Shapes.All(RateProblems(name, p)));
        return p;
    }

    private static IEnumerable<Problem> RateProblems(string name, double p)
    {
        if (!(p >= 0 && p < 1))
            yield return new(name, string.Create(CultureInfo.InvariantCulture, $"expected {name} to be in [0, 1) but got {p}"));
    }
}
