"""Health, readiness, metrics and the envelope on framework errors."""

from __future__ import annotations

import httpx


async def test_service_health_reports_each_dependency(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["service"] == "northstar"
    assert data["version"]
    assert (data["database"], data["redis"], data["queue"]) == ("ok", "disabled", "ok")


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"data": {"status": "ok"}}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["data"]["ready"] is True


async def test_metrics_expose_requests_by_route_pool_and_queue(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/projects")
    text = (await client.get("/metrics")).text
    assert 'northstar_http_requests_total{method="GET",route="/api/v1/projects",status="401"}' in text
    assert "northstar_http_request_duration_seconds_bucket" in text
    assert 'northstar_db_pool_connections{state="size"}' in text
    assert 'northstar_queue_jobs{status="todo"}' in text


async def test_unknown_route_and_wrong_method_use_the_envelope(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = await client.delete("/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


async def test_trace_id_is_taken_from_traceparent_and_echoed(client: httpx.AsyncClient) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = await client.get("/healthz", headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    assert response.headers["x-trace-id"] == trace
    generated = await client.get("/healthz")
    assert len(generated.headers["x-trace-id"]) == 32


async def test_security_headers_on_every_response(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_oversized_body_is_413_in_the_envelope(client: httpx.AsyncClient, settings: object) -> None:
    body = b"x" * (10 * 1024 * 1024 + 1)
    response = await client.post("/api/v1/auth/login", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_malformed_json_is_422_with_details(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
