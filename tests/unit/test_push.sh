#!/bin/sh
# test_push.sh: runs the already-built push transport test (tests/unit/test_push.c) against
# the Pyroscope test receiver, then checks on the receiver's side what arrived: labels, auth
# user, tenant, that no secret leaked, and that Go's pprof reads a profile as it was stored.
#
# Usage: sh tests/unit/test_push.sh /path/to/test_push
#
# Compiles nothing. Must never touch the network beyond 127.0.0.1, the caller's HOME or Go
# caches (Go state lives in a temp dir), or leave the receiver running: it is started here,
# bounded (--max-seconds, timeouts on every wait) and killed by its pid on exit. Prints a final
# "N passed, N failed" line and exits non-zero on any failure.
set -u

bin=${1:?usage: test_push.sh TEST_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
receiver="$root/tests/receiver/pyroscope_receiver.py"
py=/usr/bin/python3
[ -x "$py" ] || py=python3

passed=0
failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1" >&2; failed=$((failed + 1)); }
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit $?
}

[ -x "$bin" ] || { fail "$bin is not an executable"; finish; }

tmp=$(mktemp -d)
rpid=
cleanup() {
	if [ -n "$rpid" ]; then
		kill "$rpid" 2>/dev/null
		wait "$rpid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
dump="$tmp/dump"
mkdir -p "$dump" "$tmp/home"

# ---- the receiver -------------------------------------------------------------------------
"$py" "$receiver" --basic-auth user:s3cret-token --tenant team-a --dump-dir "$dump" \
	--max-seconds 300 --quiet >"$tmp/receiver.out" 2>"$tmp/receiver.err" &
rpid=$!
port=
i=0
while [ $i -lt 100 ]; do # at most 10 s
	port=$(sed -n 's/^LISTENING \([0-9][0-9]*\)$/\1/p' "$tmp/receiver.out")
	[ -n "$port" ] && break
	kill -0 "$rpid" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
if [ -z "$port" ]; then
	fail "receiver did not start"
	cat "$tmp/receiver.err" >&2
	finish
fi
ok "receiver listening on 127.0.0.1:$port"

# ---- the C test ---------------------------------------------------------------------------
timeout 120 "$bin" "$port" "$dump" >"$tmp/test.out" 2>&1
rc=$?
cat "$tmp/test.out"
summary=$(sed -n 's/^test_push: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' \
	"$tmp/test.out")
if [ -n "$summary" ]; then
	set -- $summary
	passed=$((passed + $1))
	failed=$((failed + $2))
fi
if [ $rc -ne 0 ] || [ -z "$summary" ]; then
	fail "test binary exited with status $rc"
else
	ok "test binary exited 0"
fi
if grep -q 's3cret-token' "$tmp/test.out"; then
	fail "the password appears in the test's output"
else
	ok "no password in the test's output"
fi

# ---- what the receiver got ----------------------------------------------------------------
# Records made after a stall are skipped: when they land depends on timing, not on the client.
check_py='
import json, re, sys, urllib.request
port = sys.argv[1]
def get(path):
    with urllib.request.urlopen("http://127.0.0.1:%s%s" % (port, path), timeout=10) as r:
        return json.loads(r.read().decode())
recs = [r for r in get("/received") if not r.get("stalled")]
stats = get("/stats")
res = []
def check(cond, what):
    res.append(cond)
    print(("ok: " if cond else "FAIL: ") + what, file=sys.stdout if cond else sys.stderr)
push = [r for r in recs if r["endpoint"] == "push"]
ingest = [r for r in recs if r["endpoint"] == "ingest"]
check(len(push) == 2, "receiver: 2 profiles by push (got %d)" % len(push))
check(len(ingest) == 3, "receiver: 3 profiles by ingest (got %d)" % len(ingest))
uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
for r in push:
    L = r["labels"]
    check(L.get("__name__") == "process_cpu" and L.get("service_name") == "push-test-app",
          "push %d: __name__ and service_name (%r)" % (r["seq"], L))
    check(L.get("env") == "prod" and L.get("region") == "eu,west}1",
          "push %d: tags, first env kept" % r["seq"])
    check(L.get("bad_utf8") == "x\ufffdy", "push %d: invalid UTF-8 value sanitised (%r)"
          % (r["seq"], L.get("bad_utf8")))
    names = [n for n, _ in r["label_pairs"]]
    check(len(names) == len(set(names)) and "empty" not in names,
          "push %d: no duplicate or empty labels (%r)" % (r["seq"], names))
    check(r["auth_user"] == "user" and r["tenant"] == "team-a",
          "push %d: auth user and tenant" % r["seq"])
    check(r["content_type"] == "application/proto" and r["content_encoding"] == "gzip"
          and r["user_agent"] == "crashscope/0.1", "push %d: headers" % r["seq"])
    check(bool(uuid.match(r["id"] or "")), "push %d: RawSample.ID is a UUIDv4 (%r)"
          % (r["seq"], r["id"]))
    check(r["profile_gzipped"] and any("push_leaf" in s["stack"]
                                       for s in r["profile"]["samples"]),
          "push %d: the profile itself" % r["seq"])
check(len({r["id"] for r in push}) == len(push), "push: IDs differ")
by_app = {r["ingest"]["app"]: r for r in ingest}
r = by_app.get("ingest_app")
check(r is not None and r["labels"].get("service_name") == "ingest app"
      and r["labels"].get("env") == "staging" and r["labels"].get("region") == "a_b_c"
      and "__internal" not in r["labels"] and r["ingest"]["sample_rate"] == 97,
      "ingest: app, service_name tag, sanitised values (%r)" % (r and r["labels"]))
fb = [r for r in ingest if r["ingest"]["app"] == "push-test-app"]
check(len(fb) == 2 and all(r["labels"].get("env") == "prod"
                           and r["labels"].get("region") == "eu_west_1" for r in fb),
      "ingest after 404: labels (%r)" % [r["labels"] for r in fb])
for r in ingest:
    i = r["ingest"]
    check(i["format"] == "pprof" and i["spy_name"] == "crashscope"
          and r["content_encoding"] is None and r["auth_user"] == "user"
          and r["tenant"] == "team-a" and r["profile_gzipped"]
          and 0 < i["until_ns"] - i["from_ns"] <= 11 * 10**9,
          "ingest %d: query, headers, body (%r)" % (r["seq"], i))
check(stats["secret_leaks"] == 0, "receiver: secret_leaks == 0 (%r)" % stats["secret_leaks"])
ep = stats["by_endpoint"]
check(ep.get("push", {}).get("by_status", {}).get("401", 0) >= 3,
      "receiver: the 401s were counted (%r)" % ep.get("push"))
sys.exit(0 if all(res) else 1)
'
"$py" -c "$check_py" "$port" >"$tmp/check.out" 2>&1
cat "$tmp/check.out"
passed=$((passed + $(grep -c '^ok: ' "$tmp/check.out")))
failed=$((failed + $(grep -c '^FAIL: ' "$tmp/check.out")))
grep -q -e '^ok: ' -e '^FAIL: ' "$tmp/check.out" || fail "receiver checks did not run"

# ---- go tool pprof reads a stored profile -------------------------------------------------
prof=$(ls "$dump"/*-process_cpu.pb.gz 2>/dev/null | head -n 1)
if ! command -v go >/dev/null 2>&1; then
	fail "'go' not found (install golang-go: scripts/deps.sh test)"
elif [ -z "$prof" ]; then
	fail "no dumped process_cpu profile in the receiver's dump dir"
else
	if HOME="$tmp/home" GOCACHE="$tmp/gocache" GOPATH="$tmp/gopath" GOTOOLCHAIN=local \
		GOPROXY=off GOFLAGS='' PPROF_TMPDIR="$tmp" \
		timeout 60 go tool pprof -raw "$prof" >"$tmp/raw.txt" 2>"$tmp/raw.err" &&
		grep -q '^PeriodType: cpu nanoseconds$' "$tmp/raw.txt" &&
		grep -Eq '^ +[0-9]+: 0x1234 M=1 push_leaf leaf\.c:7' "$tmp/raw.txt"; then
		ok "go tool pprof -raw reads $(basename "$prof")"
	else
		fail "go tool pprof -raw on $(basename "$prof")"
		cat "$tmp/raw.err" "$tmp/raw.txt" >&2
	fi
fi

finish
