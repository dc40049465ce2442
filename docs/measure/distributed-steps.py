#!/usr/bin/env python3
# usage: [RNNF=/tmp/cli-fig/rnnf.dll] [OUT=/tmp/fig] distributed-steps.py LABEL TRAIN-ARGS...
# Runs `rnnf train TRAIN-ARGS` (a --workers run, whose progress prints a "step k/K" line per step) and prints, over
# steps 2..K (the first step's grain activations and parameter copies left out): the wall time per step and the CPU
# seconds per step (utime + stime from /proc/PID/stat, read when each step line appears) of the coordinator and of
# each worker it started, with the load average (/proc/loadavg) before and after. Linux only.
import os, re, subprocess, sys, time

label, args = sys.argv[1], sys.argv[2:]
dll, out = os.environ.get("RNNF", "/tmp/cli-fig/rnnf.dll"), os.environ.get("OUT", "/tmp/fig")
tick = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick
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
        snaps.append((int(m.group(1)), time.time(), cpu(p.pid), [cpu(w) for w in children(p.pid)]))
    if line.startswith("done:"):
        done = line.strip()
p.wait()
first = next((s for s in snaps if s[0] == 2), None)
if first is None or snaps[-1][0] <= 2:
    sys.exit(f"{label}: fewer than 3 step lines ({done or 'no done: line'})")
last, n = snaps[-1], snaps[-1][0] - 2
workers = [(b - a) / n for a, b in zip(first[3], last[3]) if a is not None and b is not None]
coordinator = (last[2] - first[2]) / n
print(f"{label} | load before {before} after {load()} | steps 2..{last[0]}: wall {(last[1] - first[1]) / n:.3f} s/step, "
      f"CPU coordinator {coordinator:.3f}, workers {' '.join(f'{w:.3f}' for w in workers)}, total {coordinator + sum(workers):.3f} s/step | {done}")
