#!/bin/sh
# test_python.sh: tests recorder/python.c, the signal-safe CPython frame reader, against every
# CPython installed here.
#
#   1. builds tests/unit/test_python.c and tests/unit/python_probe.c (plain -O2, and with
#      AddressSanitizer + UndefinedBehaviorSanitizer when the compiler has them);
#   2. runs the unit test (no Python needed), plain and sanitized;
#   3. compares the offsets typed into python.c with offsetof() over each installed version's
#      headers (tests/unit/gen_python_offsets.sh), Debian's /usr/include/python3.X included;
#   4. for each interpreter present (/root/.pyenv/versions/3.8.*/bin/python3.8 ... 3.13, and
#      /usr/bin/python3) preloads the probe and runs the checks below in it: a known call chain
#      sampled from a real signal handler (names, files, lines, entry flags, GIL), a call through
#      C, qualified names, generators, non-ASCII and long names, a forked child, a sleeping
#      thread sampled from another thread (no GIL), names that outlive their code object, the
#      line decoder against PyCode_Addr2Line on every instruction of thousands of code objects,
#      3000 samples of a thread whose frames change all the time, and the cost of a 30-frame
#      walk; then the same under the sanitizers; then libpython dlopen'ed with RTLD_LOCAL by
#      test_python --embed;
#   5. checks that older interpreters present (3.7, 3.6, 2.7) are reported unsupported.
# Versions that are absent are skipped with a message. Every child runs under `timeout 60`.
# Prints one line per check and version, then "N passed, N failed"; exits 1 on any failure.
#
# Usage: sh tests/unit/test_python.sh
#   CC (default cc), CS_PYENV_ROOT (default /root/.pyenv), CS_PY_NO_SANITIZE=1 to skip the
#   sanitized builds. Must never install anything or touch the network; everything it builds
#   lives in a temp dir removed on exit.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${CC:-cc}
pyenv=${CS_PYENV_ROOT:-/root/.pyenv}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok    $*"; }
bad() { failed=$((failed + 1)); echo "FAIL  $*"; }
skip() { echo "skip  $*"; }

# --- build ---------------------------------------------------------------------------------
cflags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -I$root/recorder"
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
build() { # build OUT FLAGS... : logs to $tmp/build.log
	"$cc" "$@" >>"$tmp/build.log" 2>&1
}
if build $cflags -O2 -o "$tmp/test_python" "$here/test_python.c" -ldl -lpthread &&
	build $cflags -O2 -fPIC -shared -o "$tmp/probe.so" "$here/python_probe.c" -ldl -lpthread; then
	ok "build (-Wall -Wextra -Werror)"
else
	bad "build:"
	cat "$tmp/build.log"
	echo "$passed passed, $failed failed"
	exit 1
fi
asan_rt=
if [ "${CS_PY_NO_SANITIZE:-0}" != 1 ] &&
	build $cflags -O1 $san -o "$tmp/test_python_asan" "$here/test_python.c" -ldl -lpthread &&
	build $cflags -O1 $san -fPIC -shared -o "$tmp/probe_asan.so" "$here/python_probe.c" -ldl -lpthread; then
	# A sanitized library preloaded into an unsanitized interpreter: the ASan runtime must
	# come first in the preload list.
	asan_rt=$(ldd "$tmp/probe_asan.so" | awk '/asan/ { print $3; exit }')
	[ -n "$asan_rt" ] && ok "sanitized build (ASan + UBSan)" || skip "sanitized probe: no ASan runtime found"
else
	skip "sanitized builds (disabled or not supported by $cc)"
fi
export ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# --- unit test ------------------------------------------------------------------------------
if timeout 120 "$tmp/test_python" >"$tmp/unit.out" 2>&1; then
	ok "unit test"
else
	bad "unit test: $(tail -n 3 "$tmp/unit.out")"
fi
if [ -x "$tmp/test_python_asan" ]; then
	if timeout 300 "$tmp/test_python_asan" >"$tmp/unit_asan.out" 2>&1; then
		ok "unit test (sanitized)"
	else
		bad "unit test (sanitized): $(tail -n 5 "$tmp/unit_asan.out")"
	fi
fi

# --- offsets: the typed table against the headers -------------------------------------------
"$tmp/test_python" --table | sort >"$tmp/table.txt"
compare_offsets() { # compare_offsets LABEL GEN_OUTPUT
	minors=$(grep -v '^#' "$2" | awk '{ print $1 }' | sort -u)
	if [ -z "$minors" ]; then
		skip "offsets $1: no headers"
		return
	fi
	for v in $minors; do
		grep "^$v " "$2" | sort >"$tmp/want.txt"
		grep "^$v " "$tmp/table.txt" >"$tmp/have.txt"
		if cmp -s "$tmp/want.txt" "$tmp/have.txt"; then
			ok "offsets $v ($1): $(wc -l <"$tmp/want.txt") fields match the headers"
		else
			bad "offsets $v ($1): typed table (<) differs from the headers (>):"
			diff "$tmp/have.txt" "$tmp/want.txt" | grep '^[<>]'
		fi
	done
}
if CC=$cc CS_PYENV_ROOT=$pyenv sh "$here/gen_python_offsets.sh" >"$tmp/gen.txt" 2>"$tmp/gen.err"; then
	grep '^# .*skipped' "$tmp/gen.txt" | sed 's/^# /skip  offsets /'
	compare_offsets "pyenv" "$tmp/gen.txt"
else
	bad "gen_python_offsets.sh: $(cat "$tmp/gen.err")"
fi
if ls -d /usr/include/python3.*/internal >/dev/null 2>&1; then
	if CC=$cc sh "$here/gen_python_offsets.sh" /usr >"$tmp/gen_usr.txt" 2>"$tmp/gen.err"; then
		compare_offsets "/usr/include" "$tmp/gen_usr.txt"
	else
		bad "gen_python_offsets.sh /usr: $(cat "$tmp/gen.err")"
	fi
fi

# --- the checks run inside each interpreter -------------------------------------------------
cat >"$tmp/check.py" <<'PYEOF'
# The in-interpreter half of test_python.sh: run as
#   LD_PRELOAD=python_probe.so python3.X check.py python_probe.so
# Runs on CPython 3.8-3.13. Prints "ok: ..." / "FAIL: ..." lines, "BENCH ..." lines, and exits 1
# if anything failed.
import ctypes, gc, os, sys, threading, time, types

probe_path = sys.argv[1]
P = ctypes.PyDLL(probe_path)   # calls keep the GIL
C = ctypes.CDLL(probe_path)    # calls release it
for lib in (P, C):
    lib.probe_sample.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.probe_sample_thread.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.probe_storm.argtypes = [ctypes.c_ulong, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.probe_code.restype = ctypes.c_ulonglong
    lib.probe_code.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.probe_lookup_saved.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.probe_check_lines.argtypes = [ctypes.c_ulonglong, ctypes.c_int]
    lib.probe_mismatch.restype = ctypes.c_char_p
    lib.probe_code_bytes.argtypes = [ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_int]
    lib.probe_bench.restype = ctypes.c_double
    lib.probe_bench.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.probe_names_dropped.restype = ctypes.c_ulonglong

failures = []
def check(cond, what, detail=""):
    if cond:
        print("ok: " + what)
    else:
        print("FAIL: %s %s" % (what, detail))
        failures.append(what)

def parse(text):
    lines = text.decode("utf-8", "replace").splitlines()
    gil = int(lines[0].split("=")[1])
    frames = []
    for l in lines[1:]:
        q, f, line, first, flags = l.split("\t")
        frames.append((q, f, int(line), int(first), int(flags)))
    return gil, frames

line_checks = {"frames": 0, "bad": []}
def sample(lib=C):
    # CPython's own idea of every caller's line, to compare with ours: the callers stay
    # suspended at the same instruction during the probe call.
    want, f = [], sys._getframe(1)
    while f is not None:
        want.append((f.f_code.co_name, f.f_lineno))
        f = f.f_back
    buf = ctypes.create_string_buffer(65536)
    n = lib.probe_sample(buf, len(buf))
    if n < 0:
        return None, []
    gil, fr = parse(buf.value)
    got = [(q.rsplit(".", 1)[-1], line) for q, _, line, _, _ in fr[1:]]
    line_checks["frames"] += len(want)
    # (names may be cut to 127 bytes)
    if len(got) != len(want) or any(g[1] != w[1] or not w[0].startswith(g[0])
                                    for g, w in zip(got, want)):
        line_checks["bad"].append((got, want))
    # The innermost frame is this helper itself.
    if not fr or fr[0][0] != "sample":
        failures.append("sample() frame missing")
        print("FAIL: sample() is not the innermost frame: %r" % fr[:2])
        return gil, fr
    return gil, fr[1:]

SRC = open(__file__).read().splitlines()
def marker(tag):
    for i, l in enumerate(SRC):
        if l.rstrip().endswith("# L:" + tag):
            return i + 1
    raise KeyError(tag)

ME = os.path.abspath(__file__)
V = sys.version_info

# --- init ------------------------------------------------------------------------------------
why = ctypes.create_string_buffer(256)
st = P.probe_status(why, 256)
check(st == 1, "supported (%s)" % why.value.decode(), "status %d" % st)
check(P.probe_version() == sys.hexversion, "version 0x%08x" % sys.hexversion,
      "probe says 0x%08x" % (P.probe_version() & 0xffffffff))
if st != 1:
    sys.exit(1)

# --- the bytecode is where the table says (checks co_code_adaptive without headers) ----------
if V >= (3, 11):
    import dis
    def never_called(a, b):
        x = a + b
        return [x * 2 for _ in range(a)]
    co = never_called.__code__
    mem = ctypes.create_string_buffer(len(co.co_code))
    read_ok = P.probe_code_bytes(id(co), mem, len(co.co_code)) == 0
    offsets = [i.offset for i in dis.get_instructions(co)]
    # Specialisation at creation (3.12 superinstructions) may change opcodes, never opargs.
    same_args = all(mem.raw[o + 1] == co.co_code[o + 1] for o in offsets)
    same_ops = sum(mem.raw[o] == co.co_code[o] for o in offsets)
    check(read_ok and same_args and same_ops * 2 > len(offsets),
          "bytecode found at the co_code_adaptive offset", repr(mem.raw[:16]) + repr(co.co_code[:16]))

# --- a known call chain ----------------------------------------------------------------------
results = {}
def hot_loop(lib, key):
    total = 0
    for i in range(3):
        total += i
    results[key] = sample(lib)  # L:hot
    return total

def parse_payload(lib, key):
    return hot_loop(lib, key) + 1  # L:parse

def handle_request(lib, key):
    return parse_payload(lib, key) * 2  # L:handle

def main(lib, key):
    return handle_request(lib, key)  # L:main

main(C, "nogil")  # L:module
main(P, "gil")  # L:module2

def qual(name):
    return name

for key, gil_expected in (("nogil", 0), ("gil", 1)):
    gil, fr = results[key]
    names = [f[0] for f in fr[:4]]
    check(names == ["hot_loop", "parse_payload", "handle_request", "main"],
          "%s: chain innermost first" % key, repr(fr[:5]))
    check(all(f[1] == ME for f in fr[:5]), "%s: file names" % key, repr([f[1] for f in fr[:5]]))
    want = [marker("hot"), marker("parse"), marker("handle"), marker("main"),
            marker("module" if key == "nogil" else "module2")]
    check([f[2] for f in fr[:5]] == want, "%s: line numbers" % key,
          "got %r want %r" % ([f[2] for f in fr[:5]], want))
    check(len(fr) == 5 and fr[4][0] == "<module>", "%s: <module> is outermost" % key, repr(fr))
    check(fr[0][3] == hot_loop.__code__.co_firstlineno, "%s: firstline" % key)
    if V < (3, 11):
        check(all(f[4] == 1 for f in fr), "%s: every frame is an entry (<= 3.10)" % key)
    else:
        check([f[4] for f in fr] == [0, 0, 0, 0, 1], "%s: only <module> is an entry" % key,
              repr([f[4] for f in fr]))
    check(gil == gil_expected, "%s: holds_gil in handler = %d" % (key, gil_expected), "got %d" % gil)

check(P.probe_holds_gil() == 1 and C.probe_holds_gil() == 0, "holds_gil outside a handler")

# --- frames under a C call: the frame a C function calls is an entry frame -------------------
via = {}
def key_func(x):
    via["s"] = sample(C)  # L:viakey
    return x
def via_c():
    return sorted([1], key=key_func)  # L:viasorted
via_c()
gil, fr = via["s"]
check([f[0] for f in fr[:2]] == ["key_func", "via_c"] and fr[0][2] == marker("viakey")
      and fr[1][2] == marker("viasorted"), "call through C: names and lines", repr(fr[:3]))
check(fr[0][4] == 1, "call through C: innermost frame is an entry", repr(fr[:3]))
if V >= (3, 11):
    check(fr[1][4] == 0, "call through C: caller is not an entry", repr(fr[:3]))

# --- a call spread over lines: the line is the call's, not an argument's ------------------------
def multi_line():
    return sample(  # L:multi
        C
    )
gil, fr = multi_line()
check(fr[0][0] == "multi_line" and fr[0][2] == multi_line.__code__.co_firstlineno + 1,
      "multi-line call site", repr(fr[:1]))

# --- methods, nested functions: qualified names from 3.11 ------------------------------------
class Shop:
    def checkout(self):
        def inner():
            return sample(C)
        return inner()
gil, fr = Shop().checkout()
want = ["Shop.checkout.<locals>.inner", "Shop.checkout"] if V >= (3, 11) else ["inner", "checkout"]
check([f[0] for f in fr[:2]] == want, "qualified names", repr([f[0] for f in fr[:2]]))

# --- a generator and a coroutine frame -------------------------------------------------------
def gen():
    yield sample(C)  # L:gen
gil, fr = next(gen())
check(fr[0][0] == "gen" and fr[0][2] == marker("gen"), "generator frame", repr(fr[:2]))

# --- non-ASCII names and files ---------------------------------------------------------------
ns = {"sample": sample, "C": C}
exec(compile(u"def caf\u00e9_\u03bb_\u6f22():\n    return sample(C)\n",
             u"/tmp/d\u00e9j\u00e0/\u6587\u4ef6\U0001f600.py", "exec"), ns)
gil, fr = ns[u"caf\u00e9_\u03bb_\u6f22"]()
check(fr[0][0] == u"caf\u00e9_\u03bb_\u6f22" and fr[0][1] == u"/tmp/d\u00e9j\u00e0/\u6587\u4ef6\U0001f600.py"
      and fr[0][2] == 2, "non-ASCII names as UTF-8", repr(fr[:1]))
long_name = "f_" + "x" * 200
exec(compile("def %s():\n    return sample(C)\n" % long_name, "/tmp/" + "d/" * 200 + "long.py",
             "exec"), ns)
gil, fr = ns[long_name]()
check(fr[0][0] == long_name[:127] and len(fr[0][1].encode()) == 255, "long names are cut",
      repr((len(fr[0][0]), len(fr[0][1]))))

# --- a forked child reads its own memory ------------------------------------------------------
def forked_child_frame():
    return sample(C)  # L:fork
pid = os.fork()
if pid == 0:
    gil, fr = forked_child_frame()
    os._exit(0 if fr and fr[0][0] == "forked_child_frame" and fr[0][2] == marker("fork") else 3)
_, status = os.waitpid(pid, 0)
check(status == 0, "sampling in a forked child", "status %d" % status)

# --- a sleeping thread, without the GIL ------------------------------------------------------
ready = threading.Event()
def worker_inner():
    ready.set()
    time.sleep(1.5)  # L:sleep
def worker_outer():
    worker_inner()  # L:worker
t = threading.Thread(target=worker_outer, name="sleeper")
t.start()
ready.wait()
time.sleep(0.3)
buf = ctypes.create_string_buffer(65536)
n = C.probe_sample_thread(t.ident, buf, len(buf))
check(n > 0, "sleeping thread sampled", "n=%d" % n)
if n > 0:
    gil, fr = parse(buf.value)
    check([f[0] for f in fr[:2]] == ["worker_inner", "worker_outer"]
          and fr[0][2] == marker("sleep") and fr[1][2] == marker("worker"),
          "sleeping thread: names and lines", repr(fr[:3]))
    run = "Thread.run" if V >= (3, 11) else "run"
    check(any(f[0] == run and f[1] == threading.__file__ for f in fr), "sleeping thread: Thread.run",
          repr([f[:2] for f in fr]))
    check(gil == 0, "sleeping thread does not hold the GIL", "gil=%d" % gil)
t.join()

# --- names survive the code object's death ---------------------------------------------------
def make(name, filename, save):
    d = {"sample": sample, "C": C, "P": P}
    body = "    r = sample(C)\n" + ("    P.probe_save()\n" if save else "    P.probe_holds_gil()\n")
    exec(compile("def %s():\n%s    return r\n" % (name, body), filename, "exec"), d)
    return d[name]
f = make("doomed_aa", "/virtual/doomed_file.py", True)
gil, fr = f()
dead_code = P.probe_code(1, 1)  # frame 0 is sample()
check(fr[0][0] == "doomed_aa" and dead_code == id(f.__code__), "doomed function sampled")
del f, fr
gc.collect()
reused = False
keep = []
for k in range(300):
    g = make("reborn_%02d" % (k % 100), "/virtual/other_file.py", False)
    gil, fr = g()
    if P.probe_code(1, 0) == dead_code:
        reused = True
        check(fr[0][0].startswith("reborn_") and fr[0][1] == "/virtual/other_file.py",
              "new function at the dead one's address has its own names", repr(fr[:1]))
        break
    keep.append(g)
print("info: code object memory reused after %d tries: %s" % (k + 1, reused))
out = ctypes.create_string_buffer(4096)
check(P.probe_lookup_saved(1, out, len(out)) > 0, "dead key looked up")
gil, fr = parse(out.value)
check(fr and fr[0][0] == "doomed_aa" and fr[0][1] == "/virtual/doomed_file.py",
      "names of a dead code object survive", repr(fr))
del keep

check(line_checks["frames"] > 20 and not line_checks["bad"],
      "every sampled frame's line equals CPython's f_lineno (%d frames)" % line_checks["frames"],
      repr(line_checks["bad"][:2]))

# --- line numbers: our decoder against PyCode_Addr2Line, every offset of many code objects -----
codes, seen = [], set()
todo = [o.__code__ for o in gc.get_objects() if isinstance(o, types.FunctionType)]
limit = int(os.environ.get("CS_PY_LINE_CODES", "3000"))
while todo and len(codes) < limit:
    c = todo.pop()
    if id(c) in seen:
        continue
    seen.add(id(c))
    codes.append(c)
    todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
bad_codes, offsets = 0, 0
for c in codes:
    r = P.probe_check_lines(id(c), len(c.co_code))
    offsets += len(c.co_code) // 2
    if r != 0:
        bad_codes += 1
        if bad_codes <= 3:
            print("  mismatch in %s (%s:%d): %s" % (c.co_name, c.co_filename, c.co_firstlineno,
                                                   P.probe_mismatch().decode()))
check(bad_codes == 0 and len(codes) > 100, "line tables: %d code objects, %d offsets agree with "
      "PyCode_Addr2Line" % (len(codes), offsets), "%d code objects differ" % bad_codes)

# --- a thread whose frames change all the time, sampled 3000 times -----------------------------
stop = []
def churn(n):
    if n:
        return churn(n - 1)
    d = {}
    exec("def tmp_%d(x):\n    return [i * x for i in range(50)]\n" % (len(stop) % 7), d)
    return sum(v(2)[3] for v in d.values() if callable(v))
def busy():
    while not stop:
        for depth in (1, 5, 20, 40):
            churn(depth)
        list(x for x in range(20))
bt = threading.Thread(target=busy)
bt.start()
maxdepth = ctypes.c_int()
done = C.probe_storm(bt.ident, 3000, ctypes.byref(maxdepth))
stop.append(1)
bt.join()
check(done == 3000 and maxdepth.value >= 20, "3000 samples of a churning thread",
      "done=%d maxdepth=%d" % (done, maxdepth.value))

# --- cost of a 30-frame walk: a chain of distinct functions, as in a real program -----------------
def bench_leaf(what, iters):
    d = ctypes.c_int()
    return C.probe_bench(iters, what, ctypes.byref(d)), d.value
d = ctypes.c_int()
C.probe_bench(1, 0, ctypes.byref(d))
chain = 30 - (d.value + 1)  # frames below this one, plus bench_leaf
src = "".join("def level_%d(w, i):\n    return level_%d(w, i)\n" % (k, k + 1) for k in range(chain - 1))
src += "def level_%d(w, i):\n    return bench_leaf(w, i)\n" % (chain - 1)
bns = {"bench_leaf": bench_leaf}
exec(compile(src, "/virtual/bench_chain.py", "exec"), bns)
runs = {}
for what in (0, 1, 2):
    best = None
    for _ in range(3):
        r = bns["level_0"](what, 5000)
        best = r if best is None or r[0] < best[0] else best
    runs[what] = best
check(runs[0][1] == 30, "bench stack is 30 frames deep", "depth=%d" % runs[0][1])
print("BENCH %d.%d %d frames: cs_python_stack %.0f ns/call, +remember %.0f ns/call, "
      "whole signal sample %.0f ns" % (V[0], V[1], runs[0][1], runs[0][0], runs[1][0], runs[2][0]))
check(P.probe_names_dropped() == 0, "no names dropped")

sys.stdout.flush()
sys.exit(1 if failures else 0)
PYEOF

cat >"$tmp/old.py" <<'PYEOF'
# For interpreters that must be reported unsupported (Python 2 and 3 syntax alike).
import ctypes, sys
p = ctypes.CDLL(sys.argv[1])
why = ctypes.create_string_buffer(256)
r = p.probe_status(why, 256)
n = p.probe_sample(ctypes.create_string_buffer(4096), 4096)
print("status %d frames %d gil %d: %s" % (r, n, p.probe_holds_gil(), why.value.decode()))
sys.exit(0 if r == -1 and n == 0 and p.probe_holds_gil() == -1 else 1)
PYEOF

run_checks() { # run_checks LABEL PYTHON PROBE [PRELOAD_FIRST]
	label=$1 py=$2 probe=$3 first=${4:-}
	out=$tmp/run.out
	LD_PRELOAD="${first:+$first }$probe" timeout 60 "$py" "$tmp/check.py" "$probe" >"$out" 2>&1
	rc=$?
	nok=$(grep -c '^ok:' "$out")
	bench=$(sed -n 's/^BENCH [0-9.]* //p' "$out")
	if [ "$rc" -eq 0 ] && ! grep -q '^FAIL' "$out"; then
		ok "$label: $nok checks${bench:+; $bench}"
	else
		[ "$rc" -eq 124 ] && rc="$rc (timed out)"
		bad "$label: exit $rc"
		grep -v '^ok:' "$out" | head -n 40 | sed 's/^/      /'
	fi
}

interpreters=
for m in 8 9 10 11 12 13; do
	found=
	for p in "$pyenv"/versions/3.$m.*; do
		case $p in *t | *-debug | *-dev) continue ;; esac
		if [ -x "$p/bin/python3.$m" ]; then
			found=$p/bin/python3.$m
			break
		fi
	done
	if [ -n "$found" ]; then
		interpreters="$interpreters $found"
	else
		skip "Python 3.$m: not installed under $pyenv/versions"
	fi
done
if [ -x /usr/bin/python3 ]; then
	interpreters="$interpreters /usr/bin/python3"
else
	skip "/usr/bin/python3: not installed"
fi

for py in $interpreters; do
	ver=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || ver=unknown
	run_checks "Python $ver ($py)" "$py" "$tmp/probe.so"
	if [ -n "$asan_rt" ]; then
		CS_PY_LINE_CODES=800 run_checks "Python $ver ($py), sanitized" "$py" \
			"$tmp/probe_asan.so" "$asan_rt"
	fi
	# Embedding: libpython dlopen'ed with RTLD_LOCAL after start.
	prefix=$(dirname "$(dirname "$py")")
	lib=$(ls "$prefix"/lib/libpython3.*.so.1.0 2>/dev/null | head -n 1)
	if [ -n "$lib" ] && [ "$prefix" != /usr ]; then
		if PYTHONHOME=$prefix timeout 60 "$tmp/test_python" --embed "$lib" >"$tmp/embed.out" 2>&1; then
			ok "Python $ver embedded: $(tail -n 1 "$tmp/embed.out" | sed 's/^test_python: //')"
		else
			bad "Python $ver embedded: $(tail -n 3 "$tmp/embed.out")"
		fi
	fi
done

# --- interpreters that must be refused --------------------------------------------------------
for p in "$pyenv"/versions/3.7.* "$pyenv"/versions/3.6.* "$pyenv"/versions/2.7.*; do
	[ -d "$p" ] || continue
	py=$(ls "$p"/bin/python[23].[0-9] 2>/dev/null | head -n 1)
	[ -n "$py" ] || continue
	if LD_PRELOAD="$tmp/probe.so" timeout 60 "$py" "$tmp/old.py" "$tmp/probe.so" >"$tmp/old.out" 2>&1; then
		ok "$(basename "$p") refused: $(cat "$tmp/old.out")"
	else
		bad "$(basename "$p") not refused: $(cat "$tmp/old.out")"
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
