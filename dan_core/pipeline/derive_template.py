"""Derive the alignment template from the training faces themselves.

FER2013 (and FER+, which relabels the same pixels) faces were cropped by the dataset's
authors with their own detector; nothing documents where the eyes or mouth sit in the 48x48
frame. The live pipeline must put a face at the same place, so we measure it:

1. take ``--count`` training images (every k-th image, so all classes and poses are sampled),
2. upscale 48 -> ``--upscale`` pixels (bicubic) and repeat the grey into three channels, since
   MediaPipe's face detector does not find faces as small as 48 pixels,
3. run the FaceLandmarker in IMAGE mode, keep images with exactly one face,
4. take the five alignment points (eye centres = mean of the two eye corners, nose tip, mouth
   corners; see landmarks.five_points), divided by the upscaled size, so [0, 1] crop coordinates,
5. the template is the per-coordinate median over all kept images (robust to failed fits),
   made left-right symmetric (training flips faces horizontally, so both sides are equally
   likely); the median absolute deviation is stored beside it to show how consistent the
   crops are.

Run:  python -m dan_core.pipeline.derive_template --data ../shared/data/fer2013/fer2013_train.npz \
          --landmarker ../shared/models/face_landmarker.task --out assets/ferplus_template.json

The dataset declares the file as its template (``classes.DATASETS``); the export embeds the
points as the model's ``template`` metadata, and the pipeline falls back to the file for models
of that dataset exported without it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from dan_core.errors import DanFerError
from dan_core.pipeline.landmarks import POINT_NAMES, FaceLandmarks, five_points, resolve_landmarker


def symmetrize(points: np.ndarray) -> np.ndarray:
    """Average a five-point template with its mirror image (x -> 1 - x, left and right swapped)."""
    mirrored = points[[1, 0, 2, 4, 3]].copy()
    mirrored[:, 0] = 1.0 - mirrored[:, 0]
    return (points + mirrored) / 2.0


def _rounded(a: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 4) for x in row] for row in a]


def derive_template(images: np.ndarray, landmarker: str | Path, *, upscale: int = 192) -> dict:
    """images: (N, h, w) uint8 grey faces -> template dict (points, mad, counts)."""
    found = []
    with FaceLandmarks(landmarker, max_faces=2, mode="image") as lm:
        for img in images:
            big = cv2.resize(img, (upscale, upscale), interpolation=cv2.INTER_CUBIC)
            rgb = np.repeat(big[:, :, None], 3, axis=2)  # (S, S, 3)
            faces = lm.detect(rgb, 0.0)
            if len(faces) == 1:
                found.append(five_points(faces[0].landmarks) / upscale)  # (5, 2) in [0, 1]
    if len(found) < 10:
        raise DanFerError(f"the landmarker found a single face in only {len(found)} of {len(images)} images")
    pts = np.stack(found)  # (M, 5, 2)
    median = np.median(pts, axis=0).astype(np.float64)  # (5, 2)
    mad = np.median(np.abs(pts - median), axis=0)
    return {
        "points": _rounded(symmetrize(median)),
        "names": list(POINT_NAMES),
        "median": _rounded(median),
        "mad": _rounded(mad),
        "images_used": len(found),
        "images_tried": len(images),
        "upscale": upscale,
    }


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Derive the five-point alignment template from training faces (npz).")
    p.add_argument("--data", required=True, help="npz with 'images' uint8 (N, h, w), e.g. fer2013_train.npz")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--landmarker", default=None, help="face_landmarker.task (default: the usual search)")
    p.add_argument("--count", type=int, default=400, help="images to sample evenly from the file")
    p.add_argument("--upscale", type=int, default=192, help="size the faces are upscaled to before the landmarker")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        with np.load(args.data) as d:
            images = d["images"]
        step = max(1, len(images) // args.count)
        sample = images[::step][: args.count]
        result = derive_template(sample, resolve_landmarker(args.landmarker), upscale=args.upscale)
        result["source"] = f"{Path(args.data).name}, every {step}th image"
        text = json.dumps(result, indent=1)
        text = re.sub(r"\[\s+(-?[\d.]+),\s+(-?[\d.]+)\s+\]", r"[\1, \2]", text)  # one [x, y] pair per line
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    except DanFerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
