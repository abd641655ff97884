#!/bin/sh
# heap.sh BUILD_DIR: the allocation sampler's cost on a malloc-heavy program, next to heaptrack.
#
# Runs bench/malloc_workload.c (BENCH_HEAP_THREADS threads, default 4; BENCH_HEAP_OPS
# malloc/free pairs each, default 20000000; blocks of 16-512 bytes) in rounds of: no recorder,
# `crashscope run` with its defaults (allocation sampling every 512 KiB on average, cpu 100 Hz,
# wall 97 Hz), `crashscope run` with CRASHSCOPE_HEAP_SAMPLE_BYTES=0 (the rest of the recorder
# only), and, when installed, heaptrack (which records every allocation; it runs only
# BENCH_HEAPTRACK_RUNS rounds, default 3, being slow). Prints, for each, the median work
# throughput (pairs per second of wall time) and the median per-round ratio to the run without
# the recorder, and the CPU time per pair likewise (all threads of the process, and the worker
# threads alone: what the interposer costs the threads that allocate). Figures only:
# no pass or fail on a timing.
set -eu
BUILD=${1:-build}
RUNS=${BENCH_RUNS:-9}
THREADS=${BENCH_HEAP_THREADS:-4}
OPS=${BENCH_HEAP_OPS:-20000000}
HT_RUNS=${BENCH_HEAPTRACK_RUNS:-3}
# BENCH_HEAP_FILL=1: each block is written whole and read (a program that uses its memory)
FILL=$([ "${BENCH_HEAP_FILL:-0}" = 1 ] && echo fill || true)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
cc -O2 -g -pthread -o "$T/mw" bench/malloc_workload.c
echo "crashscope allocation-sampling benchmark: $RUNS rounds, $THREADS threads x $OPS malloc/free pairs${FILL:+, blocks filled}"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
run_base() { "$T/mw" "$THREADS" "$OPS" $FILL >>"$T/base"; }
run_rec() {
	rm -rf "$T/db"*
	"$BUILD/crashscope" run --db "$T/db" -- "$T/mw" "$THREADS" "$OPS" $FILL >>"$T/rec" 2>/dev/null
}
run_noheap() {
	rm -rf "$T/db"*
	CRASHSCOPE_HEAP_SAMPLE_BYTES=0 "$BUILD/crashscope" run --db "$T/db" -- \
		"$T/mw" "$THREADS" "$OPS" $FILL >>"$T/noheap" 2>/dev/null
}
# The order rotates every round, so that none of the three always follows the same one.
for r in $(seq 1 "$RUNS"); do
	case $((r % 3)) in
	0) run_base; run_rec; run_noheap ;;
	1) run_rec; run_noheap; run_base ;;
	2) run_noheap; run_base; run_rec ;;
	esac
done
# heaptrack last and apart: its trace is still being compressed after the program ends, and
# would slow whatever ran next.
if command -v heaptrack >/dev/null 2>&1; then
	for r in $(seq 1 "$HT_RUNS"); do
		(cd "$T" && heaptrack -o "$T/ht" "$T/mw" "$THREADS" "$OPS" $FILL >>"$T/ht.out" 2>/dev/null)
		grep -E '^(work_wall_s|work_cpu_s|workers_cpu_s|checksum)' "$T/ht.out" >>"$T/ht" || true
		: >"$T/ht.out"
		rm -f "$T"/ht.*.zst "$T"/ht.*.gz
		sleep 2
	done
fi
python3 - "$T" "$THREADS" "$OPS" <<'PY'
import statistics, sys, os
t, threads, ops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pairs = threads * ops
def col(f, key):
    p = os.path.join(t, f)
    if not os.path.exists(p):
        return []
    return [float(l.split()[1]) for l in open(p) if l.startswith(key)]
sums = set()
for f in ("base", "rec", "noheap", "ht"):
    p = os.path.join(t, f)
    if os.path.exists(p):
        sums |= {l for l in open(p) if l.startswith("checksum")}
assert len(sums) == 1, "runs did different work"
bw, bc, bt = col("base", "work_wall_s"), col("base", "work_cpu_s"), col("base", "workers_cpu_s")
print("%-36s %9s %8s %12s %8s %14s %8s" % ("", "Mpairs/s", "vs none", "CPU ns/pair", "vs none",
                                          "workers ns/pr", "vs none"))
print("%-36s %9.2f %8s %12.1f %8s %14.1f" % ("no recorder", pairs / statistics.median(bw) / 1e6, "",
                                             statistics.median(bc) / pairs * 1e9, "",
                                             statistics.median(bt) / pairs * 1e9))
for name, f in (("crashscope (defaults)", "rec"), ("crashscope, allocation sampling off", "noheap"),
                ("heaptrack", "ht")):
    w, c, k = col(f, "work_wall_s"), col(f, "work_cpu_s"), col(f, "workers_cpu_s")
    if not w:
        print("%-36s (not run: not installed)" % name)
        continue
    # per-round ratios: each run against the run without the recorder of the same round
    rw = sorted(100 * (bw[i] / w[i] - 1) for i in range(len(w)))
    rc = sorted(100 * (c[i] / bc[i] - 1) for i in range(len(c)))
    rk = sorted(100 * (k[i] / bt[i] - 1) for i in range(len(k)))
    print("%-36s %9.2f %+7.1f%% %12.1f %+7.1f%% %14.1f %+7.1f%%"
          % (name, pairs / statistics.median(w) / 1e6, statistics.median(rw),
             statistics.median(c) / pairs * 1e9, statistics.median(rc),
             statistics.median(k) / pairs * 1e9, statistics.median(rk)))
    print("%-36s throughput middle half %+.1f%%..%+.1f%%" % ("", rw[len(rw) // 4], rw[(3 * len(rw)) // 4]))
a = sorted(100 * (bw[i + 1] / bw[i] - 1) for i in range(len(bw) - 1))
print("noise (each run without the recorder vs the next): median %+.1f%%, middle half %+.1f%%..%+.1f%%"
      % (statistics.median(a), a[len(a) // 4], a[(3 * len(a)) // 4]))
PY

# Part 2: one malloc + free, single-threaded, steady state (bench/malloc_pairs.c): what the
# interposer costs per call, without the noise of glibc's arenas under four threads. The
# recorder's cpu and wall sampling are off here, so only the allocation path is measured.
cc -O2 -o "$T/mp" bench/malloc_pairs.c
PAIRS=${BENCH_PAIRS:-50000000}
: >"$T/p_base"
: >"$T/p_pass"
: >"$T/p_on"
for r in $(seq 1 "$RUNS"); do
	"$T/mp" "$PAIRS" >>"$T/p_base"
	CRASHSCOPE_DB="$T/pdb" CRASHSCOPE_CPU_HZ=0 CRASHSCOPE_WALL_HZ=0 CRASHSCOPE_HEAP_SAMPLE_BYTES=0 \
		LD_PRELOAD="$BUILD/libcrashscope.so" "$T/mp" "$PAIRS" >>"$T/p_pass"
	rm -rf "$T/pdb"*
	CRASHSCOPE_DB="$T/pdb" CRASHSCOPE_CPU_HZ=0 CRASHSCOPE_WALL_HZ=0 \
		LD_PRELOAD="$BUILD/libcrashscope.so" "$T/mp" "$PAIRS" >>"$T/p_on"
	rm -rf "$T/pdb"*
done
python3 - "$T" "$PAIRS" <<'PY'
import statistics, sys
t = sys.argv[1]
def v(f):
    return [float(l.split()[1]) for l in open(t + "/" + f) if l.startswith("ns_per_pair")]
b, p, o = v("p_base"), v("p_pass"), v("p_on")
print("one malloc+free of 256 bytes, %s pairs, single thread, median of %d:" % (sys.argv[2], len(b)))
print("  no recorder                        %6.2f ns" % statistics.median(b))
for name, x in (("interposer only (sampling off)", p), ("sampling every 512 KiB (default)", o)):
    d = sorted(x[i] - b[i] for i in range(len(x)))
    print("  %-34s %6.2f ns  (+%.2f ns per pair, middle half %+.2f..%+.2f)"
          % (name, statistics.median(x), statistics.median(d), d[len(d) // 4], d[(3 * len(d)) // 4]))
PY
