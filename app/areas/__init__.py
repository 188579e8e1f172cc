"""The main window's areas, one module each: sources and playback, overlays and heads, recording,
markers, review, settings, problems, status. Each is an object ``app.window.MainWindow`` builds and
holds, given what it needs as keyword-only arguments; areas never import each other (an
import-linter contract in pyproject.toml): the window wires them."""
