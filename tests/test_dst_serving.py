"""The learned tracker in the product: the Python API, ONNX export, ``chat`` and ``serve`` ``/chat`` sessions.

A tiny random BERT tracker is trained once for the module on the restaurant fixture (``tests/dst_fixture.py``,
a few seconds) and exported once. The ONNX tracker must give the PyTorch tracker's states on every turn; ``chat``
and a served session (a real server process on 127.0.0.1, killed and restarted mid-dialogue) must give the
API's records turn by turn. The policy and the session record are checked torch-free with exact sentences.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chatft.dialogue.state_policy import StatePolicy
from chatft.dialogue.state_session import StateSession, apply_turn
from chatft.dialogue.state_update import Decision, TurnUpdate
from tests.conftest import QUIET
from tests.dst_fixture import write_dialogue_folder
from tests.test_serve import hooks, start  # noqa: F401 - start: the fixture that starts (and cleans up) servers

REPO = Path(__file__).resolve().parents[1]
SLOTS = ("food", "area", "price range")
#: A dialogue of the fixture's kind (not one of its dialogues): a value, dontcare, a confirmed offer, a request.
DIALOGUE = [
    ("", "i want thai food"),
    ("what area do you want ?", "any area is fine"),
    ("do you want cheap food ?", "yes"),
    ("golden wok is nice .", "what is the phone number ?"),
]


# ---- torch-free: the policy and the session record --------------------------------------------------------
def test_default_policy_asks_in_schema_order_then_confirms_and_names_requests():
    policy = StatePolicy().for_slots(SLOTS)
    assert policy.respond({}) == "What food would you like?"
    assert policy.respond({"food": "thai", "area": "dontcare"}) == "What price range would you like?"
    assert (
        policy.respond({"food": "thai", "area": "dontcare", "price range": "cheap"}, ["phone", "address"])
        == "You asked for the phone and address: your back end answers that. "
        "OK: that with food thai, area any area, price range cheap."
    )


def test_shipped_woz_policy_and_a_policy_for_slots_the_tracker_lacks():
    policy = StatePolicy.load("woz").for_slots(SLOTS)
    assert policy.respond({"food": "thai"}) == "Which part of town would you like to eat in?"
    assert (
        policy.respond({"food": "thai", "area": "dontcare", "price range": "cheap"})
        == "I will look for a restaurant with food: thai, area: any, price range: cheap."
    )
    from chatft.core.errors import ConfigError

    with pytest.raises(ConfigError, match="does not track: name"):
        StatePolicy.from_dict({"required": ["name"]}).for_slots(SLOTS)
    with pytest.raises(ConfigError, match=r"unknown keys \['intents'\]"):
        StatePolicy.from_dict({"intents": {}})


def test_both_policies_find_and_parse_their_yaml_alike(tmp_path):
    """The rule-based and the learned tracker's policies read YAML with one function (policy_file.py): the
    same syntax error line; not found lists each one's shipped names (as FileNotFoundError / ConfigError)."""
    from chatft.core.errors import ConfigError
    from chatft.dialogue.tracker import DialoguePolicy

    bad = tmp_path / "bad.yaml"
    bad.write_text("ask:\n  food: What food: thai?\n", encoding="utf-8")
    for policy in (DialoguePolicy, StatePolicy):
        with pytest.raises(ConfigError) as err:
            policy.load(bad)
        assert str(err.value) == f"{bad}:2:18: not valid YAML: mapping values are not allowed here"
    with pytest.raises(
        FileNotFoundError, match=r"^nope: dialogue policy not found \(a YAML file, or one of: atis, demo\)$"
    ):
        DialoguePolicy.load("nope")
    with pytest.raises(
        ConfigError, match=r"^nope: dialogue policy not found \(a YAML file, or one of: woz\)$"
    ):
        StatePolicy.load("nope")
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert StatePolicy.load(empty) == StatePolicy() and DialoguePolicy.load(empty) == DialoguePolicy()


def test_a_turn_record_carries_state_changes_requests_and_the_reply():
    policy = StatePolicy().for_slots(SLOTS)
    update = TurnUpdate({"food": "thai"}, {"food": "thai"}, ("phone",), {"food": Decision("user", "thai")})
    session, record = apply_turn(StateSession(), "thai food , phone ?", "", update, policy)
    assert record == {
        "turn": 1,
        "text": "thai food , phone ?",
        "system": "",
        "state": {"food": "thai"},
        "changed": {"food": "thai"},
        "requests": ["phone"],
        "missing": ["area", "price range"],
        "response": "You asked for the phone: your back end answers that. What area would you like?",
    }
    assert session == StateSession({"food": "thai"}, 1, record["response"])
    assert StateSession.from_dict(session.to_dict()) == session
    # A blank turn: nothing changes, not counted, the same question again.
    again, blank = apply_turn(session, " ", record["response"], None, policy)
    assert (blank["turn"], blank["changed"], blank["requests"], blank["state"]) == (
        1,
        {},
        [],
        {"food": "thai"},
    )
    assert again.state == session.state and list(blank) == list(record)
    # A rule-based (intent and frame) session read by a tracker server is a new dialogue.
    assert StateSession.from_dict({"intent": "x", "frame": {}, "turn": 3}) == StateSession()


def test_pair_tokenizer_equals_the_fast_tokenizer(tiny_encoder, tiny_tokenizer, tmp_path):
    from chatft.dialogue.turn_input import encode_turns
    from chatft.serving.pair_tokenizer import PairTokenizer

    tiny_tokenizer.save_pretrained(tmp_path)
    pair = PairTokenizer(tmp_path / "tokenizer.json", "[SEP]", "[PAD]", tiny_tokenizer.pad_token_id)
    turns = [("i want thai food", "", {}), ("yes", "do you want cheap food ? " * 8, {"food": "thai"})]
    for max_length, width in ((24, 24), (160, 114)):
        a = encode_turns(tiny_tokenizer, turns, SLOTS, max_length)
        b = encode_turns(pair, turns, SLOTS, max_length)
        assert a.input_ids.shape == (2, width)
        for key in ("input_ids", "attention_mask", "token_type_ids", "segments", "offsets"):
            assert getattr(a, key).tolist() == getattr(b, key).tolist(), key
        assert a.texts == b.texts


# ---- a trained tiny tracker --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tiny_encoder, tmp_path_factory) -> dict:
    """A tiny tracker fitted EPOCHS epochs on the fixture (teacher forcing, no validation) and its ONNX export."""
    import lightning as L

    from chatft.serving.export import export
    from chatft.training.tracker_data import TrackerDataModule
    from chatft.training.tracker_module import TrackerModule

    root = tmp_path_factory.mktemp("dst-serving")
    data = write_dialogue_folder(root / "data")
    L.seed_everything(0, verbose=False)
    dm = TrackerDataModule(str(data), tokenizer=tiny_encoder, batch_size=8, max_length=64)
    module = TrackerModule(
        schema=dm.tracker_schema,
        encoder=tiny_encoder,
        learning_rate=3e-3,
        head_learning_rate=1e-2,
        max_length=64,
    )
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=dm)
    ckpt = root / "tracker.ckpt"
    trainer.save_checkpoint(ckpt, weights_only=True)
    # What evaluation (`test`, `predict`) computes, turn by turn, for the API to equal.
    dev = dm.splits["dev"]
    evaluated = [[u.state for u in ups] for ups in module.eval().track(dev)]
    onnx = export(str(ckpt), str(root / "onnx"))
    return {
        "root": root,
        "data": data,
        "ckpt": str(ckpt),
        "onnx": str(onnx),
        "dev": dev,
        "evaluated": evaluated,
    }


EPOCHS = 30


@pytest.fixture(scope="module")
def api(trained):
    from chatft.serving.tracker_predictor import TrackerPredictor

    return TrackerPredictor.from_checkpoint(trained["ckpt"])


def test_api_tracks_turns_so_far_or_one_turn_from_a_state(api, trained):
    updates = api.history(DIALOGUE)
    assert [u.state for u in updates] == STATES
    assert [u.requests for u in updates] == [(), (), (), ("phone",)]
    assert [u.changed for u in updates] == [
        {"food": "thai"},
        {"area": "dontcare"},
        {"price range": "cheap"},
        {},
    ]
    assert api.track(DIALOGUE) == STATES[-1] and api.track(DIALOGUE[:2]) == STATES[1] and api.track([]) == {}
    one = api.update(STATES[1], *DIALOGUE[2])
    assert (one.state, one.changed, one.requests) == (
        updates[2].state,
        updates[2].changed,
        updates[2].requests,
    )
    # The evaluation path (TrackerModule.track, what `test` scores) gives the same states, turn by turn.
    dev = [[(t.system, t.user) for t in d.turns] for d in trained["dev"]]
    assert [[u.state for u in ups] for ups in api.track_dialogues(dev, batch_size=3)] == trained["evaluated"]
    assert [[u.state for u in api.history(turns)] for turns in dev] == trained["evaluated"]


def test_export_writes_a_tracker_folder_that_onnxruntime_runs_like_pytorch(api, trained):
    from chatft.dialogue.dialogues import read_dialogues
    from chatft.serving.onnx_tracker import OnnxTracker, is_tracker_export

    folder = Path(trained["onnx"])
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json",
        "model.onnx",
        "tokenizer",
        "tracker.json",
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "dialogue_state_tracker" and manifest["max_length"] == 64
    assert manifest["check"]["max_abs_logit_diff_vs_pytorch"] < 1e-3
    assert is_tracker_export(folder)
    onnx = OnnxTracker(folder)
    assert onnx.schema == api.schema
    dialogues = [
        d for split in ("train", "dev", "test") for d in read_dialogues(trained["data"] / f"{split}.jsonl")
    ]
    turns = [[(t.system, t.user) for t in d.turns] for d in dialogues]
    want, got = api.track_dialogues(turns), onnx.track_dialogues(turns)
    assert sum(len(t) for t in turns) == 38 * 4
    for w_dialogue, g_dialogue in zip(want, got, strict=True):
        for w, g in zip(w_dialogue, g_dialogue, strict=True):
            assert (g.state, g.changed, g.requests) == (w.state, w.changed, w.requests)
    assert [u.state for u in onnx.history(DIALOGUE)] == STATES


def test_onnx_tracker_runs_without_torch(trained):
    code = (
        "import json, sys\n"
        "from chatft.serving.onnx_tracker import OnnxTracker\n"
        f"print(json.dumps(OnnxTracker({trained['onnx']!r}).track({DIALOGUE!r})))\n"
        "print([m for m in ('torch', 'lightning', 'transformers') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    state, heavy = out.stdout.splitlines()
    assert json.loads(state) == STATES[-1] and heavy == "[]"


def test_predict_tracks_your_own_conversations_as_the_api_does(api, trained, tmp_path, capsys):
    """``predict --ckpt_path CKPT --data.predict_file FILE``: no dialogue folder, turns without states; one line
    per dialogue in input order, each turn's state, changes and requests equal to the API's."""
    from chatft.cli import main

    other = [("", "i want chinese food"), ("what area do you want ?", "the north please")]
    dev = [(t.system, t.user) for t in trained["dev"][0].turns]
    given = [("zed", DIALOGUE), (None, other), ("alpha", dev)]  # no id: its position ("1")
    conversations = tmp_path / "conversations.jsonl"
    conversations.write_text(
        "".join(
            json.dumps(({"id": i} if i else {}) | {"turns": [{"system": s, "user": u} for s, u in turns]})
            + "\n"
            for i, turns in given
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out" / "tracked.jsonl"
    main(
        [
            "predict",
            "--ckpt_path",
            trained["ckpt"],
            "--data.predict_file",
            str(conversations),
            "--predictions.output",
            str(out),
            "--trainer.default_root_dir",
            str(tmp_path / "eval"),
            *QUIET,
        ]
    )
    assert f"predictions: {out}" in capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["zed", "1", "alpha"]
    for row, (_, turns) in zip(rows, given, strict=True):
        want = [
            {"system": s, "user": u, "state": w.state, "changed": w.changed, "requests": list(w.requests)}
            for (s, u), w in zip(turns, api.history(turns), strict=True)
        ]
        assert row["turns"] == want
    assert [t["state"] for t in rows[0]["turns"]] == STATES
    assert [t["changed"] for t in rows[0]["turns"]] == [
        {"food": "thai"},
        {"area": "dontcare"},
        {"price range": "cheap"},
        {},
    ]
    assert [t["requests"] for t in rows[0]["turns"]] == [[], [], [], ["phone"]]


def test_predict_names_the_line_and_turn_of_a_malformed_conversation(trained, tmp_path, capsys):
    from chatft.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "a", "turns": [{"system": "", "user": "i want thai food"}]}\n'
        '{"id": "b", "turns": [{"system": "", "user": "hi"}, {"system": "what area ?", "text": "north"}]}\n',
        encoding="utf-8",
    )
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--ckpt_path", trained["ckpt"], "--data.predict_file", str(bad), *QUIET])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"chatft: error: {bad}:2: dialogue 'b' turn 1: unknown key 'text' "
        "(expected requests, state, system, system_acts, user)"
    ]


def chat_lines(folder: Path) -> Path:
    """User turns, a blank line (a new dialogue), and a turn with the system's words before a tab."""
    path = folder / "turns.txt"
    lines = [u for _, u in DIALOGUE] + ["", "what area do you want ?\tthe north please"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def expected_chat(tracker, policy: StatePolicy) -> list[dict]:
    """What the chat records must be: the API, the bot's previous reply as the system turn."""
    records = []
    session = StateSession()
    for _, user in DIALOGUE:
        update = tracker.update(session.state, session.response, user)
        session, record = apply_turn(session, user, session.response, update, policy)
        records.append(record)
    fresh = tracker.update({}, "what area do you want ?", "the north please")
    records.append(
        apply_turn(StateSession(), "the north please", "what area do you want ?", fresh, policy)[1]
    )
    return records


def test_chat_with_a_tracker_checkpoint_or_its_export(api, trained, tmp_path, capsys):
    from chatft.cli import main

    policy = StatePolicy.load("woz").for_slots(api.slots)
    want = expected_chat(api, policy)
    turns = chat_lines(tmp_path)
    outputs = []
    for flag, path in (("--ckpt_path", trained["ckpt"]), ("--onnx", trained["onnx"])):
        main(["chat", flag, path, "--requirements", "woz", "--input", str(turns)])
        outputs.append([json.loads(line) for line in capsys.readouterr().out.splitlines()])
    assert outputs[0] == outputs[1] == want
    assert [r["turn"] for r in want] == [1, 2, 3, 4, 1]
    assert want[0]["system"] == "" and want[1]["system"] == want[0]["response"]
    assert want[4]["system"] == "what area do you want ?"
    assert [r["response"] for r in want] == CHAT_RESPONSES
    assert [r["state"] for r in want] == CHAT_STATES


def test_interactive_chat_prints_state_changes_and_reply(api, trained, monkeypatch, capsys):
    from chatft.cli import main

    answers = iter(["i want thai food", "/reset", "/quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    main(["chat", "--onnx", trained["onnx"]])
    first = api.update({}, "", "i want thai food")
    policy = StatePolicy().for_slots(api.slots)
    state = ", ".join(f"{k}={v!r}" for k, v in first.state.items()) or "(empty)"
    changed = ", ".join(f"{k}={v!r}" for k, v in first.changed.items()) or "(nothing)"
    assert capsys.readouterr().out.splitlines() == [
        "chat: a dialogue state tracker; type an utterance, /reset starts a new dialogue, /quit ends",
        f"  state:    {state}",
        f"  changed:  {changed}",
        f"bot> {policy.respond(first.state)}",
        "bot> (new dialogue)",
    ]


def test_a_served_tracker_session_survives_a_server_restart(api, trained, start, tmp_path):  # noqa: F811
    from chatft.serving.onnx_tracker import OnnxTracker

    onnx = OnnxTracker(trained["onnx"])
    policy = StatePolicy.load("woz").for_slots(api.slots)
    sessions = tmp_path / "dialogues.sqlite"
    # The client sends its own system turns, except on turn 3: there the bot's previous reply is the system turn.
    systems = [DIALOGUE[0][0], DIALOGUE[1][0], None, DIALOGUE[3][0]]
    want, session = [], StateSession()
    for system, (_, user) in zip(systems, DIALOGUE, strict=True):
        said = session.response if system is None else system
        session, record = apply_turn(session, user, said, onnx.update(session.state, said, user), policy)
        want.append(record)

    def turn(server, i: int) -> dict:
        body = {"text": DIALOGUE[i][1]} | ({} if systems[i] is None else {"system": systems[i]})
        response = httpx.post(f"{server.url}/chat/alice", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    server = start("--onnx", trained["onnx"], "--requirements", "woz", sessions=sessions)
    version = httpx.get(f"{server.url}/version").json()
    assert (version["backend"], version["kind"], version["slots"]) == (
        "onnx",
        "dialogue_state_tracker",
        list(SLOTS),
    )
    parse = httpx.post(f"{server.url}/parse", json={"texts": ["hi"]})
    assert parse.status_code == 400 and parse.json()["error"] == "not an intent model"
    got = [turn(server, 0), turn(server, 1)]
    server.kill()  # SIGKILL: no shutdown code runs
    # The restarted server runs the PyTorch checkpoint: the same states (the ONNX test checks they agree).
    server = start("--ckpt_path", trained["ckpt"], "--requirements", "woz", sessions=sessions)
    got += [turn(server, 2), turn(server, 3)]
    assert got == want
    assert got[2]["system"] == got[1]["response"] == "Would you like something cheap, moderate or expensive?"
    assert [g["changed"] for g in got] == [{"food": "thai"}, {"area": "dontcare"}, {}, {}]
    assert [g["state"] for g in got] == SERVE_STATES
    # A blank turn changes nothing; DELETE starts afresh.
    blank = httpx.post(f"{server.url}/chat/alice", json={"text": " "}).json()
    assert (blank["turn"], blank["state"], blank["changed"]) == (4, want[-1]["state"], {})
    assert httpx.delete(f"{server.url}/chat/alice").json() == {"session_id": "alice", "deleted": True}
    again = httpx.post(f"{server.url}/chat/alice", json={"text": DIALOGUE[0][1]}).json()
    assert (again["turn"], again["state"]) == (1, want[0]["state"])
    assert server.stop() == 0


def test_concurrent_turns_of_one_session_answer_409_after_three_tries_and_a_retry_succeeds(
    api,
    trained,
    start,  # noqa: F811
    tmp_path,
):
    """A tracker turn reads the session, runs the model, and writes only if the session is unchanged. Here another
    client's turn of the same session writes first during each of the slow turn's 3 tries (the server's gates,
    ``CHATFT_TEST_SUBMIT_GATES``, order them), so the slow turn answers 409; sent again, it succeeds on the
    state the other turns left."""
    gates = tmp_path / "gates"
    gates.mkdir()
    server = start(
        "--ckpt_path",
        trained["ckpt"],
        "--requirements",
        "woz",
        env=hooks(CHATFT_TEST_SUBMIT_GATES=str(gates)),
    )
    (gates / "armed").touch()
    slow_turn = {"text": DIALOGUE[3][1], "system": DIALOGUE[3][0]}

    async def reached(name: str) -> None:
        deadline = time.monotonic() + 30
        while not (gates / name).exists():
            assert time.monotonic() < deadline, f"no {name} within 30 s"
            await asyncio.sleep(0.01)

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            slow = asyncio.create_task(client.post("/chat/bob", json=slow_turn))
            others = []
            for k in range(3):
                await reached(f"waiting-{2 * k + 1}")  # the slow turn has read the session: its try k + 1
                system, user = DIALOGUE[k]
                other = asyncio.create_task(client.post("/chat/bob", json={"text": user, "system": system}))
                await reached(f"waiting-{2 * k + 2}")  # the other turn read the same session
                (gates / f"go-{2 * k + 2}").touch()
                others.append(await other)  # ... and wrote it first
                (gates / f"go-{2 * k + 1}").touch()  # the slow turn finds the session changed
            conflict = await slow
            (gates / "go-7").touch()
            retry = await client.post("/chat/bob", json=slow_turn)
            return others, conflict, retry

    others, conflict, retry = asyncio.run(scenario())
    assert [r.status_code for r in others] == [200, 200, 200]
    assert [r.json()["turn"] for r in others] == [1, 2, 3]
    assert [r.json()["state"] for r in others] == STATES[:3]
    assert conflict.status_code == 409
    assert conflict.json() == {
        "error": "conflict",
        "detail": "session 'bob' changed during 3 tries; send the turn again",
    }
    # The retry reads the state the 3 other turns wrote (its 4th turn), as the API computes it.
    want = api.update(STATES[2], *DIALOGUE[3])
    assert retry.status_code == 200
    got = retry.json()
    assert (got["turn"], got["system"], got["text"]) == (4, DIALOGUE[3][0], DIALOGUE[3][1])
    assert (got["state"], got["changed"], got["requests"]) == (want.state, want.changed, list(want.requests))
    assert got["state"] == STATES[3] and got["requests"] == ["phone"]
    assert sorted(p.name for p in gates.glob("waiting-*")) == [f"waiting-{k}" for k in range(1, 8)]
    assert server.stop() == 0


#: The tiny tracker on DIALOGUE, every turn right: the value said, ``dontcare``, the confirmed offer ("do you
#: want cheap food ?" "yes") and the request. The other tests check that every front end gives the API's states.
STATES = [
    {"food": "thai"},
    {"food": "thai", "area": "dontcare"},
    {"food": "thai", "area": "dontcare", "price range": "cheap"},
    {"food": "thai", "area": "dontcare", "price range": "cheap"},
]
#: chat: the bot's own replies (unseen wording for the tiny model) are the system turns.
WHERE = "Which part of town would you like to eat in?"
PHONE = "You asked for the phone; a booking back end would give it here. "
CHAT_RESPONSES = [WHERE, PHONE + WHERE, PHONE + WHERE, PHONE + WHERE, "What kind of food would you like?"]
CHAT_STATES = [{"food": "thai"}] * 4 + [{"area": "north"}]
#: serve: the client's system turns, except turn 3 (the bot's question about the price range).
SERVE_STATES = [{"food": "thai"}] + [{"food": "thai", "area": "dontcare"}] * 3
