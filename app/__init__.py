"""dan-fer desktop app (PySide6). All Qt code of the project lives in this package.

``app.state`` is the app's model and has no Qt; ``app.engine`` runs capture, inference and
recording off the UI thread; ``app.widgets`` and ``app.window`` only paint and forward requests.
"""
