using System.Diagnostics;
using RnnFunctional.Kernels;
namespace RnnFunctional.Benchmarks;
public static class Profile
{
    static double Time(Action a, int reps = 200) { for (int i = 0; i < 20; i++) a(); var best = double.MaxValue; for (int r = 0; r < 5; r++) { var sw = Stopwatch.StartNew(); for (int i = 0; i < reps; i++) a(); best = Math.Min(best, sw.Elapsed.TotalMilliseconds / reps); } return best; }
    public static void Loop(string which)
    {
        var w = new Workload();
        var f = Rnn.Forward(w.Rnn, w.Xs, w.A0);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < 12)
        {
            if (which == "w2") Rnn.LossAndGradients(w.Rnn, w.Xs, w.A0, w.Labels);
            else if (which == "fwd") Rnn.Forward(w.Rnn, w.Xs, w.A0);
            else Rnn.Backward(f, w.Da);
        }
    }

    public static void Run()
    {
        var w = new Workload();
        var rnd = new Random(1);
        double[] R(int n) => Enumerable.Range(0, n).Select(_ => rnd.NextDouble() - 0.5).ToArray();
        var (a, b, c) = (R(128 * 128), R(128 * 3200), new double[128 * 3200]);
        Console.WriteLine($"W1 {Time(() => Rnn.Backward(Rnn.Forward(w.Rnn, w.Xs, w.A0), w.Da), 20):F3} ms");
        Console.WriteLine($"Forward {Time(() => Rnn.Forward(w.Rnn, w.Xs, w.A0), 20):F3} ms");
        var f = Rnn.Forward(w.Rnn, w.Xs, w.A0);
        Console.WriteLine($"Backward {Time(() => Rnn.Backward(f, w.Da), 20):F3} ms");
        Console.WriteLine($"W2 {Time(() => Rnn.LossAndGradients(w.Rnn, w.Xs, w.A0, w.Labels), 20):F3} ms");
        Console.WriteLine($"100x NN m128 n32 k128 {100 * Time(() => Gemm.Multiply(false, false, 128, 32, 128, 1, a, 128, b, 128, 1, c, 128)):F3} ms");
        Console.WriteLine($"100x NN m64 n32 k128 {100 * Time(() => Gemm.Multiply(false, false, 64, 32, 128, 1, a, 64, b, 128, 0, c, 64)):F3} ms");
        Console.WriteLine($"NN m128 n3200 k64 {Time(() => Gemm.Multiply(false, false, 128, 3200, 64, 1, a, 128, b, 64, 0, c, 128), 20):F3} ms");
        Console.WriteLine($"13x NT m128 n128 k256 {13 * Time(() => Gemm.Multiply(false, true, 128, 128, 256, 1, b, 128, b, 128, 1, c, 128), 20):F3} ms");
        Console.WriteLine($"13x TN m64 n256 k128 {13 * Time(() => Gemm.Multiply(true, false, 64, 256, 128, 1, a, 128, b, 128, 0, c, 64), 20):F3} ms");
        Console.WriteLine($"tanh 409600 {Time(() => Elementwise.Tanh(b.AsSpan(0, 409600), c), 20):F3} ms");
        Console.WriteLine($"softmax 3200 cols of 64 {Time(() => { for (int j = 0; j < 3200; j++) Elementwise.SoftmaxColumn(b.AsSpan(j * 64, 64), c.AsSpan(j * 64, 64)); }, 20):F3} ms");
        Console.WriteLine($"tanhBackward 409600 {Time(() => Elementwise.TanhBackward(b.AsSpan(0, 409600), c, a.AsSpan(0,0).Length == 0 ? b.AsSpan(0, 409600) : b), 20):F3} ms");
        Console.WriteLine($"alloc 6.6MB in 32KB arrays {Time(() => { for (int i = 0; i < 200; i++) _ = new double[4096]; }, 20):F3} ms");
    }
}
