"""The platform's one way to a language model: structured answers from any OpenAI-compatible server, or none.

``llm_from_settings`` gives ``None`` unless ``NORTHSTAR_LLM__BASE_URL`` is set, and every failure of a configured
model (unreachable, slow, an error status, an answer that is still not valid JSON of the schema after the retries,
an org over its monthly budget) is an ``LlmUnavailable``: a caller always has its deterministic writer to fall back
on, so a model is an improvement, never a dependency.

``generate`` asks for a pydantic model's JSON (``response_format`` ``json_schema``, strict; a server that answers
400 to that is asked for a ``json_object`` with the schema in the system message instead, from then on), validates
the answer, and feeds a validation error back once before giving up. E-mail addresses, phone numbers and the
caller's private terms (customer names) leave as placeholders and are put back in the validated answer. Each call
is one OpenTelemetry span with the GenAI semantic-convention attributes, and its tokens and cost are added to the
org's month in ``core.llm_usage``, in the caller's transaction.

``checked_answer`` is how a text reaches a reader: the model's answer is taken only when every number it writes is
one of its facts' (``core.numbers``), asked once more naming the strays, else the caller's deterministic text.

The base URL is operator configuration, not a user's address, so requests go through a plain httpx client rather
than the SSRF guard of ``outbound.py`` (which would refuse the usual local server on loopback).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

import httpx
import orjson
import structlog
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue
from pydantic import BaseModel, ValidationError
from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, func, select
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.db import Base
from northstar.core.http import AppError
from northstar.core.numbers import unsupported
from northstar.settings import LlmSettings, Settings

log = structlog.get_logger("northstar.llm")
CHECKED_ATTEMPTS = 2  # the model's text, then once more told which numbers were not facts
FACTS_ONLY = (  # what a model writing from facts is told of numbers (checked_answer holds it to it)
    "Use only the facts given. Write every number exactly as a fact writes it, with the same digits, rounding and "
    "unit (for example 2,150.00 USD, 4.7 %); never compute, round or invent a number, and write none that no fact "
    "states."
)

Answer = TypeVar("Answer", bound=BaseModel)


class LlmUnavailable(AppError):
    """No answer from the model: the caller writes without it (uncaught, it is a 503, never a 500)."""

    status, code = 503, "llm_unavailable"


class LlmFailed(LlmUnavailable):
    """The model answered, but not with valid JSON of the schema, even after being told what was wrong."""

    code = "llm_failed"


class LlmBudgetExceeded(LlmUnavailable):
    """The org has used its tokens or its cost for the month; nothing was sent."""

    code = "llm_budget_exceeded"


class LlmUsage(Base):
    """An org's use of the model in one month (UTC), its cost in millionths of ``currency``."""

    __tablename__ = "llm_usage"
    __table_args__ = {"schema": "core"}

    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # its first day
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, nullable=False)  # completions answered, retries included
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)


def llm_from_settings(settings: Settings) -> LanguageModel | None:
    """The configured model, or ``None`` when there is none (no base URL): then callers write deterministically."""
    if not settings.llm.base_url:
        return None
    return LanguageModel(settings.llm, tracing=settings.otel)


@dataclass(frozen=True)
class Spent:
    """What one call used: completions answered (retries included), tokens, and cost in millionths of
    ``currency``."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost_micros: int
    currency: str


@dataclass(frozen=True)
class Checked(Generic[Answer]):
    """A model's answer once its text passed the number check (None: none did), and what was refused on the way."""

    value: Answer | None
    checks: tuple[str, ...]


async def checked_answer(
    model: LanguageModel,
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    purpose: str,
    instructions: str,
    prompt: str,
    schema: type[Answer],
    facts: Sequence[str],
    text_of: Callable[[Answer], str],
    private_terms: Iterable[str] = (),
    spent: list[Spent] | None = None,
) -> Checked[Answer]:
    """The model's answer if every number in ``text_of(answer)`` is one of ``facts``' (``numbers.unsupported``),
    asking once more (naming the strays) before giving up; an unavailable model gives up at once."""
    checks: list[str] = []
    for _ in range(CHECKED_ATTEMPTS):
        try:
            value = await model.generate(
                session,
                org_id=org_id,
                purpose=purpose,
                instructions=instructions,
                prompt=prompt,
                schema=schema,
                private_terms=private_terms,
                spent=spent,
            )
        except LlmUnavailable as exc:
            return Checked(None, (*checks, f"the language model gave no answer: {exc.message}"))
        stray = unsupported(text_of(value), facts)
        if not stray:
            return Checked(value, tuple(checks))
        checks.append(f"the language model wrote numbers no fact states: {', '.join(stray)}")
        prompt += (
            f"\n\nYour last text wrote numbers that are not in the facts: {', '.join(stray)}. Write it again using "
            "only the facts' numbers, exactly as written."
        )
    return Checked(None, (*checks, "the deterministic text is used"))


@dataclass(frozen=True)
class _Completion:
    """What one chat completion answered."""

    content: str
    finish_reason: str
    model: str
    id: str
    input_tokens: int
    output_tokens: int


class LanguageModel:
    """One OpenAI-compatible chat-completions server and model; safe to share (``app.state.llm``)."""

    def __init__(self, config: LlmSettings, *, tracing: bool = False) -> None:
        self.config = config
        self.server = httpx.URL(config.base_url)
        self.json_schema = True  # until the server refuses structured outputs
        self.tracer = trace.get_tracer(__name__) if tracing else trace.NoOpTracer()

    async def generate(
        self,
        session: AsyncSession,
        *,
        org_id: uuid.UUID,
        purpose: str,
        instructions: str,
        prompt: str,
        schema: type[Answer],
        private_terms: Iterable[str] = (),
        temperature: float | None = None,
        spent: list[Spent] | None = None,
    ) -> Answer:
        """The model's answer to ``prompt`` as a validated ``schema``, private values as the caller gave them.

        ``session`` is bound to ``org_id``: the org's budget is checked in it before anything is sent, and the
        tokens used are added to its month in it (one session, one call at a time). ``purpose`` names the call in
        spans and logs (``coach.narrative``). Raises ``LlmUnavailable`` (or its ``LlmFailed``,
        ``LlmBudgetExceeded``) whenever there is no valid answer. ``spent``, when given, gets what the call used
        (answered or not), for a caller that accounts for it per task (an agent run).
        """
        config = self.config
        temperature = config.temperature if temperature is None else temperature
        answered: list[_Completion] = []
        month = datetime.now(UTC).date().replace(day=1)
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": config.provider,
            "gen_ai.system": config.provider,
            "gen_ai.request.model": config.model,
            "gen_ai.request.temperature": temperature,
            "gen_ai.output.type": "json",
            "server.address": self.server.host,
            "server.port": self.server.port or (443 if self.server.scheme == "https" else 80),
            "northstar.llm.purpose": purpose,
        }
        with self.tracer.start_as_current_span(
            f"chat {config.model}", kind=trace.SpanKind.CLIENT, attributes=attributes
        ) as span:
            failure: LlmUnavailable | None = None
            try:
                await self._within_budget(session, org_id, month)
                redactor = _Redactor(private_terms)
                conversation = _Conversation(redactor, instructions, prompt, schema)
                answer = redactor.restored(await self._converse(conversation, purpose, temperature, answered), schema)
            except LlmUnavailable as exc:
                failure = exc
            _describe(span, answered)
            if answered:  # tokens are spent whether or not the answer was usable
                used = _spent(config, answered)
                await _record(session, org_id, month, used)
                if spent is not None:
                    spent.append(used)
            if failure is not None:
                span.set_attribute("error.type", type(failure).__name__)
                log.warning("llm_unavailable", purpose=purpose, org=str(org_id), error=failure.message)
                raise failure
            return answer

    async def _within_budget(self, session: AsyncSession, org_id: uuid.UUID, month: date) -> None:
        config = self.config
        if not (config.monthly_tokens or config.monthly_cost_micros):
            return
        used = (
            await session.execute(
                select(
                    func.coalesce(func.sum(LlmUsage.input_tokens + LlmUsage.output_tokens), 0),
                    func.coalesce(func.sum(LlmUsage.cost_micros).filter(LlmUsage.currency == config.currency), 0),
                ).where(LlmUsage.org_id == org_id, LlmUsage.month == month)
            )
        ).one()
        if config.monthly_tokens and used[0] >= config.monthly_tokens:
            raise LlmBudgetExceeded(f"the organization has used its {config.monthly_tokens} tokens this month")
        if config.monthly_cost_micros and used[1] >= config.monthly_cost_micros:
            raise LlmBudgetExceeded("the organization has used its language model budget this month")

    async def _converse(
        self, conversation: _Conversation, purpose: str, temperature: float, answered: list[_Completion]
    ) -> Any:
        """The first answer that is valid JSON of the schema (still redacted), telling the model what was wrong."""
        config = self.config
        deadline = asyncio.get_running_loop().time() + config.timeout_seconds
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else None
        problem = ""
        async with httpx.AsyncClient(base_url=self.server, headers=headers, timeout=config.timeout_seconds) as http:
            for _ in range(1 + config.max_retries):
                completion = await self._complete(http, conversation, temperature, deadline)
                answered.append(completion)
                data, problem = conversation.check(completion)
                if not problem:
                    return data
                conversation.turns += [
                    {"role": "assistant", "content": completion.content},
                    {
                        "role": "user",
                        "content": f"That answer is not valid: {problem}. "
                        "Answer again with only the JSON object, as the schema says.",
                    },
                ]
        raise LlmFailed(f"{purpose}: no valid answer in {len(answered)} attempts (last: {problem})")

    async def _complete(
        self, http: httpx.AsyncClient, conversation: _Conversation, temperature: float, deadline: float
    ) -> _Completion:
        """One chat completion; a server without structured outputs is asked for a JSON object instead."""
        model = self.config.model
        try:
            async with asyncio.timeout_at(deadline):
                response = await http.post(
                    "/chat/completions", json=conversation.request(model, temperature, self.json_schema)
                )
                if response.status_code == 400 and self.json_schema:
                    self.json_schema = False
                    log.info("llm_json_schema_refused", server=self.server.host, model=model)
                    response = await http.post(
                        "/chat/completions", json=conversation.request(model, temperature, False)
                    )
        except TimeoutError:
            raise LlmUnavailable(f"the language model did not answer within {self.config.timeout_seconds} s") from None
        except httpx.HTTPError as exc:
            raise LlmUnavailable(f"the language model server could not be reached ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise LlmUnavailable(f"the language model server answered {response.status_code}")
        try:
            body = response.json()
            choice = body["choices"][0]
            usage = body.get("usage") or {}
            return _Completion(
                content=choice["message"].get("content") or "",
                finish_reason=str(choice.get("finish_reason") or ""),
                model=str(body.get("model") or ""),
                id=str(body.get("id") or ""),
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise LlmUnavailable("the language model server's answer is not a chat completion") from None


class _Conversation:
    """The messages of one call, redacted, asked in the response format the server takes."""

    def __init__(self, redactor: _Redactor, instructions: str, prompt: str, schema: type[BaseModel]) -> None:
        self.instructions = redactor.redact(instructions)
        self.turns = [{"role": "user", "content": redactor.redact(prompt)}]
        self.private = bool(redactor.originals)
        self.schema = schema
        self.json_schema = strict_schema(schema.model_json_schema())

    def request(self, model: str, temperature: float, structured: bool) -> dict[str, Any]:
        system = self.instructions + "\n\nAnswer with one JSON object and nothing else"
        if structured:
            response_format: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"name": _schema_name(self.schema), "schema": self.json_schema, "strict": True},
            }
            system += "."
        else:
            response_format = {"type": "json_object"}
            system += f", valid against this JSON schema:\n{orjson.dumps(self.json_schema).decode()}"
        if self.private:
            system += "\nText in square brackets such as [NAME_1] stands for a private value: keep it as written."
        return {
            "model": model,
            "messages": [{"role": "system", "content": system}, *self.turns],
            "temperature": temperature,
            "response_format": response_format,
        }

    def check(self, completion: _Completion) -> tuple[Any, str]:
        """The answer's JSON and what is wrong with it ("" when valid)."""
        if completion.finish_reason == "length":
            return None, "it was cut off at the token limit; answer more briefly"
        text = _unfenced(completion.content)
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return None, f"it is not JSON ({exc})"
        try:
            self.schema.model_validate(data)
        except ValidationError as exc:
            return None, _problems(exc)
        return data, ""


def _problems(exc: ValidationError) -> str:
    """What is wrong, field by field, without the values (which may be private once restored)."""
    return "; ".join(
        f"{'.'.join(map(str, error['loc'])) or 'the object'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    )


def _unfenced(text: str) -> str:
    """The JSON inside a Markdown code fence, as small models often answer even when told not to."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        return stripped[3:-3].removeprefix("json").strip()
    return stripped


def _schema_name(schema: type[BaseModel]) -> str:
    """The schema's name as OpenAI takes it: letters, digits, ``_`` and ``-``, at most 64."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64]


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as strict structured outputs take it: every object closed and every property required (a field
    with a default must be written out), and no ``default`` keywords."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "default":
                continue
            if key in ("properties", "$defs", "definitions"):
                out[key] = {name: walk(sub) for name, sub in value.items()}
            else:
                out[key] = walk(value)
        if out.get("type") == "object" and "properties" in out:
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        return out

    result: dict[str, Any] = walk(schema)
    return result


_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# Written the way phone numbers are: with a leading +, an area code in parentheses, 3-3-4 groups, or a national
# leading 0 and separators; 8 to 15 digits (checked after matching). Plain numbers (amounts, counts, dates) are not.
_PHONE = (
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d[\d\s.-]{4,}\d"
    r"|\(\d{2,5}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4}"
    r"|0\d{1,4}[\s/-]\d{2,}(?:[\s-]\d{2,})*"
    r")(?!\w)"
)
_PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE|NAME)_\d+\]")


class _Redactor:
    """Private values swapped for stable placeholders on the way out (``[NAME_1]``, ``[EMAIL_1]``, ``[PHONE_1]``:
    the same value, the same placeholder, across instructions, prompt and retries), and back in the answer."""

    def __init__(self, private_terms: Iterable[str]) -> None:
        terms = sorted({term.strip() for term in private_terms if term.strip()}, key=len, reverse=True)
        self.spelling = {term.casefold(): term for term in terms}
        named = "|".join(re.escape(term) for term in terms)
        parts = [f"(?P<email>{_EMAIL})", *([f"(?P<name>(?<!\\w)(?i:{named})(?!\\w))"] if terms else [])]
        self.pattern = re.compile("|".join([*parts, f"(?P<phone>{_PHONE})"]))
        self.originals: dict[str, str] = {}  # placeholder -> value
        self.placeholders: dict[tuple[str, str], str] = {}  # (kind, normalised value) -> placeholder

    def redact(self, text: str) -> str:
        return self.pattern.sub(self._placeholder, text)

    def _placeholder(self, match: re.Match[str]) -> str:
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "phone":
            digits = re.sub(r"\D", "", value)
            if not 8 <= len(digits) <= 15:
                return value
            key = digits
        else:
            key = value.casefold()
            value = self.spelling.get(key, value)
        placeholder = self.placeholders.get((kind, key))
        if placeholder is None:
            count = sum(1 for known in self.placeholders if known[0] == kind) + 1
            placeholder = self.placeholders[kind, key] = f"[{kind.upper()}_{count}]"
            self.originals[placeholder] = value
        return placeholder

    def restore(self, text: str) -> str:
        return _PLACEHOLDER.sub(lambda match: self.originals.get(match.group(), match.group()), text)

    def restored(self, data: Any, schema: type[Answer]) -> Answer:
        """The validated answer with every placeholder in its strings put back."""

        def walk(node: Any) -> Any:
            if isinstance(node, str):
                return self.restore(node)
            if isinstance(node, list):
                return [walk(item) for item in node]
            if isinstance(node, dict):
                return {walk(key): walk(value) for key, value in node.items()}
            return node

        try:
            return schema.model_validate(walk(data) if self.originals else data)
        except ValidationError as exc:  # a private value longer than its placeholder may break a length limit
            raise LlmFailed(f"the answer is not valid once private values are put back: {_problems(exc)}") from None


def _describe(span: trace.Span, answered: list[_Completion]) -> None:
    """The span's response attributes: the last completion's model and id, every attempt's tokens."""
    if not answered:
        return
    span.set_attributes(
        {
            "gen_ai.response.model": answered[-1].model,
            "gen_ai.response.id": answered[-1].id,
            "gen_ai.response.finish_reasons": [completion.finish_reason for completion in answered],
            "gen_ai.usage.input_tokens": sum(completion.input_tokens for completion in answered),
            "gen_ai.usage.output_tokens": sum(completion.output_tokens for completion in answered),
            "northstar.llm.attempts": len(answered),
        }
    )


def _spent(config: LlmSettings, answered: list[_Completion]) -> Spent:
    cost = sum(  # in millionths, each completion's rounded up
        (
            completion.input_tokens * config.input_micros_per_1k_tokens
            + completion.output_tokens * config.output_micros_per_1k_tokens
            + 999
        )
        // 1000
        for completion in answered
    )
    return Spent(
        calls=len(answered),
        input_tokens=sum(completion.input_tokens for completion in answered),
        output_tokens=sum(completion.output_tokens for completion in answered),
        cost_micros=cost,
        currency=config.currency,
    )


async def _record(session: AsyncSession, org_id: uuid.UUID, month: date, used: Spent) -> None:
    """Add the call's completions to the org's month, in the caller's transaction."""
    statement = insert(LlmUsage).values(
        org_id=org_id,
        month=month,
        currency=used.currency,
        calls=used.calls,
        input_tokens=used.input_tokens,
        output_tokens=used.output_tokens,
        cost_micros=used.cost_micros,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[LlmUsage.org_id, LlmUsage.month, LlmUsage.currency],
            set_={
                "calls": LlmUsage.calls + statement.excluded.calls,
                "input_tokens": LlmUsage.input_tokens + statement.excluded.input_tokens,
                "output_tokens": LlmUsage.output_tokens + statement.excluded.output_tokens,
                "cost_micros": LlmUsage.cost_micros + statement.excluded.cost_micros,
            },
        )
    )
