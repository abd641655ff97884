"""Signals: a daemon-style program that resets every signal to the default while being sampled
is not killed by the recorder's signal, and sigaction() reports exactly what the program set;
a program's handler that interrupts the recorder's unwinder still gets a working sigprocmask;
a program that segfaults dies of SIGSEGV exactly as without the recorder."""
import os
import signal
from harness import *

d = tmpdir()
db = os.path.join(d, "sig.db")
st, out, err = record([prog("signal_reset")], db, timeout=30, CRASHSCOPE_CPU_HZ=1000,
                      CRASHSCOPE_WALL_HZ=500)
check(st == 0 and "survived" in out, "resetting every signal does not kill the program (%r) %s"
      % (st, err.strip()[-200:]))
total = sum(r[0] for r in stacks(db, "cpu"))
check(total > 500, "sampling went on after the reset (%d cpu samples)" % total)

# The recorder skips libunwind's signal masking inside its own unwinds: a handler of the
# program's that runs meanwhile (here ~12,000 times while the thread allocates, each allocation
# sampled and unwound) must still get a sigprocmask that works.
st, out, err = record([prog("signal_reset"), "nested"], os.path.join(d, "nested.db"), timeout=60,
                      CRASHSCOPE_HEAP_SAMPLE_BYTES=256)
check(st == 0 and " 0 wrong masks" in out,
      "a program's handler interrupting crashscope's unwinder gets a working sigprocmask: %s %s"
      % (out.strip(), err.strip()[-200:]))

segv = "import ctypes; ctypes.string_at(0)"
plain = run(["/usr/bin/python3", "-c", segv], timeout=30)
rec = record(["/usr/bin/python3", "-c", segv], os.path.join(d, "segv.db"), timeout=30)
check(plain[0] == -signal.SIGSEGV or plain[0] == 128 + signal.SIGSEGV,
      "without the recorder python dies of SIGSEGV (%r)" % plain[0])
check(rec[0] == 128 + signal.SIGSEGV, "under the recorder it dies of SIGSEGV too (%r)" % rec[0])
st, out, err = run(["/usr/bin/python3", "-X", "faulthandler", "-c", segv],
                   env=clean_env(LD_PRELOAD=LIBRARY, CRASHSCOPE_DB=os.path.join(d, "fh.db")),
                   timeout=30)
check(st == -signal.SIGSEGV, "with faulthandler: still SIGSEGV (%r)" % st)
check("Fatal Python error: Segmentation fault" in err,
      "faulthandler's own report still appears: %r" % err.strip()[:200])
# A program's own signal still cuts its sleep short (the sleep wrappers resume only after
# crashscope's signals), and its handler runs exactly once.
plain = run([prog("sleep_signal")], timeout=30)
rec = record([prog("sleep_signal")], os.path.join(d, "usr1.db"), timeout=30,
             CRASHSCOPE_WALL_HZ=500, CRASHSCOPE_CPU_HZ=1000)
def woken_early(out):
    f = out.split()
    return len(f) == 4 and f[0] == "left" and int(f[1]) >= 2 and f[3] == "1"


# sleep(5) interrupted after about 1 s: 3-4 s left however busy the machine is
check(woken_early(plain[1]), "without crashscope: woken early, handler ran once (%r)" % plain[1])
check(woken_early(rec[1]), "with crashscope: the same (%r)" % rec[1])
st, out, err = run(["/usr/bin/python3", "-c",
                    "import signal; h = lambda s, f: None; signal.signal(signal.SIGUSR2, h);"
                    " print(signal.getsignal(signal.SIGUSR2) is h,"
                    " signal.getsignal(signal.SIGSEGV) == signal.SIG_DFL)"],
                   env=clean_env(LD_PRELOAD=LIBRARY, CRASHSCOPE_DB=os.path.join(d, "p.db")))
check(out.strip() == "True True", "Python sees exactly the handlers it set (%r)" % out)
finish()
