using System.Collections.Immutable;

namespace RnnFunctional.Distributed;

/// <summary>What a coordinator has sent and retried so far.</summary>
/// <param name="Requests">Block requests sent (retries and re-sends included).</param>
/// <param name="ParameterSends">Requests that carried the parameters.</param>
/// <param name="Retries">Requests sent again after a failed call.</param>
/// <param name="DoublesSent">Parameter values sent.</param>
/// <param name="DoublesReceived">Gradient values received (one payload per block computed).</param>
/// <param name="Workers">The silos that computed at least one block.</param>
/// <param name="Refusals">The silos whose piece workers refused the run (<see cref="PieceRefusedException"/>), each with its reason.</param>
public sealed record CoordinatorCounters(long Requests, long ParameterSends, long Retries, long DoublesSent, long DoublesReceived, ImmutableSortedSet<string> Workers,
    ImmutableSortedDictionary<string, string> Refusals);

/// <summary>
/// Where the time of one step of a coordinator went (<see cref="Coordinator{T}.LastStep"/>): the inputs of a model of
/// the step's cost. <see cref="Blocks"/> less <see cref="SlowestBlock"/> is the time that the parameters and gradients
/// spent on their way through the cluster (serialization, the network, Orleans' messaging) and that the workers waited
/// for each other; <see cref="Step"/> less the other parts is the coordinator's own bookkeeping (asking the cluster for
/// its silos).
/// </summary>
/// <param name="Step">The step's wall time.</param>
/// <param name="Blocks">From the step's first block request to its last result, retries included.</param>
/// <param name="SlowestBlock">The step's longest block as its worker timed it (<see cref="PieceResult.Took"/>).</param>
/// <param name="Summing">Adding the blocks' partial sums.</param>
/// <param name="Applying">Applying the optimizer, which makes the next parameter payload.</param>
public sealed record StepTimes(TimeSpan Step, TimeSpan Blocks, TimeSpan SlowestBlock, TimeSpan Summing, TimeSpan Applying)
{
    /// <summary>
    /// The median of each part over the steps, as one step's times: unlike the mean, not swayed by a run's first steps
    /// (the just-in-time compiler, every piece asked alone) or a slow one.
    /// </summary>
    /// <param name="steps">Each step's times, at least one.</param>
    public static StepTimes Median(IReadOnlyCollection<StepTimes> steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        if (steps.Count == 0) throw new ArgumentException("expected the times of at least one step but got none", nameof(steps));
        TimeSpan Of(Func<StepTimes, TimeSpan> part)
        {
            var sorted = steps.Select(part).Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
        return new(Of(t => t.Step), Of(t => t.Blocks), Of(t => t.SlowestBlock), Of(t => t.Summing), Of(t => t.Applying));
    }

    /// <summary>The times in milliseconds, e.g. "142 ms a step: blocks 118 (the slowest computed in 61, so 57 on the way), summing 1, applying 9".</summary>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{Step.TotalMilliseconds:F0} ms a step: blocks {Blocks.TotalMilliseconds:F0} (the slowest computed in {SlowestBlock.TotalMilliseconds:F0}, so {(Blocks - SlowestBlock).TotalMilliseconds:F0} on the way), summing {Summing.TotalMilliseconds:F0}, applying {Applying.TotalMilliseconds:F0}");
}
