"""What /readyz answers, from the checks of the backing services (pure)."""

from __future__ import annotations

from waybill_shared.runtime import DEPENDENCIES, Readiness

ALL_OK = {"database": "ok", "broker": "ok", "storage": "ok"}
GATEWAY = frozenset({"database"})


def test_all_ok_is_ready() -> None:
    for needs in (DEPENDENCIES, GATEWAY):
        readiness = Readiness(ALL_OK, needs)
        assert readiness.ready and readiness.status == "ok"


def test_the_gateway_without_the_broker_is_ready_but_degraded() -> None:
    readiness = Readiness({**ALL_OK, "broker": "degraded: not connected"}, GATEWAY)
    assert readiness.body() == {
        "ready": True,
        "status": "degraded",
        "checks": {**ALL_OK, "broker": "degraded: not connected"},
    }


def test_a_worker_without_the_broker_is_not_ready() -> None:
    readiness = Readiness({**ALL_OK, "broker": "unavailable: not connected"}, DEPENDENCIES)
    assert not readiness.ready and readiness.status == "unavailable"


def test_the_gateway_without_the_database_is_not_ready() -> None:
    readiness = Readiness({**ALL_OK, "database": "unavailable: refused"}, GATEWAY)
    assert not readiness.ready and readiness.status == "unavailable"
