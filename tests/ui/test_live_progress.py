"""How a job card follows a running export. The stream endpoints are not this
module's: the browser's requests to them are answered here (route), in the shape the
job's GET has, to check that the card takes the stream's events, reconnects with
Last-Event-ID, and falls back to polling the GET when the stream is absent or keeps
dropping."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page, Route, expect

from support.browser import Person
from support.stack import create_export, finished, upload


def sse(events: list[tuple[int, dict[str, Any]]]) -> str:
    return "".join(f"id: {i}\ndata: {json.dumps(body)}\n\n" for i, body in events)


def list_says_pending(page: Page, job: dict[str, Any]) -> None:
    """The Exports page's list answers the job as pending (however far it is), so that
    its card follows it."""
    page.route(
        "**/api/data-export/jobs?*",
        lambda route: route.fulfill(
            json=[{**job, "status": "pending", "progress": 0, "download_url": None}],
            headers={"X-Total-Count": "1"},
        ),
    )


def test_the_card_follows_the_stream_and_resumes_after_a_drop(person: Person) -> None:
    file = upload(person.api, "s.csv", b"a,b\n1,2\n")
    job = create_export(person.api, "streamed", [file["id"]], "csv").json()
    done = finished(person.api, job["id"])
    running = {**done, "status": "processing", "progress": 40, "download_url": None}
    page = person.page
    asked: list[str | None] = []

    def stream(route: Route) -> None:
        asked.append(route.request.headers.get("last-event-id"))
        if len(asked) == 1:  # a first connection that drops after one event
            body = ": hello\n\n" + sse([(1, {**done, "status": "pending", "progress": 0})])
        else:
            body = sse([(2, running), (3, done)])
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)

    page.route(f"**/api/data-export/jobs/{job['id']}/stream", stream)
    list_says_pending(page, done)
    page.reload()
    card = page.locator(f"article[data-job-id='{job['id']}']")
    expect(card.get_by_test_id("job-status")).to_have_text("completed")
    expect(card.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(card).to_have_attribute("data-live", "stream")
    assert asked == [None, "1"]


def test_without_a_stream_the_card_polls_the_job(person: Person) -> None:
    file = upload(person.api, "p.csv", b"a,b\n1,2\n")
    job = create_export(person.api, "polled", [file["id"]], "csv").json()
    page = person.page
    page.route(
        f"**/api/data-export/jobs/{job['id']}/stream",
        lambda route: route.fulfill(status=404, json={"detail": "Not Found"}),
    )
    list_says_pending(page, job)
    page.reload()
    card = page.locator(f"article[data-job-id='{job['id']}']")
    expect(card.get_by_test_id("job-status")).to_have_text("completed", timeout=60_000)
    expect(card).to_have_attribute("data-live", "poll")


def test_a_stream_that_keeps_dropping_gives_way_to_polling(person: Person) -> None:
    file = upload(person.api, "d.csv", b"a,b\n1,2\n")
    job = create_export(person.api, "dropped", [file["id"]], "csv").json()
    page = person.page
    drops: list[int] = []

    def empty(route: Route) -> None:
        drops.append(1)
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=": hi\n\n")

    page.route(f"**/api/data-export/jobs/{job['id']}/stream", empty)
    list_says_pending(page, job)
    page.reload()
    card = page.locator(f"article[data-job-id='{job['id']}']")
    expect(card.get_by_test_id("job-status")).to_have_text("completed", timeout=60_000)
    expect(card).to_have_attribute("data-live", "poll")
    assert len(drops) == 3
