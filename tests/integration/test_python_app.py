"""A Python program (Debian's python3) recorded without any change: its app name is the
script's, not python3's; its cpu samples name the Python function that burns the CPU."""
import os
from harness import *

d = tmpdir()
script = os.path.join(d, "busy_service.py")
with open(script, "w") as f:
    f.write("import time\n"
            "def hot_loop(n):\n"
            "    s = 0\n"
            "    for i in range(n):\n"
            "        s += i * i\n"
            "    return s\n"
            "end = time.process_time() + 2\n"
            "while time.process_time() < end:\n"
            "    hot_loop(100000)\n"
            "print('done')\n")
db = os.path.join(d, "py.db")
st, out, err = record(["/usr/bin/python3", script], db, timeout=30)
check(st == 0 and out.strip() == "done", "the script runs normally (%r)" % st)
check(query(db, "SELECT app_name FROM processes") == [("busy_service",)],
      "app name is the script's name")
rows = stacks(db, "cpu")
frac, total = share(rows, "hot_loop")
check(total >= 150, "cpu samples recorded (%d)" % total)
check(frac >= 0.8, "the Python function hot_loop is in the stacks (%.0f%%)" % (100 * frac))
st, out, err = record(["/usr/bin/python3", "-m", "json.tool", "--help"], db, timeout=30)
check(query(db, "SELECT app_name FROM processes ORDER BY id DESC LIMIT 1") == [("json.tool",)],
      "python3 -m MODULE is named after the module")
finish()
