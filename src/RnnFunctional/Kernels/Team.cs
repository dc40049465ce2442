namespace RnnFunctional.Kernels;

/// <summary>
/// The threads of one call that share the rows of its products when its batch is one chunk: the calling thread and
/// <c>Size − 1</c> helpers, each computing a band of rows of C = op(A)·op(B). Bands start at multiples of 16 rows
/// (the largest micro-kernel's height), and a row of a product has the same bits whichever band computes it (the
/// blocking depends only on the dimensions), so a call gives the same bits on one thread and on many.
/// </summary>
/// <remarks>
/// Helpers wait for work by spinning (yielding the core when others want it): a product at every step of a scan is a
/// few tens of microseconds, too short for a blocking wake-up. A team lives for one chunk of one call; its helpers
/// then wait, blocked, for the next call.
/// <para>
/// Each band of a <see cref="Run"/> is computed once, by whichever thread claims it first: its helper, or the caller
/// once its own band is done. On a busy machine a helper may not get a core for milliseconds; the caller then computes
/// the bands no helper has started instead of waiting, so a call is never much slower on a team than on one thread.
/// The bands themselves do not change, so neither do the bits.
/// </para>
/// </remarks>
internal sealed class Team : IDisposable
{
    /// <summary>Rows in which bands are cut.</summary>
    private const int Granule = 16;

    /// <summary>The least per-step recurrent work (multiply-adds, G·n_a·n_a·m) for which a call forms a team.</summary>
    private const long MinimumWork = 1 << 21;

    /// <summary>Helpers between calls, each blocked on its own semaphore; at most one per core besides the caller's.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentBag<Helper> Idle = [];

    private static int created;

    private readonly Helper[] helpers;

    /// <summary>claims[i]: the last generation whose band i a thread has claimed.</summary>
    private readonly int[] claims;
    private Action<int>? work;
    private int generation;
    private int pending;
    private volatile bool done;
    private Exception? failure;

    /// <summary>Forms a team whatever the work, on this thread only: for the tests of bit-equality on small cases.</summary>
    [ThreadStatic]
    internal static bool Always;

    private Team(Helper[] helpers)
    {
        this.helpers = helpers;
        Size = helpers.Length + 1;
        claims = new int[Size];
        for (var i = 0; i < helpers.Length; i++) helpers[i].Join(this, i + 1);
    }

    /// <summary>The number of threads, the caller's included.</summary>
    public int Size { get; }

    /// <summary>
    /// A team of up to <paramref name="threads"/> threads for one chunk of a call whose per-step recurrent work
    /// (G·n_a·n_a·m multiply-adds) is large enough to pay for it, with the helpers that are free; null when there is
    /// one thread, too little work or no free helper.
    /// </summary>
    public static Team? For(int threads, long work) => work < MinimumWork && !Always ? null : Of(threads);

    /// <summary>
    /// A team of up to <paramref name="threads"/> threads whatever the work, with the helpers that are free; null when
    /// there is one thread or no free helper. For work that is cut otherwise than in bands of rows: the layers of a
    /// stack, each on its own thread.
    /// </summary>
    public static Team? Of(int threads)
    {
        if (threads < 2) return null;
        var helpers = new List<Helper>();
        while (helpers.Count < threads - 1)
        {
            if (Idle.TryTake(out var helper)) helpers.Add(helper);
            else if (Interlocked.Increment(ref created) <= Environment.ProcessorCount) helpers.Add(new Helper());
            else
            {
                Interlocked.Decrement(ref created);
                break;
            }
        }
        return helpers.Count == 0 ? null : new Team([.. helpers]);
    }

    /// <summary>
    /// Runs <paramref name="body"/>(i) once for each i = 0..Size−1 and returns when all are done: i = 0 on the calling
    /// thread, each other i on its helper or, when the helper has not started it by the time band 0 is done, on the
    /// calling thread too. A band's exception is thrown once all are done (the first one caught), so no band of this
    /// run is still running when the next begins.
    /// </summary>
    public void Run(Action<int> body)
    {
        work = body;
        Volatile.Write(ref pending, Size - 1);
        var current = Interlocked.Increment(ref generation);
        try
        {
            body(0);
        }
        catch (Exception own)                                                                                  // thrown once every band is done
        {
            Interlocked.CompareExchange(ref failure, own, null);
        }
        for (var i = 1; i < Size; i++)
            if (Claim(i, current)) RunBand(body, i);                                                           // not started by its helper: the caller's
        var spin = new SpinWait();
        while (Volatile.Read(ref pending) != 0) spin.SpinOnce(sleep1Threshold: -1);
        if (Interlocked.Exchange(ref failure, null) is { } e) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e).Throw();
    }

    /// <summary>
    /// Rows [r0, r1) of <paramref name="rows"/> for member <paramref name="index"/>: bands of whole granules, as even as
    /// they can be, the last one taking the remainder.
    /// </summary>
    public (int Start, int End) Band(int rows, int index)
    {
        var granules = (rows + Granule - 1) / Granule;
        int Edge(int i) => Math.Min(rows, (int)((long)granules * i / Size) * Granule);
        return (Edge(index), index == Size - 1 ? rows : Edge(index + 1));
    }

    /// <summary>A helper's part of the team's work until the team is disposed.</summary>
    private void Serve(int index)
    {
        var seen = 0;
        var spin = new SpinWait();
        while (true)
        {
            var current = Volatile.Read(ref generation);
            if (current == seen)
            {
                if (done) return;
                spin.SpinOnce(sleep1Threshold: -1);
                continue;
            }
            spin.Reset();
            seen = current;
            BeforeClaim?.Invoke();
            if (Claim(index, current)) RunBand(work!, index);                                                  // else the caller took it
        }
    }

    /// <summary>
    /// Whether this thread is the first to claim band <paramref name="index"/> of generation <paramref name="current"/>.
    /// Claims only move forward: a helper that read a generation and was held up until a later run had begun finds the
    /// band claimed and leaves it.
    /// </summary>
    private bool Claim(int index, int current)
    {
        while (true)
        {
            var last = Volatile.Read(ref claims[index]);
            if (last >= current) return false;
            if (Interlocked.CompareExchange(ref claims[index], current, last) == last) return true;
        }
    }

    /// <summary>Band <paramref name="index"/> of <paramref name="body"/>; its exception is kept for the caller to throw.</summary>
    private void RunBand(Action<int> body, int index)
    {
        try
        {
            body(index);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref failure, e, null);
        }
        finally
        {
            Interlocked.Decrement(ref pending);
        }
    }

    /// <summary>Called by a helper when it sees a new band and before it claims it (null but in tests, which make helpers late with it).</summary>
    internal Action? BeforeClaim { get; set; }

    /// <summary>Ends the team: its helpers go back to waiting for another call.</summary>
    public void Dispose() => done = true;

    /// <summary>A background thread that serves one team at a time and waits, blocked, between teams.</summary>
    private sealed class Helper
    {
        private readonly SemaphoreSlim wake = new(0);
        private Team? team;
        private int index;

        // UnsafeStart: a helper lives longer than the computation that made it, so it takes none of its async context.
        public Helper() => new Thread(Loop) { IsBackground = true, Name = "RnnFunctional team helper" }.UnsafeStart();

        public void Join(Team t, int i)
        {
            (team, index) = (t, i);
            wake.Release();
        }

        private void Loop()
        {
            while (true)
            {
                wake.Wait();
                team!.Serve(index);
                team = null;
                Idle.Add(this);
            }
        }
    }
}
