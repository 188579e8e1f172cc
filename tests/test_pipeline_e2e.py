"""End to end on the real media in ../shared/media with the shipped model and ../shared's landmarker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from dan_core import cli
from dan_core.errors import DanFerError
from dan_core.paths import default_model_path
from dan_core.pipeline import FaceResult, FrameResult, Pipeline, PipelineConfig
from dan_core.pipeline.sources import open_source
from dan_core.pipeline.timeline import load_timeline, read_timeline

VIDEO = "pexels_WolfgangLanger_emotions.mp4"
GROUP = "pexels_group_meeting.jpeg"
SINGLES = ("nasa_astronaut_eileen_collins.png", "mediapipe_testdata_sergey.png", "whitehouse_obama_portrait_smiling.jpg",
           "whitehouse_obama_speaking.jpg")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setenv("DAN_FER_NO_DOWNLOAD", "1")


@pytest.fixture(scope="module")
def model_path() -> Path:
    return default_model_path()


@pytest.fixture(scope="module")
def image_pipeline(model_path, landmarker_path):
    # the float model on every CPU (auto would take the int8 twin where the CPU has VNNI: tests/test_int8.py)
    with Pipeline(PipelineConfig(model=str(model_path), landmarker=str(landmarker_path), mode="image", max_faces=6,
                                 precision="fp32")) as p:
        yield p


def _media(media_dir: Path, name: str) -> Path:
    path = media_dir / name
    assert path.is_file(), f"{path} is missing from ../shared/media"
    return path


def _check_face(face: FaceResult, p: Pipeline, frame_shape) -> None:
    c = len(p.class_names)
    assert face.probs.shape == (c,) and face.probs.dtype == np.float32
    assert abs(float(face.probs.sum()) - 1.0) < 1e-3
    assert face.dominant == p.class_names[int(np.argmax(face.probs))] and face.confidence == pytest.approx(face.probs.max())
    assert face.landmarks.shape == (478, 2) and face.matrix.shape == (2, 3)
    assert face.attention.shape[0] == p.num_heads and face.attention.dtype == np.float32
    assert face.crop.shape == (p.input_size, p.input_size, 3) and face.crop.dtype == np.uint8
    x, y, w, h = face.box
    assert 0 <= x and 0 <= y and w > 10 and h > 10 and x + w <= frame_shape[1] and y + h <= frame_shape[0]


def test_pipeline_reports_what_it_runs(image_pipeline):
    p = image_pipeline
    assert p.backend in ("onnxruntime CPU", "onnxruntime CUDA") or p.backend.startswith("torch ")
    assert len(p.class_names) >= 2 and p.num_heads >= 1 and p.input_size >= 32
    assert p.model_name.endswith((".onnx", ".pt"))


@pytest.mark.parametrize("name", SINGLES)
def test_single_face_stills(image_pipeline, media_dir, name):
    img = cv2.imread(str(_media(media_dir, name)), cv2.IMREAD_UNCHANGED)  # the Sergey PNG keeps its alpha channel
    result = image_pipeline.process(img, 0.0)
    assert isinstance(result, FrameResult) and result.frame_size == (img.shape[1], img.shape[0])
    assert len(result.faces) == 1, f"{name}: {len(result.faces)} faces"
    _check_face(result.faces[0], image_pipeline, img.shape)
    for stage in ("landmarks", "align", "infer", "total"):
        assert result.timings[stage] >= 0.0


def test_grey_frame(image_pipeline, media_dir):
    img = cv2.imread(str(_media(media_dir, "nasa_astronaut_eileen_collins.png")), cv2.IMREAD_GRAYSCALE)
    result = image_pipeline.process(img, 0.0)
    assert len(result.faces) == 1


# the centres of the five faces in the group photo: left, blonde behind, the man looking down, right, the woman cut off above
GROUP_FACES = {"left": (227, 341), "blonde": (374, 94), "looking down": (688, 163), "right": (1025, 388), "cut off": (1032, 31)}


def _people(faces) -> set[str]:
    """Which of GROUP_FACES were found (a face's box centre within 70 pixels); fails on a face that is none of them."""
    found = []
    for f in faces:
        cx, cy = f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2
        near = [name for name, (x, y) in GROUP_FACES.items() if abs(cx - x) < 70 and abs(cy - y) < 70]
        assert len(near) == 1, f"a face at {f.box} that is none of the five"
        found += near
    assert len(found) == len(set(found)), f"a face found twice: {found}"
    return set(found)


def test_group_photo_has_several_faces(image_pipeline, media_dir):
    """The landmarker alone found 3 of the 5; the second look around its detector's faces adds the man looking down."""
    img = cv2.imread(str(_media(media_dir, GROUP)))
    result = image_pipeline.process(img, 0.0)
    assert _people(result.faces) >= {"left", "blonde", "looking down", "right"}
    ids = [f.face_id for f in result.faces]
    assert len(set(ids)) == len(ids)
    for f in result.faces:
        _check_face(f, image_pipeline, img.shape)


def test_a_lower_face_confidence_finds_all_five_and_no_false_face(model_path, landmarker_path, media_dir):
    """--min-face-confidence 0.2: the woman cut off by the top edge too (detector score 0.22), flagged 'edge'."""
    img = cv2.imread(str(_media(media_dir, GROUP)))
    config = PipelineConfig(model=str(model_path), landmarker=str(landmarker_path), mode="image", max_faces=8,
                            min_face_confidence=0.2)
    with Pipeline(config) as p:
        faces = p.process(img, 0.0).faces
    assert _people(faces) == set(GROUP_FACES)
    cut = next(f for f in faces if f.box[1] == 0)
    assert "edge" in cut.quality  # most of her landmarks lie above the picture


def test_video_has_a_face_in_nearly_every_frame_and_one_id(model_path, landmarker_path, media_dir):
    config = PipelineConfig(model=str(model_path), landmarker=str(landmarker_path), smoothing=0.6)
    with Pipeline(config) as p, open_source(_media(media_dir, VIDEO)) as src:
        results = []
        for i, frame in enumerate(src):
            if i % 6 == 0:  # every 6th frame keeps this test short; tracking still sees a continuous face
                results.append(p.process(frame.image_bgr, frame.time_s, index=frame.index))
    with_face = sum(bool(r.faces) for r in results)
    assert with_face >= 0.95 * len(results), f"{with_face}/{len(results)} sampled frames had a face"
    ids = {f.face_id for r in results for f in r.faces}
    assert len(ids) <= 2, f"one woman should keep one face ID, got {sorted(ids)}"
    assert all(len(r.faces) == 1 for r in results if r.faces)


def test_bad_model_files(tmp_path, landmarker_path):
    with pytest.raises(DanFerError, match="model not found"):
        Pipeline(PipelineConfig(model=str(tmp_path / "nope.onnx"), landmarker=str(landmarker_path)))
    bad = tmp_path / "corrupt model é.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(DanFerError, match="cannot load model"):
        Pipeline(PipelineConfig(model=str(bad), landmarker=str(landmarker_path)))
    with pytest.raises(DanFerError, match="needs a .pt checkpoint"):
        Pipeline(PipelineConfig(model=str(default_model_path()), landmarker=str(landmarker_path), backend="torch"))
    with pytest.raises(DanFerError, match="unknown backend"):
        Pipeline(PipelineConfig(model=str(default_model_path()), landmarker=str(landmarker_path), backend="tpu"))


def test_cuda_backend_is_never_guessed(landmarker_path):
    import onnxruntime as ort

    try:
        with Pipeline(PipelineConfig(landmarker=str(landmarker_path), backend="cuda")) as p:
            assert p.backend == "onnxruntime CUDA"
            sess_providers = p._backend.session.get_providers()
            assert sess_providers[0] == "CUDAExecutionProvider"
    except DanFerError as exc:
        assert "cuda" in str(exc).lower()
    with Pipeline(PipelineConfig(landmarker=str(landmarker_path), backend="cpu")) as p:
        assert p.backend == "onnxruntime CPU" + (" int8" if p.precision == "int8" else "")  # auto: the int8 twin on VNNI CPUs
    assert "CPUExecutionProvider" in ort.get_available_providers()


@pytest.mark.slow
def test_torch_backend_matches_onnx(tmp_path, landmarker_path, media_dir):
    """A .pt checkpoint and its ONNX export give the same probabilities through the pipeline."""
    import torch

    from dan_core.model.dan import DAN, DANConfig
    from dan_core.training.checkpoint import save_model
    from dan_core.training.export import export_onnx

    torch.manual_seed(0)
    model = DAN(DANConfig(color="gray", train_dataset="ferplus")).eval()
    save_model(model, tmp_path / "m.pt")
    export_onnx(model, tmp_path / "m.onnx")
    img = cv2.imread(str(_media(media_dir, "whitehouse_obama_speaking.jpg")))
    probs = {}
    for name, backend in (("m.pt", "torch"), ("m.onnx", "cpu")):
        with Pipeline(PipelineConfig(model=str(tmp_path / name), landmarker=str(landmarker_path), mode="image")) as p:
            r = p.process(img, 0.0)
            assert p.backend.startswith("torch" if backend == "torch" else "onnxruntime")
            probs[name] = r.faces[0].probs
    np.testing.assert_allclose(probs["m.pt"], probs["m.onnx"], atol=1e-4)


# ----------------------------------------------------------------------------- the commands
def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_analyze_photo_folder_json_and_report(tmp_path, media_dir, landmarker_path, capsys):
    folder = tmp_path / "Fotos mit Leerzeichen ü"
    folder.mkdir()
    shutil.copy(_media(media_dir, GROUP), folder / "1 group.jpeg")
    shutil.copy(_media(media_dir, "mediapipe_testdata_sergey.png"), folder / "2 sergey é.png")
    out_dir = tmp_path / "Ergebnis 表"
    out_dir.mkdir()
    csv_path = out_dir / "timeline ü.csv"
    rc, out, err = _cli(["analyze", folder, "--csv", csv_path, "--json", "--no-progress", "--landmarker", landmarker_path,
                         "--max-faces", "6"], capsys)
    assert rc == 0, err
    summary = json.loads(out)
    assert {"frames", "faces", "fps", "backend"} <= summary.keys()
    assert summary["frames"] == 2 and summary["faces"] >= 4
    classes, cols, meta = read_timeline(csv_path)
    assert set(cols["frame"].tolist()) == {0, 1} and len(cols["face_id"]) == summary["rows"]
    assert meta["source"] == str(folder) and meta["class_names"] == classes
    png = out_dir / "report ü.png"
    rc, out, err = _cli(["report", csv_path, "--out", png], capsys)
    assert rc == 0, err
    assert cv2.imdecode(np.fromfile(png, np.uint8), cv2.IMREAD_COLOR).shape[1] > 600


def test_analyze_single_image_with_annotated_image(tmp_path, media_dir, landmarker_path, capsys):
    ann = tmp_path / "annotated.png"
    rc, out, err = _cli(["analyze", _media(media_dir, "nasa_astronaut_eileen_collins.png"), "--csv", tmp_path / "t.csv",
                         "--annotated", ann, "--heatmap", "all", "--landmarker", landmarker_path, "--no-progress"], capsys)
    assert rc == 0, err
    assert "1 frames" in out and "face #1" in out
    assert cv2.imread(str(ann)).shape == (512, 512, 3)


def test_analyze_bad_inputs_are_one_line_and_lose_nothing(tmp_path, media_dir, landmarker_path, capsys):
    video = _media(media_dir, VIDEO)
    base = ["--landmarker", landmarker_path, "--no-progress"]
    rc, out, err = _cli(["analyze", video, "--csv", tmp_path / "missing dir" / "t.csv", *base], capsys)
    assert rc == 2 and err.count("\n") == 1 and "does not exist" in err
    existing = tmp_path / "t.csv"
    existing.write_text("keep me\n")
    rc, out, err = _cli(["analyze", video, "--csv", existing, *base], capsys)
    assert rc == 2 and "--force" in err and err.count("\n") == 1
    assert existing.read_text() == "keep me\n"
    rc, out, err = _cli(["analyze", "97", "--csv", tmp_path / "cam.csv", *base], capsys)
    assert rc == 2 and "camera 97" in err and err.count("\n") == 1
    assert not (tmp_path / "cam.csv").exists()
    rc, out, err = _cli(["analyze", video, "--csv", tmp_path / "m.csv", "--model", tmp_path / "none.onnx", *base], capsys)
    assert rc == 2 and "model not found" in err and err.count("\n") == 1
    rc, out, err = _cli(["analyze", video, "--csv", tmp_path / "h.csv", "--heatmap", "head9", *base], capsys)
    assert rc == 2 and "head9" in err
    rc, out, err = _cli(["analyze", video, "--csv", tmp_path / "l.csv", "--landmarker", tmp_path / "x.task"], capsys)
    assert rc == 2 and "landmarker" in err and err.count("\n") == 1


def test_analyze_truncated_video_keeps_its_rows(tmp_path, media_dir, landmarker_path, capsys):
    src = cv2.VideoCapture(str(_media(media_dir, VIDEO)))
    path = tmp_path / "cut clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 24.0, (640, 360))
    for _ in range(40):
        ok, frame = src.read()
        assert ok
        writer.write(frame)
    writer.release()
    src.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    csv_path = tmp_path / "cut.csv"
    rc, out, err = _cli(["analyze", path, "--csv", csv_path, "--json", "--no-progress", "--landmarker", landmarker_path], capsys)
    assert rc == 0, err
    summary = json.loads(out)
    assert 5 < summary["frames"] < 40 and summary["rows"] >= summary["frames"] - 2
    _, cols, _ = read_timeline(csv_path)
    assert len(cols["frame"]) == summary["rows"]


@pytest.mark.slow
def test_analyze_the_whole_video_with_annotated_mp4(tmp_path, media_dir, landmarker_path, capsys):
    csv_path, mp4 = tmp_path / "out.csv", tmp_path / "out.mp4"
    rc, out, err = _cli(["analyze", _media(media_dir, VIDEO), "--csv", csv_path, "--annotated", mp4, "--json", "--no-progress",
                         "--landmarker", landmarker_path], capsys)
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["frames"] >= 460 and summary["frames_with_faces"] >= 0.95 * summary["frames"]
    _, cols, meta = read_timeline(csv_path)
    assert len(np.unique(cols["frame"])) == summary["frames_with_faces"]
    assert meta["summary"]["frames"] == summary["frames"]
    cap = cv2.VideoCapture(str(mp4))  # the annotated video plays back: every frame decodes at full size
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (360, 640, 3)
        n += 1
    cap.release()
    assert n == summary["frames"]
    rc, out, err = _cli(["report", csv_path, "--out", tmp_path / "report.png"], capsys)
    assert rc == 0, err


def test_bench_json(media_dir, landmarker_path, capsys):
    rc, out, err = _cli(["bench", _media(media_dir, VIDEO), "--frames", "4", "--warmup", "1", "--mosaic", "2", "--json",
                         "--landmarker", landmarker_path], capsys)
    assert rc == 0, err
    report = json.loads(out)
    assert report["frames"] == 4 and report["fps"] > 0 and report["faces_per_frame"] >= 3
    for stage in ("decode", "landmarks", "align", "infer", "draw"):
        assert report["stages_ms"][stage]["p95"] >= report["stages_ms"][stage]["median"] >= 0


def test_image_without_a_face(tmp_path, landmarker_path, capsys):
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 200, np.uint8))
    csv_path = tmp_path / "t.csv"
    rc, out, err = _cli(["analyze", blank, "--csv", csv_path, "--json", "--no-progress", "--landmarker", landmarker_path], capsys)
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["frames"] == 1 and summary["frames_without_faces"] == 1 and summary["rows"] == 1
    t = load_timeline(csv_path)
    assert t.rows == 0 and list(t.frames.faces) == [0]  # the frame is accounted for: one row, faces 0
    rc, out, err = _cli(["report", csv_path, "--out", tmp_path / "r.png"], capsys)
    assert rc == 2 and "no face was found" in err


@pytest.mark.parametrize("overlap", [True, False])
def test_stream_keeps_order_and_reports_source_errors(model_path, landmarker_path, media_dir, overlap):
    from dan_core.pipeline.sources import Frame

    img = cv2.imread(str(_media(media_dir, "whitehouse_obama_speaking.jpg")))

    def frames():
        for i in range(4):
            yield Frame(img, i, i / 10)
        raise DanFerError("the camera went away")

    seen = []
    with Pipeline(PipelineConfig(model=str(model_path), landmarker=str(landmarker_path))) as p:
        with pytest.raises(DanFerError, match="went away"):
            for frame, result in p.stream(frames(), overlap=overlap):
                seen.append((frame.index, result.index, [f.face_id for f in result.faces]))
                assert result.timings["latency"] >= result.timings["landmarks"]
    assert seen == [(i, i, [1]) for i in range(4)]


def test_model_that_contradicts_its_metadata(tmp_path, model_path, landmarker_path):
    import onnx

    proto = onnx.load(str(model_path))
    for prop in proto.metadata_props:
        if prop.key == "class_names":
            prop.value = json.dumps(["a", "b", "c"])
    bad = tmp_path / "three classes.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(DanFerError, match="metadata says 3 classes"):
        Pipeline(PipelineConfig(model=str(bad), landmarker=str(landmarker_path)))


def test_smiles_are_recognised(image_pipeline, media_dir):
    """Model, alignment, colour and template end to end: clearly smiling stills read as happiness."""
    names = [n.lower() for n in image_pipeline.class_names]
    happy = next((names.index(n) for n in ("happiness", "happy") if n in names), None)
    if happy is None:
        pytest.skip(f"the model has no happiness class: {names}")
    hits = []
    for name in ("nasa_astronaut_eileen_collins.png", "mediapipe_testdata_sergey.png", "whitehouse_obama_portrait_smiling.jpg"):
        result = image_pipeline.process(cv2.imread(str(_media(media_dir, name)), cv2.IMREAD_UNCHANGED), 0.0)
        hits.append(int(np.argmax(result.faces[0].probs)) == happy)
    assert all(hits), f"happiness on {hits}"
