"""The database stays bounded over a run much longer than the window: with a 10 s window and
a 36 s run, samples older than the window are gone while the program runs, and the file
stops growing once the window is full."""
import os
import subprocess
import time
from harness import *

d = tmpdir()
db = os.path.join(d, "window.db")
env = clean_env(CRASHSCOPE_WINDOW_SECONDS=10, CRASHSCOPE_CPU_HZ=500, CRASHSCOPE_WALL_HZ=200)
p = subprocess.Popen([CRASHSCOPE, "run", "--db", db, "--", prog("hot"), "36", "wall"], env=env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def size():
    return sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))


sizes = []
spans = []
try:
    for t in range(34):
        time.sleep(1)
        if t >= 12 and t % 3 == 0:
            sizes.append(size())
            spans.append(query(db, "SELECT MAX(ts) - MIN(ts) FROM samples")[0][0])
    st = p.wait(timeout=30)
finally:
    if p.poll() is None:
        p.kill()
check(st == 3, "the program ran to its end (status %r)" % st)
check(all(s is not None and s <= 11 for s in spans),
      "the window never holds more than 10 s (spans %s)" % spans)
check(len(sizes) >= 6 and max(sizes[2:]) <= sizes[1] * 1.3,
      "the file stops growing once the window is full (sizes %s)" % sizes)
finish()
