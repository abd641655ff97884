#!/bin/sh
# test_pprof.sh: runs the already-built pprof unit test (tests/unit/test_pprof.c) and checks
# that Go's own pprof parses the profile it writes and shows the expected functions, values
# and labels.
#
# Usage: sh tests/unit/test_pprof.sh /path/to/test_pprof
#
# Compiles nothing. Must never touch the network or the caller's HOME / Go caches: all Go
# state lives in a temp dir that is removed on exit. Exits non-zero on any mismatch.
set -eu

bin=${1:?usage: test_pprof.sh TEST_BINARY}
[ -x "$bin" ] || { echo "test_pprof.sh: $bin is not an executable" >&2; exit 1; }
command -v go >/dev/null 2>&1 || {
	echo "test_pprof.sh: 'go' not found (install golang-go: scripts/deps.sh test)" >&2
	exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/home"
export HOME="$tmp/home" GOCACHE="$tmp/gocache" GOPATH="$tmp/gopath"
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS='' PPROF_TMPDIR="$tmp"

prof="$tmp/profile.pb.gz"
"$bin" "$prof"

fails=0
# expect FILE DESCRIPTION ERE: one line of FILE must match the extended regex.
expect() {
	if grep -Eq -- "$3" "$1"; then
		echo "ok: $2"
	else
		echo "FAIL: $2: no line matching /$3/ in $(basename "$1")" >&2
		fails=$((fails + 1))
	fi
}
# expect_fixed FILE DESCRIPTION STRING: some line of FILE must contain STRING.
expect_fixed() {
	if grep -Fq -- "$3" "$1"; then
		echo "ok: $2"
	else
		echo "FAIL: $2: '$3' not in $(basename "$1")" >&2
		fails=$((fails + 1))
	fi
}

run_pprof() { # run_pprof OUTFILE ARGS...
	out=$1
	shift
	if ! go tool pprof "$@" "$prof" >"$out" 2>"$out.err"; then
		echo "FAIL: go tool pprof $* could not read the profile:" >&2
		cat "$out.err" >&2
		exit 1
	fi
}

run_pprof "$tmp/raw.txt" -raw
run_pprof "$tmp/top_cpu.txt" -top -sample_index=cpu
run_pprof "$tmp/top_count.txt" -top -sample_index=samples
run_pprof "$tmp/traces.txt" -traces

# The invalid UTF-8 name "bad_\xff\xfename" must arrive with each bad byte as U+FFFD.
bad=$(printf 'bad_\357\277\275\357\277\275name')

# -raw: header, both sample types, per-sample values + location ids, labels, mappings.
expect "$tmp/raw.txt" "period type" '^PeriodType: cpu nanoseconds$'
expect "$tmp/raw.txt" "period" '^Period: 10000000$'
expect "$tmp/raw.txt" "sample types" '^cpu/nanoseconds samples/count$'
expect "$tmp/raw.txt" "sample 1 values+stack" '^ +10000000 +1: 1 2 3 *$'
expect "$tmp/raw.txt" "sample 2 values+stack" '^ +20000000 +2: 4 1 2 3 *$'
expect "$tmp/raw.txt" "sample 3 values+stack" '^ +30000000 +3: 5 3 *$'
expect "$tmp/raw.txt" "sample 4 values+stack" '^ +40000000 +4: 6 3 *$'
expect "$tmp/raw.txt" "string label" '^ +thread_name:\[worker-1\]$'
expect "$tmp/raw.txt" "string label 2" '^ +thread_name:\[io\]$'
expect "$tmp/raw.txt" "numeric label" '^ +thread_id:\[101\]$'
expect "$tmp/raw.txt" "numeric label 2" '^ +thread_id:\[102\]$'
expect "$tmp/raw.txt" "location compute_hash" '^ +1: 0x1234 M=1 compute_hash hash\.c:42 '
expect "$tmp/raw.txt" "location main (shared)" '^ +3: 0x3000 M=1 main main\.c:10 '
expect "$tmp/raw.txt" "location memcpy in libc" '^ +4: 0x9abc M=2 memcpy '
expect "$tmp/raw.txt" "unnamed frame" '^ +6: 0x55 M=2 libc\.so\.6\+0x55 '
expect "$tmp/raw.txt" "mapping app" '^ *1: 0x0/0x[0-9a-f]+/0x0 /usr/bin/app abc123 \[FN\]'
expect "$tmp/raw.txt" "mapping libc" \
	'^ *2: 0x0/0x[0-9a-f]+/0x0 /lib/x86_64-linux-gnu/libc\.so\.6 libcbid \[FN\]'
expect_fixed "$tmp/raw.txt" "sanitised UTF-8 name in -raw" "M=1 $bad bad.c:7"

# -top per sample type: flat / cum per function.
expect "$tmp/top_cpu.txt" "cpu total" 'Total samples = 100ms'
expect "$tmp/top_cpu.txt" "cpu libc+0x55" \
	'^ +40ms +40\.00% +40\.00% +40ms +40\.00% +libc\.so\.6\+0x55$'
expect "$tmp/top_cpu.txt" "cpu memcpy" '^ +20ms +20\.00% .* +20ms +20\.00% +memcpy$'
expect "$tmp/top_cpu.txt" "cpu compute_hash" '^ +10ms +10\.00% .* +30ms +30\.00% +compute_hash$'
expect "$tmp/top_cpu.txt" "cpu main" '^ +0 +0% .* +100ms +100% +main$'
expect "$tmp/top_cpu.txt" "cpu process_request" '^ +0 +0% .* +30ms +30\.00% +process_request$'
expect_fixed "$tmp/top_cpu.txt" "cpu sanitised name" "30ms 30.00%  $bad"
expect "$tmp/top_count.txt" "count total" 'Total samples = 10 *$'
expect "$tmp/top_count.txt" "count libc+0x55" '^ +4 +40\.00% .* +libc\.so\.6\+0x55$'
expect "$tmp/top_count.txt" "count main" '^ +0 +0% .* +10 +100% +main$'

# -traces: labels stay attached to the right stacks.
expect "$tmp/traces.txt" "trace labels" '^ *thread_name: +worker-1$'
expect "$tmp/traces.txt" "trace numeric labels" '^ *thread_id: +102$'

if [ "$fails" -ne 0 ]; then
	echo "test_pprof.sh: $fails check(s) failed; go tool pprof -raw output follows" >&2
	cat "$tmp/raw.txt" >&2
	exit 1
fi
echo "test_pprof.sh: OK (go tool pprof agrees)"
