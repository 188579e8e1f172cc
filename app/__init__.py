"""dan-fer desktop app (PySide6). All Qt code of the project lives in this package.

``app.engine`` steers the library's live analysis (``dan_core.pipeline.live``) from a worker
thread and hands each finished frame to the window as a ``Packet``; ``app.window`` builds the
window's areas (``app.areas``, objects it holds and wires) and widgets (``app.widgets``), which only
paint and forward requests; ``app.state`` is the app's Qt-free model (settings, timeline buffer).
"""
