#!/bin/bash
# usage: [PRE="taskset -c 0 env RNNFUNCTIONAL_THREADS=1"] distributed-time.sh LABEL REPEATS -- TRAIN-ARGS...
# prints the load average (/proc/loadavg) before and after each run and the "done:" line of `rnnf train`
label=$1; n=$2; shift 3
for r in $(seq 1 $n); do
  l1=$(cut -d' ' -f1-3 /proc/loadavg)
  line=$($PRE dotnet ${RNNF:-/tmp/cli-fig/rnnf.dll} train "$@" --samples 0 --model ${OUT:-/tmp/fig}/t-$label.rnnf --plot ${OUT:-/tmp/fig}/t-$label.png 2>&1 | grep -a "done:")
  l2=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "$label run $r | load before $l1 after $l2 | $line"
done
