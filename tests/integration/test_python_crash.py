"""Python programs that crash, and processes that vanish.
- With Python's faulthandler enabled, its traceback and crashscope's report both appear, and
  crashscope's fault address is the true one (not one inside faulthandler's handler).
- A recorded process killed with SIGKILL (as the OOM killer does) is listed as a death, with
  its window, the next time the database is read."""
import json
import os
import re
import signal
import subprocess
import time
from harness import *

d = tmpdir()
db = os.path.join(d, "fh.db")
script = os.path.join(d, "crashy_service.py")
with open(script, "w") as f:
    f.write("import ctypes, faulthandler, time\n"
            "faulthandler.enable()\n"
            "def parse_payload():\n"
            "    t = time.process_time() + 0.5\n"
            "    while time.process_time() < t:\n"
            "        pass\n"
            "    return ctypes.string_at(0)\n"
            "parse_payload()\n")
st, out, err = record(["/usr/bin/python3", script], db, timeout=30)
check(st == 128 + signal.SIGSEGV, "python dies of SIGSEGV under crashscope (%r)" % st)
check("Fatal Python error: Segmentation fault" in err and "parse_payload" in err,
      "faulthandler's own traceback appears")
check("died of SIGSEGV" in err, "crashscope's report appears too")
report = err
st, out, err = run([CRASHSCOPE, "inspect", "--db", db, "--json"], timeout=30)
j = json.loads(out) if st == 0 else {}
c = j.get("crash", {})
check(c.get("fault_address") == "0x0" and c.get("code") == "SEGV_MAPERR",
      "the fault address is the true one, 0x0 (got %s %s)" % (c.get("fault_address"), c.get("code")))
fns = [f["function"] for f in c.get("stack", [])]
check(fns[:1] and "strlen" in fns[0] and not any("faulthandler" in f for f in fns),
      "the crash stack starts at the fault (strlen of NULL), not in a handler: %s" % fns[:5])
check(c.get("thread", {}).get("name") == "python3", "thread name recorded: %s" % c.get("thread"))
# Where the CPU went, by Python function: the half second of parse_payload's loop (lines 5-6),
# not the interpreter's own functions that the native list shows.
top = j.get("window", {}).get("top_cpu_python", [])
check(top and top[0]["function"] == "parse_payload" and top[0]["file"] == script and
      top[0]["line"] in (5, 6) and top[0]["samples"] >= 25,
      "inspect --json: the hottest Python function is parse_payload at line 5-6: %s" % top[:2])
check(re.search(r"by Python function.*?\n +\d+\.\d%  parse_payload +" + re.escape(script) +
                r":[56]\n", report, re.S),
      "and the report printed at the crash says so: %r" % report[report.find("where the CPU"):][:600])
# A native fault under Python code is placed in the program's own Python line, past ctypes'
# own Python frames (the standard library's): in the listing and in the report's first lines.
st, out, _ = run([CRASHSCOPE, "crashes", "--db", db, "--json"], timeout=30)
rows = json.loads(out) if st == 0 else []
want = "called from Python parse_payload at %s:7" % script
check(rows and rows[0]["where"].endswith(want), "crashes: where ends with %r (%r)"
      % (want, rows[0]["where"] if rows else None))
check(re.search(r'thread "python3" \(tid \d+\), in .*, ' + re.escape(want) + "\n", report),
      "the report's thread line says so too")
# The loop's time.process_time() is a system call made from the vDSO, which has no file: its
# samples are named from the vDSO's image in memory, one name whether the writer stored them
# or the crash record carried them ("linux-vdso.so.1" to dl_iterate_phdr, "[vdso]" in maps).
natives = [t["function"] for t in j.get("window", {}).get("top_cpu", [])]
check(any("clock_gettime" in f for f in natives[:3]) and not any("vdso" in f for f in natives),
      "the vDSO's clock_gettime is named, under one name: %s" % natives[:5])

# faulthandler gives the main thread a small alternate stack of its own (16 KiB on the heap):
# crashscope keeps its bigger one for its handlers, so neither sampling nor the crash capture
# can overflow into the heap (that once showed as "malloc(): unaligned tcache chunk").
bad = []
for i in range(20):
    st, out, err = run(["/usr/bin/python3", "-X", "faulthandler", "-c",
                        "import ctypes; ctypes.string_at(0)"],
                       env=clean_env(LD_PRELOAD=LIBRARY, CRASHSCOPE_DB=os.path.join(d, "fh20.db"),
                                     CRASHSCOPE_CPU_HZ=1000), timeout=30)
    if st != -signal.SIGSEGV or "tcache" in err or "free()" in err:
        bad.append((st, err[:80]))
check(not bad, "20 faulthandler crashes, all a clean SIGSEGV: %s" % bad[:3])
st, out, err = run(["/usr/bin/python3", "-X", "faulthandler", "-c",
                    "import time\nt = time.process_time() + 1\nwhile time.process_time() < t: pass"],
                   env=clean_env(LD_PRELOAD=LIBRARY, CRASHSCOPE_DB=os.path.join(d, "fhs.db")))
main_cpu = query(os.path.join(d, "fhs.db"), "SELECT SUM(count) FROM samples WHERE profile = 'cpu'")[0][0]
check(st == 0 and (main_cpu or 0) >= 80,
      "with faulthandler on, the main thread is still sampled (%s)" % main_cpu)

db = os.path.join(d, "kill.db")
env = clean_env(LD_PRELOAD=LIBRARY, CRASHSCOPE_DB=db)
p = subprocess.Popen([prog("hot"), "30"], env=env)
time.sleep(2.5)
p.send_signal(signal.SIGKILL)
p.wait(timeout=10)
deadline = time.time() + 15
rows = []
while time.time() < deadline:
    st, out, err = run([CRASHSCOPE, "crashes", "--db", db, "--json"], timeout=10)
    rows = [r for r in (json.loads(out) if st == 0 else []) if r["pid"] == p.pid]
    if rows:
        break
    time.sleep(0.5)
check(len(rows) == 1 and rows[0]["kind"] == "death",
      "a SIGKILLed process is listed as a death: %s" % rows)
check(rows and "vanished" in rows[0]["where"], "and says it vanished without a record")
st, out, err = run([CRASHSCOPE, "inspect", "--db", db], timeout=30)
check(st == 0 and "vanished" in out and "hot_function" in out,
      "inspect shows the death and what it was doing: %r" % out[:300])
cpu = query(db, "SELECT SUM(count) FROM samples WHERE pid = ?", (p.pid,))[0][0] or 0
check(cpu >= 100, "its window is still there (%d samples)" % cpu)
finish()
