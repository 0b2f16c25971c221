#!/bin/sh
# How many Ginkgo processes `make scenarios` runs (make test PROCS=N
# overrides): 3 where at least 1.5 CPUs are idle over 3 s — on two quiet
# cores 3 kept the CPU at 70-90 % (docs/testing.md) — else 2, else 1. A
# neighbour that keeps a core busy leaves a suite of 3 saturating the
# rest, and its verdicts then measure the machine. Says what it chose on
# stderr; prints 3 when /proc/stat cannot be read.
set -u
idle() { awk '/^cpu /{print $5+$6, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat 2>/dev/null; }
a=$(idle); sleep 3; b=$(idle)
if [ -z "$a" ] || [ -z "$b" ]; then echo 3; exit 0; fi
n=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
set -- $a $b
awk -v i1="$1" -v t1="$2" -v i2="$3" -v t2="$4" -v n="$n" 'BEGIN {
	d = t2 - t1; idle = (d > 0) ? n * (i2 - i1) / d : n
	p = (idle >= 1.5) ? 3 : (idle >= 0.75 ? 2 : 1)
	printf "%d\n", p
	printf "scenarios: %d Ginkgo processes (%.1f of %d CPUs idle over 3 s; make test PROCS=N to choose)\n", p, idle, n > "/dev/stderr"
}'
