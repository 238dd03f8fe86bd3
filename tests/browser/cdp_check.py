#!/usr/bin/env python3
"""Loads a page in headless Chromium and waits for the page's own self-test to finish.

    usage: cdp_check.py URL --screenshot PATH [--insecure] [--timeout S] [--chromium PATH]
                        [--browser-log PATH]

Starts Debian's /usr/bin/chromium headless with a fresh profile and drives it over the DevTools
protocol (CDP) with the `websockets` package (.venv, tests/python/requirements.txt): navigates
to URL, logs the page's console messages, uncaught exceptions, failed loads and HTTP errors,
polls `window.selftest` until it says `done` or S seconds (default 20) pass, saves a screenshot
(PNG) to PATH, and prints one verdict line:

    cdp: PASS: <document.title> (<seconds> s)      exit status 0
    cdp: FAIL: <why> (<seconds> s)                 exit status 1

PASS needs `window.selftest.done` and `.ok` to be true, no uncaught exception on the page, no
failed load and no HTTP status >= 400 for anything the page loaded. The browser (its whole
process group) is killed however the check ends. --insecure adds --ignore-certificate-errors
(the tests' certificates are not in Chromium's trust store). Only the Page, Runtime, Network and
Log domains are used: they have been stable for years, so the script keeps working as Debian
moves Chromium to a new major.
"""

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import websockets  # noqa: F401  (the repository's .venv has it)
except ImportError:
    # Started by another python3: run again under the repository's .venv, if it is there.
    _venv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".venv")
    _py = os.path.join(_venv, "bin", "python")
    if os.path.exists(_py) and os.path.realpath(sys.prefix) != os.path.realpath(_venv):
        os.execv(_py, [_py] + sys.argv)
    sys.exit("%s: needs the websockets package (tests/scripts/venv.sh makes .venv/)" % sys.argv[0])

from websockets.asyncio.client import connect

STARTUP_SECS = 20.0  # for the browser to write DevToolsActivePort and list its page
T0 = time.monotonic()


def log(msg):
    print("cdp: " + msg, flush=True)


def elapsed():
    return "%.1f s" % (time.monotonic() - T0)


class Failed(Exception):
    pass


def chromium_args(exe, profile, insecure):
    args = [
        exe,
        "--headless",
        # Root in a container: the setuid/namespace sandbox is not available there.
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        # No traffic of its own (updates, sync, QUIC probes) beside the page under test.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        # A container's /dev/shm is often 64 MB, where Chromium's renderer crashes.
        "--disable-dev-shm-usage",
        # Not --disable-crashpad-for-testing: with it (Chromium 156) every navigation ends in
        # net::ERR_ABORTED. Crashpad's two handlers leave the process group, which is killed at
        # the end, but exit by themselves once the browser is gone.
        # The page under test is on loopback: never send it through a proxy from the environment.
        "--no-proxy-server",
        "--window-size=1000,720",
        "--user-data-dir=" + profile,
        # 0: the browser picks a free port and writes it to <profile>/DevToolsActivePort.
        "--remote-debugging-port=0",
    ]
    if insecure:
        args.append("--ignore-certificate-errors")
    args.append("about:blank")
    return args


def wait_devtools_port(proc, profile, deadline):
    path = os.path.join(profile, "DevToolsActivePort")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failed("chromium exited with status %s before it listened" % proc.returncode)
        try:
            with open(path) as f:
                first = f.readline().strip()
            if first:
                return int(first)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise Failed("chromium wrote no DevToolsActivePort within %.0f s" % STARTUP_SECS)


def page_ws_url(port, deadline):
    # No proxy: the endpoint is on loopback, whatever http_proxy says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    last = None
    while time.monotonic() < deadline:
        try:
            with opener.open("http://127.0.0.1:%d/json/list" % port, timeout=2) as r:
                targets = json.load(r)
            for t in targets:
                if t.get("type") == "page" and t.get("webSocketDebuggerUrl"):
                    return t["webSocketDebuggerUrl"]
            last = "no page target in /json/list"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise Failed("no DevTools page target: %s" % last)


class Cdp:
    """One CDP session on a page target: commands with ids, events to a callback."""

    def __init__(self, ws, on_event):
        self.ws = ws
        self.on_event = on_event
        self.next_id = 0
        self.pending = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if "id" in msg:
                    fut = self.pending.pop(msg["id"], None)
                    if fut and not fut.done():
                        fut.set_result(msg)
                else:
                    self.on_event(msg.get("method", ""), msg.get("params", {}))
        finally:
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(Failed("DevTools connection closed"))

    async def call(self, method, timeout=10.0, **params):
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        msg = await asyncio.wait_for(fut, timeout)
        if "error" in msg:
            raise Failed("%s: %s" % (method, msg["error"].get("message", msg["error"])))
        return msg.get("result", {})


class Observed:
    """What the page did that decides the verdict besides its own self-test."""

    def __init__(self):
        self.exceptions = []
        self.load_failures = []
        self.http_errors = []
        self.errors = []  # console.error and the browser's own error-level messages
        self.requests = {}
        self.close_asked = False  # Browser.close was answered: the browser is on its way out

    def on_event(self, method, p):
        if method == "Runtime.consoleAPICalled":
            text = " ".join(_remote_value(a) for a in p.get("args", []))
            log("console.%s: %s" % (p.get("type", "log"), text))
            if p.get("type") == "error":
                self.errors.append("console.error: " + text)
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            exc = d.get("exception", {})
            text = exc.get("description") or d.get("text", "exception")
            where = "%s:%s" % (d.get("url", "?"), d.get("lineNumber", "?"))
            self.exceptions.append(text.splitlines()[0])
            log("exception at %s: %s" % (where, text))
        elif method == "Log.entryAdded":
            # e.g. "Failed to load resource: ... 404", or a stylesheet refused for its MIME type.
            e = p.get("entry", {})
            text = "%s %s" % (e.get("text"), e.get("url", ""))
            log("browser %s (%s): %s" % (e.get("level"), e.get("source"), text))
            if e.get("level") == "error":
                self.errors.append(text)
        elif method == "Network.requestWillBeSent":
            self.requests[p.get("requestId")] = p.get("request", {}).get("url", "?")
        elif method == "Network.responseReceived":
            r = p.get("response", {})
            if r.get("status", 0) >= 400:
                self.http_errors.append("%s %s" % (r.get("status"), r.get("url")))
                log("HTTP %s for %s" % (r.get("status"), r.get("url")))
        elif method == "Network.loadingFailed":
            url = self.requests.get(p.get("requestId"), "?")
            what = "%s (%s)" % (url, p.get("errorText", "?"))
            if p.get("canceled"):
                log("load canceled: " + what)
            else:
                self.load_failures.append(what)
                log("load failed: " + what)
        elif method == "Network.webSocketCreated":
            log("page opens WebSocket " + p.get("url", "?"))
        elif method == "Network.webSocketClosed":
            log("page's WebSocket closed")


def _remote_value(a):
    if "value" in a:
        v = a["value"]
        return v if isinstance(v, str) else json.dumps(v)
    return a.get("description", a.get("type", "?"))


async def drive(ws_url, args, observed):
    async with connect(ws_url, max_size=None, proxy=None, compression=None, ping_interval=None,
                       open_timeout=10) as ws:
        cdp = Cdp(ws, observed.on_event)
        for domain in ("Runtime", "Page", "Network", "Log"):
            await cdp.call(domain + ".enable")
        log("navigating to " + args.url)
        nav = await cdp.call("Page.navigate", timeout=args.timeout, url=args.url)
        verdict = None
        if nav.get("errorText"):
            verdict = "navigation failed: %s" % nav["errorText"]
        state = None
        deadline = time.monotonic() + args.timeout
        while verdict is None:
            try:
                r = await cdp.call("Runtime.evaluate", expression="JSON.stringify("
                                   "{t: document.title, s: window.selftest || null})",
                                   returnByValue=True)
                state = json.loads(r.get("result", {}).get("value") or "null")
            except (Failed, asyncio.TimeoutError, ValueError):
                state = None  # between documents while the page loads: ask again
            if state and isinstance(state.get("s"), dict) and state["s"].get("done"):
                break
            if observed.exceptions:
                break  # the page's script is broken: no point waiting for its self-test
            if time.monotonic() >= deadline:
                verdict = "window.selftest not done within %.0f s (last: %s)" % (
                    args.timeout, json.dumps(state))
                break
            await asyncio.sleep(0.1)
        try:
            shot = await cdp.call("Page.captureScreenshot", format="png")
            with open(args.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            log("screenshot: %s (%d bytes)" % (args.screenshot, os.path.getsize(args.screenshot)))
        except (Failed, asyncio.TimeoutError, OSError, KeyError) as e:
            log("no screenshot: %s" % e)
            verdict = verdict or "no screenshot: %s" % e
        try:
            await cdp.call("Browser.close", timeout=2)
            observed.close_asked = True
        except Exception:
            pass  # the process group is killed below anyway
        return verdict, state


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--screenshot", required=True, metavar="PATH")
    ap.add_argument("--insecure", action="store_true", help="--ignore-certificate-errors")
    ap.add_argument("--timeout", type=float, default=20.0, metavar="S",
                    help="seconds for the page's self-test (default 20)")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--browser-log", metavar="PATH", help="keep chromium's stderr here")
    args = ap.parse_args()

    if not (os.path.isfile(args.chromium) and os.access(args.chromium, os.X_OK)):
        log("FAIL: %s is not installed (tests/scripts/setup.sh test installs Debian's chromium)"
            % args.chromium)
        return 1
    shot_dir = os.path.dirname(os.path.abspath(args.screenshot))
    os.makedirs(shot_dir, exist_ok=True)
    try:
        os.unlink(args.screenshot)  # a stale picture must not pass for this run's
    except FileNotFoundError:
        pass

    # SIGTERM (a step's watchdog) unwinds through the finally below, which kills the browser.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    profile = tempfile.mkdtemp(prefix="cdp-check-")
    # Chromium's stderr: kept at --browser-log, else shown (its tail) only when the check fails.
    blog_path = args.browser_log
    if not blog_path:
        fd, blog_path = tempfile.mkstemp(prefix="cdp-chromium-", suffix=".log")
        os.close(fd)
    proc = None
    verdict, state = "did not run", None
    observed = Observed()
    try:
        with open(blog_path, "wb") as blog:
            # A session of its own, so that the browser and every helper it forks (zygote,
            # renderer, GPU and network processes) form one group, killed together at the end.
            proc = subprocess.Popen(chromium_args(args.chromium, profile, args.insecure),
                                    stdin=subprocess.DEVNULL, stdout=blog, stderr=blog,
                                    start_new_session=True)
        log("chromium pid %d (%s)" % (proc.pid, args.chromium))
        deadline = time.monotonic() + STARTUP_SECS
        port = wait_devtools_port(proc, profile, deadline)
        ws_url = page_ws_url(port, deadline)
        log("DevTools on 127.0.0.1:%d after %s" % (port, elapsed()))
        total = STARTUP_SECS + args.timeout + 15
        verdict, state = asyncio.run(asyncio.wait_for(drive(ws_url, args, observed), total))
    except Failed as e:
        verdict = str(e)
    except asyncio.TimeoutError:
        verdict = "the DevTools session did not finish in time"
    except OSError as e:
        verdict = "DevTools connection: %s" % e
    except SystemExit:
        verdict = "stopped by SIGTERM"
    except Exception as e:  # e.g. the DevTools WebSocket refused or dropped
        verdict = "DevTools session: %s: %s" % (type(e).__name__, e)
    finally:
        if proc is not None:
            if observed.close_asked:
                try:
                    # A clean exit unloads the page, which closes its WebSocket with 1001: the
                    # server under test sees a close, not a reset.
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log("chromium pid %d did not exit after SIGKILL" % proc.pid)
        shutil.rmtree(profile, ignore_errors=True)

    selftest = state.get("s") if isinstance(state, dict) else None
    if selftest is not None:
        log("window.selftest = %s" % json.dumps(selftest))
    if verdict is None and observed.exceptions:
        verdict = "uncaught exception on the page: %s" % observed.exceptions[0]
    if verdict is None:
        if not selftest.get("ok"):
            verdict = "the page's self-test failed: %s" % (state.get("t") or "no title")
        elif observed.exceptions:
            verdict = "uncaught exception on the page: %s" % observed.exceptions[0]
        elif observed.load_failures:
            verdict = "failed load: %s" % observed.load_failures[0]
        elif observed.http_errors:
            verdict = "HTTP error: %s" % observed.http_errors[0]
        elif observed.errors:
            verdict = "error logged by the page or browser: %s" % observed.errors[0]
    if verdict is not None:
        try:
            with open(blog_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            # Without a D-Bus (containers, CI) every start logs a dozen harmless dbus errors.
            kept = [ln for ln in lines if "dbus" not in ln.lower()]
            if len(kept) < len(lines):
                log("chromium: (%d harmless D-Bus error lines left out)" % (len(lines) - len(kept)))
            for line in kept[-15:]:
                log("chromium: " + line)
        except OSError:
            pass
    if not args.browser_log:
        try:
            os.unlink(blog_path)
        except OSError:
            pass
    if verdict is None:
        log("PASS: %s (%s)" % (state.get("t"), elapsed()))
        return 0
    log("FAIL: %s (%s)" % (verdict, elapsed()))
    return 1


if __name__ == "__main__":
    sys.exit(main())
