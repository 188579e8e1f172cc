"""One exception type for user-facing problems: the CLI prints its message as one line."""


class DanFerError(Exception):
    """A problem the user can fix (missing file, corrupt checkpoint, bad option)."""
