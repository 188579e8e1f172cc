"""The main window's areas, one module each: sources and playback, overlays and heads, recording,
settings, problems. ``app.window.MainWindow`` combines them and wires them to the engine."""
