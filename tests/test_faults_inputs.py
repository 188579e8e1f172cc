"""Fault suite, part 1: corrupt and hostile inputs give a result or one clear line, never a traceback.

Property-based (hypothesis) for the two readers that take files from anywhere: the timeline CSV
reader and the checkpoint loader. The CLI cases run the real commands in-process.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace as NS

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dan_core import cli
from dan_core.errors import DanFerError
from dan_core.model.dan import DAN, DANConfig
from dan_core.paths import MODELS_DIR
from dan_core.pipeline.timeline import FIXED_COLUMNS, TimelineWriter, load_timeline, read_timeline
from dan_core.training.checkpoint import load_model, save_model

pytestmark = pytest.mark.faults

NAMES = ("neutral", "happiness", "surprise")
HEADER = ",".join([*FIXED_COLUMNS, *NAMES, "dominant", "confidence"]) + "\n"
# hypothesis: no example database in the checkout, no deadline on a shared 2-core machine
PROPERTY = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PROPERTY_MODEL = settings(PROPERTY, max_examples=40)  # examples that get far enough build a real DAN (~0.5 s each)


def _cli(args: list, capsys) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert "Traceback" not in err
    return lines[0]


def _good_timeline(path: Path, frames: int = 50) -> Path:
    with TimelineWriter(path, NAMES, meta={"source": "clip.mp4"}, force=True) as w:
        for i in range(frames):
            face = NS(face_id=1, box=(10, 20, 30, 40), probs=np.array([0.2, 0.5, 0.3], np.float32), dominant="happiness",
                      confidence=0.5)
            w.write(NS(index=i, time_s=i / 25, faces=[face]))
    return path


# ----------------------------------------------------------------------------- timeline CSV (bug 1)
BAD_ROWS = {
    "empty fields": "," * (len(FIXED_COLUMNS) + len(NAMES) + 1),
    "text everywhere": ",".join(["abc"] * (len(FIXED_COLUMNS) + len(NAMES) + 2)),
    "fractional frame": "2.000,60.5,1,10,20,30,40,0.2000,0.5000,0.3000,happiness,0.5000",
    "nan probability": "2.000,61,1,10,20,30,40,nan,0.5000,0.3000,happiness,0.5000",
    "unknown class": "2.000,62,1,10,20,30,40,0.2000,0.5000,0.3000,joy,0.5000",
}


@pytest.mark.parametrize("bad", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_report_skips_a_bad_row_with_one_warning(tmp_path, capsys, bad):
    """The issue's `(head -50 good.csv; printf ',,,,...\\n') > g.csv; dan-fer report g.csv`: was a ValueError traceback."""
    path = _good_timeline(tmp_path / "g.csv")
    with path.open("a", encoding="utf-8") as f:
        f.write(bad + "\n")
    rc, out, err = _cli(["report", path, "--out", tmp_path / "g.png"], capsys)
    assert rc == 0
    assert "skipped 1 row" in _one_line(err) and "line 52" in err
    assert "50 rows" in out and (tmp_path / "g.png").stat().st_size > 1000


def test_report_with_nothing_usable_is_one_error(tmp_path, capsys):
    path = tmp_path / "g.csv"
    path.write_text(HEADER + BAD_ROWS["text everywhere"] + "\n" + BAD_ROWS["empty fields"] + "\n", encoding="utf-8")
    rc, out, err = _cli(["report", path, "--out", tmp_path / "g.png"], capsys)
    assert rc == 2 and "no usable rows" in _one_line(err) and "2 with missing or bad values" in err
    assert not (tmp_path / "g.png").exists()


def test_timeline_bad_rows_are_counted_and_good_ones_kept(tmp_path):
    path = _good_timeline(tmp_path / "t.csv", frames=5)
    text = path.read_text().splitlines(keepends=True)
    text.insert(3, BAD_ROWS["fractional frame"] + "\n")
    path.write_text("".join(text))
    t = load_timeline(path)
    assert t.rows == 5 and t.bad_rows == 1 and t.first_bad_line == 4
    assert t.cols["frame"].tolist() == [0, 1, 2, 3, 4] and t.cols["frame"].dtype == np.int64
    assert "skipped 1 row" in t.warning()


def _check_timeline_or_error(path: Path) -> None:
    try:
        t = load_timeline(path)
    except DanFerError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    n = t.rows
    assert all(len(v) == n for v in t.cols.values())
    assert t.classes and set(t.classes) <= set(t.cols)
    for name in ("time_s", *t.classes, "confidence"):
        assert np.isfinite(t.cols[name]).all()
    assert set(t.cols["dominant"].tolist()) <= set(t.classes)
    assert isinstance(t.meta, dict)


@PROPERTY
@given(data=st.binary(max_size=2000))
def test_any_bytes_give_a_timeline_or_one_clean_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_bytes(data)
    _check_timeline_or_error(path)


FIELD = st.one_of(st.text(max_size=12), st.integers(-10**20, 10**20).map(str),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(NAMES), st.just(""))


@PROPERTY
@given(rows=st.lists(st.lists(FIELD, min_size=0, max_size=14), max_size=12), sidecar=st.binary(max_size=60),
       tail=st.text(max_size=20))
def test_any_rows_under_a_good_header_give_a_timeline_or_one_clean_error(tmp_path_factory, rows, sidecar, tail):
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    folder = tmp_path_factory.mktemp("csv")
    path = folder / "t.csv"
    path.write_text(HEADER + buf.getvalue() + tail, encoding="utf-8")
    (folder / "t.csv.json").write_bytes(sidecar)  # a broken sidecar is ignored, never fatal
    _check_timeline_or_error(path)


@PROPERTY
@given(cuts=st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=0, max_size=8)), min_size=1, max_size=6))
def test_a_damaged_real_timeline_gives_a_timeline_or_one_clean_error(tmp_path_factory, cuts):
    folder = tmp_path_factory.mktemp("csv")
    data = bytearray(_good_timeline(folder / "t.csv", frames=8).read_bytes())
    for pos, junk in cuts:
        pos %= len(data) + 1
        data[pos:pos + len(junk)] = junk  # overwrite bytes in place
    (folder / "t.csv").write_bytes(bytes(data))
    _check_timeline_or_error(folder / "t.csv")


def test_read_timeline_keeps_its_three_values(tmp_path):
    classes, cols, meta = read_timeline(_good_timeline(tmp_path / "t.csv", frames=3))
    assert classes == list(NAMES) and cols["frame"].tolist() == [0, 1, 2] and meta["source"] == "clip.mp4"


# ----------------------------------------------------------------------------- checkpoints (bug 2)
def _tiny_checkpoint(path: Path, **changes) -> Path:
    model = DAN(DANConfig(num_heads=2, input_size=32, color="gray"))
    save_model(model, path)
    if changes:
        ckpt = torch.load(path, weights_only=True)
        ckpt.update(changes)
        torch.save(ckpt, path)
    return path


MALFORMED = {
    "num_heads is text": {"model": {}, "config": {"num_heads": "abc"}},
    "config is text": {"model": {}, "config": "notadict"},
    "model is a tensor": {"model": torch.zeros(3), "config": {}},
    "class_names is a number": {"model": {}, "config": {"class_names": 5}},
    "a million heads": {"model": {}, "config": {"num_heads": 10**6}},
    "negative size": {"model": {}, "config": {"input_size": -4}},
    "std of zero": {"model": {}, "config": {"std": [0, 0, 0]}},
    "weights are text": {"model": {"fc.weight": "x"}, "config": {}},
    "a list, not a dict": [1, 2, 3],
}


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_checkpoint_is_one_line_naming_the_file(tmp_path, content):
    path = tmp_path / "bad.pt"
    torch.save(content, path)
    with pytest.raises(DanFerError) as info:
        load_model(path)
    assert "bad.pt" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("command", ["export", "eval", "analyze"])
def test_malformed_checkpoint_in_every_command_is_one_line(tmp_path, capsys, media_dir, command):
    path = tmp_path / "bad.pt"
    torch.save(MALFORMED["num_heads is text"], path)
    if command == "export":
        args = ["export", path, "--out", tmp_path / "m.onnx"]
    elif command == "eval":
        for cls in ("happiness", "neutral"):
            (tmp_path / "faces" / cls).mkdir(parents=True)
            shutil.copy(media_dir / "whitehouse_obama_portrait_smiling.jpg", tmp_path / "faces" / cls / "a.jpg")
        args = ["eval", "--model", path, "--dataset", "folder", "--data", tmp_path / "faces", "--json"]
    else:
        args = ["analyze", media_dir / "mediapipe_testdata_sergey.png", "--csv", tmp_path / "t.csv", "--model", path,
                "--backend", "torch", "--no-progress"]
    rc, out, err = _cli(args, capsys)
    assert rc == 2 and "bad.pt" in _one_line(err) and "num_heads" in err


def test_pickled_objects_are_refused_without_pointing_at_the_unsafe_option(tmp_path):
    path = tmp_path / "unsafe.pt"
    with path.open("wb") as f:
        pickle.dump({"model": np.random.default_rng(0)}, f)
    with pytest.raises(DanFerError) as info:
        load_model(path)
    text = str(info.value)
    assert "unsafe.pt" in text and "weights_only" not in text and "\n" not in text


def test_wrong_shape_names_the_first_mismatch(tmp_path):
    path = _tiny_checkpoint(tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["class_names"] = ["a", "b"]
    torch.save(ckpt, path)
    with pytest.raises(DanFerError, match=r"size mismatch for fc\.weight: \[8, 512\] in the file, \[2, 512\]"):
        load_model(path)


def test_a_good_checkpoint_still_loads(tmp_path):
    model = load_model(_tiny_checkpoint(tmp_path / "m.pt"))
    assert model.config.num_heads == 2 and model(torch.rand(1, 3, 32, 32)).logits.shape == (1, 8)


@PROPERTY
@given(data=st.binary(max_size=3000))
def test_any_bytes_give_a_model_or_one_clean_checkpoint_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("ckpt") / "x.pt"
    path.write_bytes(data)
    with pytest.raises(DanFerError) as info:
        load_model(path)
    assert "\n" not in str(info.value)


SMALL_TENSOR = st.builds(lambda shape: torch.zeros(shape), st.lists(st.integers(0, 3), max_size=3).map(tuple))
VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(), st.text(max_size=8), SMALL_TENSOR),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
CONFIG_KEYS = st.sampled_from(list(DANConfig.__dataclass_fields__))


@PROPERTY_MODEL
@given(config=st.dictionaries(CONFIG_KEYS, VALUE, max_size=5), state=st.one_of(VALUE, st.dictionaries(st.text(max_size=20),
                                                                                                    SMALL_TENSOR, max_size=4)),
       extra=st.dictionaries(st.sampled_from(["ema", "prefer_ema", "class_names"]), VALUE, max_size=2))
def test_any_checkpoint_dict_gives_a_model_or_one_clean_error(tmp_path_factory, config, state, extra):
    path = tmp_path_factory.mktemp("ckpt") / "x.pt"
    torch.save({"config": config, "model": state, **extra}, path)
    try:
        model = load_model(path)
    except DanFerError as exc:
        assert "\n" not in str(exc) and "x.pt" in str(exc)
    else:
        assert isinstance(model, DAN)


@PROPERTY_MODEL
@given(cuts=st.lists(st.tuples(st.integers(0, 10**9), st.binary(min_size=1, max_size=16)), min_size=1, max_size=4))
def test_a_damaged_real_checkpoint_gives_a_model_or_one_clean_error(tmp_path_factory, tiny_checkpoint_bytes, cuts):
    data = bytearray(tiny_checkpoint_bytes)
    for pos, junk in cuts:
        pos %= len(data)
        data[pos:pos + len(junk)] = junk
    path = tmp_path_factory.mktemp("ckpt") / "x.pt"
    path.write_bytes(bytes(data))
    try:
        load_model(path)
    except DanFerError as exc:
        assert "\n" not in str(exc)


@pytest.fixture(scope="module")
def tiny_checkpoint_bytes(tmp_path_factory) -> bytes:
    return _tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt").read_bytes()


def test_import_checkpoint_refuses_to_overwrite_without_force(tmp_path, capsys):
    from dan_core.training.checkpoint import _BACKBONE_INDEX

    ours = DAN(DANConfig(class_names=("a",) * 7)).state_dict()
    to_official = {f"backbone.{name}.": f"features.{index}." for index, name in _BACKBONE_INDEX.items()}
    state = {}
    for key, value in ours.items():  # our layout renamed back to the paper's (features.N, cat_headI)
        for prefix, official_prefix in to_official.items():
            key = key.replace(prefix, official_prefix) if key.startswith(prefix) else key
        state["cat_head" + key[len("heads."):] if key.startswith("heads.") else key] = value
    official = tmp_path / "rafdb_epoch21.pth"
    torch.save({"model_state_dict": state}, official)
    out = tmp_path / "rafdb.pt"
    out.write_bytes(b"keep me")
    rc, _, err = _cli(["import-checkpoint", official, "--dataset", "rafdb", "--out", out], capsys)
    assert rc == 2 and "--force" in _one_line(err) and out.read_bytes() == b"keep me"
    rc, stdout, err = _cli(["import-checkpoint", official, "--dataset", "rafdb", "--out", out, "--force"], capsys)
    assert rc == 0, err
    assert load_model(out).config.train_dataset == "rafdb"


# ----------------------------------------------------------------------------- small CLI faults
def test_eval_json_is_strict_json_with_null_for_a_missing_loss(tmp_path, capsys, media_dir):
    for cls in ("happiness", "neutral"):
        (tmp_path / cls).mkdir()
        shutil.copy(media_dir / "whitehouse_obama_portrait_smiling.jpg", tmp_path / cls / "a.jpg")
    model = sorted(MODELS_DIR.glob("*.onnx"))[0]
    rc, out, err = _cli(["eval", "--model", model, "--dataset", "folder", "--data", tmp_path, "--json"], capsys)
    assert rc == 0, err

    def refuse(name):
        raise AssertionError(f"{name} is not JSON")

    result = json.loads(out, parse_constant=refuse)
    assert result["loss"] is None and result["n"] == 2


def test_csv_path_that_is_a_folder_says_so_before_force(tmp_path, capsys, media_dir):
    folder = tmp_path / "out.csv"
    folder.mkdir()
    rc, _, err = _cli(["analyze", media_dir / "mediapipe_testdata_sergey.png", "--csv", folder, "--no-progress"], capsys)
    assert rc == 2 and "is a folder" in _one_line(err) and "--force" not in err
