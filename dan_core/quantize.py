"""int8 DAN for ONNX Runtime on the CPU, ``dan-fer export CKPT --out M.onnx --int8``: which faces calibrate it,
and what it costs against its float model.

The quantisation itself is ``training.int8`` (ONNX Runtime's static quantisation of the backbone). It is
calibrated on training faces prepared as the pipeline prepares live faces: a 48 px FER face enlarged
bilinearly to the model's input size and given as grey in all three channels, the last step of
``pipeline.align.Aligner.warp`` for a model of tiny faces. CPUs with VNNI (AVX512-VNNI, AVX-VNNI, AMX)
run it two to three times faster than float32. ``compare`` measures what the rounding costs on a
labelled split: accuracy, per-class recall, and each head's attention map against the float model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dan_core.data.dataset import FaceRecords
from dan_core.data.readers import read_dataset
from dan_core.errors import DanFerError
from dan_core.evaluate import label_map, predict
from dan_core.pipeline.align import to_model_input
from dan_core.training.int8 import CALIBRATION_FACES
from dan_core.training.metrics import EvalResult, map_correlation, summarize


def prepare_faces(records: FaceRecords, size: int, color: str) -> np.ndarray:
    """Dataset faces -> (N, 3, size, size) float32 model input, as the pipeline prepares a live face
    of a model trained on tiny faces: enlarged bilinearly (OpenCV), then ``to_model_input``."""
    if records.pixels is None:
        raise DanFerError("calibration needs faces decoded in memory (the FER+ reader)")
    crops = []
    for face in records.pixels:
        bgr = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR) if face.ndim == 2 else cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
        crops.append(cv2.resize(bgr, (size, size), interpolation=cv2.INTER_LINEAR))
    return to_model_input(crops, color)


def calibration_faces(dataset: str, data: str | Path, size: int, color: str, count: int = CALIBRATION_FACES,
                      seed: int = 0) -> np.ndarray:
    """``count`` training faces, the same share of each class as the training set, prepared for the model."""
    train = read_dataset(dataset, data, "train")
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(train.labels == c), max(1, round(count * np.mean(train.labels == c))), replace=False)
             for c in np.unique(train.labels)]
    return prepare_faces(train.subset(np.sort(np.concatenate(picks))), size, color)


# What an int8 model may lose against its float model (issue: int8 inference) before it is not the default.
LIMITS = {"accuracy": 0.005, "mean_class_accuracy": 0.005, "recall": 0.03, "head_correlation": 0.95}


@dataclass
class Comparison:
    """An int8 model against its float model on the same labelled faces."""

    reference: EvalResult
    candidate: EvalResult
    top1_agreement: float  # share of faces where both predict the same class
    head_correlation: list[float]  # per head: mean over faces of the correlation between the two models' maps

    def failures(self) -> list[str]:
        """The checks of ``LIMITS`` that fail, one line each (empty: the int8 model may be the default)."""
        ref, cand, out = self.reference, self.candidate, []
        for key in ("accuracy", "mean_class_accuracy"):
            drop = getattr(ref, key) - getattr(cand, key)
            if drop > LIMITS[key]:
                out.append(f"{key} {getattr(cand, key) * 100:.2f}% is {drop * 100:.2f} points below the float model's")
        for name, recall in ref.per_class.items():
            drop = recall - cand.per_class[name]
            if drop > LIMITS["recall"]:
                out.append(f"{name} recall {cand.per_class[name] * 100:.1f}% is {drop * 100:.1f} points below the float model's")
        if np.mean(self.head_correlation) < LIMITS["head_correlation"]:
            out.append(f"attention maps correlate {np.mean(self.head_correlation):.3f} with the float model's "
                       f"(< {LIMITS['head_correlation']})")
        return out

    def to_dict(self) -> dict:
        return {"reference": self.reference.to_dict(), "candidate": self.candidate.to_dict(),
                "top1_agreement": self.top1_agreement, "head_correlation": self.head_correlation,
                "failures": self.failures()}


def compare(reference: str | Path, candidate: str | Path, records: FaceRecords, *, show: bool = False) -> Comparison:
    """Score both models on ``records`` (faces prepared as ``dan-fer eval`` prepares them) and compare their maps."""
    ref, cand = predict(reference, records, show=show), predict(candidate, records, show=show)
    if ref.class_names != cand.class_names:
        raise DanFerError(f"{candidate} has other classes than {reference}")
    labels = label_map(ref.class_names, records.class_names)[records.labels]
    n, k = ref.attention.shape[:2]
    corr = [map_correlation(ref.attention[:, i].reshape(n, -1), cand.attention[:, i].reshape(n, -1)) for i in range(k)]
    return Comparison(summarize(ref.probs, labels, ref.class_names), summarize(cand.probs, labels, cand.class_names),
                      float(np.mean(ref.probs.argmax(1) == cand.probs.argmax(1))), [round(c, 4) for c in corr])
