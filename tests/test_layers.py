"""The architecture's rules, checked like any other behaviour (see ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def test_import_layers_hold():
    """The import-linter contracts in pyproject.toml: app above the library, training free of cv2/MediaPipe/ORT/Qt."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for pkg in ("app", "dan_core") for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these modules (one job each): {long}"


def test_app_classes_have_at_most_one_base_besides_qt():
    """Areas are objects the window holds, not mixins it inherits: one base besides Qt's at most."""
    mixed = []
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                others = [b for b in (ast.unparse(base).split(".")[-1] for base in node.bases) if not b.startswith("Q")]
                if len(others) > 1:
                    mixed.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not mixed, f"classes with more than one base besides Qt's: {mixed}"
