#!/usr/bin/env python3
# usage: [RNNF=/tmp/cli-fig/rnnf.dll] [OUT=/tmp/fig] [FROM=2] distributed-steps.py LABEL TRAIN-ARGS...
# Runs `rnnf train TRAIN-ARGS` (a --workers run, whose progress prints "step k/K" lines, at most one every 2 s) and
# prints, from the first step line at or after step FROM (2 unless set: the first step's grain activations and
# parameter copies left out; a later one leaves out more of the just-in-time compilation) to the last one: the wall time per step, and per step of the coordinator and of each worker it started the CPU
# seconds (utime + stime from /proc/PID/stat, read when each step line appears), with the system part and the minor
# page faults (minflt) after them, the load average (/proc/loadavg) before and after, and the run's own account of where
# its steps' time went (the "workers:" line of a --workers run). Linux only.
import os, re, subprocess, sys, time

label, args = sys.argv[1], sys.argv[2:]
dll, out = os.environ.get("RNNF", "/tmp/cli-fig/rnnf.dll"), os.environ.get("OUT", "/tmp/fig")
tick = os.sysconf("SC_CLK_TCK")

def stat(pid):
    """(utime + stime, stime) in seconds and minflt of a process; None when it is gone."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return ((int(fields[11]) + int(fields[12])) / tick, int(fields[12]) / tick, int(fields[7]))
    except OSError:
        return None

def children(pid):
    try:
        return [int(x) for x in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []

load = lambda: " ".join(open("/proc/loadavg").read().split()[:3])
before = load()
p = subprocess.Popen(["dotnet", dll, "train", *args, "--samples", "0", "--model", f"{out}/s-{label}.rnnf", "--plot", f"{out}/s-{label}.png"],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
snaps, done = [], ""
for line in p.stdout:
    m = re.match(r"step (\d+)/", line)
    if m:
        snaps.append((int(m.group(1)), time.time(), stat(p.pid), [stat(w) for w in children(p.pid)]))
    if line.startswith("done:"):
        done = line.strip()
    if line.startswith("workers:"):
        done += " | " + line.strip()
p.wait()
start = int(os.environ.get("FROM", "2"))
first = next((s for s in snaps if s[0] >= start), None)
if first is None or snaps[-1][0] <= first[0]:
    sys.exit(f"{label}: fewer than two step lines from step {start} on ({done or 'no done: line'})")
last, n = snaps[-1], snaps[-1][0] - first[0]
per = lambda a, b: ((b[0] - a[0]) / n, (b[1] - a[1]) / n, (b[2] - a[2]) / n)
show = lambda c: f"{c[0]:.3f} (sys {c[1]:.3f}, {c[2]:.0f} faults)"
workers = [per(a, b) for a, b in zip(first[3], last[3]) if a is not None and b is not None]
coordinator = per(first[2], last[2])
print(f"{label} | load before {before} after {load()} | steps {first[0]}..{last[0]}: wall {(last[1] - first[1]) / n:.3f} s/step, "
      f"CPU coordinator {show(coordinator)}, workers {', '.join(show(w) for w in workers)}, "
      f"total {coordinator[0] + sum(w[0] for w in workers):.3f} s/step | {done}")
