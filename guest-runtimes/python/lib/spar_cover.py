"""Line coverage of the repository's own code while a test command runs, inside the guest.

Usage: python -m spar_cover OUT.json -m pytest ARGS...  (or: -m unittest ARGS...)

Injectors pick mutation sites the selected tests actually execute. CPython 3.12's
sys.monitoring reports each line once and is then told to stop (DISABLE), so the cost stays
close to an uninstrumented run. Writes {"repo/relative/path.py": [line, ...]} to OUT.json.
"""

import json
import runpy
import sys

REPO = "/repo/"


def main():
    out_path = sys.argv[1]
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        sys.stderr.write("usage: python -m spar_cover OUT.json -m MODULE ARGS...\n")
        raise SystemExit(2)
    module = sys.argv[3]
    covered = {}
    mon = sys.monitoring
    tool = mon.COVERAGE_ID

    def on_line(code, line):
        name = code.co_filename
        if name.startswith(REPO):
            covered.setdefault(name[len(REPO):], set()).add(line)
        return mon.DISABLE

    mon.use_tool_id(tool, "spar_cover")
    mon.register_callback(tool, mon.events.LINE, on_line)
    mon.set_events(tool, mon.events.LINE)
    sys.argv = [module] + sys.argv[4:]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    finally:
        mon.set_events(tool, 0)
        with open(out_path, "w") as f:
            json.dump({k: sorted(v) for k, v in sorted(covered.items())}, f)
    raise SystemExit(code)


main()
