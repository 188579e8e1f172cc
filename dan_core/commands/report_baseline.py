"""``dan-fer report --baseline``'s picture: per face, every measure's change from the face's own baseline mean.

One row of panels per face: the class probabilities and valence (change, -1..1), the head pose (change
in degrees) when the file has it, and the six blendshapes that move most (change, 0..1 scale) when
recorded. Curves are a half-second moving average of the per-frame values (the CSV keeps every frame);
the baseline span is shaded, markers are dashed lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dan_core.pipeline.segments import Baseline, baseline_means

POSE = ("yaw", "pitch", "roll")
POSE_COLORS = {"yaw": "#1f77b4", "pitch": "#d62728", "roll": "#2ca02c"}


def _smooth(t: np.ndarray, v: np.ndarray, seconds: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A moving average over ``seconds`` (NaN ignored), with NaN at gaps so that lines break where the face was not seen."""
    if len(t) < 2:
        return t, v
    dt = float(np.median(np.diff(t))) or 1.0
    k = max(int(round(seconds / dt)), 1)
    ok = np.isfinite(v)
    kernel = np.ones(k)
    total = np.convolve(np.where(ok, v, 0.0), kernel, mode="same")
    count = np.convolve(ok.astype(float), kernel, mode="same")
    out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    gaps = np.flatnonzero(np.diff(t) > 2.5 * dt)
    return np.insert(t, gaps + 1, t[gaps] + dt), np.insert(out, gaps + 1, np.nan)


def _change(values: np.ndarray, base: float) -> float:
    """How far a measure's mean is from its baseline mean (0 when either is missing)."""
    v = values[np.isfinite(values)]
    return abs(float(v.mean()) - base) if len(v) and np.isfinite(base) else 0.0


def _panel(ax, t, cols, mask, names, base, colors, *, span: float, widths=None) -> None:
    """Each measure's change as a line; the y axis shows at least +-``span`` (no noise blown up to fill the panel)."""
    for name in names:
        tt, vv = _smooth(t, cols[name][mask] - base.get(name, np.nan))
        ax.plot(tt, vv, color=colors[name], linewidth=(widths or {}).get(name, 1.2), label=name)
    ax.axhline(0.0, color="#555555", linewidth=0.8)
    ax.grid(axis="x", alpha=0.3)
    low, high = ax.get_ylim()
    ax.set_ylim(min(low, -span), max(high, span))


def render_corrected(classes: list[str], cols: dict[str, np.ndarray], meta: dict, out: Path, order: list[int], colors: dict,
                     *, events: list, baseline: Baseline, measures: list[str]) -> None:
    import matplotlib.pyplot as plt

    from dan_core.commands.report import _save_figure
    from dan_core.commands.report_events import draw_markers, marker_label_height

    base = baseline_means(cols, measures, baseline)
    has_pose = all(p in measures for p in POSE)
    shapes = [m for m in measures if m not in classes and m not in POSE and m != "valence"]
    kinds = ["classes", *(["pose"] if has_pose else []), *(["shapes"] if shapes else [])]
    fig_h = 1.6 + 1.9 * len(order) * len(kinds)
    fig, axes = plt.subplots(len(order) * len(kinds), 1, figsize=(12, fig_h), squeeze=False, sharex=True)
    t0, t1 = float(cols["time_s"].min()), float(cols["time_s"].max())
    for i, fid in enumerate(order):
        m = cols["face_id"] == fid
        t, own = cols["time_s"][m], base.get(fid, {})
        for j, kind in enumerate(kinds):
            ax = axes[i * len(kinds) + j][0]
            if kind == "classes":
                names = [*classes, *(["valence"] if "valence" in measures else [])]
                _panel(ax, t, cols, m, names, own, {**colors, "valence": "black"}, span=0.25, widths={"valence": 2.4})
                ax.set_ylabel(f"face #{fid}\nchange of\nprobability", fontsize=8)
            elif kind == "pose":
                _panel(ax, t, cols, m, list(POSE), own, POSE_COLORS, span=5.0)
                ax.set_ylabel(f"face #{fid}\nhead pose\nchange (deg)", fontsize=8)
            else:
                moved = sorted(shapes, key=lambda s: -_change(cols[s][m], own.get(s, np.nan)))[:6]
                cmap = plt.get_cmap("tab10")
                _panel(ax, t, cols, m, moved, own, {s: cmap(k) for k, s in enumerate(moved)}, span=0.1)
                ax.set_ylabel(f"face #{fid}\nblendshape\nchange", fontsize=8)
            ax.axvspan(max(baseline.start_s, t0), min(baseline.end_s, t1), color="#999999", alpha=0.15, linewidth=0)
            draw_markers(ax, events, labels=i == 0 and j == 0)
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
            if not own:
                ax.text(0.5, 0.5, "not seen in the baseline: no change to show", transform=ax.transAxes, ha="center", fontsize=9)
    axes[-1][0].set_xlim(t0, max(t1, t0 + 1e-3))
    axes[-1][0].set_xlabel("time (s)")
    source = Path(str(meta.get("source", ""))).name or "timeline"
    fig.suptitle(f"{source}: change from each face's baseline ({baseline.name}, shaded); 0.5-s moving average",
                 fontsize=11, x=0.02, ha="left")
    top = 1 - (0.45 + marker_label_height(events)) / fig_h
    fig.subplots_adjust(left=0.09, right=0.86, top=top, bottom=0.6 / fig_h, hspace=0.15)
    _save_figure(fig, out)
