"""Threads that dlopen/dlclose a library and throw C++ exceptions in a loop, sampled at a
high CPU and wall rate: the program finishes within its bound (no deadlock on the loader
lock), exits 0, and stacks were still recorded."""
import os
import time
from harness import *

d = tmpdir()
db = os.path.join(d, "loader.db")
lib = prog("libstress_lib.so")
t0 = time.time()
st, out, err = record([prog("loader_stress"), lib, "8"], db, timeout=60,
                      CRASHSCOPE_CPU_HZ=1000, CRASHSCOPE_WALL_HZ=500)
took = time.time() - t0
check(st == 0, "loader_stress exits 0 under 1000 Hz sampling (got %r) %s" % (st, err[-300:]))
check(took < 30, "it finished within 30 s (took %.1f s for an 8 s run)" % took)
iters = int(out.split()[1]) if out.startswith("iterations") else 0
check(iters > 1000, "it made progress (%d dlopen/throw/dlclose iterations)" % iters)
rows = stacks(db, "cpu")
total = sum(r[0] for r in rows)
deep = sum(r[0] for r in rows if len(r[1]) >= 3)
named = sum(r[0] for r in rows if r[1] and r[1][0] != "[unknown]" and not r[1][0].startswith("0x"))
check(total > 1000, "cpu samples were recorded meanwhile (%d)" % total)
# While another thread is inside dlclose only the interrupted instruction is kept (its module's
# unwind tables may be going away), so full stacks are a share, not all.
check(deep > total * 0.2, "full stacks recorded (%d of %d with >= 3 frames)" % (deep, total))
check(named > total * 0.9, "the interrupted code is attributed to a function or module (%d of %d)" % (named, total))
finish()
