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

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VIDEO = ROOT.parent / "shared" / "media" / "pexels_WolfgangLanger_emotions.mp4"
DEFAULT_LANDMARKER = ROOT.parent / "shared" / "models" / "face_landmarker.task"
HEARTBEAT_MS = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench_ui", description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", default=str(DEFAULT_VIDEO))
    parser.add_argument("--model", help="model .onnx (default: the one in models/)")
    parser.add_argument("--landmarker", default=str(DEFAULT_LANDMARKER) if DEFAULT_LANDMARKER.exists() else None)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds (after warm-up)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--heatmap", default="fused")
    parser.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    parser.add_argument("--lsl", action="store_true", help="with the LSL outlets and marker listener on, recording the timeline")
    args = parser.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.main import prepare_qt_environment

    prepare_qt_environment()
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app.state import AppSettings, MaxGapMeter
    from app.window import MainWindow
    from dan_core.pipeline.handoff import RateMeter

    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    qapp.setStyle("Fusion")  # as app.main does
    tmp = tempfile.TemporaryDirectory()
    store = QSettings(str(Path(tmp.name) / "bench.ini"), QSettings.Format.IniFormat)
    settings = AppSettings(model=args.model or "", landmarker=args.landmarker or "", backend=args.backend,
                           heatmap=args.heatmap, record_dir=tmp.name)
    window = MainWindow(store=store, settings=settings)
    window.resize(1280, 820)
    window.show()

    heart = MaxGapMeter(HEARTBEAT_MS / 1000.0)
    shown = RateMeter(window_s=1e9)
    latencies: list[float] = []
    processed: list[float] = []
    captured: list[float] = []
    stages: dict[str, list[float]] = {}
    state = {"t0": None, "measuring": False, "errors": []}

    beat = QTimer()
    beat.setInterval(HEARTBEAT_MS)
    cpu_in_gap: list[tuple[float, float]] = []  # (gap ms, UI-thread CPU ms during it): busy vs. starved

    def on_beat() -> None:
        if not state["measuring"]:
            return
        now, cpu = time.perf_counter(), time.thread_time()
        if "last" in state:
            cpu_in_gap.append(((now - state["last"][0]) * 1000, (cpu - state["last"][1]) * 1000))
        state["last"] = (now, cpu)
        heart.beat()

    beat.timeout.connect(on_beat)

    def on_displayed(packet) -> None:
        now = time.monotonic()
        if state["t0"] is None:
            state["t0"] = now
            QTimer.singleShot(int(args.warmup * 1000), start_measuring)
            return
        if state["measuring"]:
            shown.tick()
            latencies.append(packet.latency_ms)
            processed.append(packet.processed_fps)
            captured.append(packet.capture_fps)
            for k, v in packet.timings.items():
                stages.setdefault(k, []).append(v)

    def start_measuring() -> None:
        state["measuring"] = True
        state["start"] = time.monotonic()
        beat.start()
        QTimer.singleShot(int(args.seconds * 1000), qapp.quit)

    window.displayed.connect(on_displayed)
    window.engine.failed.connect(lambda e: state["errors"].append(f"{e.kind}: {e.message}"))
    QTimer.singleShot(120_000, qapp.quit)  # never hang
    window.start(args.video)
    if args.lsl:
        window.engine.enable_study(lsl=True, lsl_markers=True)
        window.recording.start_recording(Path(tmp.name) / "bench.csv")
    qapp.exec()
    measured = time.monotonic() - state.get("start", time.monotonic())
    beat.stop()
    window.shutdown()
    window.close()

    n = len(latencies)
    out = {
        "video": Path(args.video).name,
        "backend": window.status.pipeline.backend if window.status.pipeline else None,
        "measured_s": round(measured, 2),
        "displayed_frames": n,
        "displayed_fps": round(n / measured, 2) if measured > 0 else 0.0,
        "processed_fps": round(statistics.median(processed), 2) if processed else 0.0,
        "capture_fps": round(statistics.median(captured), 2) if captured else 0.0,
        "latency_ms_median": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p95": round(sorted(latencies)[int(0.95 * (n - 1))], 1) if latencies else None,
        "ui_max_block_ms": round(heart.max_block_ms(), 1),
        "ui_p99_block_ms": round(heart.percentile_block_ms(99), 1),
        "heartbeats": len(heart.gaps),
        "worst_gaps_ms_(wall,ui_cpu)": [(round(g, 1), round(c, 1)) for g, c in sorted(cpu_in_gap, reverse=True)[:5]],
        "stage_ms_median": {k: round(statistics.median(v), 1) for k, v in stages.items()},
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "errors": state["errors"],
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>20}: {v}")
        ok = out["displayed_fps"] >= 25 and out["ui_max_block_ms"] <= 50
        print(f"{'target':>20}: >= 25 fps displayed, UI block <= 50 ms -> {'met' if ok else 'NOT met'}")
    tmp.cleanup()
    return 0 if not state["errors"] and n else 1


if __name__ == "__main__":
    sys.exit(main())
