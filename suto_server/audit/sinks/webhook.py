# -*- test-case-name: tests.audit.test_sinks -*-
"""
Alerts POSTed as JSON to an HTTP(S) endpoint: a chat room, a paging
service, a SIEM.

How it works: L{WebhookSink.deliver} only puts the alert in a queue and
returns, so authentication never waits for the endpoint.  One loop sends
the queued alerts one at a time, in order.  An attempt fails when it gets
no answer within C{timeout} seconds, cannot connect, or is answered with a
status other than 2xx; it is then tried again after a delay that starts at
C{first_delay} and doubles each time (up to C{max_delay}), C{attempts}
times in all, after which the alert is dropped and the loop moves on.  The
queue holds at most C{max_queued} alerts: while the endpoint is down,
newer alerts are dropped rather than kept without bound.  Every failure
and every dropped alert is logged; none is raised.
"""

from __future__ import annotations

from collections import deque
from urllib.parse import urlsplit

from treq import collect
from treq.client import HTTPClient
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger
from zope.interface import implementer

from suto_server.audit.interfaces import IAlertSink

#: Attempts at one alert before it is dropped.
DEFAULT_ATTEMPTS = 5
#: Seconds before the first retry; each later one waits twice as long.
DEFAULT_FIRST_DELAY = 2.0
#: The longest wait between two attempts.
DEFAULT_MAX_DELAY = 300.0
#: Seconds one attempt may take, answer included.
DEFAULT_TIMEOUT = 10.0
#: Alerts waiting at most; more are dropped.
DEFAULT_MAX_QUEUED = 1000
#: Longest URL accepted.
MAX_URL = 2048


class WebhookURLError(ValueError):
    """
    A webhook URL is not an absolute C{http} or C{https} URL.
    """


def check_url(url: str) -> str:
    """
    @return: C{url}, if it can be a webhook's.
    @raise WebhookURLError: it is not an absolute C{http}/C{https} URL
        with a host, of printable ASCII and at most L{MAX_URL} characters.
    """
    if (
        not isinstance(url, str)
        or not 0 < len(url) <= MAX_URL
        or not url.isascii()
        or not url.isprintable()
        or " " in url
    ):
        raise WebhookURLError(
            f"a webhook URL must be 1 to {MAX_URL} printable ASCII characters"
        )
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a port out of range
    except ValueError as error:
        raise WebhookURLError(f"not a URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookURLError(
            "a webhook URL must be http:// or https:// with a host"
        )
    return url


class _AttemptFailed(Exception):
    """
    The endpoint answered, but not with 2xx.
    """


@implementer(IAlertSink)
class WebhookSink:
    """
    POSTs every alert's JSON to one URL, retrying with backoff.

    @param url: the endpoint, checked with L{check_url}.
    @param agent: the L{twisted.web.iweb.IAgent} requests go through.
    @param clock: the L{twisted.internet.interfaces.IReactorTime} that
        times the retries and each attempt's timeout.
    """

    log = Logger()

    def __init__(
        self,
        url: str,
        agent,
        clock,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        first_delay: float = DEFAULT_FIRST_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
        timeout: float = DEFAULT_TIMEOUT,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        self._url = check_url(url)
        self._client = HTTPClient(agent)
        self._clock = clock
        self._attempts = attempts
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._timeout = timeout
        self._max_queued = max_queued
        # (alert, Deferred firing with whether it was delivered), oldest
        # first; the first is the one being sent.
        self._queue: deque = deque()
        self._sending = False

    @property
    def queued(self) -> int:
        """
        How many alerts wait, the one being sent included.
        """
        return len(self._queue)

    def deliver(self, alert) -> Deferred:
        """
        See L{IAlertSink.deliver}.

        @return: a L{Deferred} firing with L{True} once the endpoint took
            the alert, or L{False} once it is dropped (at once when the
            queue is full).
        """
        if len(self._queue) >= self._max_queued:
            self.log.error(
                "alert webhook {url} is {queued} alerts behind; dropped a "
                "{alert_type} alert",
                url=self._url,
                queued=len(self._queue),
                alert_type=alert.type,
            )
            return succeed(False)
        done = Deferred()
        self._queue.append((alert, done))
        if not self._sending:
            self._sending = True
            Deferred.fromCoroutine(self._send_queued())
        return done

    async def _send_queued(self) -> None:
        """
        Send the queued alerts, oldest first, until none is left.
        """
        try:
            while self._queue:
                alert, done = self._queue[0]
                delivered = await self._send(alert)
                self._queue.popleft()
                done.callback(delivered)
        finally:
            self._sending = False

    async def _send(self, alert) -> bool:
        """
        Try to send one alert until it is taken or out of attempts.

        @return: whether it was taken.
        """
        body = alert.to_json()
        delay = self._first_delay
        for attempt in range(1, self._attempts + 1):
            try:
                await self._post(body)
            except Exception as error:
                why = str(error) or type(error).__name__
            else:
                return True
            if attempt == self._attempts:
                break
            self.log.warn(
                "alert webhook {url} failed ({why}); attempt {attempt} of "
                "{attempts} for a {alert_type} alert, next in {delay:g}s",
                url=self._url,
                why=why,
                attempt=attempt,
                attempts=self._attempts,
                alert_type=alert.type,
                delay=delay,
            )
            await deferLater(self._clock, delay, lambda: None)
            delay = min(delay * 2, self._max_delay)
        self.log.error(
            "alert webhook {url} failed ({why}) {attempts} times; dropped a "
            "{alert_type} alert",
            url=self._url,
            why=why,
            attempts=self._attempts,
            alert_type=alert.type,
        )
        return False

    def _post(self, body: dict) -> Deferred:
        """
        One attempt, cancelled after C{timeout} seconds.

        @return: a L{Deferred} that fires once a 2xx answer is read, and
            fails otherwise.
        """
        return Deferred.fromCoroutine(self._exchange(body)).addTimeout(
            self._timeout, self._clock
        )

    async def _exchange(self, body: dict) -> None:
        """
        POST C{body} and read (and discard) the answer.

        @raise Exception: the request failed, or the answer was not 2xx.
        """
        response = await self._client.post(self._url, json=body)
        await collect(response, lambda data: None)
        if not 200 <= response.code < 300:
            raise _AttemptFailed(f"answered {response.code}")
