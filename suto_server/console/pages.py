# -*- test-case-name: tests.console.test_site -*-
"""
What each console page shows, from the reports the daemon already
makes (the same the admin API serves): each function takes its data and
returns a L{Page} for L{suto_server.console.views.render_page}.  No
function here reads the store or the clock; L{suto_server.console.site}
gathers what they show.

Nothing secret is ever shown, with one exception made on purpose: the
page that answers the opening of an enrollment window shows its one-time
password, once (the answer is never cached, and the password is kept
nowhere but as its hash).
"""

from __future__ import annotations

from twisted.web.template import tags

from suto_server.admin.formatting import age, place
from suto_server.console.views import (
    Page,
    bars,
    labelled,
    link,
    pagination,
    post_form,
    table,
)


def _counts(pairs):
    return tags.ul(
        *(tags.li(tags.strong(str(value)), name) for name, value in pairs),
        **{"class": "counts"},
    )


def _alerts_table(caption: str, alerts):
    return table(
        caption,
        ("Time", "Type", "Profile", "Source", "Reason"),
        [
            (
                a["time"],
                a["type"],
                _profile_link(a.get("profile")),
                a["source"] or "",
                a["reason"],
            )
            for a in alerts
        ],
    )


def _profile_link(user):
    if not user:
        return ""
    return link("/profile", user, user=user)


def overview(status: dict, per_minute: float, alerts: list, alert_count: int) -> Page:
    """
    @param status: the daemon's status (what C{suto-admin status} shows),
        whose counts of endpoints and windows the page shows as read
        there, once.
    @param alerts: the newest alerts of the last hour, as the admin API
        shows them, newest first.
    @param alert_count: how many alerts the last hour holds.
    """
    content = [
        tags.h2("Endpoints"),
        _counts(
            (
                ("connected", status["connected"]),
                ("offline", status["offline"]),
                ("blacklisted", status["blacklisted"]),
                ("enrollment windows open", status["enrollment_windows"]),
                ("rotations per minute", f"{per_minute:.1f}"),
                ("alerts in the last hour", alert_count),
            )
        ),
        tags.h2("Listeners"),
        table(
            "What the daemon listens on",
            ("Listener", "Address"),
            [(each["name"], each["address"]) for each in status["listeners"]],
        ),
        tags.h2("Certificates"),
        table(
            "The TLS certificates served to devices",
            ("Subject", "SHA-256 fingerprint", "Expires", "Warning"),
            [
                (
                    each["subject"],
                    each["fingerprint"],
                    each["not_after"],
                    each["warning"] or "",
                )
                for each in status["certificates"]
            ],
        ),
        table(
            "The client certificate revocation lists the listeners check",
            ("Listener", "Issuer", "Next update", "Warning"),
            [
                (
                    each["listener"],
                    each["issuer"],
                    each["next_update"] or "never",
                    each["warning"] or "",
                )
                for each in status["crls"]
            ],
        ),
        tags.h2("Alerts of the last hour"),
        _alerts_table("Newest first", alerts),
    ]
    return Page("Overview", content, "/")


#: The columns of the endpoints listing: heading and sort key.
ENDPOINT_COLUMNS = (
    ("User", "user"),
    ("Location", "location"),
    ("State", "state"),
    ("Last rotation", "last_rotation"),
    ("Key age", "key_age"),
)


def endpoints(rows: list, total: int, page: int, pages: int, query: dict) -> Page:
    """
    @param rows: this page's rows of the clients report.
    @param total: how many rows matched the search.
    @param query: the search and sort arguments, kept by every link.
    """
    search = tags.form(
        tags.label(
            "Search users, addresses or locations",
            tags.input(
                type="search", name="q", id="field-q", value=query.get("q") or ""
            ),
        ),
        tags.input(type="hidden", name="sort", value=query["sort"]),
        tags.input(type="hidden", name="order", value=query["order"]),
        tags.button("Search", type="submit"),
        method="get",
        action="/endpoints",
        role="search",
        **{"class": "filters"},
    )
    headings = []
    for heading, key in ENDPOINT_COLUMNS:
        order = "desc" if query["sort"] == key and query["order"] == "asc" else "asc"
        headings.append(
            link("/endpoints", heading, q=query.get("q"), sort=key, order=order)
        )
    shown = [
        (
            _profile_link(row["user"]),
            place(row["address"], row["location"]),
            row["state"]
            + (f" since {row['offline_since']}" if row["offline_since"] else ""),
            row["last_rotation"] or "never",
            age(row["key_age"]),
        )
        for row in rows
    ]
    content = [
        search,
        table(
            f"{total} endpoint(s), sorted by {query['sort']} "
            f"({'ascending' if query['order'] == 'asc' else 'descending'})",
            headings,
            shown,
        ),
        pagination("/endpoints", page, pages, query),
    ]
    return Page("Endpoints", content, "/endpoints")


def profile(
    user: str, client: dict | None, history: dict, events: list, hourly
) -> Page:
    """
    @param client: the profile's row of the clients report, or L{None}
        when it is not enrolled.
    @param history: its moves and alerts (the history report).
    @param events: its audit records, as the admin API shows them.
    @param hourly: its rotations in each of the last hours, oldest first,
        or L{None} when none was seen since the daemon started.
    """
    content = []
    if client is None:
        content.append(tags.p("This user has no enrolled profile."))
    else:
        content.append(
            table(
                "The profile now",
                (
                    "Location",
                    "State",
                    "Last seen",
                    "Last rotation",
                    "Key id",
                    "Key age",
                    "Rotations",
                ),
                [
                    (
                        place(client["address"], client["location"]),
                        client["state"],
                        client["last_seen"] or "never",
                        client["last_rotation"] or "never",
                        client["key_id"],
                        age(client["key_age"]),
                        str(client["generation"]),
                    )
                ],
            )
        )
    content.append(tags.h2("Location history"))
    moves = history["moves"]
    content.append(
        tags.ol(
            *(
                tags.li(
                    tags.time(move["time"], datetime=move["time"]),
                    f" moved from {place(move['from'], move['from_location'])} "
                    f"to {place(move['to'], move['to_location'])}",
                )
                for move in moves
            ),
            **{"class": "timeline", "aria-label": "Moves, oldest first"},
        )
        if moves
        else tags.p("No move recorded.")
    )
    content.append(tags.h2("Rotations over time"))
    if hourly is None:
        content.append(tags.p("No rotation of this profile since the daemon started."))
    else:
        content += [
            bars(
                f"Completed rotations per hour over the last {len(hourly)} hours, "
                f"oldest first: {', '.join(map(str, hourly))}",
                hourly,
            ),
            tags.p(f"{sum(hourly)} rotation(s) in the last {len(hourly)} hours."),
        ]
    content += [
        tags.h2("Alerts"),
        _alerts_table(
            f"Alerts about {user}", [dict(a, profile=user) for a in history["alerts"]]
        ),
        tags.h2("Audit records"),
        _events_table(f"Audit records of {user}, newest first", events),
    ]
    return Page(f"Profile {user}", content, "/endpoints")


def _events_table(caption: str, events):
    return table(
        caption,
        ("Time", "Event", "User", "Source", "Reason"),
        [
            (
                e["time"],
                e["event"],
                _profile_link(e["user"]),
                e["source"] or "",
                e["reason"],
            )
            for e in events
        ],
    )


def _filters(path: str, query: dict, types=None):
    """
    @param types: the types to choose from, or L{None} to type one.
    """
    if types is None:
        kind = labelled("Type (e.g. enrolled)", "type", value=query.get("type") or "")
    else:
        kind = tags.label(
            "Type",
            tags.select(
                tags.option("any", value=""),
                *(
                    tags.option(
                        t,
                        value=t,
                        **({"selected": "selected"} if query.get("type") == t else {}),
                    )
                    for t in types
                ),
                name="type",
                id="field-type",
            ),
        )
    return tags.form(
        kind,
        labelled("User", "user", value=query.get("user") or ""),
        labelled(
            "From (UTC, YYYY-MM-DDTHH:MM)",
            "since",
            value=query.get("since") or "",
            placeholder="2026-01-31T08:00",
        ),
        labelled("Until (UTC)", "until", value=query.get("until") or ""),
        tags.button("Filter", type="submit"),
        method="get",
        action=path,
        role="search",
        **{"class": "filters"},
    )


def alerts(
    listing: list, total: int, page: int, pages: int, query: dict, types
) -> Page:
    """
    @param listing: the alerts of page C{page} of C{pages}, newest first,
        of the C{total} the filters select.
    """
    return Page(
        "Alerts",
        [
            _filters("/alerts", query, types),
            _alerts_table(f"{total} alert(s), newest first", listing),
            pagination("/alerts", page, pages, query),
        ],
        "/alerts",
    )


def audit(
    session,
    listing: list,
    total: int,
    page: int,
    pages: int,
    query: dict,
    verified=None,
) -> Page:
    """
    @param verified: the answer of the chain's verification, when the
        operator asked for it.
    """
    content = [
        post_form(
            "/audit/verify",
            session,
            tags.button("Verify the hash chain", type="submit"),
        )
    ]
    if verified is not None:
        if verified["intact"]:
            content.append(
                tags.p(
                    "The audit log's hash chain is intact.",
                    role="status",
                    **{"class": "ok"},
                )
            )
        else:
            content.append(
                tags.p(
                    f"The audit log's hash chain is broken: {len(verified['problems'])} problem(s).",
                    role="status",
                    **{"class": "bad"},
                )
            )
            content.append(tags.ul(*(tags.li(p) for p in verified["problems"])))
    content += [
        _filters("/audit", query),
        _events_table(f"{total} record(s), newest first", listing),
        pagination("/audit", page, pages, query),
    ]
    return Page("Audit log", content, "/audit")


def live_panel(counts: dict, per_minute: float, connected: list, events: list):
    """
    @param connected: the users whose endpoints are connected now.
    @return: the part of the live view that is fetched again every few
        seconds.
    """
    return tags.div(
        _counts(
            (
                ("connected", counts["connected"]),
                ("offline", counts["offline"]),
                ("blacklisted", counts["blacklisted"]),
                ("rotations per minute", f"{per_minute:.1f}"),
            )
        ),
        tags.h2("Connected now"),
        tags.p(
            ", ".join(connected[:100]) or "No endpoint is connected.", id="connected"
        ),
        _events_table("The latest audit records, newest first", events),
    )


def live(panel) -> Page:
    """
    The live view: its panel is fetched again every two seconds by htmx
    (polling, see L{suto_server.console.site}).
    """
    content = [
        tags.p("This page updates itself every two seconds."),
        tags.div(
            panel,
            id="live-panel",
            **{
                "hx-get": "/live/panel",
                "hx-trigger": "every 2s",
                "hx-swap": "innerHTML",
                "aria-live": "polite",
            },
        ),
    ]
    return Page("Live", content, "/live")


def message(title: str, text: str, section=None) -> Page:
    """
    A page that only says something: an error, or how to sign in.
    """
    return Page(title, [tags.p(text)], section)
