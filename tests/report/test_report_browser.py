"""The report in a real browser: headless Chromium through the DevTools protocol.

Fails on any console error, uncaught exception, error log entry (e.g. a failed load), any
request that is not ``file:`` or ``data:`` (the report must need no network), and any missing or
empty figure; saves a full-page screenshot next to the report. Skipped only when Chromium is not
installed (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium")
                                         else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium; .ci/run does it)"
)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


class _WebSocket:
    """The smallest RFC 6455 client CDP needs (text frames, client masking, fragmentation)."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise ConnectionError(f"websocket handshake failed: {status!r}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text: str) -> None:
        data = text.encode()
        n = len(data)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + body)

    def recv(self) -> str:
        parts = []
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("websocket closed by the browser")
            if opcode in (0x9, 0xA):  # ping/pong: ignore
                continue
            parts.append(payload)
            if b0 & 0x80:
                return b"".join(parts).decode()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _Browser:
    """Headless Chromium with a fresh profile, driven over the DevTools protocol."""

    def __init__(self, profile: Path) -> None:
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--remote-allow-origins=*", "--window-size=1200,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        self.ws = _WebSocket(pages[0]["webSocketDebuggerUrl"])
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method: str, timeout_s: float = 60.0) -> None:
        if any(e["method"] == method for e in self.events):
            return
        self.ws.sock.settimeout(timeout_s)
        while True:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return

    def kill(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.kill()
        self.proc.wait(timeout=30)


_CHECK_JS = """JSON.stringify((() => {
  const imgs = Array.from(document.images);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0))
                  .map(i => i.alt || i.src.slice(0, 40));
  const svgs = Array.from(document.querySelectorAll('svg'));
  const emptySvgs = svgs.filter(s => s.childElementCount === 0).length;
  const h2 = Array.from(document.querySelectorAll('h2')).map(h => h.id);
  return {n_img: imgs.length, bad, n_svg: svgs.length, emptySvgs, h2};
})())"""


def open_in_browser(html_path: Path, profile: Path, screenshot: Path) -> dict:
    """Open a file, return {'problems': [...], 'page': {...}} and save a screenshot."""
    b = _Browser(profile)
    try:
        b.call("Runtime.enable")
        b.call("Log.enable")
        b.call("Network.enable")
        b.call("Page.enable")
        b.call("Page.navigate", url=html_path.resolve().as_uri())
        b.wait_event("Page.loadEventFired")
        page = json.loads(b.call("Runtime.evaluate", expression=_CHECK_JS,
                                 returnByValue=True)["result"]["value"])
        shot = b.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        problems = []
        for e in b.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                problems.append(f"console.{p['type']}: {p.get('args')}")
            elif m == "Runtime.exceptionThrown":
                problems.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                problems.append(f"log error: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                if not url.startswith(("file:", "data:")):
                    problems.append(f"network request: {url}")
            elif m == "Network.loadingFailed":
                problems.append(f"load failed: {p.get('errorText')}")
        return {"problems": problems, "page": page}
    finally:
        b.kill()


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from report_run_fixture import make_run

    run = make_run(tmp_path_factory.mktemp("browser"))
    from reconsolidate.report import write_report

    return write_report(run)


def test_report_opens_cleanly_in_chromium(report_path: Path, tmp_path: Path) -> None:
    shot = report_path.parent / "report-screenshot.png"
    res = open_in_browser(report_path, tmp_path / "profile", shot)
    assert res["problems"] == []
    page = res["page"]
    # PK, memory (from memory.parquet), weekly drinking, Kaplan-Meier: 4 figures, all rendered
    assert page["n_img"] >= 4
    assert page["bad"] == []
    assert page["emptySvgs"] == 0
    assert {"protocol", "pk", "memory", "drinking", "km", "endpoints", "calibration"} <= set(
        page["h2"]
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_report_browser_check_catches_errors(tmp_path: Path) -> None:
    """The checker itself can fail: a console error, a broken image, a network request."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>x</title></head><body>"
        "<img alt='broken' src='data:image/png;base64,AAAA'>"
        "<img alt='remote' src='http://127.0.0.1:9/x.png'>"
        "<script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    res = open_in_browser(bad, tmp_path / "profile", tmp_path / "bad.png")
    text = " ".join(res["problems"])
    assert "console.error" in text
    assert "network request: http://127.0.0.1:9/x.png" in text
    assert set(res["page"]["bad"]) == {"broken", "remote"}
