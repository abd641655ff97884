"""Uploads to Pyroscope, end to end, against the project's independent receiver
(tests/receiver/pyroscope_receiver.py, built from the protocol facts, loopback only).
- A program burns CPU in a known function, then crashes: within 5 s of the crash the receiver
  holds the pre-crash cpu and wall slices, with that function on top, and the crash profile,
  all with the crash labels; every profile is read by `go tool pprof`.
- Basic auth and tenant as for Grafana Cloud; the password never reaches a log, the
  database, a report or the server in clear places.
- Server down during the crash, up later: `crashscope upload` delivers everything, once.
- A server error (500) is retried; a push path that answers 404 falls back to /ingest.
- Profiles older than an hour are not sent, and are reported as too old.
- Continuous mode ships slices while the program runs."""
import json
import os
import signal
import subprocess
import time
import urllib.request
from harness import *

RECEIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "receiver",
                        "pyroscope_receiver.py")
PASSWORD = "glc_s3cret-token-42"
d = tmpdir()


class Receiver:
    def __init__(self, *extra):
        self.dump = tmpdir()
        self.p = subprocess.Popen(
            ["/usr/bin/python3", RECEIVER, "--basic-auth-env", "RECV_AUTH", "--tenant", "team-a",
             "--dump-dir", self.dump, "--max-seconds", "300", "--quiet"] + list(extra),
            env=clean_env(RECV_AUTH="12345:" + PASSWORD), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        line = self.p.stdout.readline().decode()
        self.port = int(line.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def get(self, path):
        return json.loads(urllib.request.urlopen(self.url + path, timeout=10).read())

    def control(self, **kw):
        req = urllib.request.Request(self.url + "/control", data=json.dumps(kw).encode(),
                                     headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=10).read())

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
        return self.p.stderr.read().decode(errors="replace")


def server_env(url, **extra):
    return dict(CRASHSCOPE_SERVER_URL=url, CRASHSCOPE_BASIC_AUTH_USER="12345",
                CRASHSCOPE_BASIC_AUTH_PASSWORD=PASSWORD, CRASHSCOPE_TENANT_ID="team-a",
                CRASHSCOPE_TAGS="env=ci,region=local", **extra)


def top_function(profile):
    totals = {}
    for s in profile["samples"]:
        if s["stack"]:
            totals[s["stack"][0]] = totals.get(s["stack"][0], 0) + s["values"][0]
    return max(totals, key=totals.get) if totals else None


def no_secret_in(text, what):
    check(PASSWORD not in text, "the password appears nowhere in %s" % what)


# 1. The crash, end to end.
r = Receiver()
db = os.path.join(d, "e2e.db")
st, out, err = record([prog("flaky"), "4"], db, timeout=40, **server_env(r.url))
t_crash = time.time()
check(st == 139, "flaky dies of SIGSEGV (%r)" % st)
got = []
while time.time() - t_crash < 5:
    got = r.get("/received")
    if any(g["labels"].get("__name__") == "crash" for g in got) and len(got) >= 3:
        break
    time.sleep(0.1)
crash_id = str(query(db, "SELECT id FROM crashes")[0][0])
names = sorted({g["labels"].get("__name__") for g in got})
check({"process_cpu", "wall", "crash"} <= set(names),
      "within 5 s of the crash the receiver has cpu, wall and crash profiles: %s" % names)
for g in got:
    l = g["labels"]
    check(l.get("service_name") == "flaky" and l.get("env") == "ci" and l.get("region") == "local"
          and l.get("crash_id") == crash_id and l.get("crash_signal") == "SIGSEGV"
          and l.get("phase") == ("crash" if l["__name__"] == "crash" else "pre_crash"),
          "%s carries service_name, tags and the crash labels: %s" % (l.get("__name__"), l))
    check(g["auth_user"] == "12345" and g["tenant"] == "team-a", "sent with basic auth and tenant")
    check(not g["warnings"], "the receiver has no warnings about it: %s" % g["warnings"])
cpu = [g for g in got if g["labels"]["__name__"] == "process_cpu"]
check(cpu and top_function(max(cpu, key=lambda g: len(g["profile"]["samples"]))["profile"]) ==
      "checksum_payload", "the pre-crash cpu slices have checksum_payload on top")
for g in cpu:
    p = g["profile"]
    check(p["sample_types"] == [["cpu", "nanoseconds"]] and p["period"] == 10000000 and
          p["duration_nanos"] == 10 * 10**9 and p["time_nanos"] % (10 * 10**9) == 0,
          "cpu slice: cpu/nanoseconds, period 1e9/100, 10 s slice aligned: %s %s %s" %
          (p["sample_types"], p["period"], p["time_nanos"]))
    check(all("thread_name" in s["labels"] and "thread_id" in s["labels"] for s in p["samples"]),
          "every sample has thread_name and thread_id labels")
crash = [g for g in got if g["labels"]["__name__"] == "crash"]
check(len(crash) == 1 and crash[0]["profile"]["samples"][0]["stack"][:2] ==
      ["apply_discount", "handle_request"], "the crash profile is the faulting stack")

# go tool pprof reads every uploaded profile, with its functions and labels.
dumps = sorted(os.listdir(r.dump))
check(len(dumps) == len(got), "every accepted profile was dumped (%d)" % len(dumps))
home = tmpdir()
genv = clean_env(HOME=home, GOCACHE=os.path.join(home, "c"), GOPATH=os.path.join(home, "g"),
                 GOTOOLCHAIN="local", GOPROXY="off")
for f in dumps:
    path = os.path.join(r.dump, f)
    st, out, err = run(["go", "tool", "pprof", "-raw", path], env=genv, timeout=60)
    st2, tags, _ = run(["go", "tool", "pprof", "-tags", path], env=genv, timeout=60)
    # a thread profile holds each thread's latest stack, wherever the thread was then
    want = "apply_discount" if "crash" in f else "main" if "threads" in f else "checksum_payload"
    check(st == 0 and want in out, "go tool pprof -raw reads %s and finds %r" % (f, want))
    check(st2 == 0 and "thread_name" in tags, "go tool pprof -tags lists thread_name in %s" % f)

st, out, err = run([CRASHSCOPE, "inspect", "--db", db])
check("Pyroscope: %d of %d profiles delivered (the crash profile too)" % (len(got), len(got))
      in out, "inspect says the crash reached the server: %r" % out[-300:])
dbtext = subprocess.run(["sqlite3", db, ".dump"], stdout=subprocess.PIPE).stdout.decode(
    errors="replace")
no_secret_in(dbtext, "the database")
no_secret_in(out + err, "the report")
check(r.get("/stats")["secret_leaks"] == 0, "the receiver saw no secret leak")
no_secret_in(r.stop(), "the receiver's log")

# 1b. Memory and threads go too: a program whose heap grows, then crashes.
threads_p = [g for g in got if g["labels"]["__name__"] == "threads"]
check(threads_p and all(g["profile"]["sample_types"] == [["threads", "count"]] for g in threads_p),
      "the thread profile goes as threads/count (%s)" % [g["profile"]["sample_types"] for g in threads_p])
r = Receiver()
db = os.path.join(d, "memory.db")
st, out, err = record([prog("grower"), "rss", "40", "3"], db, timeout=40, **server_env(r.url))
check(st == 139, "grower dies of SIGSEGV (%r)" % st)
t0 = time.time()
mem = []
while time.time() - t0 < 5 and not SANITIZE:
    mem = [g for g in r.get("/received") if g["labels"].get("__name__") == "memory"
           and g["labels"].get("service_name") == "grower"]
    if len(mem) >= 2:
        break
    time.sleep(0.1)
if SANITIZE:
    print("skip: memory uploads (AddressSanitizer's malloc comes first)")
else:
    types = sorted(tuple(map(tuple, g["profile"]["sample_types"])) for g in mem)
    check((("alloc_objects", "count"), ("alloc_space", "bytes")) in types and
          (("inuse_objects", "count"), ("inuse_space", "bytes")) in types,
          "memory profiles arrive with alloc_objects/alloc_space and inuse_objects/inuse_space (%s)"
          % types)
    check(any("grow_cache" in s["stack"] for g in mem for s in g["profile"]["samples"]),
          "naming grow_cache")
    check(all(not g["warnings"] for g in mem), "the receiver accepts them without warnings")
r.stop()

# 2. Server down at the crash, up later: `crashscope upload` delivers everything, once.
db = os.path.join(d, "down.db")
dead = "http://127.0.0.1:9"  # discard port: nothing listens
st, out, err = record([prog("flaky"), "2"], db, timeout=40, **server_env(dead))
check(st == 139, "the program still dies as it would (%r)" % st)
no_secret_in(err, "crashscope run's output")
pending = query(db, "SELECT COUNT(*) FROM uploads WHERE state = 'pending'")[0][0]
check(pending >= 3, "with the server down the profiles stay pending (%d)" % pending)
st, out, err = run([CRASHSCOPE, "inspect", "--db", db])
check("pending" in out and "crashscope upload" in out, "inspect says they are pending")
r = Receiver()
st, out, err = run([CRASHSCOPE, "upload", "--db", db], env=clean_env(**server_env(r.url)))
check(st == 0 and ("%d profiles sent" % pending) in out, "crashscope upload sends them: %r" % out)
st, out, err = run([CRASHSCOPE, "upload", "--db", db], env=clean_env(**server_env(r.url)))
check(st == 0 and "0 profiles sent" in out, "a second upload sends nothing: %r" % out)
got = r.get("/received")
check(len(got) == pending and len({g["id"] for g in got}) == pending,
      "the receiver got each profile exactly once (%d of %d)" % (len(got), pending))
no_secret_in(out + err, "crashscope upload's output")

# 3. A 500 is retried later; a 404 on the push path falls back to /ingest.
r.control(mode="status:500", count=-1)
db = os.path.join(d, "retry.db")
st, out, err = record([prog("flaky"), "2"], db, timeout=40, **server_env(r.url))
states = dict(query(db, "SELECT state, COUNT(*) FROM uploads GROUP BY state"))
statuses = {s for (s,) in query(db, "SELECT status FROM upload_attempts")}
check(states.get("pending", 0) >= 3 and 500 in statuses,
      "HTTP 500: kept pending, the attempt recorded with its status (%s, %s)" % (states, statuses))
r.control(mode="status:404", count=-1, endpoint="push")
st, out, err = run([CRASHSCOPE, "upload", "--db", db], env=clean_env(**server_env(r.url)))
eps = {e for (e,) in query(db, "SELECT endpoint FROM upload_attempts WHERE status = 200")}
check(st == 0 and any(e.endswith("/ingest") for e in eps),
      "after a 404 on push, /ingest delivers them: %s %r" % (eps, out))
check(all("?" not in e for e in eps), "recorded endpoints carry no query string: %s" % eps)

# 4. Too old: never re-stamped, never sent, reported.
r.control(mode="ok", count=0)
db = os.path.join(d, "old.db")
record([prog("flaky"), "2"], db, timeout=40, **server_env(dead))
subprocess.run(["sqlite3", db, "UPDATE uploads SET slice_from = slice_from - 7200,"
                " slice_until = slice_until - 7200"], check=True)
before = len(r.get("/received"))
st, out, err = run([CRASHSCOPE, "upload", "--db", db], env=clean_env(**server_env(r.url)))
check(len(r.get("/received")) == before and "too old to upload" in out and
      query(db, "SELECT COUNT(*) FROM uploads WHERE state = 'too_old'")[0][0] >= 3,
      "profiles older than an hour are kept local and reported too old: %r" % out)

# 5. Continuous: slices go out while the program runs.
db = os.path.join(d, "cont.db")
p = subprocess.Popen([CRASHSCOPE, "run", "--db", db, "--", prog("hot"), "60", "wall"],
                     env=clean_env(**server_env(r.url, CRASHSCOPE_UPLOAD="continuous")),
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
start = len(r.get("/received"))
deadline = time.time() + 30
live = []
while time.time() < deadline and not live:
    live = [g for g in r.get("/received")[start:] if g["labels"].get("service_name") == "hot"
            and g["labels"]["__name__"] == "process_cpu"]
    time.sleep(0.5)
alive = p.poll() is None
p.send_signal(signal.SIGTERM)
p.wait(timeout=30)
check(live and alive, "continuous mode: a cpu slice of the running program arrived while it ran")
check(live and top_function(live[0]["profile"]) == "hot_function" and
      "phase" not in live[0]["labels"], "with hot_function on top and no crash labels")
r.stop()
finish()
