#!/usr/bin/env python3
"""pyroscope_receiver.py: a Pyroscope-compatible profile receiver for crashscope's tests.

It stands in for a Grafana Pyroscope server so the uploader can be tested without one. It
implements, independently of crashscope's own code, the two ingestion endpoints:

  POST /push.v1.PusherService/Push   Connect unary call (application/proto or application/json,
                                     optional Content-Encoding: gzip), the current SDK path;
  POST /ingest?name=APP{k=v}&...     the legacy API with format=pprof (or a multipart form);

decodes every pprof with a small hand-written protobuf decoder, validates it the way the real
server's distributor does (pkg/validation/validate.go, pkg/distributor, pkg/og/convert/pprof,
api/model/labelset), records what was accepted, and can inject failures. Test-side endpoints:
GET /received, GET /stats, GET|POST /control. Usage: see --help; it prints `LISTENING <port>`
on stdout once it accepts connections, and nothing else on stdout.

What it must never do:
  - listen on anything but 127.0.0.1, or open any outgoing connection;
  - print, log, return or record a password or an Authorization header (auth_user is the
    user name only; every outgoing text is scrubbed of the configured password);
  - run unbounded: request bodies and decompressed sizes are capped, and the process exits by
    itself after --max-seconds;
  - depend on anything outside the Python 3 standard library.
"""

import argparse
import base64
import binascii
import calendar
import hmac
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib
from email.parser import BytesParser
from email.policy import HTTP as EMAIL_HTTP_POLICY
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PUSH_PATH = "/push.v1.PusherService/Push"
INGEST_PATH = "/ingest"
HOST = "127.0.0.1"  # loopback only, by design: there is no flag to change it

# Server defaults (pkg/validation/limits.go); the ones a client can realistically hit are flags.
MAX_LABEL_NAMES_PER_SERIES = 30
MAX_LABEL_NAME_LENGTH = 1024
MAX_LABEL_VALUE_LENGTH = 2048
MAX_SAMPLES = 16000
MAX_SAMPLE_LABELS = 100
MAX_STACK_DEPTH = 1000        # deeper stacks are truncated by the server, not rejected
MAX_SYMBOL_LENGTH = 65535     # longer strings are truncated by the server, not rejected
MAX_RECORDS = 10000           # keeps a runaway client from exhausting the test machine's memory

GZIP_MAGIC = b"\x1f\x8b"


# ---------------------------------------------------------------------------------------------
# Errors

class Reject(Exception):
    """A request the server refuses: HTTP status, Connect code, discard reason, message."""

    def __init__(self, status, code, reason, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.reason = reason
        self.message = message


class ProtoError(ValueError):
    pass


class TooLarge(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Protobuf wire format (only what push.v1, types.v1 and perftools.profiles need)

def _varint(buf, pos):
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift >= 70:
            raise ProtoError("varint longer than 10 bytes")
    return result & 0xFFFFFFFFFFFFFFFF, pos


def _fields(buf):
    """Yields (field number, wire type, value) of one message; value is an int for wire types
    0/1/5 and a memoryview for 2. Groups (3/4) are not used by any message here: an error."""
    buf = memoryview(buf)
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        fno, wt = key >> 3, key & 7
        if fno == 0:
            raise ProtoError("field number 0")
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            if end - pos < 8:
                raise ProtoError("truncated fixed64")
            val = int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            if n > end - pos:
                raise ProtoError("length-delimited field runs past the end of its message")
            val = buf[pos:pos + n]
            pos += n
        elif wt == 5:
            if end - pos < 4:
                raise ProtoError("truncated fixed32")
            val = int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        else:
            raise ProtoError("unsupported wire type %d" % wt)
        yield fno, wt, val


def _int64(v):
    return v - (1 << 64) if v >= (1 << 63) else v


def _scalar(fno, wt, v):
    # A known scalar field with the wrong wire type is a client bug worth failing loudly on
    # (vtprotobuf, which the server uses, refuses it too).
    if wt != 0:
        raise ProtoError("field %d: wire type %d where a varint was expected" % (fno, wt))
    return v


def _bytes(fno, wt, v):
    if wt != 2:
        raise ProtoError("field %d: wire type %d where bytes were expected" % (fno, wt))
    return bytes(v)


def _string(fno, wt, v, what):
    # proto3 `string` must be UTF-8: Go's proto.Unmarshal rejects the whole message otherwise.
    raw = _bytes(fno, wt, v)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtoError("%s: string field is not valid UTF-8 (hex %s)" % (what, raw.hex()))


def _repeated_uint(fno, wt, v):
    """Repeated scalars may come packed (wire type 2) or one per field (wire type 0)."""
    if wt == 0:
        return [v]
    if wt == 2:
        out = []
        pos = 0
        while pos < len(v):
            x, pos = _varint(v, pos)
            out.append(x)
        return out
    raise ProtoError("field %d: wire type %d for a repeated varint" % (fno, wt))


# ---- push.v1.PushRequest

def decode_push_request(data):
    """PushRequest{1: RawProfileSeries{1: LabelPair{1 name, 2 value}, 2: RawSample{1 raw_profile,
    2 ID}, 3: annotations (dropped by the server)}} -> list of {"labels": [(n, v)], "samples":
    [{"raw_profile": bytes, "id": str}]}."""
    series = []
    for fno, wt, v in _fields(data):
        if fno != 1:
            continue
        s = {"labels": [], "samples": []}
        for f2, w2, v2 in _fields(_bytes(fno, wt, v)):
            if f2 == 1:
                name = value = ""
                for f3, w3, v3 in _fields(_bytes(f2, w2, v2)):
                    if f3 == 1:
                        name = _string(f3, w3, v3, "LabelPair.name")
                    elif f3 == 2:
                        value = _string(f3, w3, v3, "LabelPair.value")
                s["labels"].append((name, value))
            elif f2 == 2:
                raw, sid = b"", ""
                for f3, w3, v3 in _fields(_bytes(f2, w2, v2)):
                    if f3 == 1:
                        raw = _bytes(f3, w3, v3)
                    elif f3 == 2:
                        sid = _string(f3, w3, v3, "RawSample.ID")
                s["samples"].append({"raw_profile": raw, "id": sid})
        series.append(s)
    return series


def _b64(s):
    # protojson accepts standard and URL-safe base64, padded or not.
    if not isinstance(s, str):
        raise ValueError("rawProfile is not a string")
    s = s.strip().replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    return base64.b64decode(s, validate=True)


def decode_push_json(data):
    """The same message in Connect's JSON form (protojson names; unknown fields ignored, as
    connect-go's codec does)."""
    try:
        msg = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtoError("invalid JSON: %s" % e)
    if not isinstance(msg, dict):
        raise ProtoError("PushRequest must be a JSON object")
    series = []
    try:
        for js in msg.get("series") or []:
            s = {"labels": [], "samples": []}
            for jl in js.get("labels") or []:
                name, value = jl.get("name", ""), jl.get("value", "")
                if not isinstance(name, str) or not isinstance(value, str):
                    raise ProtoError("LabelPair name/value must be strings")
                s["labels"].append((name, value))
            for jsm in js.get("samples") or []:
                raw = jsm.get("rawProfile", jsm.get("raw_profile", ""))
                sid = jsm.get("ID", "")
                if not isinstance(sid, str):
                    raise ProtoError("RawSample.ID must be a string")
                s["samples"].append({"raw_profile": _b64(raw), "id": sid})
            series.append(s)
    except (AttributeError, TypeError, ValueError, binascii.Error) as e:
        raise ProtoError("invalid PushRequest JSON: %s" % e)
    return series


# ---- perftools.profiles.Profile

def decode_profile(data):
    """Decodes a plain (not gzipped) pprof Profile into dicts; string indexes stay indexes."""
    p = {
        "sample_type": [], "sample": [], "mapping": [], "location": [], "function": [],
        "strings_raw": [], "time_nanos": 0, "duration_nanos": 0, "period_type": None,
        "period": 0, "comment": [], "default_sample_type": 0, "drop_frames": 0, "keep_frames": 0,
    }

    def value_type(buf):
        t = {"type": 0, "unit": 0}
        for f, w, v in _fields(buf):
            if f == 1:
                t["type"] = _int64(_scalar(f, w, v))
            elif f == 2:
                t["unit"] = _int64(_scalar(f, w, v))
        return t

    for fno, wt, v in _fields(data):
        if fno == 1:
            p["sample_type"].append(value_type(_bytes(fno, wt, v)))
        elif fno == 2:
            s = {"location_id": [], "value": [], "label": []}
            for f, w, x in _fields(_bytes(fno, wt, v)):
                if f == 1:
                    s["location_id"].extend(_repeated_uint(f, w, x))
                elif f == 2:
                    s["value"].extend(_int64(i) for i in _repeated_uint(f, w, x))
                elif f == 3:
                    lab = {"key": 0, "str": 0, "num": 0, "num_unit": 0}
                    names = {1: "key", 2: "str", 3: "num", 4: "num_unit"}
                    for f2, w2, x2 in _fields(_bytes(f, w, x)):
                        if f2 in names:
                            lab[names[f2]] = _int64(_scalar(f2, w2, x2))
                    s["label"].append(lab)
            p["sample"].append(s)
        elif fno == 3:
            m = {"id": 0, "memory_start": 0, "memory_limit": 0, "file_offset": 0,
                 "filename": 0, "build_id": 0}
            names = {1: "id", 2: "memory_start", 3: "memory_limit", 4: "file_offset",
                     5: "filename", 6: "build_id"}
            for f, w, x in _fields(_bytes(fno, wt, v)):
                if f in names:
                    m[names[f]] = _scalar(f, w, x)
            m["filename"] = _int64(m["filename"])
            m["build_id"] = _int64(m["build_id"])
            p["mapping"].append(m)
        elif fno == 4:
            loc = {"id": 0, "mapping_id": 0, "address": 0, "line": []}
            for f, w, x in _fields(_bytes(fno, wt, v)):
                if f == 1:
                    loc["id"] = _scalar(f, w, x)
                elif f == 2:
                    loc["mapping_id"] = _scalar(f, w, x)
                elif f == 3:
                    loc["address"] = _scalar(f, w, x)
                elif f == 4:
                    ln = {"function_id": 0, "line": 0}
                    for f2, w2, x2 in _fields(_bytes(f, w, x)):
                        if f2 == 1:
                            ln["function_id"] = _scalar(f2, w2, x2)
                        elif f2 == 2:
                            ln["line"] = _int64(_scalar(f2, w2, x2))
                    loc["line"].append(ln)
            p["location"].append(loc)
        elif fno == 5:
            fn = {"id": 0, "name": 0, "system_name": 0, "filename": 0, "start_line": 0}
            names = {1: "id", 2: "name", 3: "system_name", 4: "filename", 5: "start_line"}
            for f, w, x in _fields(_bytes(fno, wt, v)):
                if f in names:
                    fn[names[f]] = _scalar(f, w, x)
            for k in ("name", "system_name", "filename", "start_line"):
                fn[k] = _int64(fn[k])
            p["function"].append(fn)
        elif fno == 6:
            p["strings_raw"].append(_bytes(fno, wt, v))
        elif fno == 7:
            p["drop_frames"] = _int64(_scalar(fno, wt, v))
        elif fno == 8:
            p["keep_frames"] = _int64(_scalar(fno, wt, v))
        elif fno == 9:
            p["time_nanos"] = _int64(_scalar(fno, wt, v))
        elif fno == 10:
            p["duration_nanos"] = _int64(_scalar(fno, wt, v))
        elif fno == 11:
            p["period_type"] = value_type(_bytes(fno, wt, v))
        elif fno == 12:
            p["period"] = _int64(_scalar(fno, wt, v))
        elif fno == 13:
            p["comment"].extend(_int64(i) for i in _repeated_uint(fno, wt, v))
        elif fno == 14:
            p["default_sample_type"] = _int64(_scalar(fno, wt, v))
    # Keep both forms: the raw bytes decide UTF-8 validity, the text is for reports.
    p["strings"] = [b.decode("utf-8", "replace") for b in p["strings_raw"]]
    return p


# ---------------------------------------------------------------------------------------------
# Decompression, bounded (a zip bomb must not take the test machine down)

def gunzip_bounded(data, limit):
    """Decompresses gzip data (several members allowed) to at most `limit` bytes; raises
    TooLarge past it and ValueError on corrupt input."""
    out = bytearray()
    rest = bytes(data)
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = d.decompress(rest, limit + 1 - len(out))
        except zlib.error as e:
            raise ValueError("gzip: %s" % e)
        out += chunk
        if len(out) > limit:
            raise TooLarge()
        if not d.eof:
            if d.unconsumed_tail:
                raise TooLarge()
            raise ValueError("gzip: unexpected end of data")
        rest = d.unused_data
        # Trailing zero padding after the last member is tolerated, as Go's reader does not.
        if rest and not rest.startswith(GZIP_MAGIC):
            raise ValueError("gzip: trailing garbage after member")
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Validation, after the real server

def _utf8ok(text):
    # Strings that came through surrogateescape (raw bytes from a URL) or JSON escapes of lone
    # surrogates are exactly the ones that are not valid UTF-8 on the wire.
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def validate_labels(pairs):
    """distributor.pushSeries + validation.ValidateLabels: returns the labels as the server
    stores them (a dict), or raises Reject with the reason the server would log."""
    pairs = list(pairs)
    if not pairs:
        raise Reject(400, "invalid_argument", "missing_labels",
                     "error at least one label pair is required per profile")
    # The server adds the fallback when the (first) service_name value is empty, so an
    # explicit empty service_name then collides with it as a duplicate, as on the real server.
    if next((v for n, v in pairs if n == "service_name"), "") == "":
        pairs.append(("service_name", "unknown_service"))
    pairs.sort(key=lambda nv: nv[0].encode("utf-8", "surrogateescape"))
    text = "{" + ", ".join('%s="%s"' % nv for nv in pairs) + "}"
    if len(pairs) > MAX_LABEL_NAMES_PER_SERIES:
        raise Reject(400, "invalid_argument", "max_label_names_per_series",
                     "profile series '%s' has %d label names; limit %d"
                     % (text, len(pairs), MAX_LABEL_NAMES_PER_SERIES))
    metric = next((v for n, v in pairs if n == "__name__"), "")
    if metric == "":
        raise Reject(400, "invalid_argument", "invalid_labels",
                     "invalid labels '%s' with error: invalid metric name" % text)
    last = None
    for n, v in pairs:
        if not _utf8ok(n):
            raise Reject(400, "invalid_argument", "invalid_labels",
                         "invalid labels '%s' with error: invalid label name %r" % (text, n))
        if not _utf8ok(v):
            raise Reject(400, "invalid_argument", "invalid_labels",
                         "invalid labels '%s' with error: invalid label value %r" % (text, v))
        if len(n.encode("utf-8")) > MAX_LABEL_NAME_LENGTH:
            raise Reject(400, "invalid_argument", "label_name_too_long",
                         "profile with labels '%s' has label name too long: '%s'" % (text, n))
        if len(v.encode("utf-8")) > MAX_LABEL_VALUE_LENGTH:
            raise Reject(400, "invalid_argument", "label_value_too_long",
                         "profile with labels '%s' has label value too long: '%s'" % (text, v))
        if n == "":
            raise Reject(400, "invalid_argument", "invalid_labels",
                         "invalid labels '%s' with error: invalid label name ''" % text)
        if n == last:
            raise Reject(400, "invalid_argument", "duplicate_label_names",
                         "profile with labels '%s' has duplicate label name: '%s'" % (text, n))
        last = n
    return dict(pairs)


def _malformed(status, msg):
    return Reject(status, "invalid_argument" if status == 400 else "unknown",
                  "malformed_profile", msg)


def validate_profile(p, now_ns, cfg, status):
    """validation.ValidateProfile. Returns (effective time_nanos, warnings) or raises Reject.
    `status` is what a validation failure answers with: 400 on push, 422 on /ingest."""
    warnings = []
    strings = p["strings_raw"]
    if not p["sample_type"]:
        raise _malformed(status, "empty profile")

    t = p["time_nanos"]
    if t > 0:
        lo = now_ns - int(cfg.reject_older_than * 1e9) if cfg.reject_older_than > 0 else None
        hi = now_ns + int(cfg.reject_newer_than * 1e9) if cfg.reject_newer_than > 0 else None
        # The server compares in milliseconds with strict After/Before.
        if (lo is not None and t // 10**6 <= lo // 10**6) or \
                (hi is not None and t // 10**6 >= hi // 10**6):
            raise Reject(status, "invalid_argument" if status == 400 else "unknown",
                         "not_in_ingestion_window",
                         "profile is outside of ingestion window (profile timestamp: %s, "
                         "the ingestion window starts at %s and ends at %s)"
                         % (_fmt_ns(t), _fmt_ns(lo), _fmt_ns(hi)))
        effective = t
    else:
        effective = now_ns  # 0 means "now" on the server

    if len(p["sample"]) > MAX_SAMPLES:
        raise Reject(status, "invalid_argument" if status == 400 else "unknown",
                     "samples_limit",
                     "the profile exceeds the samples count limit "
                     "(max_profile_stacktrace_samples, actual: %d, limit: %d)"
                     % (len(p["sample"]), MAX_SAMPLES))
    for s in p["sample"]:
        if len(s["location_id"]) > MAX_STACK_DEPTH:
            warnings.append("stack of depth %d truncated to %d by the server"
                            % (len(s["location_id"]), MAX_STACK_DEPTH))
        if len(s["label"]) > MAX_SAMPLE_LABELS:
            raise Reject(status, "invalid_argument" if status == 400 else "unknown",
                         "sample_labels_limit",
                         "the profile exceeds the sample labels limit "
                         "(max_profile_stacktrace_sample_labels, actual: %d, limit: %d)"
                         % (len(s["label"]), MAX_SAMPLE_LABELS))
    for i, raw in enumerate(strings):
        if len(raw) > MAX_SYMBOL_LENGTH:
            warnings.append("string %d of %d bytes truncated to %d by the server"
                            % (i, len(raw), MAX_SYMBOL_LENGTH))
    if any(loc["id"] == 0 for loc in p["location"]):
        raise _malformed(status, "location id is 0")
    if any(fn["id"] == 0 for fn in p["function"]):
        raise _malformed(status, "function id is 0")
    for s in p["sample"]:
        if len(s["value"]) != len(p["sample_type"]):
            raise _malformed(status, "sample value length mismatch")

    n = len(strings)

    def bad(i):
        # Go indexes with int(x): negative indexes would panic there, so they are malformed too.
        return i < 0 or i >= n

    if n == 0 or strings[0] != b"":
        raise _malformed(status, "string 0 should be empty string")
    if any(bad(vt["type"]) for vt in p["sample_type"]):
        raise _malformed(status, "sample type type string index out of range")
    for s in p["sample"]:
        if any(bad(lab["str"]) or bad(lab["key"]) for lab in s["label"]):
            raise _malformed(status, "sample label string index out of range")
    for fn in p["function"]:
        for k in ("name", "system_name", "filename"):
            if bad(fn[k]):
                raise _malformed(status, "function %s string index out of range" % k)
    for m in p["mapping"]:
        for k in ("filename", "build_id"):
            if bad(m[k]):
                raise _malformed(status, "mapping %s string index out of range" % k)
    for vt in p["sample_type"]:
        if b"-" in strings[vt["type"]]:
            raise _malformed(status, "sample type contains -")
    for raw in strings:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed(status, "invalid utf8 string hex: %s" % raw.hex())

    # Not rejected by the server, but wrong: `go tool pprof` refuses several of these, and the
    # server silently drops or mangles the data.
    if p["period_type"] is not None:
        for k in ("type", "unit"):
            if bad(p["period_type"][k]):
                warnings.append("period_type %s string index out of range" % k)
    loc_ids = [loc["id"] for loc in p["location"]]
    fn_ids = [fn["id"] for fn in p["function"]]
    map_ids = [m["id"] for m in p["mapping"]]
    for what, ids in (("location", loc_ids), ("function", fn_ids), ("mapping", map_ids)):
        if len(set(ids)) != len(ids):
            warnings.append("duplicate %s ids" % what)
    loc_set, fn_set, map_set = set(loc_ids), set(fn_ids), set(map_ids)
    for loc in p["location"]:
        if loc["mapping_id"] and loc["mapping_id"] not in map_set:
            warnings.append("location %d refers to unknown mapping %d"
                            % (loc["id"], loc["mapping_id"]))
        for ln in loc["line"]:
            if ln["function_id"] not in fn_set:
                warnings.append("location %d refers to unknown function %d"
                                % (loc["id"], ln["function_id"]))
    for i, s in enumerate(p["sample"]):
        missing = [x for x in s["location_id"] if x not in loc_set]
        if missing:
            warnings.append("sample %d refers to unknown locations %s" % (i, missing[:5]))
        if not s["location_id"]:
            warnings.append("sample %d has no locations" % i)
        if s["value"] and all(v == 0 for v in s["value"]):
            warnings.append("sample %d has only zero values (the server drops it)" % i)
    return effective, warnings[:50]


def _fmt_ns(ns):
    if ns is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9))


def summarize_profile(p):
    """The profile as tests want to read it: names instead of indexes, stacks leaf first."""
    st = p["strings"]

    def s(i):
        return st[i] if 0 <= i < len(st) else "<bad string %d>" % i

    fns = {fn["id"]: fn for fn in p["function"]}
    locs = {loc["id"]: loc for loc in p["location"]}
    samples = []
    for smp in p["sample"]:
        stack = []
        for lid in smp["location_id"]:
            loc = locs.get(lid)
            if loc is None:
                stack.append("<unknown location %d>" % lid)
                continue
            if not loc["line"]:
                stack.append("0x%x" % loc["address"])
            # line[0] is the innermost inlined frame, so in-order is leaf first.
            for ln in loc["line"]:
                fn = fns.get(ln["function_id"])
                if fn is None:
                    stack.append("<unknown function %d>" % ln["function_id"])
                else:
                    stack.append(s(fn["name"]) or s(fn["system_name"]) or "<unnamed>")
        labels = {}
        for lab in smp["label"]:
            labels[s(lab["key"])] = s(lab["str"]) if lab["str"] else lab["num"]
        samples.append({"stack": stack, "values": smp["value"], "labels": labels})
    pt = p["period_type"]
    return {
        "sample_types": [[s(vt["type"]), s(vt["unit"])] for vt in p["sample_type"]],
        "period_type": [s(pt["type"]), s(pt["unit"])] if pt is not None else None,
        "period": p["period"],
        "time_nanos": p["time_nanos"],
        "duration_nanos": p["duration_nanos"],
        "default_sample_type": s(p["default_sample_type"]) if p["default_sample_type"] else None,
        "comments": [s(c) for c in p["comment"]],
        "samples": samples,
        "mappings": [{"id": m["id"], "memory_start": m["memory_start"],
                      "memory_limit": m["memory_limit"], "file_offset": m["file_offset"],
                      "filename": s(m["filename"]), "build_id": s(m["build_id"])}
                     for m in p["mapping"]],
        "functions": [{"id": fn["id"], "name": s(fn["name"]),
                       "system_name": s(fn["system_name"]), "filename": s(fn["filename"]),
                       "start_line": fn["start_line"]} for fn in p["function"]],
        "num_locations": len(p["location"]),
        "num_strings": len(st),
    }


def parse_raw_profile(raw, cfg, status):
    """pprof.RawFromBytesWithLimit: gzip is detected by its magic, the decompressed size is
    capped. Returns (decoded profile, plain bytes)."""
    if raw[:2] == GZIP_MAGIC:
        try:
            plain = gunzip_bounded(raw, cfg.max_profile_bytes)
        except TooLarge:
            raise Reject(status, "invalid_argument" if status == 400 else "unknown",
                         "profile_size_limit",
                         "uncompressed profile payload size exceeds limit of %d bytes"
                         % cfg.max_profile_bytes)
        except ValueError as e:
            raise _malformed(status, "malformed pprof: %s" % e)
    else:
        plain = bytes(raw)
        if len(plain) > cfg.max_profile_bytes:
            raise Reject(status, "invalid_argument" if status == 400 else "unknown",
                         "profile_size_limit",
                         "uncompressed profile payload size exceeds limit of %d bytes"
                         % cfg.max_profile_bytes)
    try:
        return decode_profile(plain), plain
    except ProtoError as e:
        # The real server answers a push of undecodable bytes with 500 "unknown" (the error is
        # not a validation error); 400 here, because such a profile is lost either way and a
        # client must not retry it.
        raise _malformed(status, "malformed pprof: %s" % e)


# ---------------------------------------------------------------------------------------------
# /ingest helpers (api/model/labelset, pkg/og/util/attime, pkg/og/convert/pprof)

_LABEL_KEY_OK = re.compile(r"^[A-Za-z0-9_.]+$")
_APP_NAME_OK = re.compile(r"^[A-Za-z0-9_./\-]+$")


def parse_ingest_name(name):
    """labelset.Parse: 'app{k=v,k2=v2}' -> (app, {k: v}). The real parser appends '{' to the
    input and walks a state machine; this follows it, including its quirks (an unterminated
    tag set silently drops the last label)."""
    app_buf, key, value = [], [], []
    tags = {}
    state = "name"
    for ch in name + "{":
        if state == "name":
            if ch == "{":
                state = "key"
                app = "".join(app_buf).strip()
                if not app:
                    raise ValueError("service name is required")
                bad = [c for c in app if not _APP_NAME_OK.match(c)]
                if bad:
                    raise ValueError("invalid service name: %s: character is not allowed: %r"
                                     % (app, bad[0]))
            else:
                app_buf.append(ch)
        elif state == "key":
            if ch == "}":
                state = "done"
            elif ch == "=":
                state = "value"
                value = []
            else:
                key.append(ch)
        elif state == "value":
            if ch in ",}":
                state = "key"
                k = "".join(key).strip()
                if k != "__name__":
                    if not k:
                        raise ValueError("label name is required")
                    bad = [c for c in k if not _LABEL_KEY_OK.match(c)]
                    if bad:
                        raise ValueError("invalid label name: %s: character is not allowed: %r"
                                         % (k, bad[0]))
                tags[k] = "".join(value).strip()
                key = []
            else:
                value.append(ch)
    return app, tags


def parse_attime(s, now_ns):
    """attime.Parse, to nanoseconds: digits only -> unix time whose length picks the unit
    (13 ms, 16 us, 19 ns, else seconds; 8 digits YYYYMMDD is a date); anything else is
    'now' plus an offset such as now-10s (only s/m/h/d offsets are understood here)."""
    s = s.strip().replace("_", "").replace(",", "").replace(" ", "")
    if s.isdigit():
        if len(s) == 8:
            try:
                tm = time.strptime(s, "%Y%m%d")
                if tm.tm_year > 1900:
                    return calendar.timegm(tm) * 10**9
            except ValueError:
                pass
        v = int(s)
        if len(s) == 13:
            return v * 10**6
        if len(s) == 16:
            return v * 10**3
        if len(s) == 19:
            return v
        return v * 10**9
    m = re.match(r"^[^+-]*([+-])(\d+)([smhd])?$", s)
    if m:
        mult = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}[m.group(3)]
        off = int(m.group(2)) * mult * 10**9
        return now_ns + off if m.group(1) == "+" else now_ns - off
    return now_ns


def ingest_metric_name(p):
    """RawProfile.metricName with the default sample type mapping: the series' __name__."""
    display = {"samples": "cpu", "goroutine": "goroutines", "contentions": "mutex_count",
               "delay": "mutex_duration"}
    types = [p["strings"][vt["type"]] if 0 <= vt["type"] < len(p["strings"]) else ""
             for vt in p["sample_type"]]
    if "wall" in types:
        return "wall"
    st = ""
    for st in types:
        st = display.get(st, st)
        if "cpu" in st:
            return "process_cpu"
        if "alloc_" in st or "inuse_" in st or st in ("space", "objects"):
            return "memory"
        if "mutex_" in st:
            return "mutex"
        if "block_" in st:
            return "block"
        if "goroutines" in st:
            return "goroutines"
    return st


def parse_multipart(body, content_type):
    """Returns {field name: bytes} of a multipart/form-data body."""
    msg = BytesParser(policy=EMAIL_HTTP_POLICY).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not msg.is_multipart():
        raise ValueError("not a multipart body")
    out = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            out[name] = part.get_payload(decode=True) or b""
    return out


# ---------------------------------------------------------------------------------------------
# Shared state

CONNECT_CODES = {400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied",
                 408: "deadline_exceeded", 409: "aborted", 412: "failed_precondition",
                 413: "resource_exhausted", 415: "internal", 429: "resource_exhausted",
                 499: "canceled", 500: "internal", 501: "unimplemented", 502: "unavailable",
                 503: "unavailable", 504: "deadline_exceeded"}

_MODE_RE = re.compile(r"^(ok|close|reset|status:([1-5][0-9][0-9])|stall:([0-9]+(\.[0-9]+)?))$")


class State:
    def __init__(self, cfg):
        self.cfg = cfg
        self.lock = threading.Lock()
        self.started = time.time()
        self.records = []
        self.dropped_records = 0
        self.seq = 0
        self.failure = {"mode": "ok", "count": 0, "endpoint": "any", "retry_after": None}
        self.stats = {
            "data_requests": 0, "accepted_requests": 0, "accepted_profiles": 0,
            "rejected_requests": 0, "by_status": {}, "by_endpoint": {},
            "rejected_by_reason": {}, "injected": {"total": 0, "by_mode": {}},
            "empty_ingests": 0, "secret_leaks": 0, "other_requests": 0,
        }
        self.shutdown = threading.Event()

    def set_failure(self, mode, count=1, endpoint="any", retry_after=None):
        if not isinstance(mode, str) or not _MODE_RE.match(mode):
            raise ValueError("mode must be ok, close, reset, status:NNN or stall:SECONDS")
        if not isinstance(count, int) or isinstance(count, bool) or count < -1:
            raise ValueError("count must be an integer >= -1")
        if endpoint not in ("any", "push", "ingest"):
            raise ValueError("endpoint must be any, push or ingest")
        if retry_after is not None and (not isinstance(retry_after, (int, float))
                                        or isinstance(retry_after, bool) or retry_after < 0):
            raise ValueError("retry_after must be a number of seconds")
        if mode.startswith("stall:") and float(mode[6:]) > self.cfg.max_seconds:
            raise ValueError("stall longer than --max-seconds")
        with self.lock:
            if mode == "ok" or count == 0:
                self.failure = {"mode": "ok", "count": 0, "endpoint": "any",
                                "retry_after": None}
            else:
                self.failure = {"mode": mode, "count": count, "endpoint": endpoint,
                                "retry_after": retry_after}
            return dict(self.failure)

    def take_failure(self, endpoint):
        """The failure to apply to this data request, if any; counts it down."""
        with self.lock:
            f = self.failure
            if f["mode"] == "ok" or f["endpoint"] not in ("any", endpoint):
                return None
            taken = dict(f)
            if f["count"] > 0:
                f["count"] -= 1
                if f["count"] == 0:
                    self.failure = {"mode": "ok", "count": 0, "endpoint": "any",
                                    "retry_after": None}
            inj = self.stats["injected"]
            inj["total"] += 1
            key = taken["mode"]
            inj["by_mode"][key] = inj["by_mode"].get(key, 0) + 1
            return taken

    def count(self, endpoint, outcome, reason=None):
        """One data request's outcome: an HTTP status or 'closed'/'reset'."""
        with self.lock:
            st = self.stats
            st["data_requests"] += 1
            key = str(outcome)
            st["by_status"][key] = st["by_status"].get(key, 0) + 1
            ep = st["by_endpoint"].setdefault(endpoint, {"attempts": 0, "by_status": {}})
            ep["attempts"] += 1
            ep["by_status"][key] = ep["by_status"].get(key, 0) + 1
            if outcome == 200:
                st["accepted_requests"] += 1
            elif reason is not None:
                st["rejected_requests"] += 1
                st["rejected_by_reason"][reason] = st["rejected_by_reason"].get(reason, 0) + 1

    def bump(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def add_record(self, rec, raw_as_received, plain):
        with self.lock:
            self.seq += 1
            rec["seq"] = seq = self.seq
            self.stats["accepted_profiles"] += 1
        if self.cfg.dump_dir:
            rec["dump"], rec["dump_format"] = self._dump(seq, rec, raw_as_received, plain)
        with self.lock:
            if len(self.records) < MAX_RECORDS:
                self.records.append(rec)
            else:
                self.dropped_records += 1

    def _dump(self, seq, rec, raw, plain):
        # Always gzipped, so every file is a valid .pb.gz for `go tool pprof`.
        name = re.sub(r"[^A-Za-z0-9_.]", "_", rec["labels"].get("__name__", "") or "noname")
        path = os.path.join(self.cfg.dump_dir, "%04d-%s.pb.gz" % (seq, name[:64]))
        if raw[:2] == GZIP_MAGIC:
            data, how = raw, "gzip, byte-identical to the raw_profile as received"
        else:
            co = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            data = co.compress(plain) + co.flush()
            how = "gzip, made by the receiver from the plain pprof received"
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # readers never see a partial file
        return path, how

    def snapshot_stats(self):
        with self.lock:
            out = json.loads(json.dumps(self.stats))
            out["failure"] = dict(self.failure)
            out["records"] = len(self.records)
            out["dropped_records"] = self.dropped_records
            out["uptime_seconds"] = round(time.time() - self.started, 3)
            return out

    def clear(self):
        with self.lock:
            self.records = []
            self.dropped_records = 0
            for k in ("data_requests", "accepted_requests", "accepted_profiles",
                      "rejected_requests", "empty_ingests", "secret_leaks", "other_requests"):
                self.stats[k] = 0
            for k in ("by_status", "by_endpoint", "rejected_by_reason"):
                self.stats[k] = {}
            self.stats["injected"] = {"total": 0, "by_mode": {}}


# ---------------------------------------------------------------------------------------------
# HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pyroscope-test-receiver/1"
    state = None  # set in main()

    # ---- plumbing

    def setup(self):
        self.timeout = self.state.cfg.io_timeout  # a stuck client cannot hold a thread forever
        super().setup()

    def scrub(self, text):
        pw = self.state.cfg.password
        if pw:
            text = text.replace(pw, "***")
            esc = json.dumps(pw)[1:-1]
            if esc != pw:
                text = text.replace(esc, "***")
        return text

    def log_message(self, fmt, *args):
        # Only the request line and status are logged, never headers; scrubbed in case a
        # client put its secret in the URL.
        if not self.state.cfg.quiet:
            sys.stderr.write(self.scrub("receiver: %s %s\n" % (self.address_string(),
                                                                 fmt % args)))
            sys.stderr.flush()

    def handle_expect_100(self):
        # curl sends `Expect: 100-continue` for large bodies: refuse an oversized one before
        # the client sends it.
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = 0
        if n > self.state.cfg.max_body_bytes:
            path = self.path.partition("?")[0]
            if path in (PUSH_PATH, INGEST_PATH):
                self.state.count("push" if path == PUSH_PATH else "ingest", 413,
                                 "body_size_limit_exceeded")
            self.close_connection = True
            self._send(413, self._err_body(413, "request body too large"),
                       "application/json", close=True)
            return False
        return super().handle_expect_100()

    def _send(self, status, body=b"", ctype=None, headers=(), close=False):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _err_body(self, status, message, code=None):
        code = code or CONNECT_CODES.get(status, "unknown")
        return self.scrub(json.dumps({"code": code, "message": message})).encode() + b"\n"

    def _json(self, obj, status=200):
        self._send(status, self.scrub(json.dumps(obj, indent=1)).encode() + b"\n",
                   "application/json")

    def _read_body(self):
        """The request body, capped at --max-body-bytes (TooLarge past it)."""
        cap = self.state.cfg.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                if not line.endswith(b"\n"):
                    raise ValueError("bad chunk header")
                size = int(line.split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                if len(out) + size > cap:
                    raise TooLarge()
                out += self._read_exact(size)
                self.rfile.readline(1024)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""  # HTTP/1.1: no length and not chunked means no body
        n = int(cl)
        if n < 0:
            raise ValueError("negative Content-Length")
        if n > cap:
            raise TooLarge()
        return self._read_exact(n)

    def _read_exact(self, n):
        data = self.rfile.read(n)
        if len(data) != n:
            raise ValueError("body ended after %d of %d bytes" % (len(data), n))
        return data

    # ---- routing

    def do_GET(self):
        path, _, query = self.path.partition("?")
        q = urllib.parse.parse_qs(query)
        if path in (PUSH_PATH, INGEST_PATH):
            self.state.bump("other_requests")
            return self._send(405, self._err_body(405, "method not allowed"),
                              "application/json", headers=[("Allow", "POST")])
        self.state.bump("other_requests")
        if path == "/received":
            since = int((q.get("since") or ["0"])[0] or 0)
            with self.state.lock:
                recs = [r for r in self.state.records if r["seq"] > since]
            return self._json(recs)
        if path == "/stats":
            return self._json(self.state.snapshot_stats())
        if path == "/control":
            with self.state.lock:
                return self._json(dict(self.state.failure))
        if path == "/healthz":
            return self._send(200, b"ok\n", "text/plain")
        self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")

    def do_POST(self):
        path, _, query = self.path.partition("?")
        if path == "/control":
            self.state.bump("other_requests")
            return self._control()
        if path == PUSH_PATH:
            return self._data("push", query)
        if path == INGEST_PATH:
            return self._data("ingest", query)
        self.state.bump("other_requests")
        try:
            self._read_body()
        except (TooLarge, ValueError, OSError):
            self.close_connection = True
        self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")

    def _control(self):
        try:
            body = self._read_body()
            req = json.loads(body.decode() or "{}")
            if not isinstance(req, dict):
                raise ValueError("expected a JSON object")
            if req.get("clear"):
                self.state.clear()
            if "mode" in req:
                cur = self.state.set_failure(req["mode"], req.get("count", 1),
                                             req.get("endpoint", "any"),
                                             req.get("retry_after"))
            else:
                with self.state.lock:
                    cur = dict(self.state.failure)
        except (TooLarge, ValueError, UnicodeDecodeError) as e:
            return self._send(400, self._err_body(400, "control: %s" % e), "application/json")
        self._json(cur)

    # ---- data endpoints

    def _data(self, endpoint, query):
        st = self.state
        cfg = st.cfg
        try:
            body = self._read_body()
        except TooLarge:
            st.count(endpoint, 413, "body_size_limit_exceeded")
            return self._send(413, self._err_body(413, "request body too large (limit %d bytes)"
                                                  % cfg.max_body_bytes),
                              "application/json", close=True)
        except (ValueError, OSError) as e:
            st.count(endpoint, 400, "bad_request")
            return self._send(400, self._err_body(400, "cannot read body: %s" % e),
                              "application/json", close=True)

        self._scan_for_secret(self.path.encode("utf-8", "replace"), body)

        stalled = False
        fail = st.take_failure(endpoint)
        if fail is not None:
            mode = fail["mode"]
            self.log_message("injecting %s on %s", mode, endpoint)
            if mode == "close":
                st.count(endpoint, "closed")
                self.close_connection = True
                return
            if mode == "reset":
                st.count(endpoint, "reset")
                self.close_connection = True
                try:
                    # linger 0: close() sends RST instead of FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass
                return
            if mode.startswith("status:"):
                code = int(mode[7:])
                st.count(endpoint, code, "injected")
                headers = []
                if fail.get("retry_after") is not None:
                    headers.append(("Retry-After", "%d" % int(fail["retry_after"])))
                if code == 404:
                    # What an old server without the push API (or a wrong base URL) answers:
                    # Go's mux, plain text, not a Connect error.
                    return self._send(404, b"404 page not found\n",
                                      "text/plain; charset=utf-8", headers)
                return self._send(code, self._err_body(code, "injected failure (%s)" % mode),
                                  "application/json", headers)
            if mode.startswith("stall:"):
                # Then answer normally: a client that gave up may find its profile recorded
                # anyway, as with a real slow server.
                st.shutdown.wait(float(mode[6:]))
                stalled = True

        try:
            auth_user, tenant = self._check_auth()
            if endpoint == "push":
                status, body_out, ctype = self._push(body, auth_user, tenant, stalled)
            else:
                status, body_out, ctype = self._ingest(body, query, auth_user, tenant, stalled)
        except Reject as r:
            st.count(endpoint, r.status, r.reason)
            self.log_message("rejected %s: %d %s: %s", endpoint, r.status, r.reason, r.message)
            headers = []
            if r.status == 401:
                headers.append(("WWW-Authenticate", 'Basic realm="pyroscope-test-receiver"'))
            return self._send(r.status, self._err_body(r.status, r.message, r.code),
                              "application/json", headers)
        st.count(endpoint, status)
        self._send(status, body_out, ctype)

    def _scan_for_secret(self, *blobs):
        # A client that leaks its password into a URL or a profile is a bug worth a counter.
        pw = self.state.cfg.password
        if not pw or len(pw) < 6:
            return
        needle = pw.encode()
        for b in blobs:
            if needle in b:
                self.state.bump("secret_leaks")
                return
            if b[:2] == GZIP_MAGIC:
                try:
                    if needle in gunzip_bounded(b, self.state.cfg.max_body_bytes):
                        self.state.bump("secret_leaks")
                        return
                except (TooLarge, ValueError):
                    pass

    def _check_auth(self):
        """Returns (user name or None, tenant or None); raises Reject(401)."""
        cfg = self.state.cfg
        user = None
        pw_ok = False
        h = self.headers.get("Authorization", "")
        if h[:6].lower() == "basic ":
            try:
                dec = base64.b64decode(h[6:].strip(), validate=True)
                u, sep, p = dec.partition(b":")
                if sep:
                    user = u.decode("utf-8", "replace")
                    if cfg.user is not None:
                        pw_ok = hmac.compare_digest(u, cfg.user.encode()) and \
                            hmac.compare_digest(p, cfg.password.encode())
            except (binascii.Error, ValueError):
                user = None
        if cfg.user is not None and not pw_ok:
            # The message says which part is missing, never what was sent.
            raise Reject(401, "unauthenticated", "unauthenticated",
                         "missing basic auth" if not h else "invalid basic auth credentials")
        tenant = self.headers.get("X-Scope-OrgID")
        if cfg.tenant is not None:
            if not tenant:
                raise Reject(401, "unauthenticated", "unauthenticated", "no org id")
            if tenant != cfg.tenant:
                raise Reject(401, "unauthenticated", "unauthenticated",
                             "X-Scope-OrgID does not match the configured tenant")
        return user, tenant

    def _base_record(self, endpoint, body, auth_user, tenant, stalled):
        return {
            "endpoint": endpoint, "received_at": round(time.time(), 6),
            "auth_user": auth_user, "tenant": tenant, "request_bytes": len(body),
            "content_type": self.headers.get("Content-Type"),
            "content_encoding": self.headers.get("Content-Encoding"),
            "user_agent": self.headers.get("User-Agent"), "stalled": stalled,
        }

    def _push(self, body, auth_user, tenant, stalled):
        cfg = self.state.cfg
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in ("application/proto", "application/json"):
            raise Reject(415, "internal", "unsupported_media_type",
                         "unsupported content type %r: use application/proto or "
                         "application/json" % ctype)
        enc = self.headers.get("Content-Encoding", "").strip().lower()
        if enc == "gzip":
            try:
                body = gunzip_bounded(body, cfg.max_body_bytes)
            except TooLarge:
                raise Reject(413, "resource_exhausted", "body_size_limit_exceeded",
                             "decompressed request exceeds %d bytes" % cfg.max_body_bytes)
            except ValueError as e:
                raise Reject(400, "invalid_argument", "bad_request",
                             "decompress request body: %s" % e)
        elif enc not in ("", "identity"):
            raise Reject(501, "unimplemented", "unsupported_encoding",
                         "unknown compression %r: supported encodings are gzip, identity" % enc)
        try:
            series = decode_push_json(body) if ctype == "application/json" \
                else decode_push_request(body)
        except ProtoError as e:
            raise Reject(400, "invalid_argument", "bad_request", "unmarshal message: %s" % e)
        if not any(s["samples"] for s in series):
            raise Reject(400, "invalid_argument", "no_profiles", "no profiles received")

        now_ns = time.time_ns()
        errors = []
        for si, s in enumerate(series):
            for sample in s["samples"]:
                try:
                    prof, plain = parse_raw_profile(sample["raw_profile"], cfg, 400)
                    labels = validate_labels(s["labels"])
                    effective, warnings = validate_profile(prof, now_ns, cfg, 400)
                except Reject as r:
                    errors.append(r)
                    continue
                self._scan_for_secret(plain)
                rec = self._base_record("push", body, auth_user, tenant, stalled)
                summary = summarize_profile(prof)
                summary["effective_time_nanos"] = effective
                rec.update({
                    "labels": labels, "label_pairs": [list(nv) for nv in s["labels"]],
                    "ingest": None, "id": sample["id"], "profile": summary,
                    "bytes": len(sample["raw_profile"]), "decompressed_bytes": len(plain),
                    "profile_gzipped": sample["raw_profile"][:2] == GZIP_MAGIC,
                    "warnings": warnings,
                })
                self.state.add_record(rec, sample["raw_profile"], plain)
        if errors:
            # Like the distributor: valid series of the same request are kept, and the request
            # fails with the errors of the others.
            first = errors[0]
            msg = "; ".join("push series with index %d failed: %s" % (i, e.message)
                            for i, e in enumerate(errors))
            raise Reject(first.status, first.code, first.reason, msg)
        if ctype == "application/json":
            return 200, b"{}", "application/json"
        return 200, b"", "application/proto"

    def _ingest(self, body, query, auth_user, tenant, stalled):
        cfg = self.state.cfg
        now_ns = time.time_ns()
        # surrogateescape keeps non-UTF-8 bytes detectable (validate_labels rejects them, as
        # the server does) instead of silently turning them into U+FFFD.
        q = urllib.parse.parse_qs(query, keep_blank_values=True, errors="surrogateescape")

        def get(k):
            return (q.get(k) or [""])[0]

        try:
            app, tags = parse_ingest_name(get("name"))
        except ValueError as e:
            raise Reject(400, "invalid_argument", "invalid_name", "name: %s" % e)
        from_ns = parse_attime(get("from"), now_ns) if get("from") else now_ns
        until_ns = parse_attime(get("until"), now_ns) if get("until") else now_ns
        fmt = get("format")
        ctype = self.headers.get("Content-Type", "")
        try:
            sample_rate = int(get("sampleRate")) if get("sampleRate") else 100
        except ValueError:
            sample_rate = 100  # the server logs it and uses the default
        spy = get("spyName") or "unknown"
        notes = []
        if self.headers.get("Content-Encoding"):
            notes.append("Content-Encoding %r ignored: /ingest does not decode it"
                         % self.headers.get("Content-Encoding"))

        if fmt == "pprof":
            raw = body
        elif not fmt and "multipart/form-data" in ctype:
            try:
                form = parse_multipart(body, ctype)
            except Exception as e:  # the email parser raises assorted types on garbage
                raise Reject(422, "unknown", "malformed_profile",
                             "failed to parse pprof /ingest multipart form: %s" % e)
            if form.get("prev_profile"):
                raise Reject(422, "unknown", "malformed_profile",
                             "unsupported client version (prev_profile)")
            raw = form.get("profile") or b""
        else:
            # The real server also takes trie/tree/lines/jfr/speedscope and collapsed text;
            # crashscope sends pprof only, so anything else is reported, not guessed at.
            raise Reject(422, "unknown", "unsupported_format",
                         "this test receiver only accepts format=pprof or a multipart form "
                         "(format=%r, Content-Type=%r)" % (fmt, ctype))

        if not raw:
            self.state.bump("empty_ingests")  # the server answers 200 and stores nothing
            return 200, b"", None

        prof, plain = parse_raw_profile(raw, cfg, 422)
        # fixTime: a zero (or 1970) time_nanos takes the request's `from`.
        if prof["time_nanos"] == 0 or prof["time_nanos"] < 31536000 * 10**9:
            prof_time_fixed = from_ns
        else:
            prof_time_fixed = prof["time_nanos"]
        original_time = prof["time_nanos"]
        prof["time_nanos"] = prof_time_fixed
        pairs = [("__name__", ingest_metric_name(prof)), ("__delta__", "false"),
                 ("pyroscope_spy", spy)]
        if "service_name" not in tags:
            pairs.append(("service_name", app))
        pairs += [(k, v) for k, v in tags.items() if not k.startswith("__")]
        try:
            labels = validate_labels(pairs)
            effective, warnings = validate_profile(prof, now_ns, cfg, 422)
        except Reject as r:
            # Through the ingest adapter every push error becomes 422 (429 for rate limits).
            raise Reject(422, "unknown", r.reason, r.message)
        self._scan_for_secret(plain)
        summary = summarize_profile(prof)
        summary["time_nanos"] = original_time
        summary["effective_time_nanos"] = effective
        rec = self._base_record("ingest", body, auth_user, tenant, stalled)
        rec.update({
            "labels": labels, "label_pairs": None,
            "ingest": {"name": get("name"), "app": app, "tags": tags, "from_ns": from_ns,
                       "until_ns": until_ns, "format": fmt, "sample_rate": sample_rate,
                       "spy_name": spy, "units": get("units") or None,
                       "aggregation_type": get("aggregationType") or None},
            "id": None, "profile": summary, "bytes": len(raw), "decompressed_bytes": len(plain),
            "profile_gzipped": raw[:2] == GZIP_MAGIC, "warnings": notes + warnings,
        })
        self.state.add_record(rec, raw, plain)
        return 200, b"", None


class Server(ThreadingHTTPServer):
    daemon_threads = True       # a hung handler never keeps the process alive
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        # One line instead of socketserver's traceback: a client that gave up (timeout after a
        # stall) makes the answer fail with EPIPE/ECONNRESET, which is expected here.
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            msg = "receiver: client %s went away: %s\n" % (client_address[0], type(exc).__name__)
        else:
            msg = "receiver: error handling a request from %s: %s: %s\n" % (
                client_address[0], type(exc).__name__, exc)
        if Handler.state is not None and Handler.state.cfg.password:
            msg = msg.replace(Handler.state.cfg.password, "***")
        sys.stderr.write(msg)
        sys.stderr.flush()


# ---------------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Pyroscope-compatible test receiver (loopback only). Prints "
                    "'LISTENING <port>' on stdout when ready.")
    ap.add_argument("port", nargs="?", type=int, default=0,
                    help="TCP port on 127.0.0.1; 0 (default) picks a free one")
    ap.add_argument("--port", dest="port_opt", type=int, default=None,
                    help="same as the positional port")
    ap.add_argument("--basic-auth", metavar="USER:PASSWORD",
                    help="require HTTP basic auth on the data endpoints (never echoed)")
    ap.add_argument("--basic-auth-env", metavar="VAR",
                    help="like --basic-auth, read from environment variable VAR "
                         "(keeps the password out of `ps`)")
    ap.add_argument("--tenant", metavar="ID", help="require X-Scope-OrgID: ID")
    ap.add_argument("--dump-dir", metavar="DIR",
                    help="write each accepted profile as DIR/NNNN-<__name__>.pb.gz (gzip)")
    ap.add_argument("--fail", default="ok", metavar="MODE",
                    help="failure injected at start: ok, status:NNN, close, reset, "
                         "stall:SECONDS")
    ap.add_argument("--fail-count", type=int, default=1, metavar="N",
                    help="data requests the failure applies to (-1 = forever; default 1)")
    ap.add_argument("--fail-endpoint", default="any", choices=("any", "push", "ingest"))
    ap.add_argument("--retry-after", type=float, default=None, metavar="SECONDS",
                    help="Retry-After header sent with injected status failures")
    ap.add_argument("--max-seconds", type=float, default=600,
                    help="exit by itself after this long (default 600)")
    ap.add_argument("--max-body-bytes", type=int, default=16 << 20,
                    help="request body cap, also after Content-Encoding (default 16 MiB; 413)")
    ap.add_argument("--max-profile-bytes", type=int, default=4 << 20,
                    help="decompressed pprof cap (server default 4 MiB)")
    ap.add_argument("--reject-older-than", type=float, default=3600,
                    help="seconds; profiles older are rejected (0 = off; server default 1h)")
    ap.add_argument("--reject-newer-than", type=float, default=600,
                    help="seconds into the future allowed (0 = off; server default 10m)")
    ap.add_argument("--io-timeout", type=float, default=30,
                    help="socket timeout for reading a request (default 30 s)")
    ap.add_argument("--exit-on-stdin-eof", action="store_true",
                    help="exit when stdin is closed (ties the receiver to its parent)")
    ap.add_argument("--quiet", action="store_true", help="no per-request log on stderr")
    cfg = ap.parse_args(argv)
    if cfg.port_opt is not None:
        cfg.port = cfg.port_opt
    cred = cfg.basic_auth
    if cfg.basic_auth_env:
        cred = os.environ.get(cfg.basic_auth_env)
        if cred is None:
            ap.error("--basic-auth-env: variable %s is not set" % cfg.basic_auth_env)
    cfg.user = cfg.password = None
    if cred is not None:
        if ":" not in cred:
            ap.error("basic auth must be USER:PASSWORD")  # the value itself is not echoed
        cfg.user, cfg.password = cred.split(":", 1)
    cfg.basic_auth = None  # nothing later can print it by accident
    if not 0 <= cfg.port <= 65535:
        ap.error("port out of range")
    if cfg.max_seconds <= 0:
        ap.error("--max-seconds must be positive")
    return cfg


def main(argv=None):
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    state = State(cfg)
    try:
        state.set_failure(cfg.fail, cfg.fail_count, cfg.fail_endpoint, cfg.retry_after)
    except ValueError as e:
        sys.stderr.write("receiver: --fail: %s\n" % e)
        return 2
    if cfg.dump_dir:
        os.makedirs(cfg.dump_dir, exist_ok=True)
    Handler.state = state
    server = Server((HOST, cfg.port), Handler)
    port = server.server_address[1]

    def stop(why):
        if not state.shutdown.is_set():
            state.shutdown.set()
            # shutdown() waits for serve_forever, so never call it from the serving thread.
            # Started before saying why: with its parent gone, stderr is a broken pipe, and a
            # write that raises must not keep the deadline from stopping the server.
            threading.Thread(target=server.shutdown, daemon=True).start()
            try:
                sys.stderr.write("receiver: stopping: %s\n" % why)
                sys.stderr.flush()
            except OSError:
                pass

    deadline = threading.Timer(cfg.max_seconds, stop, args=("--max-seconds reached",))
    deadline.daemon = True
    deadline.start()
    signal.signal(signal.SIGTERM, lambda *_: stop("SIGTERM"))
    if cfg.exit_on_stdin_eof:
        def watch_stdin():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except (OSError, ValueError):
                pass
            stop("stdin closed")
        threading.Thread(target=watch_stdin, daemon=True).start()

    sys.stdout.write("LISTENING %d\n" % port)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        state.shutdown.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
