"""Configuration: bad values are named on stderr once and never break the program;
CRASHSCOPE_ENABLED=0 does nothing at all; Pyroscope SDK names are aliases; a database path
that is not a crashscope database is refused without being touched; a missing program gives
127 like a shell; a program killed by a signal gives 128+N."""
import hashlib
import os
import re
import signal
from harness import *

d = tmpdir()

db = os.path.join(d, "bad.db")
st, out, err = record([prog("hot"), "1"], db, timeout=30, CRASHSCOPE_CPU_HZ="fast",
                      CRASHSCOPE_WINDOW_SECONDS="-5", CRASHSCOPE_TAGS="env=prod,broken")
check(st == 3, "bad values never break the program (status %r)" % st)
check("CRASHSCOPE_CPU_HZ='fast'" in err and "using 100" in err,
      "the bad rate is named with its value and the default: %r" % err)
check("CRASHSCOPE_WINDOW_SECONDS='-5'" in err, "the bad window is named")
check("CRASHSCOPE_TAGS='env=prod,broken'" in err, "bad tags are named")
check(err.count("CRASHSCOPE_CPU_HZ") == 1, "each problem is said once")
check(query(db, "SELECT cpu_hz, window_seconds, tags FROM processes") == [(100, 300, "")],
      "defaults were used")

db = os.path.join(d, "off.db")
st, out, err = record([prog("hot"), "1"], db, timeout=30, CRASHSCOPE_ENABLED="0")
check(st == 3 and not os.path.exists(db), "CRASHSCOPE_ENABLED=0: no database, same status")

db = os.path.join(d, "alias.db")
st, out, err = record([prog("hot"), "1"], db, timeout=30, PYROSCOPE_APPLICATION_NAME="shop-api",
                      CRASHSCOPE_TAGS="region=eu,tier=web")
check(query(db, "SELECT app_name, tags FROM processes") == [("shop-api", "region=eu,tier=web")],
      "PYROSCOPE_APPLICATION_NAME and tags recorded")
st, out, err = record([prog("hot"), "1"], db, timeout=30, PYROSCOPE_APPLICATION_NAME="a",
                      CRASHSCOPE_APP_NAME="b")
check(query(db, "SELECT app_name FROM processes ORDER BY id DESC LIMIT 1") == [("b",)],
      "CRASHSCOPE_APP_NAME wins over the Pyroscope alias")

foreign = os.path.join(d, "notes.txt")
with open(foreign, "w") as f:
    f.write("precious notes, not a database\n" * 100)
before = hashlib.sha256(open(foreign, "rb").read()).hexdigest()
st, out, err = record([prog("hot"), "1"], foreign, timeout=30)
check(st == 3, "a non-database CRASHSCOPE_DB never breaks the program (%r)" % st)
check("not a usable SQLite database" in err and "left untouched" in err,
      "the reason is given: %r" % err.strip()[-200:])
check(hashlib.sha256(open(foreign, "rb").read()).hexdigest() == before, "the file is unchanged")
st, out, err = run([CRASHSCOPE, "export", "--db", foreign, "--type", "cpu", "-o", "-"])
check(st == 1 and "not" in err, "export refuses it with a message: %r" % err.strip())

st, out, err = record(["/nonexistent/program"], os.path.join(d, "x.db"))
check(st == 127 and "cannot run" in err, "a missing program gives 127 (%r)" % st)
st, out, err = record(["sh", "-c", "kill -TERM $$"], os.path.join(d, "k.db"))
check(st == 128 + signal.SIGTERM, "killed by SIGTERM gives 143 (%r)" % st)
st, out, err = run([CRASHSCOPE, "export", "--db", os.path.join(d, "alias.db"), "--type", "cpu",
                    "--pid", "999999", "-o", "-"])
check(st == 1 and "no cpu samples of pid 999999" in err, "export of an unknown pid says so")
# Everything off: the recorder's threads only wait (a writer that spun when no ring existed
# once burned a core here). 2 s of sleep; a spinning thread would take ~2 s of CPU.
import resource
before = resource.getrusage(resource.RUSAGE_CHILDREN)
st, out, err = record(["sleep", "2"], os.path.join(d, "idle.db"), CRASHSCOPE_CPU_HZ="0",
                      CRASHSCOPE_WALL_HZ="0", CRASHSCOPE_HEAP_SAMPLE_BYTES="0")
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
check(st == 0 and cpu < 0.5, "all sampling off: 2 s of sleep cost %.3f s of CPU" % cpu)
# CRASHSCOPE_SELF_TIME=1: what the recorder cost, measured in place, said once at exit.
st, out, err = record([prog("hot"), "1"], os.path.join(d, "self.db"), CRASHSCOPE_SELF_TIME="1")
m = re.search(r"self time over ([0-9.]+) s: sampling handler ([0-9.]+) ms \((\d+) samples.*"
              r"writer thread ([0-9.]+) ms, wall ticker ([0-9.]+) ms; in all ([0-9.]+) ms", err)
check(st == 3 and m and err.count("self time over") == 1,  # hot's own exit status is 3
      "CRASHSCOPE_SELF_TIME=1 says the recorder's cost once (%r)" % err.strip()[-300:])
if m:
    check(int(m.group(3)) >= 50 and float(m.group(4)) > 0 and float(m.group(6)) < 1000 * float(m.group(1)),
          "with the handler's samples (%s) and the writer's time (%s ms)" % (m.group(3), m.group(4)))
    check("self time after" not in err, "a 1 s run has no steady part to report")
# Past the first 3 s the steady part is said too: per second, without the start-up costs.
st, out, err = record([prog("hot"), "6", "wall"], os.path.join(d, "self6.db"),
                      CRASHSCOPE_SELF_TIME="1")
m = re.search(r"self time after the first 3 s \(([0-9.]+) s\): sampling handler ([0-9.]+) ms/s.*"
              r"writer thread ([0-9.]+) ms/s, wall ticker ([0-9.]+) ms/s; in all ([0-9.]+)%", err)
check(st == 3 and m and 1.5 <= float(m.group(1)) <= 4.0,
      "a 6 s run says its steady part, its last 2-3 s (%r)" % err.strip()[-300:])
if m:
    check(float(m.group(2)) > 0 and float(m.group(3)) > 0 and float(m.group(4)) > 0
          and float(m.group(5)) < 100,
          "handler, writer and ticker each cost something there (%s, %s, %s ms/s)"
          % (m.group(2), m.group(3), m.group(4)))
st, out, err = record([prog("hot"), "1"], os.path.join(d, "self.db"))
check(st == 3 and "self time" not in err, "and says nothing without it")
st, out, err = run([CRASHSCOPE, "frobnicate"])
check(st == 2 and "unknown command" in err, "unknown command: usage, status 2")
finish()
