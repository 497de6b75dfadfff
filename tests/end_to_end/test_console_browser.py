# -*- test-case-name: tests.end_to_end.test_console_browser -*-
"""
The web console in a real browser: Debian's Chromium, driven by
Playwright, against a real C{twistd suto} in a subprocess on loopback.

An operator signs in with C{suto-admin console-link}, opens an enrollment
window and reads its one-time password, a device enrolls with
C{suto-client enroll}, the operator sees it among the endpoints and on
its profile, lifts a blacklist entry, verifies the audit chain and
watches the live view update.  Each page is checked for its landmarks,
a label on every field and no Content Security Policy violation, and
kept as a screenshot under C{console-screenshots/} in the test's working
folder (C{_trial_temp}).

Playwright's synchronous API blocks, so these are plain L{unittest}
cases: no reactor runs in this process while they do.  Chromium is
Debian's (C{playwright install} downloads nothing here); without it, or
without Playwright, the tests fail under C{CI=true} and skip elsewhere.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from twisted.internet.endpoints import quoteStringArgument

from suto_server.net import certificate

CHROMIUM = "/usr/bin/chromium"

#: Chromium's arguments: headless, no sandbox (tests run as root), and
#: nothing that would reach beyond loopback.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Seconds the daemon has to start, and any awaited page change to come.
WAIT = 30

#: The contrast ratio of every text on its background, from the colours
#: the browser computed, where it is below WCAG's AA level (4.5:1, or
#: 3:1 for large text): a list of the texts that fail.
LOW_CONTRAST = """() => {
  const luminance = ([r, g, b]) => {
    const [R, G, B] = [r, g, b].map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  const rgba = text => text.match(/[\\d.]+/g).map(Number);
  const background = element => {
    for (let e = element; e; e = e.parentElement) {
      const colour = rgba(getComputedStyle(e).backgroundColor);
      if (colour.length < 4 || colour[3] > 0) return colour;
    }
    return [255, 255, 255];
  };
  const failing = [];
  for (const element of document.querySelectorAll('body *')) {
    const own = [...element.childNodes].some(
      n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !element.getClientRects().length) continue;
    const style = getComputedStyle(element);
    const [fg, bg] = [luminance(rgba(style.color)), luminance(background(element))];
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const large = parseFloat(style.fontSize) >= 24 ||
      (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) failing.push(element.textContent.trim());
  }
  return failing;
}"""

#: Where the screenshots go, in the test's working folder.
SHOTS = "console-screenshots"

BIN = os.path.dirname(sys.executable)


def missing() -> str | None:
    """
    @return: why the browser tests cannot run here, or L{None}.
    """
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def _listening(process, names, deadline, log):
    """
    Read the daemon's log (appending it to C{log}) until each listener of
    C{names} says where it listens, or the deadline passes.

    @return: the port of each name (0 for a UNIX socket).
    """
    ports = {}
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    try:
        while True:
            for name in names:
                found = re.search(rf"\] {name} listening on (\S+)", log[0])
                if found:
                    port = found.group(1).rsplit(":", 1)[-1]
                    ports[name] = int(port) if port.isdigit() else 0
            if len(ports) == len(names):
                return ports
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AssertionError("the daemon did not listen:\n" + log[0])
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError("the daemon stopped:\n" + log[0])
            log[0] += chunk.decode("utf-8", "replace")
    finally:
        selector.close()


class ConsoleBrowserTests(unittest.TestCase):
    """
    The console against a real daemon, in Chromium.
    """

    def setUp(self):
        reason = missing()
        if reason is not None:
            if os.environ.get("CI") == "true":
                self.fail(reason)
            self.skipTest(reason)
        self.data = tempfile.mkdtemp(prefix="suto-con-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.data, True)
        os.chmod(self.data, 0o700)
        key, cert, _ = certificate.ensure_self_signed(
            self.data, "localhost", datetime.datetime.now(datetime.timezone.utc)
        )
        with open(cert, "rb") as handle:
            self.pin = certificate.describe(handle.read()).fingerprint
        listen = (
            f"ssl:0:interface=127.0.0.1:privateKey={quoteStringArgument(key)}"
            f":certKey={quoteStringArgument(cert)}"
        )
        self.daemon = subprocess.Popen(
            [
                os.path.join(BIN, "twistd"),
                "-n",
                "--pidfile=",
                "--logfile=-",
                "suto",
                "--data",
                self.data,
                "--listen",
                listen,
                "--hello-port",
                "9",
                "--console-listen",
                "tcp:0:interface=127.0.0.1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            bufsize=0,
        )
        self.addCleanup(self._stop)
        ports = self._ports()
        self.port, self.console = ports["SUTO listener"], ports["console"]
        os.makedirs(SHOTS, exist_ok=True)

    def _ports(self):
        self.log = [""]
        return _listening(
            self.daemon,
            ("SUTO listener", "console", "admin API"),
            time.monotonic() + WAIT,
            self.log,
        )

    def _stop(self):
        self._end(self.daemon)
        self.daemon.stdout.close()

    def admin(self, *argv, stdin=None):
        done = subprocess.run(
            [os.path.join(BIN, "suto-admin"), "--data", self.data, *argv],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=WAIT,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def check_page(self, page, name):
        """
        The page has its landmarks, a label for every field, a heading,
        text of AA contrast, fits a laptop screen's width (1366 pixels,
        no horizontal scrolling), and is kept as a screenshot.
        """
        self.assertEqual(page.locator("main").count(), 1)
        self.assertEqual(page.locator("nav[aria-label='Console pages']").count(), 1)
        self.assertEqual(page.locator("h1").count(), 1)
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), select')]"
            ".filter(e => e.labels.length === 0).length"
        )
        self.assertEqual(unlabelled, 0, name)
        self.assertEqual(page.evaluate(LOW_CONTRAST), [], name)
        self.assertLessEqual(
            page.evaluate("document.documentElement.scrollWidth"), 1366, name
        )
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)

    def test_operator_tour(self):
        """
        Sign in, open a window and read its password, enroll a device,
        see it, unblock a profile, verify the audit chain, watch the live
        view: all in the browser, against the real daemon.
        """
        from playwright.sync_api import sync_playwright

        link = self.admin("console-link").strip()
        self.assertRegex(link, rf"^http://127\.0\.0\.1:{self.console}/signin\?token=")
        violations = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS
            )
            try:
                self.tour(browser, link, violations)
            finally:
                browser.close()
        self.assertEqual(violations, [])
        audit = self.admin("audit")
        self.assertRegex(
            audit, r"enrollment_window_opened\talice\t.*by \S+ \(console link\)"
        )
        self.assertRegex(audit, r"unblocked\talice\t.*\S+ \(console link\) lifted")

    def tour(self, browser, link, violations):
        """
        The operator's steps in C{browser}, from the login C{link}.
        """
        from playwright.sync_api import expect

        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        page.set_default_timeout(WAIT * 1000)
        base = f"http://127.0.0.1:{self.console}"

        page.goto(link)
        expect(page.locator("h1")).to_have_text("Overview")
        self.assertNotIn("token", page.url)
        self.check_page(page, "overview")
        # The first Tab reaches the skip link, which leads to the content.
        page.keyboard.press("Tab")
        expect(page.locator("a.skip")).to_be_focused()

        page.goto(base + "/windows")
        page.get_by_label("User").fill("alice")
        page.get_by_label("Location (address, network or location name)").fill(
            "127.0.0.1/32"
        )
        # From the keyboard: Enter in the last field submits the form.
        page.get_by_label("Location (address, network or location name)").press("Enter")
        password = page.locator("#one-time-password").inner_text()
        self.assertGreaterEqual(len(password), 8)
        self.check_page(page, "window-opened")

        enrolled = subprocess.run(
            [
                os.path.join(BIN, "suto-client"),
                "enroll",
                "--server",
                f"127.0.0.1:{self.port}",
                "--user",
                "alice",
                "--pin",
                self.pin,
                "--password-stdin",
                "--state",
                os.path.join(self.data, "client.json"),
            ],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        self.assertEqual(enrolled.returncode, 0, enrolled.stderr)
        self.start_agent()

        page.goto(base + "/live")
        expect(page.locator("#connected")).to_contain_text("alice")
        self.check_page(page, "live-connected")

        page.goto(base + "/endpoints")
        page.get_by_role("link", name="alice", exact=True).click()
        expect(page.locator("h1")).to_have_text("Profile alice")
        expect(page.locator("main")).to_contain_text("enrolled")
        expect(page.locator("main")).not_to_contain_text("No rotation of this profile")
        expect(page.locator("[role=img]")).to_have_attribute(
            "aria-label", re.compile(r"per hour over the last 24 hours")
        )
        self.check_page(page, "profile")
        page.goto(base + "/endpoints")
        self.check_page(page, "endpoints")

        # alice's device is blacklisted (as the daemon would on a
        # copied key); the operator lifts the entry.
        self.blacklist("alice")
        page.goto(base + "/blacklist")
        self.check_page(page, "blacklist")
        page.get_by_role("link", name="Unblock alice…").click()
        self.check_page(page, "unblock-confirm")
        page.get_by_role("button", name="Unblock alice and remove its profile").click()
        expect(page.locator("[role=status]")).to_contain_text(
            "Lifted the blacklist entry of alice"
        )

        page.goto(base + "/audit")
        page.get_by_role("button", name="Verify the hash chain").click()
        expect(page.locator("[role=status]")).to_have_text(
            "The audit log's hash chain is intact."
        )
        expect(page.locator("main")).to_contain_text("lifted the blacklist entry")
        self.check_page(page, "audit")

        page.goto(base + "/alerts")
        self.check_page(page, "alerts")

        page.goto(base + "/live")
        self.check_page(page, "live")
        self.admin("enroll", "bob", "--location", "127.0.0.1/32")
        expect(page.locator("#live-panel")).to_contain_text("bob")
        self.check_page(page, "live-updated")

    def start_agent(self):
        """
        Run the endpoint agent on the enrolled state, rotating every
        second, until the test ends.
        """
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            hello_port = probe.getsockname()[1]
        agent = subprocess.Popen(
            [
                os.path.join(BIN, "twistd"),
                "-n",
                "--pidfile=",
                "--logfile=-",
                "suto-client",
                "--state",
                os.path.join(self.data, "client.json"),
                "--rotation-interval",
                "1",
                "--hello-interface",
                "127.0.0.1",
                "--hello-port",
                str(hello_port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        self.addCleanup(self._end, agent)

    def _end(self, process):
        process.terminate()
        try:
            process.wait(WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def blacklist(self, user):
        """
        Put C{user} on the blacklist in the daemon's store, as its rules
        do when a profile's key turns up on a second machine.
        """
        from suto_server.store.open import open_store
        from suto_server.store.records import BlacklistEntry

        store = open_store(os.path.join(self.data, "suto.db"))
        try:
            store.add_to_blacklist(
                BlacklistEntry(
                    user, time.time(), "a copied key", "127.0.0.9", "clone_suspected"
                )
            )
        finally:
            store.close()
