"""gunicorn's worker timeout: the arbiter sends SIGABRT to a worker stuck in a request. That is
recorded as a hang (not a crash), with the sender (the arbiter) and every thread's stack, and
gunicorn's own handler still runs: the worker exits as gunicorn intends and is replaced."""
import json
import os
import subprocess
import time
from harness import *

d = tmpdir()
db = os.path.join(d, "gunicorn.db")
app = os.path.join(d, "slowapp.py")
with open(app, "w") as f:
    f.write("import time\n"
            "from flask import Flask\n"
            "app = Flask(__name__)\n"
            "@app.route('/slow')\n"
            "def slow():\n"
            "    time.sleep(30)\n"
            "    return 'late'\n"
            "@app.route('/ok')\n"
            "def ok():\n"
            "    return 'ok'\n")
with open(os.path.join(d, "gunicorn_conf.py"), "w") as f:
    # gunicorn calls this from its SIGABRT handler in the worker: proof that it ran
    f.write("def worker_abort(worker):\n"
            "    worker.log.info('worker_abort hook ran in %s', worker.pid)\n")
port = free_port()
env = clean_env(PYTHONPATH=d)
g = subprocess.Popen([CRASHSCOPE, "run", "--db", db, "--", "/usr/bin/python3", "/usr/bin/gunicorn",
                      "-c", os.path.join(d, "gunicorn_conf.py"), "-w", "1", "--timeout", "4", "-b", "127.0.0.1:%d" % port, "slowapp:app"],
                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=d)
try:
    check(wait_http("http://127.0.0.1:%d/ok" % port) == b"ok", "gunicorn serves under crashscope")
    http_get("http://127.0.0.1:%d/slow" % port, timeout=15)  # aborted in the middle
    hang = []
    deadline = time.time() + 10
    while time.time() < deadline and not hang:
        st, out, err = run([CRASHSCOPE, "crashes", "--db", db, "--json"], timeout=10)
        hang = [r for r in (json.loads(out) if st == 0 else []) if r["kind"] == "hang"]
        time.sleep(0.2)
    check(len(hang) == 1 and hang[0]["signal"] == "SIGABRT",
          "the worker timeout is recorded as one hang, SIGABRT: %s" % hang)
    if hang:
        st, out, err = run([CRASHSCOPE, "inspect", "--db", db, "--crash", str(hang[0]["id"]),
                            "--json"], timeout=30)
        c = json.loads(out)["crash"]
        arbiter = query(db, "SELECT ppid FROM processes WHERE pid = ?", (c["pid"],))
        check(arbiter and c["sender_pid"] == arbiter[0][0] and c["code"] == "SI_USER",
              "the sender is the worker's parent, the arbiter (%s, %s)" % (c["sender_pid"], arbiter))
        stacks = [c["stack"]] + [t["stack"] for t in c["threads"]]
        check(any(any("sleep" in f["function"] for f in st) for st in stacks),
              "the stuck thread is seen sleeping")
        st, out, err = run([CRASHSCOPE, "inspect", "--db", db, "--crash", str(hang[0]["id"])])
        check("was stopped as hung by SIGABRT" in out and "not a crash" in out,
              "the text report calls it a hang: %r" % out[:200])
    check(wait_http("http://127.0.0.1:%d/ok" % port) == b"ok",
          "gunicorn replaced the worker and serves again")
finally:
    stop(g)
err = g.stderr.read().decode(errors="replace")
check("WORKER TIMEOUT" in err, "gunicorn logged its own WORKER TIMEOUT")
hung = query(db, "SELECT pid FROM crashes WHERE kind = 'hang'")
check(hung and ("worker_abort hook ran in %d" % hung[0][0]) in err,
      "gunicorn's own SIGABRT handler then ran in the hung worker (its worker_abort hook)")
# Whether the worker also finished exiting before gunicorn's SIGKILL, about a second after the
# SIGABRT, depends on the machine's load: reported, not asserted.
ends = query(db, "SELECT end_reason FROM processes WHERE pid IN (SELECT pid FROM crashes)")
print("the hung worker's end: %s" % ends)
finish()
