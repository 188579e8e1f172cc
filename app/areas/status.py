"""The status bar: passing messages, capture / processed / shown fps with the latency, the backend and the model.

The labels on the right are kept short (the details are in their tooltips): a passing message gets the
rest of the bar, and a message cut short ("Recording to /roc") tells nothing.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar

from app.engine import Engine
from app.messages import Packet, PipelineInfo
from app.wiring import Connections, every
from dan_core.pipeline.handoff import RateMeter


class StatusArea(QObject):
    """How fast frames come and go, and what runs them. ``labels`` go in the status bar, left to right."""

    def __init__(self, *, engine: Engine, status_bar: QStatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._status_bar = status_bar
        self._last: Packet | None = None
        self._pipeline: PipelineInfo | None = None
        self._displayed = RateMeter()
        self._latency_ms = 0.0
        self.fps_label = QLabel("")
        self.fps_label.setToolTip("frames per second read from the source · analysed · shown, and the latency from the "
                                  "source to the screen")
        self.backend_label = QLabel("–")
        self.model_label = QLabel("–")
        self.labels = (self.fps_label, self.model_label, self.backend_label)
        for w in self.labels:
            w.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
            w.setContentsMargins(8, 0, 8, 0)
        self._timer = every(self, 250, self._on_timer_timeout)
        self._links = Connections()
        self._links.connect(engine.info, self._on_engine_info)
        self._links.connect(engine.pipeline_ready, self._on_engine_pipeline_ready)

    @property
    def pipeline(self) -> PipelineInfo | None:
        """The pipeline the engine loaded last (backend, model, classes)."""
        return self._pipeline

    def show(self, packet: Packet) -> None:
        self._last = packet
        self._displayed.tick()
        self._latency_ms = 0.8 * self._latency_ms + 0.2 * packet.latency_ms if self._latency_ms else packet.latency_ms

    def detach(self) -> None:
        self._timer.stop()
        self._links.disconnect_all()

    @Slot()
    def _on_timer_timeout(self) -> None:
        p = self._last
        if p is None:
            return
        self.fps_label.setText(f"{p.capture_fps:.1f} fps · analysed {p.processed_fps:.1f} · shown {self._displayed.rate():.1f} · "
                               f"{self._latency_ms:.0f} ms")

    @Slot(str)
    def _on_engine_info(self, text: str) -> None:
        self._status_bar.showMessage(text, 4000)

    @Slot(object)
    def _on_engine_pipeline_ready(self, info: PipelineInfo) -> None:
        self._pipeline = info
        self.backend_label.setText(info.backend.replace("onnxruntime ", ""))
        self.backend_label.setToolTip(f"backend: {info.backend}")
        trained = f"{info.train_dataset}, " if info.train_dataset else ""
        self.model_label.setText(info.model_name)
        self.model_label.setToolTip(f"model: {info.model_name} ({trained}{len(info.class_names)} classes, {info.num_heads} heads)\n"
                                    "classes: " + ", ".join(info.class_names))
        self._status_bar.showMessage(f"Ready: {info.model_name} on {info.backend}", 3000)
