"""exec and children: what a process recorded before exec() is written before the image is
replaced; the exec'd program is recorded too; a shell pipeline run under the recorder gives
the same output and status as without it."""
import os
from harness import *

d = tmpdir()
db = os.path.join(d, "exec.db")
st, out, err = record([prog("execer"), prog("hot"), "1"], db, timeout=30)
check(st == 3, "execer -> hot: the exec'd program's status comes back (got %r)" % st)
rows = query(db, "SELECT pid, app_name, end_reason FROM processes ORDER BY id")
check(len(rows) == 2 and rows[0][0] == rows[1][0],
      "two images recorded under one pid: %s" % rows)
check([r[1:] for r in rows] == [("execer", "exec"), ("hot", "exit")],
      "the first ended by exec, the second by exit: %s" % rows)
rows = query(db, "SELECT p.end_ns / 1000000000, MAX(s.ts), SUM(s.count) FROM processes p"
                 " JOIN samples s ON s.process_id = p.id WHERE p.app_name = 'execer'"
                 " AND s.profile = 'cpu'")
exec_s, last_s, n = rows[0] if rows else (None, None, 0)
# 1.5 s of CPU at 100 Hz: ~150 samples; without the write at exec up to 100 would be missing
check(n and n >= 140 and last_s >= exec_s - 1,
      "what was recorded up to exec was written (%s samples, last in second %s, exec in %s)"
      % (n, last_s, exec_s))
frac, total = share(stacks(db, "cpu", pid=rows and query(db, "SELECT pid FROM processes")[0][0]),
                    "before_exec_work")
check(frac > 0, "the execer's samples are in before_exec_work")

script = "seq 1 200000 | sort -rn | tail -n 3 | tr '\\n' ' '; exit 7"
plain = run(["sh", "-c", script], timeout=30)
db2 = os.path.join(d, "pipe.db")
rec = record(["sh", "-c", script], db2, timeout=30)
check(plain[0] == 7 and rec[0] == 7, "pipeline status unchanged (%r vs %r)" % (plain[0], rec[0]))
check(plain[1] == rec[1] and rec[1] == "3 2 1 ",
      "pipeline output unchanged: %r" % rec[1])
check("crashscope:" not in rec[2].replace(rec[2].splitlines()[0], "", 1),
      "no recorder messages beyond the first line: %r" % rec[2][:300])
apps = {a for (a,) in query(db2, "SELECT app_name FROM processes")}
check({"sh", "seq", "sort"} <= apps, "every program of the pipeline was recorded: %s" % sorted(apps))
finish()
