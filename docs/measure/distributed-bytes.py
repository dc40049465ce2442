#!/usr/bin/env python3
# usage: distributed-bytes.py TRAIN-ARGS...   (RNNF=path/to/rnnf.dll, default /tmp/cli-fig/rnnf.dll)
"""Bytes on the coordinator's TCP connections during `rnnf train --workers N`: polls `ss -tinp` every 50 ms and keeps
the last bytes_sent / bytes_received of each connection owned by the coordinator process."""
import os, re, subprocess, sys, time
args = sys.argv[1:]
p = subprocess.Popen(["dotnet", os.environ.get("RNNF", "/tmp/cli-fig/rnnf.dll"), "train", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
conns = {}
pat = re.compile(r"pid=(\d+)")
while p.poll() is None:
    out = subprocess.run(["ss", "-tinpH", "state", "established"], capture_output=True, text=True).stdout
    lines = out.splitlines()
    for i, l in enumerate(lines):
        if f"pid={p.pid}," in l:
            f = l.split()
            key = (f[2], f[3])
            info = lines[i + 1] if i + 1 < len(lines) else ""
            s = re.search(r"bytes_sent:(\d+)", info); r = re.search(r"bytes_received:(\d+)", info)
            conns[key] = (int(s.group(1)) if s else 0, int(r.group(1)) if r else 0)
    time.sleep(0.05)
done = [l for l in p.stdout.read().splitlines() if "done:" in l]
print(done[-1] if done else "no done line")
sent = sum(v[0] for v in conns.values()); recv = sum(v[1] for v in conns.values())
print(f"connections {len(conns)}  coordinator sent {sent}  received {recv}")
for k, v in sorted(conns.items()): print("  ", k, v)
