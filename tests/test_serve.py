"""The HTTP server as a real process on an ephemeral 127.0.0.1 port, called over real HTTP with httpx.

One tiny model is trained once for the module (a few seconds) and exported to ONNX once; each test starts the
server it needs (``python -m chatft serve``) and stops it with SIGTERM, checking it exits 0. Every wait has a
deadline and fails with a message saying what never happened. States that depend on timing (a server still
loading its model, a failing purge) are made deterministic by the hooks in ``tests/server_hooks``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chatft.cli import main as cli_main
from chatft.serving.sessions import SQLiteSessionStore

from .conftest import demo_subset

REPO = Path(__file__).resolve().parents[1]
HOOKS = Path(__file__).resolve().parent / "server_hooks"
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
TEXTS = [
    "book a flight from boston to denver tomorrow",
    "what's the weather in paris",
    "play some jazz",
    "Book a flight from Boston to St. Louis, tomorrow?",
    '"play abba" (now)!',
    "set an alarm for 7 am",
    " ".join(["please book a flight from boston to new york"] * 12),
    "\u00e9t\u00e9 \u00e0 paris",
]


@pytest.fixture(scope="module")
def model(tiny_encoder, tmp_path_factory) -> dict:
    """A tiny BERT trained 2 epochs on a demo slice, and its ONNX export."""
    root = tmp_path_factory.mktemp("serve")
    data = demo_subset(root / "data")
    cli_main(
        [
            "fit",
            "--config",
            str(REPO / "configs/demo.yaml"),
            "--model.encoder",
            tiny_encoder,
            "--data.data_dir",
            str(data),
            "--data.batch_size",
            "16",
            "--model.head_learning_rate",
            "3e-3",
            "--trainer.max_epochs",
            "2",
            "--trainer.default_root_dir",
            str(root / "run"),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
            # The tests check serving and dialogue mechanics on a 2-epoch tiny model whose confidences stay
            # under the default fallback's threshold (tests/test_fallback.py tests the fallback itself).
            "--oos.fallback",
            "false",
        ]
    )
    ckpt = root / "run/lightning_logs/version_0/checkpoints/last.ckpt"
    from chatft.serving.export import export_onnx

    onnx = export_onnx(str(ckpt), str(root / "onnx"))
    return {"root": root, "ckpt": str(ckpt), "onnx": str(onnx)}


@pytest.fixture(scope="module")
def predictor(model):
    from chatft.serving.predictor import Predictor

    return Predictor.from_checkpoint(model["ckpt"])


class Server:
    """``python -m chatft serve`` in a subprocess; ``url`` once it listens, ``wait_ready()``."""

    def __init__(self, *args: str, sessions: Path, env: dict | None = None) -> None:
        cmd = [
            sys.executable,
            "-m",
            "chatft",
            "serve",
            "--port",
            "0",
            "--sessions",
            str(sessions),
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # This checkout first; an inherited PYTHONPATH (extra packages installed with --target) after it.
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                **(env or {}),
            },
            cwd=str(REPO),
        )
        # The first line says where it listens; it comes before the model loads, so 60 s is plenty.
        readable, _, _ = select.select([self.proc.stdout], [], [], 60.0)
        line = self.proc.stdout.readline() if readable else ""
        match = LISTENING.search(line)
        if not match:
            raise AssertionError(f"server did not start within 60 s: {line!r} {self.stderr_after_kill()}")
        self.url = match.group(1)

    def stderr_after_kill(self) -> str:
        """Kill the server and return what it wrote on stderr (bounded: a worker may still hold the pipe)."""
        self.proc.kill()
        try:
            return self.proc.communicate(timeout=10)[1]
        except subprocess.TimeoutExpired:
            return "(stderr still open 10 s after the kill)"

    def wait_ready(self, timeout: float = 60.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.stderr_after_kill()}")
            try:
                if httpx.get(f"{self.url}/ready").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"GET /ready did not answer 200 within {timeout:g} s")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def hooks(**variables: str) -> dict:
    """The environment of a server process with the test hooks of ``tests/server_hooks`` (see its docstring)."""
    return {"PYTHONPATH": f"{HOOKS}{os.pathsep}{REPO}", **variables}


@pytest.fixture
def start(tmp_path):
    """Start servers; any still running at the end of the test is killed."""
    servers: list[Server] = []

    def _start(
        *args: str, sessions: Path | None = None, ready: bool = True, env: dict | None = None
    ) -> Server:
        server = Server(*args, sessions=sessions or tmp_path / "sessions.sqlite", env=env)
        servers.append(server)
        return server.wait_ready() if ready else server

    yield _start
    for server in servers:
        if server.proc.poll() is None:
            server.kill()


@pytest.fixture(scope="module")
def served(model, tmp_path_factory):
    """One PyTorch server (default batching) shared by the read-only tests of this module."""
    sessions = tmp_path_factory.mktemp("served") / "sessions.sqlite"
    limits = ("--max_text_chars", "1000", "--max_batch_texts", "16")
    server = Server("--ckpt_path", model["ckpt"], *limits, sessions=sessions).wait_ready()
    yield server
    assert server.stop() == 0


def metric_samples(text: str) -> dict[str, float]:
    """``{sample name with labels: value}`` from Prometheus text output."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(chatft_\S+) (\S+)$", text, re.MULTILINE)}


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-5


def same_prediction(got: dict, want: dict) -> None:
    """Labels and offsets exactly; probabilities to 1e-5 (a batch pads differently from a single text)."""
    assert {k: got[k] for k in ("text", "words", "tags", "intent", "truncated")} == {
        k: want[k] for k in ("text", "words", "tags", "intent", "truncated")
    }
    assert close(got["intent_confidence"], want["intent_confidence"])
    assert [n for n, _ in got["intents_top_k"]] == [n for n, _ in want["intents_top_k"]]
    assert all(
        close(a, b) for (_, a), (_, b) in zip(got["intents_top_k"], want["intents_top_k"], strict=True)
    )
    strip = [{k: s[k] for k in ("label", "value", "start", "end")} for s in got["slots"]]
    assert strip == [{k: s[k] for k in ("label", "value", "start", "end")} for s in want["slots"]]
    assert all(
        close(a["confidence"], b["confidence"]) for a, b in zip(got["slots"], want["slots"], strict=True)
    )


# --------------------------------------------------------------------------------------------- endpoints
def test_model_parse_is_rasa_format_with_offsets_into_the_text_sent(served, predictor):
    for text in TEXTS:
        r = httpx.post(f"{served.url}/model/parse", json={"text": text, "message_id": "m-1"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        got = r.json()
        want = predictor(text)
        assert set(got) == {"text", "intent", "intent_ranking", "entities"}
        assert got["text"] == text
        assert got["intent"]["name"] == want.intent and close(
            got["intent"]["confidence"], want.intent_confidence
        )
        assert [i["name"] for i in got["intent_ranking"]] == [n for n, _ in want.intents_top_k]
        assert all(set(i) == {"name", "confidence"} for i in got["intent_ranking"])
        # A typed slot's Rasa value is the typed value itself (the number, the ISO date), as Duckling's is.
        assert [(e["entity"], e["value"], e["start"], e["end"]) for e in got["entities"]] == [
            (s.label, s.typed["value"] if s.typed else s.value, s.start, s.end) for s in want.slots
        ]
        for e, s in zip(got["entities"], want.slots, strict=True):
            typed = {"processors", "additional_info"} if s.typed else set()
            assert set(e) == {"entity", "value", "start", "end", "confidence_entity", "extractor"} | typed
            assert text[e["start"] : e["end"]] == s.text and e["extractor"] == "chatft"


def test_parse_batch_equals_predictor(served, predictor):
    r = httpx.post(f"{served.url}/parse", json={"texts": TEXTS + ["", "   "]})
    assert r.status_code == 200
    got = r.json()
    want = [p.to_dict() for p in predictor.batch(TEXTS + ["", "   "])]
    assert len(got) == len(want) == len(TEXTS) + 2
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(w)
        same_prediction(g, w)
    assert got[-2]["words"] == [] and got[-2]["slots"] == [] and got[-1]["tags"] == []
    assert httpx.post(f"{served.url}/parse", json={"texts": []}).json() == []


def test_blank_text_is_the_empty_parse_not_an_error(served):
    for text in ("", "  \t "):
        r = httpx.post(f"{served.url}/model/parse", json={"text": text})
        assert r.status_code == 200
        assert r.json() == {
            "text": text,
            "intent": {"name": None, "confidence": 0.0},
            "intent_ranking": [],
            "entities": [],
        }


def test_64_concurrent_requests_equal_one_by_one_answers(served):
    texts = [TEXTS[i % len(TEXTS)] + f" {i}" for i in range(64)]
    one_by_one = [httpx.post(f"{served.url}/parse", json={"texts": [t]}).json()[0] for t in texts]

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            return await asyncio.gather(
                *(client.post(f"{served.url}/model/parse", json={"text": t}) for t in texts),
                *(client.post(f"{served.url}/parse", json={"texts": [t]}) for t in texts),
            )

    before = metric_samples(httpx.get(f"{served.url}/metrics").text)
    responses = asyncio.run(burst())
    after = metric_samples(httpx.get(f"{served.url}/metrics").text)
    assert [r.status_code for r in responses] == [200] * 128
    texts_run = after["chatft_predicted_texts_total"] - before["chatft_predicted_texts_total"]
    passes = after["chatft_batch_size_count"] - before["chatft_batch_size_count"]
    assert texts_run == 128 and passes < 128  # concurrent requests shared forward passes
    for text, want, r in zip(texts, one_by_one, responses[:64], strict=True):
        got = r.json()
        assert got["text"] == text and got["intent"]["name"] == want["intent"]
        assert [(e["entity"], e["start"], e["end"]) for e in got["entities"]] == [
            (s["label"], s["start"], s["end"]) for s in want["slots"]
        ]
    for want, r in zip(one_by_one, responses[64:], strict=True):
        same_prediction(r.json()[0], want)


BAD = [
    # (method, path, body bytes or JSON, status, error)
    ("POST", "/model/parse", b"{not json", 400, "invalid JSON"),
    ("POST", "/model/parse", b"\xff\xfe", 400, "invalid JSON"),
    ("POST", "/model/parse", b"", 400, "empty body"),
    ("POST", "/model/parse", [1, 2], 400, "invalid request"),
    ("POST", "/model/parse", {"message_id": "x"}, 400, "missing text"),
    ("POST", "/model/parse", {"text": 42}, 400, "invalid text"),
    ("POST", "/model/parse", {"text": None}, 400, "invalid text"),
    ("POST", "/model/parse", {"text": "a" * 1001}, 413, "text too long"),
    ("POST", "/parse", {"text": "hi"}, 400, "invalid request"),
    ("POST", "/parse", {"texts": ["ok", 3]}, 400, "invalid text"),
    ("POST", "/parse", {"texts": ["a"] * 17}, 413, "batch too large"),
    ("POST", "/parse", {"texts": ["ok", "b" * 1001]}, 413, "text too long"),
    ("POST", "/chat/s1", {"txt": "hi"}, 400, "missing text"),
    ("POST", "/chat/" + "s" * 300, {"text": "hi"}, 400, "invalid session id"),
    ("GET", "/nowhere", None, 404, "not found"),
    ("POST", "/model", {"text": "hi"}, 404, "not found"),
    ("GET", "/model/parse", None, 405, "method not allowed"),
    ("PUT", "/parse", {"texts": []}, 405, "method not allowed"),
    ("DELETE", "/health", None, 405, "method not allowed"),
]


def test_bad_requests_get_4xx_json_and_the_next_request_is_served(served):
    with httpx.Client(base_url=served.url) as client:
        for method, path, body, status, error in BAD:
            content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
            r = client.request(method, path, content=content, headers={"content-type": "application/json"})
            assert (r.status_code, r.json()["error"]) == (status, error), (method, path, body)
            assert set(r.json()) == {"error", "detail"} and "\n" not in r.json()["detail"]
            ok = client.post("/model/parse", json={"text": "book a flight"})
            assert ok.status_code == 200 and ok.json()["text"] == "book a flight"
        huge = b'{"text": "' + b"x" * (server_body_limit(1000, 16) + 10) + b'"}'
        r = client.post("/model/parse", content=huge)
        assert (r.status_code, r.json()["error"]) == (413, "request too large")
        assert client.post("/parse", json={"texts": ["a" * 1000] * 16}).status_code == 200


def server_body_limit(max_chars: int, max_texts: int) -> int:
    from chatft.serving.requests import max_body_bytes

    return max_body_bytes(max_chars, max_texts)


def test_health_ready_version_and_one_line_errors(model, start, tmp_path):
    server = start("--onnx", model["onnx"])
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/ready").json() == {"status": "ready"}
    version = httpx.get(f"{server.url}/version").json()
    from chatft import __version__
    from chatft.serving.onnx_predictor import OnnxPredictor

    onnx = OnnxPredictor(model["onnx"])
    assert version == {
        "chatft": __version__,
        "backend": "onnx",
        "model": str(Path(model["onnx"])),
        "fingerprint": version["fingerprint"],
        "intents": len(onnx.intent_labels) - 1,
        "slot_types": len({t[2:] for t in onnx.slot_labels if t[:2] in ("B-", "I-")}),
        "max_length": onnx.max_length,
    }
    assert re.fullmatch(r"[0-9a-f]{16}", version["fingerprint"])
    # --onnx: the server process never loaded torch.
    maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    assert "libtorch" not in maps
    got = httpx.post(f"{server.url}/parse", json={"texts": TEXTS}).json()
    for g, w in zip(got, onnx.batch(TEXTS), strict=True):
        same_prediction(g, w.to_dict())
    assert server.stop() == 0
    # A user mistake is one line and exit code 2, before anything listens.
    bad = subprocess.run(
        [sys.executable, "-m", "chatft", "serve", "--onnx", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert bad.returncode == 2
    assert (
        bad.stderr
        == f"chatft: error: {tmp_path}: no manifest.json (export a checkpoint with: python -m chatft export)\n"
    )


def serve_error(*args: str) -> subprocess.CompletedProcess:
    """``python -m chatft serve ARGS`` expected to stop before it listens."""
    return subprocess.run(
        [sys.executable, "-m", "chatft", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_an_unknown_entity_language_is_a_load_time_error_naming_the_file(model, tmp_path):
    """It was accepted, and every request with a time slot then answered 500 (dateparser: unknown language)."""
    import shutil

    onnx = tmp_path / "onnx"
    shutil.copytree(model["onnx"], onnx)
    manifest = json.loads((onnx / "manifest.json").read_text(encoding="utf-8"))
    (onnx / "manifest.json").write_text(
        json.dumps({**manifest, "entities": "entities.json"}), encoding="utf-8"
    )
    (onnx / "entities.json").write_text('{"language": "english"}', encoding="utf-8")
    bad = serve_error("--onnx", str(onnx), "--sessions", str(tmp_path / "s.sqlite"))
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == (
        f"chatft: error: {onnx / 'entities.json'}: language 'english' is not a language code dateparser knows "
        '(e.g. "en", "fr", "de", "zh")\n'
    )


NOT_READY = {"error": "not ready", "detail": "the model is loading; wait until GET /ready answers 200"}


def test_model_routes_answer_503_until_ready_then_200(model, start, tmp_path):
    gate = tmp_path / "load-gate"  # the model loads once this file exists
    server = start("--onnx", model["onnx"], ready=False, env=hooks(CHATFT_TEST_LOAD_GATE=str(gate)))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        r = client.get("/ready")
        assert (r.status_code, r.json()) == (
            503,
            {"error": "not ready", "detail": "loading and warming up the model"},
        )
        r = client.get("/version")
        assert (r.status_code, r.json()) == (503, {"error": "not ready", "detail": "loading the model"})
        for path, body in [
            ("/model/parse", {"text": "hi"}),
            ("/parse", {"texts": ["hi"]}),
            ("/chat/s1", {"text": "hi"}),
            ("/chat/s1", {"text": " "}),  # a blank turn needs the model's dialogue policy too
        ]:
            r = client.post(path, json=body)
            assert (r.status_code, r.json()) == (503, NOT_READY), (path, body)
        assert client.get("/health").status_code == 200
        gate.touch()
        server.wait_ready()
        assert client.post("/model/parse", json={"text": "hi"}).status_code == 200
        assert client.post("/chat/s1", json={"text": " "}).json()["turn"] == 0
    assert server.stop() == 0


# ---------------------------------------------------------------------------------------------- dialogue
DIALOGUE = ["book a flight from boston", "to denver", "tomorrow morning", "what's the weather in paris"]


def expected_dialogue(predictor, requirements: str) -> list[dict]:
    import io

    from chatft.dialogue.tracker import DialoguePolicy, DialogueTracker
    from chatft.serving.chat import run_file

    out = io.StringIO()
    run_file(predictor, DialogueTracker(DialoguePolicy.load(requirements)), DIALOGUE, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_chat_dialogue_survives_a_killed_server(model, start, tmp_path):
    from chatft.serving.onnx_predictor import OnnxPredictor

    sessions = tmp_path / "dialogues.sqlite"
    want = expected_dialogue(OnnxPredictor(model["onnx"]), "demo")
    server = start("--onnx", model["onnx"], "--requirements", "demo", sessions=sessions)
    got = [httpx.post(f"{server.url}/chat/alice", json={"text": t}).json() for t in DIALOGUE[:2]]
    other = httpx.post(f"{server.url}/chat/bob", json={"text": DIALOGUE[0]}).json()
    server.kill()  # SIGKILL: no shutdown code runs
    server = start("--onnx", model["onnx"], "--requirements", "demo", sessions=sessions)
    got += [httpx.post(f"{server.url}/chat/alice", json={"text": t}).json() for t in DIALOGUE[2:]]
    assert [g["turn"] for g in got] == [1, 2, 3, 4]
    for g, w in zip(got, want, strict=True):
        assert {k: g[k] for k in ("text", "intent", "new_frame", "state", "missing", "response")} == {
            k: w[k] for k in ("text", "intent", "new_frame", "state", "missing", "response")
        }
    assert other["turn"] == 1 and other["state"] == want[0]["state"]
    # A blank turn changes nothing; DELETE starts the dialogue afresh.
    blank = httpx.post(f"{server.url}/chat/alice", json={"text": " "}).json()
    assert (blank["turn"], blank["state"], blank["intent"]) == (4, want[-1]["state"], None)
    assert list(blank) == list(got[0])  # the same record as a spoken turn's
    assert (blank["out_of_scope"], blank["slots"], blank["new_frame"]) == (False, [], False)
    assert httpx.delete(f"{server.url}/chat/alice").json() == {"session_id": "alice", "deleted": True}
    assert httpx.delete(f"{server.url}/chat/alice").json() == {"session_id": "alice", "deleted": False}
    again = httpx.post(f"{server.url}/chat/alice", json={"text": DIALOGUE[0]}).json()
    assert (again["turn"], again["new_frame"], again["state"]) == (1, True, want[0]["state"])
    assert server.stop() == 0


def test_session_store_expires_idle_sessions_and_is_atomic(tmp_path):
    now = [1000.0]
    store = SQLiteSessionStore(tmp_path / "s.sqlite", ttl_s=60, clock=lambda: now[0])
    assert store.update("a", lambda old: {"turn": (old or {"turn": 0})["turn"] + 1}) == {"turn": 1}
    now[0] += 59
    assert store.update("a", lambda old: {"turn": (old or {"turn": 0})["turn"] + 1}) == {"turn": 2}
    store.update("b", lambda old: {"turn": 1})
    now[0] += 61  # "a" idle 61 s, "b" idle 61 s
    assert store.get("a") is None and store.purge_expired() == 2
    store.update("c", lambda old: {"turn": 1})

    def boom(old):
        raise ValueError("no")

    with pytest.raises(ValueError):
        store.update("c", boom)
    assert store.get("c") == {"turn": 1}  # rolled back, nothing half-written
    other = SQLiteSessionStore(tmp_path / "s.sqlite", ttl_s=60, clock=lambda: now[0])  # a second worker
    assert other.get("c") == {"turn": 1}
    store.close()
    other.close()
    assert not (tmp_path / "s.sqlite-wal").exists() or (tmp_path / "s.sqlite-wal").stat().st_size == 0


def test_sessions_keep_expiring_after_a_failed_purge(model, start, tmp_path):
    sessions = tmp_path / "purge.sqlite"
    # --session_ttl_s 2: a purge every second; the hook makes the first one raise.
    env = hooks(CHATFT_TEST_PURGE_FAILS="1")
    server = start("--onnx", model["onnx"], "--session_ttl_s", "2", sessions=sessions, env=env)
    assert httpx.post(f"{server.url}/chat/erin", json={"text": DIALOGUE[0]}).status_code == 200
    db = sqlite3.connect(sessions)
    deadline = time.monotonic() + 15
    while db.execute("SELECT count(*) FROM sessions").fetchone()[0] != 0:
        assert time.monotonic() < deadline, (
            "erin's session, idle past its 2 s TTL, was not purged within 15 s"
        )
        time.sleep(0.1)
    db.close()
    assert server.stop() == 0
    assert server.proc.stderr.read().splitlines() == [
        "chatft: warning: purging expired sessions failed (OSError: disk I/O error (test hook)); "
        "trying again in 1 s"
    ]


def test_a_failed_commit_is_rolled_back_and_the_store_keeps_serving(tmp_path):
    """A COMMIT that failed (full or locked disk) left the transaction open: every later update failed too."""
    import sqlite3 as sql

    from chatft.serving.sessions import SessionStoreError

    store = SQLiteSessionStore(tmp_path / "s.sqlite")
    store.update("a", lambda old: {"turn": 1})
    fails = [1]

    def deny_one_commit(action, arg1, *_):
        if action == sql.SQLITE_TRANSACTION and arg1 == "COMMIT" and fails[0]:
            fails[0] -= 1
            return sql.SQLITE_DENY
        return sql.SQLITE_OK

    store._db.set_authorizer(deny_one_commit)
    with pytest.raises(SessionStoreError) as err:
        store.update("a", lambda old: {"turn": old["turn"] + 1})
    assert str(err.value) == f"{tmp_path / 's.sqlite'}: not authorized"
    assert store.get("a") == {"turn": 1}  # rolled back
    assert store.update("a", lambda old: {"turn": old["turn"] + 1}) == {"turn": 2}
    store.close()


def test_chat_answers_503_for_a_failed_commit_then_serves_the_next_turn(model, start, tmp_path):
    sessions = tmp_path / "commit.sqlite"
    server = start("--onnx", model["onnx"], sessions=sessions, env=hooks(CHATFT_TEST_COMMIT_FAILS="1"))
    failed = httpx.post(f"{server.url}/chat/gina", json={"text": DIALOGUE[0]})
    assert (failed.status_code, failed.json()) == (
        503,
        {
            "error": "session store unavailable",
            "detail": f"the dialogue was not changed ({sessions}: not authorized); try again",
        },
    )
    again = httpx.post(f"{server.url}/chat/gina", json={"text": DIALOGUE[0]})
    assert (again.status_code, again.json()["turn"]) == (200, 1)
    assert server.stop() == 0
    assert server.proc.stderr.read() == ""


def test_an_unusable_session_file_is_one_line_and_exit_2(model, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    for path, reason in [
        (tmp_path / "file" / "s.sqlite", f"File exists: {tmp_path / 'file'}"),  # its folder is a file
        (tmp_path, "unable to open database file"),  # a folder, not a file
    ]:
        bad = serve_error("--onnx", model["onnx"], "--sessions", str(path))
        assert (bad.returncode, bad.stdout) == (2, ""), bad.stderr
        assert bad.stderr == (
            f"chatft: error: --sessions {path}: cannot open or create the session database ({reason}); "
            "choose a writable file\n"
        )


def test_a_locked_session_file_does_not_stop_the_event_loop(model, start, tmp_path):
    sessions = tmp_path / "locked.sqlite"
    server = start("--onnx", model["onnx"], sessions=sessions)
    db = sqlite3.connect(sessions, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # as another worker mid-write: the server's turn waits for the lock

    async def scenario() -> tuple[list[int], bool, httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            turn = asyncio.create_task(client.post("/chat/frank", json={"text": DIALOGUE[0]}))
            health = []
            for _ in range(10):  # a blocked loop would answer none of these within the 2 s timeout
                await asyncio.sleep(0.1)
                health.append((await client.get("/health", timeout=2)).status_code)
            waiting = not turn.done()
            db.execute("COMMIT")
            return health, waiting, await turn

    health, waiting, turn = asyncio.run(scenario())
    db.close()
    assert health == [200] * 10
    assert waiting  # the turn really was held by the lock while /health answered
    assert (turn.status_code, turn.json()["turn"]) == (200, 1)
    assert server.stop() == 0


def test_a_slow_entity_resolution_does_not_stop_the_event_loop(model, start, tmp_path):
    """Entity values (dateparser) were resolved on the event loop: /health waited for every date parse."""
    hold = tmp_path / "resolve-hold"  # resolution waits while this file exists
    server = start("--onnx", model["onnx"], env=hooks(CHATFT_TEST_RESOLVE_HOLD=str(hold)))

    async def scenario() -> tuple[list[int], bool, httpx.Response]:
        hold.touch()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                parse = asyncio.create_task(client.post("/model/parse", json={"text": DIALOGUE[0]}))
                health = []
                for _ in range(10):  # a blocked loop would answer none of these within the 2 s timeout
                    await asyncio.sleep(0.1)
                    health.append((await client.get("/health", timeout=2)).status_code)
                waiting = not parse.done()
                hold.unlink()
                return health, waiting, await parse
        finally:
            hold.unlink(missing_ok=True)

    health, waiting, parse = asyncio.run(scenario())
    assert health == [200] * 10
    assert waiting  # the request really was held in resolution while /health answered
    assert (parse.status_code, parse.json()["text"]) == (200, DIALOGUE[0])
    assert server.stop() == 0


# ------------------------------------------------------------------------------------------- the batcher
class FakePredictor:
    """Records the texts of each call; answers each text with its upper-case form."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.batch_sizes: list[int] = []

    def batch(self, texts, batch_size=32):
        self.calls.append(list(texts))
        self.batch_sizes.append(batch_size)
        return [t.upper() for t in texts]


def run_batcher(scenario, **kwargs) -> FakePredictor:
    from chatft.serving.batcher import DynamicBatcher

    fake = FakePredictor()

    async def main() -> None:
        batcher = DynamicBatcher(fake.batch, **kwargs)
        batcher.start()
        await scenario(batcher)
        await batcher.close()

    asyncio.run(main())
    return fake


def test_batcher_groups_concurrent_texts_and_never_holds_a_lone_one():
    async def scenario(b):
        assert await b.submit(["alone"]) == ["ALONE"]  # no concurrent load: not held for max_wait
        got = await asyncio.gather(*(b.submit([f"t{i}"]) for i in range(10)), b.submit(["x", "y"]))
        assert got == [[f"T{i}"] for i in range(10)] + [["X", "Y"]]

    start = time.monotonic()
    fake = run_batcher(scenario, max_batch_size=4, max_wait_ms=2000)
    assert time.monotonic() - start < 1.0  # full batches never wait for the window
    assert fake.calls[0] == ["alone"]
    # The 12 texts queued together form one round; predictor.batch sorts them by length into passes of 4.
    assert fake.calls[1] == [f"t{i}" for i in range(10)] + ["x", "y"] and fake.batch_sizes == [4, 4]
    assert len(fake.calls) == 2


def test_batcher_off_runs_one_text_per_pass_and_skips_cancelled_requests():
    async def scenario(b):
        waiting = asyncio.ensure_future(b.submit(["gone"]))
        got = asyncio.gather(*(b.submit([t]) for t in "abc"))
        waiting.cancel()  # its client disconnected before the model got to it
        assert await got == [["A"], ["B"], ["C"]]

    fake = run_batcher(scenario, max_batch_size=1, max_wait_ms=50)
    assert fake.calls[0] == ["gone"] or fake.calls == [["a"], ["b"], ["c"]]
    assert [c for c in fake.calls if c != ["gone"]] == [["a"], ["b"], ["c"]]


# ---------------------------------------------------------------------------------- shutdown and failures
def test_sigterm_finishes_requests_in_flight_flushes_sessions_and_exits_0(model, start, tmp_path):
    sessions = tmp_path / "drain.sqlite"
    # A long batching window keeps the requests queued (in flight) when SIGTERM arrives.
    server = start(
        "--onnx", model["onnx"], "--max_wait_ms", "1500", "--max_batch_size", "64", sessions=sessions
    )
    url = server.url

    async def scenario() -> tuple[list, str]:
        async with httpx.AsyncClient(timeout=30) as client:
            await client.post(f"{url}/parse", json={"texts": ["hi", "ho"]})  # a shared pass: "under load"
            tasks = [asyncio.create_task(client.post(f"{url}/model/parse", json={"text": t})) for t in TEXTS]
            tasks.append(asyncio.create_task(client.post(f"{url}/chat/carol", json={"text": DIALOGUE[0]})))
            deadline = time.monotonic() + 30
            while "chatft_queue_depth 9.0" not in (await client.get(f"{url}/metrics")).text:
                assert time.monotonic() < deadline, "the 9 requests were not queued together within 30 s"
                await asyncio.sleep(0.01)
            server.proc.send_signal(signal.SIGTERM)
            responses = await asyncio.gather(*tasks)
            try:
                await client.get(f"{url}/health")
                after = "served"
            except httpx.TransportError:
                after = "refused"
            return responses, after

    responses, after = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * (len(TEXTS) + 1)
    assert [r.json()["text"] for r in responses] == TEXTS + [DIALOGUE[0]]
    assert server.proc.wait(30) == 0
    assert after == "refused"
    store = SQLiteSessionStore(sessions)
    assert store.get("carol")["turn"] == 1
    store.close()


def test_client_disconnect_does_not_break_the_batch(model, start):
    server = start("--onnx", model["onnx"], "--max_wait_ms", "300")
    host, port = server.url.removeprefix("http://").split(":")
    body = json.dumps({"text": "book a flight"}).encode()

    async def scenario() -> list:
        async with httpx.AsyncClient(timeout=30) as client:
            await client.post(f"{server.url}/parse", json={"texts": ["hi", "ho"]})  # "under load" from now on
            tasks = [
                asyncio.create_task(client.post(f"{server.url}/model/parse", json={"text": t})) for t in TEXTS
            ]
            for _ in range(4):  # clients that send a request and go away while it waits for its batch
                s = socket.create_connection((host, int(port)))
                s.sendall(
                    b"POST /model/parse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                s.close()
            return await asyncio.gather(*tasks)

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * len(TEXTS)
    assert [r.json()["text"] for r in responses] == TEXTS
    assert httpx.post(f"{server.url}/model/parse", json={"text": "hi"}).status_code == 200
    assert server.stop() == 0


def test_metrics_count_what_was_sent(model, start):
    server = start("--onnx", model["onnx"], "--max_batch_size", "1")
    with httpx.Client(base_url=server.url) as client:
        for text in TEXTS[:5]:
            assert client.post("/model/parse", json={"text": text}).status_code == 200
        assert client.post("/parse", json={"texts": TEXTS[:3]}).status_code == 200
        assert client.post("/model/parse", content=b"{").status_code == 400
        assert client.get("/nope").status_code == 404
        text = client.get("/metrics").text
    samples = dict(
        (m.group(1), float(m.group(2))) for m in re.finditer(r"^(chatft_\S+) (\S+)$", text, re.MULTILINE)
    )
    assert samples['chatft_requests_total{endpoint="/model/parse",status="200"}'] == 5
    assert samples['chatft_requests_total{endpoint="/model/parse",status="400"}'] == 1
    assert samples['chatft_requests_total{endpoint="/parse",status="200"}'] == 1
    assert samples['chatft_requests_total{endpoint="other",status="404"}'] == 1
    assert samples['chatft_request_latency_seconds_count{endpoint="/model/parse"}'] == 6
    # Batching off: 8 texts, 8 forward passes of one text (warm-up runs outside the batcher).
    assert samples["chatft_batch_size_count"] == 8 and samples["chatft_batch_size_sum"] == 8
    assert samples["chatft_predicted_texts_total"] == 8
    assert samples["chatft_queue_depth"] == 0
    info = [k for k in samples if k.startswith("chatft_model_info{")]
    assert len(info) == 1 and 'backend="onnx"' in info[0] and samples[info[0]] == 1
    assert server.stop() == 0


@pytest.mark.slow
def test_two_workers_share_the_port_and_the_sessions(model, start, tmp_path):
    ready = tmp_path / "ready"  # each worker's pid lands here once its app is ready
    ready.mkdir()
    server = start("--onnx", model["onnx"], "--workers", "2", env=hooks(CHATFT_TEST_READY_DIR=str(ready)))
    deadline = time.monotonic() + 60
    while len(list(ready.iterdir())) < 2:
        assert time.monotonic() < deadline, f"not both workers ready within 60 s: {os.listdir(ready)}"
        time.sleep(0.05)
    with httpx.Client(base_url=server.url) as client:
        turns = [
            client.post("/chat/dave", json={"text": t}, headers={"connection": "close"}).json()
            for t in DIALOGUE
        ]
        assert [t["turn"] for t in turns] == [1, 2, 3, 4]
        for _ in range(8):
            assert (
                client.post("/model/parse", json={"text": "hi"}, headers={"connection": "close"}).status_code
                == 200
            )
        text = client.get("/metrics").text
    assert 'chatft_requests_total{endpoint="/chat/{session_id}",status="200"} 4.0' in text
    assert server.stop() == 0
