"""Pure-Python stand-ins for what CPython's WASI build lacks but a sandbox can answer without
the host, installed by spar's start-up hook (sitecustomize) before any user code runs.

Emulated, faithfully to CPython on Linux:
- socket.gethostname(): a fixed name, HOSTNAME, where the real call fails or answers wasi-libc's
  placeholder "(none)" (WASI has no host name);
- os.umask(): a per-process value (0o022 at start) that the call sets and returns; WASI files
  have no permission bits, so it changes no file's mode;
- socket.inet_pton / inet_ntop for AF_INET6: conversion as glibc does it (RFC 5952 `::`
  compression, IPv4-mapped and IPv4-compatible forms, the same errors), where the WASI build
  raises "can't use AF_INET6, IPv6 is disabled".

Left failing, because they cannot be emulated without the host: starting a thread (the
RuntimeError CPython raises when it cannot start one, its message naming the sandbox);
os.dup/os.dup2 and os.fork stay missing (code that probes for them with hasattr takes its
portable path; spar's pytest plugin switches pytest from fd to sys capture); subprocesses and
real sockets fail with the WASI build's own errors.
"""

import errno
import os
import sys

#: What socket.gethostname() answers in the sandbox.
HOSTNAME = "spar-sandbox"
#: The umask a process starts with, as on most Linux systems.
DEFAULT_UMASK = 0o022

_umask = DEFAULT_UMASK


def _unavailable(what, instead=""):
    message = f"{what} is not available in spar's WASI sandbox"
    if instead:
        message += f" ({instead})"
    return OSError(errno.ENOTSUP, message)


# --- os ---------------------------------------------------------------------------------


def umask(mask, /):
    """Set the current numeric umask and return the previous umask (emulated: WASI has no
    permission bits, so the value is kept for the process and changes no file's mode)."""
    global _umask
    import operator

    mask = operator.index(mask)
    previous, _umask = _umask, mask & 0o777
    return previous


def install_os():
    """Adds the emulated functions `os` lacks under WASI. Functions that cannot be emulated
    (dup, fork, ...) stay missing, so that code probing for them with hasattr takes its
    portable path."""
    if not hasattr(os, "umask"):
        os.umask = umask


# --- socket -----------------------------------------------------------------------------

_HEX = "0123456789abcdefABCDEF"


def _pton4(text):
    """glibc's inet_pton4: four decimal octets, no leading zeros; None when invalid."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    octets = []
    for part in parts:
        if not (part.isascii() and part.isdigit()) or len(part) > 3:
            return None
        if len(part) > 1 and part[0] == "0":
            return None
        value = int(part)
        if value > 255:
            return None
        octets.append(value)
    return bytes(octets)


def _pton6(text):
    """glibc's inet_pton6: the 16 bytes of `text`, or None when it is not an IPv6 address."""
    if not text:
        return None
    if text[0] == ":" and not text.startswith("::"):
        return None
    start = 1 if text.startswith("::") else 0
    words = []
    gap = None
    digits = ""
    token_start = start
    i = start
    while i < len(text):
        ch = text[i]
        i += 1
        if ch in _HEX:
            if len(digits) == 4:
                return None
            digits += ch
            continue
        if ch == ":":
            token_start = i
            if not digits:
                if gap is not None:
                    return None
                gap = len(words)
                continue
            if i == len(text) or len(words) == 8:
                return None
            words.append(int(digits, 16))
            digits = ""
            continue
        if ch == "." and len(words) <= 6:
            v4 = _pton4(text[token_start:])
            if v4 is None:
                return None
            words.append(v4[0] << 8 | v4[1])
            words.append(v4[2] << 8 | v4[3])
            digits = ""
            break
        return None
    if digits:
        if len(words) == 8:
            return None
        words.append(int(digits, 16))
    if gap is not None:
        if len(words) == 8:
            return None
        words[gap:gap] = [0] * (8 - len(words))
    if len(words) != 8:
        return None
    return b"".join(w.to_bytes(2, "big") for w in words)


def _ntop6(packed):
    """glibc's inet_ntop6: the longest run of two or more zero words (the first of equal
    runs) becomes `::`; `::a.b.c.d` and `::ffff:a.b.c.d` keep the IPv4 part dotted."""
    words = [packed[i] << 8 | packed[i + 1] for i in range(0, 16, 2)]
    best_at, best_len = -1, 0
    run_at, run_len = -1, 0
    for i, word in enumerate(words + [1]):
        if word == 0:
            if run_at < 0:
                run_at, run_len = i, 0
            run_len += 1
        elif run_at >= 0:
            if run_len > best_len:
                best_at, best_len = run_at, run_len
            run_at = -1
    if best_len < 2:
        best_at = -1
    out = []
    i = 0
    while i < 8:
        if best_at >= 0 and best_at <= i < best_at + best_len:
            if i == best_at:
                out.append(":")
            i += 1
            continue
        if i:
            out.append(":")
        if i == 6 and best_at == 0 and (best_len == 6 or (best_len == 5 and words[5] == 0xFFFF)):
            out.append("%d.%d.%d.%d" % tuple(packed[12:16]))
            break
        out.append("%x" % words[i])
        i += 1
    if best_at >= 0 and best_at + best_len == 8:
        out.append(":")
    return "".join(out)


def _wrap_inet(module):
    """Replaces inet_pton/inet_ntop on `module` (`_socket`) with versions that handle
    AF_INET6 themselves and hand every other family to the originals."""
    import operator

    real_pton = getattr(module, "inet_pton", None)
    real_ntop = getattr(module, "inet_ntop", None)
    af_inet6 = getattr(module, "AF_INET6", 10)

    def inet_pton(address_family, ip_string, /):
        """Convert an IP address from its family-specific string format to a packed,
        binary format (AF_INET6 in pure Python in spar's sandbox)."""
        family = operator.index(address_family)
        if family != af_inet6:
            if real_pton is None:
                raise _unavailable("socket.inet_pton()")
            return real_pton(address_family, ip_string)
        if not isinstance(ip_string, str):
            raise TypeError(
                f"inet_pton() argument 2 must be str, not {type(ip_string).__name__}"
            )
        if "\0" in ip_string:
            raise ValueError("embedded null character")
        packed = _pton6(ip_string)
        if packed is None:
            raise OSError("illegal IP address string passed to inet_pton")
        return packed

    def inet_ntop(address_family, packed_ip, /):
        """Convert a packed IP address of the given family to string format (AF_INET6 in
        pure Python in spar's sandbox)."""
        family = operator.index(address_family)
        if family != af_inet6:
            if real_ntop is None:
                raise _unavailable("socket.inet_ntop()")
            return real_ntop(address_family, packed_ip)
        try:
            packed = bytes(memoryview(packed_ip))
        except TypeError:
            raise TypeError(
                f"a bytes-like object is required, not '{type(packed_ip).__name__}'"
            ) from None
        if len(packed) != 16:
            raise ValueError("invalid length of packed IP address string")
        return _ntop6(packed)

    module.inet_pton = inet_pton
    module.inet_ntop = inet_ntop


def _wrap_gethostname(module):
    real = getattr(module, "gethostname", None)

    def gethostname():
        """Return the current host name (a fixed name in spar's sandbox, which has none)."""
        if real is not None:
            try:
                name = real()
            except OSError:
                name = None
            if name and name != "(none)":
                return name
        return HOSTNAME

    module.gethostname = gethostname


def install_socket():
    """Patches `_socket` before `socket` copies its functions (`from _socket import *`)."""
    try:
        import _socket
    except ImportError:
        return
    _wrap_gethostname(_socket)
    _wrap_inet(_socket)


# --- threads ----------------------------------------------------------------------------


def install_threads():
    """Makes starting a thread fail with a message that names the sandbox, keeping the
    RuntimeError CPython raises when it cannot start one."""
    try:
        import _thread
    except ImportError:
        return
    real = _thread.start_new_thread

    def start_new_thread(function, args, kwargs=None, /):
        """Not available: WASI has no threads."""
        try:
            if kwargs is None:
                return real(function, args)
            return real(function, args, kwargs)
        except RuntimeError as e:
            raise RuntimeError(
                f"can't start new thread: spar's WASI sandbox has no threads ({e})"
            ) from None

    _thread.start_new_thread = start_new_thread
    _thread.start_new = start_new_thread


def install():
    """Installs every shim; a no-op outside WASI."""
    if sys.platform != "wasi":
        return
    install_os()
    install_socket()
    install_threads()
