"""harness.py: what every crashscope integration test shares.

Tests run real programs under the real recorder (build/libcrashscope.so through
`build/crashscope run`) and assert on what was recorded in the SQLite window. Every child
process is bounded in time. Nothing here prints a secret: environments are never dumped.
"""
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = os.path.abspath(os.environ.get("CS_BUILD", "build"))
CRASHSCOPE = os.path.join(BUILD, "crashscope")
LIBRARY = os.path.join(BUILD, "libcrashscope.so")
PROGS = os.path.join(BUILD, "tests", "progs")
# In the "asan" label the recorder is built with ASan/UBSan. It is preloaded into programs
# that are not, so the runtime cannot come first; faults must reach the program's own
# handlers (handle_segv=0); leaks are checked in the CLI and unit tests, not in hosts.
SANITIZE = os.environ.get("CS_SANITIZE", "").upper() in ("ON", "1", "TRUE", "YES")
SANITIZER_ENV = {
    "ASAN_OPTIONS": "verify_asan_link_order=0:handle_segv=0:handle_sigbus=0:handle_abort=0:"
                    "handle_sigfpe=0:handle_sigill=0:handle_sigtrap=0:disable_coredump=0:"
                    "detect_leaks=0:allow_user_segv_handler=1:halt_on_error=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}

_passed = 0
_failed = 0


def prog(name):
    return os.path.join(PROGS, name)


def check(cond, what):
    """Records one assertion; a failure is reported and the test goes on."""
    global _passed, _failed
    if cond:
        _passed += 1
        print("ok   " + what)
    else:
        _failed += 1
        print("FAIL " + what)
    sys.stdout.flush()
    return cond


def finish():
    print("%d passed, %d failed" % (_passed, _failed))
    sys.exit(1 if _failed or not _passed else 0)


def tmpdir():
    return tempfile.mkdtemp(prefix="cs-test-")


def clean_env(**extra):
    """The test's own environment without any inherited crashscope or preload settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CRASHSCOPE_") and not k.startswith("PYROSCOPE_")
           and k != "LD_PRELOAD"}
    if SANITIZE:
        env.update(SANITIZER_ENV)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(args, env=None, timeout=60, input=None):
    """Runs ARGS, returning (status, stdout, stderr); a hang is a failure, not a stuck test."""
    try:
        p = subprocess.run(args, env=env if env is not None else clean_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           input=input)
    except subprocess.TimeoutExpired as e:
        check(False, "%s finished within %ss" % (" ".join(args), timeout))
        return None, (e.stdout or b"").decode(errors="replace"), (e.stderr or b"").decode(
            errors="replace")
    err = p.stderr.decode(errors="replace")
    if SANITIZE:
        check("Sanitizer" not in err and "runtime error:" not in err,
              "no sanitizer report from %s: %s" % (os.path.basename(args[0]), err[-2000:]))
    return p.returncode, p.stdout.decode(errors="replace"), err


def record(cmd, db, timeout=60, **env):
    """crashscope run --db DB -- CMD..., with extra CRASHSCOPE_* settings."""
    return run([CRASHSCOPE, "run", "--db", db, "--"] + cmd, env=clean_env(**env),
               timeout=timeout)


def query(db, sql, args=()):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def stacks(db, profile, pid=None):
    """[(count, [frame names innermost first], tid, thread_name, pid)] for PROFILE."""
    con = sqlite3.connect(db, timeout=10)
    try:
        # The name export uses: the function, else module+offset, else the raw address.
        names = {}
        for fid, fn, path, addr in con.execute(
                "SELECT f.id, f.function, m.path, f.address FROM frames f"
                " LEFT JOIN modules m ON m.id = f.module_id"):
            names[fid] = fn or ("%s+0x%x" % (os.path.basename(path), addr) if path
                                else "0x%x" % addr)
        out = []
        sql = ("SELECT SUM(s.count), st.frame_ids, s.tid, s.thread_name, s.pid FROM samples s"
               " JOIN stacks st ON st.id = s.stack_id WHERE s.profile = ?")
        args = [profile]
        if pid is not None:
            sql += " AND s.pid = ?"
            args.append(pid)
        sql += " GROUP BY s.stack_id, s.tid, s.thread_name, s.pid"
        for count, blob, tid, tname, p in con.execute(sql, args):
            ids = [int.from_bytes(blob[i:i + 8], "little", signed=True)
                   for i in range(0, len(blob), 8)]
            out.append((count, [names.get(i, "?") for i in ids], tid, tname, p))
        return out
    finally:
        con.close()


def share(rows, function):
    """Fraction of samples whose stack contains FUNCTION, and the total."""
    total = sum(r[0] for r in rows)
    hit = sum(r[0] for r in rows if function in r[1])
    return (hit / total if total else 0.0), total


def free_port():
    """A loopback port nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=2):
    """The body of URL, or None when nothing answers."""
    try:
        return urllib.request.urlopen(url, timeout=timeout).read()
    except OSError:
        return None


def wait_http(url, seconds=10):
    """The first body URL answers within SECONDS, or None."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        body = http_get(url)
        if body is not None:
            return body
        time.sleep(0.1)
    return None


def stop(proc, seconds=15):
    """Terminates PROC, and kills it if it does not go within SECONDS."""
    proc.terminate()
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def go_pprof_top(path, timeout=60):
    """`go tool pprof -top` on PATH; go's caches go to a temporary directory."""
    home = tmpdir()
    env = clean_env(HOME=home, GOCACHE=os.path.join(home, "cache"), GOPATH=os.path.join(home, "gopath"),
                    GOFLAGS="", GOTOOLCHAIN="local", GOPROXY="off")
    return run(["go", "tool", "pprof", "-top", path], env=env, timeout=timeout)
