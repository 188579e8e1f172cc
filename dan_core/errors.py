"""One exception type for user-facing problems: the CLI prints its message as one line."""


class DanFerError(Exception):
    """A problem the user can fix (missing file, corrupt checkpoint, bad option)."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when the message is empty), cut to ``limit`` characters.

    Libraries (torch, ONNX Runtime, MediaPipe) raise pages of text; a DanFerError quotes one line.
    """
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
