"""Tags the way Pyroscope users write them: `with tag_wrapper({"endpoint": "phivolcs"}):` around
a CPU loop labels those samples (in the database and in the exported and uploaded profiles)
and only those; the GIL label tells running from waiting; without the recorder the module is
a harmless no-op."""
import os
from harness import *

d = tmpdir()
script = os.path.join(d, "tagged.py")
with open(script, "w") as f:
    f.write("""import time
from crashscope import tag_wrapper, enabled
def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
def tagged_work():
    spin(1.5)
def untagged_work():
    spin(1.5)
print("enabled", enabled())
with tag_wrapper({"endpoint": "phivolcs", "region": "ph"}):
    tagged_work()
untagged_work()
""")
db = os.path.join(d, "tags.db")
st, out, err = record(["/usr/bin/python3", script], db, timeout=60)
check(st == 0 and "enabled True" in out, "tag_wrapper imports under crashscope run (%r)" % out)
rows = query(db, "SELECT labels, SUM(count) FROM samples WHERE profile = 'cpu' GROUP BY labels")
tagged = sum(n for l, n in rows if l and "endpoint=phivolcs" in l)
check(tagged > 100, "samples inside the block carry endpoint=phivolcs (%d): %s" % (tagged, rows))
lab = {}
for sid, labels, n in query(db, "SELECT stack_id, labels, SUM(count) FROM samples"
                                " WHERE profile = 'cpu' GROUP BY stack_id, labels"):
    blob = query(db, "SELECT frame_ids FROM stacks WHERE id = ?", (sid,))[0][0]
    ids = [int.from_bytes(blob[i:i + 8], "little") for i in range(0, len(blob), 8)]
    fns = [query(db, "SELECT function FROM frames WHERE id = ?", (i,))[0][0] for i in ids]
    key = "tagged_work" if "tagged_work" in fns else "untagged_work" if "untagged_work" in fns \
        else "other"
    lab.setdefault(key, []).append((labels or "", n))
check(all("endpoint=phivolcs" in l and "region=ph" in l for l, n in lab.get("tagged_work", [])),
      "every tagged_work sample has both tags")
check(lab.get("untagged_work") and all("endpoint" not in l for l, n in lab["untagged_work"]),
      "no untagged_work sample has them")
check(all("gil=held" in l for l, n in lab.get("tagged_work", [])),
      "the GIL label says the spinning thread held the GIL")
pp = os.path.join(d, "cpu.pb.gz")
run([CRASHSCOPE, "export", "--db", db, "--type", "cpu", "-o", pp])
home = tmpdir()
st, out, err = run(["go", "tool", "pprof", "-tags", pp],
                   env=clean_env(HOME=home, GOCACHE=os.path.join(home, "c"), GOTOOLCHAIN="local",
                                 GOPROXY="off"), timeout=60)
check(st == 0 and "phivolcs" in out and "endpoint" in out, "the exported pprof has the label")
pydir = os.path.join(BUILD, "python")
st, out, err = run(["/usr/bin/python3", "-c", "from crashscope import tag_wrapper, enabled\n"
                    "with tag_wrapper({'a': 'b'}):\n    pass\nprint(enabled())"],
                   env=clean_env(PYTHONPATH=pydir))
check(st == 0 and out.strip() == "False", "without the recorder tag_wrapper is a no-op (%r %r)"
      % (out, err[-200:]))
finish()
