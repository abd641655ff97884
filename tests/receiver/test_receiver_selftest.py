#!/usr/bin/env python3
"""test_receiver_selftest.py: self-test of tests/receiver/pyroscope_receiver.py.

Starts the receiver as subprocesses on 127.0.0.1, builds small pprof profiles with its own
protobuf encoder (independent of the receiver's decoder and of crashscope's encoder), sends
them through /push.v1.PusherService/Push and /ingest in every supported form, and checks what
/received decodes, every rejection the real server would make, auth, failure injection,
/control, /stats, the size caps, --max-seconds, that the password never shows up, and that a
dumped profile is a real pprof according to `go tool pprof -raw`.

Usage: /usr/bin/python3 tests/receiver/test_receiver_selftest.py
The last line is `N passed, N failed`; the exit status is non-zero on any failure.

What it must never do: touch the network beyond 127.0.0.1, use anything outside the Python
standard library (plus the installed `go` for the pprof check, run offline with throw-away
HOME/GOCACHE), leave a receiver running (every one is stopped in a finally, and has a
--max-seconds of its own anyway), or wait on anything without a timeout.
"""

import base64
import gzip
import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(HERE, "pyroscope_receiver.py")
PY = sys.executable or "/usr/bin/python3"
PUSH = "/push.v1.PusherService/Push"
USER = "selftest-user"
PASSWORD = "s3cret-Pa55word-never-shown"
TENANT = "tenant-42"

_passed = 0
_failed = 0


def check(cond, what):
    global _passed, _failed
    if cond:
        _passed += 1
        print("ok   " + what)
    else:
        _failed += 1
        print("FAIL " + what)
    sys.stdout.flush()
    return cond


# ---------------------------------------------------------------------------------------------
# A tiny protobuf encoder of our own

def varint(n):
    n &= (1 << 64) - 1  # negative int64 -> two's complement, 10 bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fv(field, value):
    return varint(field << 3) + varint(value)


def fb(field, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def fpacked(field, values):
    return fb(field, b"".join(varint(v) for v in values))


class Strings:
    def __init__(self, first=""):
        self.table = [first.encode() if isinstance(first, str) else first]
        self.index = {self.table[0]: 0}

    def __call__(self, s):
        b = s.encode() if isinstance(s, str) else s
        if b not in self.index:
            self.index[b] = len(self.table)
            self.table.append(b)
        return self.index[b]


def make_profile(stacks=None, sample_types=(("cpu", "nanoseconds"),),
                 period_type=("cpu", "nanoseconds"), period=10_000_000, time_nanos=None,
                 duration_nanos=10_000_000_000, first_string="", zero_location_id=False,
                 zero_function_id=False, extra_location_ref=None, gz=False):
    """A pprof Profile. stacks: [(frames leaf first, values, {label: str|int})]; a frame may
    be bytes (to smuggle invalid UTF-8 in)."""
    if stacks is None:
        stacks = [(["leaf_fn", "mid_fn", "main"], [30_000_000], {"thread_name": "main",
                                                                 "pid": 4242}),
                  (["other_leaf", "main"], [10_000_000], {"thread_name": "worker"})]
    if time_nanos is None:
        time_nanos = time.time_ns() - 10_000_000_000
    st = Strings(first_string)
    out = bytearray()
    for t, u in sample_types:
        out += fb(1, fv(1, st(t)) + fv(2, st(u)))
    funcs = {}
    for frames, _, _ in stacks:
        for fr in frames:
            if fr not in funcs:
                funcs[fr] = len(funcs) + 1
    for frames, values, labels in stacks:
        locs = [0 if zero_location_id else funcs[fr] for fr in frames]
        if extra_location_ref is not None:
            locs.append(extra_location_ref)
        body = fpacked(1, locs) + fpacked(2, values)
        for k, v in labels.items():
            if isinstance(v, int):
                body += fb(3, fv(1, st(k)) + fv(3, v))
            else:
                body += fb(3, fv(1, st(k)) + fv(2, st(v)))
        out += fb(2, body)
    out += fb(3, fv(1, 1) + fv(2, 0x400000) + fv(3, 0x500000) + fv(4, 0)
              + fv(5, st("/usr/bin/selftest-app")) + fv(7, 1))
    for name, fid in funcs.items():
        lid = 0 if zero_location_id else fid
        out += fb(4, fv(1, lid) + fv(2, 1) + fv(3, 0x401000 + 16 * fid)
                  + fb(4, fv(1, fid) + fv(2, 10 + fid)))
    for name, fid in funcs.items():
        out += fb(5, fv(1, 0 if zero_function_id else fid) + fv(2, st(name))
                  + fv(3, st(name)) + fv(4, st("selftest.c")) + fv(5, fid))
    ptype = fb(11, fv(1, st(period_type[0])) + fv(2, st(period_type[1]))) if period_type else b""
    tail = fv(9, time_nanos) if time_nanos else b""
    tail += fv(10, duration_nanos) + ptype + fv(12, period)
    for s in st.table:  # string_table last: every st() call is done
        out += fb(6, s)
    out += tail
    data = bytes(out)
    return gzip.compress(data) if gz else data


def push_request(series):
    """series: [([(name, value)], [(raw_profile, id)])]; values may be bytes (bad UTF-8)."""
    out = bytearray()
    for labels, samples in series:
        body = bytearray()
        for n, v in labels:
            body += fb(1, fb(1, n) + fb(2, v))
        for raw, sid in samples:
            body += fb(2, fb(1, raw) + fb(2, sid))
        out += fb(1, bytes(body))
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Receiver processes and HTTP

class Receiver:
    def __init__(self, *args, env=None, max_seconds=180):
        self.logf = tempfile.NamedTemporaryFile(prefix="receiver-log-", delete=False)
        self.proc = subprocess.Popen(
            [PY, RECEIVER, "--max-seconds", str(max_seconds)] + list(args),
            stdout=subprocess.PIPE, stderr=self.logf, stdin=subprocess.DEVNULL, env=env)
        self.port = None
        line = b""
        deadline = time.time() + 15
        while time.time() < deadline and not line.endswith(b"\n"):
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    break
                line += ch
        if not line.startswith(b"LISTENING "):
            self.stop()
            raise RuntimeError("receiver did not start: %r; log: %s" % (line, self.log()))
        self.port = int(line.split()[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        rest = b""
        try:
            r, _, _ = select.select([self.proc.stdout], [], [], 0)
            if r:
                rest = self.proc.stdout.read()
            self.proc.stdout.close()
        except (OSError, ValueError):
            pass
        return rest

    def log(self):
        with open(self.logf.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def request(self, method, path, body=b"", headers=None, timeout=10):
        return request(self.port, method, path, body, headers, timeout)

    def get_json(self, path):
        status, _, data = self.request("GET", path)
        assert status == 200, (path, status, data)
        return json.loads(data)

    def received(self, since=0):
        return self.get_json("/received?since=%d" % since)

    def stats(self):
        return self.get_json("/stats")

    def control(self, **kw):
        return self.request("POST", "/control", json.dumps(kw).encode(),
                            {"Content-Type": "application/json"})

    def last_seq(self):
        recs = self.received()
        return recs[-1]["seq"] if recs else 0


def request(port, method, path, body=b"", headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def basic(user=USER, password=PASSWORD):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def push(rcv, labels, raw, sid="00000000-0000-4000-8000-000000000001", gzip_req=False,
         as_json=False, headers=None, timeout=10, path=PUSH):
    h = dict(headers or {})
    if as_json:
        body = json.dumps({"series": [{
            "labels": [{"name": n, "value": v} for n, v in labels],
            "samples": [{"rawProfile": base64.b64encode(raw).decode(), "ID": sid}]}]}).encode()
        h["Content-Type"] = "application/json"
    else:
        body = push_request([(labels, [(raw, sid)])])
        h["Content-Type"] = "application/proto"
    if gzip_req:
        body = gzip.compress(body)
        h["Content-Encoding"] = "gzip"
    return rcv.request("POST", path, body, h, timeout)


def ingest(rcv, name, raw, frm=None, headers=None, timeout=10):
    from urllib.parse import quote
    now = int(time.time())
    path = "/ingest?name=%s&from=%d&until=%d&format=pprof&sampleRate=100&spyName=crashscope" \
        % (quote(name, safe=""), now - 10 if frm is None else frm, now)
    h = {"Content-Type": "application/octet-stream"}
    h.update(headers or {})
    return rcv.request("POST", path, raw, h, timeout)


def err_code(data):
    try:
        return json.loads(data).get("code")
    except ValueError:
        return None


LABELS = [("__name__", "process_cpu"), ("service_name", "selftest")]


# ---------------------------------------------------------------------------------------------
# Test groups

def t_push_and_decode(r):
    sid = "11111111-2222-4333-8444-555555555555"
    status, hdr, data = push(r, LABELS, make_profile(), sid=sid)
    check(status == 200, "push proto, plain pprof: 200 (got %d %r)" % (status, data[:200]))
    check(hdr.get("content-type", "").startswith("application/proto"),
          "push proto answers application/proto")
    recs = r.received()
    check(len(recs) == 1, "one record after one push (got %d)" % len(recs))
    rec = recs[-1]
    p = rec["profile"]
    check(rec["endpoint"] == "push" and rec["id"] == sid, "record endpoint and ID")
    check(rec["labels"] == {"__name__": "process_cpu", "service_name": "selftest"},
          "series labels recorded: %r" % rec["labels"])
    check(p["sample_types"] == [["cpu", "nanoseconds"]], "sample types decoded")
    check(p["period_type"] == ["cpu", "nanoseconds"] and p["period"] == 10_000_000,
          "period type and period decoded")
    check(p["duration_nanos"] == 10_000_000_000 and p["time_nanos"] > 0, "time and duration")
    check(p["samples"][0]["stack"] == ["leaf_fn", "mid_fn", "main"],
          "stack leaf first: %r" % p["samples"][0]["stack"])
    check(p["samples"][0]["values"] == [30_000_000], "values decoded")
    check(p["samples"][0]["labels"] == {"thread_name": "main", "pid": 4242},
          "sample labels str and num: %r" % p["samples"][0]["labels"])
    check(p["samples"][1]["stack"] == ["other_leaf", "main"], "second sample")
    check(p["mappings"][0]["filename"] == "/usr/bin/selftest-app", "mapping decoded")
    check(rec["profile_gzipped"] is False and rec["bytes"] == rec["decompressed_bytes"],
          "plain profile: bytes == decompressed_bytes")
    check(rec["warnings"] == [], "no warnings for a clean profile: %r" % rec["warnings"])
    check(rec["dump"] and os.path.basename(rec["dump"]) == "0001-process_cpu.pb.gz",
          "dumped as 0001-process_cpu.pb.gz: %r" % rec.get("dump"))

    # gzip on the request and on the profile
    status, _, data = push(r, LABELS, make_profile(gz=True), gzip_req=True)
    check(status == 200, "push proto, gzip request + gzipped pprof: 200 (%d %r)"
          % (status, data[:200]))
    rec = r.received()[-1]
    check(rec["profile_gzipped"] and rec["bytes"] < rec["decompressed_bytes"],
          "gzipped profile recorded as such")
    check(rec["content_encoding"] == "gzip", "request Content-Encoding recorded")
    check(rec["profile"]["samples"][0]["stack"][0] == "leaf_fn", "gzipped profile decoded")

    # JSON form
    status, hdr, data = push(r, [("__name__", "wall"), ("service_name", "selftest")],
                             make_profile(sample_types=(("wall", "nanoseconds"),)), as_json=True)
    check(status == 200 and data.strip() == b"{}", "push JSON: 200 {} (%d %r)"
          % (status, data[:200]))
    rec = r.received()[-1]
    check(rec["labels"]["__name__"] == "wall" and
          rec["profile"]["sample_types"] == [["wall", "nanoseconds"]], "JSON push decoded")
    status, _, _ = push(r, LABELS, make_profile(gz=True), as_json=True, gzip_req=True)
    check(status == 200, "push JSON gzipped: 200")

    # service_name fallback, and a profile with a dangling reference (accepted with a warning)
    status, _, _ = push(r, [("__name__", "process_cpu")], make_profile(extra_location_ref=99))
    check(status == 200, "push without service_name: 200")
    rec = r.received()[-1]
    check(rec["labels"].get("service_name") == "unknown_service",
          "service_name falls back to unknown_service")
    check(any("unknown locations" in w for w in rec["warnings"]),
          "dangling location reference reported as a warning: %r" % rec["warnings"])

    # time_nanos 0 means now
    status, _, _ = push(r, LABELS, make_profile(time_nanos=0))
    rec = r.received()[-1]
    check(status == 200 and rec["profile"]["time_nanos"] == 0 and
          abs(rec["profile"]["effective_time_nanos"] - time.time_ns()) < 60e9,
          "time_nanos 0 accepted as now")

    # Two series in one request, one bad: the good one is kept, the request fails (server-like)
    before = r.last_seq()
    body = push_request([(LABELS, [(make_profile(), "good")]),
                         ([("service_name", "x")], [(make_profile(), "bad")])])
    status, _, data = r.request("POST", PUSH, body, {"Content-Type": "application/proto"})
    recs = r.received(before)
    check(status == 400 and [x["id"] for x in recs] == ["good"],
          "mixed request: 400, valid series kept (%d, %r)" % (status, [x["id"] for x in recs]))


def t_push_rejections(r):
    before = r.last_seq()
    now = time.time_ns()
    cases = [
        ("missing __name__", [("service_name", "selftest")], make_profile(), 400),
        ("'-' in sample type", LABELS, make_profile(sample_types=(("cpu-time", "ns"),)), 400),
        ("string_table[0] != \"\"", LABELS, make_profile(first_string="oops"), 400),
        ("too old time_nanos (2h)", LABELS, make_profile(time_nanos=now - 7200 * 10**9), 400),
        ("too new time_nanos (+1h)", LABELS, make_profile(time_nanos=now + 3600 * 10**9), 400),
        ("invalid UTF-8 function name", LABELS,
         make_profile(stacks=[([b"bad\xff\xfename", "main"], [1], {})]), 400),
        ("invalid UTF-8 sample label", LABELS,
         make_profile(stacks=[(["f", "main"], [1], {"thread_name": b"\xc3\x28"})]), 400),
        ("invalid UTF-8 series label value", [("__name__", "process_cpu"),
                                              ("service_name", b"sel\xfftest")],
         make_profile(), 400),
        ("duplicate label names", LABELS + [("service_name", "again")], make_profile(), 400),
        ("values count != sample types count", LABELS,
         make_profile(sample_types=(("cpu", "nanoseconds"), ("samples", "count"))), 400),
        ("location id 0", LABELS, make_profile(zero_location_id=True), 400),
        ("function id 0", LABELS, make_profile(zero_function_id=True), 400),
        ("no sample types", LABELS, make_profile(sample_types=()), 400),
        ("garbage raw_profile", LABELS, b"\x0a\xff\xff\xff\xff\x0fnot a profile", 400),
        ("garbage gzip raw_profile", LABELS, b"\x1f\x8b\x08\x00garbage", 400),
    ]
    for what, labels, raw, want in cases:
        status, hdr, data = push(r, labels, raw)
        check(status == want and err_code(data) == "invalid_argument" and
              hdr.get("content-type") == "application/json",
              "push rejects %s: %d invalid_argument (got %d %r)" % (what, want, status,
                                                                   data[:160]))
    status, _, data = r.request("POST", PUSH, b"", {"Content-Type": "application/proto"})
    check(status == 400 and b"no profiles received" in data, "push with no series: 400")
    status, _, data = r.request("POST", PUSH, b"\xff\xff", {"Content-Type": "application/proto"})
    check(status == 400, "push with undecodable PushRequest: 400")
    # push() sets Content-Type itself: send this one by hand
    status, _, _ = r.request("POST", PUSH, push_request([(LABELS, [(make_profile(), "x")])]),
                             {"Content-Type": "text/plain"})
    check(status == 415, "push with text/plain: 415 (got %d)" % status)
    status, _, _ = r.request("POST", PUSH, push_request([(LABELS, [(make_profile(), "x")])]),
                             {"Content-Type": "application/proto", "Content-Encoding": "br"})
    check(status == 501, "push with unknown Content-Encoding: 501 unimplemented (got %d)" % status)
    status, hdr, _ = r.request("GET", PUSH)
    check(status == 405 and hdr.get("allow") == "POST", "GET on push: 405")
    status, _, data = r.request("POST", "/nope", b"x")
    check(status == 404, "unknown path: 404")
    check(r.received(before) == [], "no rejected profile was recorded")
    reasons = r.stats()["rejected_by_reason"]
    for reason in ("invalid_labels", "malformed_profile", "not_in_ingestion_window",
                   "duplicate_label_names"):
        check(reasons.get(reason, 0) >= 1, "/stats counts rejection reason %s" % reason)


def t_ingest(r):
    before = r.last_seq()
    status, hdr, data = ingest(r, "myapp{env=test,region=eu-1}", make_profile(gz=True))
    check(status == 200 and data == b"", "ingest gzipped pprof: 200 empty (%d %r)"
          % (status, data[:200]))
    rec = r.received(before)[-1]
    check(rec["endpoint"] == "ingest", "ingest record")
    want = {"__name__": "process_cpu", "__delta__": "false", "pyroscope_spy": "crashscope",
            "service_name": "myapp", "env": "test", "region": "eu-1"}
    check(rec["labels"] == want, "ingest labels derived like the server: %r" % rec["labels"])
    check(rec["ingest"]["app"] == "myapp" and rec["ingest"]["sample_rate"] == 100,
          "ingest query recorded")
    check(rec["profile"]["samples"][0]["stack"] == ["leaf_fn", "mid_fn", "main"],
          "ingest profile decoded")

    status, _, _ = ingest(r, "plainapp", make_profile())
    check(status == 200, "ingest plain (not gzipped) pprof: 200")
    status, _, _ = ingest(r, "app{service_name=override}",
                          make_profile(sample_types=(("wall", "nanoseconds"),)))
    rec = r.received()[-1]
    check(status == 200 and rec["labels"]["service_name"] == "override" and
          rec["labels"]["__name__"] == "wall", "service_name tag overrides, wall -> wall")

    # time_nanos 0 takes `from`; 13 digits are milliseconds
    from_ms = int(time.time() * 1000) - 5000
    status, _, _ = ingest(r, "msapp", make_profile(time_nanos=0),
                          frm=from_ms)
    rec = r.received()[-1]
    check(status == 200 and rec["profile"]["effective_time_nanos"] == from_ms * 10**6,
          "ingest: time_nanos 0 takes a 13-digit (ms) `from`")
    old = int(time.time()) - 7200
    status, _, data = ingest(r, "oldapp", make_profile(time_nanos=0), frm=old)
    check(status == 422, "ingest: time 0 with a 2h-old `from`: 422 (got %d %r)"
          % (status, data[:160]))

    status, _, data = ingest(r, "my app{}", make_profile())
    check(status == 400 and err_code(data) == "invalid_argument", "ingest bad app name: 400")
    status, _, _ = ingest(r, "app{bad-key=1}", make_profile())
    check(status == 400, "ingest bad label key: 400")
    status, _, _ = ingest(r, "", make_profile())
    check(status == 400, "ingest missing name: 400")
    status, _, _ = ingest(r, "app", make_profile(sample_types=(("cpu-time", "ns"),)))
    check(status == 422, "ingest '-' in sample type: 422")
    status, _, _ = ingest(r, "app", b"\x0a\xff\xff\xff\xff\x0fnot a profile")
    check(status == 422, "ingest garbage: 422")

    # Content-Encoding is not decoded on /ingest: a gzipped pprof still works (sniffed)
    status, _, _ = ingest(r, "ceapp", make_profile(gz=True), headers={"Content-Encoding": "gzip"})
    rec = r.received()[-1]
    check(status == 200 and any("Content-Encoding" in w for w in rec["warnings"]),
          "ingest notes an ignored Content-Encoding")

    # Multipart form without format=
    boundary = "selftestboundary"
    prof = make_profile(gz=True)
    body = ("--%s\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"p.pprof\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n" % boundary).encode() + prof + \
        ("\r\n--%s--\r\n" % boundary).encode()
    status, _, data = r.request(
        "POST", "/ingest?name=formapp&spyName=crashscope", body,
        {"Content-Type": "multipart/form-data; boundary=" + boundary})
    rec = r.received()[-1]
    check(status == 200 and rec["labels"]["service_name"] == "formapp",
          "ingest multipart form: 200 (%d %r)" % (status, data[:160]))
    # ... but multipart with format=pprof fails, as the notes warn
    status, _, _ = r.request(
        "POST", "/ingest?name=formapp&format=pprof", body,
        {"Content-Type": "multipart/form-data; boundary=" + boundary})
    check(status == 422, "ingest multipart with format=pprof: 422")
    status, _, _ = r.request("POST", "/ingest?name=emptyapp&format=pprof", b"")
    check(status == 200, "ingest empty body: 200 (server stores nothing)")


def t_auth(r):
    good = {"Authorization": basic(), "X-Scope-OrgID": TENANT}
    status, hdr, data = push(r, LABELS, make_profile())
    check(status == 401 and err_code(data) == "unauthenticated" and
          "www-authenticate" in hdr, "no auth: 401 unauthenticated")
    status, _, _ = push(r, LABELS, make_profile(),
                        headers={"Authorization": basic(password="wrong"),
                                 "X-Scope-OrgID": TENANT})
    check(status == 401, "wrong password: 401")
    status, _, _ = push(r, LABELS, make_profile(),
                        headers={"Authorization": basic(user="other"), "X-Scope-OrgID": TENANT})
    check(status == 401, "wrong user: 401")
    status, _, _ = push(r, LABELS, make_profile(), headers={"Authorization": basic()})
    check(status == 401, "missing X-Scope-OrgID: 401")
    status, _, _ = push(r, LABELS, make_profile(),
                        headers={"Authorization": basic(), "X-Scope-OrgID": "tenant-43"})
    check(status == 401, "wrong X-Scope-OrgID: 401")
    status, _, _ = ingest(r, "app", make_profile())
    check(status == 401, "ingest without auth: 401")
    check(r.received() == [], "nothing recorded without auth")

    status, _, data = push(r, LABELS, make_profile(), headers=good, gzip_req=True)
    check(status == 200, "push with auth and tenant: 200 (%d %r)" % (status, data[:160]))
    status, _, _ = ingest(r, "authapp", make_profile(gz=True), headers=good)
    check(status == 200, "ingest with auth and tenant: 200")
    recs = r.received()
    check(len(recs) == 2 and all(x["auth_user"] == USER and x["tenant"] == TENANT
                                 for x in recs), "auth_user and tenant recorded")

    # A client bug: the password in the URL. Counted, and scrubbed from the log.
    status, _, _ = push(r, LABELS, make_profile(), headers=good, path=PUSH + "?t=" + PASSWORD)
    check(status == 200, "push with a query string still routed")
    st = r.stats()
    check(st["secret_leaks"] == 1, "/stats counts the leaked password (got %r)"
          % st["secret_leaks"])
    check(st["by_status"].get("401") == 6, "/stats counts six 401s (got %r)" % st["by_status"])

    everything = json.dumps(r.received()) + json.dumps(st) + r.log()
    token = basic().split()[1]
    check(PASSWORD not in everything, "password absent from /received, /stats and the log")
    check(token not in everything and "Authorization" not in everything,
          "Authorization header absent from /received, /stats and the log")


def t_auth_env():
    env = dict(os.environ, SELFTEST_CRED="%s:%s" % (USER, PASSWORD))
    r = Receiver("--basic-auth-env", "SELFTEST_CRED", env=env)
    try:
        s1, _, _ = push(r, LABELS, make_profile())
        s2, _, _ = push(r, LABELS, make_profile(), headers={"Authorization": basic()})
        check(s1 == 401 and s2 == 200, "--basic-auth-env: 401 without, 200 with (%d, %d)"
              % (s1, s2))
    finally:
        r.stop()


def t_failures(r):
    status, _, data = r.control(mode="status:500", count=2)
    check(status == 200 and json.loads(data)["mode"] == "status:500", "/control accepts 500x2")
    got = [push(r, LABELS, make_profile())[0] for _ in range(3)]
    check(got == [500, 500, 200], "status:500 for 2 requests then ok (got %r)" % got)

    r.control(mode="status:429", count=1, retry_after=7)
    status, hdr, data = push(r, LABELS, make_profile())
    check(status == 429 and hdr.get("retry-after") == "7" and
          err_code(data) == "resource_exhausted", "status:429 with Retry-After: 7")

    r.control(mode="close", count=1)
    try:
        push(r, LABELS, make_profile())
        check(False, "close: connection closed without a response")
    except (http.client.HTTPException, ConnectionError, OSError) as e:
        check(True, "close: connection closed without a response (%s)" % type(e).__name__)
    check(push(r, LABELS, make_profile())[0] == 200, "after close x1: ok again")

    r.control(mode="reset", count=1)
    try:
        push(r, LABELS, make_profile())
        check(False, "reset: connection reset")
    except (http.client.HTTPException, ConnectionError, OSError) as e:
        check(True, "reset: connection dropped (%s)" % type(e).__name__)

    before = r.last_seq()
    r.control(mode="stall:1.5", count=1)
    t0 = time.time()
    try:
        push(r, LABELS, make_profile(), sid="stalled", timeout=0.5)
        check(False, "stall: client with a 0.5 s timeout times out")
    except (socket.timeout, TimeoutError, OSError):
        check(time.time() - t0 < 1.4, "stall: client with a 0.5 s timeout times out")
    time.sleep(1.5)
    recs = r.received(before)
    check([x["id"] for x in recs] == ["stalled"] and recs[0]["stalled"],
          "stall: the stalled request is still processed afterwards")
    r.control(mode="stall:1", count=1)
    t0 = time.time()
    status, _, _ = push(r, LABELS, make_profile(), timeout=10)
    check(status == 200 and time.time() - t0 >= 0.95, "stall:1 answers after >= 1 s")

    # forever, then reset by /control
    r.control(mode="status:503", count=-1)
    got = [push(r, LABELS, make_profile())[0] for _ in range(3)]
    check(got == [503] * 3, "count -1 fails every request (got %r)" % got)
    status, _, data = r.control(mode="ok")
    check(json.loads(data) == {"mode": "ok", "count": 0, "endpoint": "any",
                               "retry_after": None}, "/control mode ok resets")
    check(push(r, LABELS, make_profile())[0] == 200, "after reset: 200")
    check(r.get_json("/control")["mode"] == "ok", "GET /control shows ok")

    # push-only 404 so a client can fall back to /ingest
    r.control(mode="status:404", count=-1, endpoint="push")
    status, hdr, data = push(r, LABELS, make_profile())
    check(status == 404 and hdr.get("content-type", "").startswith("text/plain"),
          "status:404 on push: plain-text 404")
    check(ingest(r, "fallback", make_profile(gz=True))[0] == 200, "ingest unaffected: 200")
    r.control(mode="ok")

    st = r.stats()
    check(st["injected"]["by_mode"].get("status:500") == 2 and
          st["by_status"].get("closed") == 1 and st["by_status"].get("reset") == 1,
          "/stats counts injected failures: %r / %r" % (st["injected"], st["by_status"]))
    for bad in ({"mode": "explode"}, {"mode": "status:500", "count": -5},
                {"mode": "status:500", "endpoint": "x"}):
        status, _, _ = r.control(**bad)
        check(status == 400, "/control rejects %r" % bad)
    r.control(clear=True)
    check(r.received() == [] and r.stats()["data_requests"] == 0, "/control clear empties")


def t_cli_failure():
    r = Receiver("--fail", "status:503", "--fail-count", "1")
    try:
        got = [push(r, LABELS, make_profile())[0] for _ in range(2)]
        check(got == [503, 200], "--fail status:503 --fail-count 1 (got %r)" % got)
    finally:
        r.stop()


def t_limits():
    r = Receiver("--max-body-bytes", "4000")
    try:
        with socket.create_connection(("127.0.0.1", r.port), timeout=5) as s:
            s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\n"
                       "Content-Length: 100000000\r\n\r\n" % PUSH).encode())
            resp = s.recv(4096)
        check(resp.startswith(b"HTTP/1.1 413"), "huge Content-Length: 413 without reading "
              "the body (%r)" % resp[:40])
        with socket.create_connection(("127.0.0.1", r.port), timeout=5) as s:
            s.sendall(("POST /ingest?name=a&format=pprof HTTP/1.1\r\nHost: x\r\n"
                       "Expect: 100-continue\r\nContent-Length: 100000\r\n\r\n").encode())
            resp = s.recv(4096)
        check(resp.startswith(b"HTTP/1.1 413"), "Expect: 100-continue oversized: 413")
        bomb = gzip.compress(b"\0" * 1_000_000)
        status, _, _ = r.request("POST", PUSH, bomb, {"Content-Type": "application/proto",
                                                      "Content-Encoding": "gzip"})
        check(status == 413, "gzip request inflating past the cap: 413 (got %d)" % status)
        status, _, _ = push(r, LABELS, make_profile())
        check(status == 200, "small push under the cap: 200")
    finally:
        r.stop()
    r = Receiver("--max-profile-bytes", "300")
    try:
        big = make_profile(stacks=[(["f%d" % i, "main"], [i + 1], {}) for i in range(50)],
                           gz=True)
        status, _, data = push(r, LABELS, big)
        check(status == 400 and b"exceeds" in data, "pprof over --max-profile-bytes: 400")
    finally:
        r.stop()


def t_max_seconds():
    r = Receiver(max_seconds=1.5)
    try:
        r.proc.wait(10)
        check(r.proc.returncode == 0, "--max-seconds: exits by itself (rc %r)"
              % r.proc.returncode)
    except subprocess.TimeoutExpired:
        check(False, "--max-seconds: exits by itself")
    finally:
        r.stop()


def t_max_seconds_orphaned():
    # A test that dies leaves the receiver with broken pipes for stdout and stderr: its deadline
    # must stop it all the same (it once raised on writing why, and ran for ever).
    p = subprocess.Popen([PY, RECEIVER, "--max-seconds", "1.5", "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdout.readline()
        p.stdout.close()
        p.stderr.close()
        p.wait(10)
        check(True, "--max-seconds: exits by itself with its parent's pipes closed")
    except subprocess.TimeoutExpired:
        check(False, "--max-seconds: exits by itself with its parent's pipes closed")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def t_go_pprof(dump_dir):
    go = shutil.which("go")
    if not check(go is not None, "go is installed (golang-go) for the pprof check"):
        return
    files = sorted(f for f in os.listdir(dump_dir) if f.endswith(".pb.gz"))
    check(len(files) >= 2 and all(f[:4].isdigit() and f[4] == "-" for f in files),
          "dump files named NNNN-<__name__>.pb.gz: %r" % files[:4])
    tmp = tempfile.mkdtemp(prefix="selftest-go-")
    try:
        os.makedirs(os.path.join(tmp, "home"))
        env = dict(os.environ, HOME=os.path.join(tmp, "home"),
                   GOCACHE=os.path.join(tmp, "gocache"), GOPATH=os.path.join(tmp, "gopath"),
                   GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="", GOTELEMETRY="off",
                   PPROF_TMPDIR=tmp)
        # 0001 was plain and gzipped by the receiver; 0002 was gzipped by the client.
        for f in files[:2]:
            res = subprocess.run([go, "tool", "pprof", "-raw", os.path.join(dump_dir, f)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, timeout=180)
            out = res.stdout.decode("utf-8", "replace")
            check(res.returncode == 0 and "leaf_fn" in out and "mid_fn" in out and
                  "cpu/nanoseconds" in out,
                  "go tool pprof -raw reads %s (rc %d; %s)"
                  % (f, res.returncode, res.stderr.decode("utf-8", "replace")[-300:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------

def run(name, fn, *args):
    try:
        fn(*args)
    except Exception:
        check(False, "%s raised:\n%s" % (name, traceback.format_exc()))


def main():
    dump_dir = tempfile.mkdtemp(prefix="selftest-dumps-")
    receivers = []
    try:
        plain = Receiver("--dump-dir", dump_dir)
        receivers.append(plain)
        run("push", t_push_and_decode, plain)
        run("push rejections", t_push_rejections, plain)
        run("ingest", t_ingest, plain)
        authed = Receiver("--basic-auth", "%s:%s" % (USER, PASSWORD), "--tenant", TENANT)
        receivers.append(authed)
        run("auth", t_auth, authed)
        run("auth env", t_auth_env)
        run("failures", t_failures, plain)
        run("cli failure", t_cli_failure)
        run("limits", t_limits)
        run("max seconds", t_max_seconds)
        run("max seconds, orphaned", t_max_seconds_orphaned)
        run("go pprof", t_go_pprof, dump_dir)
        for r in receivers:
            rest = r.stop()
            check(rest == b"", "receiver printed nothing on stdout after LISTENING (%r)"
                  % rest[:80])
        check(PASSWORD not in authed.log(), "password absent from the auth receiver's log")
    finally:
        for r in receivers:
            r.stop()
            try:
                os.unlink(r.logf.name)
            except OSError:
                pass
        shutil.rmtree(dump_dir, ignore_errors=True)
    print("%d passed, %d failed" % (_passed, _failed))
    return 1 if _failed or not _passed else 0


if __name__ == "__main__":
    sys.exit(main())
