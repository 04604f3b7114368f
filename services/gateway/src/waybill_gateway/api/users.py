from __future__ import annotations

from fastapi import APIRouter, Response

from waybill_gateway.api.common import IdPath, PageDep, paginated
from waybill_gateway.deps import AdminUser, ApiKeysDep, CurrentUser, SessionDep, SettingsDep
from waybill_gateway.quotas import Quotas
from waybill_gateway.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    QuotasUpdate,
    UsageOut,
    UserCreate,
    UserCreated,
    UserOut,
)
from waybill_gateway.services import accounts, catalog

router = APIRouter(prefix="/api/users", tags=["users"])


@router.post("", status_code=201, response_model=UserCreated)
async def create_user(body: UserCreate, session: SessionDep, _: AdminUser) -> UserCreated:
    user, key = await catalog.create_user(session, name=body.name, is_admin=body.is_admin)
    return UserCreated(id=user.id, name=user.name, is_admin=user.is_admin, api_key=key)


@router.get("/me", response_model=UserOut)
async def whoami(user: CurrentUser) -> UserOut:
    return UserOut(id=user.id, name=user.name, is_admin=user.is_admin)


@router.post("/me/keys", status_code=201, response_model=ApiKeyCreated)
async def create_key(body: ApiKeyCreate, session: SessionDep, user: CurrentUser) -> ApiKeyCreated:
    """A new named key; the answer is the only time the key itself is shown."""
    record, key = await accounts.create_key(
        session, user_id=user.id, name=body.name, expires_at=body.expires_at
    )
    shown = ApiKeyOut.model_validate(record, from_attributes=True)
    return ApiKeyCreated(**shown.model_dump(), key=key)


@router.get("/me/keys", **paginated(ApiKeyOut))
async def list_my_keys(session: SessionDep, user: CurrentUser, page: PageDep) -> list[ApiKeyOut]:
    return await _keys_page(session, user.id, page)


@router.get("/me/keys/{key_id}", response_model=ApiKeyOut)
async def get_my_key(key_id: IdPath, session: SessionDep, user: CurrentUser) -> ApiKeyOut:
    record = await accounts.get_key(session, user_id=user.id, key_id=key_id)
    return ApiKeyOut.model_validate(record, from_attributes=True)


@router.delete("/me/keys/{key_id}", status_code=204, response_class=Response)
async def revoke_my_key(
    key_id: IdPath, session: SessionDep, user: CurrentUser, keys: ApiKeysDep
) -> Response:
    """Refused by every replica within `api_key_cache_seconds` (1 s), by this one at once."""
    await accounts.revoke_key(session, user_id=user.id, key_id=key_id)
    keys.forget(key_ids={key_id})
    return Response(status_code=204)


@router.get("/me/usage", response_model=UsageOut)
async def my_usage(session: SessionDep, user: CurrentUser, settings: SettingsDep) -> UsageOut:
    return await accounts.usage(session, user=user, quotas=Quotas.of(user, settings))


@router.get("/{user_id}/keys", **paginated(ApiKeyOut))
async def list_keys(
    user_id: IdPath, session: SessionDep, _: AdminUser, page: PageDep
) -> list[ApiKeyOut]:
    await accounts.get_user(session, user_id)
    return await _keys_page(session, user_id, page)


@router.delete("/{user_id}/keys/{key_id}", status_code=204, response_class=Response)
async def revoke_key(
    user_id: IdPath, key_id: IdPath, session: SessionDep, _: AdminUser, keys: ApiKeysDep
) -> Response:
    await accounts.revoke_key(session, user_id=user_id, key_id=key_id)
    keys.forget(key_ids={key_id})
    return Response(status_code=204)


@router.put("/{user_id}/quotas", response_model=UsageOut)
async def set_quotas(
    user_id: IdPath,
    body: QuotasUpdate,
    session: SessionDep,
    settings: SettingsDep,
    keys: ApiKeysDep,
    _: AdminUser,
) -> UsageOut:
    """The user's own quotas (null: the deployment's default; 0: none); answers the
    user's usage under them. In force on every replica within `api_key_cache_seconds`."""
    user = await accounts.set_quotas(session, user_id=user_id, quotas=body)
    keys.forget(user_id=user_id)
    return await accounts.usage(session, user=user, quotas=Quotas.of(user, settings))


async def _keys_page(session: SessionDep, user_id: int, page: PageDep) -> list[ApiKeyOut]:
    records, total = await accounts.list_keys(
        session, user_id=user_id, limit=page.limit, offset=page.offset
    )
    return page.answer([ApiKeyOut.model_validate(r, from_attributes=True) for r in records], total)
