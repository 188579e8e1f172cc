"""How far Lab Streaming Layer reaches: ``--lsl-scope machine`` (the default) or ``lab``, and liblsl's log.

LSL has no authentication: whoever can reach an outlet's port reads its samples (here: the
participant's expressions, face by face) and any Markers outlet can write into the events file.

- ``machine``: nothing leaves or enters this computer. Streams are announced and looked for on
  this machine only (``ResolveScope = machine``, ``KnownPeers = {127.0.0.1}``, IPv6 off), and every
  socket liblsl opens is on loopback: ``ListenAddress = 127.0.0.1`` moves its multicast responders,
  and ``loopback.confine`` the data server, time server and resolver sockets, which liblsl binds to
  every interface whatever its configuration says. Other programs on the same computer (LabRecorder,
  PsychoPy) see the streams as usual.
- ``lab``: liblsl as it comes: the user's own ``lsl_api.cfg`` (``LSLAPICFG``, ``./lsl_api.cfg``,
  ``~/lsl_api/lsl_api.cfg``, ``/etc/lsl_api/lsl_api.cfg``) or liblsl's defaults, which announce the
  streams on the local network and accept connections on every interface from anyone.

liblsl reads its configuration once, before its first use in a process; ``apply`` gives it the
scope's settings then (``pylsl.set_config_content``). liblsl's own log lines (INFO on start,
"Stream transmission broke off" when a sender exits) are quieted to fatal errors unless
``DAN_FER_DEBUG`` is set or the user's lab configuration has its own ``[log]`` section.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from dan_core.errors import DanFerError

log = logging.getLogger(__name__)

SCOPES = ("machine", "lab")
DEFAULT_SCOPE = "machine"
MACHINE_CONFIG = """; dan-fer --lsl-scope machine: nothing beyond this computer
[ports]
IPv6 = disable
[multicast]
ResolveScope = machine
ListenAddress = 127.0.0.1
[lab]
KnownPeers = {127.0.0.1}
"""
QUIET, VERBOSE = -3, 0  # liblsl's log.level: fatal errors only; INFO and up

_applied: list[str] = []  # the scope this process's liblsl was set up with


def user_config() -> Path | None:
    """The configuration file liblsl itself would read (its own search order), if any."""
    candidates = [os.environ.get("LSLAPICFG", ""), "lsl_api.cfg", str(Path.home() / "lsl_api" / "lsl_api.cfg"),
                  "/etc/lsl_api/lsl_api.cfg"]
    for name in candidates:
        if name and Path(name).is_file():
            return Path(name)
    return None


def config_text(scope: str) -> str:
    """liblsl's configuration (INI text) for ``scope``."""
    level = VERBOSE if os.environ.get("DAN_FER_DEBUG") else QUIET
    if scope == "machine":
        return MACHINE_CONFIG + f"[log]\nlevel = {level}\n"
    if scope != "lab":
        raise DanFerError(f"--lsl-scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    own = user_config()
    try:
        text = own.read_text(encoding="utf-8") if own is not None else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise DanFerError(f"cannot read the LSL configuration {own}: {exc}") from exc
    if "[log]" not in text:  # the user's own log settings win
        text += f"\n[log]\nlevel = {level}\n"
    return text


def apply(scope: str, pylsl) -> None:
    """Set this process's liblsl up for ``scope`` (once, before its first outlet, inlet or resolver)."""
    if _applied:
        if _applied[0] != scope:
            raise DanFerError(f"LSL is already set up with --lsl-scope {_applied[0]} in this process; it cannot change to {scope}")
        return
    text = config_text(scope)
    try:
        pylsl.set_config_content(text)
    except (AttributeError, NotImplementedError) as exc:
        raise DanFerError(f"this liblsl cannot be configured by dan-fer (pylsl >= 1.18 is needed): {exc}") from exc
    if scope == "machine":
        from dan_core.pipeline.loopback import confine

        try:
            confine(pylsl.lib.lib._name)
        except OSError as exc:
            raise DanFerError(f"--lsl-scope machine cannot keep liblsl on loopback here ({exc}); "
                              "use --lsl-scope lab and a firewall, or leave LSL off") from exc
    _applied.append(scope)
    log.debug("liblsl set up for --lsl-scope %s", scope)
