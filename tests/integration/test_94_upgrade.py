"""94 — binary upgrade (SIGUSR2, POST /upgrade) and socket activation (LISTEN_FDS).

An upgrade starts the file levee was started from with levee's listening
sockets; once the new process serves, the old one stops accepting, finishes
its connections and exits. The sockets themselves never close: the tests
check that the kernel sockets listening on the port are the same ones before
and after (/proc/net/tcp inodes), and a client load through the upgrade
counts every request, on keep-alive and on new connections: none may fail,
none may be refused or reset. A new binary that fails (a broken config, a
file that exits at once, one that never says it serves) leaves the old
process serving, under the same load.

The new process outlives the old one, whose child it is: the test process
makes itself a child subreaper (PR_SET_CHILD_SUBREAPER) so that it inherits
it, stops it at the end and reads its exit status like any child's.

Socket activation is tested without systemd: the test binds the socket and
execs levee with it as descriptor 3 and LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES
set, as systemd would.
"""

import ctypes
import os
import re
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time

import pytest

from adminutil import admin_get, admin_post, json_of, write_config
from harness import (
    DEADLINE,
    PORTS,
    RawClient,
    demo_bin,
    http_get,
    levee_bin,
    sanitizer_findings,
    wait_for,
)

PR_SET_CHILD_SUBREAPER = 36
ORIGINAL_BIN = levee_bin()  # the build under test ($LEVEE_BIN), before a test points it at a copy

# --------------------------------------------------------------------------
# the kernel's view: listening sockets and who holds them


def _tcp_table():
    rows = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    lport = int(p[1].rsplit(":", 1)[1], 16)
                    rport = int(p[2].rsplit(":", 1)[1], 16)
                    rows.append((lport, rport, p[3], int(p[9])))
        except FileNotFoundError:
            pass
    return rows


def listen_inodes(port):
    """Inodes of the sockets listening on `port` (any address)."""
    return {ino for lport, _r, st, ino in _tcp_table() if lport == port and st == "0A"}


def server_side_inode(port, client_port):
    """Inode of the accepted socket of the connection from client_port to
    port (0 while it waits in the accept queue)."""
    for lport, rport, st, ino in _tcp_table():
        if lport == port and rport == client_port and st == "01":
            return ino
    return 0


def socket_inodes(pid):
    """Inodes of the sockets process `pid` holds."""
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            m = re.fullmatch(r"socket:\[(\d+)\]", link)
            if m:
                out.add(int(m.group(1)))
    except FileNotFoundError:
        pass
    return out


# --------------------------------------------------------------------------
# the processes an upgrade makes


@pytest.fixture
def reaper():
    """Makes this process the subreaper of the levees the tests start, so
    that a new levee whose parent (the old one) exited becomes its child.
    Yields a list; every Successor put in it is stopped at teardown."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, "prctl(PR_SET_CHILD_SUBREAPER)"
    started = []
    try:
        yield started
    finally:
        problems = []
        for s in started:
            problems += s.stop()
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


class Successor:
    """The levee an upgrade started: its pid, and its log (the old one's
    standard error, which it inherited)."""

    def __init__(self, pid, err_path):
        self.pid = pid
        self.err_path = err_path
        self.status = None

    def alive(self):
        if self.status is not None:
            return False
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait_exit(self, timeout=DEADLINE):
        """Its exit status once it exited and was reparented to this process
        (the old levee exited), or None."""
        deadline = time.monotonic() + timeout
        while self.status is None:
            try:
                pid, st = os.waitpid(self.pid, os.WNOHANG)
                if pid == self.pid:
                    self.status = os.waitstatus_to_exitcode(st)
                    break
            except ChildProcessError:
                pass  # still the old levee's child: it is not gone yet
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        return self.status

    def stop(self):
        if self.status is not None:
            return []
        self.signal(signal.SIGTERM)
        rc = self.wait_exit()
        if rc is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            self.wait_exit(10)
            return [f"new levee pid {self.pid} did not exit within {DEADLINE}s of SIGTERM"]
        problems = []
        if rc != 0:
            problems.append(f"new levee pid {self.pid}: exit code {rc}")
        found = sanitizer_findings(self.err_path.read_text(errors="replace"))
        if found:
            problems.append(f"new levee pid {self.pid}: sanitizer report {found}")
        return problems


def log_match(lv, pattern, timeout=DEADLINE):
    """The first match of `pattern` in the log of `lv` (the old levee's
    standard error, shared with the processes it starts), waiting for it."""
    rx = re.compile(pattern)
    return wait_for(lambda: rx.search(lv.stderr()), timeout, what=f"/{pattern}/ in the log")


def handed_over(lv, reaper, after=0):
    """Waits for the hand-over that lv's log reports (the n-th one, n =
    after + 1) and returns the Successor."""
    def find():
        found = re.findall(r"upgrade: levee pid (\d+) serves now", lv.stderr())
        return found[after] if len(found) > after else None

    s = Successor(int(wait_for(find, what="the new levee to serve")), lv.process.err_path)
    reaper.append(s)
    return s


def upgrade_failed(lv, after=0):
    """The pid and reason of the (after+1)-th failed upgrade in lv's log."""
    def find():
        found = re.findall(r"upgrade failed: the new levee \(pid (\d+)\) (.*?); this one", lv.stderr())
        return found[after] if len(found) > after else None

    pid, why = wait_for(find, what="the upgrade to fail")
    return int(pid), why


def copy_binary(tmp_path):
    """The binary under test copied to tmp_path/sbin/levee: the tests replace
    that file as a package upgrade would."""
    d = tmp_path / "sbin"
    d.mkdir(exist_ok=True)
    path = d / "levee"
    shutil.copy2(levee_bin(), path)
    return path


def replace_file(path, make):
    """Replaces `path` the way dpkg does: a new file renamed over it (the
    running process's /proc/PID/exe then names a deleted file)."""
    tmp = path.with_name(path.name + ".new")
    make(tmp)
    os.rename(tmp, path)


def script(text):
    def make(p):
        p.write_text(text)
        p.chmod(0o755)
    return make


# --------------------------------------------------------------------------
# the client load


class Load:
    """Steady requests from threads: `keepalive` of them reuse one connection
    (opening a new one only after a response that closes it), `fresh` of
    them open a connection per request; each at `rate` requests a second.
    Every request and every failure is counted: a failure is any error, a
    refused or reset connection, or a response that is not a complete 200."""

    def __init__(self, port, keepalive=4, fresh=4, rate=25.0):
        self.port = port
        self.rate = rate
        self.ok = 0
        self.ok_keepalive = 0
        self.reused = 0  # requests sent on a connection that had served one already
        self.failures = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._keepalive, args=(i,), daemon=True)
                         for i in range(keepalive)]
        self._threads += [threading.Thread(target=self._fresh, args=(i,), daemon=True)
                          for i in range(fresh)]
        for t in self._threads:
            t.start()

    def _record(self, ok, what, keepalive=False, reused=False):
        with self._lock:
            if ok:
                self.ok += 1
                self.ok_keepalive += keepalive
                self.reused += reused
            else:
                self.failures.append(what)

    def _pace(self, start, n):
        delay = start + n / self.rate - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)

    @staticmethod
    def _good(resp):
        return resp.status == 200 and resp.complete and resp.headers.get("x-backend-id")

    def _keepalive(self, tid):
        c, used, n, start = None, 0, 0, time.monotonic()
        while not self._stop.is_set():
            try:
                if c is None:
                    c, used = RawClient(self.port, timeout=30), 0
                resp = c.get(f"/ka/{tid}/{n}", timeout=30)
                good = self._good(resp)
                self._record(good, f"keep-alive {tid} #{n}: {resp!r}", True, used > 0)
                used += 1
                if not good or "close" in resp.headers.tokens("connection"):
                    c.close()
                    c = None
            except Exception as e:  # noqa: BLE001 - every failure is counted
                self._record(False, f"keep-alive {tid} #{n} (request {used + 1} on its "
                             f"connection): {e!r}")
                if c is not None:
                    c.close()
                c = None
            n += 1
            self._pace(start, n)
        if c is not None:
            c.close()

    def _fresh(self, tid):
        n, start = 0, time.monotonic()
        while not self._stop.is_set():
            try:
                resp = http_get(self.port, f"/new/{tid}/{n}", timeout=30)
                self._record(self._good(resp), f"new connection {tid} #{n}: {resp!r}")
            except Exception as e:  # noqa: BLE001
                self._record(False, f"new connection {tid} #{n}: {e!r}")
            n += 1
            self._pace(start, n)

    def count(self):
        with self._lock:
            return self.ok

    def wait_ok(self, more, timeout=60):
        """Waits until `more` requests more than now have succeeded."""
        target = self.count() + more
        wait_for(lambda: self.count() >= target, timeout,
                 what=f"{more} more successful requests (failures so far: {self.failures[:5]})")

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(60)
        return self.failures


@pytest.fixture
def load():
    started = []

    def make(port, **kw):
        ld = Load(port, **kw)
        started.append(ld)
        return ld

    yield make
    for ld in started:
        ld.stop()


def backends_yaml(*demos):
    return "backends:\n" + "".join(f"  - id: {d.id}\n    url: {d.url}\n" for d in demos)


def with_workers(text, n):
    return re.sub(r"^workers: \d+$", f"workers: {n}", text, flags=re.MULTILINE)


# --------------------------------------------------------------------------
# upgrades that succeed


def test_an_upgrade_under_load_drops_no_request_and_no_connection(h, reaper, load, tmp_path,
                                                                   monkeypatch):
    binary = copy_binary(tmp_path)
    monkeypatch.setenv("LEVEE_BIN", str(binary))
    b1, b2 = h.demo("b1"), h.demo("b2")
    lv = h.levee(backends_yaml(b1, b2) + "workers: 2\ntimeouts:\n  shutdown: 30s\n")
    sockets = listen_inodes(lv.port)
    admin_socket = listen_inodes(lv.admin_port)
    assert len(sockets) == 2, f"2 workers, 2 SO_REUSEPORT sockets: {sockets}"
    traffic = load(lv.port)
    traffic.wait_ok(100)

    # A request in flight in the old process: its head and half its body.
    held = h.client(lv.port, timeout=60)
    held.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
    client_port = held.sock.getsockname()[1]
    wait_for(lambda: server_side_inode(lv.port, client_port) in socket_inodes(lv.pid) - {0},
             what="the old levee to accept the held connection")

    # A package upgrade: a new file at the path, and a new configuration
    # (more workers than sockets: they share them).
    replace_file(binary, lambda p: shutil.copy2(ORIGINAL_BIN, p))
    assert os.readlink(f"/proc/{lv.pid}/exe").endswith("(deleted)")
    write_config(lv, with_workers(lv.config_path.read_text(), 3), raw=True)
    lv.signal(signal.SIGUSR2)
    new = handed_over(lv, reaper)

    # The old process still finishes what it has: the held request.
    traffic.wait_ok(100)
    assert lv.alive(), "the old levee exited with a request in flight"
    held.send(b"67890")
    resp = held.read_response(timeout=30)
    assert resp.status == 200 and resp.complete, resp
    assert "close" in resp.headers.tokens("connection"), "the old levee closes after its last response"
    assert lv.wait_exit(60) == 0, "the old levee did not exit cleanly after its connections ended"

    traffic.wait_ok(300)  # all of them served by the new process
    assert listen_inodes(lv.port) == sockets, "the listening sockets were not the ones handed over"
    assert listen_inodes(lv.admin_port) == admin_socket
    assert sockets | admin_socket <= socket_inodes(new.pid)
    assert os.readlink(f"/proc/{new.pid}/exe") == str(binary), "not the new file"
    assert admin_get(lv, "/health").status == 200

    # The new process upgrades in turn (fewer workers than sockets now:
    # one worker serves both).
    write_config(lv, with_workers(lv.config_path.read_text(), 1), raw=True)
    new.signal(signal.SIGUSR2)
    newer = handed_over(lv, reaper, after=1)
    assert new.wait_exit(60) == 0, "the first new levee did not exit cleanly"
    traffic.wait_ok(200)
    assert listen_inodes(lv.port) == sockets
    assert sockets <= socket_inodes(newer.pid)

    failures = traffic.stop()
    print(f"load: {traffic.ok} ok ({traffic.ok_keepalive} keep-alive, {traffic.reused} on a reused "
          f"connection), {len(failures)} failed")
    assert failures == [], f"{len(failures)} failed requests of {traffic.ok + len(failures)}: {failures[:10]}"
    assert traffic.reused > 100, "the load did not reuse keep-alive connections"
    assert newer.stop() == []



# --------------------------------------------------------------------------
# upgrades that fail: the old process serves on, and nothing is dropped


def start_under_load(h, load, tmp_path, monkeypatch, extra=""):
    binary = copy_binary(tmp_path)
    monkeypatch.setenv("LEVEE_BIN", str(binary))
    b1 = h.demo("b1")
    lv = h.levee(backends_yaml(b1) + "workers: 2\n" + extra)
    traffic = load(lv.port, keepalive=3, fresh=3)
    traffic.wait_ok(100)
    return binary, lv, traffic


def still_serving(lv, traffic, sockets):
    traffic.wait_ok(150)
    assert lv.alive()
    assert listen_inodes(lv.port) == sockets
    failures = traffic.stop()
    assert failures == [], f"{len(failures)} failed requests: {failures[:10]}"
    assert lv.get("/after").status == 200


def test_a_new_binary_with_a_broken_config_leaves_the_old_one_serving(h, reaper, load, tmp_path,
                                                                      monkeypatch):
    _binary, lv, traffic = start_under_load(h, load, tmp_path, monkeypatch)
    sockets = listen_inodes(lv.port)
    good = lv.config_path.read_text()

    write_config(lv, good + "workerz: 2\n", raw=True)
    lv.signal(signal.SIGUSR2)
    pid, why = upgrade_failed(lv)

    assert why == "exited with status 1 before it served", why
    assert re.search(rf"levee\[{pid}\] .*unknown key 'workerz'", lv.stderr()) or \
        re.search(r"levee.yaml:\d+:\d+: unknown key 'workerz'", lv.stderr()), (
        "the new process's errors are not in the log")
    still_serving(lv, traffic, sockets)

    # Fixed: the next try succeeds.
    write_config(lv, good, raw=True)
    lv.signal(signal.SIGUSR2)
    new = handed_over(lv, reaper)
    assert lv.wait_exit(DEADLINE) == 0
    assert listen_inodes(lv.port) == sockets and sockets <= socket_inodes(new.pid)
    assert new.stop() == []


def test_a_binary_that_exits_at_once_leaves_the_old_one_serving(h, load, tmp_path, monkeypatch):
    binary, lv, traffic = start_under_load(h, load, tmp_path, monkeypatch)
    sockets = listen_inodes(lv.port)

    replace_file(binary, script("#!/bin/sh\nexit 3\n"))
    lv.signal(signal.SIGUSR2)
    _pid, why = upgrade_failed(lv)

    assert why == "exited with status 3 before it served", why
    still_serving(lv, traffic, sockets)


def test_a_missing_binary_leaves_the_old_one_serving(h, load, tmp_path, monkeypatch):
    binary, lv, traffic = start_under_load(h, load, tmp_path, monkeypatch)
    sockets = listen_inodes(lv.port)

    binary.unlink()
    lv.signal(signal.SIGUSR2)

    log_match(lv, rf"upgrade: cannot start {re.escape(str(binary))}: no such file or directory")
    still_serving(lv, traffic, sockets)


def test_a_binary_that_never_serves_is_stopped_and_the_old_one_serves_on(h, reaper, load,
                                                                         tmp_path, monkeypatch):
    binary, lv, traffic = start_under_load(h, load, tmp_path, monkeypatch,
                                           "timeouts:\n  binary_upgrade: 2s\n")
    sockets = listen_inodes(lv.port)
    marker = tmp_path / "hung.pid"

    # It holds the sockets and never accepts, never reports, and ignores
    # SIGTERM: the old levee keeps accepting from the same sockets meanwhile.
    replace_file(binary, script(f"#!/bin/sh\necho $$ > {marker}\ntrap '' TERM\nexec sleep 300\n"))
    lv.signal(signal.SIGUSR2)
    pid, why = upgrade_failed(lv)

    assert why == "did not report that it serves within 2000ms (sent SIGTERM)", why
    assert int(marker.read_text()) == pid
    log_match(lv, rf"upgrade: pid {pid} still runs 2000ms after SIGTERM: SIGKILL")
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="the hung process to be killed and reaped")
    still_serving(lv, traffic, sockets)

    # A failed upgrade leaves nothing behind: the next one succeeds.
    replace_file(binary, lambda p: shutil.copy2(ORIGINAL_BIN, p))
    lv.signal(signal.SIGUSR2)
    new = handed_over(lv, reaper)
    assert lv.wait_exit(DEADLINE) == 0
    assert new.stop() == []


# --------------------------------------------------------------------------
# POST /upgrade, and what stops an upgrade in progress


def test_post_upgrade_goes_through_the_admin_guard(h, reaper, tmp_path, monkeypatch):
    binary = copy_binary(tmp_path)
    monkeypatch.setenv("LEVEE_BIN", str(binary))
    b1 = h.demo("b1")
    lv = h.levee(backends_yaml(b1))

    refused = admin_post(lv, "/upgrade", control=False)  # no X-Levee-Admin: a web page could send it
    assert refused.status == 403, refused
    assert "upgrade" not in lv.stderr()
    wrong_method = admin_get(lv, "/upgrade")
    assert wrong_method.status == 405 and wrong_method.headers.get("allow") == "POST"

    resp = admin_post(lv, "/upgrade")
    assert resp.status == 202, resp
    body = json_of(resp)
    new = handed_over(lv, reaper)
    assert body == {"ok": True, "pid": new.pid}
    assert lv.wait_exit(DEADLINE) == 0
    assert admin_get(lv, "/health").status == 200  # the new process's admin port
    assert new.stop() == []


def test_an_upgrade_in_progress_refuses_another_and_sigterm_cancels_it(h, tmp_path, monkeypatch):
    binary = copy_binary(tmp_path)
    monkeypatch.setenv("LEVEE_BIN", str(binary))
    b1 = h.demo("b1")
    lv = h.levee(backends_yaml(b1))
    marker = tmp_path / "hung.pid"
    replace_file(binary, script(f"#!/bin/sh\necho $$ > {marker}\nexec sleep 300\n"))

    first = admin_post(lv, "/upgrade")
    assert first.status == 202, first
    pid = json_of(first)["pid"]
    wait_for(lambda: marker.exists() and marker.read_text().strip() == str(pid),
             what="the new binary to start")
    second = admin_post(lv, "/upgrade")
    assert second.status == 409 and json_of(second) == {
        "ok": False, "error": "an upgrade is in progress already"}, second
    lv.signal(signal.SIGUSR2)
    log_match(lv, r"upgrade: an upgrade is in progress already: not upgrading")
    assert lv.get("/").status == 200

    lv.signal(signal.SIGTERM)
    assert lv.wait_exit(DEADLINE) == 0
    assert not os.path.exists(f"/proc/{pid}"), "the cancelled upgrade's process outlived levee"
    assert f"upgrade: cancelled: pid {pid} gets SIGTERM" in lv.stderr()


# --------------------------------------------------------------------------
# systemd: who is the main process


class CredNotifySocket:
    """The datagram socket systemd reads sd_notify messages from, with the
    sender's pid of each (SO_PASSCRED), as systemd checks it against
    NotifyAccess=main."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lvn")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []  # (sender pid, {KEY: VALUE})
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        creds_len = socket.CMSG_SPACE(struct.calcsize("iII"))
        while not self._stop:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(4096, creds_len)
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:12])[0]
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._cond:
                self.messages.append((pid, fields))
                self._cond.notify_all()

    def wait(self, predicate, what, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, (pid, fields) in enumerate(self.messages):
                    if predicate(pid, fields):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout}s; got {self.messages}")
                self._cond.wait(left)

    def close(self):
        self._stop = True
        self._thread.join(5)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify(monkeypatch):
    ns = CredNotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", ns.path)
    yield ns
    ns.close()


def test_systemd_learns_the_new_main_pid_from_the_old_one(h, reaper, notify, tmp_path, monkeypatch):
    binary = copy_binary(tmp_path)
    monkeypatch.setenv("LEVEE_BIN", str(binary))
    lv = h.levee("backends: []\n")
    old = lv.pid
    notify.wait(lambda pid, m: pid == old and m.get("READY") == "1", "READY=1 at start")

    # A failed upgrade says so, with the pid that failed.
    write_config(lv, "backends: []\nworkerz: 1\n")
    lv.signal(signal.SIGUSR2)
    failed_pid, _why = upgrade_failed(lv)
    notify.wait(lambda pid, m: pid == old and m.get("STATUS", "").startswith(
        f"upgrade failed (pid {failed_pid})"), "STATUS=upgrade failed")

    write_config(lv, "backends: []\n")
    lv.signal(signal.SIGUSR2)
    new = handed_over(lv, reaper)
    handover = notify.wait(lambda pid, m: "MAINPID" in m, "MAINPID=")
    assert lv.wait_exit(DEADLINE) == 0
    new.signal(signal.SIGHUP)
    reloading = notify.wait(lambda pid, m: m.get("RELOADING") == "1", "RELOADING=1 from the new levee")
    notify.wait(lambda pid, m: pid == new.pid and m.get("READY") == "1" and "generation 2"
                in m.get("STATUS", ""), "READY=1 after the reload")

    sender, fields = notify.messages[handover]
    assert sender == old and fields["MAINPID"] == str(new.pid) and fields.get("READY") == "1", (
        notify.messages)
    # Under NotifyAccess=main systemd takes only the main process's words:
    # the old one before the hand-over, the new one after it, never both.
    before = {pid for pid, _m in notify.messages[:handover + 1]}
    after = {pid for pid, _m in notify.messages[handover + 1:]}
    assert before == {old} and after == {new.pid}, notify.messages
    assert not any(m.get("STOPPING") for _p, m in notify.messages), "the service is not stopping"
    assert notify.messages[reloading][0] == new.pid
    assert new.stop() == []


# --------------------------------------------------------------------------
# socket activation (levee.socket)


def activated(h, tmp_path, monkeypatch, sock, config, names="http"):
    """levee started the way systemd starts a socket-activated service: the
    socket as descriptor 3, LISTEN_FDS=1, LISTEN_PID its own pid,
    LISTEN_FDNAMES."""
    fd = sock.fileno()
    wrapper = tmp_path / "activate"
    # bash: dash takes one-digit descriptors only.
    wrapper.write_text(f'#!/bin/bash\nexec 3<&{fd} {fd}<&-\nLISTEN_PID=$$ exec "{levee_bin()}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("LEVEE_BIN", str(wrapper))
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_FDNAMES", names)
    try:
        return h.levee(config, pass_fds=(fd,))
    finally:
        monkeypatch.delenv("LISTEN_FDS")
        monkeypatch.delenv("LISTEN_FDNAMES")


def listening_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    return s


def test_socket_activation_serves_the_socket_systemd_passes(h, reaper, load, tmp_path,
                                                            monkeypatch):
    b1 = h.demo("b1")
    port = PORTS.get()
    sock = listening_socket(port)
    inode = os.fstat(sock.fileno()).st_ino
    # A client that connected before levee ran: it waits in the backlog.
    early = RawClient(port, timeout=60)
    early.send(b"GET /early HTTP/1.1\r\nHost: x\r\n\r\n")

    lv = activated(h, tmp_path, monkeypatch, sock,
                   f"listen: 127.0.0.1:{port}\nworkers: 3\n" + backends_yaml(b1))
    sock.close()  # systemd keeps its own; levee holds the socket now

    resp = early.read_response(timeout=30)
    early.close()
    assert resp.status == 200 and resp.headers.get("x-backend-id") == "b1", resp
    assert listen_inodes(port) == {inode}, "levee listened on a socket of its own"
    assert inode in socket_inodes(lv.pid)
    assert "socket activation: 1 listening socket from systemd" in lv.stderr()
    traffic = load(port, keepalive=3, fresh=3)
    traffic.wait_ok(150)  # three workers take turns on the one socket

    # An upgrade hands the same socket on.
    lv.signal(signal.SIGUSR2)
    new = handed_over(lv, reaper)
    assert lv.wait_exit(DEADLINE) == 0
    traffic.wait_ok(150)
    failures = traffic.stop()
    assert failures == [], failures[:10]
    assert listen_inodes(port) == {inode} and inode in socket_inodes(new.pid)
    assert new.stop() == []


def test_a_passed_socket_the_config_does_not_name_is_not_used(h, tmp_path, monkeypatch):
    b1 = h.demo("b1")
    other = PORTS.get()
    sock = listening_socket(other)

    lv = activated(h, tmp_path, monkeypatch, sock, backends_yaml(b1), names="stale")
    sock.close()

    assert lv.get("/").status == 200  # on the address it bound itself (the harness's)
    assert re.search(rf"the socket on 127.0.0.1:{other} from systemd \(stale\) is not a listen "
                     r"address of the configuration: not used", lv.stderr()), lv.stderr()
    assert listen_inodes(other) == set(), "the unused socket was kept open"


def test_a_descriptor_that_is_not_a_listening_socket_is_refused(h, tmp_path, monkeypatch):
    b1 = h.demo("b1")
    not_listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    not_listening.bind(("127.0.0.1", 0))

    lv = activated(h, tmp_path, monkeypatch, not_listening, backends_yaml(b1), names="odd")
    not_listening.close()

    assert lv.get("/").status == 200
    assert "descriptor 3 from systemd (odd): not listening; ignored" in lv.stderr()
