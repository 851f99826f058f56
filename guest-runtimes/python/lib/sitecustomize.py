"""spar's guest start-up hook, imported by CPython's `site` module before any user code.

WASI has no working directory of its own: every process starts at `/`. Tests expect to run
from the repository root, so the host names that directory in SPAR_CWD and we move there
before `-c`, `-m` or a script resolves relative paths.

Then the WASI gaps that can be closed without the host are closed (spar_wasi: a fixed
hostname, an emulated umask, IPv6 address conversion), so that modules which call them at
import time load as they do on Linux.
"""

import os

_cwd = os.environ.get("SPAR_CWD")
if _cwd:
    os.chdir(_cwd)
del _cwd

import spar_wasi

spar_wasi.install()
del spar_wasi
