"""Python-aware stacks for every CPython present (3.8 to 3.13 under /root/.pyenv, and Debian's
/usr/bin/python3, a static interpreter): Python frames with file and line, merged into the
native stack at the evaluation loop.
- cpu: main -> handle_request -> parse_payload -> hot_loop burns CPU in hot_loop: the top
  stack names the four in order, with hot_loop's file and a line inside it.
- crash: the same chain ends in a ctypes call that reads NULL: the crash stack has the native
  faulting frame, then the ctypes/ffi frames, then parse_payload and handle_request as Python
  frames with their true lines.
- a thread blocked in time.sleep inside a named function shows that function in the wall
  profile and among the crash report's other threads."""
import glob
import json
import os
from harness import *

INTERPRETERS = []
for m in range(8, 14):
    found = sorted(glob.glob("/root/.pyenv/versions/3.%d.*/bin/python3.%d" % (m, m)))
    INTERPRETERS.append(found[-1] if found else "/root/.pyenv/versions/3.%d/bin/python3.%d" % (m, m))
INTERPRETERS.append("/usr/bin/python3")

d = tmpdir()
cpu_script = os.path.join(d, "service_cpu.py")
with open(cpu_script, "w") as f:
    f.write("""import threading, time
def hot_loop(n):
    s = 0
    for i in range(n):
        s += i * i
    return s
def parse_payload():
    end = time.process_time() + 2.5
    while time.process_time() < end:
        hot_loop(5000)
def handle_request():
    parse_payload()
def main():
    threading.current_thread().name = "request-loop"
    handle_request()
main()
""")
HOT_LINES = range(2, 7)
crash_script = os.path.join(d, "service_crash.py")
with open(crash_script, "w") as f:
    f.write("""import ctypes, threading, time
WAITER = "jobs-waiter-of-the-long-queue"
def wait_for_jobs():
    time.sleep(60)
def parse_payload(data):
    return ctypes.string_at(0)
def handle_request():
    return parse_payload(b"payload")
def main():
    threading.Thread(target=wait_for_jobs, daemon=True, name=WAITER).start()
    t = time.time() + 2.0
    while time.time() < t:
        pass
    handle_request()
main()
""")
PARSE_LINE, HANDLE_LINE = 6, 8
# Longer than the kernel's 15 bytes: only Python has this name.
WAITER = "jobs-waiter-of-the-long-queue"


def frames_of(db, stack_id):
    return query(db, "SELECT f.function, f.kind, f.file, f.line FROM frames f WHERE f.id = ?",
                 (stack_id,))


def top_stack(db, profile):
    rows = query(db, "SELECT s.stack_id, SUM(s.count) AS n FROM samples s WHERE profile = ?"
                     " GROUP BY s.stack_id ORDER BY n DESC LIMIT 1", (profile,))
    if not rows:
        return []
    blob = query(db, "SELECT frame_ids FROM stacks WHERE id = ?", (rows[0][0],))[0][0]
    ids = [int.from_bytes(blob[i:i + 8], "little") for i in range(0, len(blob), 8)]
    return [frames_of(db, i)[0] for i in ids]


for py in INTERPRETERS:
    if not os.access(py, os.X_OK):
        print("skip %s: not installed" % py)
        continue
    v = run([py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])[1].strip()
    tag = "python %s (%s)" % (v, py)

    db = os.path.join(d, "cpu-%s.db" % v)
    st, out, err = record([py, cpu_script], db, timeout=60)
    check(st == 0 and "Python stacks are off" not in err, "%s: runs with Python stacks on" % tag)
    stack = top_stack(db, "cpu")
    pyf = [f for f in stack if f[1] == "python"]
    names = [f[0] for f in pyf]
    want = ["hot_loop", "parse_payload", "handle_request", "main"]
    check(names[:4] == want, "%s: top cpu stack is hot_loop < parse_payload < handle_request < main"
          " (got %s)" % (tag, names[:6]))
    if pyf:
        check(pyf[0][2] == cpu_script and pyf[0][3] in HOT_LINES,
              "%s: hot_loop's file and a line inside it (%s:%s)" % (tag, pyf[0][2], pyf[0][3]))
    i_py = next((i for i, f in enumerate(stack) if f[1] == "python"), None)
    check(i_py is not None and any(f[1] == "native" for f in stack[i_py:]),
          "%s: the Python frames sit inside the native stack, not appended" % tag)
    names = [r[0] for r in query(db, "SELECT DISTINCT thread_name FROM samples WHERE profile = 'cpu'")]
    check("request-loop" in names, "%s: the main thread's samples carry the name Python gave it"
          " (%s)" % (tag, names))

    db = os.path.join(d, "crash-%s.db" % v)
    st, out, err = record([py, crash_script], db, timeout=60)
    check(st == 139, "%s: dies of SIGSEGV (%r)" % (tag, st))
    st, out, err = run([CRASHSCOPE, "inspect", "--db", db, "--json"])
    if not check(st == 0, "%s: inspect --json" % tag):
        continue
    c = json.loads(out)["crash"]
    fr = c["stack"]
    kinds = [f["kind"] for f in fr]
    fns = [f["function"] for f in fr]
    i_ffi = next((i for i, f in enumerate(fns) if "ffi" in f or "ctypes" in f), None)
    i_parse = next((i for i, f in enumerate(fr) if f["function"] == "parse_payload"
                    and f["kind"] == "python"), None)
    i_handle = next((i for i, f in enumerate(fr) if f["function"] == "handle_request"
                     and f["kind"] == "python"), None)
    check(kinds[0] == "native", "%s: frame 0 is the native faulting frame (%s)" % (tag, fns[0]))
    check(i_ffi is not None and i_parse is not None and i_handle is not None and
          0 < i_ffi < i_parse < i_handle,
          "%s: native fault, then ctypes/ffi, then parse_payload, then handle_request (%s)"
          % (tag, list(zip(fns, kinds))[:14]))
    if i_parse is not None and i_handle is not None:
        check(fr[i_parse]["line"] == PARSE_LINE and fr[i_handle]["line"] == HANDLE_LINE and
              fr[i_parse]["file"] == crash_script,
              "%s: with their true lines (%s:%s, %s)" % (tag, fr[i_parse]["file"],
                                                       fr[i_parse]["line"], fr[i_handle]["line"]))
    waiting = [t for t in c["threads"] if any(f["function"] == "wait_for_jobs" and
                                              f["kind"] == "python" for f in t["stack"])]
    check(len(waiting) == 1, "%s: the sleeping thread is in the report, in wait_for_jobs" % tag)
    check(len(waiting) == 1 and waiting[0].get("name") == WAITER,
          "%s: under its Python thread name (%r)" % (tag, waiting and waiting[0].get("name")))
    check(c.get("thread", {}).get("name") == "MainThread",
          "%s: the crashing thread under its Python name (%r)" % (tag, c.get("thread")))
    wall_rows = stacks(db, "wall")
    check(any("wait_for_jobs" in r[1] for r in wall_rows),
          "%s: and in the wall profile" % tag)
    names = [r[0] for r in query(db, "SELECT DISTINCT thread_name FROM samples WHERE profile = 'wall'")]
    check(WAITER in names, "%s: whose samples carry the Python name (%s)" % (tag, names))
# A Python crashscope cannot read (here 3.7, when installed): one line, native stacks, no harm.
old = sorted(glob.glob("/root/.pyenv/versions/3.7.*/bin/python3.7"))
if not old:
    print("skip: no CPython 3.7 to check the unsupported-version path with")
else:
    db = os.path.join(d, "old.db")
    st, out, err = record([old[-1], cpu_script], db, timeout=60)
    check(st == 0 and err.count("Python stacks are off") == 1 and "3.8" in err,
          "an unsupported Python gets one line and runs on (%r)" % err.strip()[-160:])
    check(any("_PyEval_EvalFrameDefault" in r[1] for r in stacks(db, "cpu")),
          "and native-only stacks")
finish()
