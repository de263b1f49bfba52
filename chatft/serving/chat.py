"""``python -m chatft chat``: talk to a trained model, with dialogue state tracking.

    python -m chatft chat --ckpt_path model.ckpt --requirements atis
    python -m chatft chat --onnx onnx-folder --requirements demo --input turns.txt

Interactive (default): each turn prints the intent and its confidence, the slots, the dialogue state after
the turn and a short response; ``/why`` shows the word attributions of the last utterance (``/why INTENT``: for
that intent instead of the predicted one, :mod:`chatft.core.attribution`), ``/reset`` starts a new dialogue,
``/quit`` (or end of input) ends.
With ``--input FILE``: one user turn per line (a blank line starts a new dialogue), and one JSON object per
turn on standard output::

    {"turn": 1, "text": ..., "intent": ..., "intent_confidence": ..., "out_of_scope": false, "slots": [...],
     "new_frame": true, "state": {"intent": ..., "frame": {slot: value}}, "missing": [...], "response": ...}

State rules and the requirements YAML are described in :mod:`chatft.dialogue.tracker`; ``--onnx DIR`` runs an
exported model instead of a checkpoint. A learned dialogue state tracker's checkpoint or export runs
:mod:`chatft.serving.tracker_chat` instead (the state from the bot's previous reply and the user's words), in the
same loops (:mod:`chatft.serving.chat_loop`).

It lives in serving, not dialogue, because it runs the predictors: serving uses dialogue (the tracker and
the turn record, :mod:`chatft.dialogue.record`), never the other way round.
"""

from __future__ import annotations

import sys
from typing import TextIO

from chatft.core.errors import ConfigError
from chatft.core.prediction import Prediction
from chatft.dialogue.record import turn_record
from chatft.dialogue.tracker import FALLBACK_RESPONSE, DialoguePolicy, DialogueTracker
from chatft.serving.chat_loop import chat_file, chat_interactive


def _show(pred: Prediction, update: dict, out: TextIO) -> None:
    slots = ", ".join(f"{s.label}={s.value!r} ({s.confidence:.2f})" for s in pred.slots) or "(none)"
    state = update["state"]
    frame = ", ".join(f"{k}={v!r}" for k, v in state["frame"].items()) or "(empty)"
    print(f"  intent: {pred.intent} ({pred.intent_confidence:.2f})", file=out)
    print(f"  slots:  {slots}", file=out)
    print(
        f"  state:  {state['intent']} [{frame}]" + (" (new frame)" if update["new_frame"] else ""), file=out
    )
    print(f"bot> {update['response']}", file=out, flush=True)


def show_why(explanation: dict, out: TextIO, top: int = 3) -> None:
    """An explanation in a few lines: every word's intent score, then each slot's most supporting words."""
    intent = explanation["intent"]
    words = explanation["words"]
    scored = " ".join(f"{w}({s:+.2f})" for w, s in zip(words, intent["scores"], strict=True))
    print(
        f"  why {intent['name']} ({intent['probability']:.2f}, {explanation['method']}): {scored}", file=out
    )
    for slot in explanation["slots"]:
        best = sorted(range(len(words)), key=lambda i: -slot["scores"][i])[:top]
        shown = ", ".join(f"{words[i]} {slot['scores'][i]:+.2f}" for i in best)
        print(f"  why {slot['label']}={slot['text']!r}: {shown}", file=out)
    out.flush()


def run_file(predictor, tracker: DialogueTracker, lines: list[str], out: TextIO) -> None:
    """File mode: one JSON object per non-blank line; a blank line resets the dialogue (``turn`` counts on)."""
    turn = 0

    def step(line: str) -> dict:
        nonlocal turn
        turn += 1
        pred = predictor(line)
        return turn_record(turn, pred, tracker.update(pred))

    chat_file(lines, step, tracker.reset, out)


def run_interactive(predictor, tracker: DialogueTracker, out: TextIO) -> None:
    last: Prediction | None = None

    def why(line: str) -> bool:
        typed = line.strip().lower()
        if not (typed == "/why" or typed.startswith("/why ")):
            return False
        if last is None:
            print("bot> (nothing to explain yet: type an utterance first)", file=out, flush=True)
            return True
        intent = line.strip()[len("/why") :].strip() or None
        try:
            show_why(predictor.explanation(last, intent=intent), out)
        except ConfigError as err:
            print(f"bot> ({err})", file=out, flush=True)
        return True

    def step(line: str) -> None:
        nonlocal last
        pred = last = predictor(line)
        _show(pred, tracker.update(pred), out)

    chat_interactive(
        "chat: type an utterance; /why [INTENT] explains the last one, /reset starts a new dialogue, /quit ends",
        step,
        tracker.reset,
        out,
        command=why,
    )


def load_tracker(ckpt_path: str | None, onnx: str | None, device: str = "cpu"):
    """The learned tracker when the checkpoint or export folder is one (else None: an intent and slot model).
    Torch is imported only for a checkpoint."""
    if onnx:
        from chatft.serving.onnx_tracker import OnnxTracker, is_tracker_export

        return OnnxTracker(onnx) if is_tracker_export(onnx) else None
    from pathlib import Path

    if not Path(str(ckpt_path)).expanduser().is_file():
        return None  # the intent and slot model's loading says what is wrong with the path
    from chatft.serving.tracker_predictor import TrackerPredictor, is_tracker_checkpoint

    return (
        TrackerPredictor.from_checkpoint(ckpt_path, device=device)
        if is_tracker_checkpoint(ckpt_path)
        else None
    )


def chat(
    ckpt_path: str | None = None,
    onnx: str | None = None,
    requirements: str | None = None,
    input: str | None = None,
    device: str = "cpu",
    fallback_response: str = FALLBACK_RESPONSE,
) -> None:
    """Chat with a trained model: intent, slots, dialogue state and a templated response per turn.

    Give exactly one of --ckpt_path and --onnx. Interactive by default (/reset starts a new dialogue, /quit
    ends); with --input FILE, one user turn per line (a blank line starts a new dialogue) and one JSON object
    per turn on standard output. A learned dialogue state tracker (its checkpoint or export) tracks the state
    from the bot's previous reply and the user's words; in --input files, SYSTEM<TAB>USER gives the system's
    words.

    Args:
        ckpt_path: checkpoint written by fit (.ckpt)
        onnx: folder written by `python -m chatft export` (runs with onnxruntime, without torch)
        requirements: dialogue policy YAML (required slots, questions, templates per intent), or a shipped
            one: atis, demo (default: no required slots); for a state tracker: its policy YAML, or woz
            (default: ask for every slot)
        input: file with one user turn per line; JSON Lines to stdout
        device: torch device for --ckpt_path
        fallback_response: the answer to a turn the model calls out of scope (its intent is the fallback,
            e.g. nlu_fallback); the dialogue state stays as it was
    """
    if (ckpt_path is None) == (onnx is None):
        raise ConfigError("chat: give exactly one of --ckpt_path CKPT and --onnx DIR")
    tracker = load_tracker(ckpt_path, onnx, device)
    if tracker is not None:  # a learned dialogue state tracker: chatft.serving.tracker_chat
        from chatft.dialogue.state_policy import StatePolicy
        from chatft.serving.tracker_chat import run_tracker_file, run_tracker_interactive

        state_policy = StatePolicy.load(requirements).for_slots(tracker.slots)
        if input is not None:
            from chatft.core.text import read_utterances

            run_tracker_file(tracker, state_policy, read_utterances(input), sys.stdout)
        else:
            run_tracker_interactive(tracker, state_policy, sys.stdout)
        return
    policy = DialoguePolicy.load(requirements)
    if onnx:
        from chatft.serving.onnx_predictor import OnnxPredictor

        predictor = OnnxPredictor(onnx)
    else:
        from chatft.serving.predictor import Predictor

        predictor = Predictor.from_checkpoint(ckpt_path, device=device)
    unknown = policy.unknown_labels(predictor.intent_labels, predictor.slot_labels)
    if unknown and requirements:
        print(
            f"chatft: warning: {requirements} names labels this model never predicts: {', '.join(unknown)}",
            file=sys.stderr,
        )
    tracker = DialogueTracker(policy, fallback_response=fallback_response)
    if input is not None:
        from chatft.core.text import read_utterances

        run_file(predictor, tracker, read_utterances(input), sys.stdout)
    else:
        run_interactive(predictor, tracker, sys.stdout)
