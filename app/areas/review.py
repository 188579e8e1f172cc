"""Review a recorded session: its video, the whole timeline with markers, the faces' bars for the frame shown.

``dan-fer app --review OUT.csv`` or File → Open recording…. The recording is read by the Qt-free
``dan_core.pipeline.review.Session``; this window only shows it. Clicking or dragging on the
timeline seeks, ←/→ step a frame, the marker list jumps to a marker; S saves a snapshot, I and O
set the in and out points and E exports that span as an annotated video.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.messages import AppError
from app.state import Preferences, snapshot_path
from app.widgets import ProbabilityPanel, VideoView, dark_palette
from app.widgets.review_timeline import ReviewTimeline
from app.wiring import make_action
from dan_core.errors import DanFerError
from dan_core.pipeline.review import Session


class ReviewWindow(QMainWindow):
    """One recording under review. ``position`` is the index of the recorded frame shown."""

    shown = Signal(int)  # the position shown (tests)

    def __init__(self, csv_path: str | Path, *, snapshot_dir: str | Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = Session(csv_path)  # DanFerError: the caller says it in one line
        s = self.session
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir else Path(csv_path).parent
        self.position = 0
        self.in_pos: int | None = None
        self.out_pos: int | None = None
        self.face_id: int | None = (s.face_ids() or [None])[0]
        self.setWindowTitle(f"dan-fer review · {Path(csv_path).name}" + ("" if s.complete else " (run stopped early)"))
        self.setPalette(dark_palette())
        self.setAutoFillBackground(True)
        self._build()
        self.timeline.set_markers([(e.time_s, e.label) for e in s.events])
        self._show_face_series()
        self.show_position(0)
        self.resize(1200, 780)

    # ------------------------------------------------------------------------------------- building
    def _build(self) -> None:
        s = self.session
        self.view = VideoView()
        if s.video_path is None:
            self.view.set_placeholder("No video for this recording (the source named in its sidecar is not here)")
        self.probs = ProbabilityPanel()
        self.probs.set_classes(s.class_names, {k: tuple(v) for k, v in s.colors.items()})
        self.probs.face_clicked.connect(self._on_probs_face_clicked)
        self.markers = QListWidget()
        self.markers.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for e in s.events:
            item = QListWidgetItem(f"{e.time_s:8.2f} s  {e.label}  ({e.source})")
            item.setData(Qt.ItemDataRole.UserRole, e.time_s)
            self.markers.addItem(item)
        self.markers.itemClicked.connect(self._on_markers_item_clicked)
        self.info = QLabel()
        self.info.setWordWrap(True)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.probs)
        side_layout.addWidget(QLabel("Markers (click to jump)"))
        side_layout.addWidget(self.markers, 1)
        side_layout.addWidget(self.info)
        side.setMaximumWidth(380)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.view)
        top.addWidget(side)
        top.setStretchFactor(0, 1)
        self.timeline = ReviewTimeline()
        self.timeline.seek_requested.connect(self._on_timeline_seek_requested)
        controls = QHBoxLayout()
        self.position_label = QLabel()
        buttons = []
        for text, key, slot in (("◀ Frame", "Left", self.step_back), ("Frame ▶", "Right", self.step_forward),
                                ("In (I)", "I", self.set_in), ("Out (O)", "O", self.set_out),
                                ("Export clip… (E)", "E", self._on_export_action_triggered), ("Snapshot (S)", "S", self.snapshot)):
            b = QPushButton(text)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(slot)
            buttons.append(b)
            self.addAction(make_action(self, text, key, slot))
        for b in buttons:
            controls.addWidget(b)
        controls.addStretch(1)
        controls.addWidget(self.position_label)
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.addLayout(controls)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.timeline)
        split.setStretchFactor(0, 1)
        split.setSizes([540, 200])
        outer.addWidget(split, 1)
        self.setCentralWidget(central)
        s_text = f"{len(s)} frames, {s.duration_s:.1f} s, {len(s.events)} markers"
        s_text += f"; video: {s.video_path.name} ({s.video_kind})" if s.video_path else "; no video"
        if not s.complete:
            s_text += "; the run stopped early (no totals in its sidecar)"
        self.info.setText(s_text)

    def _show_face_series(self) -> None:
        s = self.session
        if self.face_id is None:
            return
        t, p = s.series(self.face_id)
        self.timeline.set_series(t, p, s.class_names, {k: tuple(v) for k, v in s.colors.items()},
                                 (float(s.times[0]), float(s.times[-1])))

    # ------------------------------------------------------------------------------------ showing
    def show_position(self, pos: int) -> None:
        s = self.session
        pos = int(np.clip(pos, 0, len(s) - 1))
        self.position = pos
        img = s.image(pos)
        if img is not None:
            self.view.set_frame(img, (img.shape[1], img.shape[0]))
        faces = s.faces_at(pos)
        self.probs.set_faces([(f.face_id, f.probs, f.dominant, f.confidence) for f in faces], self.face_id)
        t = float(s.times[pos])
        self.timeline.set_cursor(t)
        self.position_label.setText(f"frame {int(s.frames[pos])} · {t:.2f} s / {float(s.times[-1]):.2f} s")
        self.shown.emit(pos)

    @property
    def current_image(self) -> np.ndarray | None:
        return self.view._array

    def seek(self, time_s: float) -> None:
        self.show_position(self.session.position_at(time_s))

    @Slot()
    def step_forward(self) -> None:
        self.show_position(self.position + 1)

    @Slot()
    def step_back(self) -> None:
        self.show_position(self.position - 1)

    @Slot(float)
    def _on_timeline_seek_requested(self, time_s: float) -> None:
        self.seek(time_s)

    @Slot(QListWidgetItem)
    def _on_markers_item_clicked(self, item: QListWidgetItem) -> None:
        self.seek(float(item.data(Qt.ItemDataRole.UserRole)))

    @Slot(int)
    def _on_probs_face_clicked(self, face_id: int) -> None:
        self.face_id = face_id
        self._show_face_series()
        self.show_position(self.position)

    # --------------------------------------------------------------------------- snapshot and clip
    @Slot()
    def set_in(self) -> None:
        self.in_pos = self.position
        self._show_in_out()

    @Slot()
    def set_out(self) -> None:
        self.out_pos = self.position
        self._show_in_out()

    def _show_in_out(self) -> None:
        t = self.session.times
        self.timeline.set_in_out(None if self.in_pos is None else float(t[self.in_pos]),
                                 None if self.out_pos is None else float(t[self.out_pos]))

    @Slot()
    def snapshot(self) -> Path | None:
        img = self.current_image
        if img is None:
            self.statusBar().showMessage("Nothing to snapshot: no video for this recording", 4000)
            return None
        import cv2

        path = snapshot_path(self.snapshot_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".png", img)
        try:
            if not ok:
                raise OSError("cannot encode")
            path.write_bytes(buf.tobytes())
        except OSError as exc:
            self.statusBar().showMessage(f"Snapshot not saved: {path}: {exc}", 6000)
            return None
        self.statusBar().showMessage(f"Snapshot saved: {path}", 4000)
        return path

    def export_clip(self, path: str | Path) -> int:
        """The span between the in and out points (default: start and end) as an annotated video; frames written."""
        start = 0 if self.in_pos is None else self.in_pos
        stop = len(self.session) - 1 if self.out_pos is None else self.out_pos
        n = self.session.export_clip(start, stop, path)
        self.show_position(self.position)  # the clip moved the video's read position
        self.statusBar().showMessage(f"Clip saved: {path} ({n} frames)", 6000)
        return n

    @Slot()
    def _on_export_action_triggered(self) -> None:
        default = str(Path(self.session.csv_path).with_name(Path(self.session.csv_path).stem + "-clip.mp4"))
        path, _ = QFileDialog.getSaveFileName(self, "Export clip", default, "Videos (*.mp4)")
        if path:
            try:
                self.export_clip(path)
            except DanFerError as exc:
                self.statusBar().showMessage(f"Clip not saved: {exc}", 8000)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.session.close()
        super().closeEvent(event)


class ReviewArea(QObject):
    """File → Open recording… opens a ``ReviewWindow`` beside the live view. ``window`` is the file dialog's parent."""

    failed = Signal(object)  # AppError: the recording cannot be reviewed

    def __init__(self, *, prefs: Preferences, window: QWidget) -> None:
        super().__init__(window)
        self._prefs = prefs
        self._window = window
        self._reviews: list[ReviewWindow] = []
        self.open_action = make_action(self, "Open r&ecording…", None, self.choose_recording)

    @Slot()
    def choose_recording(self) -> None:
        start = str(Path(self._prefs.current.record_dir).expanduser())
        path, _ = QFileDialog.getOpenFileName(self._window, "Open a recording", start, "Timeline CSV (*.csv);;All files (*)")
        if path:
            self.open_review(path)

    def open_review(self, path: str | Path) -> ReviewWindow | None:
        try:
            window = ReviewWindow(path, snapshot_dir=self._prefs.current.record_dir)
        except DanFerError as exc:
            self.failed.emit(AppError("source", f"cannot review {Path(path).name}: {exc}"))
            return None
        self._reviews = [w for w in self._reviews if w.isVisible()] + [window]
        window.show()
        return window


def run_review(csv_path: str, *, screenshot: str | None = None, exit_after: float | None = None,
               size: tuple[int, int] | None = None) -> int:
    """``dan-fer app --review OUT.csv``: the review window alone (with --screenshot/--exit-after for automation).
    Ctrl+C, SIGTERM and SIGHUP close it like its close button (exit status 128 + the signal)."""
    import sys

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.signal_stop import SignalStop

    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    qapp.setStyle("Fusion")
    window = ReviewWindow(csv_path)  # DanFerError: one line from the command line
    if size:
        window.resize(*size)
    window.show()
    status = 0
    if screenshot or exit_after is not None:
        def finish() -> None:
            nonlocal status
            if screenshot:
                QApplication.processEvents()
                if not window.grab().save(str(screenshot)):
                    print(f"dan-fer app: cannot write the screenshot {screenshot}", file=sys.stderr)
                    status = 1
            window.close()
            qapp.quit()

        QTimer.singleShot(int((exit_after or 0.5) * 1000), finish)
    stop = SignalStop(window, doing="closing the review")  # was: SIGTERM ignored, a traceback at the next click
    try:
        qapp.exec()
    finally:
        stop.restore()
    return 128 + stop.signum if stop.signum else status
