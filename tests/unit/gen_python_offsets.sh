#!/bin/sh
# gen_python_offsets.sh: prints the CPython structure offsets recorder/python.c needs, computed
# with offsetof() by compiling a tiny C program against each installed CPython's own headers
# (internal ones included, with Py_BUILD_CORE). tests/unit/test_python.sh compares this output
# with the table typed into recorder/python.c (test_python --table prints that one in the
# same format), so a wrong typed offset cannot go unnoticed on a machine that has the headers.
#
# Usage: sh tests/unit/gen_python_offsets.sh [PREFIX...]
#   PREFIX is an installation prefix holding include/python3.X (default: every
#   /root/.pyenv/versions/3.{8..13}.* present; $CS_PYENV_ROOT overrides /root/.pyenv).
# Output: one line per field, "3.X NAME VALUE", sorted; "#" lines are comments. A version
# whose headers are absent is skipped with a comment line (never an error).
# Must never install anything or touch the network; builds only in a temp dir it removes.
set -eu

cc=${CC:-cc}
root=${CS_PYENV_ROOT:-/root/.pyenv}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

cat >"$tmp/offsets.c" <<'EOF'
/* Prints the offsets of the fields crashscope reads, for the CPython whose headers it was
 * compiled against. Names match the table in recorder/python.c. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#if PY_VERSION_HEX >= 0x030b0000
#include "frameobject.h"
#include "internal/pycore_frame.h"
#else
#include "frameobject.h"
#endif
#if PY_VERSION_HEX >= 0x03090000
#include "internal/pycore_runtime.h"
#include "internal/pycore_interp.h"
#else
#include "internal/pycore_pystate.h"
#endif

#define F(name, value) printf("%d.%d %s %ld\n", PY_MAJOR_VERSION, PY_MINOR_VERSION, name, (long)(value))

/* Bit masks of the PyUnicode state bit-field, found by setting each field in a zeroed
 * object and looking at the word (the layout of bit-fields is the compiler's business). */
static unsigned state_word(const PyASCIIObject *o)
{
    unsigned w;
    memcpy(&w, (const char *)o + offsetof(PyASCIIObject, state), sizeof w);
    return w;
}

int main(void)
{
    PyASCIIObject u;
    F("ob_type", offsetof(PyObject, ob_type));
    F("ob_size", offsetof(PyVarObject, ob_size));
    F("bytes_sval", offsetof(PyBytesObject, ob_sval));
    F("unicode_length", offsetof(PyASCIIObject, length));
    F("unicode_state", offsetof(PyASCIIObject, state));
    F("unicode_ascii_data", sizeof(PyASCIIObject));
    F("unicode_compact_data", sizeof(PyCompactUnicodeObject));
    memset(&u, 0, sizeof u); u.state.kind = 7;
    F("unicode_kind_mask", state_word(&u));
    memset(&u, 0, sizeof u); u.state.compact = 1;
    F("unicode_compact_bit", state_word(&u));
    memset(&u, 0, sizeof u); u.state.ascii = 1;
    F("unicode_ascii_bit", state_word(&u));

    F("tstate_interp", offsetof(PyThreadState, interp));
#if PY_VERSION_HEX >= 0x030d0000
    F("tstate_frame", offsetof(PyThreadState, current_frame));
#elif PY_VERSION_HEX >= 0x030b0000
    F("tstate_frame", offsetof(PyThreadState, cframe));
    F("cframe_current_frame", offsetof(_PyCFrame, current_frame));
#else
    F("tstate_frame", offsetof(PyThreadState, frame));
#endif

#if PY_VERSION_HEX >= 0x030b0000
    F("tstate_datastack_chunk", offsetof(PyThreadState, datastack_chunk));
    F("tstate_datastack_limit", offsetof(PyThreadState, datastack_limit));
    F("frame_back", offsetof(_PyInterpreterFrame, previous));
#if PY_VERSION_HEX >= 0x030d0000
    F("frame_code", offsetof(_PyInterpreterFrame, f_executable));
    F("frame_instr", offsetof(_PyInterpreterFrame, instr_ptr));
#else
    F("frame_code", offsetof(_PyInterpreterFrame, f_code));
    F("frame_instr", offsetof(_PyInterpreterFrame, prev_instr));
#endif
#if PY_VERSION_HEX >= 0x030c0000
    F("frame_owner", offsetof(_PyInterpreterFrame, owner));
    F("owner_cstack", FRAME_OWNED_BY_CSTACK);
#else
    F("frame_is_entry", offsetof(_PyInterpreterFrame, is_entry));
#endif
#else
    F("frame_back", offsetof(PyFrameObject, f_back));
    F("frame_code", offsetof(PyFrameObject, f_code));
    F("frame_instr", offsetof(PyFrameObject, f_lasti));
    F("frame_lineno", offsetof(PyFrameObject, f_lineno));
#if PY_VERSION_HEX < 0x030a0000
    F("frame_trace", offsetof(PyFrameObject, f_trace));
#endif
#endif

    F("code_filename", offsetof(PyCodeObject, co_filename));
    F("code_name", offsetof(PyCodeObject, co_name));
    F("code_firstlineno", offsetof(PyCodeObject, co_firstlineno));
#if PY_VERSION_HEX >= 0x030b0000
    F("code_qualname", offsetof(PyCodeObject, co_qualname));
    F("code_linetable", offsetof(PyCodeObject, co_linetable));
    F("code_adaptive", offsetof(PyCodeObject, co_code_adaptive));
#elif PY_VERSION_HEX >= 0x030a0000
    F("code_linetable", offsetof(PyCodeObject, co_linetable));
#else
    F("code_linetable", offsetof(PyCodeObject, co_lnotab));
#endif

#if PY_VERSION_HEX >= 0x030c0000
    F("interp_gil", offsetof(PyInterpreterState, ceval.gil));
#else
    F("runtime_gil", offsetof(_PyRuntimeState, ceval.gil));
#endif
    F("runtime_interp_main", offsetof(_PyRuntimeState, interpreters.main));
#if PY_VERSION_HEX < 0x03090000
    F("runtime_eval_breaker", offsetof(_PyRuntimeState, ceval.eval_breaker));
#elif PY_VERSION_HEX < 0x030d0000
    F("interp_eval_breaker", offsetof(PyInterpreterState, ceval.eval_breaker));
#endif
    F("gil_holder", offsetof(struct _gil_runtime_state, last_holder));
    F("gil_locked", offsetof(struct _gil_runtime_state, locked));
    return 0;
}
EOF

if [ "$#" -eq 0 ]; then
	for m in 8 9 10 11 12 13; do
		found=
		for p in "$root"/versions/3.$m.*; do
			case $p in *t | *-debug | *-dev) continue ;; esac
			[ -d "$p/include/python3.$m/internal" ] || continue
			set -- "$@" "$p"
			found=1
			break
		done
		[ -n "$found" ] || echo "# 3.$m: no headers under $root/versions, skipped"
	done
fi

for p in "$@"; do
	inc=$(ls -d "$p"/include/python3.* 2>/dev/null | head -n 1)
	if [ -z "$inc" ] || [ ! -d "$inc/internal" ]; then
		echo "# $p: no include/python3.X/internal, skipped"
		continue
	fi
	echo "# $(basename "$p") from $inc"
	if ! "$cc" -std=gnu11 -w -I"$inc" -I"$inc/internal" -o "$tmp/offsets" "$tmp/offsets.c" \
		2>"$tmp/cc.err"; then
		echo "gen_python_offsets.sh: cannot compile against $inc:" >&2
		cat "$tmp/cc.err" >&2
		exit 1
	fi
	"$tmp/offsets" | sort
done
