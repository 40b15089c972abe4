"""The OpenAPI 3.1 document of the ground service's JSON API (served at ``/api/openapi.json``).

Written out rather than generated so it says what the API promises, errors included; the tests
run schemathesis against it, so the document and the code cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "failure": {"type": "string"},
    },
}
_TEXT = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Text per BCP 47 language tag.",
}
_DELIVERY = {
    "type": "object",
    "required": ["channel", "state", "attempts"],
    "properties": {
        "channel": {"type": "string"},
        "state": {"type": "string", "enum": ["pending", "publishing", "retrying", "published", "failed"]},
        "attempts": {"type": "integer"},
        "next_attempt_at": {"type": ["string", "null"]},
        "url": {"type": ["string", "null"]},
        "remote_id": {"type": ["string", "null"]},
        "error": {"type": ["string", "null"]},
    },
}
_POST = {
    "type": "object",
    "required": ["id", "author", "state", "text", "code", "deliveries"],
    "properties": {
        "id": {"type": "string"},
        "author": {"type": "string"},
        "state": {
            "type": "string",
            "enum": [
                "received",
                "in_review",
                "changes_requested",
                "approved",
                "rejected",
                "scheduled",
                "published",
                "failed",
            ],
        },
        "created_at": {"type": "string"},
        "received_at": {"type": "string"},
        "scheduled_at": {"type": ["string", "null"]},
        "version": {"type": "integer"},
        "text": _TEXT,
        "hashtags": {"type": "array", "items": {"type": "string"}},
        "campaign": {"type": ["string", "null"]},
        "channels": {"type": "array", "items": {"type": "string"}},
        "code": {"type": "string"},
        "verify_url": {"type": "string"},
        "signer": {"type": "string"},
        "approved_by": {"type": ["string", "null"]},
        "deliveries": {"type": "array", "items": _DELIVERY},
    },
}


def _err(*codes: int) -> dict[str, Any]:
    return {
        str(c): {"description": "refused", "content": {"application/json": {"schema": _ERROR}}} for c in codes
    }


def _ok(schema: dict[str, Any], code: int = 200) -> dict[str, Any]:
    return {str(code): {"description": "done", "content": {"application/json": {"schema": schema}}}}


def _body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]
_POST_ID = {"name": "post_id", "in": "path", "required": True, "schema": {"type": "string"}}
_CODE = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_document(base_url: str) -> dict[str, Any]:
    """The document, with ``base_url`` as its server."""
    step_body = {
        "type": "object",
        "properties": {
            "reason": {"type": "string"},
            "note": {"type": "string"},
            "at": {"type": "string", "description": "ISO 8601; without an offset it is read in tz"},
            "tz": {"type": "string"},
            "text": _TEXT,
            "hashtags": {"type": "array", "items": {"type": "string"}},
            "channels": {"type": "array", "items": {"type": "string"}},
            "alt": {"type": "object"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Proxima ground service",
            "version": "1",
            "description": "Crew posts in review and publication; public timeline, checks, questions.",
        },
        "servers": [{"url": base_url}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/api/login": {
                "post": {
                    "summary": "Log in; returns an API token",
                    "requestBody": _body(
                        {
                            "type": "object",
                            "required": ["handle", "password"],
                            "properties": {"handle": {"type": "string"}, "password": {"type": "string"}},
                        }
                    ),
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "required": ["token"],
                                "properties": {"token": {"type": "string"}},
                            }
                        ),
                        **_err(400, 401, 403, 413, 429),
                    },
                }
            },
            "/api/posts": {
                "get": {
                    "summary": "Posts, newest first",
                    "security": _AUTH,
                    "parameters": [
                        {"name": "state", "in": "query", "schema": {"type": "string"}},
                        {"name": "campaign", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        **_ok({"type": "object", "properties": {"posts": {"type": "array", "items": _POST}}}),
                        **_err(400, 401, 403),
                    },
                },
                "post": {
                    "summary": "Draft a post for a persona (signed by the ground's key)",
                    "security": _AUTH,
                    "requestBody": _body(
                        {
                            "type": "object",
                            "required": ["author", "text"],
                            "properties": {
                                "author": {"type": "string"},
                                "text": _TEXT,
                                "hashtags": {"type": "array", "items": {"type": "string"}},
                                "campaign": {"type": "string"},
                                "channels": {"type": "array", "items": {"type": "string"}},
                            },
                        }
                    ),
                    "responses": {**_ok(_POST, 201), **_err(400, 401, 403, 409, 413)},
                },
            },
            "/api/posts/{post_id}": {
                "get": {
                    "summary": "One post with its versions, media, deliveries and audit log",
                    "security": _AUTH,
                    "parameters": [_POST_ID],
                    "responses": {**_ok(_POST), **_err(401, 403, 404)},
                }
            },
            "/api/posts/{post_id}/{action}": {
                "post": {
                    "summary": "A review step: approve, reject, request-changes, edit, schedule, unschedule",
                    "security": _AUTH,
                    "parameters": [
                        _POST_ID,
                        {
                            "name": "action",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "enum": [
                                    "approve",
                                    "reject",
                                    "request-changes",
                                    "edit",
                                    "schedule",
                                    "unschedule",
                                ],
                            },
                        },
                    ],
                    "requestBody": _body(step_body, required=False),
                    "responses": {**_ok(_POST), **_err(400, 401, 403, 404, 409, 413)},
                }
            },
            "/api/calendar": {
                "get": {
                    "summary": "Scheduled posts and free slots",
                    "security": _AUTH,
                    "parameters": [
                        {"name": "from", "in": "query", "schema": {"type": "string"}},
                        {"name": "to", "in": "query", "schema": {"type": "string"}},
                        {"name": "campaign", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        **_ok({"type": "object", "properties": {"items": {"type": "array"}}}),
                        **_err(400, 401, 403),
                    },
                }
            },
            "/api/timeline": {
                "get": {
                    "summary": "Published posts (public)",
                    "responses": _ok(
                        {"type": "object", "required": ["posts"], "properties": {"posts": {"type": "array"}}}
                    ),
                }
            },
            "/api/verify/{code}": {
                "get": {
                    "summary": "Who signed a published post (public)",
                    "parameters": [_CODE],
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "required": ["authentic", "signer"],
                                "properties": {"authentic": {"type": "boolean"}},
                            }
                        ),
                        **_err(404, 422),
                    },
                }
            },
            "/api/verify/{code}/media": {
                "post": {
                    "summary": "Check a photo against a published post (public; the body is the file)",
                    "parameters": [_CODE],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary", "minLength": 1}
                            }
                        },
                    },
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "required": ["authentic"],
                                "properties": {"authentic": {"type": "boolean"}},
                            }
                        ),
                        **_err(400, 404, 413, 422, 429),
                    },
                }
            },
            "/api/questions": {
                "post": {
                    "summary": "Ask the crew (public, rate limited)",
                    "requestBody": _body(
                        {
                            "type": "object",
                            "required": ["text", "lang"],
                            "properties": {
                                "text": {"type": "string", "pattern": "^[A-Za-z]{3}[A-Za-z ?]{0,200}$"},
                                "lang": {"type": "string", "enum": ["fr", "en", "de", "it", "es"]},
                                "name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z ]{0,40}$"},
                            },
                        }
                    ),
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "required": ["id", "state"],
                                "properties": {"id": {"type": "string"}, "state": {"const": "submitted"}},
                            },
                            201,
                        ),
                        **_err(400, 409, 413, 429),
                    },
                },
                "get": {
                    "summary": "Questions, for moderation",
                    "security": _AUTH,
                    "parameters": [{"name": "state", "in": "query", "schema": {"type": "string"}}],
                    "responses": {
                        **_ok({"type": "object", "properties": {"questions": {"type": "array"}}}),
                        **_err(400, 401, 403),
                    },
                },
            },
        },
    }
