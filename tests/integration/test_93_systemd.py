"""What a service manager sees of levee: the sd_notify protocol (Type=notify),
`levee --version`, and the systemd unit (systemd-analyze verify and security,
offline: no booted systemd is needed).

The notify tests bind the unix datagram socket systemd would (NOTIFY_SOCKET)
and read what levee sends: READY=1 once the port accepts, RELOADING=1 (with
MONOTONIC_USEC) then READY=1 around every reload, STOPPING=1 when a drain
starts.
"""

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from adminutil import reload_post, scrape, sighup, write_config
from harness import DEADLINE, PORTS, REPO_ROOT, levee_bin, port_accepts, run_levee


class NotifySocket:
    """A unix datagram socket in a short-named directory (sun_path is 108
    bytes), read by a thread. Each message is kept as (monotonic time, dict of
    its KEY=VALUE lines). `on_ready`, if set, runs in the reading thread as
    soon as the first READY=1 arrives (before anything else is read)."""

    def __init__(self, on_ready=None):
        self.dir = tempfile.mkdtemp(prefix="lvn")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.on_ready = on_ready
        self.ready_result = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            if fields.get("READY") == "1" and self.on_ready and self.ready_result is None:
                self.ready_result = self.on_ready()
            with self._cond:
                self.messages.append((time.monotonic(), fields))
                self._cond.notify_all()

    def wait(self, predicate, start=0, timeout=DEADLINE, what="a notification"):
        """The index of the first message at or after `start` that satisfies
        `predicate`, waiting for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(start, len(self.messages)):
                    if predicate(self.messages[i][1]):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout}s; got {self.fields()}")
                self._cond.wait(left)

    def fields(self):
        with self._cond:
            return [m for _, m in self.messages]

    def close(self):
        self._stop = True
        self._thread.join(5)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify(monkeypatch):
    """A NotifySocket whose path is in NOTIFY_SOCKET for the levee started next."""
    holder = {}

    def make(on_ready=None):
        ns = NotifySocket(on_ready)
        holder["ns"] = ns
        monkeypatch.setenv("NOTIFY_SOCKET", ns.path)
        return ns

    yield make
    if "ns" in holder:
        holder["ns"].close()


def is_ready(m):
    return m.get("READY") == "1"


def is_reloading(m):
    return m.get("RELOADING") == "1"


# --------------------------------------------------------------------------
# sd_notify


def test_ready_is_sent_once_the_port_accepts(h, notify):
    port = PORTS.get()
    ns = notify(on_ready=lambda: port_accepts("127.0.0.1", port, timeout=2))

    b = h.demo("b1")
    lv = h.levee(f"listen: 127.0.0.1:{port}\nbackends:\n  - id: b1\n    url: {b.url}\n")
    first_ready = ns.wait(is_ready, what="READY=1")

    assert first_ready == 0, f"messages before READY=1: {ns.fields()}"
    assert ns.ready_result is True, "the port did not accept when READY=1 arrived"
    assert "generation 1" in ns.fields()[0].get("STATUS", ""), ns.fields()
    assert lv.get("/").status == 200


def test_a_reload_is_framed_by_reloading_and_ready(h, notify):
    ns = notify()
    lv = h.levee("backends: []\n")
    ns.wait(is_ready, what="READY=1 at start")

    before_us = time.monotonic_ns() // 1000
    lv.signal(signal.SIGHUP)
    reloading = ns.wait(is_reloading, what="RELOADING=1 after SIGHUP")
    after_us = time.monotonic_ns() // 1000
    ready = ns.wait(is_ready, start=reloading + 1, what="READY=1 after the reload")

    fields = ns.fields()
    stamp = int(fields[reloading]["MONOTONIC_USEC"])
    assert before_us <= stamp <= after_us, (before_us, stamp, after_us)
    assert "generation 2" in fields[ready].get("STATUS", ""), fields
    assert len(fields) == 3, f"unexpected notifications: {fields}"


def test_a_failed_reload_ends_with_ready_and_says_so(h, notify):
    ns = notify()
    b = h.demo("b1")
    backends = f"backends:\n  - id: b1\n    url: {b.url}\n"
    lv = h.levee(backends)
    ns.wait(is_ready, what="READY=1 at start")

    write_config(lv, backends + "workerz: 2\n")
    lv.signal(signal.SIGHUP)
    reloading = ns.wait(is_reloading, what="RELOADING=1 after SIGHUP")
    ready = ns.wait(is_ready, start=reloading + 1, what="READY=1 after the failed reload")

    assert "reload failed" in ns.fields()[ready].get("STATUS", ""), ns.fields()
    assert lv.get("/").status == 200


def test_post_reload_is_framed_by_reloading_and_ready(h, notify):
    ns = notify()
    lv = h.levee("backends: []\n")
    ns.wait(is_ready, what="READY=1 at start")

    status, body = reload_post(lv)
    assert status == 200, body
    reloading = ns.wait(is_reloading, what="RELOADING=1 after POST /reload")
    ns.wait(is_ready, start=reloading + 1, what="READY=1 after POST /reload")


def test_sigterm_sends_stopping_and_nothing_after_it(h, notify):
    ns = notify()
    lv = h.levee("backends: []\n")
    ns.wait(is_ready, what="READY=1 at start")

    lv.signal(signal.SIGTERM)
    stopping = ns.wait(lambda m: m.get("STOPPING") == "1", what="STOPPING=1 after SIGTERM")
    assert lv.wait_exit(20) == 0

    assert stopping == len(ns.fields()) - 1, f"notifications after STOPPING=1: {ns.fields()}"


def test_a_notify_socket_nobody_reads_does_not_stop_levee(h, monkeypatch, tmp_path):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-here"))
    b = h.demo("b1")
    lv = h.levee(f"backends:\n  - id: b1\n    url: {b.url}\n")

    sighup(lv, 2)
    assert lv.get("/").status == 200
    lv.signal(signal.SIGTERM)
    assert lv.wait_exit(20) == 0


# --------------------------------------------------------------------------
# --version and levee_build_info


def header_version(path, prefix):
    text = Path(path).read_text()
    parts = [re.search(rf"#define {prefix}{p}\s+(\d+)", text).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def expected_library_versions():
    """What this machine's libraries say, asked the way levee asks them."""
    uv = ctypes.CDLL("libuv.so.1")
    uv.uv_version_string.restype = ctypes.c_char_p
    yaml = ctypes.CDLL("libyaml-0.so.2")
    yaml.yaml_get_version_string.restype = ctypes.c_char_p
    crypto = ctypes.CDLL("libcrypto.so.3")
    crypto.OpenSSL_version.restype = ctypes.c_char_p
    crypto.OpenSSL_version.argtypes = [ctypes.c_int]
    OPENSSL_VERSION_STRING = 6
    return {
        "libuv": uv.uv_version_string().decode(),
        "llhttp": header_version("/usr/share/include/llhttp/llhttp.h", "LLHTTP_VERSION_"),
        "OpenSSL": crypto.OpenSSL_version(OPENSSL_VERSION_STRING).decode(),
        "hiredis": header_version("/usr/include/hiredis/hiredis.h", "HIREDIS_"),
        "libyaml": yaml.yaml_get_version_string().decode(),
    }


def test_version_names_levee_and_the_libraries_it_runs_with(tmp_path):
    out = run_levee(["--version"], tmp_path)
    lines = out.stdout.splitlines()
    version = (REPO_ROOT / "VERSION").read_text().strip()

    assert out.returncode == 0
    assert re.fullmatch(rf"levee {re.escape(version)} \([0-9a-f]{{7,}}\)", lines[0]), lines
    libs = dict(line.split(" ", 1) for line in lines[1:])
    assert libs == expected_library_versions(), out.stdout


def test_build_info_carries_the_library_versions(h, tmp_path):
    lv = h.levee("backends: []\n")

    info = scrape(lv).series("levee_build_info")

    labels = info[0][0]
    expected = {k.lower(): v for k, v in expected_library_versions().items()}
    assert {k: labels.get(k) for k in expected} == expected, labels


# --------------------------------------------------------------------------
# the unit


def scratch_root(tmp_path):
    """A root with the unit rendered as `make install PREFIX=/usr` does, the
    binary under test as /usr/sbin/levee, the man pages its Documentation=
    names, and the host's targets (the unit's dependencies)."""
    root = tmp_path / "root"
    units = root / "lib/systemd/system"
    units.mkdir(parents=True)
    (root / "usr/sbin").mkdir(parents=True)
    shutil.copy(levee_bin(), root / "usr/sbin/levee")
    for target in Path("/usr/lib/systemd/system").glob("*.target"):
        shutil.copy(target, units / target.name, follow_symlinks=True)
    unit = (REPO_ROOT / "dist/levee.service.in").read_text()
    unit = unit.replace("@sbindir@", "/usr/sbin").replace("@sysconfdir@", "/etc")
    (units / "levee.service").write_text(unit)
    shutil.copy(REPO_ROOT / "dist/levee.socket", units / "levee.socket")
    for src, section in (("levee.8.scd", "8"), ("levee.yaml.5.scd", "5")):
        mandir = root / f"usr/share/man/man{section}"
        mandir.mkdir(parents=True, exist_ok=True)
        with (REPO_ROOT / "man" / src).open("rb") as fin, (mandir / src[:-4]).open("wb") as fout:
            subprocess.run(["scdoc"], stdin=fin, stdout=fout, check=True, timeout=30)
    return root, unit


def systemd_analyze(root, *args, unit="levee.service"):
    env = dict(os.environ, MANPATH=str(root / "usr/share/man"), SYSTEMD_LOG_COLOR="0")
    return subprocess.run(["systemd-analyze", *args, f"--root={root}", unit],
                          capture_output=True, text=True, timeout=120, env=env)


def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    root, unit = scratch_root(tmp_path)

    result = systemd_analyze(root, "verify")

    # systemd-analyze only warns (exit 0) about an unknown key or section:
    # any output at all is a finding.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        f"systemd-analyze verify: rc {result.returncode}\n{result.stdout}{result.stderr}")
    for line in ("Type=notify", "ExecStartPre=/usr/sbin/levee -t -c /etc/levee/levee.yaml",
                 "ExecStart=/usr/sbin/levee -c /etc/levee/levee.yaml",
                 "ExecReload=/usr/sbin/levee -t -c /etc/levee/levee.yaml",
                 "ExecReload=/bin/kill -HUP $MAINPID", "User=levee",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "ProtectSystem=strict"):
        assert f"\n{line}\n" in unit, f"the unit lacks {line}"


def test_a_unit_with_a_typo_fails_the_check(tmp_path):
    """The check above can fail: an unknown key is reported."""
    root, unit = scratch_root(tmp_path)
    (root / "lib/systemd/system/levee.service").write_text(
        unit.replace("ProtectHome=yes", "ProtectHomme=yes"))

    result = systemd_analyze(root, "verify")

    assert "Unknown key 'ProtectHomme'" in result.stdout + result.stderr


def test_the_unit_sandbox_keeps_exposure_low(tmp_path):
    root, _unit = scratch_root(tmp_path)

    # Overall exposure (0 safe .. 10 unsafe) at most 2.0; it is 1.5 now.
    result = systemd_analyze(root, "security", "--offline=true", "--threshold=20")

    assert result.returncode == 0, f"exposure too high:\n{result.stdout}{result.stderr}"
    assert "Overall exposure level for levee.service" in result.stdout + result.stderr


def test_the_socket_unit_passes_verify_and_listens_where_the_shipped_config_does(tmp_path):
    """levee takes a passed socket for the address it is bound to: the
    socket unit's ListenStream= must be the shipped levee.yaml's addresses,
    written the same way."""
    root, _unit = scratch_root(tmp_path)

    result = systemd_analyze(root, "verify", unit="levee.socket")

    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        f"systemd-analyze verify levee.socket:\n{result.stdout}{result.stderr}")
    socket_unit = (REPO_ROOT / "dist/levee.socket").read_text()
    streams = re.findall(r"^ListenStream=(\S+)$", socket_unit, re.MULTILINE)
    config = (REPO_ROOT / "dist/levee.yaml").read_text()
    listens = re.findall(r"^\s*listen: (\S+)", config, re.MULTILINE)
    assert sorted(streams) == sorted(listens), (streams, listens)
    assert "\nAccept=no\n" in socket_unit
