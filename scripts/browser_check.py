#!/usr/bin/env python3
"""Drives a page in headless Chromium through the DevTools protocol, for the dashboard test.

    browser_check.py URL STEP...

Each STEP runs in order:
    wait:EXPR        until the JavaScript expression is truthy (polled; fails at the deadline)
    click:SELECTOR   a real mouse click at the centre of the element (scrolled into view)
    eval:EXPR        prints the expression's value as one JSON line on stdout
    screenshot:PATH  the whole page as PNG

The protocol runs over --remote-debugging-pipe (file descriptors 3 and 4, messages ended by a
NUL byte), so no port is opened and no websocket library is needed. Any exception the page
throws fails the run, as does a step's deadline; the message names the step and shows the
page's text, so a failing test says what the page showed instead.
"""
import argparse
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


class CheckFailed(Exception):
    pass


class DevTools:
    """One browser over the pipe; commands to the page go through a flattened session."""

    def __init__(self, chromium, width, height):
        self.profile = tempfile.mkdtemp(prefix="changerelay-chromium-")
        # Chromium's own log goes to a file: a pipe nobody reads would fill up and stall it.
        self.log = tempfile.TemporaryFile()
        to_browser_read, self.to_browser = os.pipe()
        self.from_browser, from_browser_write = os.pipe()
        def descriptors_3_and_4():
            # Chromium reads descriptor 3 and writes 4. Both ends are first copied above 10,
            # so placing one cannot overwrite the other, whatever numbers os.pipe gave them.
            reading = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            writing = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(reading, 3)
            os.dup2(writing, 4)

        self.process = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--mute-audio",
             "--remote-debugging-pipe", f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "about:blank"],
            pass_fds=(3, 4), preexec_fn=descriptors_3_and_4,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self.buffer = b""
        self.next_id = 0
        self.session = None
        self.exceptions = []
        self.width, self.height = width, height

    def send(self, method, params=None, session=True, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self.receive(deadline, method)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise CheckFailed(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def receive(self, deadline, waiting_for):
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise CheckFailed(f"chromium did not answer {waiting_for}")
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                self.log.seek(0)
                raise CheckFailed(f"chromium closed the pipe while {waiting_for} was pending: "
                                  + self.log.read().decode(errors="replace")[-2000:])
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        message = json.loads(raw)
        if message.get("method") == "Runtime.exceptionThrown":
            details = message["params"]["exceptionDetails"]
            self.exceptions.append(details.get("exception", {}).get("description") or details.get("text"))
        return message

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Runtime.enable")
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CheckFailed(f"{expression}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def page_text(self):
        try:
            return self.evaluate("document.body ? document.body.innerText : ''")[:3000]
        except CheckFailed as error:
            return f"(the page's text cannot be read: {error})"

    def check_exceptions(self):
        if self.exceptions:
            raise CheckFailed("the page threw: " + " | ".join(self.exceptions))

    def wait(self, expression, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.evaluate(expression):
                    return
            except CheckFailed:
                pass  # the page may still be loading; the deadline decides
            self.check_exceptions()
            if time.monotonic() > deadline:
                raise CheckFailed(f"not true within {timeout} s: {expression}\n--- the page showed:\n{self.page_text()}")
            time.sleep(0.1)

    def click(self, selector):
        box = self.evaluate(f"""(() => {{
            const node = document.querySelector({json.dumps(selector)});
            if (!node) return null;
            node.scrollIntoView({{block: "center"}});
            const r = node.getBoundingClientRect();
            return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
        }})()""")
        if box is None:
            raise CheckFailed(f"nothing to click at {selector}\n--- the page showed:\n{self.page_text()}")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent",
                      {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1})

    def screenshot(self, path):
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        self.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": int(size["height"]),
                                                          "deviceScaleFactor": 1, "mobile": False})
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as file:
            file.write(base64.b64decode(shot["data"]))

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except (CheckFailed, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.to_browser)
        os.close(self.from_browser)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("steps", nargs="+")
    parser.add_argument("--timeout", type=float, default=60, help="seconds each wait: step may take")
    parser.add_argument("--chromium", default="chromium")
    parser.add_argument("--size", default="1400x900", help="the viewport, WIDTHxHEIGHT")
    arguments = parser.parse_args()
    width, height = (int(n) for n in arguments.size.split("x"))

    if not shutil.which(arguments.chromium):
        print(f"browser_check: {arguments.chromium} is not installed (scripts/install-deps.sh installs chromium)",
              file=sys.stderr)
        return 1
    browser = DevTools(arguments.chromium, width, height)
    try:
        browser.open(arguments.url)
        for step in arguments.steps:
            kind, _, value = step.partition(":")
            if kind == "wait":
                browser.wait(value, arguments.timeout)
            elif kind == "click":
                browser.click(value)
            elif kind == "eval":
                print(json.dumps(browser.evaluate(value)), flush=True)
            elif kind == "screenshot":
                browser.screenshot(value)
            else:
                raise CheckFailed(f"unknown step {step!r}: wait:, click:, eval: or screenshot:")
            browser.check_exceptions()
    except CheckFailed as error:
        print(f"browser_check: {error}", file=sys.stderr)
        return 1
    finally:
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
