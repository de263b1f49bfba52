"""``serve``'s options, declared once: the command line, ``--config`` files, ``--help`` and each worker read them here.

:class:`ServeSettings` is a frozen dataclass: jsonargparse builds ``python -m chatft serve``'s options from its
fields and the ``Args:`` below (:class:`chatft.serving.server.Serve` is the command), and the same object is
pickled to each worker process. A new option is one field and one ``Args:`` line. The class has no methods
or properties: jsonargparse would turn them into subcommands of ``serve``.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatft.core.errors import ConfigError

__all__ = ["ServeSettings"]


@dataclass(frozen=True)
class ServeSettings:
    """Everything the server needs: where the model is, how to listen, batch and bound requests.

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

    ckpt_path: str | None = None
    onnx: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    workers: int = 1
    sessions: str = "chatft-sessions.sqlite"
    session_ttl_s: float = 1800.0
    requirements: str | None = None
    max_text_chars: int = 2000
    max_batch_texts: int = 256
    top_k: int = 3
    device: str = "cpu"
    threads: int | None = None
    graceful_timeout_s: float = 30.0
    log_level: str = "warning"

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "workers", "max_text_chars", "max_batch_texts"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be at least 1, got {getattr(self, name)}")
