"""Harness for levee's integration tests.

What a scenario needs (this module re-exports the raw HTTP helpers of
rawhttp.py and the in-process backend of scripted.py, so tests import from
`harness` only):

- `PortAllocator`: loopback ports picked at run time, below the kernel's
  ephemeral range (so outgoing connections cannot take them), each checked by a
  bind and never handed out twice in one run. `closed_port()` gives a port that
  is guaranteed to refuse connections (a socket bound to it, never listening).
- `Levee`: writes the config (a YAML string or a dict) into the test's tmp dir,
  starts the binary with the sanitizer options, waits until the listen port
  accepts TCP, reads the access log, runs `-t` on its config (`check()`), and
  at teardown stops it with SIGTERM and fails the test on a non-zero exit or
  any sanitizer report. `run_levee()` runs the binary once (`-t -c FILE`,
  `--version`, ...).
- `DemoBackend`: the C demo backend as a subprocess (waits for its
  "listening on" line; stopped by PID).
- `ScriptedBackend`: an in-process, threaded raw-socket server; a handler
  function gets each accepted connection and may send any bytes at all.
- `RawClient`: a raw-socket HTTP/1.x client with deadlines on every read, that
  parses responses framed by Content-Length, chunked coding or close.
- `Harness`: what the `h` fixture hands to a test; it owns everything above
  and tears it down in order (clients, levee, backends), by PID, even when the
  test failed.

Everything here uses the standard library only.
"""

import json
import os
import random
import re
import signal
import socket
import subprocess
import textwrap
import threading
import time
from pathlib import Path

from rawhttp import (  # re-exported: see __all__
    DEADLINE,
    Headers,
    HttpRequest,
    HttpResponse,
    ProtocolError,
    RawClient,
    SockReader,
    build_request,
    chunk_encode,
    http_get,
    pattern_bytes,
    sha256,
)
from scripted import (  # re-exported: see __all__
    BackendConn,
    ScriptedBackend,
    echo_handler,
    request_summary,
    serve,
)

__all__ = [
    # rawhttp.py
    "DEADLINE", "Headers", "HttpRequest", "HttpResponse", "ProtocolError", "RawClient",
    "SockReader", "build_request", "chunk_encode", "http_get", "pattern_bytes", "sha256",
    # scripted.py
    "BackendConn", "ScriptedBackend", "echo_handler", "request_summary", "serve",
    # here
    "REPO_ROOT", "HarnessError", "levee_bin", "demo_bin", "run_levee", "PORTS",
    "PortAllocator", "closed_port", "unresponsive_listener", "wait_for", "port_accepts",
    "connect_refused", "to_yaml", "yaml_text", "Levee", "DemoBackend", "Harness",
    "client_ip", "error_body", "parse_combined", "COMBINED_RE",
]

REPO_ROOT = Path(__file__).resolve().parents[2]

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


class HarnessError(Exception):
    """The harness could not set a scenario up (not a failure of levee)."""


# --------------------------------------------------------------------------
# binaries


def _binary(env_name, default):
    value = os.environ.get(env_name) or default
    path = Path(value)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def levee_bin():
    """Path of the levee binary: $LEVEE_BIN, default build/asan/levee."""
    return _binary("LEVEE_BIN", "build/asan/levee")


def demo_bin():
    """Path of the demo backend: $LEVEE_DEMO_BACKEND, default build/asan/levee-demo-backend."""
    return _binary("LEVEE_DEMO_BACKEND", "build/asan/levee-demo-backend")


def require_binary(path, env_name):
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise HarnessError(
            f"{path} is missing or not executable: build it (`make asan`) "
            f"or point ${env_name} at it"
        )
    return path


def sanitizer_env(extra_asan=""):
    """Environment for a levee process: leak detection on, UBSan stack traces."""
    env = dict(os.environ)
    asan = "detect_leaks=1:abort_on_error=0"
    if extra_asan:
        asan += ":" + extra_asan
    env["ASAN_OPTIONS"] = asan
    env["UBSAN_OPTIONS"] = "print_stacktrace=1"
    return env


def sanitizer_findings(stderr_text):
    """The sanitizer markers present in a process's stderr."""
    return [m for m in SANITIZER_MARKERS if m in stderr_text]


def _report_excerpt(text, lines=80):
    """The interesting part of stderr: from the first sanitizer marker, else the tail."""
    for marker in SANITIZER_MARKERS:
        at = text.find(marker)
        if at >= 0:
            start = text.rfind("\n", 0, max(0, at - 200)) + 1
            return "\n".join(text[start:].splitlines()[:lines])
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------
# ports


def _ephemeral_low():
    try:
        low, _high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low)
    except (OSError, ValueError):
        return 32768


class PortAllocator:
    """Loopback TCP ports for one test run.

    Ports are drawn at random from a range just below the kernel's ephemeral
    range (so that no outgoing connection holds them), checked with a bind, and
    never handed out twice by this allocator. Someone else on the machine may
    still take a port between the check and its use: `Levee` and `DemoBackend`
    retry on a bind failure.
    """

    def __init__(self):
        high = _ephemeral_low() - 1
        self.low = max(10000, high - 12000)
        self.high = high
        self._given = set()
        self._lock = threading.Lock()
        self._rng = random.Random(os.getpid() ^ time.time_ns())

    def _bindable(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def get(self):
        with self._lock:
            for _ in range(500):
                port = self._rng.randint(self.low, self.high)
                if port in self._given:
                    continue
                if self._bindable(port):
                    self._given.add(port)
                    return port
        raise HarnessError("no free loopback port found")


PORTS = PortAllocator()


def closed_port():
    """A port on 127.0.0.1 that refuses connections, and the socket holding it.

    The socket is bound and never listens: a SYN to it is answered with RST, and
    nobody else can bind the port while the socket lives. Close it when done.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1], s


def unresponsive_listener(probe_timeout=1.0):
    """A loopback listener that never completes new connections.

    listen(0) and an accept queue filled without accepting: further SYNs are
    dropped, so a connect to it hangs until the client gives up. Returns
    (port, sockets to keep open), or None when the kernel still completes
    connections (the caller then skips its test).
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    keep = [listener]
    for _ in range(16):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        if _connect_completes(c, 0.3):
            keep.append(c)
            continue
        c.close()
        break
    else:
        for s in keep:
            s.close()
        return None
    # Check once more, with the full probe time: the connect must not complete.
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setblocking(False)
    probe.connect_ex(("127.0.0.1", port))
    completed = _connect_completes(probe, probe_timeout)
    probe.close()
    if completed:
        for s in keep:
            s.close()
        return None
    return port, keep


def _connect_completes(sock, timeout):
    import select

    _r, w, _x = select.select([], [sock], [], timeout)
    if not w:
        return False
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def wait_for(predicate, timeout=DEADLINE, interval=0.02, what="condition"):
    """Poll `predicate` until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def port_accepts(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def connect_refused(host, port, timeout=0.5):
    """True if a TCP connect to host:port is actively refused."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# YAML (a small emitter: the harness needs no PyYAML)

_PLAIN = re.compile(r"[A-Za-z0-9_./@+-][A-Za-z0-9_./@+:=-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _yaml_scalar(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    numeric = re.fullmatch(r"[-+]?[0-9][0-9_.]*", text) is not None
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS and not numeric:
        return text
    return json.dumps(text)


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts, lists and scalars (keys in insertion order)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for key, value in obj.items():
            if isinstance(value, (dict, list)) and value:
                out.append(f"{pad}{key}:\n")
                out.append(to_yaml(value, indent + 2))
            elif isinstance(value, dict):
                out.append(f"{pad}{key}: {{}}\n")
            elif isinstance(value, list):
                out.append(f"{pad}{key}: []\n")
            else:
                out.append(f"{pad}{key}: {_yaml_scalar(value)}\n")
    elif isinstance(obj, list):
        if not obj:
            return pad + "[]\n"
        for item in obj:
            if isinstance(item, dict) and item:
                body = to_yaml(item, indent + 2)
                out.append(pad + "- " + body[indent + 2:])
            elif isinstance(item, (dict, list)):
                out.append(f"{pad}- {'{}' if isinstance(item, dict) else '[]'}\n")
            else:
                out.append(f"{pad}- {_yaml_scalar(item)}\n")
    else:
        out.append(pad + _yaml_scalar(obj) + "\n")
    return "".join(out)


def yaml_text(text):
    """Inline YAML from a test: dedented, leading blank lines dropped."""
    return textwrap.dedent(text).lstrip("\n")


# --------------------------------------------------------------------------
# processes


def _kill_group(proc):
    """SIGKILL a child we started (it leads its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            try:
                proc.kill()
            except OSError:
                pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def _die_with_parent():
    """Run in the child before exec: SIGKILL it if the test run dies, so that
    no levee or backend outlives a killed pytest (teardown covers the rest)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


try:
    import ctypes

    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):
    _PRCTL = None


class _Process:
    """A child process with stdout and stderr in files (never pipes: they fill)."""

    def __init__(self, cmd, env, workdir, name, preexec_fn=None, pass_fds=()):
        self.cmd = [str(c) for c in cmd]
        self.name = name
        self.out_path = Path(workdir) / f"{name}.stdout"
        self.err_path = Path(workdir) / f"{name}.stderr"

        def preexec():
            _die_with_parent()
            if preexec_fn is not None:
                preexec_fn()

        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=env, cwd=str(workdir),
                                         start_new_session=True, preexec_fn=preexec,
                                         pass_fds=tuple(pass_fds))
        self.pid = self.proc.pid

    def stdout(self):
        return self.out_path.read_text(errors="replace")

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def alive(self):
        return self.proc.poll() is None


def run_levee(args, workdir, timeout=60, extra_asan=""):
    """Run the levee binary once (e.g. `-t -c FILE`, `--version`) and return a
    CompletedProcess. A sanitizer report in its stderr fails the test."""
    binary = require_binary(levee_bin(), "LEVEE_BIN")
    result = subprocess.run([str(binary), *map(str, args)], cwd=str(workdir), timeout=timeout,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            errors="replace", env=sanitizer_env(extra_asan))
    found = sanitizer_findings(result.stderr)
    assert not found, (f"sanitizer report ({', '.join(found)}) from levee {args}:\n"
                       + _report_excerpt(result.stderr))
    return result


class Levee:
    """One levee process for one scenario.

    `config` is YAML text (dedented) or a dict. The harness fills in what a
    scenario leaves out: `listen` (a free loopback port), `workers: 1`, and an
    `access_log` to a file in the test's tmp dir (`access_log_format` picks
    combined or json). Text gets those as extra top-level lines at its end, so
    the line numbers of the test's own text do not move.

    `preexec_fn` runs in the child before levee is executed (e.g. to lower
    its RLIMIT_NOFILE with resource.setrlimit). `pass_fds` are descriptors
    it inherits, under the same numbers (e.g. a socket systemd would pass).
    """

    def __init__(self, harness, config, name="levee", access_log_format="combined",
                 extra_asan="", start=True, preexec_fn=None, pass_fds=()):
        self.harness = harness
        self.name = name
        self.workdir = harness.tmp_path
        self.config = config
        self.access_log_format = access_log_format
        self.extra_asan = extra_asan
        self.preexec_fn = preexec_fn
        self.pass_fds = tuple(pass_fds)
        self.access_log_path = self.workdir / f"{name}-access.log"
        self.config_path = self.workdir / f"{name}.yaml"
        self.host = "127.0.0.1"
        self.port = None
        self.admin_host = self.admin_port = None
        self.process = None
        self._stopped = False
        if start:
            self.start()

    # ---- config

    def _render(self, port):
        cfg = self.config
        if isinstance(cfg, dict):
            cfg = dict(cfg)
            if "listen" not in cfg:
                cfg["listen"] = f"127.0.0.1:{port}"
            cfg.setdefault("workers", 1)
            cfg.setdefault("access_log", {"path": str(self.access_log_path),
                                          "format": self.access_log_format})
            cfg.setdefault("admin", {"listen": f"127.0.0.1:{PORTS.get()}"})
            return to_yaml(cfg), "listen" not in self.config
        text = yaml_text(cfg)
        if text and not text.endswith("\n"):
            text += "\n"

        def has(key):
            return re.search(rf"^{key}\s*:", text, re.MULTILINE) is not None

        extra = ""
        ours = not has("listen")
        if ours:
            extra += f"listen: 127.0.0.1:{port}\n"
        if not has("workers"):
            extra += "workers: 1\n"
        if not has("access_log"):
            extra += (f"access_log:\n  path: {json.dumps(str(self.access_log_path))}\n"
                      f"  format: {self.access_log_format}\n")
        if not has("admin"):
            # Each instance gets its own admin port (the default 9901 would
            # collide between tests).
            extra += f"admin:\n  listen: 127.0.0.1:{PORTS.get()}\n"
        return text + extra, ours

    def _admin_from_config(self, text):
        m = re.search(r"^admin\s*:(?:.*\n\s+)*?listen\s*:\s*['\"]?([0-9.]+):([0-9]+)", text,
                      re.MULTILINE)
        if not m:
            m = re.search(r"^admin\s*:\s*\{[^}]*listen\s*:\s*['\"]?([0-9.]+):([0-9]+)", text,
                          re.MULTILINE)
        return (m.group(1), int(m.group(2))) if m else (None, None)

    def admin_url(self, path="/"):
        """URL of the admin listener (http://host:port/path)."""
        assert self.admin_port, "this levee has no admin listener"
        return f"http://{self.admin_host}:{self.admin_port}{path}"

    def _listen_from_config(self, text):
        m = re.search(r"^listen\s*:\s*['\"]?([0-9.]+):([0-9]+)", text, re.MULTILINE)
        if not m:
            raise HarnessError("the config's listen address must be IPv4 host:port")
        return m.group(1), int(m.group(2))

    def check(self):
        """`levee -t -c FILE` on this instance's config (CompletedProcess)."""
        if not self.config_path.exists():
            self.config_path.write_text(self._render(PORTS.get())[0])
        return run_levee(["-t", "-c", self.config_path], self.workdir)

    # ---- lifecycle

    def start(self):
        binary = require_binary(levee_bin(), "LEVEE_BIN")
        for attempt in range(3):
            text, ours = self._render(PORTS.get())
            self.config_path.write_text(text)
            self.host, self.port = self._listen_from_config(text)
            self.admin_host, self.admin_port = self._admin_from_config(text)
            if self.access_log_path.exists():
                self.access_log_path.unlink()
            self.process = _Process([binary, "-c", self.config_path], sanitizer_env(self.extra_asan),
                                    self.workdir, f"{self.name}-{attempt}" if attempt else self.name,
                                    preexec_fn=self.preexec_fn, pass_fds=self.pass_fds)
            self.harness._processes.append(self.process)
            deadline = time.monotonic() + DEADLINE
            # The admin listener opens after the workers' listeners: a test
            # that asks it at once must not find it still closed. It is
            # probed first, so that the proxy port sees exactly one probe
            # connection (tests count accepted connections).
            admin_up = self.admin_port is None
            while time.monotonic() < deadline:
                if not self.process.alive():
                    break
                if not admin_up:
                    admin_up = port_accepts(self.admin_host, self.admin_port, timeout=0.5)
                elif port_accepts(self.host, self.port, timeout=0.5) and self.process.alive():
                    return self
                time.sleep(0.02)
            self._stopped = True  # a failed start is reported here, not again at teardown
            if self.process.alive():
                _kill_group(self.process.proc)
                raise AssertionError(f"levee did not accept connections on {self.host}:{self.port} "
                                     f"within {DEADLINE}s; stderr:\n{_report_excerpt(self.process.stderr())}")
            err = self.process.stderr()
            if ours and re.search(r"in use|EADDRINUSE", err, re.IGNORECASE):
                self._stopped = False
                continue  # someone took the port between our check and levee's bind
            raise AssertionError(f"levee exited with code {self.process.proc.returncode} at start; "
                                 f"config:\n{text}\nstderr:\n{_report_excerpt(err)}")
        raise AssertionError("levee could not bind a listen port in 3 attempts")

    @property
    def pid(self):
        return self.process.pid

    @property
    def addr(self):
        return (self.host, self.port)

    def url(self, path="/"):
        return f"http://{self.host}:{self.port}{path}"

    def client(self, **kw):
        """A RawClient to levee, closed by the harness at teardown."""
        return self.harness.client(self.port, host=self.host, **kw)

    def get(self, target, headers=None, timeout=DEADLINE):
        """One GET on a fresh connection (Connection: close)."""
        return http_get(self.port, target, headers, timeout, host=self.host)

    def alive(self):
        return self.process is not None and self.process.alive()

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait_exit(self, timeout):
        """The exit code, or None if levee still runs after `timeout` seconds."""
        try:
            return self.process.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stderr(self):
        return self.process.stderr() if self.process else ""

    def rss_bytes(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise HarnessError("no VmRSS in /proc/PID/status")

    def fd_count(self):
        """Descriptors levee has open now (/proc/PID/fd)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self):
        """CPU time levee has used so far, user + system, all threads (/proc/PID/stat)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def access_log_lines(self, n=1, timeout=DEADLINE):
        """The access log's lines, once it has at least `n` of them."""

        def lines():
            try:
                text = self.access_log_path.read_text(errors="replace")
            except FileNotFoundError:
                return None
            got = [ln for ln in text.split("\n") if ln.strip()]
            # a line without its newline yet may still be being written
            if text and not text.endswith("\n") and got:
                got = got[:-1]
            return got if len(got) >= n else None

        return wait_for(lines, timeout, what=f"{n} access log line(s) in {self.access_log_path}")

    def stop(self, timeout=DEADLINE):
        """SIGTERM, wait, and return the problems found (empty list: all good):
        exit code not 0, or a sanitizer report in stderr."""
        if self.process is None or self._stopped:
            return []
        self._stopped = True
        problems = []
        proc = self.process.proc
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except OSError:
                pass
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            problems.append(f"did not exit within {timeout:.0f}s of SIGTERM (killed)")
            rc = 0
        if rc != 0:
            problems.append(f"exit code {rc} (expected 0)")
        err = self.process.stderr()
        found = sanitizer_findings(err)
        if found:
            problems.append("sanitizer report: " + ", ".join(found))
        if problems:
            return [f"levee {self.name} (pid {proc.pid}): " + "; ".join(problems)
                    + f"\n--- stderr ({self.process.err_path}) ---\n" + _report_excerpt(err)]
        return []


class DemoBackend:
    """The demo backend binary, as a subprocess on a port picked at run time."""

    def __init__(self, harness, id, args=()):
        self.harness = harness
        self.id = id
        self.args = [str(a) for a in args]
        self.port = None
        self.admin_host = self.admin_port = None
        self.process = None
        self._starts = 0

    def start(self, port=None):
        """Start it on a new port, or on `port` (e.g. its own old one, to come
        back where levee expects it after stop())."""
        binary = require_binary(demo_bin(), "LEVEE_DEMO_BACKEND")
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
        self._starts += 1
        for attempt in range(3):
            self.port = port if port is not None else PORTS.get()
            name = f"demo-{self.id}" + (f"-{attempt}" if attempt else "")
            if self._starts > 1:
                name += f"-run{self._starts}"
            self.process = _Process([binary, "--port", self.port, "--host", "127.0.0.1",
                                     "--id", self.id, *self.args], env, self.harness.tmp_path, name)
            self.harness._processes.append(self.process)
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline and self.process.alive():
                if "listening on" in self.process.stdout():
                    return self
                time.sleep(0.02)
            if self.process.alive():
                _kill_group(self.process.proc)
                raise AssertionError(f"demo backend {self.id} printed no 'listening on' line within "
                                     f"{DEADLINE}s; stdout: {self.process.stdout()[-500:]!r}")
            err = self.process.stderr()
            if re.search(r"in use|EADDRINUSE", err, re.IGNORECASE):
                if port is not None:
                    time.sleep(0.2)  # the old process's socket may linger a moment
                continue
            raise AssertionError(f"demo backend {self.id} exited at start with code "
                                 f"{self.process.proc.returncode}:\n{err[-2000:]}")
        raise AssertionError(f"demo backend {self.id} could not bind a port in 3 attempts")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def backend_entry(self, **extra):
        return {"id": self.id, "url": self.url, **extra}

    def get(self, target, timeout=DEADLINE):
        """A GET straight to the backend (not through levee)."""
        return http_get(self.port, target, timeout=timeout)

    def stats(self):
        resp = self.get("/stats")
        assert resp.status == 200, f"demo /stats answered {resp!r}"
        return resp.json()

    def stop(self):
        if self.process is None:
            return
        proc = self.process.proc
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _kill_group(proc)


# --------------------------------------------------------------------------
# the per-test harness


class Harness:
    """Everything one test starts; torn down in order by teardown()."""

    def __init__(self, tmp_path):
        self.tmp_path = Path(tmp_path)
        self._clients = []
        self._levees = []
        self._scripted = []
        self._demos = []
        self._held = []
        self._processes = []
        self._counter = 0

    # ---- things a test declares

    def levee(self, config, **kw):
        """Start levee with `config` (YAML text or dict); see Levee."""
        self._counter += 1
        kw.setdefault("name", "levee" if self._counter == 1 else f"levee{self._counter}")
        lv = Levee(self, config, start=False, **kw)
        self._levees.append(lv)
        lv.start()
        return lv

    def demo(self, id="demo", *args):
        """Start a demo backend: h.demo("b1", "--latency", "300ms")."""
        d = DemoBackend(self, id, args)
        self._demos.append(d)
        d.start()
        return d

    def scripted(self, handler, id="scripted", **kw):
        b = ScriptedBackend(handler, id=id, **kw)
        self._scripted.append(b)
        return b

    def client(self, port, **kw):
        c = RawClient(port, **kw)
        self._clients.append(c)
        return c

    def closed_port(self):
        port, sock = closed_port()
        self._held.append(sock)
        return port

    def unresponsive_listener(self):
        got = unresponsive_listener()
        if got is None:
            return None
        port, socks = got
        self._held.extend(socks)
        return port

    def write(self, name, text):
        path = self.tmp_path / name
        path.write_text(yaml_text(text) if isinstance(text, str) else text)
        return path

    def check(self, text, name="check.yaml"):
        """`levee -t -c FILE` on the YAML text written as is (dedented)."""
        path = self.write(name, text)
        result = run_levee(["-t", "-c", path], self.tmp_path)
        result.path = str(path)
        return result

    # ---- teardown

    def teardown(self):
        problems = []
        for c in self._clients:
            c.close()
        for lv in self._levees:
            problems += lv.stop()
        for b in self._scripted:
            b.stop()
        for d in self._demos:
            d.stop()
        for s in self._held:
            s.close()
        for p in self._processes:  # anything left (a failed start, ...)
            if p.alive():
                _kill_group(p.proc)
        return problems

    def stderr_tails(self, lines=40):
        out = []
        for lv in self._levees:
            if lv.process:
                out.append(f"--- {lv.name} stderr (pid {lv.pid}) ---\n"
                           + "\n".join(lv.stderr().splitlines()[-lines:]))
        return "\n".join(out)


# --------------------------------------------------------------------------
# small helpers shared by the tests


def client_ip():
    """The source address tests connect from: 127.0.0.2 when the loopback range
    allows it (so that levee's view of the client cannot be a hard-coded
    127.0.0.1), else 127.0.0.1."""
    global _CLIENT_IP
    if _CLIENT_IP is None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.2", 0))
            _CLIENT_IP = "127.0.0.2"
        except OSError:
            _CLIENT_IP = "127.0.0.1"
        finally:
            s.close()
    return _CLIENT_IP


_CLIENT_IP = None


def error_body(resp):
    """The JSON body of a response levee generated itself, checked for shape."""
    ctype = resp.headers.get("content-type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", (
        f"levee's own response should be application/json: {resp!r}")
    try:
        body = json.loads(resp.body)
    except ValueError:
        raise AssertionError(f"levee's own response body is not JSON: {resp!r}") from None
    assert body.get("status") == resp.status, f"JSON status differs from the status line: {resp!r}"
    assert isinstance(body.get("error"), str) and body["error"], f"no error token: {resp!r}"
    assert isinstance(body.get("message"), str), f"no message: {resp!r}"
    return body


_QUOTED = r'"((?:[^"\\]|\\.)*)"'
COMBINED_RE = re.compile(
    r"^(?P<client>\S+) - - \[(?P<time>[^\]]+)\] " + _QUOTED.replace("(", "(?P<request>", 1)
    + r" (?P<status>\d{3}) (?P<bytes>\d+) " + _QUOTED.replace("(", "(?P<referer>", 1)
    + " " + _QUOTED.replace("(", "(?P<user_agent>", 1)
    + r" (?P<duration>\d+\.\d{3}) (?P<backend>\S+) (?P<attempts>\d+) (?P<reason>\S+)"
    + r" (?P<retry>\S+) (?P<request_id>\S+)$"
)


def parse_combined(line):
    """The fields of one access log line in levee's combined format (a dict of
    strings; status, bytes, attempts as int, duration as float)."""
    m = COMBINED_RE.match(line)
    assert m, f"access log line does not match levee's combined format:\n{line}"
    d = m.groupdict()
    d["status"] = int(d["status"])
    d["bytes"] = int(d["bytes"])
    d["attempts"] = int(d["attempts"])
    d["duration"] = float(d["duration"])
    return d
