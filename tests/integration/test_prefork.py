"""A pre-fork server pattern: a parent forks three workers that each burn CPU in their own
function. Every worker is recorded under its own pid with its own function, and the parent
goes on undisturbed."""
import os
from harness import *

d = tmpdir()
db = os.path.join(d, "prefork.db")
st, out, err = record([prog("prefork"), "3"], db, timeout=30)
check(st == 0, "pre-fork parent and workers exit 0 (got %r)" % st)
workers = [l.split() for l in out.splitlines() if l.startswith("worker ")]
check(len(workers) == 3, "three workers started: %s" % workers)
procs = dict(query(db, "SELECT pid, ppid FROM processes"))
for _, pid, fn in workers:
    pid = int(pid)
    rows = stacks(db, "cpu", pid=pid)
    frac, total = share(rows, fn)
    # each worker burns 3 s of CPU at 100 Hz; its last partial second may be lost at _exit
    check(total >= 180, "worker %d has its own cpu samples (%d)" % (pid, total))
    check(frac >= 0.9, "worker %d is attributed to %s (%.0f%%)" % (pid, fn, 100 * frac))
    others = [f for f in ("worker_alpha", "worker_beta", "worker_gamma") if f != fn]
    check(all(share(rows, o)[0] == 0 for o in others),
          "worker %d has no samples of the other workers' functions" % pid)
    check(pid in procs, "worker %d has its own process row" % pid)
ends = query(db, "SELECT end_reason, COUNT(*) FROM processes GROUP BY end_reason")
check(ends == [("exit", 4)], "parent and three workers all ended normally: %s" % ends)
finish()
