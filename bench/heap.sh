#!/bin/sh
# heap.sh BUILD_DIR: the allocation sampler's cost on a malloc-heavy program, next to heaptrack.
#
# Part 1 runs bench/malloc_workload.c (BENCH_HEAP_THREADS threads, default 4; blocks of 16-512
# bytes) in two forms: the allocator alone ("bare": malloc/free and nothing else, the worst
# case for any interposer) and a program that uses its blocks ("used": each written whole and
# read). Each form runs in rounds of: no recorder, `crashscope run` with its defaults
# (allocation sampling every 512 KiB on average, cpu 100 Hz, wall 97 Hz), and `crashscope run`
# with CRASHSCOPE_HEAP_SAMPLE_BYTES=0 (the rest of the recorder only), the order rotating.
# Throughput is that of the steady part (from 2 s after the start, past the recorder's
# start-up, until the first thread is done; runs of ~6 s): what a recording of hours sees.
# Prints, per form and recorder, the median throughput, the median per-round ratio to the run
# without the recorder and its middle half; the CPU time per pair likewise (all threads of the
# process, and the worker threads alone: what the interposer and the samples cost the threads
# that allocate); and the whole run's throughput ratio (start-up included).
# heaptrack (which records every allocation), when installed, runs BENCH_HEAPTRACK_RUNS
# rounds (default 3) of a smaller run of each form next to a run without it, being ~50x slower.
# Figures only: no pass or fail on a timing.
#
# BENCH_RUNS rounds (default 9); BENCH_HEAP_FORMS "bare used" (default), or one of them;
# BENCH_HEAP_OPS / BENCH_HEAP_FILL_OPS pairs per thread (defaults 150000000 / 60000000).
set -eu
BUILD=${1:-build}
RUNS=${BENCH_RUNS:-9}
THREADS=${BENCH_HEAP_THREADS:-4}
FORMS=${BENCH_HEAP_FORMS:-bare used}
HT_RUNS=${BENCH_HEAPTRACK_RUNS:-3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
cc -O2 -g -pthread -o "$T/mw" bench/malloc_workload.c
echo "crashscope allocation-sampling benchmark: $RUNS rounds, $THREADS threads, forms: $FORMS"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
ops_of() { if [ "$1" = used ]; then echo "${BENCH_HEAP_FILL_OPS:-60000000}"; else echo "${BENCH_HEAP_OPS:-150000000}"; fi; }
fill_of() { if [ "$1" = used ]; then echo fill; else echo nofill; fi; }
run() { # FORM CONFIG [ab]: one run (of round $r), its figures appended to $T/FORM.CONFIG
	# (FORM.ab_CONFIG for the in-process A/B of part 1b, a twelfth of the work)
	f=$1 c=$2 ab=${3:-} ops=$(ops_of "$1")
	[ -z "$ab" ] || ops=$((ops / 12))
	set -- "$T/mw" "$THREADS" "$ops" "$(fill_of "$f")" 2 $ab
	rm -rf "$T/db"*
	case $c in
	base) "$@" ;;
	rec) "$BUILD/crashscope" run --db "$T/db" -- "$@" 2>/dev/null ;;
	noheap) CRASHSCOPE_HEAP_SAMPLE_BYTES=0 "$BUILD/crashscope" run --db "$T/db" -- "$@" 2>/dev/null ;;
	esac | sed "s/^/round$r /" >>"$T/$f.${ab:+ab_}$c"
}
for r in $(seq 1 "$RUNS"); do
	for f in $FORMS; do
		case $((r % 3)) in
		0) run "$f" base; run "$f" rec; run "$f" noheap ;;
		1) run "$f" rec; run "$f" noheap; run "$f" base ;;
		2) run "$f" noheap; run "$f" base; run "$f" rec ;;
		esac
	done
done
# heaptrack last and apart: its trace is still being compressed after the program ends, and
# would slow whatever ran next. Whole runs (it has no steady part worth the name).
if command -v heaptrack >/dev/null 2>&1; then
	for r in $(seq 1 "$HT_RUNS"); do
		for f in $FORMS; do
			ops=$(($(ops_of "$f") / 40))
			"$T/mw" "$THREADS" "$ops" "$(fill_of "$f")" 2 | sed "s/^/round$r /" >>"$T/$f.htbase"
			(cd "$T" && heaptrack -o "$T/ht" "$T/mw" "$THREADS" "$ops" "$(fill_of "$f")" 2 \
				>"$T/ht.out" 2>/dev/null) || true
			sed -n "s/^\(work_\|workers_\|checksum\)/round$r &/p" "$T/ht.out" >>"$T/$f.ht"
			rm -f "$T"/ht.*.zst "$T"/ht.*.gz
			sleep 2
		done
	done
fi
python3 - "$T" "$FORMS" <<'PY'
import collections, os, statistics, sys
t, forms = sys.argv[1], sys.argv[2].split()

def load(name):
    """round -> {key: value} for one form and configuration"""
    runs = collections.defaultdict(dict)
    p = os.path.join(t, name)
    if os.path.exists(p):
        for l in open(p):
            a = l.split()
            if len(a) == 3:
                runs[a[0]][a[1]] = float(a[2])
    return runs

def mid(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[len(xs) // 4], xs[(3 * len(xs)) // 4]

def pct(x):
    return "%+.1f%% (middle half %+.1f..%+.1f)" % x

for form in forms:
    base = load(form + ".base")
    if not base:
        continue
    sums = {r["checksum"] for f in ("base", "rec", "noheap") for r in load(form + "." + f).values()}
    assert len(sums) == 1, "runs did different work"
    print()
    print("%s: %s" % (form, "blocks written whole and read" if form == "used"
                      else "malloc/free and nothing else"))
    tp = lambda r: r["steady_pairs"] / r["steady_wall_s"]
    cpu = lambda r: r["steady_cpu_s"] / r["steady_pairs"] * 1e9
    wk = lambda r: r["steady_workers_cpu_s"] / r["steady_pairs"] * 1e9
    ok = [k for k in base if "steady_pairs" in base[k]]
    if not ok:
        print("  (the runs ended before their warm-up did: no steady part; more BENCH_HEAP_OPS)")
        continue
    print("  %-34s steady %6.1f Mpairs/s, %5.1f ns CPU a pair (workers %.1f)" % (
        "no recorder", statistics.median(tp(base[k]) for k in ok) / 1e6,
        statistics.median(cpu(base[k]) for k in ok), statistics.median(wk(base[k]) for k in ok)))
    for name, f in (("crashscope (defaults)", "rec"), ("crashscope, allocation sampling off", "noheap")):
        x = load(form + "." + f)
        ks = [k for k in ok if k in x and "steady_pairs" in x[k]]
        if not ks:
            continue
        print("  %-34s steady %6.1f Mpairs/s, throughput %s" % (
            name, statistics.median(tp(x[k]) for k in ks) / 1e6,
            pct(mid([100 * (tp(x[k]) / tp(base[k]) - 1) for k in ks]))))
        print("  %-34s CPU a pair %+.1f%%, the workers' %s" % (
            "", mid([100 * (cpu(x[k]) / cpu(base[k]) - 1) for k in ks])[0],
            pct(mid([100 * (wk(x[k]) / wk(base[k]) - 1) for k in ks]))))
        print("  %-34s whole run (start-up included): throughput %s" % (
            "", pct(mid([100 * (base[k]["work_wall_s"] / x[k]["work_wall_s"] - 1) for k in ks]))))
    a = [100 * (tp(base[ok[i + 1]]) / tp(base[ok[i]]) - 1) for i in range(len(ok) - 1)]
    if a:
        print("  noise (each run without the recorder vs the next): %s" % pct(mid(a)))
    hb, ht = load(form + ".htbase"), load(form + ".ht")
    ks = [k for k in ht if k in hb]
    if ks:
        print("  %-34s whole run (%d rounds, 1/40 of the work): throughput %s" % (
            "heaptrack", len(ks),
            pct(mid([100 * (hb[k]["work_wall_s"] / ht[k]["work_wall_s"] - 1) for k in ks]))))
    elif not ht:
        print("  %-34s (not run: not installed)" % "heaptrack")
PY

# Part 1b: the same workload, each thread alternating batches of 32768 pairs through the
# program's malloc/free (crashscope's, when preloaded) and through glibc's own entry points
# (__libc_malloc, ...: never interposed), each timed on the thread's CPU clock
# (malloc_workload's "ab"). The machine's moods (this VM's two cores at times ran at half
# each other's speed; another tenant of the host) slow both halves alike, so the ratio is
# steady to a few tenths of a percent where the end-to-end figures above swing by several
# percent. What it leaves out: the recorder's threads (the end-to-end CPU a pair has them),
# and the cpu and wall samples, which land on both halves. "no recorder" shows the method's
# own bias (both halves are glibc's then).
AB_RUNS=${BENCH_AB_RUNS:-9}
for f in $FORMS; do
	for r in $(seq 1 "$AB_RUNS"); do
		for c in base rec noheap; do run "$f" "$c" ab; done
	done
done
python3 - "$T" "$FORMS" <<'PY'
import os, statistics, sys
t, forms = sys.argv[1], sys.argv[2].split()
print()
print("in-process A/B: a pair through the program's allocator functions vs glibc's own, "
      "worker threads' CPU, median of the runs (all runs)")
for form in forms:
    for name, c in (("no recorder (the method's bias)", "base"), ("crashscope (defaults)", "rec"),
                    ("crashscope, allocation sampling off", "noheap")):
        p = os.path.join(t, form + ".ab_" + c)
        if not os.path.exists(p):
            continue
        prog = [float(l.split()[2]) for l in open(p) if l.split()[1] == "ab_program_ns"]
        glibc = [float(l.split()[2]) for l in open(p) if l.split()[1] == "ab_glibc_ns"]
        r = [100 * (a / b - 1) for a, b in zip(prog, glibc)]
        if r:
            print("  %-5s %-36s %+6.2f%%  (%.2f vs %.2f ns; %s)" % (
                form, name, statistics.median(r), statistics.median(prog),
                statistics.median(glibc), " ".join("%+.1f" % x for x in r)))
PY

# Part 2: one malloc + free, single-threaded, steady state (bench/malloc_pairs.c): what the
# interposer costs per call, without the noise of glibc's arenas under four threads. The
# recorder's cpu and wall sampling are off here, so only the allocation path is measured.
# The pairs all run on the same core (see malloc_pairs.c).
cc -O2 -o "$T/mp" bench/malloc_pairs.c
CPU=$(($(nproc) - 1))
PAIRS=${BENCH_PAIRS:-50000000}
: >"$T/p_base"
: >"$T/p_pass"
: >"$T/p_on"
for r in $(seq 1 "$RUNS"); do
	"$T/mp" "$PAIRS" "$CPU" >>"$T/p_base"
	CRASHSCOPE_DB="$T/pdb" CRASHSCOPE_CPU_HZ=0 CRASHSCOPE_WALL_HZ=0 CRASHSCOPE_HEAP_SAMPLE_BYTES=0 \
		LD_PRELOAD="$BUILD/libcrashscope.so" "$T/mp" "$PAIRS" "$CPU" >>"$T/p_pass"
	rm -rf "$T/pdb"*
	CRASHSCOPE_DB="$T/pdb" CRASHSCOPE_CPU_HZ=0 CRASHSCOPE_WALL_HZ=0 \
		LD_PRELOAD="$BUILD/libcrashscope.so" "$T/mp" "$PAIRS" "$CPU" >>"$T/p_on"
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
