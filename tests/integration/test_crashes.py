"""The crash handler, as a new user would check it: programs that die of SIGSEGV (NULL
dereference in a named worker thread, stack overflow, a signal sent with kill), SIGABRT
(abort, double free while other threads hammer malloc), SIGBUS, SIGILL and SIGFPE. Each is
reported with the right signal, code and faulting function, the program's exit status is the
one it has without crashscope, nothing hangs, and the core dump still shows the fault."""
import json
import os
import re
import signal
import subprocess
import time
from harness import *

d = tmpdir()
CRASHER = prog("crasher")

# mode: (signal, code, culprit function, thread name or None)
CASES = {
    "null": (signal.SIGSEGV, "SEGV_MAPERR", "store_record", "db-worker"),
    "overflow": (signal.SIGSEGV, "SEGV_MAPERR", "recurse_forever", None),
    "abort": (signal.SIGABRT, "SI_TKILL", "validate_invariant", None),
    "bus": (signal.SIGBUS, "BUS_ADRERR", "read_mapped", None),
    "ill": (signal.SIGILL, "ILL_ILLOPN", "execute_opcode", None),
    "fpe": (signal.SIGFPE, "FPE_INTDIV", "compute_ratio", None),
    "doublefree": (signal.SIGABRT, "SI_TKILL", "release_buffer", None),
    "segv-user": (signal.SIGSEGV, "SI_USER", "send_self", None),
}


def inspect_json(db, crash=None):
    args = [CRASHSCOPE, "inspect", "--db", db, "--json"] + (["--crash", str(crash)] if crash else [])
    st, out, err = run(args, timeout=30)
    try:
        return json.loads(out) if st == 0 else None
    except ValueError:
        check(False, "inspect --json prints one JSON object: %r" % out[:200])
        return None


for mode, (sig, code, fn, tname) in CASES.items():
    db = os.path.join(d, mode + ".db")
    plain = run([CRASHER, mode], timeout=30)
    t0 = time.time()
    st, out, err = record([CRASHER, mode], db, timeout=30)
    took = time.time() - t0
    check(plain[0] == -sig, "%s: without crashscope it dies of %s (%r)" % (mode, sig.name, plain[0]))
    check(st == 128 + sig, "%s: under crashscope run the status is 128+%s (%r)" % (mode, sig.name, st))
    check(took < 10, "%s: died and was reported within 10 s (%.1f s)" % (mode, took))
    check("crash 1: crasher" in err and ("died of %s" % sig.name) in err,
          "%s: crashscope run printed the report" % mode)
    j = inspect_json(db)
    if not check(j is not None, "%s: inspect --json works" % mode):
        continue
    c = j["crash"]
    stack = [f["function"] for f in c["stack"]]
    check(c["signal"] == sig.name and c["code"] == code,
          "%s: signal %s code %s (got %s %s)" % (mode, sig.name, code, c["signal"], c["code"]))
    culprit = stack[c["culprit_frame"]] if stack else ""
    check(culprit.startswith(fn), "%s: the faulting function is %s (got %s; stack %s)"
          % (mode, fn, culprit, stack[:6]))
    if tname:
        check(c["thread"]["name"] == tname, "%s: thread name %s (got %r)" % (mode, tname, c["thread"]))
    idlers = [t for t in c["threads"] if t["name"] == "idler"]
    check(len(idlers) == 1 and any(f["function"] == "idle_wait" for f in idlers[0]["stack"]),
          "%s: the other thread is reported waiting in idle_wait" % mode)

# Two threads fault, the second (which blocks signals, so the request for its stack waits)
# while the first one's crash is captured: it is reported as crashed too, with the stack of
# its own fault, not as silent nor at the crash handler's wait. Should the second thread win
# the capture, the first is the one reported so.
FUNCS = {"db-worker": "store_record", "index-worker": "store_index"}
seen = []
for i in range(4):
    db = os.path.join(d, "two%d.db" % i)
    st, out, err = record([CRASHER, "two"], db, timeout=30)
    j = inspect_json(db) or {}
    c = j.get("crash", {})
    other = [t for t in c.get("threads", []) if t["name"] in FUNCS]
    for t in other:
        if t["state"].startswith("crashed"):
            top = t["stack"][0]["function"] if t["stack"] else None
            seen.append((t["state"], t["name"], top))
    check(st == 128 + signal.SIGSEGV and c.get("thread", {}).get("name") in FUNCS and len(other) == 1,
          "two: the process dies of SIGSEGV, one worker captured, the other listed (%r %s)"
          % (st, [(t["name"], t["state"]) for t in other]))
check(len(seen) == 4 and all(s == "crashed SIGSEGV" and top == FUNCS[name] for s, name, top in seen),
      "two: the worker that faulted meanwhile is 'crashed SIGSEGV', at its own function: %s" % seen)

# A process the program started crashes, and the program lives on (a pre-fork server's worker;
# here a shell's child): crashscope run exits with the program's status and lists the crash.
db = os.path.join(d, "below.db")
st, out, err = record(["/bin/sh", "-c", '"$0" null; echo "worker died: $?"', CRASHER], db,
                      timeout=30)
check(st == 0 and "worker died: 139" in out, "below: the shell lives on and exits 0 (%r)" % st)
check(re.search(r"1 crash in processes it started.*\n  crash 1: pid \d+ died of SIGSEGV at .*, "
                r"in store_record at \S+crasher.c:\d+\n", err),
      "below: crashscope run lists the child's crash: %r" % err[-400:])
st, out, err = record([CRASHER, "null"], os.path.join(d, "own.db"), timeout=30)
check("in processes it started" not in err, "a crash of the program itself is not listed again")

# A command line that is not UTF-8 (a surrogate, an overlong "/", a stray byte): inspect
# --json still prints valid UTF-8, each bad byte as U+FFFD (a JSON reader refuses the whole
# document for one invalid sequence, and Python's decoder is as strict as Go's).
db = os.path.join(d, "bytes.db")
record([CRASHER, "null", b"\xed\xa0\x80-\xc0\xaf-\xff"], db, timeout=30)
p = subprocess.run([CRASHSCOPE, "inspect", "--db", db, "--json"], env=clean_env(),
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
try:
    cmdline = json.loads(p.stdout.decode("utf-8"))["process"]["cmdline"]
except (UnicodeDecodeError, ValueError, KeyError) as e:
    cmdline = "not read: %s" % e
check(cmdline.endswith(" null \ufffd\ufffd\ufffd-\ufffd\ufffd-\ufffd"),
      "a command line of invalid UTF-8 comes out of inspect --json as U+FFFD (%r)" % cmdline)

# The NULL dereference in detail: every key scripts rely on.
j = inspect_json(os.path.join(d, "null.db"))
c = j["crash"]
check(c["fault_address"] == "0x0", "null: fault address 0x0 (got %s)" % c["fault_address"])
check(c["stack"][0]["function"] == "store_record" and c["stack"][1]["function"] == "db_worker",
      "null: frame 0 is store_record, its caller db_worker")
f0 = c["stack"][0]
check(f0["kind"] == "native" and f0["module"].endswith("/crasher") and
      f0["file"].endswith("crasher.c") and isinstance(f0["line"], int) and
      f0["address"].startswith("0x"), "null: frame has module, file:line, kind, address: %s" % f0)
for key in ("id", "pid", "time", "threads"):
    check(key in c, "crash.%s present" % key)
check(isinstance(c["thread"]["tid"], int) and c["thread"]["tid"] != c["pid"],
      "crash.thread.tid is the worker's own tid")
mods = {os.path.basename(m["path"]): m for m in c["modules"]}
check("crasher" in mods and any(k.startswith("libc.so") for k in mods) and
      mods["crasher"]["build_id"] and mods["crasher"]["base"].startswith("0x"),
      "the module list has path, load address and build id: %s" % mods.get("crasher"))
w = j["window"]
check(all(k in w for k in ("from", "until")) and set(w["samples"]) == {"cpu", "wall"},
      "window.from, window.until, window.samples.cpu/wall present")
check(w["samples"]["wall"] > 0, "the window before the crash has wall samples (%s)" % w["samples"])

# The crash is listed within 2 s of the signal, without crashscope run.
db = os.path.join(d, "fast.db")
env = clean_env(LD_PRELOAD=LIBRARY, CRASHSCOPE_DB=db)
p = subprocess.Popen([CRASHER, "null"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
p.stdout.readline()  # "ready": the crash follows at once
t_signal = time.time()
found = None
while time.time() - t_signal < 5 and not found:
    st, out, err = run([CRASHSCOPE, "crashes", "--db", db, "--json"], timeout=10)
    rows = json.loads(out) if st == 0 and out.startswith("[") else []
    found = [r for r in rows if r["kind"] == "crash" and r["pid"] == p.pid]
    if not found:
        time.sleep(0.05)
p.wait(timeout=10)
elapsed = time.time() - t_signal
check(bool(found) and elapsed <= 2.0,
      "the crash is in `crashscope crashes` %.2f s after the signal (<= 2 s)" % elapsed)
check(found and found[0]["signal"] == "SIGSEGV" and "store_record" in found[0]["where"],
      "crashes lists it with signal and function: %s" % (found[:1],))

# A fault inside the capture itself ends the capture, never the program's own ending. (Not in
# the sanitizer build: the deliberate fault is what AddressSanitizer exists to stop.)
db = os.path.join(d, "selffault.db")
if SANITIZE:
    print("skip: deliberate fault inside the handler under AddressSanitizer")
else:
    t0 = time.time()
    st, out, err = record([CRASHER, "null"], db, timeout=30, CRASHSCOPE_TEST_FAULT_IN_HANDLER=1)
    check(st == 128 + signal.SIGSEGV and time.time() - t0 < 10,
          "a crash inside the handler: the program still dies of SIGSEGV, promptly (%r)" % st)

# Core dumps: the same as without crashscope, with the fault itself in frame 0.
pattern = open("/proc/sys/kernel/core_pattern").read().strip()
if pattern.startswith("|") or "/" in pattern:
    print("skip core dump check: core_pattern is %r, not a file in the working directory" % pattern)
else:
    for preload in (False, True):
        cwd = tmpdir()
        env = clean_env(CRASHSCOPE_DB=os.path.join(cwd, "c.db"))
        if preload:
            env["LD_PRELOAD"] = LIBRARY
        subprocess.run(["sh", "-c", "ulimit -c unlimited; exec \"$0\" null", CRASHER], cwd=cwd,
                       env=env, timeout=30, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cores = [f for f in os.listdir(cwd) if f.startswith("core")]
        label = "with crashscope" if preload else "without crashscope"
        if not check(len(cores) == 1, "a core file is written %s (%s)" % (label, cores)):
            continue
        st, out, err = run(["gdb", "-batch", "-nx", "-ex", "bt 3", CRASHER,
                            os.path.join(cwd, cores[0])], env=clean_env(), timeout=60)
        frame0 = next((l for l in out.splitlines() if l.startswith("#0")), "")
        check("store_record" in frame0, "the core %s has the fault in frame 0: %r" % (label, frame0))
finish()
