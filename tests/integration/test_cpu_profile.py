"""A CPU-bound program with a known hot function, recorded at 100 Hz for 5 s: the cpu
profile has >= 400 samples, the hot function holds >= 80% of them, the exported pprof is read
by `go tool pprof` with the hot function on top, the program's exit status passes through.
The program renames itself with prctl half way: the samples after it carry the new name."""
import os
from harness import *

d = tmpdir()
db = os.path.join(d, "cpu.db")
st, out, err = record([prog("hot"), "5", "cpu", "hot-renamed"], db, timeout=30, CRASHSCOPE_CPU_HZ=100)
check(st == 3, "crashscope run exits with the program's status (3), got %r" % st)
check(err.count("crashscope: recording") == 1 and db in err,
      "one line says where the data goes: %r" % err.strip()[:200])
rows = stacks(db, "cpu")
frac, total = share(rows, "hot_function")
check(total >= 400, "at least 400 cpu samples in 5 s at 100 Hz (got %d)" % total)
check(frac >= 0.80, "hot_function holds >= 80%% of cpu samples (got %.1f%%)" % (100 * frac))
top = max(rows, key=lambda r: r[0])
check(top[1][0] == "hot_function" and "main" in top[1],
      "the hottest stack is main -> hot_function, innermost first: %s" % top[1][:6])
# the handler looks at the OS name once a second: ~2.5 s of samples under each name
names = {}
for r in rows:
    names[r[3]] = names.get(r[3], 0) + r[0]
check(set(names) == {"hot", "hot-renamed"} and min(names.values()) >= 100,
      "samples before the prctl rename carry the old name, after it the new one: %r" % names)
proc = query(db, "SELECT app_name, end_reason, cpu_hz FROM processes")
check(proc == [("hot", "exit", 100)], "process row: app name, normal exit, rate: %r" % proc)

pp = os.path.join(d, "cpu.pb.gz")
st, out, err = run([CRASHSCOPE, "export", "--db", db, "--type", "cpu", "--format", "pprof",
                    "-o", pp])
check(st == 0 and os.path.getsize(pp) > 0, "export --format pprof writes a file: %s" % err.strip())
st, out, err = go_pprof_top(pp)
lines = [l for l in out.splitlines() if l.strip() and l.split()[-1:] != ["flat%"]]
first = next((l for l in out.splitlines() if "hot_function" in l or "cold_function" in l), "")
check(st == 0, "go tool pprof reads the export (%s)" % err.strip()[-200:])
check("hot_function" in first, "go tool pprof -top puts hot_function first: %r" % first)

folded = os.path.join(d, "cpu.folded")
st, out, err = run([CRASHSCOPE, "export", "--db", db, "--type", "cpu", "--format", "folded",
                    "-o", folded])
text = open(folded).read() if st == 0 else ""
best = max((l for l in text.splitlines()), key=lambda l: int(l.rsplit(" ", 1)[1]), default="")
check(best.split(" ")[0].endswith("main;hot_function"),
      "folded export: heaviest line ends main;hot_function: %r" % best[:120])
finish()
