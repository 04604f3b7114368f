"""Service accounts (administrators only): who may publish commands straight to the
broker, and for whom. See docs/PRINCIPALS.md."""

from __future__ import annotations

from fastapi import APIRouter

from waybill_gateway.api.common import IdPath, PageDep, paginated
from waybill_gateway.deps import AdminUser, RuntimeDep, SessionDep, SettingsDep
from waybill_gateway.schemas import (
    AmqpPermissions,
    ServiceAccountCreate,
    ServiceAccountCreated,
    ServiceAccountOut,
)
from waybill_gateway.services import service_accounts
from waybill_shared.db.models import ServiceAccount
from waybill_shared.messaging.definitions import service_account_permissions
from waybill_shared.messaging.topology import Topology

router = APIRouter(prefix="/api/service-accounts", tags=["service accounts"])


def account_out(account: ServiceAccount, topology: Topology) -> ServiceAccountOut:
    permissions, topic = service_account_permissions(account.amqp_user, topology)
    return ServiceAccountOut(
        id=account.id,
        name=account.name,
        amqp_user=account.amqp_user,
        acts_for=account.acts_for,
        user_ids=list(account.user_ids),
        user_id=account.user_id,
        created_at=account.created_at,
        amqp_permissions=AmqpPermissions(
            configure=permissions.configure,
            write=permissions.write,
            read=permissions.read,
            topic_exchange=topic.exchange,
            topic_write=topic.write,
            topic_read=topic.read,
        ),
    )


@router.post("", status_code=201, response_model=ServiceAccountCreated)
async def create_service_account(
    body: ServiceAccountCreate,
    session: SessionDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    _: AdminUser,
) -> ServiceAccountCreated:
    """A system that publishes commands as the AMQP user `amqp_user`. Its RabbitMQ
    user is made by the broker's operator, with the permissions in the answer."""
    account, key = await service_accounts.create_service_account(
        session,
        name=body.name,
        amqp_user=body.amqp_user,
        acts_for=body.acts_for,
        user_ids=body.user_ids,
        reserved=settings.amqp_service_users,
    )
    out = account_out(account, runtime.topology)
    return ServiceAccountCreated(**out.model_dump(), api_key=key)


@router.get("", **paginated(ServiceAccountOut))
async def list_service_accounts(
    session: SessionDep, runtime: RuntimeDep, page: PageDep, _: AdminUser
) -> list[ServiceAccountOut]:
    """Oldest first."""
    accounts, total = await service_accounts.list_service_accounts(
        session, limit=page.limit, offset=page.offset
    )
    return page.answer([account_out(a, runtime.topology) for a in accounts], total)


@router.get("/{account_id}", response_model=ServiceAccountOut)
async def get_service_account(
    account_id: IdPath, session: SessionDep, runtime: RuntimeDep, _: AdminUser
) -> ServiceAccountOut:
    account = await service_accounts.get_service_account(session, account_id)
    return account_out(account, runtime.topology)


@router.delete("/{account_id}", status_code=204)
async def delete_service_account(account_id: IdPath, session: SessionDep, _: AdminUser) -> None:
    """Its commands are refused from then on (within the workers' short cache); what
    its own user owns stays, and that user's API key stops working."""
    await service_accounts.delete_service_account(session, account_id)
