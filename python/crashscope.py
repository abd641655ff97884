"""crashscope: tags for the samples of the current thread, from Python.

    from crashscope import tag_wrapper
    with tag_wrapper({"endpoint": "checkout"}):
        handle()

tag_wrapper is the same call as the Pyroscope Python SDK's, so existing instrumentation can
switch by changing its import. The tags apply to the samples of the thread inside the block
and show up as labels in the database and in uploads. Without the recorder loaded (no
LD_PRELOAD of libcrashscope.so) every call here is a harmless no-op.
`crashscope run` puts this module on PYTHONPATH; elsewhere, add the directory that holds it.
"""
import contextlib
import ctypes

try:
    _self = ctypes.CDLL(None)
    _push = _self.crashscope_tag_push
    _push.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    _push.restype = ctypes.c_int
    _pop = _self.crashscope_tag_pop
    _pop.argtypes = ()
    _pop.restype = None
except (OSError, AttributeError):
    _push = _pop = None


def enabled():
    """True when the recorder is loaded in this process."""
    return _push is not None


@contextlib.contextmanager
def tag_wrapper(tags):
    """Labels the current thread's samples with TAGS (a dict) inside the block."""
    pushed = 0
    if _push is not None:
        for key, value in tags.items():
            if _push(str(key).encode(), str(value).encode()) == 0:
                pushed += 1
    try:
        yield
    finally:
        for _ in range(pushed):
            _pop()
