"""The coach's console page: the month told (narrative, next steps with the facts behind each), a question box
answered in place, and the coach's voice for who may change it. Same service functions and gates as the API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response

from northstar.core.console.pages import console_router, read_form, redirect, render
from northstar.core.context import DbSession, audit_target
from northstar.core.permissions import Principal
from northstar.reports.auth import CoachReadPage, CoachSettingsUpdatePage
from northstar.reports.facts import month_name
from northstar.reports.schemas import CoachSettingsChange, Question
from northstar.reports.service import coaching

TEMPLATES = Path(__file__).parent / "templates"
MONTHS_OFFERED = 12

router = console_router()


def _months(today: dt.date) -> list[tuple[str, str]]:
    """This month and the eleven before it, as the month picker's options."""
    first = today.replace(day=1)
    months = []
    for _ in range(MONTHS_OFFERED):
        months.append((first.strftime("%Y-%m"), month_name(first)))
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return months


def _blocks(paragraphs: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """Each paragraph as its sentences and its list (the lines starting with "- ", as the writer lists steps)."""
    blocks = []
    for paragraph in paragraphs:
        lines = paragraph.split("\n")
        listed = [line[2:] for line in lines if line.startswith("- ")]
        blocks.append((" ".join(line for line in lines if not line.startswith("- ")), listed))
    return blocks


async def _coach_page(
    request: Request, session: DbSession, principal: Principal, month: str | None, *, status: int = 200, **extra: object
) -> Response:
    chosen = dt.date.fromisoformat(f"{month}-01") if month else None
    found = await coaching.insights(session, org_id=principal.org_id, month=chosen, model=request.app.state.llm)
    voice = await coaching.coach_settings(session, org_id=principal.org_id)
    context = {
        "insights": found,
        "paragraphs": _blocks(found.narrative.paragraphs),
        "facts": {fact.id: fact for fact in found.sheet.facts},
        "months": _months(found.sheet.source.today),
        "chosen": found.sheet.month.strftime("%Y-%m"),
        "month_label": month_name(found.sheet.month),
        "voice": voice,
        "may_change_voice": principal.may_try("update", "settings"),
        "values": {},
        "errors": {},
        **extra,
    }
    return render(request, "reports/coach.html", context, status=status)


@router.get("/coach", name="console.coach")
async def coach_page(
    request: Request,
    principal: CoachReadPage,
    session: DbSession,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
) -> Response:
    """``GET /coach/insights`` as a page."""
    return await _coach_page(request, session, principal, month)


@router.post("/coach/ask", name="console.coach_ask")
async def ask(request: Request, principal: CoachReadPage, session: DbSession) -> Response:
    """``POST /coach/ask``: the answer and its citations, swapped in under the question."""
    form = await read_form(request, Question)
    if form.model is None:
        return render(request, "reports/answer.html", {"reply": None, "errors": form.errors}, status=422)
    reply = await coaching.ask(
        session, org_id=principal.org_id, question=form.model.question, model=request.app.state.llm
    )
    return render(request, "reports/answer.html", {"reply": reply, "question": form.model.question, "errors": {}})


@router.post("/coach/voice", name="console.coach_voice")
async def change_voice(request: Request, principal: CoachSettingsUpdatePage, session: DbSession) -> Response:
    """``PATCH /coach/settings``: the coach's tone and length."""
    form = await read_form(request, CoachSettingsChange)
    if form.model is None:
        return await _coach_page(request, session, principal, None, values=form.values, errors=form.errors, status=422)
    changes = form.model.model_dump(exclude_none=True)
    await coaching.update_coach_settings(session, org_id=principal.org_id, changes=changes)
    audit_target(request, "coach_settings", principal.org_id, **changes)
    return redirect(request, "/app/coach")
