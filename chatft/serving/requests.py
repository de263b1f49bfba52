"""Request checks of the HTTP server: what a body must hold, and the one-line JSON error when it does not.

Every refusal is an :class:`ApiError` (status, a short ``error``, a ``detail`` that says what to do), which the
app turns into ``{"error": ..., "detail": ...}``. Bodies are bounded while they are read (413 before a large
body is buffered), texts and batches by ``--max_text_chars`` and ``--max_batch_texts``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chatft.core.values import reference_time

__all__ = [
    "MAX_SESSION_ID",
    "ApiError",
    "max_body_bytes",
    "read_json",
    "text_of",
    "texts_of",
    "checked_text",
    "explain_of",
    "session_id_ok",
]

MAX_SESSION_ID = 256


class ApiError(Exception):
    """A request the server refuses: HTTP status, a short ``error`` and a ``detail`` that says what to do."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def max_body_bytes(max_text_chars: int, max_batch_texts: int) -> int:
    """Largest request body read: the largest valid batch (4 bytes per character at most) plus JSON."""
    return max_batch_texts * (max_text_chars * 4 + 16) + 65536


async def read_json(request, limit: int) -> Any:
    """The request body as JSON; 413 past ``limit`` bytes (checked before and while reading), 400 if invalid."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "request too large", f"the body has {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "request too large", f"the body is over the limit of {limit} bytes")
    if not body.strip():
        raise ApiError(400, "empty body", 'send a JSON object, e.g. {"text": "book a flight to denver"}')
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise ApiError(400, "invalid JSON", f"the body is not valid UTF-8 JSON ({err})") from None


def text_of(body: Any, max_chars: int) -> str:
    """``body["text"]``: a string of at most ``max_chars`` characters."""
    if not isinstance(body, dict):
        raise ApiError(
            400, "invalid request", f'expected a JSON object with "text", got {type(body).__name__}'
        )
    if "text" not in body:
        raise ApiError(400, "missing text", 'the JSON object needs a "text" field (a string)')
    return checked_text(body["text"], '"text"', max_chars)


def texts_of(body: Any, max_chars: int, max_texts: int) -> list[str]:
    """``body["texts"]``: a list of at most ``max_texts`` strings of at most ``max_chars`` characters."""
    if not isinstance(body, dict) or not isinstance(body.get("texts"), list):
        raise ApiError(400, "invalid request", 'expected a JSON object {"texts": [string, ...]}')
    texts = body["texts"]
    if len(texts) > max_texts:
        raise ApiError(
            413,
            "batch too large",
            f"{len(texts)} texts; the limit is {max_texts} per request (--max_batch_texts)",
        )
    return [checked_text(text, f"texts[{i}]", max_chars) for i, text in enumerate(texts)]


def checked_text(text: Any, name: str, max_chars: int) -> str:
    """``text`` itself when it is a string of at most ``max_chars`` characters (``name`` says where it was)."""
    if not isinstance(text, str):
        raise ApiError(400, "invalid text", f"{name} must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise ApiError(
            413,
            "text too long",
            f"{name} has {len(text)} characters; the limit is {max_chars} (--max_text_chars)",
        )
    return text


def reference_time_of(body: Any) -> datetime | None:
    """``body["reference_time"]`` (ISO 8601, e.g. ``2026-12-02T09:30:00+01:00``): what relative dates in the
    text ("tomorrow") are read against; None (now) when absent."""
    value = body.get("reference_time") if isinstance(body, dict) else None
    if value is None:
        return None
    try:
        return reference_time(value)
    except ValueError:
        raise ApiError(
            400,
            "invalid reference_time",
            f'"reference_time" must be an ISO 8601 date-time string such as "2026-12-02T09:30:00", got {value!r}',
        ) from None


def session_id_ok(session_id: str) -> str:
    """``session_id`` itself when it has at most :data:`MAX_SESSION_ID` characters (it is a database key)."""
    if len(session_id) > MAX_SESSION_ID:
        raise ApiError(400, "invalid session id", f"a session id has at most {MAX_SESSION_ID} characters")
    return session_id


def explain_of(body: Any) -> tuple[bool, str | None, str | None]:
    """``body["explain"]``: ``true`` (the default method, the predicted intent), or ``{"method": ...,
    "intent": ...}`` (both optional); absent or ``false``: no explanation. Returns (wanted, method, intent)."""
    value = body.get("explain", False) if isinstance(body, dict) else False
    if value is False or value is None:
        return False, None, None
    if value is True:
        return True, None, None
    if isinstance(value, dict) and set(value) <= {"method", "intent"}:
        method, intent = value.get("method"), value.get("intent")
        if all(v is None or isinstance(v, str) for v in (method, intent)):
            return True, method, intent
    raise ApiError(
        400,
        "invalid explain",
        '"explain" must be true, false or {"method": "occlusion"|"integrated_gradients", "intent": NAME}',
    )
