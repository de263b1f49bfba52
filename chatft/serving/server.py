"""``python -m chatft serve``: an HTTP NLU service with dynamic batching, Rasa's ``/model/parse`` and dialogues.

    python -m chatft serve --ckpt_path runs/atis/.../best.ckpt --port 8000
    python -m chatft serve --onnx exports/atis --workers 2 --requirements atis
    curl -s localhost:8000/model/parse -d '{"text": "flights from boston to denver"}'

Endpoints (JSON in, JSON out; README "Serving" shows each with an example):
``POST /model/parse`` (Rasa's format, :mod:`chatft.serving.rasa`), ``POST /parse`` (``{"texts": [...]}`` ->
``predict``'s objects), ``POST /chat/{session_id}`` and ``DELETE /chat/{session_id}`` (one turn through the
dialogue tracker; sessions in SQLite, :mod:`chatft.serving.sessions`), ``GET /health``, ``GET /ready`` (503
until the model is loaded and warmed up), ``GET /version`` and ``GET /metrics`` (Prometheus).

Why FastAPI + uvicorn with our own small batcher (:mod:`chatft.serving.batcher`) rather than LitServe: LitServe
runs the model in separate inference processes fed through queues, which adds an inter-process hop to each
request (the concurrency-1 latency target is in-process p50 + 3 ms on 2 cores), and its batches are formed by
arrival, not by length; Rasa's routes, the SQLite sessions and the exact drain-on-SIGTERM behaviour are plain
FastAPI routes and ~100 lines here. uvicorn re-raises SIGTERM after a graceful shutdown (the process then dies
by the signal); :class:`_Server` keeps the graceful shutdown and exits 0. ``--workers N`` starts N processes
that share one listening socket (bound here, so the port is printed even when ``--port 0`` picks one), each
with its own model, all sharing the session file.

With ``--onnx`` nothing imports torch: the PyTorch :class:`~chatft.serving.predictor.Predictor` is imported
only for ``--ckpt_path`` (tests/test_boundary.py checks this module).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ServeSettings", "create_app", "serve", "main"]

ENDPOINTS = (
    "POST /model/parse, POST /parse, POST|DELETE /chat/{session_id}, GET /health, /ready, /version, /metrics"
)
WARMUP_TEXTS = ("book a flight from boston to denver tomorrow morning", "hi", "what is fare code h")
MAX_SESSION_ID = 256


@dataclass(frozen=True)
class ServeSettings:
    """Everything a worker needs to build the app (picklable: it is sent to worker processes)."""

    ckpt_path: str | None = None
    onnx: str | None = None
    device: str = "cpu"
    threads: int | None = None
    top_k: int = 3
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    sessions: str = "chatft-sessions.sqlite"
    session_ttl_s: float = 1800.0
    requirements: str | None = None
    max_text_chars: int = 2000
    max_batch_texts: int = 256
    graceful_timeout_s: float = 30.0
    log_level: str = "warning"

    @property
    def max_body_bytes(self) -> int:
        """Largest request body read: the largest valid batch (4 bytes per character at most) plus JSON."""
        return self.max_batch_texts * (self.max_text_chars * 4 + 16) + 65536


class ApiError(Exception):
    """A request the server refuses: HTTP status, a short ``error`` and a ``detail`` that says what to do."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


# ----------------------------------------------------------------------------------------------- the model
@dataclass
class LoadedModel:
    predictor: Any
    info: dict


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def load_model(settings: ServeSettings) -> LoadedModel:
    """Load the predictor (torch only for ``ckpt_path``) and describe it for ``/version``."""
    from chatft import __version__

    if settings.onnx:
        from chatft.serving.onnx_predictor import OnnxPredictor

        folder = Path(settings.onnx).expanduser()
        predictor = OnnxPredictor(folder, top_k=settings.top_k, threads=settings.threads)
        backend, source = "onnx", folder
        fingerprint = _fingerprint(folder / predictor.manifest["model"])
    else:
        from chatft.serving.predictor import Predictor

        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)
        source = Path(settings.ckpt_path).expanduser()  # type: ignore[arg-type]
        predictor = Predictor.from_checkpoint(str(source), device=settings.device, top_k=settings.top_k)
        backend, fingerprint = "pytorch", _fingerprint(source)
    slot_types = sorted({t[2:] for t in predictor.slot_labels if t[:2] in ("B-", "I-")})
    info = {
        "chatft": __version__,
        "backend": backend,
        "model": str(source),
        "fingerprint": fingerprint,
        "intents": sum(1 for label in predictor.intent_labels if label != "<unk>"),
        "slot_types": len(slot_types),
        "max_length": predictor.max_length,
    }
    return LoadedModel(predictor, info)


def choose_policy(requirements: str | None, intent_labels, slot_labels):
    """``--requirements``, else the shipped policy whose intents and slots the model all knows, else none."""
    from chatft.dialogue.tracker import SHIPPED, DialoguePolicy

    if requirements:
        return DialoguePolicy.load(requirements)
    for path in sorted(SHIPPED.glob("*.yaml")):
        policy = DialoguePolicy.load(path)
        if policy.intents and not policy.unknown_labels(intent_labels, slot_labels):
            return policy
    return DialoguePolicy()


# ------------------------------------------------------------------------------------------ request parsing
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
        if not isinstance(value, str):
            raise ValueError
        return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise ApiError(
            400,
            "invalid reference_time",
            f'"reference_time" must be an ISO 8601 date-time string such as "2026-12-02T09:30:00", got {value!r}',
        ) from None


def endpoint_label(path: str) -> str:
    """The metrics label of a path: the route template, or ``other`` (keeps label values bounded)."""
    if path in ("/model/parse", "/parse", "/health", "/ready", "/version", "/metrics"):
        return path
    if path.startswith("/chat/"):
        return "/chat/{session_id}"
    return "other"


# ------------------------------------------------------------------------------------------------- the app
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
    from chatft.dialogue.chat import turn_record
    from chatft.dialogue.tracker import DialogueState, DialogueTracker
    from chatft.serving.batcher import DynamicBatcher
    from chatft.serving.metrics import CONTENT_TYPE_LATEST, ServerMetrics
    from chatft.serving.rasa import empty_parse, to_rasa
    from chatft.serving.sessions import SQLiteSessionStore

    state = _State(settings)
    metrics = ServerMetrics()

    def json_response(obj: Any, status: int = 200) -> Response:
        return Response(
            json.dumps(obj, ensure_ascii=False), status_code=status, media_type="application/json"
        )

    def error_response(status: int, error: str, detail: str, headers: dict | None = None) -> Response:
        response = json_response({"error": error, "detail": detail}, status)
        response.headers.update(headers or {})
        return response

    async def load() -> None:
        try:
            model = await asyncio.to_thread(load_model, settings)
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

    async def purge_loop() -> None:
        interval = max(1.0, min(60.0, settings.session_ttl_s / 2))
        while True:
            await asyncio.sleep(interval)
            state.store.purge_expired()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.store = (store_factory or (lambda s: SQLiteSessionStore(s.sessions, s.session_ttl_s)))(settings)
        loader = asyncio.create_task(load())
        purger = asyncio.create_task(purge_loop())
        try:
            yield
        finally:
            # uvicorn has finished the requests in flight by now: drain the batcher, then flush the sessions.
            purger.cancel()
            await loader
            if state.batcher is not None:
                await state.batcher.close()
            state.store.close()

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

    async def predict(texts: list[str], body: Any = None) -> list:
        if not state.ready:
            detail = state.failed or "the model is loading; wait until GET /ready answers 200"
            raise ApiError(503, "not ready", detail)
        reference = reference_time_of(body)
        return state.model.predictor.resolve(await state.batcher.submit(texts), reference)

    @app.post("/model/parse")
    async def model_parse(request: Request) -> Response:
        body = await read_json(request, settings.max_body_bytes)
        text = text_of(body, settings.max_text_chars)
        if not text.strip():
            return json_response(empty_parse(text))
        return json_response(to_rasa((await predict([text], body))[0]))

    @app.post("/parse")
    async def parse(request: Request) -> Response:
        body = await read_json(request, settings.max_body_bytes)
        texts = texts_of(body, settings.max_text_chars, settings.max_batch_texts)
        return json_response([p.to_dict() for p in await predict(texts, body)] if texts else [])

    def session_id_ok(session_id: str) -> str:
        if len(session_id) > MAX_SESSION_ID:
            raise ApiError(400, "invalid session id", f"a session id has at most {MAX_SESSION_ID} characters")
        return session_id

    @app.post("/chat/{session_id}")
    async def chat(session_id: str, request: Request) -> Response:
        session_id = session_id_ok(session_id)
        text = text_of(await read_json(request, settings.max_body_bytes), settings.max_text_chars)
        pred = (await predict([text]))[0] if text.strip() else None
        record: dict = {}

        def step(old: dict | None) -> dict:
            tracker = DialogueTracker(state.policy)
            turn = 0
            if old is not None:
                tracker.state = DialogueState(intent=old["intent"], frame=dict(old["frame"]))
                turn = int(old["turn"])
            if pred is None:  # nothing said: the dialogue stays as it is, the bot asks again
                missing = tracker.missing()
                record.update(
                    turn=turn, text=text, intent=None, intent_confidence=0.0, slots=[], new_frame=False,
                    state=tracker.state.to_dict(), missing=missing, response=tracker.respond(missing),
                )  # fmt: skip
            else:
                turn += 1
                record.update(turn_record(turn, pred, tracker.update(pred)))
            return {**tracker.state.to_dict(), "turn": turn}

        state.store.update(session_id, step)
        return json_response(record)

    @app.delete("/chat/{session_id}")
    async def chat_reset(session_id: str) -> Response:
        deleted = state.store.delete(session_id_ok(session_id))
        return json_response({"session_id": session_id, "deleted": deleted})

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


# --------------------------------------------------------------------------------------- running the server
def _server_class():
    import uvicorn

    class _Server(uvicorn.Server):
        """uvicorn's graceful shutdown on SIGTERM/SIGINT, then a normal return (uvicorn re-raises the signal)."""

        @contextlib.contextmanager
        def capture_signals(self):
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return _Server


def run_worker(settings: ServeSettings, sock: socket.socket) -> int:
    """Serve on an already bound socket until SIGTERM/SIGINT; 0 after a clean drain, 1 if the model failed."""
    import uvicorn

    failed: list[str] = []
    holder: dict = {}

    def on_fatal(message: str) -> None:
        failed.append(message)
        holder["server"].should_exit = True

    app = create_app(settings, on_fatal=on_fatal)
    config = uvicorn.Config(
        app,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=settings.graceful_timeout_s,
        lifespan="on",
    )
    server = _server_class()(config)
    holder["server"] = server
    server.run(sockets=[sock])
    return 1 if failed else 0


def _worker_main(settings: ServeSettings, sock: socket.socket) -> None:
    raise SystemExit(run_worker(settings, sock))


def _supervise(settings: ServeSettings, sock: socket.socket, workers: int) -> int:
    """Start ``workers`` processes on ``sock``; forward SIGTERM/SIGINT to them; 0 when all drained cleanly."""
    from multiprocessing.connection import wait

    metrics_dir = tempfile.mkdtemp(prefix="chatft-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # inherited by the spawned workers
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker_main, args=(settings, sock), name=f"chatft-worker-{i}")
        for i in range(workers)
    ]
    stopping = False

    def stop(sig, frame) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            p.start()
        sock.close()  # the workers hold their own copies
        alive = list(procs)
        while alive:
            done = wait([p.sentinel for p in alive])
            for p in [p for p in alive if p.sentinel in done]:
                p.join()
                alive.remove(p)
                if p.exitcode != 0 and not stopping:
                    print(
                        f"chatft: error: {p.name} exited with {p.exitcode}; stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    stop(None, None)
        return 0 if all(p.exitcode == 0 for p in procs) else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def serve(
    ckpt_path: str | None = None,
    onnx: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch_size: int = 32,
    max_wait_ms: float = 5.0,
    workers: int = 1,
    sessions: str = "chatft-sessions.sqlite",
    session_ttl_s: float = 1800.0,
    requirements: str | None = None,
    max_text_chars: int = 2000,
    max_batch_texts: int = 256,
    top_k: int = 3,
    device: str = "cpu",
    threads: int | None = None,
    graceful_timeout_s: float = 30.0,
    log_level: str = "warning",
) -> None:
    """Serve a trained model over HTTP (README "Serving"): Rasa's /model/parse, /parse, /chat, /metrics.

    Runs until SIGTERM or Ctrl-C, then finishes the requests in flight and exits 0 (1 if the model could
    not be loaded).

    Args:
        ckpt_path: Checkpoint written by fit (.ckpt), served with PyTorch.
        onnx: Folder written by ``python -m chatft export``, served with onnxruntime (no torch imported).
        host: Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).
        port: TCP port (0: any free port; the chosen one is printed).
        max_batch_size: Most texts per forward pass; 1 turns dynamic batching off.
        max_wait_ms: How long a request waits for others to share its forward pass.
        workers: Server processes, each with its own model, sharing the port and the session store.
        sessions: SQLite file holding the /chat dialogues (created if missing; survives restarts).
        session_ttl_s: A dialogue idle for this many seconds expires (starts afresh).
        requirements: Dialogue policy for /chat (a YAML file, or shipped: atis, demo). Default: the shipped
            policy whose intents and slots the model all knows, else none.
        max_text_chars: Longest text accepted (413 beyond).
        max_batch_texts: Most texts in one POST /parse (413 beyond).
        top_k: Intents listed in intent_ranking / intents_top_k.
        device: Torch device for ckpt_path.
        threads: Intra-op threads per worker (torch or onnxruntime); default: the library's choice.
        graceful_timeout_s: On SIGTERM, how long requests in flight may take to finish.
        log_level: uvicorn's log level (access logs are off).
    """
    from chatft.core.errors import ConfigError
    from chatft.dialogue.tracker import DialoguePolicy

    if (ckpt_path is None) == (onnx is None):
        raise ConfigError("serve needs exactly one model: --ckpt_path FILE.ckpt or --onnx EXPORT_DIR")
    if onnx is not None and not (Path(onnx).expanduser() / "manifest.json").is_file():
        raise FileNotFoundError(
            f"{onnx}: no manifest.json (export a checkpoint with: python -m chatft export)"
        )
    if ckpt_path is not None and not Path(ckpt_path).expanduser().is_file():
        raise FileNotFoundError(f"{ckpt_path}: checkpoint not found (the .ckpt file written by fit)")
    for name, value in (
        ("max_batch_size", max_batch_size),
        ("workers", workers),
        ("max_text_chars", max_text_chars),
    ):
        if value < 1:
            raise ConfigError(f"--{name} must be at least 1, got {value}")
    if max_batch_texts < 1:
        raise ConfigError(f"--max_batch_texts must be at least 1, got {max_batch_texts}")
    if requirements:
        DialoguePolicy.load(requirements)  # a bad policy file fails now, in one line, not in each worker
    settings = ServeSettings(
        ckpt_path=ckpt_path,
        onnx=onnx,
        device=device,
        threads=threads,
        top_k=top_k,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        sessions=sessions,
        session_ttl_s=session_ttl_s,
        requirements=requirements,
        max_text_chars=max_text_chars,
        max_batch_texts=max_batch_texts,
        graceful_timeout_s=graceful_timeout_s,
        log_level=log_level,
    )
    try:
        sock = socket.create_server((host, port), backlog=2048)
    except OSError as err:
        raise ConfigError(f"cannot listen on {host}:{port} ({err.strerror}); choose another --port") from None
    bound = sock.getsockname()[1]
    model = onnx or ckpt_path
    print(
        f"chatft serve: listening on http://{host}:{bound} ({model}, {workers} worker(s), "
        f"max_batch_size {max_batch_size}); GET /ready answers 200 once the model is loaded",
        flush=True,
    )
    code = run_worker(settings, sock) if workers == 1 else _supervise(settings, sock, workers)
    if code:
        raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """``python -m chatft.serving.server ...`` is ``python -m chatft serve ...``."""
    from chatft.cli import main as cli_main

    cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
