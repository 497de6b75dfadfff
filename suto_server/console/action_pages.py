# -*- test-case-name: tests.console.test_site -*-
"""
What the console's acting pages show: the enrollment windows with the
form that opens one (and, on its answer only, the one-time password),
the blacklist, and the confirmation an unblocking asks for.  Every form
carries the session's CSRF token (L{post_form}).
"""

from __future__ import annotations

from twisted.web.template import tags

from suto_server.admin.formatting import age
from suto_server.console.views import Page, labelled, link, post_form, table


def windows(session, listing: list, opened: dict | None = None) -> Page:
    """
    @param listing: the open windows (L{WindowDesk.list}).
    @param opened: the answer to opening one, whose password is shown
        this once; L{None} otherwise.
    """
    content = []
    if opened is not None:
        content += [
            tags.h2("Window opened"),
            tags.p(
                f"Tell the person at the device of {opened['user']} this "
                f"one-time password; it is shown only now:"
            ),
            tags.p(
                tags.output(opened["password"], id="one-time-password"),
                **{"class": "secret"},
            ),
            tags.p(
                f"The window is at {opened['location']} until {opened['deadline']}."
            ),
            tags.p("Pin the server certificate on the device (SHA-256):"),
            tags.ul(*(tags.li(tags.code(f)) for f in opened["fingerprints"])),
            *(tags.p(w, **{"class": "notice"}) for w in opened["warnings"]),
        ]
    content += [
        tags.h2("Open a window"),
        post_form(
            "/windows/open",
            session,
            labelled("User", "user", required="required", autocomplete="off"),
            labelled(
                "Location (address, network or location name)",
                "location",
                required="required",
            ),
            labelled(
                "Open for (seconds)",
                "timeout",
                type="number",
                min="1",
                max="86400",
                value="600",
            ),
            tags.label(
                tags.input(
                    type="checkbox", name="replace", value="yes", id="field-replace"
                ),
                "Replace an enrolled profile",
                **{"class": "check"},
            ),
            tags.label(
                tags.input(type="checkbox", name="wide", value="yes", id="field-wide"),
                "Allow a wide location",
                **{"class": "check"},
            ),
            tags.button("Open the window", type="submit"),
            **{"class": "window"},
        ),
        tags.h2("Open windows"),
        table(
            "Windows open now",
            ("User", "Location", "Time left", "Failed attempts", "Replaces", "Cancel"),
            [
                (
                    w["user"],
                    w["location"],
                    age(w["seconds_left"]),
                    f"{w['attempts']}/{w['max_attempts']}",
                    "yes" if w["replace"] else "no",
                    post_form(
                        "/windows/cancel",
                        session,
                        tags.input(type="hidden", name="user", value=w["user"]),
                        tags.button(
                            "Cancel",
                            type="submit",
                            **{"aria-label": f"Cancel the window of {w['user']}"},
                        ),
                        **{"class": "inline"},
                    ),
                )
                for w in listing
            ],
        ),
    ]
    return Page("Enrollment windows", content, "/windows")


def blacklist(entries: list, notice: str | None = None) -> Page:
    content = [tags.p(notice, role="status", **{"class": "notice"})] if notice else []
    content.append(
        table(
            "Blacklisted profiles",
            ("User", "Since", "Alert", "Source", "Reason", "Unblock"),
            [
                (
                    e["user"],
                    e["time"],
                    e["alert"],
                    e["source"] or "",
                    e["reason"],
                    link("/blacklist/unblock", f"Unblock {e['user']}…", user=e["user"]),
                )
                for e in entries
            ],
        )
    )
    return Page("Blacklist", content, "/blacklist")


def confirm_unblock(session, user: str) -> Page:
    content = [
        tags.p(
            f"Unblocking {user} removes its profile: the device must enroll "
            f"again before it is trusted."
        ),
        post_form(
            "/blacklist/unblock",
            session,
            tags.input(type="hidden", name="user", value=user),
            tags.button(
                f"Unblock {user} and remove its profile",
                type="submit",
                **{"class": "danger"},
            ),
            " ",
            link("/blacklist", "Keep it blacklisted"),
        ),
    ]
    return Page(f"Unblock {user}?", content, "/blacklist")
