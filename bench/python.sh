#!/bin/sh
# python.sh BUILD_DIR: the recorder's CPU overhead on a CPU-bound Python program.
#
# Runs bench/python_workload.py with Debian's python3 without the recorder, under
# `crashscope run` at 100 Hz CPU with the other defaults (wall 97 Hz, allocation sampling
# every 512 KiB), and the same with allocation sampling off, in rotating order, BENCH_RUNS
# rounds (default 11), and prints the median of the per-round ratios of the steady-state
# process CPU time (recorder threads included) and of the whole run's CPU (wait4, fixed costs
# included), and the recorder's cost measured in place (CRASHSCOPE_SELF_TIME=1) over whole
# runs and over their steady part (after the first 3 s of each process).
# BENCH_PAIRED=1 runs the first two at the same time, one per core, instead of one after the
# other (steadier against a drifting machine; needs two idle cores; no third configuration).
# Prints figures only: no pass or fail on a timing.
set -eu
BUILD=${1:-build}
RUNS=${BENCH_RUNS:-11}
UNITS=${BENCH_PY_UNITS:-60000}
PY=${BENCH_PYTHON:-/usr/bin/python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
cc -O2 -o "$T/measure" bench/measure.c
W=bench/python_workload.py
echo "crashscope Python overhead benchmark: $RUNS rounds, $UNITS units, $($PY -V 2>&1)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$T/base"
: >"$T/rec"
for r in $(seq 1 "$RUNS"); do
	rm -rf "$T/db"*
	if [ "${BENCH_PAIRED:-0}" = 1 ]; then
		# Both at once, one per core: a slowdown of the machine (a VM's neighbours) hits both
		# alike, so their ratio keeps what the recorder costs and loses most of the drift.
		env -u LD_PRELOAD "$T/measure" "$T/base.rusage" "$PY" "$W" "$UNITS" >"$T/b1" &
		CRASHSCOPE_CPU_HZ=100 "$T/measure" "$T/rec.rusage" "$BUILD/crashscope" run --db "$T/db" \
			-- "$PY" "$W" "$UNITS" >"$T/r1" 2>/dev/null &
		wait
		cat "$T/b1" >>"$T/base"
		cat "$T/r1" >>"$T/rec"
		continue
	fi
	run_base() { env -u LD_PRELOAD "$T/measure" "$T/base.rusage" "$PY" "$W" "$UNITS" >>"$T/base"; }
	run_rec() {
		rm -rf "$T/db"*
		CRASHSCOPE_CPU_HZ=100 CRASHSCOPE_SELF_TIME=1 "$T/measure" "$T/rec.rusage" \
			"$BUILD/crashscope" run --db "$T/db" -- "$PY" "$W" "$UNITS" >>"$T/rec" 2>>"$T/rec.err"
	}
	# the stack samplers alone: allocation sampling off
	run_stacks() {
		rm -rf "$T/db"*
		CRASHSCOPE_CPU_HZ=100 CRASHSCOPE_HEAP_SAMPLE_BYTES=0 CRASHSCOPE_SELF_TIME=1 \
			"$T/measure" "$T/stk.rusage" "$BUILD/crashscope" run --db "$T/db" \
			-- "$PY" "$W" "$UNITS" >>"$T/stk" 2>>"$T/stk.err"
	}
	# the order rotates every round, so that none of the three always follows the same one
	case $((r % 3)) in
	0) run_base; run_rec; run_stacks ;;
	1) run_rec; run_stacks; run_base ;;
	2) run_stacks; run_base; run_rec ;;
	esac
done
python3 - "$T" <<'PY'
import statistics, sys
t = sys.argv[1]
def steady(f):
    return [float(l.split()[1]) for l in open(f) if l.startswith("steady_cpu_s")]
def whole(f):
    return [float(l.split()[1]) + float(l.split()[2]) for l in open(f)]
import os
b, r = steady(t + "/base"), steady(t + "/rec")
wb, wr = whole(t + "/base.rusage"), whole(t + "/rec.rusage")
sums = set()
for f in ("base", "rec", "stk"):
    if os.path.exists(t + "/" + f):
        sums |= {l for l in open(t + "/" + f) if l.startswith("checksum")}
assert len(sums) == 1, "runs did different work"
def ratios(x, y):
    return sorted(100 * (y[i] / x[i] - 1) for i in range(min(len(x), len(y))))
def line(name, x, y):
    q = ratios(x, y)
    n = len(q)
    print("%-26s base %.3f s  recorded %.3f s  overhead median %+.2f%%  middle half %+.2f%%..%+.2f%%"
          % (name, statistics.median(x), statistics.median(y), statistics.median(q),
             q[n // 4], q[(3 * n) // 4]))
line("steady cpu (in-process)", b, r)
line("whole run cpu (wait4)", wb, wr)
import re
def in_place(err):
    """The CRASHSCOPE_SELF_TIME reports of a configuration: whole runs, and their steady part."""
    if not os.path.exists(err):
        return
    text = open(err).read()
    st = [m for m in re.finditer(r"self time over ([0-9.]+) s: sampling handler ([0-9.]+) ms.*"
                                 r"allocation samples ([0-9.]+) ms.*writer thread ([0-9.]+) ms, "
                                 r"wall ticker ([0-9.]+) ms; in all ([0-9.]+) ms, ([0-9.]+)%", text)]
    if st:
        med = lambda k: statistics.median(float(m.group(k)) / float(m.group(1)) for m in st)
        print("measured in place (CRASHSCOPE_SELF_TIME, whole runs, median of %d), ms per second: "
              "handler %.2f, allocation samples %.2f, writer %.2f, wall ticker %.2f; in all %.2f%% "
              "of one core" % (len(st), med(2), med(3), med(4), med(5),
                               statistics.median(float(m.group(7)) for m in st)))
    sd = [m for m in re.finditer(r"self time after the first (\d+) s \(([0-9.]+) s\): sampling "
                                 r"handler ([0-9.]+) ms/s, allocation samples ([0-9.]+) ms/s, "
                                 r"writer thread ([0-9.]+) ms/s, wall ticker ([0-9.]+) ms/s; in "
                                 r"all ([0-9.]+)%", text)]
    if sd:
        med = lambda k: statistics.median(float(m.group(k)) for m in sd)
        q = sorted(float(m.group(7)) for m in sd)
        print("measured in place, steady (after the first %s s, median of %d), ms per second: "
              "handler %.2f, allocation samples %.2f, writer %.2f, wall ticker %.2f; in all %.2f%% "
              "of one core (middle half %.2f%%..%.2f%%)"
              % (sd[0].group(1), len(sd), med(3), med(4), med(5), med(6), statistics.median(q),
                 q[len(q) // 4], q[(3 * len(q)) // 4]))
in_place(t + "/rec.err")
if os.path.exists(t + "/stk"):
    print("allocation sampling off (cpu 100 Hz and wall only):")
    line("steady cpu (in-process)", b, steady(t + "/stk"))
    line("whole run cpu (wait4)", wb, whole(t + "/stk.rusage"))
    in_place(t + "/stk.err")
a = ratios(b[:-1], b[1:])
print("noise (each base run vs the next): median %+.2f%%, middle half %+.2f%%..%+.2f%%"
      % (statistics.median(a), a[len(a) // 4], a[(3 * len(a)) // 4]))
PY
