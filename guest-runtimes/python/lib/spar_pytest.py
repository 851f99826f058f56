"""spar's pytest plugin in the guest, loaded into every pytest run (an entry point of the
`spar-sandbox` distribution beside it, and `-p spar_pytest` when spar runs a suite).

1. Progress. A test can stop the whole interpreter: a stack overflow, memory past the limit,
   `os._exit`. Then pytest prints nothing more, and every later test would have no result. So
   the plugin notes what it collected and which test is running in PROGRESS, one line per
   event, each written with `os.write` at once (a buffer would be lost with the process).
   spar reads the file after the run, reports the test that was running as an error, and
   runs the tests that have no result again, naming them with `--spar-only`.

   Lines: `collecting ID PATH`, `collected ID`, `item ID` (one per selected test, once
   collection is done, then `items-done`), `start ID`, `finish ID`, `end` (the session finished), tab-separated.
   Only the outermost session writes: pytest runs started inside a test (pytester) do not.

2. WASI defaults. Capturing at the file-descriptor level needs `os.dup`, which WASI lacks, and
   so does pytest's faulthandler plugin. When the run asks for fd capture (pytest's default),
   the plugin switches it to `sys` capture and turns faulthandler off; pytest's default temp
   root needs `os.getuid`, which WASI lacks too, so without `--basetemp` the plugin gives
   `/tmp/pytest`. So a plain `python -m pytest` (or `pytest -q -k ...`) works as typed;
   `capfd` still fails, with the sandbox's message.
"""

import os
import sys

import pytest

# spar's own scratch directory, which suites do not clean as they may clean /tmp.
PROGRESS = "/spar/run/pytest-progress"

_recorder = None
_fd = None
# Collectors of the recording session that started and have not reported yet.
_collecting = set()


def _note(*fields):
    _write("\t".join(fields) + "\n")


def _write(text):
    global _fd
    try:
        if _fd is None:
            _fd = os.open(PROGRESS, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.write(_fd, text.encode("utf-8", "surrogateescape"))
    except OSError:
        # The file is a courtesy to spar; a test that fills the file system must not fail
        # the session.
        pass


def _recording(config):
    return config is not None and config is _recorder


def pytest_addoption(parser):
    parser.addoption(
        "--spar-only",
        default=None,
        help="spar: run only these node ids (newline-separated); used for reruns",
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    if sys.platform == "wasi":
        namespace = early_config.known_args_namespace
        if getattr(namespace, "capture", None) == "fd":
            namespace.capture = "sys"
            early_config.option.capture = "sys"
            # The full parse of the command line comes later and must agree.
            args.append("--capture=sys")
        early_config.pluginmanager.set_blocked("faulthandler")
        if getattr(namespace, "basetemp", None) is None:
            args.append("--basetemp=/tmp/pytest")
    return (yield)


def pytest_configure(config):
    global _recorder
    if _recorder is None:
        _recorder = config


def pytest_unconfigure(config):
    global _recorder
    if _recording(config):
        _note("end")
        _recorder = None


def pytest_collectstart(collector):
    if _recording(collector.config) and not isinstance(collector, pytest.Session):
        _collecting.add(collector.nodeid)
        _note("collecting", collector.nodeid, str(collector.path))


def pytest_collectreport(report):
    if report.nodeid in _collecting:
        _collecting.discard(report.nodeid)
        _note("collected", report.nodeid)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    only = config.getoption("spar_only") if _recording(config) else None
    if only is None:
        return
    wanted = set(only.split("\n"))
    keep = [item for item in items if item.nodeid in wanted]
    dropped = [item for item in items if item.nodeid not in wanted]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_collection_finish(session):
    if _recording(session.config):
        _write("".join("item\t%s\n" % item.nodeid for item in session.items) + "items-done\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    recording = _recording(item.config)
    if recording:
        _note("start", item.nodeid)
    result = yield
    if recording:
        _note("finish", item.nodeid)
    return result
