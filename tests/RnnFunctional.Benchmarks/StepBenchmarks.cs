using BenchmarkDotNet.Attributes;
using RnnFunctional.Kernels;

namespace RnnFunctional.Benchmarks;

/// <summary>
/// The element-wise part of one step of each cell of <see cref="CellBenchmarks"/>, forward and backward, on m = 32
/// columns (n_x = 64, n_a = 128): <see cref="FusedCell.Forward"/> and <see cref="FusedCell.Backward(Block[], Block[], ReadOnlySpan{double}, Block[], Span{double}, Span{double}, Span{double}, Span{double})"/>
/// without the driver's products. Every call starts from the same inputs (they are copied in first, for every cell
/// alike), so that no value drifts from call to call.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
[MinColumn]
public class StepBenchmarks
{
    private const int Batch = 32, Inputs = 64, Hidden = 128, Classes = 64;
    private readonly Step lstm, layerNorm, layerNormGru, peephole, projected;

    public StepBenchmarks()
    {
        lstm = new(LstmFused.Of(LstmParameters.Initialize(Inputs, Hidden, Classes, seed: 1)));
        layerNorm = new(LayerNormLstmFused.Of(LayerNormLstmParameters.Initialize(Inputs, Hidden, Classes, seed: 1)));
        layerNormGru = new(LayerNormGruFused.Of(LayerNormGruParameters.Initialize(Inputs, Hidden, Classes, seed: 1)));
        peephole = new(PeepholeLstmFused.Of(PeepholeLstmParameters.Initialize(Inputs, Hidden, Classes, seed: 1)));
        projected = new(ProjectedLstmFused.Of(ProjectedLstmParameters.Initialize(Inputs, Hidden, Hidden / 2, Classes, seed: 1)));
    }

    [Benchmark(Baseline = true, Description = "Lstm forward step")]
    public void LstmForward() => lstm.Forward();

    [Benchmark(Description = "Lstm backward step")]
    public void LstmBackward() => lstm.Backward();

    [Benchmark(Description = "LayerNormLstm forward step")]
    public void LayerNormForward() => layerNorm.Forward();

    [Benchmark(Description = "LayerNormLstm backward step")]
    public void LayerNormBackward() => layerNorm.Backward();

    [Benchmark(Description = "LayerNormGru forward step")]
    public void LayerNormGruForward() => layerNormGru.Forward();

    [Benchmark(Description = "LayerNormGru backward step")]
    public void LayerNormGruBackward() => layerNormGru.Backward();

    [Benchmark(Description = "PeepholeLstm forward step")]
    public void PeepholeForward() => peephole.Forward();

    [Benchmark(Description = "PeepholeLstm backward step")]
    public void PeepholeBackward() => peephole.Backward();

    [Benchmark(Description = "ProjectedLstm forward step")]
    public void ProjectedForward() => projected.Forward();

    [Benchmark(Description = "ProjectedLstm backward step")]
    public void ProjectedBackward() => projected.Backward();

    /// <summary>One cell's step: its inputs, a forward's parts to run the backward on, and the buffers each writes.</summary>
    private sealed class Step
    {
        private readonly FusedCell cell;
        private readonly double[] u0, r0, u, r, dOut, dU, dR, scratch, own;
        private readonly Block[] prev, next, dCarry0, dCarry;

        public Step(FusedCell cell)
        {
            this.cell = cell;
            var random = new Random(2);
            var (g, na) = (cell.Gates * cell.Hidden * Batch, cell.Hidden * Batch);
            double[] Draw(int n, double scale) => [.. Enumerable.Range(0, n).Select(_ => (2 * random.NextDouble() - 1) * scale)];
            Block Part(double scale) => new(Draw(na, scale), 0, cell.Hidden, Batch);
            (u0, r0, u, r, dU, dR) = (Draw(g, 2), Draw(g, 2), new double[g], new double[g], new double[g], new double[g]);
            (dOut, scratch, own) = (Draw(na, 1), new double[Math.Max(g, 4 * na)], new double[Math.Max(cell.OwnParameters, 1)]);
            prev = [.. Enumerable.Range(0, cell.Parts).Select(_ => Part(0.5))];
            next = [.. Enumerable.Range(0, cell.Parts).Select(_ => Part(0.5))];
            dCarry0 = [.. Enumerable.Range(0, cell.CarryParts).Select(_ => Part(1))];
            dCarry = [.. dCarry0.Select(d => d.Copy())];
            Forward();
        }

        public void Forward()
        {
            u0.CopyTo(u, 0);
            r0.CopyTo(r, 0);
            cell.Forward(u, r, prev, next, scratch);
        }

        public void Backward()
        {
            for (var k = 0; k < dCarry.Length; k++) dCarry0[k].Span.CopyTo(dCarry[k].Span);
            cell.Backward(prev, next, dOut, dCarry, dU, dR, scratch, own);
        }
    }
}
