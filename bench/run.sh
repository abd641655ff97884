#!/bin/sh
# run.sh: the recorder's CPU-overhead benchmark; `make bench` runs it as `sh bench/run.sh build`.
#
# Usage: sh bench/run.sh BUILD_DIR   (BUILD_DIR holds crashscope and libcrashscope.so)
# Environment: BENCH_RUNS   rounds, default 11 (each round runs every configuration once)
#              BENCH_UNITS  work per run for cpu_workload -n, default 9000000 (~1.8 s)
#
# Runs the same fixed CPU-bound work (bench/cpu_workload.c) without and with the recorder,
# alternating baseline and recorded runs, and prints medians and the median of the per-run
# overhead ratios. It is a benchmark, not a test: it reports figures and must never pass or
# fail on a timing, and it must never be registered with ctest. The method and the figures
# are in docs/BENCHMARKS.md.
set -eu

BUILD=${1:?usage: sh bench/run.sh BUILD_DIR}
RUNS=${BENCH_RUNS:-11}
UNITS=${BENCH_UNITS:-9000000}
case $RUNS in '' | *[!0-9]*) echo "run.sh: BENCH_RUNS must be a number" >&2; exit 2 ;; esac
case $UNITS in '' | *[!0-9]*) echo "run.sh: BENCH_UNITS must be a number" >&2; exit 2 ;; esac
[ "$RUNS" -ge 2 ] || { echo "run.sh: BENCH_RUNS must be at least 2" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "$BUILD" && pwd)
if [ ! -x "$BUILD/crashscope" ] || [ ! -f "$BUILD/libcrashscope.so" ]; then
	echo "run.sh: $BUILD/crashscope or libcrashscope.so missing; run 'make build' first" >&2
	exit 2
fi

# -O2 -g is how a program built for production with symbols looks; the frame pointers stay
# omitted, as they are by default, so the recorder has to unwind with the DWARF tables.
OUT=$BUILD/bench
mkdir -p "$OUT"
cc -std=c11 -O2 -g -Wall -Wextra -pthread -o "$OUT/cpu_workload" "$HERE/cpu_workload.c"
cc -std=c11 -O2 -g -Wall -Wextra -o "$OUT/measure" "$HERE/measure.c"
W=$OUT/cpu_workload
M=$OUT/measure

# Scratch space next to the build, on the same disk a user's database would be on
# (/tmp may be a tmpfs, which would make the recorder's writes look cheaper than they are).
T=$(mktemp -d "$OUT/run.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

# Measure one build from start to end: a copy of the CLI and the shim, side by side as in
# the build directory (crashscope run finds the shim next to itself), so that a rebuild
# while the benchmark runs cannot change the binaries half way through.
mkdir "$T/bin"
cp "$BUILD/crashscope" "$BUILD/libcrashscope.so" "$T/bin/"
CS=$T/bin/crashscope

# Only the settings each configuration names may reach the recorder: a CRASHSCOPE_* or
# Pyroscope alias left in the caller's environment would silently change what is measured.
for v in $(env | sed -n 's/^\(CRASHSCOPE_[A-Z_]*\)=.*/\1/p; s/^\(PYROSCOPE_[A-Z_]*\)=.*/\1/p'); do
	unset "$v"
done
unset LD_PRELOAD 2>/dev/null || true

# One run of configuration $1 in round $2: appends to results the line
#   seq round config wall user sys work_wall work_cpu own other steady_wall steady_cpu
#   steady_own steady_other
# wall, user, sys: measure's wait4() on everything the run started; the rest are the
# workload's own figures for its work and for the steady part of it (see cpu_workload.c).
SEQ=0
run_one() {
	cfg=$1
	db=$T/$cfg.db
	rm -rf "$db" "$db-wal" "$db-shm" "$db.crashes" # every run starts from an empty database
	: >"$T/one"
	# A run that fails makes every figure meaningless: stop, and show why.
	if ! case $cfg in
	base) "$M" "$T/one" "$W" -n "$UNITS" ;;
	off) CRASHSCOPE_ENABLED=0 "$M" "$T/one" "$CS" run --db "$db" -- "$W" -n "$UNITS" ;;
	cpu100) CRASHSCOPE_CPU_HZ=100 "$M" "$T/one" "$CS" run --db "$db" -- "$W" -n "$UNITS" ;;
	cpu100_nowall) CRASHSCOPE_CPU_HZ=100 CRASHSCOPE_WALL_HZ=0 \
		"$M" "$T/one" "$CS" run --db "$db" -- "$W" -n "$UNITS" ;;
	cpu1000) CRASHSCOPE_CPU_HZ=1000 "$M" "$T/one" "$CS" run --db "$db" -- "$W" -n "$UNITS" ;;
	base_t2) "$M" "$T/one" "$W" -t 2 -n "$UNITS" ;;
	cpu100_t2) CRASHSCOPE_CPU_HZ=100 "$M" "$T/one" "$CS" run --db "$db" -- "$W" -t 2 -n "$UNITS" ;;
	esac >"$T/out" 2>>"$T/stderr.$cfg"; then
		echo "run.sh: the $cfg run failed:" >&2
		tail -n 5 "$T/stderr.$cfg" >&2
		exit 1
	fi
	cat "$T/out" >>"$T/stdout.$cfg"
	read -r wall user sys <"$T/one"
	split=$(sed -n 's/.* work_wall_s=\([0-9.]*\) work_cpu_s=\([0-9.]*\) own_cpu_s=\([0-9.]*\) other_cpu_s=\([0-9.]*\) steady_wall_s=\([0-9.]*\) steady_cpu_s=\([0-9.]*\) steady_own_s=\([0-9.]*\) steady_other_s=\([0-9.]*\)$/\1 \2 \3 \4 \5 \6 \7 \8/p' "$T/out")
	[ -n "$split" ] || { echo "run.sh: $cfg: no figures from the workload" >&2; exit 1; }
	SEQ=$((SEQ + 1))
	echo "$SEQ $2 $cfg $wall $user $sys $split" >>"$T/results"
}

# The recorded single-threaded configurations; their order is rotated from round to round.
RECORDED="off cpu100 cpu100_nowall cpu1000"
NREC=4

echo "crashscope CPU-overhead benchmark: $RUNS rounds, $UNITS work units per run"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
	"Linux $(uname -r), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
echo "recorder: $BUILD, commit $(git -C "$HERE" describe --always --dirty 2>/dev/null || echo unknown)," \
	"libcrashscope.so built $(date -r "$BUILD/libcrashscope.so" '+%Y-%m-%d %H:%M:%S')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# Warm-up, discarded: page cache, the dynamic loader's caches, CPU frequency.
for cfg in base cpu100; do
	run_one "$cfg" 0
done
: >"$T/results"
SEQ=0
for cfg in base base_t2 $RECORDED cpu100_t2; do : >"$T/stdout.$cfg"; done

# Busy and steal time of the whole machine, in clock ticks, and the uptime: read before
# and after the rounds, to tell afterwards how much else was running (other processes
# make the figures noisier even though the CPU time measured is only the benchmark's own).
cpu_ticks() {
	read -r _ u n sy _ _ irq sirq st _ </proc/stat
	echo "$((u + n + sy + irq + sirq)) $st $(cut -d' ' -f1 /proc/uptime)"
}
before=$(cpu_ticks)

# A round is   base X1 base X2 base X3 base X4 base_t2 cpu100_t2
# and the last round is followed by one more base and base_t2, so every recorded run sits
# between two baseline runs and is compared with their mean: a machine that drifts
# (another job starting, heat) moves both sides of the comparison alike. X1..X4 rotate by
# one each round, so no configuration always runs first or last.
r=1
while [ "$r" -le "$RUNS" ]; do
	i=0
	while [ "$i" -lt "$NREC" ]; do
		# shellcheck disable=SC2086
		set -- $RECORDED
		shift $(((i + r) % NREC))
		run_one base "$r"
		run_one "$1" "$r"
		i=$((i + 1))
	done
	run_one base_t2 "$r"
	run_one cpu100_t2 "$r"
	# Progress only on a terminal: in a log it would be noise.
	if [ -t 2 ]; then printf '\rround %d/%d done' "$r" "$RUNS" >&2; fi
	r=$((r + 1))
done
run_one base "$RUNS" # the last recorded runs' second neighbours
run_one base_t2 "$RUNS"
if [ -t 2 ]; then echo >&2; fi
after=$(cpu_ticks)
echo "load average at end:   $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v b="$before" -v a="$after" -v hz="$(getconf CLK_TCK)" -v ncpu="$(nproc)" '
	{ own += $5 + $6 }
	END {
		split(b, x, " "); split(a, y, " "); el = y[3] - x[3]
		other = (y[1] - x[1]) / hz - own; if (other < 0) other = 0
		printf "rounds took %.0f s; besides the benchmark the machine was busy %.1f%% of %d CPUs, steal %.1f%%\n",
			el, 100 * other / (el * ncpu), ncpu, 100 * (y[2] - x[2]) / hz / (el * ncpu)
	}' "$T/results"

# The raw figures stay behind for a closer look (overwritten by the next benchmark).
{
	echo "# seq round config wall_s user_s sys_s work_wall_s work_cpu_s own_cpu_s other_cpu_s steady_wall_s steady_cpu_s steady_own_s steady_other_s"
	cat "$T/results"
} >"$OUT/last-results.txt"

# The same work must have been done in every run: one checksum per thread count.
for group in "base $RECORDED" "base_t2 cpu100_t2"; do
	n=$(for cfg in $group; do cat "$T/stdout.$cfg"; done |
		sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p' | sort -u | wc -l)
	[ "$n" -eq 1 ] || { echo "run.sh: $group: the workload's checksum varied between runs" >&2; exit 1; }
done

# What the recorder said it would do (the rates actually in force), from the first run.
for cfg in cpu100 cpu100_nowall cpu1000; do
	sed -n 's/^crashscope: recording .* (\(.*\))$/'"$cfg"': recorder settings: \1/p' \
		"$T/stderr.$cfg" | head -n 1
done

# Proof the recorder really recorded: the CPU samples in the last run of each recorded
# configuration, and the depth of their stacks (from the folded export).
for cfg in cpu100 cpu100_nowall cpu1000 cpu100_t2; do
	if "$CS" export --type cpu --format folded --db "$T/$cfg.db" -o "$T/$cfg.folded" 2>/dev/null; then
		awk -v cfg="$cfg" '{ n = split($1, f, ";"); s += $NF; if (n > hi) hi = n; if (lo == 0 || n < lo) lo = n }
			END { printf "%s: last run recorded %d cpu samples, stacks %d..%d frames deep\n", cfg, s, lo, hi }' \
			"$T/$cfg.folded"
	else
		echo "$cfg: could not export the last run's profile"
	fi
done

echo
awk '
function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function minof(a, n,    i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
function maxof(a, n,    i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
function pct(x) { return sprintf("%+.2f%%", 100 * x) }
function spread(a, n) { return sprintf("%s [%s..%s]", pct(median(a, n)), pct(minof(a, n)), pct(maxof(a, n))) }
# The interquartile range: where the middle half of the runs fall (a sorted by median()).
function quart(a, n, f,    x, i) { x = 1 + (n - 1) * f; i = int(x); return i >= n ? a[n] : a[i] + (x - i) * (a[i + 1] - a[i]) }
function iqr(a, n) { median(a, n); return sprintf("%s..%s", pct(quart(a, n, 0.25)), pct(quart(a, n, 0.75))) }
function ref(c) { return c ~ /_t2$/ ? "base_t2" : "base" }
# Start-up and exit costs of run s in CPU seconds: all that is not the work itself, plus
# what the recorder'"'"'s threads did during the work beyond their steady rate.
function fixed(s) { return (cpu[s] - work[s]) + (oth[s] - soth[s] * wwall[s] / swall[s]) }
# The baseline of run s: for each figure, the mean of the nearest runs of configuration k
# before and after it (just one of them at either end of the sequence), into b[].
function bracket(s, k,    p, q, n, f) {
	for (p = s - 1; p >= 1 && cfg[p] != k; p--) ;
	for (q = s + 1; q <= N && cfg[q] != k; q++) ;
	split("", b); n = 0
	if (p >= 1) { add(p); n++ }
	if (q <= N) { add(q); n++ }
	for (f in b) b[f] /= n
}
function add(p) {
	b["wall"] += wall[p]; b["cpu"] += cpu[p]; b["scpu"] += scpu[p]; b["sown"] += sown[p]
	b["soth"] += soth[p]; b["fixed"] += fixed(p)
}
# For configuration c: its medians (vw, vc) and, run by run, its ratios to the bracketing
# baselines: whole run (rw, rc), steady part (rs), its split (po, pr), fixed cost (pf).
function collect(c,    s) {
	nv = nr = 0
	for (s = 1; s <= N; s++) {
		if (cfg[s] != c) continue
		nv++; vw[nv] = wall[s]; vc[nv] = cpu[s]
		if (c == ref(c)) continue
		bracket(s, ref(c)); nr++
		rw[nr] = wall[s] / b["wall"] - 1; rc[nr] = cpu[s] / b["cpu"] - 1
		rs[nr] = scpu[s] / b["scpu"] - 1
		po[nr] = (sown[s] - b["sown"]) / b["scpu"]; pr[nr] = (soth[s] - b["soth"]) / b["scpu"]
		pf[nr] = 1000 * (fixed(s) - b["fixed"])
	}
}
function row(c, label,    cm, bm) {
	collect(ref(c)); bm = minof(vc, nv)
	collect(c); cm = minof(vc, nv)
	printf "%-13s %-33s %3d %7.3f %7.3f", c, label, nv, median(vw, nv), median(vc, nv)
	if (c == ref(c)) { printf "   %-27s %-27s %s\n", "(baseline)", "(baseline)", "(baseline)"; return }
	printf "   %-27s %-27s %s\n", spread(rw, nr), spread(rc, nr), pct(cm / bm - 1)
}
function steady(c, label,    sp) {
	collect(c)
	sp = spread(rs, nr)
	printf "%-13s %-33s %-27s %-17s %-10s %-10s %6.1f\n", c, label, sp, iqr(rs, nr), pct(median(po, nr)),
		pct(median(pr, nr)), median(pf, nr)
}
# Baseline against baseline: each run of k (but the first and last) against the mean of
# its neighbouring runs of k, as a recorded run is treated. This is the noise level.
function noise(k, label,    s, p, q, n) {
	n = 0
	for (s = 1; s <= N; s++) {
		if (cfg[s] != k) continue
		for (p = s - 1; p >= 1 && cfg[p] != k; p--) ;
		for (q = s + 1; q <= N && cfg[q] != k; q++) ;
		if (p < 1 || q > N) continue
		n++
		rw[n] = wall[s] / ((wall[p] + wall[q]) / 2) - 1
		rc[n] = cpu[s] / ((cpu[p] + cpu[q]) / 2) - 1
		rs[n] = scpu[s] / ((scpu[p] + scpu[q]) / 2) - 1
	}
	printf "%-13s %-33s %3d  wall %-27s cpu %s\n", k, label, n, spread(rw, n), spread(rc, n)
	printf "%-13s %-33s      steady cpu %s, middle half of the runs %s\n", "", "", spread(rs, n), iqr(rs, n)
}
{
	N++; cfg[N] = $3; wall[N] = $4; cpu[N] = $5 + $6; wwall[N] = $7; work[N] = $8; oth[N] = $10
	swall[N] = $11; scpu[N] = $12; sown[N] = $13; soth[N] = $14
}
END {
	print "whole runs, as the user pays them:"
	printf "%-13s %-33s %3s %7s %7s   %-27s %-27s %s\n", "config", "what", "n", "wall s", "cpu s",
		"wall overhead med [min..max]", "cpu overhead med [min..max]", "cpu best/best"
	row("base",          "no recorder, 1 thread")
	row("off",           "crashscope run, ENABLED=0")
	row("cpu100",        "recorder cpu 100 Hz, wall 97 Hz")
	row("cpu100_nowall", "recorder cpu 100 Hz, wall off")
	row("cpu1000",       "recorder cpu 1000 Hz, wall 97 Hz")
	row("base_t2",       "no recorder, 2 threads")
	row("cpu100_t2",     "2 threads, cpu 100 Hz, wall 97 Hz")
	print ""
	print "steady state (the work after its warm-up part) and the fixed cost per process:"
	printf "%-13s %-33s %-27s %-17s %-10s %-10s %s\n", "config", "what", "steady cpu overhead",
		"middle half", "in program", "in recorder", "fixed"
	printf "%-13s %-33s %-27s %-17s %-10s %-10s %s\n", "", "", "med [min..max]", "of the runs",
		"threads", "threads", "ms"
	steady("off",           "crashscope run, ENABLED=0")
	steady("cpu100",        "recorder cpu 100 Hz, wall 97 Hz")
	steady("cpu100_nowall", "recorder cpu 100 Hz, wall off")
	steady("cpu1000",       "recorder cpu 1000 Hz, wall 97 Hz")
	steady("cpu100_t2",     "2 threads, cpu 100 Hz, wall 97 Hz")
	print ""
	print "noise, each baseline run against the mean of its neighbouring baseline runs:"
	noise("base",    "no recorder, 1 thread")
	noise("base_t2", "no recorder, 2 threads")
	print ""
	print "wall s, cpu s: medians over n runs; cpu = user + system of the whole process tree, the"
	print "recorder'"'"'s threads, start-up and final flush included. overhead = a recorded run / the"
	print "mean of the baseline runs just before and after it - 1, median [min..max] over the runs;"
	print "best/best = fastest recorded run / fastest baseline run - 1. steady: the same for the"
	print "process cpu time of the work after its warm-up part; middle half: the interquartile range"
	print "of those ratios; then split into the program'"'"'s own threads (signal delivery, handler,"
	print "unwinding) and the recorder'"'"'s threads, in % of the baseline'"'"'s cpu. fixed ms: cpu outside"
	print "the work (start-up, exit, final flush, wrapper) plus the recorder threads'"'"' cpu during the"
	print "work beyond their steady rate, minus the baseline'"'"'s, median."
}' "$T/results"
