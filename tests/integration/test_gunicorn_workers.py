"""A Flask app run by gunicorn with 2 pre-forked workers, loaded by wrk: both workers are
recorded under their own pids, with the Python request handler in their stacks."""
import os
import subprocess
import time
from harness import *

d = tmpdir()
db = os.path.join(d, "workers.db")
with open(os.path.join(d, "reportapp.py"), "w") as f:
    f.write("""from flask import Flask
app = Flask(__name__)
def compute_report(n):
    s = 0
    for i in range(n):
        s += i % 7
    return s
@app.route('/report')
def report():
    return str(compute_report(40000))
""")
port = free_port()
g = subprocess.Popen([CRASHSCOPE, "run", "--db", db, "--", "/usr/bin/python3", "/usr/bin/gunicorn",
                      "-w", "2", "-b", "127.0.0.1:%d" % port, "reportapp:app"],
                     env=clean_env(PYTHONPATH=d), cwd=d, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE)
try:
    check(wait_http("http://127.0.0.1:%d/report" % port), "gunicorn serves under crashscope")
    st, out, err = run(["wrk", "-t2", "-c4", "-d5s", "--timeout", "5s",
                        "http://127.0.0.1:%d/report" % port], timeout=30)
    reqs = next((l for l in out.splitlines() if "requests in" in l), "")
    check(st == 0 and reqs, "wrk loaded it: %s" % reqs.strip())
    time.sleep(1.5)  # one more flush
finally:
    stop(g, 20)
procs = query(db, "SELECT pid, ppid FROM processes")
pids = {p for p, _ in procs}
workers = [p for p, pp in procs if pp in pids]
check(len(workers) == 2, "two workers, children of the arbiter: %s" % procs)
for w in workers:
    frac, total = share(stacks(db, "cpu", pid=w), "compute_report")
    check(total > 20 and frac > 0.3,
          "worker %d: its own samples, with the Python handler compute_report (%.0f%% of %d)"
          % (w, 100 * frac, total))
finish()
