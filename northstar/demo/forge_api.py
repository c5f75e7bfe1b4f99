"""What the fake code hosts share (GitHub, GitLab): a rate limit stated on every answer, lists paged with a ``Link``
header, and weak ETags that answer a matching ``If-None-Match`` with a 304, which does not use the rate limit.

``StatedLimit`` counts requests in fixed windows of ``window_seconds`` and names its headers with ``prefix``
(GitHub: ``X-RateLimit-``; GitLab: ``RateLimit-``); a request past the limit gets ``refusal`` (GitHub 403, GitLab
429 with ``Retry-After``) and the body the host sends with it.
"""

from __future__ import annotations

import hashlib
import math
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

MAX_PER_PAGE = 100


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


@dataclass
class StatedLimit:
    limit: int
    window_seconds: float
    prefix: str
    refusal: int
    refusal_body: dict[str, Any]
    reset_unit: float = 1.0  # the reset header's unit in seconds (Linear states milliseconds)
    not_modified: int = 0  # 304 answers given
    limited: int = 0  # requests refused for the spent limit
    _window: tuple[float, int] = field(default=(0.0, 0))

    def count(self) -> tuple[dict[str, str], bool]:
        """The rate-limit headers after counting this request, and whether it is over the limit."""
        now = time.time()
        start, used = self._window
        if now >= start + self.window_seconds:
            start, used = math.floor(now / self.window_seconds) * self.window_seconds, 0
        over = used >= self.limit
        used = used if over else used + 1
        self._window = (start, used)
        reset = math.ceil(start + self.window_seconds)
        headers = {
            f"{self.prefix}Limit": str(self.limit),
            f"{self.prefix}Remaining": str(self.limit - used),
            f"{self.prefix}Reset": str(int(reset / self.reset_unit)),
        }
        if over and self.refusal == 429:
            headers["Retry-After"] = str(max(0, math.ceil(reset - now)))
        return headers, over

    def answer(self, request: Request, body: Any, *, paged: bool = False) -> Response:
        """``body`` as the host answers it: a page of it with ``Link`` (``paged``), a 304 for a matching ETag, or
        the refusal once the limit is spent."""
        headers: dict[str, str] = {}
        if paged:
            items: list[Any] = body
            page = _positive(request.query_params.get("page"), 1)
            per_page = min(MAX_PER_PAGE, _positive(request.query_params.get("per_page"), 20))
            last = max(1, math.ceil(len(items) / per_page))
            body = items[(page - 1) * per_page : page * per_page]
            links = [f'<{_with_page(request, page + 1)}>; rel="next"'] if page < last else []
            links.append(f'<{_with_page(request, last)}>; rel="last"')
            headers["Link"] = ", ".join(links)
            headers["X-Total"] = str(len(items))
        content = orjson.dumps(body)
        etag = 'W/"' + hashlib.sha256(content).hexdigest()[:40] + '"'
        if request.headers.get("if-none-match") == etag:
            self.not_modified += 1
            return Response(status_code=304, headers={"ETag": etag})
        budget, over = self.count()
        if over:
            self.limited += 1
            return json_response(self.refusal_body, self.refusal, budget)
        return Response(content, media_type="application/json", headers={**headers, **budget, "ETag": etag})

    def missing(self, body: dict[str, Any]) -> Response:
        budget, _ = self.count()
        return json_response(body, 404, budget)


def _positive(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() and int(value) > 0 else default


def _with_page(request: Request, page: int) -> str:
    query = dict(request.query_params)
    query["page"] = str(page)
    return f"{request.base_url}{request.url.path.lstrip('/')}?{urllib.parse.urlencode(query)}"
