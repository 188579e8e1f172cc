"""Keep one shared library's sockets on this machine: its ``bind`` and ``sendto`` calls see loopback.

liblsl (1.18) binds its TCP data server, its UDP time server and its resolver's sockets to every
interface (0.0.0.0) whatever its configuration says: ``ListenAddress`` moves only the multicast
responders, and no setting moves the rest. ``confine(path)`` points the library's own entries for
``bind`` and ``sendto`` in its global offset table (the table of addresses the dynamic linker fills
in for the functions a library calls in libc) at two small functions here:

- ``bind`` to the wildcard address (0.0.0.0 or ::) binds to 127.0.0.1 (or ::1) instead;
- ``sendto`` from a UDP socket that is not bound yet first binds it to loopback, so the sockets
  the kernel would bind implicitly stay on loopback too (and cannot send beyond this machine).

Only that library's calls change; Python's sockets and every other library are untouched. Linux
with glibc on x86-64 or aarch64; elsewhere ``confine`` raises ``OSError`` and nothing changes.
"""

from __future__ import annotations

import atexit
import ctypes
import mmap
import os
import socket
import struct
import sys
from pathlib import Path

_RELOCATIONS = {62: (6, 7), 183: (1025, 1026)}  # e_machine -> (GLOB_DAT, JUMP_SLOT): x86-64, aarch64
_LOOPBACK = {socket.AF_INET: socket.inet_pton(socket.AF_INET, "127.0.0.1"), socket.AF_INET6: socket.inet_pton(socket.AF_INET6, "::1")}
_ADDR_AT = {socket.AF_INET: (4, 4), socket.AF_INET6: (8, 16)}  # family -> (offset, length) of the address in its sockaddr

_BIND_T = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32, use_errno=True)
_SENDTO_T = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p,
                             ctypes.c_uint32, use_errno=True)
_confined: dict[str, list[tuple[int, int]]] = {}  # library path -> [(slot address, original value)]


def _slots(path: Path, names: set[str]) -> list[tuple[str, int]]:
    """(symbol, offset in the loaded image) of every GOT slot through which the ELF at ``path`` calls one of ``names``."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise OSError(f"{path} is not a 64-bit little-endian ELF library")
    machine = struct.unpack_from("<H", data, 0x12)[0]
    if machine not in _RELOCATIONS:
        raise OSError(f"{path}: machine type {machine} is not supported")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    found = []
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != 4 or not entsize:  # SHT_RELA
            continue
        symtab = sections[link]
        strtab = sections[symtab[6]]
        for pos in range(offset, offset + size, entsize):
            r_offset, r_info = struct.unpack_from("<QQ", data, pos)
            if r_info & 0xFFFFFFFF not in _RELOCATIONS[machine]:
                continue
            st_name = struct.unpack_from("<I", data, symtab[4] + (r_info >> 32) * symtab[9])[0]
            start = strtab[4] + st_name
            name = data[start:data.index(b"\0", start)].decode("ascii", "replace")
            if name in names:
                found.append((name, r_offset))
    return found


def _load_base(path: Path) -> int:
    """Where the dynamic linker put ``path``: its link map's ``l_addr`` (glibc's dlopen handle is the link map)."""
    lib = ctypes.CDLL(str(path), mode=os.RTLD_NOLOAD | os.RTLD_NOW)
    base = ctypes.c_size_t.from_address(lib._handle).value
    if ctypes.string_at(base, 4) != b"\x7fELF":
        raise OSError(f"cannot find where {path} is loaded")
    return base


def _writable(address: int) -> bool:
    for line in Path("/proc/self/maps").read_text().splitlines():
        span, perms = line.split()[:2]
        lo, hi = (int(x, 16) for x in span.split("-"))
        if lo <= address < hi:
            return perms[1] == "w"
    raise OSError(f"address {address:#x} is not mapped")


def _poke(address: int, value: int, path: Path) -> None:
    """Write one offset-table entry, lifting the page's write protection (RELRO) for the moment if it has one."""
    page = address & ~(mmap.PAGESIZE - 1)
    protected = not _writable(address)
    if protected and _libc_fns.mprotect(page, mmap.PAGESIZE, 3) != 0:  # PROT_READ | PROT_WRITE
        raise OSError(ctypes.get_errno(), f"cannot change {path}'s offset table")
    ctypes.c_void_p.from_address(address).value = value
    if protected:
        _libc_fns.mprotect(page, mmap.PAGESIZE, 1)  # PROT_READ, as it was


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.bind.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
    libc.bind.restype = ctypes.c_int
    libc.sendto.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
    libc.sendto.restype = ctypes.c_ssize_t
    libc.getsockname.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


_libc_fns = _libc() if sys.platform.startswith("linux") else None


def _family(raw: bytes) -> int:
    return int.from_bytes(raw[:2], sys.byteorder)


def _on_loopback(raw: bytes) -> bytes:
    """The sockaddr ``raw`` with a wildcard address replaced by loopback (other addresses as they are)."""
    family = _family(raw)
    if family in _ADDR_AT:
        at, size = _ADDR_AT[family]
        if len(raw) >= at + size and raw[at:at + size] == bytes(size):
            return raw[:at] + _LOOPBACK[family] + raw[at + size:]
    return raw


@_BIND_T
def _bind(fd: int, addr: int | None, length: int) -> int:
    try:
        if addr and length:
            raw = _on_loopback(ctypes.string_at(addr, length))
            return _libc_fns.bind(fd, ctypes.create_string_buffer(raw, length), length)
        return _libc_fns.bind(fd, addr, length)
    except Exception:  # never let Python's error become a silent "bound"
        ctypes.set_errno(22)  # EINVAL
        return -1


@_SENDTO_T
def _sendto(fd: int, buf: int, n: int, flags: int, addr: int | None, length: int) -> int:
    try:
        if addr and length:
            family = _family(ctypes.string_at(addr, 2))
            if family in _ADDR_AT:
                local = ctypes.create_string_buffer(128)
                size = ctypes.c_uint32(128)
                if _libc_fns.getsockname(fd, local, ctypes.byref(size)) == 0 and local.raw[2:4] == b"\0\0":  # port 0: not bound
                    wildcard = local.raw[:2] + bytes(size.value - 2)
                    _libc_fns.bind(fd, ctypes.create_string_buffer(_on_loopback(wildcard), size.value), size.value)
        return _libc_fns.sendto(fd, buf, n, flags, addr, length)
    except Exception:
        ctypes.set_errno(22)
        return -1


_HOOKS = {"bind": _bind, "sendto": _sendto}


def confine(path: str | os.PathLike) -> int:
    """Redirect the loaded library ``path``'s ``bind``/``sendto`` calls as above (once); returns the slots changed.

    OSError when the platform or the file is not one this knows how to change (nothing is changed then).
    """
    path = Path(path).resolve()
    if str(path) in _confined:
        return len(_confined[str(path)])
    if _libc_fns is None:
        raise OSError("keeping a library's sockets on loopback needs Linux")
    slots = _slots(path, set(_HOOKS))
    if not {name for name, _ in slots} >= {"bind"}:
        raise OSError(f"{path} does not call bind through its offset table")
    base = _load_base(path)
    changed = []
    for name, offset in slots:
        address = base + offset
        changed.append((address, ctypes.c_void_p.from_address(address).value or 0))
        _poke(address, ctypes.cast(_HOOKS[name], ctypes.c_void_p).value, path)
    _confined[str(path)] = changed
    return len(changed)


@atexit.register
def _release() -> None:
    """Give the library its own entries back before the interpreter goes away (its threads may still call them)."""
    for path, slots in _confined.items():
        for address, original in slots:
            _poke(address, original, Path(path))
    _confined.clear()
