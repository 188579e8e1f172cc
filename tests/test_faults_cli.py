"""Fault suite, part 6: the command line against its own files and its readers (real processes where the terminal matters).

An output that is the input, out-of-range arguments, a model given to ``train --resume``, a reader
that goes away (``| head``), and ONNX Runtime's telemetry.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from dan_core import cli
from dan_core.commands.batch import output_names
from dan_core.paths import MODELS_DIR
from dan_core.pipeline.timeline import read_timeline, sidecar_path

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent
PHOTO = "nasa_astronaut_eileen_collins.png"


def _env(landmarker_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAN_FER_DEBUG", "QT_QPA_PLATFORM_PLUGIN_PATH")}
    env.update(PYTHONPATH=str(ROOT), DAN_FER_NO_DOWNLOAD="1", DAN_FER_LANDMARKER=str(landmarker_path), **extra)
    return env


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, f"expected one line, got:\n{err}"
    return lines[0]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clip(tmp_path_factory, make_clip) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "v.mp4", 0, 90)


# ----------------------------------------------------------------------------- an output that is the input (bug 5)
@pytest.mark.parametrize("how", ["same path", "symbolic link", "hard link", "annotated"])
def test_analyze_never_writes_over_its_input(tmp_path, clip, landmarker_path, capsys, how):
    video = tmp_path / "v.mp4"
    video.write_bytes(clip.read_bytes())
    before = _digest(video)
    out = {"same path": video, "symbolic link": tmp_path / "link.csv", "hard link": tmp_path / "hard.csv"}.get(how)
    if how == "symbolic link":
        out.symlink_to(video)
    elif how == "hard link":
        os.link(video, out)
    args = ["analyze", str(video), "--csv", str(out or tmp_path / "t.csv"), "--force", "--no-progress", "--landmarker",
            str(landmarker_path)]
    if how == "annotated":
        args += ["--annotated", str(video)]
    rc = cli.main(args)
    err = capsys.readouterr().err
    assert rc == 2 and "is the input" in _one_line(err) and str(video) in err  # was: exit 0, a 688-byte CSV in its place
    assert _digest(video) == before


def test_batch_never_writes_over_an_input(tmp_path, clip, landmarker_path, capsys):
    video = tmp_path / "v.mp4"
    video.write_bytes(clip.read_bytes())
    out = tmp_path / "R"
    out.mkdir()
    os.link(video, output_names([video], out)[0])  # the output's name is a hard link to the video
    before = _digest(video)
    rc = cli.main(["batch", str(video), "--out-dir", str(out), "--force", "--no-progress", "--landmarker", str(landmarker_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "is the input" in _one_line(err)
    assert _digest(video) == before


def _timeline(path: Path) -> Path:
    import numpy as np

    from dan_core.pipeline.timeline import TimelineWriter

    face = NS(face_id=1, box=(1, 2, 3, 4), probs=np.array([0.3, 0.7], np.float32), dominant="happiness", confidence=0.7)
    with TimelineWriter(path, ("neutral", "happiness"), meta={"source": "clip.mp4"}, force=True) as w:
        for i in range(30):
            w.write(NS(index=i, time_s=i / 25, faces=[face]))
    return path


@pytest.mark.parametrize("how", ["same path", "symbolic link"])
def test_report_never_writes_over_its_timeline(tmp_path, capsys, how):
    csv_path = _timeline(tmp_path / "t.csv")
    before = _digest(csv_path)
    out = csv_path if how == "same path" else tmp_path / "picture.png"
    if how == "symbolic link":
        out.symlink_to(csv_path)
    rc = cli.main(["report", str(csv_path), "--out", str(out), "--force"])
    err = capsys.readouterr().err
    assert rc == 2 and "is the input" in _one_line(err)
    assert _digest(csv_path) == before


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from dan_core.model.dan import DAN, DANConfig
    from dan_core.training.checkpoint import save_model

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_model(DAN(DANConfig(num_heads=2, input_size=32, color="gray")), path)
    return path


@pytest.mark.parametrize("suffix", [".pt", ".onnx"])
def test_export_never_writes_over_its_checkpoint(tmp_path, tiny_checkpoint, capsys, suffix):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(tiny_checkpoint.read_bytes())
    out = ckpt if suffix == ".pt" else tmp_path / "m.onnx"
    if suffix == ".onnx":
        out.symlink_to(ckpt)
    before = _digest(ckpt)
    rc = cli.main(["export", str(ckpt), "--out", str(out), "--force"])
    err = capsys.readouterr().err
    assert rc == 2 and "is the input" in _one_line(err)
    assert _digest(ckpt) == before


def test_export_refuses_to_overwrite_without_force_and_writes_whole_files(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"an older model")
    rc = cli.main(["export", str(tiny_checkpoint), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "exists; pass --force" in _one_line(err) and out.read_bytes() == b"an older model"  # was: overwritten
    assert cli.main(["export", str(tiny_checkpoint), "--out", str(out), "--force", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(out) and out.stat().st_size == report["bytes"] > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # written under a temporary name, then renamed


# ----------------------------------------------------------------------------- arguments out of range
@pytest.mark.parametrize("command, flag, value", [
    ("analyze", "--opacity", "5"), ("analyze", "--threads", "-2"), ("analyze", "--max-missed", "-1"),
    ("analyze", "--every", "0"), ("analyze", "--smoothing", "1"), ("analyze", "--max-faces", "0"), ("analyze", "--opacity", "nan"),
    ("batch", "--workers", "-1"), ("report", "--min-frames", "0"),
])
def test_an_argument_out_of_range_is_one_line(tmp_path, media_dir, landmarker_path, capsys, command, flag, value):
    inputs = {"analyze": [str(media_dir / PHOTO), "--csv", str(tmp_path / "t.csv"), "--landmarker", str(landmarker_path)],
              "batch": [str(media_dir / PHOTO), "--out-dir", str(tmp_path / "R")],
              "report": [str(_timeline(tmp_path / "t.csv")), "--segments"]}[command]
    with pytest.raises(SystemExit) as info:  # was: accepted (and the run went on)
        cli.main([command, *inputs, flag, value, "--no-progress"] if command != "report" else [command, *inputs, flag, value])
    line = _one_line(capsys.readouterr().err)
    assert info.value.code == 2 and line.startswith(f"dan-fer {command}: error: argument {flag}: ") and value in line


# ----------------------------------------------------------------------------- train --resume with a model (bug 6)
def test_train_resume_from_a_model_file_says_to_use_weights(tmp_path, capsys):
    model = MODELS_DIR / "dan_ferplus_112.pt"
    rc = cli.main(["train", "--dataset", "ferplus", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--resume", str(model)])
    line = _one_line(capsys.readouterr().err)  # was: KeyError: 'train_config'
    assert rc == 2 and "is a model, not a training checkpoint" in line and f"--weights {model}" in line


# ----------------------------------------------------------------------------- a reader that goes away
def test_json_into_a_closed_pipe_is_quiet(tmp_path, clip, landmarker_path):
    """``analyze ... --json | head -c0``: the run finishes, no traceback, the shell's 141."""
    csv_path = tmp_path / "t.csv"
    proc = subprocess.Popen([sys.executable, "-m", "dan_core", "analyze", str(clip), "--csv", str(csv_path), "--json", "--no-progress"],
                            env=_env(landmarker_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # head -c0 reads nothing and leaves
    with proc.stderr:
        err = proc.stderr.read().decode()
    proc.wait(300)
    assert proc.returncode == 141 and err == ""  # was: a BrokenPipeError traceback, exit 1
    meta = json.loads(sidecar_path(csv_path).read_text())
    assert meta["summary"]["interrupted"] is False and meta["summary"]["frames"] == 90  # all of it was analysed


def test_progress_into_a_closed_pipe_is_an_interruption(tmp_path, clip, landmarker_path):
    """``analyze ... 2>&1 | head``: the run stops, and the sidecar says it was interrupted (not a finished run)."""
    csv_path = tmp_path / "t.csv"
    proc = subprocess.Popen([sys.executable, "-m", "dan_core", "analyze", str(clip), "--csv", str(csv_path)],
                            env=_env(landmarker_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    got = b""
    deadline = time.monotonic() + 120
    while b"frame" not in got and time.monotonic() < deadline:  # the progress bar has started
        got += proc.stdout.read1(4096)
    proc.stdout.close()  # head has its lines and leaves
    proc.wait(120)
    assert proc.returncode == 141  # was: exit 1 and a traceback
    meta = json.loads(sidecar_path(csv_path).read_text())
    assert meta["summary"]["interrupted"] is True and meta["summary"]["signal"] == "SIGPIPE"  # was: a plain "finished"
    _, cols, _ = read_timeline(csv_path)
    assert meta["rows"] == len(cols["frame"]) and csv_path.read_bytes().endswith(b"\n")


# ----------------------------------------------------------------------------- telemetry
def test_onnx_runtime_writes_no_telemetry(tmp_path, media_dir, landmarker_path, tiny_checkpoint):
    """Nothing under HOME or the cache: ONNX Runtime would append events (and a device id) to ~/.cache/Microsoft/.
    (MediaPipe imports matplotlib, which keeps its own font list: MPLCONFIGDIR puts that elsewhere.)"""
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    cache.mkdir()
    env = _env(landmarker_path, HOME=str(home), XDG_CACHE_HOME=str(cache), MPLCONFIGDIR=str(tmp_path / "matplotlib"))
    env.pop("ORT_DISABLE_TELEMETRY", None)
    runs = [["analyze", str(media_dir / PHOTO), "--csv", str(tmp_path / "t.csv"), "--no-progress"],
            ["export", str(tiny_checkpoint), "--out", str(tmp_path / "m.onnx")]]
    for args in runs:
        proc = subprocess.run([sys.executable, "-m", "dan_core", *args], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    written = [str(p.relative_to(tmp_path)) for p in (*home.rglob("*"), *cache.rglob("*"))]
    assert written == []  # was: cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}
