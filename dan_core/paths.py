"""Where the product finds its files (the shipped model, the assets), which files are images, and which outputs may be written."""

from __future__ import annotations

import os
from pathlib import Path

from dan_core.errors import DanFerError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT_ROOT / "models"
ASSETS_DIR = PROJECT_ROOT / "assets"
# Still images every reader accepts (datasets, photos, folders of photos, annotated output)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def default_model_path() -> Path:
    """$DAN_FER_MODEL, else the one float .onnx file shipped in models/ (its int8 twin, ``*_int8.onnx``, lies beside it:
    ``--precision`` chooses between them)."""
    env = os.environ.get("DAN_FER_MODEL")
    if env:
        return Path(env)
    found = sorted(p for p in MODELS_DIR.glob("*.onnx") if not p.stem.endswith("_int8"))
    if not found:
        raise DanFerError(f"no model found: put an .onnx file in {MODELS_DIR} or pass --model PATH")
    return found[0]


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` are one file on disk: the same device and inode, so through symbolic and hard links too."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False  # one of them does not exist (yet): it cannot be the other


def refuse_overwriting_inputs(outputs, inputs, *, what: str = "output") -> None:
    """One DanFerError line when an output would overwrite an input, ``--force`` or not.

    A folder among the inputs stands for the images in it. Inputs that are not paths (a camera index) are passed over.
    """
    for out in outputs:
        if out is None:
            continue
        for src in inputs:
            if src is None:
                continue
            clash = same_file(out, src) or (Path(src).is_dir() and Path(out).suffix.lower() in IMAGE_SUFFIXES
                                            and same_file(Path(out).parent, src) and Path(out).exists())
            if clash:
                raise DanFerError(f"{what} {out} is the input {src}: refusing to write over it (--force does not change that)")


def check_writable(path: str | os.PathLike, *, force: bool = False, what: str = "output", inputs=()) -> Path:
    """Fail early, with one line, when ``path`` cannot be created (or exists and force is off), or is one of ``inputs``."""
    refuse_overwriting_inputs([path], inputs, what=what)
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise DanFerError(f"{what} folder does not exist: {parent}")
    if not parent.is_dir():
        raise DanFerError(f"{what} folder is not a folder: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DanFerError(f"{what} folder is not writable: {parent}")
    if path.is_dir():  # before the --force advice: forcing would not help
        raise DanFerError(f"{what} path is a folder: {path}")
    if path.exists() and not force:
        raise DanFerError(f"{path} exists; pass --force to overwrite it")
    return path
