#!/bin/sh
# demo.sh: `make demo`: records the flaky example service until it crashes, then shows what
# crashscope kept. Uses a database of its own under the build directory; never touches the
# user's default database.
set -u
BUILD=${1:-build}
CS="$BUILD/crashscope"
DB="$BUILD/demo/crashscope-demo.db"
mkdir -p "$BUILD/demo"
rm -f "$DB" "$DB-wal" "$DB-shm"

echo "== crashscope demo: recording a flaky service until it dies"
echo "\$ crashscope run --db $DB -- $BUILD/tests/progs/flaky 4"
"$CS" run --db "$DB" -- "$BUILD/tests/progs/flaky" 4
status=$?
echo "(the service exited with status $status: the same as without crashscope)"
echo
echo "== where the CPU went (crashscope export --type cpu --format folded), top 5 stacks:"
"$CS" export --db "$DB" --type cpu --format folded -o - 2>/dev/null | sort -t' ' -k2 -nr | head -5
echo
echo "== what each thread was doing (wall clock), samples per thread and innermost function:"
"$CS" export --db "$DB" --type wall --format folded -o - 2>/dev/null |
	awk '{n = split($1, f, ";"); c[f[n]] += $2} END {for (k in c) print c[k], k}' | sort -nr | head -6
echo
echo "== the window is plain SQLite:  sqlite3 $DB 'SELECT profile, COUNT(*), SUM(count) FROM samples GROUP BY profile'"
sqlite3 "$DB" 'SELECT profile, COUNT(*), SUM(count) FROM samples GROUP BY profile' 2>/dev/null || true
echo
echo "== export for go tool pprof:  $CS export --db $DB --type cpu -o $BUILD/demo/cpu.pb.gz"
"$CS" export --db "$DB" --type cpu -o "$BUILD/demo/cpu.pb.gz"
exit 0
