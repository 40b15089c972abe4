"""schemathesis against the ground API's own OpenAPI document: no server errors, answers as documented."""

from __future__ import annotations

import functools
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from ground_helpers import T0, make_ground
from proxima.ground.api import build_app
from proxima.ground.channels.base import Published
from proxima.ground.ratelimit import RateLimiter


@functools.cache
def _schema() -> Any:
    g = make_ground(Path(tempfile.mkdtemp(prefix="proxima-openapi-")))
    post, signed, _ = g.crew.post()
    g.service.receive_post(signed, source=None, now=T0)
    g.service.approve(post.id, g.approver, now=T0)
    g.service.schedule(post.id, g.editor, T0 + timedelta(hours=1), now=T0)
    for d in g.service.due(T0 + timedelta(hours=1)):
        g.service.published(d.id, Published("1", "https://x.example/1"), attempt=d.attempt, now=T0)
    app = build_app(
        g.service,
        clock=lambda: T0,
        question_limiter=RateLimiter(rate_per_s=1000, burst=1000, max_clients=1000),
    )
    return schemathesis.openapi.from_asgi("/api/openapi.json", app)


OPERATIONS = [
    ("POST", "/api/login"),
    ("GET", "/api/posts"),
    ("POST", "/api/posts"),
    ("GET", "/api/posts/{post_id}"),
    ("POST", "/api/posts/{post_id}/{action}"),
    ("GET", "/api/calendar"),
    ("GET", "/api/timeline"),
    ("GET", "/api/verify/{code}"),
    ("POST", "/api/verify/{code}/media"),
    ("POST", "/api/questions"),
    ("GET", "/api/questions"),
]


def test_the_document_lists_every_operation_tested() -> None:
    listed = {(op.ok().method.upper(), op.ok().path) for op in _schema().get_all_operations()}
    assert listed == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operation_conforms(method: str, path: str) -> None:
    operation = _schema()[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate()

    run()


def test_a_known_code_verifies() -> None:
    posts = _schema()["/api/timeline"]["GET"].Case().call().json()["posts"]
    assert len(posts) == 1
    verify = _schema()["/api/verify/{code}"]["GET"].Case(path_parameters={"code": posts[0]["code"]})
    response = verify.call()
    verify.operation.validate_response(response)
    assert response.json()["authentic"] is True
