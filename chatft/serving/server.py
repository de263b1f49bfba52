"""``python -m chatft serve``: an HTTP NLU service with dynamic batching, Rasa's ``/model/parse`` and dialogues.

    python -m chatft serve --ckpt_path runs/atis/.../best.ckpt --port 8000
    python -m chatft serve --onnx exports/atis --workers 2 --requirements atis
    curl -s localhost:8000/model/parse -d '{"text": "flights from boston to denver"}'

The server is four modules, one job each: :mod:`~chatft.serving.settings` (the options, declared once),
:mod:`~chatft.serving.requests` (request checks), :mod:`~chatft.serving.loading` (model loading) and
:mod:`~chatft.serving.app` (the routes); this one starts the worker processes and handles the signals.

Why FastAPI + uvicorn with our own small batcher (:mod:`chatft.serving.batcher`) rather than LitServe: LitServe
runs the model in separate inference processes fed through queues, which adds an inter-process hop to each
request (the concurrency-1 latency target is in-process p50 + 3 ms on 2 cores), and its batches are formed by
arrival, not by length; Rasa's routes, the SQLite sessions and the exact drain-on-SIGTERM behaviour are plain
FastAPI routes and ~100 lines here. uvicorn re-raises SIGTERM after a graceful shutdown (the process then dies
by the signal); :class:`_Server` keeps the graceful shutdown and exits 0. ``--workers N`` starts N processes
that share one listening socket (bound here, so the port is printed even when ``--port 0`` picks one), each
with its own model, all sharing the session file. A worker process runs :func:`run_worker` (spawned with the
settings and the socket), never the command line.

With ``--onnx`` nothing imports torch: the PyTorch :class:`~chatft.serving.predictor.Predictor` is imported
only for ``--ckpt_path`` (tests/test_boundary.py checks these modules).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from chatft.serving.settings import ServeSettings

__all__ = ["Serve", "ServeSettings", "run_worker", "main"]


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


def _is_tracker(ckpt_path: str | None, onnx: str | None) -> bool:
    """Whether the model is a learned dialogue state tracker (torch is imported only for a checkpoint)."""
    if onnx is not None:
        from chatft.serving.onnx_tracker import is_tracker_export

        return is_tracker_export(onnx)
    if ckpt_path is None or not Path(ckpt_path).expanduser().is_file():
        return False
    from chatft.serving.tracker_predictor import is_tracker_checkpoint

    return is_tracker_checkpoint(ckpt_path)


def run_worker(settings: ServeSettings, sock: socket.socket) -> int:
    """Serve on an already bound socket until SIGTERM/SIGINT; 0 after a clean drain, 1 if the model failed."""
    import uvicorn

    from chatft.serving.app import create_app

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
    """A worker process's entry point (spawned with the settings and the listening socket, no command line)."""
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


def _check_entities(folder: Path) -> None:
    """Read the export's ``entities.json`` now: a hand-edited mistake in it (an unknown ``language``, a bad
    regex) is one line naming the file and exit 2 here, not a worker that fails to load (or, before the
    language was checked, HTTP 500 on each request with a date in it)."""
    import json

    from chatft.core.entity_resources import EntityResources

    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except ValueError:
        return  # the predictor reports a broken manifest when it loads
    if isinstance(manifest, dict) and manifest.get("entities"):
        EntityResources.load(folder)


class Serve(ServeSettings):
    """Serve a trained model over HTTP (README "Serving"): Rasa's /model/parse, /parse, /chat, /metrics.

    Runs until SIGTERM or Ctrl-C, then finishes the requests in flight and exits 0 (1 if the model could
    not be loaded).
    """

    def __call__(self) -> None:
        """Check the options, bind the port, then run one worker here or ``workers`` worker processes."""
        from chatft.core.errors import ConfigError
        from chatft.dialogue.tracker import DialoguePolicy

        if (self.ckpt_path is None) == (self.onnx is None):
            raise ConfigError("serve needs exactly one model: --ckpt_path FILE.ckpt or --onnx EXPORT_DIR")
        if self.onnx is not None and not (Path(self.onnx).expanduser() / "manifest.json").is_file():
            raise FileNotFoundError(
                f"{self.onnx}: no manifest.json (export a checkpoint with: python -m chatft export)"
            )
        if self.onnx is not None:
            _check_entities(Path(self.onnx).expanduser())
        if self.ckpt_path is not None and not Path(self.ckpt_path).expanduser().is_file():
            raise FileNotFoundError(f"{self.ckpt_path}: checkpoint not found (the .ckpt file written by fit)")
        if self.requirements:  # a bad policy file fails now, in one line, not in each worker
            if _is_tracker(self.ckpt_path, self.onnx):
                from chatft.dialogue.state_policy import StatePolicy

                StatePolicy.load(self.requirements)
            else:
                DialoguePolicy.load(self.requirements)
        # A session file that cannot be written is one line naming it, before anything listens.
        from chatft.serving.sessions import SQLiteSessionStore

        SQLiteSessionStore(self.sessions, self.session_ttl_s).close()
        try:
            sock = socket.create_server((self.host, self.port), backlog=2048)
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port} ({err.strerror}); choose another --port"
            ) from None
        bound = sock.getsockname()[1]
        print(
            f"chatft serve: listening on http://{self.host}:{bound} ({self.onnx or self.ckpt_path}, "
            f"{self.workers} worker(s), max_batch_size {self.max_batch_size}); "
            "GET /ready answers 200 once the model is loaded",
            flush=True,
        )
        settings = ServeSettings(**{f: getattr(self, f) for f in self.__dataclass_fields__})
        code = run_worker(settings, sock) if self.workers == 1 else _supervise(settings, sock, self.workers)
        if code:
            raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """``python -m chatft.serving.server ...`` is ``python -m chatft serve ...`` (same options and errors)."""
    from chatft.command_line import PROG, main_of

    main_of(Serve, argv, f"{PROG} serve")


if __name__ == "__main__":
    main()
