"""Responsiveness benchmark of the desktop app: ``python -m app.bench_ui [VIDEO]``.

Runs the real window (offscreen unless a display is set) on a video, and measures
* displayed fps: packets painted per second by the UI thread,
* the UI thread's longest block: a QTimer heartbeat every 5 ms; any gap beyond 5 ms is time the
  event loop could not run (painting, pyqtgraph, Python work holding the GIL),
* processed fps, capture fps and capture-to-display latency.
Target (issue 5): >= 25 fps displayed and no block over 50 ms on a 640x360 video.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dan_core.pipeline.options import add_options

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VIDEO = ROOT.parent / "shared" / "media" / "pexels_WolfgangLanger_emotions.mp4"
DEFAULT_LANDMARKER = ROOT.parent / "shared" / "models" / "face_landmarker.task"
HEARTBEAT_MS = 5


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.bench_ui", description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", default=str(DEFAULT_VIDEO))
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds (after warm-up)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    parser.add_argument("--lsl", action="store_true", help="with the LSL outlets and marker listener on, recording the timeline")
    add_options(parser, ("model", "landmarker", "backend", "precision", "heatmap"),
                defaults={"landmarker": str(DEFAULT_LANDMARKER) if DEFAULT_LANDMARKER.exists() else None})
    return parser


class Probe:
    """What the window shows and how long its UI thread blocks, from ``warmup`` seconds after the first frame for ``seconds``."""

    def __init__(self, qapp, *, warmup: float, seconds: float) -> None:
        from PySide6.QtCore import QTimer

        from app.state import MaxGapMeter
        from dan_core.pipeline.handoff import RateMeter

        self.qapp, self.warmup, self.seconds = qapp, warmup, seconds
        self.heart = MaxGapMeter(HEARTBEAT_MS / 1000.0)
        self.shown = RateMeter(window_s=1e9)
        self.latencies: list[float] = []
        self.processed: list[float] = []
        self.captured: list[float] = []
        self.stages: dict[str, list[float]] = {}
        self.cpu_in_gap: list[tuple[float, float]] = []  # (gap ms, UI-thread CPU ms during it): busy vs. starved
        self.errors: list[str] = []
        self.t0: float | None = None
        self.start: float | None = None
        self.measuring = False
        self._last: tuple[float, float] | None = None
        self.beat = QTimer()
        self.beat.setInterval(HEARTBEAT_MS)
        self.beat.timeout.connect(self.on_beat)

    def on_beat(self) -> None:
        if not self.measuring:
            return
        now, cpu = time.perf_counter(), time.thread_time()
        if self._last is not None:
            self.cpu_in_gap.append(((now - self._last[0]) * 1000, (cpu - self._last[1]) * 1000))
        self._last = (now, cpu)
        self.heart.beat()

    def on_displayed(self, packet) -> None:
        from PySide6.QtCore import QTimer

        if self.t0 is None:
            self.t0 = time.monotonic()
            QTimer.singleShot(int(self.warmup * 1000), self.start_measuring)
            return
        if self.measuring:
            self.shown.tick()
            self.latencies.append(packet.latency_ms)
            self.processed.append(packet.processed_fps)
            self.captured.append(packet.capture_fps)
            for k, v in packet.timings.items():
                self.stages.setdefault(k, []).append(v)

    def on_failed(self, error) -> None:
        self.errors.append(f"{error.kind}: {error.message}")

    def start_measuring(self) -> None:
        from PySide6.QtCore import QTimer

        self.measuring = True
        self.start = time.monotonic()
        self.beat.start()
        QTimer.singleShot(int(self.seconds * 1000), self.qapp.quit)

    def summary(self, video: str, backend: str | None, measured: float) -> dict:
        n, lat = len(self.latencies), self.latencies
        return {
            "video": Path(video).name,
            "backend": backend,
            "measured_s": round(measured, 2),
            "displayed_frames": n,
            "displayed_fps": round(n / measured, 2) if measured > 0 else 0.0,
            "processed_fps": round(statistics.median(self.processed), 2) if self.processed else 0.0,
            "capture_fps": round(statistics.median(self.captured), 2) if self.captured else 0.0,
            "latency_ms_median": round(statistics.median(lat), 1) if lat else None,
            "latency_ms_p95": round(sorted(lat)[int(0.95 * (n - 1))], 1) if lat else None,
            "ui_max_block_ms": round(self.heart.max_block_ms(), 1),
            "ui_p99_block_ms": round(self.heart.percentile_block_ms(99), 1),
            "heartbeats": len(self.heart.gaps),
            "worst_gaps_ms_(wall,ui_cpu)": [(round(g, 1), round(c, 1)) for g, c in sorted(self.cpu_in_gap, reverse=True)[:5]],
            "stage_ms_median": {k: round(statistics.median(v), 1) for k, v in self.stages.items()},
            "cpu_count": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            "errors": self.errors,
        }


def print_summary(out: dict) -> None:
    for k, v in out.items():
        print(f"{k:>20}: {v}")
    ok = out["displayed_fps"] >= 25 and out["ui_max_block_ms"] <= 50
    print(f"{'target':>20}: >= 25 fps displayed, UI block <= 50 ms -> {'met' if ok else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.main import prepare_qt_environment

    prepare_qt_environment()
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app.state import AppSettings
    from app.window import MainWindow

    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    qapp.setStyle("Fusion")  # as app.main does
    tmp = tempfile.TemporaryDirectory()
    store = QSettings(str(Path(tmp.name) / "bench.ini"), QSettings.Format.IniFormat)
    settings = AppSettings(model=args.model or "", landmarker=args.landmarker or "", backend=args.backend,
                           precision=args.precision, heatmap=args.heatmap, record_dir=tmp.name)
    window = MainWindow(store=store, settings=settings)
    window.resize(1280, 820)
    window.show()
    probe = Probe(qapp, warmup=args.warmup, seconds=args.seconds)
    window.displayed.connect(probe.on_displayed)
    window.engine.failed.connect(probe.on_failed)
    QTimer.singleShot(120_000, qapp.quit)  # never hang
    window.start(args.video)
    if args.lsl:
        window.engine.enable_study(lsl=True, lsl_markers=True)
        window.recording.start_recording(Path(tmp.name) / "bench.csv")
    qapp.exec()
    measured = time.monotonic() - (probe.start or time.monotonic())
    probe.beat.stop()
    window.shutdown()
    window.close()
    pipeline = window.status.pipeline
    out = probe.summary(args.video, pipeline.backend if pipeline else None, measured)
    if args.json:
        print(json.dumps(out))
    else:
        print_summary(out)
    tmp.cleanup()
    return 0 if not probe.errors and out["displayed_frames"] else 1


if __name__ == "__main__":
    sys.exit(main())
