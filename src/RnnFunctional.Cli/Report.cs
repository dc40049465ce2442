using System.Globalization;
using LanguageExt;
using LanguageExt.Common;
using Spectre.Console;

namespace RnnFunctional.Cli;

/// <summary>What the training loop tells its progress view.</summary>
internal interface IProgressReport
{
    /// <summary>An update was taken.</summary>
    void Step(int batch, double loss, int tokens, TimeSpan elapsed);

    /// <summary>An epoch ended with the given held-out loss.</summary>
    void Epoch(int epoch, int step, double heldOut);
}

/// <summary>
/// Training progress: a live Spectre progress bar with loss and throughput on an interactive terminal; otherwise one
/// plain line per epoch, and between them a plain line (step, epoch, loss, throughput) whenever the terminal's
/// <see cref="Heartbeat"/> interval has passed without one.
/// </summary>
internal sealed class ProgressView(Terminal terminal, int totalBatches, int batchesPerEpoch, int epochs) : IProgressReport
{
    private double smoothed = double.NaN;
    private double throughput;
    private int batch;
    private TimeSpan elapsed;
    private ProgressTask? task;

    public void Run(Action<IProgressReport> body)
    {
        if (!terminal.Interactive)
        {
            body(this);
            return;
        }
        // The live bar owns the terminal: no plain progress lines while it is drawn.
        terminal.Heartbeat.Enabled = false;
        try
        {
            Live(body);
        }
        finally
        {
            terminal.Heartbeat.Enabled = true;
        }
    }

    private void Live(Action<IProgressReport> body)
    {
        terminal.Ansi.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                     new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                task = context.AddTask(Describe(), maxValue: totalBatches);
                body(this);
                task.Value = task.MaxValue;
            });
    }

    public void Step(int batch, double loss, int tokens, TimeSpan elapsed)
    {
        smoothed = double.IsNaN(smoothed) ? loss : 0.95 * smoothed + 0.05 * loss;
        (this.batch, this.elapsed) = (batch, elapsed);
        throughput = tokens / Math.Max(1e-9, elapsed.TotalSeconds);
        if (task is null)
        {
            terminal.Heartbeat.Pulse(() => string.Create(CultureInfo.InvariantCulture,
                $"step {batch:N0}/{totalBatches:N0}  epoch {Math.Min(epochs, (batch - 1) / Math.Max(1, batchesPerEpoch) + 1)}/{epochs}  loss {smoothed:F4}  {throughput:N0} chars/s  {elapsed.TotalSeconds:F1} s"));
            return;
        }
        task.Value = Math.Min(batch, totalBatches);
        task.Description = Describe();
    }

    public void Epoch(int epoch, int step, double heldOut)
    {
        if (task is not null) return;
        terminal.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"epoch {epoch,3}/{epochs}  step {step,6}  train loss {smoothed:F4}  held-out {heldOut:F4}  {throughput,8:N0} chars/s  {elapsed.TotalSeconds,6:F1} s"));
        terminal.Heartbeat.Wrote();
    }

    public void Finish(int step, int epoch, double loss, double heldOut, int tokens, TimeSpan elapsed)
    {
        if (task is null)
            terminal.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"done: epoch {epoch}/{epochs}  step {step}  last loss {loss:F4}  held-out {heldOut:F4}  {tokens / Math.Max(1e-9, elapsed.TotalSeconds):N0} chars/s  {elapsed.TotalSeconds:F1} s"));
    }

    /// <summary>Where the time of a data-parallel run's steps went, the median of each part (one line after the last step's).</summary>
    public void Workers(IReadOnlyList<RnnFunctional.Distributed.StepTimes> steps)
    {
        if (steps.Count > 0) terminal.Out.WriteLine($"workers: the median of {steps.Count} steps, {RnnFunctional.Distributed.StepTimes.Median([.. steps])}");
    }

    private string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"epoch {Math.Min(epochs, batch / Math.Max(1, batchesPerEpoch) + 1)}/{epochs}  loss {(double.IsNaN(smoothed) ? "…" : smoothed.ToString("F3", CultureInfo.InvariantCulture))}  {throughput:N0} chars/s");
}

/// <summary>The end-of-training report: the loss table, the samples and the files written.</summary>
internal static class Report
{
    public static void Summary(Terminal terminal, TrainOptions o, TrainingData data, TrainOutcome r)
    {
        var ansi = terminal.Ansi;
        string F(double x, string format = "F4") => x.ToString(format, CultureInfo.InvariantCulture);
        ansi.WriteLine();
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"Held-out loss per character on {data.HeldOutTokens.Count} of {data.Corpus.Items.Count} items")
            .AddColumn("model").AddColumn(new TableColumn("nats/char").RightAligned()).AddColumn(new TableColumn("perplexity").RightAligned());
        var modelName = $"{o.Cell} n_a={o.Hidden}" + (o.Layers > 1 ? $" ×{o.Layers} layers" : "")
            + (o.Dropout.Between > 0 || o.Dropout.Recurrent > 0 ? $", dropout {F(o.Dropout.Between, "G4")} / recurrent {F(o.Dropout.Recurrent, "G4")}" : "");
        table.AddRow(Markup.Escape(modelName), F(r.HeldOutLoss), F(Math.Exp(r.HeldOutLoss), "F2"));
        table.AddRow(Markup.Escape($"bigram (add-{F(data.Bigram.Alpha, "G3")} smoothing)"), F(data.BaselineLoss), F(Math.Exp(data.BaselineLoss), "F2"));
        table.Caption(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"{(data.BaselineLoss - r.HeldOutLoss >= 0 ? "below" : "above")} the bigram baseline by {Math.Abs(data.BaselineLoss - r.HeldOutLoss):F4} nats/char")));
        ansi.Write(table);
        ansi.WriteLine();

        var facts = new Table().Border(TableBorder.Rounded).AddColumn("training").AddColumn(new TableColumn("").RightAligned()).HideHeaders();
        facts.AddRow("corpus", Markup.Escape(data.Corpus.Name));
        facts.AddRow("items (train / held out)", $"{data.TrainTokens.Count} / {data.HeldOutTokens.Count}");
        facts.AddRow("vocabulary", $"{data.Vocabulary.Size} tokens");
        facts.AddRow("parameters", r.ParameterCount.ToString("N0", CultureInfo.InvariantCulture));
        facts.AddRow("optimizer", Markup.Escape($"{r.OptimizerName}, clip {o.Clipping}"));
        facts.AddRow("epochs / updates", $"{r.Epochs} / {r.Steps}");
        facts.AddRow("last-epoch train loss", F(r.TrainLoss));
        facts.AddRow("time", $"{F(r.Elapsed.TotalSeconds, "F1")} s");
        facts.AddRow("throughput", $"{(r.Tokens / Math.Max(1e-9, r.Elapsed.TotalSeconds)).ToString("N0", CultureInfo.InvariantCulture)} chars/s");
        ansi.Write(facts);
        ansi.WriteLine();

        if (r.Samples.Length > 0)
        {
            var samples = new Table().Border(TableBorder.Rounded)
                .Title("Sampled names")
                .Caption($"temperature {F(o.Temperature, "G3")}, seed {o.Seed}")
                .AddColumn("name").AddColumn("in the corpus?");
            foreach (var name in r.Samples)
                samples.AddRow(Markup.Escape(name.Length == 0 ? "(empty)" : name), data.Corpus.Items.Contains(name) ? "yes" : "new");
            ansi.Write(samples);
            ansi.WriteLine();
        }
    }

    /// <summary>Where the model and (when it was written) the loss curve went.</summary>
    public static void Written(Terminal terminal, string model, string? plot)
    {
        terminal.Out.WriteLine($"model written to {model}");
        if (plot is not null) terminal.Out.WriteLine($"loss curve written to {plot}");
    }
}

/// <summary>The loss curve as a PNG: per-update training loss, its moving average, held-out points and the bigram baseline.</summary>
internal static class LossPlot
{
    public static byte[] Png(TrainOutcome r, double baseline)
    {
        var plot = new ScottPlot.Plot();
        var steps = Enumerable.Range(1, r.StepLosses.Length).Select(i => (double)i).ToArray();
        if (steps.Length > 0)
        {
            var raw = plot.Add.ScatterLine(steps, r.StepLosses.ToArray());
            raw.LegendText = "training loss (per update)";
            raw.Color = ScottPlot.Colors.SteelBlue.WithAlpha(0.35);
            var average = plot.Add.ScatterLine(steps, MovingAverage(r.StepLosses, Math.Max(1, steps.Length / 50)));
            average.LegendText = "training loss (moving average)";
            average.Color = ScottPlot.Colors.SteelBlue;
            average.LineWidth = 2;
        }
        if (r.HeldOutCurve.Length > 0)
        {
            var held = plot.Add.Scatter(r.HeldOutCurve.Select(p => p.Step).ToArray(), r.HeldOutCurve.Select(p => p.Loss).ToArray());
            held.LegendText = "held-out loss";
            held.Color = ScottPlot.Colors.OrangeRed;
            held.MarkerSize = 7;
            held.LineWidth = 2;
        }
        var line = plot.Add.HorizontalLine(baseline);
        line.LegendText = "bigram baseline (held-out)";
        line.Color = ScottPlot.Colors.Gray;
        line.LinePattern = ScottPlot.LinePattern.Dashed;
        plot.Title("Character-level model: cross-entropy per character");
        plot.XLabel("update");
        plot.YLabel("nats per character");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        return plot.GetImageBytes(900, 540, ScottPlot.ImageFormat.Png);
    }

    private static double[] MovingAverage(IReadOnlyList<double> values, int window)
    {
        var result = new double[values.Count];
        var sum = 0.0;
        for (var i = 0; i < values.Count; i++)
        {
            sum += values[i];
            if (i >= window) sum -= values[i - window];
            result[i] = sum / Math.Min(i + 1, window);
        }
        return result;
    }
}
