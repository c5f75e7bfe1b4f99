"""A/B test routes (seed 001 ``ab_tests``): a site's tests, their life cycle and results.

Who may read a site reads its tests and results; who may change the site (founders and admins, members for the
sites they created) sets tests up, starts, stops and completes them.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.socialproof.auth import SitesRead, SitesUpdate
from northstar.socialproof.schemas.abtests import (
    AbTestComplete,
    AbTestCreate,
    AbTestOut,
    AbTestResults,
    AbTestUpdate,
    Status,
    VariantOut,
)
from northstar.socialproof.service import abtests as service

router = APIRouter(tags=["social proof"], responses=ERROR_RESPONSES)
TESTS = "/sites/{site_id}/ab-tests"
TEST = TESTS + "/{test_id}"


def test_out(view: service.TestView) -> AbTestOut:
    """The test with its variants, as the API answers it (the console shows the same)."""
    fields = {name: getattr(view.test, name) for name in AbTestOut.model_fields if name != "variants"}
    return AbTestOut.model_validate(
        {**fields, "variants": [VariantOut.model_validate(variant) for variant in view.variants]}
    )


def _audited(request: Request, view: service.TestView) -> Envelope[AbTestOut]:
    audit_target(request, "ab_test", view.test.id, site=str(view.test.site_id), status=view.test.status)
    return Envelope(data=test_out(view))


@router.get(TESTS, response_model=PageEnvelope[AbTestOut], name="ab_tests.list")
async def list_tests(
    site_id: uuid.UUID,
    principal: SitesRead,
    session: DbSession,
    page: Page,
    notification_id: Annotated[uuid.UUID | None, Query(alias="notificationId")] = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
) -> PageEnvelope[AbTestOut]:
    views, total = await service.list_tests(
        session,
        org_id=principal.org_id,
        site_id=site_id,
        notification_id=notification_id,
        status=status_,
        offset=page.offset,
        limit=page.limit,
    )
    return PageEnvelope(data=[test_out(view) for view in views], meta=page.meta(total))


@router.post(
    TESTS,
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[AbTestOut],
    name="ab_tests.create",
    dependencies=[Idempotent],
)
async def create_test(
    site_id: uuid.UUID, body: AbTestCreate, request: Request, principal: SitesUpdate, session: DbSession
) -> Envelope[AbTestOut]:
    """A draft test of one of the site's notifications: 2 to 5 variants, one of them the control, weights summing
    to 100."""
    return _audited(request, await service.create_test(session, principal=principal, site_id=site_id, body=body))


@router.get(TEST, response_model=Envelope[AbTestOut], name="ab_tests.get")
async def get_test(
    site_id: uuid.UUID, test_id: uuid.UUID, principal: SitesRead, session: DbSession
) -> Envelope[AbTestOut]:
    return Envelope(
        data=test_out(await service.get_test(session, org_id=principal.org_id, site_id=site_id, test_id=test_id))
    )


@router.patch(TEST, response_model=Envelope[AbTestOut], name="ab_tests.update")
async def update_test(
    site_id: uuid.UUID,
    test_id: uuid.UUID,
    body: AbTestUpdate,
    request: Request,
    principal: SitesUpdate,
    session: DbSession,
) -> Envelope[AbTestOut]:
    view = await service.update_test(session, principal=principal, site_id=site_id, test_id=test_id, body=body)
    return _audited(request, view)


@router.delete(TEST, status_code=status.HTTP_204_NO_CONTENT, name="ab_tests.delete")
async def delete_test(
    site_id: uuid.UUID, test_id: uuid.UUID, request: Request, principal: SitesUpdate, session: DbSession
) -> None:
    await service.delete_test(session, principal=principal, site_id=site_id, test_id=test_id)
    audit_target(request, "ab_test", test_id, site=str(site_id))


@router.post(TEST + "/start", response_model=Envelope[AbTestOut], name="ab_tests.start")
async def start_test(
    site_id: uuid.UUID, test_id: uuid.UUID, request: Request, principal: SitesUpdate, session: DbSession
) -> Envelope[AbTestOut]:
    """The feed splits the notification's visitors among the variants from now on (409 unless a draft, or when
    the notification already has a running test)."""
    return _audited(request, await service.start_test(session, principal=principal, site_id=site_id, test_id=test_id))


@router.post(TEST + "/stop", response_model=Envelope[AbTestOut], name="ab_tests.stop")
async def stop_test(
    site_id: uuid.UUID, test_id: uuid.UUID, request: Request, principal: SitesUpdate, session: DbSession
) -> Envelope[AbTestOut]:
    """Stop without a winner: the notification shows as it is again."""
    return _audited(request, await service.stop_test(session, principal=principal, site_id=site_id, test_id=test_id))


@router.post(TEST + "/complete", response_model=Envelope[AbTestOut], name="ab_tests.complete")
async def complete_test(
    site_id: uuid.UUID,
    test_id: uuid.UUID,
    body: AbTestComplete,
    request: Request,
    principal: SitesUpdate,
    session: DbSession,
) -> Envelope[AbTestOut]:
    """Choose the winner (of a running or stopped test): the notification shows it to everyone from now on."""
    view = await service.complete_test(
        session, principal=principal, site_id=site_id, test_id=test_id, winner_id=body.winner_variant_id
    )
    return _audited(request, view)


@router.get(TEST + "/results", response_model=Envelope[AbTestResults], name="ab_tests.results")
async def test_results(
    site_id: uuid.UUID, test_id: uuid.UUID, principal: SitesRead, session: DbSession
) -> Envelope[AbTestResults]:
    """Per variant: visitors exposed, clicking and converting, rates with 95 % Wilson intervals, the z-test
    against the control (Holm-adjusted), the chance to beat the control, and the sample-ratio check."""
    return Envelope(data=await service.get_results(session, org_id=principal.org_id, site_id=site_id, test_id=test_id))
