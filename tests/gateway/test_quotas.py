"""Quota arithmetic: a user's own quota or the deployment's; 0 is none; which quota
is over, by how much, and the status that says what to do."""

from __future__ import annotations

import pytest

from waybill_gateway.quotas import (
    FILES_PER_EXPORT,
    RUNNING_EXPORTS,
    STORED_BYTES,
    QuotaExceeded,
    Quotas,
)
from waybill_gateway.settings import GatewaySettings
from waybill_shared.db.models import User


def test_a_users_own_quota_wins_and_null_takes_the_default() -> None:
    settings = GatewaySettings(
        quota_stored_bytes=1000, quota_running_exports=5, max_files_per_export=7
    )
    default = Quotas.of(User(id=1, name="a"), settings)
    assert default == Quotas(stored_bytes=1000, running_exports=5, files_per_export=7)
    own = Quotas.of(
        User(
            id=2, name="b", quota_stored_bytes=0, quota_running_exports=1, quota_files_per_export=2
        ),
        settings,
    )
    assert own == Quotas(stored_bytes=0, running_exports=1, files_per_export=2)


def test_stored_bytes_an_upload_that_does_not_fit() -> None:
    quotas = Quotas(stored_bytes=1000, running_exports=0, files_per_export=0)
    quotas.check_stored(600, adding=400)  # exactly full is allowed
    with pytest.raises(QuotaExceeded) as over:
        quotas.check_stored(600, adding=500)
    error = over.value
    assert (error.quota, error.limit, error.would_use, error.over_by) == (
        STORED_BYTES,
        1000,
        1100,
        100,
    )
    assert error.status_code == 413
    assert "100 bytes over" in str(error) and "upload of 500 bytes" in str(error)
    assert error.body() == {
        "detail": str(error),
        "quota": "stored_bytes",
        "limit": 1000,
        "would_use": 1100,
        "over_by": 100,
    }


def test_stored_bytes_an_export_once_the_quota_is_used_up() -> None:
    quotas = Quotas(stored_bytes=1000, running_exports=0, files_per_export=0)
    quotas.check_stored(999)
    with pytest.raises(QuotaExceeded) as full:
        quotas.check_stored(1000)
    assert full.value.over_by == 0 and "used up" in str(full.value)
    with pytest.raises(QuotaExceeded) as past:
        quotas.check_stored(1300)  # artifacts finished after the last check
    assert past.value.over_by == 300 and "300 bytes over" in str(past.value)


def test_running_exports_counts_the_new_one() -> None:
    quotas = Quotas(stored_bytes=0, running_exports=2, files_per_export=0)
    quotas.check_running(1)
    with pytest.raises(QuotaExceeded) as over:
        quotas.check_running(2)
    error = over.value
    assert (error.quota, error.limit, error.would_use, error.over_by) == (RUNNING_EXPORTS, 2, 3, 1)
    assert error.status_code == 429
    assert "2 exports are pending or running, at most 2" in str(error)


def test_files_per_export() -> None:
    quotas = Quotas(stored_bytes=0, running_exports=0, files_per_export=3)
    quotas.check_files(3)
    with pytest.raises(QuotaExceeded) as over:
        quotas.check_files(5)
    error = over.value
    assert (error.quota, error.over_by, error.status_code) == (FILES_PER_EXPORT, 2, 422)
    assert "at most 3 per export" in str(error) and "2 over" in str(error)


def test_zero_is_no_quota() -> None:
    none = Quotas(stored_bytes=0, running_exports=0, files_per_export=0)
    none.check_stored(10**15, adding=10**15)
    none.check_running(10**9)
    none.check_files(10**6)
