"""Another user's key sees nothing of the first user's; a refused key ends the
session; every page fits a 390 px phone without sideways scrolling."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from support.browser import Person, no_horizontal_overflow, sign_in
from support.provenance import Recorder
from support.stack import Stack, create_export, finished, upload


def test_another_users_key_sees_none_of_it(
    person: Person, stack: Stack, open_page: Callable[..., Page]
) -> None:
    mine = upload(person.api, "secret.csv", b"a,b\n1,2\n")
    job = create_export(person.api, "secret export", [mine["id"]], "csv").json()
    finished(person.api, job["id"])
    history = Recorder(person.api).history("secret history")

    with stack.new_user() as other:
        key = str(other.headers["Authorization"]).removeprefix("Bearer ")
        page = open_page()
        sign_in(page, key, "/files")
        expect(page.get_by_text("No files here yet.")).to_be_visible()
        page.get_by_role("link", name="Exports").click()
        expect(page.get_by_text("No exports yet.")).to_be_visible()
        expect(page.get_by_test_id("statistics")).to_contain_text("0 jobs")
        page.get_by_role("link", name="Histories").click()
        expect(page.get_by_text("No histories yet.")).to_be_visible()
        page.goto(f"/histories?id={history}")
        expect(page.get_by_role("alert")).to_contain_text("Not found (or not yours)")
        page.get_by_role("link", name="Extraction").click()
        expect(page.get_by_text("No histories yet.")).to_be_visible()
        for path in (
            f"/api/data-export/jobs/{job['id']}",
            f"/api/data-export/jobs/{job['id']}/stream",
            f"/api/files/{mine['id']}",
            f"/api/histories/{history}",
            f"/api/tasks/{job['task_id']}/stream",
        ):
            assert other.get(path).status_code == 404, path
        assert "secret" not in page.content()


def test_a_refused_key_is_said_plainly_and_a_revoked_session_ends(
    stack: Stack, open_page: Callable[..., Page]
) -> None:
    page = open_page()
    page.goto("/exports")
    # Keyboard only: the key field has the focus; Enter signs in.
    page.keyboard.type("not-a-key")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("API key was refused")
    assert page.evaluate("() => sessionStorage.getItem('waybill.apiKey')") is None
    page.evaluate("() => sessionStorage.setItem('waybill.apiKey', 'wrong')")
    page.goto("/files")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_every_page_fits_390_px(person: Person, open_page: Callable[..., Page]) -> None:
    recorder = Recorder(person.api)
    history = recorder.history("a history with a rather long name to wrap on a phone screen")
    file = upload(person.api, "a_long_file_name_for_a_phone.csv", b"x,y\n1,2\n")
    data = recorder.content(history, {"src": "file", "id": file["id"]})
    recorder.run(history, "cat1", {"input1": ("hda", data["id"])}, ["out_file1"])
    job = create_export(person.api, "phone export", [file["id"]], "parquet").json()
    finished(person.api, job["id"])

    page = open_page(width=390, height=844)
    sign_in(page, person.key, "/files")
    expect(page.get_by_text("a_long_file_name_for_a_phone.csv")).to_be_visible()
    no_horizontal_overflow(page)
    page.get_by_role("link", name="Exports").click()
    expect(page.get_by_test_id("job-status")).to_have_text("completed")
    no_horizontal_overflow(page)
    page.get_by_test_id("new-export").click()
    dialog = page.get_by_role("dialog", name="New export")
    dialog.get_by_role("button", name="Add a condition").click()
    no_horizontal_overflow(page)
    page.keyboard.press("Escape")
    page.get_by_role("link", name="Histories").click()
    page.get_by_role("button", name="a history with a rather long name").click()
    expect(page.get_by_test_id("contents")).to_be_visible()
    no_horizontal_overflow(page)
    page.get_by_role("link", name="Extraction").click()
    page.get_by_label("a history with a rather long name").check()
    expect(page.get_by_test_id("checklist")).to_contain_text("cat1")
    no_horizontal_overflow(page)
