"""Compiles a repository's modules for spar's bytecode cache.

spar runs this script (never `-m`: the repository must not be on the import path) with the
modules to compile mounted at /repo, and keeps what it writes under OUT for every later run of
the same sources, mounted read-only where PYTHONPYCACHEPREFIX points. Each module gets two
checked-hash pycs (PEP 552): CPython's, and pytest's assert-rewritten one (pytest rewrites test
modules, conftest files and plugins, and looks for that pyc first; spar makes it for files
named as pytest names test modules by default, and conftest files). Both record a hash of the
source they came from, so a run whose file differs compiles it again instead of using them.
Nothing here imports or executes the repository's code: parsing and compiling do not run it.

Prints one JSON object: each module's path relative to /repo, mapped to the pycs written for
it, relative to OUT (an empty list when it does not compile: the run reports that itself).
"""

import importlib.util
import json
import marshal
import os
import py_compile
import sys
from pathlib import Path

REPO = "/repo"
OUT = "/spar/run/pyc"


def main():
    sys.pycache_prefix = OUT
    rewrite = _pytest_rewrite()
    written = {}
    for source in _modules():
        written[os.path.relpath(source, REPO)] = _compile(source, rewrite)
    print(json.dumps(written, sort_keys=True))


def _pytest_rewrite():
    try:
        from _pytest.assertion import rewrite
    except ImportError:
        return None
    return rewrite


def _modules():
    for root, dirs, files in os.walk(REPO):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(root, name)


def _compile(source, rewrite):
    written = []
    try:
        pyc = py_compile.compile(
            source,
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )
        written.append(pyc)
        if rewrite is not None and _rewritten_by_pytest(os.path.basename(source)):
            written.append(_rewritten(Path(source), rewrite))
    except (py_compile.PyCompileError, SyntaxError, ValueError, OSError, RecursionError):
        return []
    return [os.path.relpath(path, OUT) for path in written]


def _rewritten_by_pytest(name):
    """Whether pytest rewrites a module of this name with its default `python_files`
    (`test_*.py`, `*_test.py`) or as a conftest. Other modules it rewrites (custom patterns,
    `pytest.register_assert_rewrite`, plugins) it rewrites in the run, as before: rewriting
    every module here would cost each changed source module twice its compile time."""
    return name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py")


def _rewritten(source, rewrite):
    """pytest's own rewrite of SOURCE, written where and how pytest caches it (its default
    configuration: a project that turns on `enable_assertion_pass_hook` rewrites in-run)."""
    source_hash, code = rewrite._rewrite_test(source, None)
    pyc = rewrite.get_cache_dir(source) / (source.name[:-3] + rewrite.PYC_TAIL)
    pyc.parent.mkdir(parents=True, exist_ok=True)
    with open(pyc, "wb") as out:
        rewrite._write_pyc_fp(out, source_hash, code)
    return str(pyc)


if __name__ == "__main__":
    main()
