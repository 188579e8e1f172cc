"""Qt's X11 (xcb) platform plugin needs system libraries that pip cannot install; name the missing ones.

Without one of them Qt aborts the process with "could not load the Qt platform plugin xcb" and a
page of advice. This check runs before the QApplication is created and imports no Qt.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

# The system libraries Qt's xcb (X11) platform plugin links against, and the Debian/Ubuntu package of
# each. pip's PySide6 wheels do not bundle them; without one, Qt aborts with "could not load the Qt
# platform plugin xcb" and a page of advice.
XCB_LIBRARIES = {
    "libxcb.so.1": "libxcb1", "libX11-xcb.so.1": "libx11-xcb1", "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-shape.so.0": "libxcb-shape0", "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1", "libxcb-util.so.1": "libxcb-util1", "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1", "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def missing_xcb_libraries() -> list[str]:
    """The libraries of XCB_LIBRARIES that the dynamic loader cannot find (loads each one, as Qt would)."""
    import ctypes

    missing = []
    for name in XCB_LIBRARIES:
        try:
            ctypes.CDLL(name)
        except OSError:
            missing.append(name)
    return missing


def uses_xcb(env: Mapping[str, str] = os.environ) -> bool:
    """Whether Qt will try its X11 (xcb) plugin: asked for, or an X display without Wayland."""
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0].split(";")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def check_xcb_libraries() -> None:
    """One line naming the missing libraries and the apt-get command, instead of Qt's abort."""
    if not sys.platform.startswith("linux") or not uses_xcb():
        return
    missing = missing_xcb_libraries()
    if missing:
        from dan_core.errors import DanFerError

        packages = " ".join(XCB_LIBRARIES[m] for m in missing)
        raise DanFerError(f"Qt's X11 plugin needs system libraries that are missing ({', '.join(missing)}): "
                          f"install them with `sudo apt-get install {packages}` (Debian/Ubuntu)")
