"""The routes of the HTTP server: the FastAPI app one worker process runs (:func:`create_app`).

Endpoints (JSON in, JSON out): ``POST /model/parse`` (Rasa's format, :mod:`chatft.serving.rasa`), ``POST /parse``
(``{"texts": [...]}`` -> ``predict``'s objects), ``POST /chat/{session_id}`` and ``DELETE /chat/{session_id}``
(one turn through the dialogue tracker; sessions in :mod:`chatft.serving.sessions`), ``GET /health``,
``GET /ready`` (503 until the model is loaded and warmed up), ``GET /version``, ``GET /metrics``
(Prometheus) and ``GET /`` (the web page of ``chatft/resources/web/``: try the model in a browser).
With a learned dialogue state tracker (``--ckpt_path``/``--onnx`` of a tracker), ``/chat`` tracks the state
from the system's previous turn (``"system"`` in the body, else the bot's own last reply) and the user's
``"text"``, answering :mod:`chatft.dialogue.state_session`'s record; ``/parse`` and ``/model/parse`` answer 400.
``"explain": true`` in a ``/model/parse`` or ``/parse`` body adds an ``explanation`` (word attributions,
:mod:`chatft.core.attribution`) to each result, computed in the model thread; nothing else changes. Every
route that needs the model, ``/chat`` included, answers 503 until ``/ready`` says 200.

The model runs in the batcher's thread (:mod:`chatft.serving.batcher`), entity values (dates, amounts) are
resolved on one thread of their own and every session-store call on another, so the event loop never waits
for any of them: ``/health`` and ``/ready`` answer while a forward pass runs, while a date is parsed or while
another worker holds the SQLite write lock. ``"reference_time"`` in a ``/model/parse``, ``/parse`` or ``/chat``
body is what relative dates ("tomorrow") are read against.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatft.serving.loading import (
    TRACKER,
    TRACKER_WARMUP,
    WARMUP_TEXTS,
    LoadedModel,
    choose_policy,
    load_model,
)
from chatft.serving.requests import (
    ApiError,
    checked_text,
    explain_of,
    max_body_bytes,
    read_json,
    reference_time_of,
    session_id_ok,
    text_of,
    texts_of,
)
from chatft.serving.settings import ServeSettings

__all__ = ["ENDPOINTS", "WEB_FILES", "create_app", "endpoint_label", "web_file"]

#: How often a tracker turn is computed again when concurrent requests of one session keep changing it.
TRACKER_RETRIES = 3

#: The files of the web page, shipped in ``chatft/resources/web/`` (no build step, nothing from a CDN).
WEB_FILES = ("index.html", "app.js", "style.css")


def web_file(name: str) -> bytes:
    """A file of the web page, read from the package's resources."""
    return (Path(__file__).resolve().parent.parent / "resources" / "web" / name).read_bytes()


ENDPOINTS = (
    "POST /model/parse, POST /parse, POST|DELETE /chat/{session_id}, GET /, /health, /ready, /version, "
    "/metrics"
)


def endpoint_label(path: str) -> str:
    """The metrics label of a path: the route template, or ``other`` (keeps label values bounded)."""
    if path in ("/", "/model/parse", "/parse", "/health", "/ready", "/version", "/metrics"):
        return path
    if path.startswith("/chat/"):
        return "/chat/{session_id}"
    if path.startswith("/web/"):
        return "/web/{name}"
    return "other"


class _State:
    """What one app holds: the model and batcher once loaded, the session store, the dialogue policy."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.model: LoadedModel | None = None
        self.batcher = None
        self.store = None
        self.policy = None
        self.ready = False
        self.failed: str | None = None


def create_app(
    settings: ServeSettings,
    store_factory: Callable[[ServeSettings], Any] | None = None,
    on_fatal: Callable[[str], None] | None = None,
):
    """The FastAPI app. ``store_factory`` builds the session store (default: SQLite at ``settings.sessions``);
    ``on_fatal`` is called with a one-line message when the model cannot be loaded."""
    from chatft.dialogue.record import blank_turn_record, turn_record
    from chatft.dialogue.tracker import DialogueState, DialogueTracker
    from chatft.serving.batcher import DynamicBatcher
    from chatft.serving.metrics import CONTENT_TYPE_LATEST, ServerMetrics
    from chatft.serving.rasa import empty_parse, to_rasa
    from chatft.serving.sessions import SessionStoreError, SQLiteSessionStore, purge_periodically

    state = _State(settings)
    body_limit = max_body_bytes(settings.max_text_chars, settings.max_batch_texts)
    metrics = ServerMetrics()
    # One thread for every store call: SQLite may wait 30 s for a lock, which must not stop the event loop,
    # and a connection is used by the thread that made it.
    store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatft-sessions")

    # One thread for entity values (dateparser can take milliseconds per date; its caches are not made for
    # concurrent use): off the event loop, and not in the model thread, which goes on with the next batch.
    resolve_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatft-entities")

    async def in_store_thread(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(store_thread, fn, *args)

    def json_response(obj: Any, status: int = 200) -> Response:
        return Response(
            json.dumps(obj, ensure_ascii=False), status_code=status, media_type="application/json"
        )

    def error_response(status: int, error: str, detail: str, headers: dict | None = None) -> Response:
        response = json_response({"error": error, "detail": detail}, status)
        response.headers.update(headers or {})
        return response

    async def load_tracker_model(model: LoadedModel) -> None:
        """A learned dialogue state tracker: the batcher runs turns of concurrent sessions together."""
        from chatft.dialogue.state_policy import StatePolicy

        tracker = model.predictor
        policy = StatePolicy.load(settings.requirements).for_slots(tracker.slots)
        batcher = DynamicBatcher(
            tracker.update_batch,
            settings.max_batch_size,
            settings.max_wait_ms,
            on_batch=metrics.observe_batch,
            on_queue=metrics.queue_depth.set,
        )
        batcher.start()
        state.batcher = batcher
        await batcher.run_in_model_thread(lambda: tracker.update_batch(list(TRACKER_WARMUP)))
        await batcher.run_in_model_thread(lambda: tracker.update(*TRACKER_WARMUP[0]))
        state.model, state.policy = model, policy
        metrics.model.labels(model.info["backend"], model.info["fingerprint"]).set(1)
        state.ready = True

    async def load() -> None:
        try:
            model = await asyncio.to_thread(load_model, settings)
            if model.kind == TRACKER:
                await load_tracker_model(model)
                return
            policy = choose_policy(
                settings.requirements, model.predictor.intent_labels, model.predictor.slot_labels
            )
            batcher = DynamicBatcher(
                # Entity values are resolved per request (each may bring its own reference_time): not here.
                lambda texts, size: model.predictor.batch(texts, size, resolve=False),
                settings.max_batch_size,
                settings.max_wait_ms,
                on_batch=metrics.observe_batch,
                on_queue=metrics.queue_depth.set,
            )
            batcher.start()
            state.batcher = batcher
            # Warm-up: the first calls allocate and pick kernels; a client's first request should not pay.
            predictor = model.predictor
            await batcher.run_in_model_thread(
                lambda: predictor.batch(list(WARMUP_TEXTS), settings.max_batch_size)
            )
            await batcher.run_in_model_thread(lambda: predictor(WARMUP_TEXTS[0]))
            state.model, state.policy = model, policy
            metrics.model.labels(model.info["backend"], model.info["fingerprint"]).set(1)
            state.ready = True
        except Exception as err:  # noqa: BLE001 - reported as one line, and the server stops
            state.failed = f"cannot load the model: {err}"
            print(f"chatft: error: {state.failed}", file=sys.stderr, flush=True)
            if on_fatal is not None:
                on_fatal(state.failed)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        factory = store_factory or (lambda s: SQLiteSessionStore(s.sessions, s.session_ttl_s))
        state.store = await in_store_thread(factory, settings)
        loader = asyncio.create_task(load())
        interval = max(1.0, min(60.0, settings.session_ttl_s / 2))
        purger = asyncio.create_task(
            purge_periodically(lambda: in_store_thread(state.store.purge_expired), interval)
        )
        try:
            yield
        finally:
            # uvicorn has finished the requests in flight by now: drain the batcher, then flush the sessions.
            purger.cancel()
            await loader
            if state.batcher is not None:
                await state.batcher.close()
            await in_store_thread(state.store.close)
            store_thread.shutdown()
            resolve_thread.shutdown()

    app = FastAPI(title="chatft", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    async def count(scope, receive, send, inner) -> None:
        """Pure ASGI wrapper (BaseHTTPMiddleware would add a task and a copy per request)."""
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await inner(scope, receive, send_status)
        finally:
            endpoint = endpoint_label(scope["path"])
            metrics.requests.labels(endpoint, str(status)).inc()
            metrics.latency.labels(endpoint).observe(time.perf_counter() - start)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> Response:
        return error_response(err.status, err.error, err.detail)

    @app.exception_handler(SessionStoreError)
    async def store_error(request: Request, err: SessionStoreError) -> Response:
        # One request fails, in one line; the store rolled back, so the next request is served normally.
        return error_response(
            503, "session store unavailable", f"the dialogue was not changed ({err}); try again"
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        where = f"{request.method} {request.url.path}"
        if err.status_code == 404:
            return error_response(404, "not found", f"no endpoint {where} (endpoints: {ENDPOINTS})")
        if err.status_code == 405:
            allowed = (err.headers or {}).get("Allow", "")
            return error_response(
                405, "method not allowed", f"{where}: allowed methods are {allowed}", headers=err.headers
            )
        return error_response(err.status_code, "http error", str(err.detail))

    def require_ready() -> None:
        if not state.ready:
            detail = state.failed or "the model is loading; wait until GET /ready answers 200"
            raise ApiError(503, "not ready", detail)

    def require_nlu() -> None:
        require_ready()
        if state.model.kind == TRACKER:
            raise ApiError(
                400,
                "not an intent model",
                "this server runs a dialogue state tracker: send turns to POST /chat/{session_id}",
            )

    async def predict(texts: list[str], body: Any) -> list:
        """The predictions of ``texts`` with entity values read against the body's ``reference_time``."""
        require_nlu()
        reference = reference_time_of(body)  # checked (400) before the model runs
        preds = await state.batcher.submit(texts)
        resolve = state.model.predictor.resolve
        return await asyncio.get_running_loop().run_in_executor(resolve_thread, resolve, preds, reference)

    def explain_request(body: Any) -> tuple[bool, str | None, str | None]:
        """What ``"explain"`` asks for, checked against the model before anything runs (400 otherwise)."""
        from chatft.core.attribution import check_request
        from chatft.core.errors import ConfigError

        wanted, method, intent = explain_of(body)
        if wanted:
            require_nlu()
            predictor = state.model.predictor
            try:
                method = check_request(method, intent, predictor.explain_methods, predictor.intent_labels)
            except ConfigError as err:
                raise ApiError(400, "invalid explain", str(err)) from None
        return wanted, method, intent

    async def explanations(preds: list, method: str | None, intent: str | None) -> list[dict]:
        predictor = state.model.predictor
        return await state.batcher.run_in_model_thread(
            lambda: [predictor.explanation(p, method, intent) for p in preds]
        )

    @app.post("/model/parse")
    async def model_parse(request: Request) -> Response:
        body = await read_json(request, body_limit)
        text = text_of(body, settings.max_text_chars)
        explain, method, intent = explain_request(body)
        if not text.strip():
            return json_response(empty_parse(text))
        pred = (await predict([text], body))[0]
        out = to_rasa(pred)
        if explain:
            out["explanation"] = (await explanations([pred], method, intent))[0]
        return json_response(out)

    @app.post("/parse")
    async def parse(request: Request) -> Response:
        body = await read_json(request, body_limit)
        texts = texts_of(body, settings.max_text_chars, settings.max_batch_texts)
        explain, method, intent = explain_request(body)
        preds = await predict(texts, body) if texts else []
        out = [p.to_dict() for p in preds]
        if explain and preds:
            for row, explanation in zip(out, await explanations(preds, method, intent), strict=True):
                row["explanation"] = explanation
        return json_response(out)

    @app.post("/chat/{session_id}")
    async def chat(session_id: str, request: Request) -> Response:
        session_id = session_id_ok(session_id)
        body = await read_json(request, body_limit)
        text = text_of(body, settings.max_text_chars)
        require_ready()  # a blank turn needs no prediction, but its answer comes from the model's policy
        if state.model.kind == TRACKER:
            return json_response(await tracker_turn(session_id, body, text))
        pred = (await predict([text], body))[0] if text.strip() else None
        record: dict = {}

        def step(old: dict | None) -> dict:
            tracker = DialogueTracker(state.policy)
            turn = 0
            if old is not None:
                tracker.state = DialogueState(intent=old["intent"], frame=dict(old["frame"]))
                turn = int(old["turn"])
            if pred is None:  # nothing said: the dialogue stays as it is, the bot asks again
                record.update(blank_turn_record(turn, text, tracker))
            else:
                turn += 1
                record.update(turn_record(turn, pred, tracker.update(pred)))
            return {**tracker.state.to_dict(), "turn": turn}

        await in_store_thread(state.store.update, session_id, step)
        return json_response(record)

    class _Conflict(Exception):
        """Another request changed the session while this turn was computed."""

    def read_session(session_id: str) -> dict | None:
        try:
            return state.store.get(session_id)
        except sqlite3.Error as err:  # a locked or vanished file: 503 for this request, as a failed write
            raise SessionStoreError(f"{settings.sessions}: {err}") from err

    async def tracker_turn(session_id: str, body: dict, text: str) -> dict:
        """One turn of a learned tracker's dialogue. The model reads the stored state, so the session is read
        first; the write then checks that nobody changed it meanwhile (else the turn is computed again on the
        new state), which keeps the forward pass in the batcher and out of the store's write lock."""
        from chatft.dialogue.state_session import StateSession, apply_turn, system_turn

        given = body.get("system")
        if given is not None:
            given = checked_text(given, '"system"', settings.max_text_chars)
        for _ in range(TRACKER_RETRIES):
            old = StateSession.from_dict(await in_store_thread(read_session, session_id))
            said = system_turn(old, given)
            update = (await state.batcher.submit([(old.state, said, text)]))[0] if text.strip() else None
            new, record = apply_turn(old, text, said, update, state.policy)

            def step(current: dict | None, old=old, new=new) -> dict:
                if StateSession.from_dict(current) != old:
                    raise _Conflict
                return new.to_dict()

            try:
                await in_store_thread(state.store.update, session_id, step)
            except _Conflict:
                continue
            return record
        raise ApiError(
            409,
            "conflict",
            f"session {session_id!r} changed during {TRACKER_RETRIES} tries; send the turn again",
        )

    @app.delete("/chat/{session_id}")
    async def chat_reset(session_id: str) -> Response:
        deleted = await in_store_thread(state.store.delete, session_id_ok(session_id))
        return json_response({"session_id": session_id, "deleted": deleted})

    @app.get("/")
    async def page() -> Response:
        """The web page (one static HTML file that loads its script and style from /web/)."""
        return Response(web_file("index.html"), media_type="text/html; charset=utf-8")

    @app.get("/web/{name}")
    async def web_asset(name: str) -> Response:
        types = {".js": "text/javascript", ".css": "text/css"}
        kind = next((t for ext, t in types.items() if name.endswith(ext)), None)
        if kind is None or name not in WEB_FILES:
            raise ApiError(404, "not found", f"no web file {name!r}")
        return Response(web_file(name), media_type=f"{kind}; charset=utf-8")

    @app.get("/health")
    async def health() -> Response:
        return json_response({"status": "ok"})

    @app.get("/ready")
    async def ready() -> Response:
        if state.ready:
            return json_response({"status": "ready"})
        return error_response(503, "not ready", state.failed or "loading and warming up the model")

    @app.get("/version")
    async def version() -> Response:
        if state.model is None:
            return error_response(503, "not ready", state.failed or "loading the model")
        return json_response(state.model.info)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    class CountRequests:
        def __init__(self, inner) -> None:
            self.inner = inner

        async def __call__(self, scope, receive, send) -> None:
            await count(scope, receive, send, self.inner)

    app.add_middleware(CountRequests)
    return app
