"""Make the README's review-mode screenshot: ``python -m app.screenshot_review ASTRONAUT.png [--out assets/screenshots]``.

From scikit-image's public-domain astronaut photo only (see ``app.screenshots`` for saving it):
the photo becomes a zooming clip (``app.screenshots.make_zoom_clip``), ``dan-fer analyze`` records
its timeline, two markers are written as a study's stimulus program would, and the review window
is grabbed, offscreen, at a frame between the markers with in and out points set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from app.screenshots import ROOT, make_zoom_clip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.screenshot_review", description=__doc__.splitlines()[0])
    parser.add_argument("image", help="the astronaut photo")
    parser.add_argument("--out", default=str(ROOT / "assets" / "screenshots"))
    parser.add_argument("--landmarker")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.main import prepare_qt_environment

    prepare_qt_environment()
    from PySide6.QtWidgets import QApplication

    from app.areas.review import ReviewWindow
    from dan_core.pipeline.events import EventWriter, events_path

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_zoom_clip(Path(args.image), Path(tmp) / "astronaut_zoom.mp4")
        csv_path = Path(tmp) / "session.csv"
        cmd = [sys.executable, "-m", "dan_core.cli", "analyze", str(clip), "--csv", str(csv_path), "--no-progress"]
        if args.landmarker:
            cmd += ["--landmarker", args.landmarker]
        subprocess.run(cmd, check=True, cwd=ROOT)
        events = EventWriter(events_path(csv_path))
        events.add(2.0, 50, "1 = stimulus on", "lsl")
        events.add(6.0, 150, "2 = stimulus off", "lsl")
        events.add(9.0, 225, "participant laughed", "key")
        events.close()
        qapp = QApplication.instance() or QApplication(sys.argv[:1])
        qapp.setStyle("Fusion")
        window = ReviewWindow(csv_path)
        window.resize(1280, 800)
        window.show()
        window.seek(2.5)
        window.set_in()
        window.seek(5.5)
        window.set_out()
        window.seek(4.0)
        for _ in range(5):
            qapp.processEvents()
        path = out / "review.png"
        if not window.grab().save(str(path)):
            raise SystemExit(f"cannot write {path}")
        print(f"wrote {path}")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
