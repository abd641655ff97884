#!/bin/sh
# run.sh: the recorder's CPU-overhead benchmark; `make bench` runs it as `sh bench/run.sh build`.
#
# Usage: sh bench/run.sh BUILD_DIR   (BUILD_DIR holds crashscope and libcrashscope.so)
# Environment: BENCH_RUNS   rounds, default 11 (each round runs every configuration once)
#              BENCH_UNITS  work per run for cpu_workload -n, default its own (~2.5 s)
#
# Runs the same fixed CPU-bound work (bench/cpu_workload.c) without and with the recorder,
# interleaved, and prints medians and the median of the per-round overhead ratios. It is a
# benchmark, not a test: it reports figures and must never pass or fail on a timing, and it
# must never be registered with ctest. The method is described in docs/BENCHMARKS.md.
set -eu

BUILD=${1:?usage: sh bench/run.sh BUILD_DIR}
RUNS=${BENCH_RUNS:-11}
UNITS=${BENCH_UNITS:-}
case $RUNS in '' | *[!0-9]*) echo "run.sh: BENCH_RUNS must be a number" >&2; exit 2 ;; esac
[ "$RUNS" -ge 2 ] || { echo "run.sh: BENCH_RUNS must be at least 2" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "$BUILD" && pwd)
CS=$BUILD/crashscope
[ -x "$CS" ] && [ -f "$BUILD/libcrashscope.so" ] || {
	echo "run.sh: $CS or libcrashscope.so missing; run 'make build' first" >&2
	exit 2
}

# The same flags for both binaries; -O2 -g is how a program built for production with
# symbols looks, and the frame pointers stay omitted (the recorder unwinds with DWARF).
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

# Only the settings each configuration names may reach the recorder: a CRASHSCOPE_* or
# Pyroscope alias left in the caller's environment would silently change what is measured.
for v in $(env | sed -n 's/^\(CRASHSCOPE_[A-Z_]*\)=.*/\1/p; s/^\(PYROSCOPE_[A-Z_]*\)=.*/\1/p'); do
	unset "$v"
done
unset LD_PRELOAD 2>/dev/null || true

WARGS=${UNITS:+-n $UNITS}

# One run of configuration $1, in round $2: appends to results the line
#   round config wall user sys work_cpu own_cpu other_cpu
# wall, user, sys: measure's wait4() on everything the run started; the last three are the
# workload's own split of the CPU used during its work (see cpu_workload.c).
run_one() {
	cfg=$1
	db=$T/$cfg.db
	rm -f "$db" "$db-wal" "$db-shm" # every recorded run starts from an empty database
	: >"$T/one"
	# shellcheck disable=SC2086
	case $cfg in
	base) "$M" "$T/one" "$W" $WARGS ;;
	off) CRASHSCOPE_ENABLED=0 "$M" "$T/one" "$CS" run --db "$db" -- "$W" $WARGS ;;
	cpu100) CRASHSCOPE_CPU_HZ=100 "$M" "$T/one" "$CS" run --db "$db" -- "$W" $WARGS ;;
	cpu100_nowall) CRASHSCOPE_CPU_HZ=100 CRASHSCOPE_WALL_HZ=0 \
		"$M" "$T/one" "$CS" run --db "$db" -- "$W" $WARGS ;;
	cpu1000) CRASHSCOPE_CPU_HZ=1000 "$M" "$T/one" "$CS" run --db "$db" -- "$W" $WARGS ;;
	base_t2) "$M" "$T/one" "$W" -t 2 $WARGS ;;
	cpu100_t2) CRASHSCOPE_CPU_HZ=100 "$M" "$T/one" "$CS" run --db "$db" -- "$W" -t 2 $WARGS ;;
	esac >"$T/out" 2>>"$T/stderr.$cfg"
	cat "$T/out" >>"$T/stdout.$cfg"
	read -r wall user sys <"$T/one"
	split=$(sed -n 's/.*work_cpu_s=\([0-9.]*\) own_cpu_s=\([0-9.]*\) other_cpu_s=\([0-9.]*\).*/\1 \2 \3/p' "$T/out")
	[ -n "$split" ] || { echo "run.sh: $cfg: no figures from the workload" >&2; exit 1; }
	echo "$2 $cfg $wall $user $sys $split" >>"$T/results"
}

CONFIGS="base off cpu100 cpu100_nowall cpu1000 base_t2 cpu100_t2"
NCONF=7

echo "crashscope CPU-overhead benchmark: $RUNS rounds of: $CONFIGS"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
	"Linux $(uname -r), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# Warm-up, discarded: page cache, the dynamic loader's caches, CPU frequency.
for cfg in base cpu100; do
	run_one "$cfg" 0
done
: >"$T/results"
for cfg in $CONFIGS; do : >"$T/stdout.$cfg"; done

# Busy and steal time of the whole machine, in clock ticks, and the uptime: read before
# and after the rounds, to tell afterwards how much else was running (other processes
# make the figures noisier even though the CPU time measured is only the benchmark's own).
cpu_ticks() {
	read -r _ u n sy _ _ irq sirq st _ </proc/stat
	echo "$((u + n + sy + irq + sirq)) $st $(cut -d' ' -f1 /proc/uptime)"
}
before=$(cpu_ticks)

# Rounds: every configuration once per round, the order rotated by one each round, so that
# each configuration runs as often early as late in a round, and a slow drift of the machine
# (another job, heat) falls on all of them alike instead of on whichever always runs last.
r=1
while [ "$r" -le "$RUNS" ]; do
	i=0
	order=""
	while [ "$i" -lt "$NCONF" ]; do
		# shellcheck disable=SC2086
		set -- $CONFIGS
		shift $(((i + r) % NCONF))
		order="$order $1"
		i=$((i + 1))
	done
	for cfg in $order; do
		run_one "$cfg" "$r"
	done
	# Progress only on a terminal: in a log it would be noise.
	if [ -t 2 ]; then printf '\rround %d/%d done' "$r" "$RUNS" >&2; fi
	r=$((r + 1))
done
if [ -t 2 ]; then echo >&2; fi
after=$(cpu_ticks)
echo "load average at end:   $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v b="$before" -v a="$after" -v hz="$(getconf CLK_TCK)" -v ncpu="$(nproc)" '
	{ own += $4 + $5 }
	END {
		split(b, x, " "); split(a, y, " "); el = y[3] - x[3]
		other = (y[1] - x[1]) / hz - own; if (other < 0) other = 0
		printf "rounds took %.0f s; besides the benchmark the machine was busy %.1f%% of %d CPUs, steal %.1f%%\n",
			el, 100 * other / (el * ncpu), ncpu, 100 * (y[2] - x[2]) / hz / (el * ncpu)
	}' "$T/results"

# The raw figures stay behind for a closer look (overwritten by the next benchmark).
{
	echo "# round config wall_s user_s sys_s work_cpu_s own_cpu_s other_cpu_s (in run order)"
	cat "$T/results"
} >"$OUT/last-results.txt"

# The same work must have been done in every run: one checksum per thread count.
for cfg in $CONFIGS; do
	n=$(sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p' "$T/stdout.$cfg" | sort -u | wc -l)
	[ "$n" -eq 1 ] || { echo "run.sh: $cfg: the workload's checksum varied between runs" >&2; exit 1; }
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
awk -v runs="$RUNS" '
function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function minof(a, n,    i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
function maxof(a, n,    i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
function pct(x) { return sprintf("%+.2f%%", 100 * x) }
function spread(a, n) { return sprintf("%s [%s..%s]", pct(median(a, n)), pct(minof(a, n)), pct(maxof(a, n))) }
# Ratios of configuration c to configuration ref, round by round (lag 0), or to ref one
# round earlier (lag 1: with c = ref, the baseline-against-baseline noise). Into rr[].
function ratios(v, c, ref, lag,    r, n) {
	n = 0
	for (r = 1 + lag; r <= runs; r++) rr[++n] = v[c, r] / v[ref, r - lag] - 1
	return n
}
# Column x of configuration c over all rounds, into col[].
function column(v, c,    r, n) { n = 0; for (r = 1; r <= runs; r++) col[++n] = v[c, r]; return n }
function row(c, ref, label,    n, wmed, cmed, w, k, b) {
	n = column(wall, c); wmed = median(col, n)
	n = column(cpu, c);  cmed = median(col, n)
	printf "%-13s %-32s %7.3f %7.3f", c, label, wmed, cmed
	if (ref == "") { printf "   %-27s %-27s %s\n", "(baseline)", "(baseline)", "(baseline)"; return }
	n = ratios(wall, c, ref, 0); w = spread(rr, n)
	n = ratios(cpu, c, ref, 0);  k = spread(rr, n)
	n = column(cpu, c); b = minof(col, n); n = column(cpu, ref); b = b / minof(col, n) - 1
	printf "   %-27s %-27s %s\n", w, k, pct(b)
}
# Where the extra CPU of configuration c goes, each part per round as a share of the
# round'"'"'s baseline CPU, then the median over rounds (so the parts need not add up exactly).
function parts(c, ref, label,    r, n1, n2, n3) {
	n1 = n2 = n3 = 0
	for (r = 1; r <= runs; r++) {
		p1[++n1] = (own[c, r] - own[ref, r]) / cpu[ref, r]
		p2[++n2] = (other[c, r] - other[ref, r]) / cpu[ref, r]
		p3[++n3] = ((cpu[c, r] - work[c, r]) - (cpu[ref, r] - work[ref, r])) / cpu[ref, r]
	}
	printf "%-13s %-32s %-9s %-9s %s\n", c, label, pct(median(p1, n1)), pct(median(p2, n2)), pct(median(p3, n3))
}
{ wall[$2, $1] = $3; cpu[$2, $1] = $4 + $5; work[$2, $1] = $6; own[$2, $1] = $7; other[$2, $1] = $8 }
END {
	printf "%-13s %-32s %7s %7s   %-27s %-27s %s\n", "config", "what", "wall s", "cpu s",
		"wall overhead med [min..max]", "cpu overhead med [min..max]", "cpu best/best"
	row("base",          "",        "no recorder, 1 thread")
	row("off",           "base",    "crashscope run, ENABLED=0")
	row("cpu100",        "base",    "recorder cpu 100 Hz, wall 97 Hz")
	row("cpu100_nowall", "base",    "recorder cpu 100 Hz, wall off")
	row("cpu1000",       "base",    "recorder cpu 1000 Hz, wall 97 Hz")
	row("base_t2",       "",        "no recorder, 2 threads")
	row("cpu100_t2",     "base_t2", "2 threads, cpu 100 Hz, wall 97 Hz")
	print ""
	print "noise: each baseline against the previous round'"'"'s baseline (" runs - 1 " ratios), med [min..max]:"
	n = ratios(wall, "base", "base", 1);       printf "  base     wall %-27s", spread(rr, n)
	n = ratios(cpu, "base", "base", 1);        printf " cpu %s\n", spread(rr, n)
	n = ratios(wall, "base_t2", "base_t2", 1); printf "  base_t2  wall %-27s", spread(rr, n)
	n = ratios(cpu, "base_t2", "base_t2", 1);  printf " cpu %s\n", spread(rr, n)
	print ""
	print "where the extra cpu goes, median per round, as a share of the baseline'"'"'s cpu:"
	printf "%-13s %-32s %-9s %-9s %s\n", "config", "", "program", "recorder", "outside"
	printf "%-13s %-32s %-9s %-9s %s\n", "", "", "threads", "threads", "the work"
	parts("off",           "base",    "crashscope run, ENABLED=0")
	parts("cpu100",        "base",    "recorder cpu 100 Hz, wall 97 Hz")
	parts("cpu100_nowall", "base",    "recorder cpu 100 Hz, wall off")
	parts("cpu1000",       "base",    "recorder cpu 1000 Hz, wall 97 Hz")
	parts("cpu100_t2",     "base_t2", "2 threads, cpu 100 Hz, wall 97 Hz")
	print ""
	print "wall s, cpu s: medians over " runs " runs; cpu = user + system of the whole process tree,"
	print "the recorder'"'"'s threads, start-up and final flush included. overhead = recorded / baseline"
	print "- 1 in the same round, median [min..max] over the rounds; best/best = fastest recorded"
	print "run against fastest baseline run. program threads: the workload'"'"'s own threads (signal"
	print "delivery, handler, unwinding); recorder threads: its other threads during the work;"
	print "outside the work: start-up, exit, final flush, the crashscope run wrapper."
}' "$T/results"
