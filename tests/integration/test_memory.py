"""Memory and thread profiles, and the process timeline:
- leaky allocates 1 GiB in 64 KiB blocks from leaky_path (never freed) and 1 GiB from
  churn_path (freed at once): inuse_space is leaky_path's and within 15% of 1 GiB, alloc_space
  splits about evenly; the four memory types open in go tool pprof with their sample types;
  CRASHSCOPE_HEAP_SAMPLE_BYTES=0 records no allocations and changes nothing else;
- grower rss climbs 40 MiB a second, then segfaults: inspect's timeline shows the climb;
- grower threads starts 200 named threads: the thread profile and the timeline show them, and
  the recorder's own memory in that process stays under 50 MB;
- a Python program under CRASHSCOPE_PYTHON_MALLOC=1: small objects are seen, with Python frames.
Under the ASan label the sanitizer owns malloc (its interceptors come first), so the
allocation checks are skipped there; the timeline and thread checks still run."""
import json
import os
import re
from harness import *

d = tmpdir()
GIB = 1 << 30


def export(db, kind, out, *extra):
    st, _, err = run([CRASHSCOPE, "export", "--db", db, "--type", kind, "-o", out] + list(extra))
    check(st == 0, "export --type %s (%s)" % (kind, err.strip()[-200:]))
    return st == 0


def folded(db, kind, *extra):
    """{innermost-to-outermost function list joined by ';': value} of an export."""
    st, out, err = run([CRASHSCOPE, "export", "--db", db, "--type", kind, "--format", "folded",
                        "-o", "-"] + list(extra))
    rows = {}
    for line in out.splitlines():
        stack, _, n = line.rpartition(" ")
        rows[stack] = rows.get(stack, 0) + int(n)
    return rows


def share(rows, fn):
    total = sum(rows.values())
    # GCC may name a clone "leaky_path.isra.0"
    part = sum(v for k, v in rows.items()
               if any(f == fn or f.startswith(fn + ".") for f in k.split(";")))
    return part, total


# --- allocation sampling --------------------------------------------------------------------
db = os.path.join(d, "leaky.db")
st, out, err = record([prog("leaky"), "1", "2500"], db, timeout=60)
check(st == 0 and "leaked 16384 blocks" in out, "leaky runs to the end (%r, %r)" % (st, err[-200:]))
if SANITIZE:
    print("skip: allocation checks (AddressSanitizer's malloc comes first)")
else:
    live, total = share(folded(db, "inuse_space"), "leaky_path")
    check(total > 0 and live / total > 0.95,
          "inuse_space is leaky_path's (%d of %d bytes)" % (live, total))
    check(abs(live - GIB) < 0.15 * GIB, "and within 15%% of the 1 GiB live (%.3f GiB)" % (live / GIB))
    rows = folded(db, "alloc_space")
    leak, total = share(rows, "leaky_path")
    churn, _ = share(rows, "churn_path")
    check(abs(total - 2 * GIB) < 0.15 * 2 * GIB,
          "alloc_space sums to about the 2 GiB allocated (%.3f GiB)" % (total / GIB))
    check(total and 0.35 < leak / total < 0.65 and 0.35 < churn / total < 0.65,
          "and splits about evenly (leaky %.0f%%, churn %.0f%%)"
          % (100 * leak / max(total, 1), 100 * churn / max(total, 1)))
    objects, _ = share(folded(db, "inuse_objects"), "leaky_path")
    check(abs(objects - 16384) < 0.15 * 16384, "inuse_objects near the 16384 blocks (%d)" % objects)
    for kind, unit in (("alloc_objects", "count"), ("alloc_space", "bytes"),
                       ("inuse_objects", "count"), ("inuse_space", "bytes")):
        path = os.path.join(d, kind + ".pb")
        if export(db, kind, path):
            st, out, err = go_pprof_top(path)
            check(st == 0 and "Type: %s" % kind in out,
                  "go tool pprof reads %s (%s)" % (kind, (out + err)[:160]))
            st, raw, err = run(["go", "tool", "pprof", "-raw", path],
                               env=clean_env(HOME=d, GOCACHE=os.path.join(d, "gocache"),
                                             GOFLAGS="", GOTOOLCHAIN="local", GOPROXY="off"))
            check("%s/%s" % (kind, unit) in raw, "with sample type %s/%s" % (kind, unit))
            if kind == "inuse_space":
                lines = out.splitlines()
                head = next((i for i, l in enumerate(lines) if "flat%" in l), len(lines) - 1)
                check(head + 1 < len(lines) and "leaky_path" in lines[head + 1],
                      "and leaky_path on top of %s" % kind)

    db0 = os.path.join(d, "off.db")
    st, out, err = record([prog("leaky"), "0.25", "1500"], db0, timeout=60,
                          CRASHSCOPE_HEAP_SAMPLE_BYTES="0")
    check(st == 0, "CRASHSCOPE_HEAP_SAMPLE_BYTES=0: the program runs the same")
    check(query(db0, "SELECT COUNT(*) FROM samples WHERE profile IN ('alloc', 'inuse')") == [(0,)],
          "and no allocation is recorded")
    check(query(db0, "SELECT COUNT(*) FROM samples WHERE profile = 'wall'")[0][0] > 0,
          "while the rest is")

    # A small interval sees small blocks: 1 KiB mean, 64-byte blocks.
    db1 = os.path.join(d, "small.db")
    st, out, err = record([prog("leaky"), "0.01", "1500"], db1, timeout=60,
                          CRASHSCOPE_HEAP_SAMPLE_BYTES="4096")
    live, total = share(folded(db1, "inuse_space"), "leaky_path")
    want = 0.01 * GIB
    check(abs(live - want) < 0.15 * want,
          "a 4 KiB interval estimates 10 MiB live as %.1f MiB" % (live / (1 << 20)))

    # A fork child starts with an empty live set: what it inherited and frees is no false
    # leak of its own, and its parent's live set is untouched.
    dbf = os.path.join(d, "fork.db")
    st, out, err = record([prog("leaky"), "fork"], dbf, timeout=60,
                          CRASHSCOPE_HEAP_SAMPLE_BYTES="65536")
    pids = dict(l.split() for l in out.splitlines() if l.split()[0] in ("parent", "child"))
    check(st == 0 and len(pids) == 2, "leaky fork: parent and child run and exit 0 (%r)" % out)
    if len(pids) == 2:
        mib = 1 << 20
        live, _ = share(folded(dbf, "inuse_space", "--pid", pids["parent"]), "leaky_path")
        check(abs(live - 100 * mib) < 15 * mib,
              "the parent's live heap: its 100 MiB (%.1f MiB)" % (live / mib))
        rows = folded(dbf, "inuse_space", "--pid", pids["child"])
        own, total = share(rows, "child_path")
        check(abs(own - 50 * mib) < 7.5 * mib and total - own < 5 * mib,
              "the child's: its own 50 MiB (%.1f MiB), nothing of what it freed (%.1f MiB else)"
              % (own / mib, (total - own) / mib))

    # Four threads churning small blocks at the default interval, with cpu and wall sampling
    # (~10,000 allocation samples a second): the allocations are estimated without loss (the
    # ring wakes the writer when it fills, and a flush spills the ring rather than let it
    # overflow), and the live set is exactly the blocks kept at the end: a table that kept
    # freed blocks (or lost live ones) shows here. 256 samples of the live set: 25% is
    # about four standard deviations.
    dbc = os.path.join(d, "churn.db")
    st, out, err = record([prog("leaky"), "churn", "1000000", "16384"], dbc, timeout=60)
    m = re.search(r"churn (\d+) (\d+)", out)
    check(st == 0 and m, "leaky churn runs to the end (%r, %r)" % (st, err[-300:]))
    check("dropped" not in err, "and no sample is dropped (%r)" % err[-300:])
    if m:
        allocs, held = int(m.group(1)), int(m.group(2))
        got, _ = share(folded(dbc, "alloc_objects"), "churn_small")
        check(abs(got - allocs) < 0.1 * allocs,
              "alloc_objects of churn_small: %d estimated, %d made" % (got, allocs))
        live, total = share(folded(dbc, "inuse_space"), "churn_small")
        check(abs(live - held) < 0.25 * held,
              "inuse_space of churn_small: %.1f MiB estimated, %.1f MiB held"
              % (live / (1 << 20), held / (1 << 20)))

    # Every allocation sampled: more samples than can be stored. Some are dropped; the program
    # runs on and the user is told, once.
    dbd = os.path.join(d, "drop.db")
    st, out, err = record([prog("leaky"), "churn", "300000"], dbd, timeout=60,
                          CRASHSCOPE_HEAP_SAMPLE_BYTES="1")
    check(st == 0 and "churn " in out, "sampling every byte: leaky churn runs to the end (%r)" % st)
    check(err.count("samples arrive faster than they can be stored") == 1,
          "and the drop is said once on stderr (%r)" % err[-400:])

# --- the timeline before a crash --------------------------------------------------------------
db = os.path.join(d, "grow.db")
st, out, err = record([prog("grower"), "rss", "40", "5"], db, timeout=60)
check(st == 139, "grower dies of SIGSEGV (%r)" % st)
st, out, err = run([CRASHSCOPE, "inspect", "--db", db, "--json"])
tl = json.loads(out)["crash"].get("timeline", []) if st == 0 else []
rss = [r["rss_kb"] for r in tl]
check(len(rss) >= 4, "inspect --json has a timeline of the seconds before the crash (%d)" % len(rss))
if len(rss) >= 4:
    rises = sum(1 for a, b in zip(rss, rss[1:]) if b > a)
    check(rss[-1] - rss[0] > 100 * 1024 and rises >= len(rss) - 2,
          "RSS climbs second by second (%s MiB)" % [r // 1024 for r in rss])
    check(all(r["threads"] >= 1 and r["fds"] >= 3 and r["cpu_user_ms"] >= 0 for r in tl),
          "with threads, descriptors and CPU")
    check(tl[-1]["minor_faults"] > tl[0]["minor_faults"], "and page faults")
    if not SANITIZE:
        check(tl[-1]["heap_live_bytes"] > 100 << 20,
              "and the sampled live heap (%d MiB)" % (tl[-1]["heap_live_bytes"] >> 20))
st, out, err = run([CRASHSCOPE, "inspect", "--db", db])
check("rss MiB" in out and "the process, second by second" in out,
      "inspect shows the timeline as text")
m = re.search(r"crashscope export (--db \S+ --type inuse_space --pid \d+ --until \d+) -o", out)
if SANITIZE:
    check(not m, "no heap command where allocations were not sampled")
elif check(m, "and the command that shows where the live heap came from"):
    path = os.path.join(d, "hint.pb")
    st, _, err = run([CRASHSCOPE, "export"] + m.group(1).split() + ["-o", path])
    st2, top, _ = go_pprof_top(path)
    check(st == 0 and st2 == 0 and "grow_cache" in top,
          "which, run as printed, names grow_cache (%s)" % (err.strip()[-120:]))

# --- 200 threads ----------------------------------------------------------------------------
db = os.path.join(d, "threads.db")
st, out, err = record([prog("grower"), "threads", "200", "4"], db, timeout=60)
m = re.search(r"rss_kb (\d+)", out)
check(st == 0 and m, "200 threads start and end (%r)" % err[-200:])
best = query(db, "SELECT ts, threads FROM timeline ORDER BY threads DESC, ts DESC LIMIT 1")
check(best and best[0][1] >= 201, "the timeline counts the threads (%s)" % best)
if best:
    rows = query(db, "SELECT thread_name FROM samples WHERE profile = 'threads' AND ts = ?",
                 (best[0][0],))
    workers = {r[0] for r in rows if r[0] and r[0].startswith("worker-")}
    check(len(workers) == 200, "the thread profile has each worker once, by name (%d)" % len(workers))
    path = os.path.join(d, "threads.pb")
    if export(db, "threads", path, "--until", str(best[0][0])):
        st, out2, err = go_pprof_top(path)
        check(st == 0 and "Type: threads" in out2 and "Total samples = 201" in out2,
              "go tool pprof: threads, 201 at that second (%s)" % out2[:300])
        check("pthread_cond_wait" in out2 or "wait_for_work" in out2,
              "where they wait")
if m and not SANITIZE:
    st, plain, _ = run([prog("grower"), "threads", "200", "2"])
    m0 = re.search(r"rss_kb (\d+)", plain)
    extra = (int(m.group(1)) - int(m0.group(1))) / 1024 if m0 else 1e9
    check(extra < 50, "the recorder's memory in a 200-thread process: %.1f MB (< 50)" % extra)

# --- Python objects through malloc ------------------------------------------------------------
script = os.path.join(d, "objects.py")
with open(script, "w") as f:
    f.write("""import os, time
def make_objects():
    return [(i, str(i)) for i in range(400000)]
def main():
    keep = make_objects()
    print("PYTHONMALLOC=" + os.environ.get("PYTHONMALLOC", ""))
    time.sleep(2.5)
    return len(keep)
main()
""")
db = os.path.join(d, "py.db")
st, out, err = record(["/usr/bin/python3", script], db, timeout=60, CRASHSCOPE_PYTHON_MALLOC="1")
check(st == 0 and "PYTHONMALLOC=malloc" in out, "CRASHSCOPE_PYTHON_MALLOC=1 sets PYTHONMALLOC")
if not SANITIZE:
    # the interpreter frees everything as it exits: look at the second the heap was largest
    peak = query(db, "SELECT ts FROM timeline ORDER BY heap_live_bytes DESC LIMIT 1")
    live, total = share(folded(db, "inuse_space", "--until", str(peak[0][0]) if peak else "1"),
                        "make_objects")
    check(live > 10 << 20, "small Python objects are seen, under make_objects (%d MiB of %d)"
          % (live >> 20, total >> 20))
finish()
