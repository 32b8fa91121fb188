"""Open an HTML file in headless Chromium and report what a reader would see: how many plotly figures
rendered, the console errors, and whether the page is wider than the window.

A figure whose JSON is wrong, a plotly.js that failed to load (a shared ``plotly.min.js`` not beside the
page), or a script error shows up only in a browser: the HTML itself is still well-formed. :func:`check_page`
drives Debian's ``chromium-headless-shell`` over the Chrome DevTools protocol on a pipe
(``--remote-debugging-pipe``: no port, no network, no extra package): it opens the page in a fresh profile,
collects console errors, uncaught exceptions, failed loads and dialogs (an ``alert()`` means injected script
ran), waits until every ``.js-plotly-plot`` holds a rendered ``.main-svg``, and reads the counts back.

Used by the report's browser test and reusable for any HTML export (a notebook's, a stand-alone figure).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp_af.errors import InterpAFError

CANDIDATES = ("chromium-headless-shell", "/usr/lib/chromium/chromium-headless-shell", "chromium", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars")

# What the page holds once plotly has drawn: a plotly div gets class js-plotly-plot when Plotly.newPlot runs,
# and its <svg class="main-svg"> when drawing is done.
_PROBE = """(() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const divs = document.querySelectorAll('.plotly-graph-div').length;
  const rendered = plots.filter(p => p.querySelector('.main-svg')).length;
  const widest = Math.max(0, ...plots.map(p => p.getBoundingClientRect().right));
  return JSON.stringify({plots: plots.length, divs: divs, rendered: rendered,
    svgs: document.querySelectorAll('.main-svg').length, title: document.title,
    scroll_width: document.documentElement.scrollWidth, window_width: window.innerWidth,
    widest_plot: Math.round(widest), ready: document.readyState});
})()"""


@dataclass(frozen=True)
class PageCheck:
    """What a browser saw. ``plots``: elements plotly drew into (``.js-plotly-plot``); ``rendered``: of those,
    the ones holding a ``.main-svg``; ``divs``: plotly figure divs in the HTML (drawn or not); ``errors``:
    console errors, uncaught exceptions, failed resource loads and dialogs, in order; ``overflow_px``: how much
    wider than the window the page is (0 = fits)."""

    path: str
    plots: int
    rendered: int
    divs: int
    svgs: int
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    overflow_px: int
    title: str
    seconds: float
    texts: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors and self.rendered == self.plots == self.divs

    def explain(self) -> str:
        return (f"{self.path}: {self.rendered}/{self.plots} plots rendered ({self.divs} plotly divs), "
                f"{len(self.errors)} errors{': ' + ' | '.join(self.errors[:5]) if self.errors else ''}, "
                f"overflow {self.overflow_px}px")


def find_chromium() -> str | None:
    """A headless Chrome: ``$INTERP_AF_CHROME``, else Debian's chromium-headless-shell, else a full Chromium."""
    env = os.environ.get("INTERP_AF_CHROME")
    if env:
        return env
    for name in CANDIDATES:
        found = shutil.which(name) or (name if os.path.isfile(name) else None)
        if found:
            return found
    return None


class _Pipe:
    """The DevTools protocol over ``--remote-debugging-pipe``: JSON messages, each ended by a NUL byte;
    Chrome reads commands on its fd 3 and writes replies and events on its fd 4."""

    def __init__(self, chrome: str, args: list[str]):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def child_fds() -> None:  # runs in the child between fork and exec: put the pipe ends at fds 3 and 4
            # via copies at fds >= 10, so neither dup2 clobbers the other's source, and dup2 (unlike a
            # no-op dup2(3, 3)) clears close-on-exec
            r, w = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        # preexec_fn, not pass_fds: Chrome wants exactly fds 3 and 4, pass_fds keeps the parent's numbers
        self.proc = subprocess.Popen([chrome, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=child_fds, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._queue: list[dict[str, Any]] = []
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        want, deadline = self._id, time.monotonic() + timeout
        while True:
            m = self._next(deadline)
            if m.get("id") == want:
                if "error" in m:
                    raise InterpAFError(f"Chrome refused {method}: {m['error'].get('message')}")
                return m.get("result", {})
            self._event(m)

    def _event(self, m: dict[str, Any]) -> None:
        if "method" not in m:
            return          # the reply to a command sent without waiting (a dialog dismissal)
        self.events.append(m)
        if m["method"] == "Page.javascriptDialogOpening":
            # an open alert() blocks the page, and every later command with it: dismiss it at once
            self._id += 1
            os.write(self._w, json.dumps({"id": self._id, "method": "Page.handleJavaScriptDialog",
                                          "params": {"accept": True}, "sessionId": m.get("sessionId")}).encode()
                     + b"\0")

    def pump(self, seconds: float) -> None:
        """Read events for up to ``seconds`` (returns early when nothing arrives for that long)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self._event(self._next(deadline))
        except TimeoutError:
            pass

    def _next(self, deadline: float) -> dict[str, Any]:
        """The next message from Chrome (one read can bring several: the rest wait in ``_queue``)."""
        while not self._queue:
            self._queue.extend(self._read(deadline))
        return self._queue.pop(0)

    def _read(self, deadline: float) -> list[dict[str, Any]]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from Chrome in time")
            ready, _, _ = select.select([self._r], [], [], left)
            if not ready:
                raise TimeoutError("no reply from Chrome in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace")[-800:] if self.proc.stderr else ""
                raise InterpAFError(f"Chrome exited (code {self.proc.poll()}): {err.strip() or 'no output'}")
            self._buf += chunk
        *msgs, self._buf = self._buf.split(b"\0")
        return [json.loads(m) for m in msgs if m]

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (InterpAFError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.stderr:
            self.proc.stderr.close()


def _describe(ev: dict[str, Any]) -> tuple[str, str] | None:
    """(level, text) of a console / exception / log / dialog event; None for other events."""
    method, p = ev.get("method"), ev.get("params", {})
    if method == "Runtime.consoleAPICalled":
        text = " ".join(str(a.get("value", a.get("description", a.get("type", "")))) for a in p.get("args", []))
        level = {"error": "error", "assert": "error", "warning": "warning"}.get(p.get("type"), "")
        return (level, f"console.{p.get('type')}: {text}") if level else None
    if method == "Runtime.exceptionThrown":
        d = p.get("exceptionDetails", {})
        exc = d.get("exception", {}).get("description") or d.get("text", "exception")
        return "error", f"uncaught {exc.splitlines()[0]} ({d.get('url', '')}:{d.get('lineNumber', '?')})"
    if method == "Log.entryAdded":
        e = p.get("entry", {})
        if e.get("level") in ("error", "warning"):
            return e["level"], f"{e.get('source', 'log')}: {e.get('text', '')} {e.get('url', '')}".strip()
    if method == "Page.javascriptDialogOpening":
        return "error", f"dialog {p.get('type')}: {p.get('message')}"
    return None


def check_page(path: str | Path, *, expected_plots: int | None = None, timeout: float = 60.0, width: int = 1280,
               height: int = 900, screenshot: str | Path | None = None, texts: str | None = None,
               chrome: str | None = None, settle: float = 5.0) -> PageCheck:
    """Open ``path`` in headless Chromium and wait until every plotly figure rendered (and, when given,
    ``expected_plots`` of them exist), or ``timeout`` seconds, or the loaded page did not change for ``settle``
    seconds (a plotly.js that never loaded). ``screenshot``: save a PNG of the first screen.
    ``texts``: a CSS selector whose elements' text content to return (e.g. ``".xtick text"``).
    Raises :class:`InterpAFError` when no Chrome is found or it does not start."""
    path = Path(path).resolve()
    if not path.is_file():
        raise InterpAFError(f"{path} is not a file; pass the HTML file to open")
    chrome = chrome or find_chromium()
    if chrome is None:
        raise InterpAFError("no headless Chrome found: apt-get install chromium-headless-shell "
                            "(or set INTERP_AF_CHROME to a Chrome binary)")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="interp-af-chrome-") as profile:
        pipe = _Pipe(chrome, [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                              "--remote-debugging-pipe", "about:blank"])
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            sid = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                pipe.send(f"{domain}.enable", session=sid)
            pipe.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                             "deviceScaleFactor": 1, "mobile": False}, session=sid)
            pipe.send("Page.navigate", {"url": path.as_uri()}, session=sid)
            deadline = time.monotonic() + timeout
            state: dict[str, Any] = {}
            stable, last, since = 0, None, time.monotonic()
            while time.monotonic() < deadline:
                pipe.pump(0.2)
                r = pipe.send("Runtime.evaluate", {"expression": _PROBE, "returnByValue": True}, session=sid)
                if "value" not in r.get("result", {}):   # between documents (navigation): ask again
                    continue
                state = json.loads(r["result"]["value"])
                done = (state["ready"] == "complete" and state["rendered"] == state["plots"] == state["divs"]
                        and (expected_plots is None or state["plots"] >= expected_plots))
                stable = stable + 1 if done else 0
                if stable >= 2:     # complete at two polls in a row: drawing has finished
                    break
                if state != last:
                    last, since = state, time.monotonic()
                elif state["ready"] == "complete" and time.monotonic() - since > settle:
                    break           # loaded, and nothing changed for `settle` seconds: it will not finish
            found: list[str] = []
            if texts:
                expr = f"JSON.stringify([...document.querySelectorAll({json.dumps(texts)})].map(e => e.textContent))"
                found = json.loads(pipe.send("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                                             session=sid)["result"]["value"])
            if screenshot is not None:
                shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=sid)
                out = Path(screenshot)
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_name(f".{out.name}.tmp")
                tmp.write_bytes(base64.b64decode(shot["data"]))
                tmp.replace(out)   # never a half-written picture
            pipe.pump(0.1)
        finally:
            pipe.close()
    described = [d for d in map(_describe, pipe.events) if d is not None]
    return PageCheck(
        path=str(path), plots=state.get("plots", 0), rendered=state.get("rendered", 0), divs=state.get("divs", 0),
        svgs=state.get("svgs", 0), errors=tuple(t for lvl, t in described if lvl == "error"),
        warnings=tuple(t for lvl, t in described if lvl == "warning"),
        overflow_px=max(0, state.get("scroll_width", 0) - state.get("window_width", 0)),
        title=state.get("title", ""), seconds=time.monotonic() - t0, texts=tuple(found))
