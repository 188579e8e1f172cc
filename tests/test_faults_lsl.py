"""Fault suite, part 7: Lab Streaming Layer against hostile senders, a shared network and a second instance.

Real liblsl on loopback (tests/lsl_api.cfg through LSLAPICFG, and dan-fer's own --lsl-scope machine).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

pylsl = pytest.importorskip("pylsl")

from dan_core.pipeline.lsl import MarkerListener  # noqa: E402

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent


def _stimulus(name: str = "stimuli") -> pylsl.StreamOutlet:
    return pylsl.StreamOutlet(pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, f"stim-{uuid.uuid4().hex[:8]}"))


def _listen(name: str, timeout: float = 10.0):
    got: list[tuple[str, float]] = []
    listener = MarkerListener(lambda label, mono: got.append((label, mono))).start()
    deadline = time.monotonic() + timeout
    while name not in listener.streams and time.monotonic() < deadline:
        time.sleep(0.05)
    assert name in listener.streams, f"the listener never found {name}"
    return listener, got


def _wait(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_marker_that_is_not_utf8_is_one_warning_and_the_listener_goes_on(caplog):
    """Bug 2: ['before'], [b'\\xff\\xfe'], ['after']: was a UnicodeDecodeError that ended all marker recording."""
    stim = _stimulus("bad bytes")
    listener, got = _listen("bad bytes")
    try:
        with caplog.at_level(logging.WARNING, logger="dan_core.pipeline.lsl"):
            for sample in (["before"], [b"\xff\xfe"], ["after"]):
                stim.push_sample(sample)
                time.sleep(0.05)
            _wait(lambda: len(got) >= 2)
            late = _stimulus("later")  # a stream that appears after the bad marker is still listened to
            _wait(lambda: "later" in listener.streams, 10.0)
            _wait(lambda: late.have_consumers(), 5.0)
            late.push_sample(["from the later stream"])
            _wait(lambda: len(got) >= 3)
    finally:
        listener.stop()
    assert [label for label, _ in got] == ["before", "after", "from the later stream"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "bad bytes" in warnings[0] and "UTF-8" in warnings[0]


def test_marker_times_that_are_not_finite_or_absurd_are_refused(caplog):
    """Bug 3: push_sample(['x'], nan / inf / -1e9) was handed on (and written as nan,816,x,lsl)."""
    stim = _stimulus("bad times")
    listener, got = _listen("bad times")
    try:
        with caplog.at_level(logging.WARNING, logger="dan_core.pipeline.lsl"):
            _wait(lambda: stim.have_consumers())
            for label, stamp in (("nan", math.nan), ("inf", math.inf), ("long ago", -1e9), ("good", 0.0)):
                stim.push_sample([label], stamp)
                time.sleep(0.05)
            _wait(lambda: got)
            time.sleep(0.3)
    finally:
        listener.stop()
    assert [label for label, _ in got] == ["good"] and abs(got[0][1] - time.monotonic()) < 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("bad times" in w for w in warnings)


# ----------------------------------------------------------------------------- who can reach the streams
def _sockets(pid: int) -> list[tuple[str, str, int, str]]:
    """(protocol, local address, port, state) of every internet socket the process ``pid`` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            addr, port = fields[1].split(":")
            raw = bytes.fromhex(addr)
            if len(raw) == 4:
                ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:  # four little-endian 32-bit words
                ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
            found.append((proto, ip, int(port, 16), {"0A": "LISTEN", "01": "ESTABLISHED", "07": "UNCONN"}.get(fields[3], fields[3])))
    return found


def _external_ipv4() -> str | None:
    """An address of this machine that is not loopback (connecting to it never leaves the machine)."""
    import fcntl
    import struct

    for _, name in socket.if_nameindex():
        if name == "lo":
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                return socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))[20:24])  # SIOCGIFADDR
            except OSError:
                continue
    return None


def _refused(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=2.0).close()
    except ConnectionRefusedError:
        return True
    return False


def _ss_local_addresses(pid: int) -> list[str] | None:
    """The local addresses ``ss -tuanp`` shows for ``pid`` (None where ss is not installed)."""
    try:
        out = subprocess.run(["ss", "-tuanp"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [line.split()[4].rsplit(":", 1)[0] for line in out.splitlines() if f"pid={pid}," in line]


@pytest.fixture(scope="module")
def lsl_clip(tmp_path_factory, make_clip) -> Path:
    return make_clip(tmp_path_factory.mktemp("lslclip") / "clip.mp4", 0, 300)


def _analyze_with_lsl(tmp_path: Path, clip: Path, landmarker_path: Path, scope: str) -> dict:
    """A real ``analyze --lsl --lsl-markers`` run: an inlet reads its faces, a stimulus sends a marker then exits.
    Returns its sockets (seen while both connections were up), its exit status, stderr and markers."""
    name = f"scope-{scope}-{uuid.uuid4().hex[:6]}"
    csv_path = tmp_path / "rec.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAN_FER_NO_DOWNLOAD": "1", "DAN_FER_LANDMARKER": str(landmarker_path)}
    env.pop("DAN_FER_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", "dan_core", "analyze", str(clip), "--csv", str(csv_path), "--lsl", "--lsl-markers",
                             "--lsl-scope", scope, "--lsl-name", name, "--no-progress", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = pylsl.resolve_byprop("source_id", f"{name}@{socket.gethostname()}", 1, 60.0)
        assert found, "the FacialExpression stream never appeared"
        inlet = pylsl.StreamInlet(found[0])
        inlet.open_stream(timeout=10.0)
        assert inlet.pull_sample(timeout=30.0)[0] is not None
        stim = [_stimulus(f"stim-{name}")]
        _wait(lambda: stim[0].have_consumers(), 30.0)
        stim[0].push_sample(["stimulus on"])
        time.sleep(1.0)  # the listener pulls it and corrects its clock (UDP time probes)
        seen = _sockets(proc.pid)
        ss = _ss_local_addresses(proc.pid)
        external = _external_ipv4()
        ports = sorted({port for proto, _, port, state in seen if proto.startswith("tcp") and state == "LISTEN"})
        reach = {port: not _refused(external, port) for port in ports} if external else {}
        stim.clear()  # the stimulus program exits while the recording goes on
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return {"sockets": seen, "ss": ss, "reach": reach, "rc": proc.returncode, "stderr": err,
            "events": json.loads(out)["events"] if proc.returncode == 0 else None}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the socket table from /proc")
def test_machine_scope_keeps_every_lsl_socket_on_loopback(tmp_path, lsl_clip, landmarker_path):
    """--lsl-scope machine (the default): every socket liblsl opens is bound to 127.0.0.1, none can be reached
    from this machine's own network address; LSL still works on this computer, and liblsl says nothing."""
    run = _analyze_with_lsl(tmp_path, lsl_clip, landmarker_path, "machine")
    assert run["rc"] == 0, run["stderr"]
    assert run["events"]["labels"] == {"stimulus on": 1}
    tcp = [s for s in run["sockets"] if s[0].startswith("tcp")]
    assert any(s[3] == "LISTEN" for s in tcp) and any(s[3] == "ESTABLISHED" for s in tcp)  # data server, and our inlet on it
    assert any(s[0].startswith("udp") for s in run["sockets"])  # time server, multicast responder, resolver
    exposed = [s for s in run["sockets"] if s[1] not in ("127.0.0.1", "::1")]
    assert not exposed, f"sockets beyond loopback: {exposed}"  # was: TCP and UDP on 0.0.0.0
    if run["ss"] is not None:  # the same seen by ss, where it is installed
        assert run["ss"] and all(a in ("127.0.0.1", "[::1]") for a in run["ss"]), run["ss"]
    assert all(not reached for reached in run["reach"].values()), run["reach"]  # was: a connection from outside succeeded
    assert "INFO|" not in run["stderr"] and "ERR|" not in run["stderr"] and run["stderr"] == ""  # liblsl quiet


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the socket table from /proc")
def test_lab_scope_is_liblsl_as_it_comes_open_to_the_network(tmp_path, lsl_clip, landmarker_path):
    """--lsl-scope lab: liblsl's own settings (here tests/lsl_api.cfg: found on this machine only), and its data
    server listens on every interface: the exposure the README names."""
    run = _analyze_with_lsl(tmp_path, lsl_clip, landmarker_path, "lab")
    assert run["rc"] == 0, run["stderr"]
    assert run["events"]["labels"] == {"stimulus on": 1}
    assert any(s[1] == "0.0.0.0" and s[3] == "LISTEN" for s in run["sockets"])
    if run["reach"]:
        assert any(run["reach"].values())


# ----------------------------------------------------------------------------- names, ids, our own markers
def test_streams_have_a_stable_id_a_chosen_name_and_a_twin_is_refused(tmp_path):
    from dan_core.errors import DanFerError
    from dan_core.pipeline.lsl import source_ids
    from dan_core.pipeline.study import StudyLinks

    name = f"room-{uuid.uuid4().hex[:6]}"
    from dan_core.pipeline import lsl

    lsl.configure(name=name)
    try:
        first = StudyLinks(lsl=True)
        first.set_classes(["neutral", "happiness"], 25.0)
        try:
            info = pylsl.resolve_byprop("name", name, 1, 10.0)[0]
            assert info.source_id() == f"{name}@{socket.gethostname()}" == source_ids(name)[0]  # was: dan-fer-<pid>
            assert str(os.getpid()) not in info.source_id()
            with pytest.raises(DanFerError, match="another --lsl-name"):  # a second dan-fer under the same name
                StudyLinks(lsl=True)
        finally:
            first.close()
        again = StudyLinks(lsl=True)  # the same name once the first has gone (a restart): the same ids
        again.set_classes(["neutral"], 25.0)
        assert again.outlet.source_id == info.source_id() and again.marker_outlet.source_id == source_ids(name)[1]
        again.close()
    finally:
        lsl.configure(name=lsl.STREAM_NAME)


def test_our_own_key_markers_are_never_recorded_back(tmp_path):
    from dan_core.pipeline import lsl
    from dan_core.pipeline.events import read_events
    from dan_core.pipeline.study import StudyLinks

    lsl.configure(name=f"self-{uuid.uuid4().hex[:6]}")
    other_name = f"other-{uuid.uuid4().hex[:6]}"
    try:
        study = StudyLinks(lsl=True, lsl_markers=True)
        lsl.configure(name=other_name)
        other = StudyLinks(lsl=True)  # another instrument's dan-fer on this computer
        try:
            study.start_recording(tmp_path / "r.csv")
            _wait(lambda: f"{other_name}-markers" in study.listener.streams, 10.0)
            study.frame(NS(time_s=0.0, index=0, faces=[]), time.monotonic())
            study.marker_at_frame("1", 0.0, 0, source="key")
            other.marker_outlet.push("from the other one")
            time.sleep(1.5)
            study.frame(NS(time_s=2.0, index=50, faces=[]), time.monotonic())
            study.stop_recording()
        finally:
            other.close()
            study.close()
    finally:
        lsl.configure(name=lsl.STREAM_NAME)
    events = [(e.label, e.source) for e in read_events(tmp_path / "r.csv.events.csv")]
    assert events == [("1", "key"), ("from the other one", "lsl")]  # ours once, as a key; the other's as LSL


def test_non_finite_stamp_never_reaches_the_events_file(tmp_path):
    """Bug 3 end to end: the recording's events file never holds nan (was: nan,816,x,lsl)."""
    from dan_core.pipeline.events import read_events
    from dan_core.pipeline.study import StudyLinks

    stim = _stimulus("nan sender")
    study = StudyLinks(lsl_markers=True)
    try:
        study.start_recording(tmp_path / "r.csv")
        _wait(lambda: "nan sender" in study.listener.streams, 10.0)
        _wait(lambda: stim.have_consumers(), 5.0)
        for i in range(30):
            study.frame(NS(time_s=i / 25, index=i, faces=[]), time.monotonic())
            if i == 10:
                stim.push_sample(["nan marker"], math.nan)
                stim.push_sample(["real marker"])
            time.sleep(0.04)
        time.sleep(0.3)
        study.stop_recording()
    finally:
        study.close()
    text = (tmp_path / "r.csv.events.csv").read_text()
    assert "nan" not in text.lower().replace("nan marker", "")
    assert [e.label for e in read_events(tmp_path / "r.csv.events.csv")] == ["real marker"]


LISTEN_WHILE_A_SENDER_EXITS = """
import subprocess, sys, time
from dan_core.pipeline.study import StudyLinks
study = StudyLinks(lsl_markers=True)  # what analyze --lsl-markers and the app run
study.start_recording(sys.argv[1])
sender = subprocess.Popen([sys.executable, "-c", '''
import os, time, pylsl
out = pylsl.StreamOutlet(pylsl.StreamInfo("stim", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, "stim-%s"))
time.sleep(3)
for i in range(3):
    out.push_sample(["m%%d" %% i]); time.sleep(0.2)
os._exit(0)  # the stimulus program ends while the listener is connected
''' % sys.argv[2]], stderr=subprocess.DEVNULL)
sender.wait()
time.sleep(3)  # the listener sees the connection break and tries again
study.frame(type("R", (), {"time_s": 9.0, "index": 1, "faces": []})(), time.monotonic())
print(study.stop_recording()["count"])
study.close()
"""


@pytest.mark.parametrize("debug", [False, True])
def test_a_sender_that_exits_leaves_the_terminal_quiet(tmp_path, debug):
    """Bug: liblsl printed "ERR| Stream transmission broke off" into dan-fer's terminal when a marker sender exited.
    Quiet unless DAN_FER_DEBUG=1 (which shows that the test would see the line)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DAN_FER_DEBUG", None)
    if debug:
        env["DAN_FER_DEBUG"] = "1"
    done = subprocess.run([sys.executable, "-c", LISTEN_WHILE_A_SENDER_EXITS, str(tmp_path / "r.csv"), uuid.uuid4().hex[:8]],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"  # the markers were recorded
    assert ("Stream transmission broke off" in done.stderr) == debug, done.stderr
    if not debug:
        assert done.stderr == ""
