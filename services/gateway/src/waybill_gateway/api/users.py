from __future__ import annotations

from fastapi import APIRouter

from waybill_gateway.deps import AdminUser, CurrentUser, SessionDep
from waybill_gateway.schemas import UserCreate, UserCreated, UserOut
from waybill_gateway.services import catalog

router = APIRouter(prefix="/api/users", tags=["users"])


@router.post("", status_code=201, response_model=UserCreated)
async def create_user(body: UserCreate, session: SessionDep, _: AdminUser) -> UserCreated:
    user, key = await catalog.create_user(session, name=body.name, is_admin=body.is_admin)
    return UserCreated(id=user.id, name=user.name, is_admin=user.is_admin, api_key=key)


@router.get("/me", response_model=UserOut)
async def whoami(user: CurrentUser) -> UserOut:
    return UserOut(id=user.id, name=user.name, is_admin=user.is_admin)
