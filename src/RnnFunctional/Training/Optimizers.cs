using System.Buffers;
using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Globalization;

namespace RnnFunctional;

/// <summary>
/// The state an optimizer threads from step to step: the number of steps taken and its slots (momentum, squared
/// gradients, …), each a tree of the parameters' own type.
/// </summary>
/// <typeparam name="T">The parameter record.</typeparam>
public sealed record OptimizerState<T> where T : IParameterTree<T>
{
    private readonly T? like;
    private readonly double[][][]? flat;
    private ImmutableArray<T> slots;

    /// <summary>A state of <paramref name="Step"/> updates with the given slots.</summary>
    /// <param name="Step">Number of updates taken so far (0 before the first).</param>
    /// <param name="Slots">The optimizer's accumulators, each shaped like the parameters (none for plain SGD).</param>
    public OptimizerState(int Step, ImmutableArray<T> Slots) => (this.Step, slots) = (Step, Slots);

    /// <summary>
    /// A state whose slots are kept flat (each the entries of a tree shaped like <paramref name="like"/>, in leaf
    /// order, cut into the chunks of <see cref="SlotChunks"/>): the arrays are taken over and never written again;
    /// the trees are built when <see cref="Slots"/> is read.
    /// </summary>
    internal OptimizerState(int step, T like, double[][][] flat) => (Step, this.like, this.flat) = (step, like, flat);

    /// <summary>Number of updates taken so far (0 before the first).</summary>
    public int Step { get; init; }

    /// <summary>The optimizer's accumulators, each shaped like the parameters (none for plain SGD).</summary>
    public ImmutableArray<T> Slots
    {
        get
        {
            if (slots.IsDefault && flat is not null) slots = [.. flat.Select(chunks => Tree.Unflatten(like!, SlotChunks.Join(chunks)))];
            return slots;
        }
        init => (slots, flat, like) = (value, null, default);
    }

    /// <summary>The slots' chunks when they are kept flat for trees of <paramref name="shapes"/>; null otherwise.</summary>
    internal double[][][]? FlatFor(ImmutableArray<LeafShape> shapes) =>
        flat is not null && like!.LeafShapes().AsSpan().SequenceEqual(shapes.AsSpan()) ? flat : null;

    /// <summary>The step count and the slots.</summary>
    /// <param name="Step">Number of updates taken so far.</param>
    /// <param name="Slots">The accumulators.</param>
    public void Deconstruct(out int Step, out ImmutableArray<T> Slots) => (Step, Slots) = (this.Step, this.Slots);

    /// <summary>The same step count and the same slot arrays (slots compare as <see cref="ImmutableArray{T}"/> does, by reference).</summary>
    /// <param name="other">Another state.</param>
    public bool Equals(OptimizerState<T>? other) =>
        other is not null && Step == other.Step && (ReferenceEquals(this, other) || Slots.Equals(other.Slots));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Step, Slots);
}

/// <summary>
/// How an optimizer state keeps a slot's entries: in chunks of <see cref="Length"/> entries (the last one shorter),
/// each of 64 KB, below the runtime's large-object threshold of 85,000 bytes, so that the new slots every update
/// allocates are young objects of the small-object heap rather than large objects that count towards a full collection.
/// </summary>
internal static class SlotChunks
{
    /// <summary>Entries per chunk.</summary>
    public const int Length = 8192;

    /// <summary>Uninitialized chunks for <paramref name="count"/> entries.</summary>
    public static double[][] New(int count)
    {
        var chunks = new double[(count + Length - 1) / Length][];
        for (var c = 0; c < chunks.Length; c++) chunks[c] = GC.AllocateUninitializedArray<double>(Math.Min(Length, count - c * Length));
        return chunks;
    }

    /// <summary>The entries of <paramref name="values"/> in new chunks.</summary>
    public static double[][] Split(ReadOnlySpan<double> values)
    {
        var chunks = New(values.Length);
        for (var c = 0; c < chunks.Length; c++) values.Slice(c * Length, chunks[c].Length).CopyTo(chunks[c]);
        return chunks;
    }

    /// <summary>The entries of <paramref name="chunks"/> in one new array.</summary>
    public static double[] Join(double[][] chunks)
    {
        var values = new double[chunks.Sum(c => c.Length)];
        var offset = 0;
        foreach (var chunk in chunks)
        {
            chunk.CopyTo(values, offset);
            offset += chunk.Length;
        }
        return values;
    }
}

/// <summary>
/// An optimizer as a value, like an optax gradient transformation: <see cref="Init"/> builds the state for given
/// parameters and <see cref="Update"/> is the pure map (parameters, gradients, state) → (parameters, state).
/// </summary>
/// <typeparam name="T">The parameter record; gradients have the same type.</typeparam>
/// <param name="Name">Short name with hyper-parameters, e.g. <c>adam(lr=0.01)</c>.</param>
/// <param name="Init">The state before the first step (slots all zero).</param>
/// <param name="Update">One step: new parameters and new state; the arguments are left untouched.</param>
public sealed record Optimizer<T>(
    string Name,
    Func<T, OptimizerState<T>> Init,
    Func<T, T, OptimizerState<T>, (T Parameters, OptimizerState<T> State)> Update)
    where T : IParameterTree<T>
{
    /// <summary>
    /// The update on flat gradients (the entries of a tree of the given shapes, in leaf order; read, never kept),
    /// for the optimizers of <see cref="Optimizers"/>; used only while <see cref="Update"/> is the delegate it
    /// was built with.
    /// </summary>
    internal FlatUpdate<T>? Flat { get; init; }

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>An optimizer's update on flat gradients, beside the tree update it computes the same bits as.</summary>
/// <param name="Of">The tree update this flat update belongs to.</param>
/// <param name="Step">(parameters, their leaf shapes, flat gradients, state) → new parameters and state.</param>
/// <param name="InPlace">The same step on the parameters' entries in leaf order, updated in place: (a tree of the parameters' structure, its leaf shapes, the entries, flat gradients, state) → new state.</param>
internal sealed record FlatUpdate<T>(
    Func<T, T, OptimizerState<T>, (T Parameters, OptimizerState<T> State)> Of,
    FlatStep<T> Step,
    FlatStepInPlace<T> InPlace)
    where T : IParameterTree<T>;

/// <summary>An optimizer's step on flat gradients: the gradients are read, never kept nor written.</summary>
/// <param name="parameters">The parameters.</param>
/// <param name="shapes">Their leaf shapes.</param>
/// <param name="gradients">The gradients' entries in leaf order.</param>
/// <param name="state">The optimizer's state before the step.</param>
internal delegate (T Parameters, OptimizerState<T> State) FlatStep<T>(
    T parameters, ImmutableArray<LeafShape> shapes, ReadOnlySpan<double> gradients, OptimizerState<T> state)
    where T : IParameterTree<T>;

/// <summary>
/// An optimizer's step on flat parameters and gradients: the parameters' entries (in leaf order) are updated in place,
/// the gradients are read, never kept nor written; returns the new state.
/// </summary>
/// <param name="like">A tree of the parameters' structure (the new state's slots are shaped like it).</param>
/// <param name="shapes">Its leaf shapes.</param>
/// <param name="parameters">The parameters' entries in leaf order, updated in place.</param>
/// <param name="gradients">The gradients' entries in leaf order.</param>
/// <param name="state">The optimizer's state before the step.</param>
internal delegate OptimizerState<T> FlatStepInPlace<T>(
    T like, ImmutableArray<LeafShape> shapes, Span<double> parameters, ReadOnlySpan<double> gradients, OptimizerState<T> state)
    where T : IParameterTree<T>;

/// <summary>
/// The element-wise part of an optimizer's step over a run of entries: (step number t ≥ 1, parameters updated in
/// place, gradients, each slot's entries before the step, read only, and after it, written whole).
/// </summary>
internal delegate void FlatKernel(int step, Span<double> parameters, ReadOnlySpan<double> gradients, double[][] from, double[][] to);

/// <summary>
/// Stochastic gradient descent and its adaptive variants as <see cref="Optimizer{T}"/> values over any parameter
/// tree. Each update checks that the gradients have the parameters' structure and are finite, works on the flat
/// view of the trees and returns new trees.
/// </summary>
public static class Optimizers
{
    /// <summary>Plain SGD: p ← p − lr·g.</summary>
    /// <param name="learningRate">lr &gt; 0.</param>
    [Pure]
    public static Optimizer<T> Sgd<T>(double learningRate) where T : IParameterTree<T>
    {
        RequirePositive(nameof(learningRate), learningRate);
        return Flat<T>(Describe("sgd", ("lr", learningRate)), 0, (_, p, g, _, _) => OptimizerKernels.Sgd(learningRate, p, g));
    }

    /// <summary>SGD with momentum as in PyTorch: v ← μ·v + g, p ← p − lr·v.</summary>
    /// <param name="learningRate">lr &gt; 0.</param>
    /// <param name="momentum">μ in [0, 1).</param>
    [Pure]
    public static Optimizer<T> Momentum<T>(double learningRate, double momentum = 0.9) where T : IParameterTree<T>
    {
        RequirePositive(nameof(learningRate), learningRate);
        RequireUnit(nameof(momentum), momentum);
        return Flat<T>(Describe("momentum", ("lr", learningRate), ("mu", momentum)), 1,
            (_, p, g, from, to) => OptimizerKernels.Momentum(learningRate, momentum, p, g, from[0], to[0]));
    }

    /// <summary>Adagrad as in min-char-rnn: G ← G + g², p ← p − lr·g / √(G + ε).</summary>
    /// <param name="learningRate">lr &gt; 0.</param>
    /// <param name="epsilon">ε &gt; 0 (1e-8 in min-char-rnn).</param>
    [Pure]
    public static Optimizer<T> Adagrad<T>(double learningRate, double epsilon = 1e-8) where T : IParameterTree<T>
    {
        RequirePositive(nameof(learningRate), learningRate);
        RequirePositive(nameof(epsilon), epsilon);
        return Flat<T>(Describe("adagrad", ("lr", learningRate)), 1,
            (_, p, g, from, to) => OptimizerKernels.Adagrad(learningRate, epsilon, p, g, from[0], to[0]));
    }

    /// <summary>RMSProp: v ← ρ·v + (1 − ρ)·g², p ← p − lr·g / (√v + ε).</summary>
    /// <param name="learningRate">lr &gt; 0.</param>
    /// <param name="decay">ρ in [0, 1).</param>
    /// <param name="epsilon">ε &gt; 0.</param>
    [Pure]
    public static Optimizer<T> RmsProp<T>(double learningRate, double decay = 0.99, double epsilon = 1e-8) where T : IParameterTree<T>
    {
        RequirePositive(nameof(learningRate), learningRate);
        RequireUnit(nameof(decay), decay);
        RequirePositive(nameof(epsilon), epsilon);
        return Flat<T>(Describe("rmsprop", ("lr", learningRate), ("rho", decay)), 1,
            (_, p, g, from, to) => OptimizerKernels.RmsProp(learningRate, decay, epsilon, p, g, from[0], to[0]));
    }

    /// <summary>
    /// Adam: m ← β₁·m + (1 − β₁)·g, v ← β₂·v + (1 − β₂)·g², p ← p − lr·m̂ / (√v̂ + ε) with the bias corrections
    /// m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ). The first step moves each entry by lr·g/(|g| + ε) ≈ lr·sign(g).
    /// </summary>
    /// <param name="learningRate">lr &gt; 0.</param>
    /// <param name="beta1">β₁ in [0, 1).</param>
    /// <param name="beta2">β₂ in [0, 1).</param>
    /// <param name="epsilon">ε &gt; 0.</param>
    [Pure]
    public static Optimizer<T> Adam<T>(double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
        where T : IParameterTree<T>
    {
        RequirePositive(nameof(learningRate), learningRate);
        RequireUnit(nameof(beta1), beta1);
        RequireUnit(nameof(beta2), beta2);
        RequirePositive(nameof(epsilon), epsilon);
        return Flat<T>(Describe("adam", ("lr", learningRate), ("b1", beta1), ("b2", beta2)), 2, (t, p, g, from, to) =>
            OptimizerKernels.Adam(learningRate, beta1, beta2, epsilon, 1 - Math.Pow(beta1, t), 1 - Math.Pow(beta2, t), p, g, from[0], from[1], to[0], to[1]));
    }

    /// <summary>
    /// An optimizer written as a kernel over flat spans (<see cref="FlatKernel"/>): the parameters' entries are copied
    /// into a pooled array the kernel updates, the slots are read from the state and written into new arrays that the
    /// new state takes over, chunk by chunk (<see cref="SlotChunks"/>; each entry's update reads only that entry, so
    /// the chunks change no bit). The caller's trees and the old state are never written.
    /// </summary>
    private static Optimizer<T> Flat<T>(string name, int slots, FlatKernel kernel)
        where T : IParameterTree<T>
    {
        OptimizerState<T> InPlace(T like, ImmutableArray<LeafShape> shapes, Span<double> values, ReadOnlySpan<double> flat, OptimizerState<T> state)
        {
            double[][][] from;
            if (state.FlatFor(shapes) is { } kept)
            {
                if (kept.Length != slots) throw SlotCount(kept.Length);
                from = kept;
            }
            else
            {
                if (state.Slots.IsDefault || state.Slots.Length != slots) throw SlotCount(state.Slots.IsDefault ? null : state.Slots.Length);
                from = [.. state.Slots.Select(slot =>
                {
                    var leaves = slot.ToLeaves();
                    Tree.RequireSameStructure(shapes, leaves, "state");
                    return SlotChunks.Split(Tree.Concatenate(leaves));
                })];
            }
            if (OptimizerKernels.FirstNonFinite(flat) is var bad and >= 0)
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"expected gradients to be finite but entry {bad} is {flat[bad]}"), "gradients");
            var count = flat.Length;
            if (values.Length != count) throw new ArgumentException($"expected gradients to have the parameters' {values.Length} entries but got {count}", "gradients");
            var to = new double[slots][][];
            for (var k = 0; k < slots; k++) to[k] = SlotChunks.New(count);
            var step = state.Step + 1;
            var (before, after) = (new double[slots][], new double[slots][]);
            for (var (c, offset) = (0, 0); offset < count; c++, offset += SlotChunks.Length)
            {
                for (var k = 0; k < slots; k++) (before[k], after[k]) = (from[k][c], to[k][c]);
                var length = Math.Min(SlotChunks.Length, count - offset);
                kernel(step, values.Slice(offset, length), flat.Slice(offset, length), before, after);
            }
            return new OptimizerState<T>(step, like, to);
        }

        (T, OptimizerState<T>) Step(T p, ImmutableArray<LeafShape> shapes, ReadOnlySpan<double> flat, OptimizerState<T> state)
        {
            var (count, entries) = (flat.Length, 0);
            foreach (var shape in shapes) entries += shape.Count;
            if (entries != count) throw new ArgumentException($"expected gradients to have the parameters' {entries} entries but got {count}", "gradients");
            var values = ArrayPool<double>.Shared.Rent(count);
            try
            {
                Tree.Write(p, values.AsSpan(0, count));
                var next = InPlace(p, shapes, values.AsSpan(0, count), flat, state);
                return (Tree.Unflatten(p, values.AsSpan(0, count)), next);
            }
            finally
            {
                ArrayPool<double>.Shared.Return(values);
            }
        }

        (T, OptimizerState<T>) Update(T p, T g, OptimizerState<T> state)
        {
            ArgumentNullException.ThrowIfNull(p);
            ArgumentNullException.ThrowIfNull(g);
            ArgumentNullException.ThrowIfNull(state);
            var shapes = p.LeafShapes();
            var gradients = g.ToLeaves();
            Tree.RequireSameStructure(shapes, gradients, "gradients");
            return Step(p, shapes, Tree.Concatenate(gradients), state);
        }

        ArgumentException SlotCount(int? found) =>
            new($"expected state to hold {slots} slots for {name} but got {(found is { } n ? n : "none")}", "state");

        Func<T, T, OptimizerState<T>, (T, OptimizerState<T>)> update = Update;
        return new(name, p => new OptimizerState<T>(0, [.. Enumerable.Range(0, slots).Select(_ => Tree.ZerosLike(p))]), update)
        {
            Flat = new FlatUpdate<T>(update, Step, InPlace),
        };
    }

    private static string Describe(string name, params (string Key, double Value)[] hyper) =>
        $"{name}({string.Join(", ", hyper.Select(h => string.Create(CultureInfo.InvariantCulture, $"{h.Key}={h.Value:G4}")))})";

    private static void RequirePositive(string name, double value)
    {
        if (!(value > 0) || !double.IsFinite(value))
            throw new ArgumentOutOfRangeException(name, value, string.Create(CultureInfo.InvariantCulture, $"expected {name} to be a finite number > 0 but got {value}"));
    }

    private static void RequireUnit(string name, double value)
    {
        if (!(value >= 0 && value < 1))
            throw new ArgumentOutOfRangeException(name, value, string.Create(CultureInfo.InvariantCulture, $"expected {name} to be in [0, 1) but got {value}"));
    }
}

/// <summary>
/// Gradient clipping as a value applied between the loss and the optimizer: none, by value (each entry into
/// [−limit, limit], the exercise's ±5) or by global norm (PyTorch's clip_grad_norm_).
/// </summary>
/// <param name="Kind">Which clipping.</param>
/// <param name="Threshold">The limit (by value) or the largest norm (by norm); unused for none.</param>
public sealed record Clipping(ClippingKind Kind, double Threshold)
{
    /// <summary>No clipping.</summary>
    public static Clipping None { get; } = new(ClippingKind.None, double.PositiveInfinity);

    /// <summary>Each entry clipped into [−limit, limit].</summary>
    /// <param name="limit">limit &gt; 0.</param>
    [Pure]
    public static Clipping ByValue(double limit) => new(ClippingKind.Value, RequirePositive(nameof(limit), limit));

    /// <summary>The whole tree scaled by maxNorm/‖g‖ when its global norm ‖g‖ exceeds maxNorm.</summary>
    /// <param name="maxNorm">maxNorm &gt; 0.</param>
    [Pure]
    public static Clipping ByGlobalNorm(double maxNorm) => new(ClippingKind.GlobalNorm, RequirePositive(nameof(maxNorm), maxNorm));

    /// <summary>The clipped gradients (a new tree; <paramref name="gradients"/> is untouched).</summary>
    /// <param name="gradients">Any tree.</param>
    [Pure]
    public T Apply<T>(T gradients) where T : IParameterTree<T> => Kind switch
    {
        ClippingKind.Value => Clip.ByValue(gradients, Threshold),
        ClippingKind.GlobalNorm => Clip.ByGlobalNorm(gradients, Threshold),
        _ => gradients,
    };

    /// <summary>
    /// <see cref="Apply{T}"/> on flat gradients whose global norm is <paramref name="norm"/>, in place and with the
    /// same arithmetic.
    /// </summary>
    internal void ApplyInPlace(Span<double> gradients, double norm)
    {
        if (Kind != ClippingKind.None && !(Threshold > 0))
            throw new ArgumentOutOfRangeException(Kind == ClippingKind.Value ? "limit" : "maxNorm", Threshold,
                $"expected {(Kind == ClippingKind.Value ? "limit" : "maxNorm")} to be > 0 but got {Threshold}");
        if (Kind == ClippingKind.Value)
            for (var i = 0; i < gradients.Length; i++) gradients[i] = Math.Clamp(gradients[i], -Threshold, Threshold);
        else if (Kind == ClippingKind.GlobalNorm && norm > Threshold)
        {
            var scale = Threshold / norm;
            for (var i = 0; i < gradients.Length; i++) gradients[i] = scale * gradients[i];
        }
    }

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        ClippingKind.Value => string.Create(CultureInfo.InvariantCulture, $"value ±{Threshold:G4}"),
        ClippingKind.GlobalNorm => string.Create(CultureInfo.InvariantCulture, $"global norm {Threshold:G4}"),
        _ => "none",
    };

    private static double RequirePositive(string name, double value) =>
        value > 0 && double.IsFinite(value)
            ? value
            : throw new ArgumentOutOfRangeException(name, value, string.Create(CultureInfo.InvariantCulture, $"expected {name} to be a finite number > 0 but got {value}"));
}

/// <summary>The kinds of <see cref="Clipping"/>.</summary>
public enum ClippingKind
{
    /// <summary>Gradients pass unchanged.</summary>
    None,

    /// <summary>Each entry clipped into [−limit, limit].</summary>
    Value,

    /// <summary>The tree rescaled to a global norm of at most the threshold.</summary>
    GlobalNorm,
}

/// <summary>Gradient clipping as pure functions over parameter trees.</summary>
public static class Clip
{
    /// <summary>Each entry clipped into [−limit, limit] (NumPy's <c>np.clip(g, -limit, limit)</c>).</summary>
    /// <param name="gradients">Any tree.</param>
    /// <param name="limit">limit &gt; 0.</param>
    [Pure]
    public static T ByValue<T>(T gradients, double limit) where T : IParameterTree<T>
    {
        if (!(limit > 0)) throw new ArgumentOutOfRangeException(nameof(limit), limit, $"expected limit to be > 0 but got {limit}");
        return Tree.Map(gradients, g => Math.Clamp(g, -limit, limit));
    }

    /// <summary>
    /// The tree scaled by maxNorm/‖g‖ when its global Euclidean norm ‖g‖ exceeds maxNorm, unchanged otherwise: the
    /// direction is kept and the norm never grows.
    /// </summary>
    /// <param name="gradients">Any tree.</param>
    /// <param name="maxNorm">maxNorm &gt; 0.</param>
    [Pure]
    public static T ByGlobalNorm<T>(T gradients, double maxNorm) where T : IParameterTree<T>
    {
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, $"expected maxNorm to be > 0 but got {maxNorm}");
        var norm = Tree.Norm(gradients);
        return norm > maxNorm ? Tree.Scale(maxNorm / norm, gradients) : gradients;
    }
}
