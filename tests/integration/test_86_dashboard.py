"""86 — the admin dashboard (src/admin/dashboard.html at GET / of the admin
listener), loaded in headless Chromium and driven over the DevTools protocol.

The page's DOM contract, which these tests read:
- `tr[data-backend=ID] [data-field=state]`: ok | unhealthy | open | half_open |
  draining | disabled (admin state first, then the breaker, then health);
- `[data-field=status]`: healthy | degraded | unhealthy; `body[data-conn]`:
  live | lost (| init before the first answer);
- `canvas[data-chart=rps|errors|latency|state]` with `data-points`, the number
  of points it drew; `window.__levee_points` (all charts), `window.__levee_updates`
  (successful polls).

Chromium is Debian's (`/usr/bin/chromium`, scripts/deps.sh); the tests skip
when it is absent. CDP goes over one websocket (python3-websockets, asyncio on
a thread of its own). Set LEVEE_DASHBOARD_PNG=/path.png to keep a screenshot
of the page against fake_admin.py (light, and -dark.png).
"""

import asyncio
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from fake_admin import FakeAdmin
from harness import PORTS, REPO_ROOT, port_accepts, wait_for

CHROMIUM = "/usr/bin/chromium"
PAGE = REPO_ROOT / "src" / "admin" / "dashboard.html"


# --------------------------------------------------------------------------
# headless Chromium over the DevTools protocol


class CdpError(Exception):
    pass


class Chromium:
    """One headless Chromium (its own process group and profile dir) with one
    page attached in flat session mode: `open(url)`, `eval(js)`, `events`."""

    FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--remote-debugging-port=0"]

    def __init__(self, workdir):
        import websockets  # python3-websockets (Debian); imported here so a skip needs nothing

        self._websockets = websockets
        self.profile = Path(workdir) / "chromium-profile"
        self.profile.mkdir()
        self.log_path = Path(workdir) / "chromium.stderr"
        self.events = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending = {}
        self.session = None
        self.ws = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(
                [CHROMIUM, *self.FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                start_new_session=True, preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        port_file = self.profile / "DevToolsActivePort"

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"chromium exited with {self.proc.returncode}:\n{self.stderr()}")
            lines = port_file.read_text().split("\n") if port_file.exists() else []
            return lines if len(lines) >= 2 and lines[1] else None

        try:
            port, path = wait_for(ready, 45, 0.05, "chromium's DevToolsActivePort")[:2]
            self._run(self._connect(f"ws://127.0.0.1:{port}{path}"))
        except BaseException:
            self.close()
            raise

    def stderr(self):
        return self.log_path.read_text(errors="replace")[-3000:]

    # ---- the websocket, on the loop thread

    def _run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _connect(self, url):
        self.ws = await self._websockets.connect(url, max_size=None, ping_interval=None)
        self._reader = self.loop.create_task(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                fut = self._pending.pop(msg.get("id"), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                elif "method" in msg:
                    with self._lock:
                        self.events.append(msg)
        except self._websockets.ConnectionClosed:
            pass
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(CdpError("the DevTools connection closed"))

    async def _send(self, msg):
        fut = self.loop.create_future()
        self._pending[msg["id"]] = fut
        await self.ws.send(json.dumps(msg))
        return await fut

    def send(self, method, timeout=30, session=True, **params):
        msg = {"id": next(self._ids), "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        reply = self._run(self._send(msg), timeout)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return reply["result"]

    # ---- the page

    def open(self, url, width=1280, height=900):
        """A new page, its console captured, navigated to `url` (waits for load)."""
        target = self.send("Target.createTarget", session=False, url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", session=False, targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Runtime", "Page", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        nav = self.send("Page.navigate", url=url)
        assert not nav.get("errorText"), f"navigating to {url}: {nav}"
        wait_for(lambda: self.eval("[location.href, document.readyState]") == [url, "complete"],
                 30, 0.05, f"{url} to load")
        return self

    def eval(self, expr):
        """The value of a JS expression in the page (JSON-able); a thrown error fails."""
        res = self.send("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise CdpError(f"{expr!r} threw: {res['exceptionDetails']}")
        return res["result"].get("value")

    def console_errors(self):
        """Console calls of level error/assert and uncaught exceptions, as text."""
        out = []
        with self._lock:
            events = list(self.events)
        for ev in events:
            p = ev.get("params", {})
            if ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console." + p["type"] + ": " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif ev["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                what = d.get("exception", {}).get("description") or d.get("text")
                out.append(f"exception: {what}")
        return out

    def screenshot(self, path, dark=False):
        """A full-page PNG, light or dark (prefers-color-scheme)."""
        import base64

        self.send("Emulation.setEmulatedMedia", media="", features=[
            {"name": "prefers-color-scheme", "value": "dark" if dark else "light"}])
        n = self.eval("window.__levee_updates")
        wait_for(lambda: self.eval("window.__levee_updates") > n, 15, 0.05, "a redraw")
        height = self.eval("Math.ceil(document.documentElement.scrollHeight)")
        self.send("Emulation.setDeviceMetricsOverride", width=1280, height=height,
                  deviceScaleFactor=1, mobile=False)
        wait_for(lambda: self.eval("window.__levee_updates") > n + 1, 15, 0.05, "a redraw")
        data = self.send("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def close(self):
        try:
            if self.ws is not None:
                self._run(self.ws.close(), 5)
        except Exception:  # noqa: BLE001 - the browser may be gone already
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        # children that left our process group (zygotes, ...) still carry the
        # profile dir on their command line: end those too, each by PID
        for pid in _pids_with_arg(f"--user-data-dir={self.profile}"):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


try:
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _PRCTL = None


def _die_with_parent():
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no browser outlives a killed pytest


def _pids_with_arg(arg):
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if arg.encode() in (d / "cmdline").read_bytes().split(b"\0"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.fixture
def browser(tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; scripts/deps.sh)")
    b = Chromium(tmp_path)
    try:
        yield b
    finally:
        b.close()


# --------------------------------------------------------------------------
# what every scenario checks on the page


def state_of(page, backend_id):
    """The text of the backend's state cell, or None while there is no such row."""
    return page.eval(
        "(() => { const e = document.querySelector('[data-backend=\"' + "
        f"CSS.escape({json.dumps(backend_id)}) + '\"] [data-field=\"state\"]');"
        " return e ? e.textContent : null; })()")


def wait_state(page, backend_id, wanted, timeout):
    wanted = {wanted} if isinstance(wanted, str) else set(wanted)
    seen = []

    def reached():
        s = state_of(page, backend_id)
        if not seen or seen[-1] != s:
            seen.append(s)
        return s in wanted

    try:
        wait_for(reached, timeout, 0.1, f"{backend_id} to show {sorted(wanted)}")
    except AssertionError as e:
        raise AssertionError(f"{e}; states seen on the page: {seen}; console: "
                             f"{page.console_errors()}") from None
    return state_of(page, backend_id)


def check_page(page):
    """Charts drawn, nothing fetched from another origin, no console error."""
    charts = page.eval("[...document.querySelectorAll('canvas[data-chart]')].map(c => ({"
                       "chart: c.dataset.chart, width: c.width, points: +c.dataset.points || 0}))")
    assert {c["chart"] for c in charts} == {"rps", "errors", "latency", "state"}, charts
    for c in charts:
        assert c["width"] > 0 and c["points"] > 0, f"chart {c['chart']} drew nothing: {charts}"
    assert page.eval("window.__levee_points") > 0
    origin = page.eval("location.origin")
    urls = page.eval("performance.getEntriesByType('navigation').concat("
                     "performance.getEntriesByType('resource')).map(e => e.name)")
    assert urls, "no resource timing entries at all"
    foreign = [u for u in urls if not u.startswith(origin + "/")]
    assert not foreign, f"the page fetched from another origin: {foreign}"
    assert page.console_errors() == []


def http_post(url):
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


# --------------------------------------------------------------------------
# the page alone


def test_dashboard_html_is_small_and_self_contained():
    text = PAGE.read_text()
    assert len(text.encode()) < 32 * 1024, f"{PAGE} is {len(text.encode())} bytes"
    # no external reference of any kind: URLs, protocol-relative links, imports
    external = r"\b(?:https?|wss?|ftp):|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\("
    assert not re.search(external, text, re.I)
    for attr in re.findall(r"\b(?:src|href|action)\s*=\s*\"?([^\s\">]*)", text, re.I):
        assert attr.startswith("data:"), f"external reference {attr!r}"
    # data goes in through textContent only
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(", text)


def test_dashboard_renders_fake_admin(browser, tmp_path):
    fake = FakeAdmin(port=PORTS.get()).start()
    try:
        page = browser.open(fake.url)
        for bid in ("b1", "b2", "b3"):
            wait_state(page, bid, "ok", 20)
        wait_for(lambda: page.eval("document.body.dataset.conn") == "live", 10, 0.05, "live")
        assert page.eval("document.querySelector('[data-field=status]').textContent") == "healthy"
        assert page.eval("document.querySelectorAll('tr[data-backend]').length") == 3
        # every API call carries X-Levee-Admin (what levee asks of a POST without a token)
        calls = dict(fake.api_calls)
        assert calls["with_header"] > 0 and calls["without_header"] == 0, calls

        http_post(fake.url + "__fake/state?id=b2&state=unhealthy")
        wait_state(page, "b2", "unhealthy", 15)
        assert page.eval("document.querySelector('[data-field=status]').textContent") == "degraded"

        http_post(fake.url + "__fake/state?id=b2&state=open")
        wait_state(page, "b2", "open", 15)
        breaker = page.eval(
            "document.querySelector('[data-backend=\"b2\"] [data-field=breaker]').textContent")
        assert re.search(r"open\s*probes in \d+ s|open\s*probing", breaker), breaker
        check_page(page)

        out = os.environ.get("LEVEE_DASHBOARD_PNG")
        for dark in (False, True):
            png = tmp_path / ("dashboard-dark.png" if dark else "dashboard.png")
            page.screenshot(png, dark=dark)
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            if out:
                shutil.copy(png, out.replace(".png", "-dark.png") if dark else out)

        for bid, state in (("b1", "draining"), ("b3", "disabled"), ("b2", "half_open")):
            http_post(fake.url + f"__fake/state?id={bid}&state={state}")
            wait_state(page, bid, state, 15)
        http_post(fake.url + "__fake/state?id=b2&state=ok")
        wait_state(page, "b2", "ok", 15)
        assert page.console_errors() == []

        # config data is text, never markup
        hostile = '<img src=x onerror="window.__pwned=1">'
        query = urllib.parse.urlencode({"id": hostile, "url": "<b>u</b>"})
        http_post(fake.url + "__fake/add?" + query)
        wait_state(page, hostile, "ok", 15)
        assert page.eval("document.querySelector('tbody img, tbody b') === null")
        assert page.eval("window.__pwned === undefined")
        assert hostile in page.eval("document.querySelector('tbody').textContent")

        # API down: the last data stays, greyed, with a visible "connection lost"
        http_post(fake.url + "__fake/fail?on=1")
        wait_for(lambda: page.eval("document.body.dataset.conn") == "lost", 15, 0.05, "lost")
        assert "connection lost" in page.eval("document.getElementById('conn').textContent")
        assert state_of(page, "b2") == "ok"
        opacity = "+getComputedStyle(document.querySelector('main')).opacity"
        wait_for(lambda: page.eval(opacity) < 0.6, 10, 0.05, "the stale data to be greyed")
        http_post(fake.url + "__fake/fail?on=0")
        wait_for(lambda: page.eval("document.body.dataset.conn") == "live", 15, 0.05, "live again")
    finally:
        fake.stop()


# --------------------------------------------------------------------------
# the page served by levee


def test_dashboard_shows_killed_backend_unhealthy_then_ok(h, browser):
    b1, b2, b3 = h.demo("b1"), h.demo("b2"), h.demo("b3")
    admin_port = PORTS.get()
    lv = h.levee(f"""
        admin:
          listen: "127.0.0.1:{admin_port}"
        backends:
          - id: b1
            url: {b1.url}
            health_check_enabled: true
          - id: b2
            url: {b2.url}
            health_check_enabled: true
          - id: b3
            url: {b3.url}
            health_check_enabled: true
        health_check:
          interval: 200ms
          timeout: 200ms
          unhealthy_threshold: 2
          healthy_threshold: 1
    """)
    wait_for(lambda: port_accepts("127.0.0.1", admin_port), 20, 0.05, "the admin port")
    c = lv.client()
    for i in range(60):
        assert c.get(f"/dashboard/{i}").status == 200

    page = browser.open(f"http://127.0.0.1:{admin_port}/")
    for bid in ("b1", "b2", "b3"):
        wait_state(page, bid, "ok", 20)
    assert page.eval("document.querySelector('[data-field=status]').textContent") == "healthy"

    # no traffic while b2 is down: only health checks notice it (the breaker stays closed)
    b2.stop()
    wait_state(page, "b2", {"unhealthy", "open"}, 15)
    assert page.eval("document.querySelector('[data-field=status]').textContent") == "degraded"
    assert state_of(page, "b1") == "ok" and state_of(page, "b3") == "ok"
    check_page(page)

    b2.start(port=b2.port)  # the same port: levee's config names it
    wait_state(page, "b2", "ok", 20)
    assert page.eval("document.querySelector('[data-field=status]').textContent") == "healthy"
    assert page.console_errors() == []


def test_dashboard_groups_backends_by_pool_and_lists_the_routes(h, browser):
    a1, a2, w1 = h.demo("a1"), h.demo("a2"), h.demo("w1")
    admin_port = PORTS.get()
    lv = h.levee(f"""
        admin:
          listen: "127.0.0.1:{admin_port}"
        pools:
          api:
            backends: [{{ id: a1, url: "{a1.url}" }}, {{ id: a2, url: "{a2.url}" }}]
          web:
            backends: [{{ id: w1, url: "{w1.url}" }}]
        routes:
          - name: v1
            match: {{ path_prefix: /v1 }}
            pool: api
          - match: {{ path_exact: /robots.txt }}
            respond: {{ status: 200, body: "x" }}
          - match: {{ path_prefix: / }}
            pool: web
    """)
    wait_for(lambda: port_accepts("127.0.0.1", admin_port), 20, 0.05, "the admin port")
    page = browser.open(f"http://127.0.0.1:{admin_port}/")
    for bid in ("a1", "a2", "w1"):
        wait_state(page, bid, "ok", 20)
    # The rows in order: each pool's header row, then its backends.
    order = page.eval("[...document.querySelectorAll('#rows tr')].map(t => t.dataset.pool ? "
                      "'pool:' + t.dataset.pool : t.dataset.backend)")
    assert order == ["pool:api", "a1", "a2", "pool:web", "w1"], order
    routes = page.eval("[...document.querySelectorAll('#routes tr')].map(t => ["
                       "t.dataset.route, t.querySelector('[data-field=match]').textContent, "
                       "t.querySelector('[data-field=target]').textContent])")
    assert routes == [["v1", "path_prefix /v1", "pool api"],
                      ["routes[1]", "path_exact /robots.txt", "respond 200"],
                      ["routes[2]", "path_prefix /", "pool web"],
                      ["no_route", "no other route", "respond 404"]], routes
    assert page.eval("document.getElementById('routes-panel').hidden") is False
    assert page.console_errors() == []
