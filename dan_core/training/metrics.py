"""Classification metrics from a confusion matrix, and expected calibration error."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class EvalResult:
    n: int
    accuracy: float
    mean_class_accuracy: float
    per_class: dict[str, float]  # recall per class
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    class_names: list[str]
    ece: float = float("nan")  # expected calibration error (15 bins)
    loss: float = float("nan")
    heads: dict | None = None  # what the attention heads look at (``HeadStats.to_dict``), when the maps were scored

    def to_dict(self) -> dict:
        """Plain values for JSON: a metric that could not be computed (NaN) is None, i.e. null."""
        return {k: None if isinstance(v, float) and v != v else v for k, v in asdict(self).items()}

    def table(self) -> str:
        lines = [
            f"n={self.n}  accuracy={self.accuracy * 100:.2f}%  mean-class accuracy={self.mean_class_accuracy * 100:.2f}%"
            + (f"  ECE={self.ece * 100:.2f}%" if self.ece == self.ece else ""),
            "per-class recall:",
        ]
        width = max(len(c) for c in self.class_names)
        for name, rec in self.per_class.items():
            lines.append(f"  {name:<{width}}  {rec * 100:6.2f}%")
        lines.append("confusion (rows true, columns predicted):")
        lines.append(" " * (width + 2) + " ".join(f"{c[:5]:>5}" for c in self.class_names))
        for name, row in zip(self.class_names, self.confusion):
            lines.append(f"  {name:<{width}}" + " ".join(f"{v:5d}" for v in row))
        if self.heads:
            h = self.heads
            lines.append("attention heads: peakiness (max/mean of the map) " + ", ".join(f"{v:.2f}" for v in h["peakiness"])
                         + f"; mean pairwise correlation {h['pairwise_correlation']:.2f}; fused map vs each head "
                         + ", ".join(f"{v:.2f}" for v in h["fused_correlation"]))
        return "\n".join(lines)


@dataclass
class HeadStats:
    """Whether the attention heads look at different parts of the face, over a set of faces.

    ``peakiness``: per head, the mean over faces of the map's maximum over its mean (1 = flat; a 4x4 map
    on one cell = 16). ``correlation``: K x K, the mean over faces of the Pearson correlation between two
    heads' maps (1 = the same map). ``fused_correlation``: each head against the fused map the app draws
    by default (the mean of the heads)."""

    peakiness: list[float]
    correlation: list[list[float]]
    pairwise_correlation: float  # mean of ``correlation`` off the diagonal
    fused_correlation: list[float]

    def to_dict(self) -> dict:
        return asdict(self)


def map_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over faces of the Pearson correlation of two (N, P) sets of maps (flat maps count as 0)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return float(np.mean(np.divide((a * b).sum(axis=1), den, out=np.zeros(len(a)), where=den > 0)))


def head_statistics(attention: np.ndarray) -> HeadStats:
    """``attention`` (N, K, h, w): the raw maps of N faces (the model's ``attention`` output)."""
    n, k = attention.shape[:2]
    maps = attention.reshape(n, k, -1).astype(np.float64)  # (N, K, P)
    peak = (maps.max(axis=2) / np.maximum(maps.mean(axis=2), 1e-12)).mean(axis=0)  # (K,)
    corr = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            corr[i, j] = corr[j, i] = map_correlation(maps[:, i], maps[:, j])
    fused = maps.mean(axis=1)  # (N, P)
    off = corr[~np.eye(k, dtype=bool)]
    return HeadStats(peakiness=peak.round(4).tolist(), correlation=corr.round(4).tolist(),
                     pairwise_correlation=float(off.mean()) if k > 1 else 1.0,
                     fused_correlation=[round(map_correlation(maps[:, i], fused), 4) for i in range(k)])


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(labels * num_classes + preds, minlength=num_classes**2).reshape(num_classes, num_classes)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def summarize(probs: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...] | list[str], loss: float = float("nan")) -> EvalResult:
    c = len(class_names)
    cm = confusion_matrix(labels, probs.argmax(axis=1), c)
    support = cm.sum(axis=1)
    recall = np.divide(np.diag(cm), support, out=np.zeros(c), where=support > 0)
    present = support > 0
    return EvalResult(
        n=int(len(labels)),
        accuracy=float(np.trace(cm) / max(len(labels), 1)),
        mean_class_accuracy=float(recall[present].mean()) if present.any() else 0.0,
        per_class={name: float(r) for name, r in zip(class_names, recall)},
        confusion=cm.astype(int).tolist(),
        class_names=list(class_names),
        ece=expected_calibration_error(probs, labels) if len(labels) else float("nan"),
        loss=loss,
    )


def plot_confusion(result: EvalResult, path: str, title: str = "") -> None:
    """Row-normalised confusion matrix as a PNG (matplotlib imported only here)."""
    from matplotlib.figure import Figure  # a figure of its own: no pyplot, no backend chosen for the whole process

    cm = np.asarray(result.confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(result.class_names)
    fig = Figure(figsize=(1.0 + 0.8 * n, 0.8 + 0.75 * n), dpi=120)
    ax = fig.subplots()
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{norm[i, j] * 100:.0f}\n({int(cm[i, j])})", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), result.class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), result.class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {result.accuracy * 100:.1f}%, mean-class {result.mean_class_accuracy * 100:.1f}% (n={result.n})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def plot_learning_curve(metrics_files: list[str], path: str, labels: list[str] | None = None) -> None:
    """Validation accuracy and training loss per epoch from one or more metrics.jsonl files
    (several files: consecutive phases of one model, e.g. low-res training then fine-tuning)."""
    import json

    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), dpi=120)
    ax_acc, ax_loss = fig.subplots(1, 2)
    offset = 0
    for i, file in enumerate(metrics_files):
        with open(file) as f:
            records = [json.loads(line) for line in f if line.strip()]
        epochs = [offset + r["epoch"] for r in records]
        label = labels[i] if labels else file
        ax_acc.plot(epochs, [r["val_accuracy"] * 100 for r in records], "o-", label=f"{label}: accuracy")
        ax_acc.plot(epochs, [r["val_mean_class_accuracy"] * 100 for r in records], "s--", label=f"{label}: mean-class")
        ax_loss.plot(epochs, [r["loss"] for r in records], "o-", label=f"{label}: total")
        ax_loss.plot(epochs, [r["ce"] for r in records], "s--", label=f"{label}: cross-entropy")
        offset = epochs[-1] if epochs else offset
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation %")
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(fontsize=7)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    """python -m dan_core.metrics METRICS.jsonl [...] --out curve.png [--labels a b]"""
    import argparse

    p = argparse.ArgumentParser(prog="python -m dan_core.metrics", description="plot learning curves from metrics.jsonl files")
    p.add_argument("metrics", nargs="+", help="metrics.jsonl of consecutive training phases")
    p.add_argument("--labels", nargs="+", help="one label per file")
    p.add_argument("--out", required=True, help="PNG to write")
    args = p.parse_args(argv)
    plot_learning_curve(args.metrics, args.out, args.labels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
