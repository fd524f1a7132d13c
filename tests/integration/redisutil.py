"""A redis-server for levee's rate-limit tests, and a tiny RESP client.

- `RedisServer(workdir)`: `redis-server --port P --bind 127.0.0.1 --save ""
  --appendonly no` on a free loopback port (from harness.PORTS), with its
  files and output in the test's tmp dir. `start()` waits until it answers
  PING (a raw socket speaking RESP), `kill()` sends SIGKILL by PID (a crash),
  `stop()` SIGTERM then SIGKILL, `restart()` starts it again on the same port,
  `pause()`/`resume()` send SIGSTOP/SIGCONT (a hung Redis).
  `command(...)` sends one command and returns the decoded reply; `send(...)`
  sends one without waiting (e.g. `DEBUG SLEEP`, which blocks the server).
- `SharedRedis`: the redis-server that CI runs for the whole suite
  ($LEVEE_TEST_REDIS=127.0.0.1:PORT). Tests may use it for scenarios that do not
  kill or block Redis, with a key prefix of their own (`unique_prefix()`).
- `redis_for(tmp_path, own=False)`: the shared server when $LEVEE_TEST_REDIS is set
  and the test does not need its own, else a RedisServer of the test's own,
  stopped at teardown (fixtures `redis_any`, `redis_own` below).

Standard library only; nothing here needs redis-py or redis-cli.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from harness import DEADLINE, PORTS, HarnessError, wait_for

try:
    import ctypes

    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):
    _PRCTL = None


def _die_with_parent():
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no redis outlives a killed pytest


def unique_prefix(what="t"):
    """A Redis key prefix no other test (or run) uses."""
    return f"levee:test:{what}:{uuid.uuid4().hex[:12]}:"


# --------------------------------------------------------------------------
# RESP


class RespError(Exception):
    """An error reply (-ERR ...) from Redis."""


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespConn:
    """One connection to Redis; every read has a deadline."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, *args):
        self.sock.sendall(encode_command(*args))

    def _line(self, deadline):
        while True:
            at = self.buf.find(b"\r\n")
            if at >= 0:
                line = bytes(self.buf[:at])
                del self.buf[:at + 2]
                return line
            self._fill(deadline)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no reply from redis before the deadline")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no reply from redis before the deadline") from None
        if not data:
            raise ConnectionError("redis closed the connection")
        self.buf += data

    def read_reply(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        return self._reply(deadline)

    def _reply(self, deadline):
        line = self._line(deadline)
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill(deadline)
            data = bytes(self.buf[:n])
            del self.buf[:n + 2]
            return data
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._reply(deadline) for _ in range(n)]
        raise ConnectionError(f"bad RESP line {line!r}")

    def command(self, *args, timeout=None):
        self.send(*args)
        reply = self.read_reply(timeout)
        if isinstance(reply, RespError):
            raise reply
        return reply


def ping(host, port, timeout=0.5):
    """True if host:port answers PING with PONG within `timeout`."""
    try:
        c = RespConn(host, port, timeout=timeout)
    except OSError:
        return False
    try:
        return c.command("PING", timeout=timeout) == "PONG"
    except (OSError, TimeoutError, ConnectionError, RespError):
        return False
    finally:
        c.close()


# --------------------------------------------------------------------------
# servers


class _RedisBase:
    host = "127.0.0.1"
    port = None

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def conn(self, timeout=5.0):
        return RespConn(self.host, self.port, timeout)

    def command(self, *args, timeout=5.0):
        c = self.conn(timeout)
        try:
            return c.command(*args, timeout=timeout)
        finally:
            c.close()

    def ping(self, timeout=0.5):
        return ping(self.host, self.port, timeout)

    def keys(self, pattern):
        return sorted(k.decode() for k in self.command("KEYS", pattern))


class SharedRedis(_RedisBase):
    """The suite's redis-server ($LEVEE_TEST_REDIS): never stopped, killed or
    blocked by a test; keys are kept apart with a unique prefix."""

    own = False

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.host = host or "127.0.0.1"
        self.port = int(port)
        if not self.ping(timeout=DEADLINE / 4):
            raise HarnessError(f"$LEVEE_TEST_REDIS={address} does not answer PING")

    def stop(self):
        pass


def redis_server_bin():
    path = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(path, os.X_OK):
        raise HarnessError("redis-server is not installed (apt-get install redis-server)")
    return path


class RedisServer(_RedisBase):
    """A redis-server of the test's own, on a free loopback port."""

    own = True

    def __init__(self, workdir, name="redis", extra_args=()):
        self.workdir = Path(workdir)
        self.name = name
        self.extra_args = [str(a) for a in extra_args]
        self.proc = None
        self.starts = 0
        self.dir = self.workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, port=None):
        """Start on `port` (the old one, for a restart) or on a new free port;
        returns once it answers PING."""
        binary = redis_server_bin()
        for attempt in range(3):
            self.port = port if port is not None else (self.port if self.port else PORTS.get())
            self.starts += 1
            log = self.dir / f"redis-{self.starts}.log"
            cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no",
                   "--protected-mode", "yes", *self.extra_args]
            with open(log, "wb") as out:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT, cwd=str(self.dir),
                                             start_new_session=True,
                                             preexec_fn=_die_with_parent)
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline and self.alive():
                if self.ping(timeout=0.5):
                    return self
                time.sleep(0.02)
            text = log.read_text(errors="replace")
            if self.alive():
                self.kill()
                raise AssertionError(f"redis-server did not answer PING on {self.address} "
                                     f"within {DEADLINE}s:\n{text[-2000:]}")
            if "in use" in text.lower():
                if port is None:
                    self.port = PORTS.get()  # someone took it between the check and the bind
                else:
                    time.sleep(0.2)  # our own old socket may linger a moment
                continue
            raise AssertionError(f"redis-server exited at start:\n{text[-2000:]}")
        raise AssertionError(f"redis-server could not bind port {self.port}")

    def kill(self):
        """SIGKILL by PID (a crash); waits until it is gone."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self):
        """SIGTERM by PID, SIGKILL after 5 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def pause(self):
        """SIGSTOP: Redis hangs (it reads and answers nothing) until resume()."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self):
        """Start again on the same port (after kill() or stop())."""
        assert self.port, "never started"
        if self.alive():
            self.stop()
        return self.start(port=self.port)

    def log_text(self):
        return "".join(p.read_text(errors="replace") for p in sorted(self.dir.glob("redis-*.log")))


def redis_for(workdir, own=False, **kw):
    """The suite's redis (when $LEVEE_TEST_REDIS is set and `own` is false) or a
    redis-server of the test's own, started in its tmp dir. Stop it with
    .stop() (the fixtures below do)."""
    address = os.environ.get("LEVEE_TEST_REDIS")
    if address and not own:
        return SharedRedis(address)
    r = RedisServer(workdir, **kw)
    r.start()
    return r


# The fixtures take tmp_path, not h: a test that lists `redis_any` or
# `redis_own` before `h` gets its levee stopped before its redis.


@pytest.fixture
def redis_any(tmp_path):
    """A redis-server that the test must not kill or block."""
    r = redis_for(tmp_path)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def redis_own(tmp_path):
    """A redis-server of this test's own (it may kill, restart or block it);
    `DEBUG` is allowed from loopback."""
    r = RedisServer(tmp_path, extra_args=["--enable-debug-command", "local"])
    r.start()
    try:
        yield r
    finally:
        r.stop()


__all__ = ["RedisServer", "SharedRedis", "RespConn", "RespError", "encode_command", "ping",
           "redis_for", "redis_any", "redis_own", "unique_prefix", "wait_for"]
