"""Make the README screenshots: ``python -m app.screenshots ASTRONAUT.png [--out assets/screenshots]``.

The picture must be one the project may publish: scikit-image's public-domain astronaut photo,
saved once with ``python -c "import cv2, skimage.data; cv2.imwrite('/tmp/astronaut.png',
skimage.data.astronaut()[:, :, ::-1])"`` (scikit-image is not a dependency of the app).

The photo is turned into a short clip that slowly zooms towards the face, so the window shows a
playing video with a filled timeline; the real app then runs on it once per overlay mode through
the automation options (``--exit-after``, ``--screenshot``), offscreen unless a display is set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOTS = (  # file name, heatmap mode, extra options
    ("app_plain.png", "off", []),
    ("app_fused.png", "fused", []),
    ("app_all_heads.png", "all", []),
)


def make_zoom_clip(image_path: Path, out: Path, *, seconds: float = 12.0, fps: float = 25.0, size=(800, 600)) -> Path:
    """A clip of ``image_path`` zooming slowly from the whole picture towards its upper centre (the face)."""
    import cv2
    import numpy as np

    img = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"cannot read {image_path}")
    h, w = img.shape[:2]
    aspect = size[1] / size[0]
    from dan_core.pipeline.recorder import AnnotatedWriter

    writer = AnnotatedWriter(out, fps)
    n = int(seconds * fps)
    cw0 = min(w, h / aspect)
    start = np.array([w / 2, cw0 * aspect / 2])  # the top of the picture, full width
    end = np.array([w * 0.45, h * 0.30])  # towards the face
    for i in range(n):
        t = 0.5 - 0.5 * np.cos(np.pi * i / max(n - 1, 1))  # ease in and out
        cw = cw0 * (1.0 - 0.35 * t)
        ch = cw * aspect
        cx, cy = start + (end - start) * t
        x0 = float(np.clip(cx - cw / 2, 0, w - cw))
        y0 = float(np.clip(cy - ch / 2, 0, h - ch))
        m = np.array([[size[0] / cw, 0, -x0 * size[0] / cw], [0, size[1] / ch, -y0 * size[1] / ch]], np.float32)
        writer.write(cv2.warpAffine(img, m, size, flags=cv2.INTER_CUBIC))
    writer.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("image", help="the astronaut photo (see the module docstring)")
    parser.add_argument("--out", default=str(ROOT / "assets" / "screenshots"))
    parser.add_argument("--model")
    parser.add_argument("--landmarker")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of playback before each screenshot")
    parser.add_argument("--size", default="1280x800")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_zoom_clip(Path(args.image), Path(tmp) / "astronaut_zoom.mp4")
        settings = Path(tmp) / "settings.ini"
        settings.write_text("[General]\ntimeline_seconds=10\n")  # a timeline as long as the clip has played
        for name, heatmap, extra in SHOTS:
            cmd = [sys.executable, "-m", "app", "--source", str(clip), "--heatmap", heatmap, "--opacity", "0.5",
                   "--exit-after", str(args.after), "--screenshot", str(out / name), "--size", args.size,
                   "--settings-file", str(settings), *extra]
            if args.model:
                cmd += ["--model", args.model]
            if args.landmarker:
                cmd += ["--landmarker", args.landmarker]
            print(" ".join(cmd))
            subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
