"""A program that sleeps in one thread and spins in another: the wall profile shows both
threads, named, with their functions; the cpu profile shows almost only the spinning one;
and sampling never cuts the sleeper's sleep(1) short (the EINTR a wall signal would cause)."""
import os
from harness import *

d = tmpdir()
db = os.path.join(d, "wall.db")
st, out, err = record([prog("sleep_spin"), "3"], db, timeout=30,
                      CRASHSCOPE_CPU_HZ=100, CRASHSCOPE_WALL_HZ=97)
check(st == 0, "program exits 0 (got %r)" % st)
sleeps = [float(l.split()[1]) for l in out.splitlines() if l.startswith("sleep ")]
lefts = [int(l.split()[3]) for l in out.splitlines() if l.startswith("sleep ")]
check(len(sleeps) == 3 and min(sleeps) >= 0.999,
      "every sleep(1) lasted a full second under wall sampling: %s" % sleeps)
check(lefts == [0, 0, 0], "sleep() reported nothing left: %s" % lefts)

wall = stacks(db, "wall")
by_thread = {}
for count, fns, tid, tname, pid in wall:
    by_thread.setdefault(tname, []).append((count, fns))
check("sleeper" in by_thread and "spinner" in by_thread,
      "wall profile has both threads by name: %s" % sorted(by_thread))
sl = sum(c for c, f in by_thread.get("sleeper", []) if "sleeper_wait" in f)
sp = sum(c for c, f in by_thread.get("spinner", []) if "spinner_loop" in f)
# 3 s at 97 Hz is ~290 ticks per thread.
check(sl >= 200, "sleeper is seen waiting in sleeper_wait in the wall profile (%d samples)" % sl)
check(sp >= 200, "spinner is seen in spinner_loop in the wall profile (%d samples)" % sp)
# The ticker sleeps over several ticks while no thread needs a signal and counts them: each
# thread's wall samples still add up to ~97 a second of its life (3 s and a little).
for name in ("sleeper", "spinner"):
    total = sum(c for c, f in by_thread.get(name, []))
    check(250 <= total <= 360, "%s's wall samples add up to its ~3 s at 97 Hz (%d)" % (name, total))

cpu = stacks(db, "cpu")
total = sum(r[0] for r in cpu)
spin = sum(r[0] for r in cpu if r[3] == "spinner")
sleeper_cpu = sum(r[0] for r in cpu if r[3] == "sleeper")
# the spinner spins for 3 s of wall time: how much CPU it gets depends on the machine's load
check(total >= 50 and spin / total >= 0.95,
      "cpu profile is almost only the spinner (%d of %d)" % (spin, total))
check(sleeper_cpu <= 3, "the sleeper has (almost) no cpu samples (%d)" % sleeper_cpu)
finish()
