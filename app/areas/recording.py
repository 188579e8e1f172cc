"""Recording: the Record and Snapshot buttons, the REC label, the record folder.

A part of ``MainWindow`` (see app/window.py). The engine writes the files (app/recording.py); this
area only asks for them and shows what happened.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QHBoxLayout, QPushButton

from app.messages import RecordingInfo
from app.state import format_elapsed, recording_paths, snapshot_path


class RecordingArea:
    """Timeline CSV (+ annotated video) recordings and PNG snapshots."""

    def _build_record_controls(self, controls: QHBoxLayout) -> None:
        self.record_button = QPushButton("● Record")
        self.snapshot_button = QPushButton("Snapshot")
        for w in (self.record_button, self.snapshot_button):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the window's shortcuts
        controls.addWidget(self.record_button)
        controls.addWidget(self.snapshot_button)
        self.record_button.clicked.connect(self._on_record_action_triggered)
        self.snapshot_button.clicked.connect(self._on_snapshot_action_triggered)

    def start_recording(self, csv_path: Path | None = None, *, force: bool = False) -> None:
        if csv_path is None:
            csv_path, video = recording_paths(self.settings.record_dir)
            video_path = video if self.settings.record_video else None
        else:
            video_path = Path(csv_path).with_suffix(".mp4") if self.settings.record_video else None
        self.engine.start_recording(Path(csv_path), video_path=video_path, force=force)

    def stop_recording(self) -> None:
        self.engine.stop_recording()

    @property
    def recording(self) -> RecordingInfo | None:
        """The last recording state the engine reported (active, or finished with its message)."""
        return self._recording

    @property
    def is_recording(self) -> bool:
        return bool(self._recording and self._recording.active)

    @Slot(object)
    def _on_engine_recording_changed(self, info: RecordingInfo) -> None:
        self._recording = info
        if info.active:
            self._record_started = time.monotonic()
            self._clear_markers()  # the timeline shows this recording's markers
            self.record_button.setText("■ Stop")
            self.record_action.setText("Stop &recording")
            self._update_record_label(0)
            self._clear_problem("recorded")
            self.statusBar().showMessage(f"Recording to {info.csv_path}", 4000)
        else:
            self.record_button.setText("● Record")
            self.record_action.setText("&Record timeline")
            self.rec_label.setText("")
            if info.message:
                self._show_banner("recorded", "info", info.message, [("Open folder", self._on_open_folder_action_triggered)])

    @Slot(object)
    def _on_engine_snapshot_saved(self, path: Path) -> None:
        self.statusBar().showMessage(f"Snapshot saved: {path}", 5000)

    @Slot()
    def _on_record_action_triggered(self) -> None:
        if self.is_recording:
            self.stop_recording()
        else:
            self.start_recording()

    @Slot()
    def _on_snapshot_action_triggered(self) -> None:
        self.engine.snapshot(snapshot_path(self.settings.record_dir))

    @Slot()
    def _on_open_folder_action_triggered(self) -> None:
        folder = Path(self.settings.record_dir).expanduser()
        if self._recording and self._recording.csv_path:
            folder = self._recording.csv_path.parent
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def _update_record_label(self, rows: int) -> None:
        elapsed = format_elapsed(time.monotonic() - self._record_started)
        self.rec_label.setText(f"● REC {elapsed} · {rows} rows")
