#!/bin/sh
# demo.sh: `make demo`: records the flaky example service until it crashes, then shows what
# crashscope kept: the crash report (printed by `crashscope run`), the list of crashes and
# where the CPU went before. Uses a database of its own under the build directory; never
# touches the user's default database.
set -u
BUILD=${1:-build}
CS="$BUILD/crashscope"
DB="$BUILD/demo/crashscope-demo.db"
mkdir -p "$BUILD/demo"
rm -rf "$DB" "$DB-wal" "$DB-shm" "$DB.crashes"

echo "== crashscope demo: a flaky service is recorded until it dies"
echo "\$ crashscope run --db $DB -- $BUILD/tests/progs/flaky 4"
"$CS" run --db "$DB" -- "$BUILD/tests/progs/flaky" 4
status=$?
echo
echo "(the service exited with status $status, as it would have without crashscope)"
echo
echo "== every crash and death recorded in the database:"
echo "\$ crashscope crashes --db $DB"
"$CS" crashes --db "$DB"
echo
echo "== where the CPU went in the window (crashscope export --format folded), top 3 stacks:"
"$CS" export --db "$DB" --type cpu --format folded -o - 2>/dev/null | sort -t' ' -k2 -nr | head -3
echo
echo "== next steps:"
echo "   $CS inspect --db $DB --json      # the whole report, for scripts"
echo "   $CS export --db $DB --type wall -o wall.pb.gz && go tool pprof -top wall.pb.gz"
echo "   sqlite3 $DB .schema              # the window is plain SQLite (docs/SCHEMA.md)"
exit 0
