"""roc-validator, offline: the RO-Crate 1.1 JSON-LD context is served from the copy
vendored in tests/support/jsonld/ instead of from w3id.org, through a requests
transport adapter on the validator's HTTP session. Every check runs, the context ones
included; any other URL the validator asks for fails, so nothing reaches the network
and a crate that needs more than the vendored context is reported."""

from __future__ import annotations

from pathlib import Path

import requests
from requests.adapters import BaseAdapter
from rocrate_validator import services
from rocrate_validator.models import Severity, ValidationSettings
from rocrate_validator.utils.http import HttpRequester

VENDORED = Path(__file__).parent / "jsonld"
CONTEXTS = {"https://w3id.org/ro/crate/1.1/context": VENDORED / "ro-crate-1.1-context.jsonld"}


class VendoredContexts(BaseAdapter):
    """Answers the vendored contexts' URLs with their files; refuses anything else."""

    def send(
        self, request: requests.PreparedRequest, *args: object, **kwargs: object
    ) -> requests.Response:  # type: ignore[override]
        url = (request.url or "").rstrip("/")
        if url not in CONTEXTS:
            raise requests.ConnectionError(f"offline: {request.url} is not vendored")
        response = requests.Response()
        response.status_code = 200
        response.url = request.url or url
        response.request = request
        response.headers["Content-Type"] = "application/ld+json"
        response._content = CONTEXTS[url].read_bytes()
        return response

    def close(self) -> None:
        pass


def issues(crate: Path, profile: str, severity: Severity = Severity.REQUIRED) -> list[str]:
    """The issues at `severity` and above, as "<check>: <message>"."""
    settings = ValidationSettings(
        rocrate_uri=str(crate),
        profile_identifier=profile,
        requirement_severity=severity,
        no_cache=True,  # a plain requests session (below), and no user cache touched
    )
    # The settings just (re)built the validator's session: route it to the copies.
    session = HttpRequester().session
    for prefix in ("https://", "http://"):
        session.mount(prefix, VendoredContexts())
    result = services.validate(settings)
    return [f"{i.check.identifier}: {i.message}" for i in result.get_issues(severity)]
