"""The web UI (services/gateway/ui, a Vue app built by scripts/setup.sh): its hashed
assets under /assets, and index.html for each of its pages, so that a page's URL can be
reloaded or bookmarked. Only these paths: every other path answers as before (an
unknown /api path stays a JSON 404)."""

from __future__ import annotations

from pathlib import Path

import structlog
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

log = structlog.get_logger(__name__)

# The UI's pages (its router's top-level paths, services/gateway/ui/src/router.ts).
PAGES = ("login", "files", "exports", "histories", "extraction")

# Scripts and styles only from this origin: no CDN, no inline script. connect-src is
# wider because a short-term download's signed link is on the storage's origin, which
# the UI reaches (headers only) to learn the link.
INDEX_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; connect-src 'self' http: https:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
}


def install(app: FastAPI, ui_dir: Path) -> None:
    index = ui_dir / "index.html"

    async def page() -> Response:
        if not index.is_file():  # looked at per request: a build while running is picked up
            return JSONResponse(
                {"detail": "the web UI is not built: run scripts/setup.sh (npm run build)"},
                status_code=404,
            )
        return FileResponse(index, headers=INDEX_HEADERS)

    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    for name in PAGES:
        app.add_api_route(f"/{name}", page, methods=["GET"], include_in_schema=False)
        app.add_api_route(f"/{name}/{{rest:path}}", page, methods=["GET"], include_in_schema=False)
    if not index.is_file():
        log.warning("the web UI is not built; / answers 404", ui_dir=str(ui_dir))
    app.mount("/assets", StaticFiles(directory=ui_dir / "assets", check_dir=False), name="ui")
