"""Recording: the Record and Snapshot buttons, the REC label, the record folder.

The engine writes the files (app/recording.py); this area only asks for them and shows what happened.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QStatusBar

from app.engine import Engine
from app.messages import Packet, RecordingInfo
from app.state import Preferences, format_elapsed, recording_paths, snapshot_path
from app.widgets import BannerStack
from app.wiring import Connections, every, make_action


class RecordingArea(QObject):
    """Timeline CSV (+ annotated video) recordings and PNG snapshots; ``rec_label`` goes in the status bar."""

    def __init__(self, *, engine: Engine, prefs: Preferences, banners: BannerStack, status_bar: QStatusBar,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine, self._prefs, self._banners, self._status_bar = engine, prefs, banners, status_bar
        self._info: RecordingInfo | None = None
        self._started = 0.0
        self._rows: int | None = None  # rows written, as the newest frame shown reported them
        self.record_button = QPushButton("● Record")
        self.snapshot_button = QPushButton("Snapshot")
        for w in (self.record_button, self.snapshot_button):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the window's shortcuts
        self.record_button.clicked.connect(self.toggle)
        self.snapshot_button.clicked.connect(self.snapshot)
        self.rec_label = QLabel("")
        self.rec_label.setStyleSheet("color:#ff6b6b; font-weight:bold;")
        self.rec_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.record_action = make_action(self, "&Record timeline", "R", self.toggle)
        self.snapshot_action = make_action(self, "&Snapshot (PNG)", "S", self.snapshot)
        self.open_folder_action = make_action(self, "Open record &folder", None, self.open_folder)
        self._clock = every(self, 250, self._on_clock_timeout)  # the elapsed time goes on while no frame comes (paused)
        self._links = Connections()
        self._links.connect(engine.recording_changed, self._on_engine_recording_changed)
        self._links.connect(engine.snapshot_saved, self._on_engine_snapshot_saved)

    def add_controls(self, row: QHBoxLayout) -> None:
        row.addWidget(self.record_button)
        row.addWidget(self.snapshot_button)

    @property
    def info(self) -> RecordingInfo | None:
        """The last recording state the engine reported (active, or finished with its message)."""
        return self._info

    def start_recording(self, csv_path: Path | None = None, *, force: bool = False) -> None:
        settings = self._prefs.current
        if csv_path is None:
            csv_path, video = recording_paths(settings.record_dir)
            video_path = video if settings.record_video else None
        else:
            video_path = Path(csv_path).with_suffix(".mp4") if settings.record_video else None
        self._engine.start_recording(Path(csv_path), video_path=video_path, force=force)

    def stop_recording(self) -> None:
        self._engine.stop_recording()

    @property
    def is_recording(self) -> bool:
        return bool(self._info and self._info.active)

    @Slot()
    def toggle(self) -> None:
        if self.is_recording:
            self.stop_recording()
        else:
            self.start_recording()

    @Slot()
    def snapshot(self) -> None:
        self._engine.snapshot(snapshot_path(self._prefs.current.record_dir))

    @Slot()
    def open_folder(self) -> None:
        folder = Path(self._prefs.current.record_dir).expanduser()
        if self._info and self._info.csv_path:
            folder = self._info.csv_path.parent
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def show(self, packet: Packet) -> None:
        self._rows = packet.recording_rows
        if self._rows is not None and self.is_recording:
            self._update_label(self._rows)

    def detach(self) -> None:
        self._clock.stop()
        self._links.disconnect_all()

    @Slot(object)
    def _on_engine_recording_changed(self, info: RecordingInfo) -> None:
        self._info = info
        if info.active:
            self._started = time.monotonic()
            self.record_button.setText("■ Stop")
            self.record_action.setText("Stop &recording")
            self._update_label(0)
            self._banners.clear("recorded")
            self._status_bar.showMessage(f"Recording to {info.csv_path.name}", 4000)  # the folder: Open record folder
            self.rec_label.setToolTip(f"recording to {info.csv_path}")
        else:
            self.record_button.setText("● Record")
            self.record_action.setText("&Record timeline")
            self.rec_label.setText("")
            if info.message:
                self._banners.show_message("recorded", "info", info.message, [("Open folder", self.open_folder)])

    @Slot(object)
    def _on_engine_snapshot_saved(self, path: Path) -> None:
        self._status_bar.showMessage(f"Snapshot saved: {path}", 5000)

    @Slot()
    def _on_clock_timeout(self) -> None:
        if self.is_recording and self._rows is not None:
            self._update_label(self._rows)

    def _update_label(self, rows: int) -> None:
        self.rec_label.setText(f"● REC {format_elapsed(time.monotonic() - self._started)} · {rows} rows")
