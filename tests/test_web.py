"""serve's web page in a real browser: Playwright (PyPI) driving Debian's chromium against a real ``serve``.

The server is ``python -m chatft serve`` on an ephemeral 127.0.0.1 port (tests/test_serve.py's ``Server``),
with the tiny model trained once for the module. What the page renders (intent, top 3, slot highlights, heat
map values, the dialogue state) is checked against the JSON API's answers for the same input. Skips with the
reason when Playwright or the browser is missing (``apt-get install chromium``; CHATFT_CHROMIUM names another
binary). Marked ``browser``; the default test run includes them (about 30 s).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from .test_serve import Server, model  # noqa: F401 - the module-scoped tiny model and its ONNX export

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHATFT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
TEXT = "book a flight from boston to denver tomorrow"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium (or set CHATFT_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def onnx_server(model, tmp_path_factory):  # noqa: F811
    server = Server(
        "--onnx", model["onnx"], sessions=tmp_path_factory.mktemp("web") / "s.sqlite"
    ).wait_ready()
    yield server
    if server.proc.poll() is None:
        assert server.stop() == 0


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


def parse_on_page(page, url: str, text: str, method: str = "occlusion") -> None:
    page.goto(url)
    page.select_option("#method", method)
    page.fill("#utterance", text)
    page.click("#parse-button")
    page.wait_for_selector("#result:not([hidden]), #parse-error:not([hidden])", timeout=30_000)


def rendered(page) -> dict:
    """What the page shows, read back from the DOM."""
    return page.evaluate(
        """() => ({
        intent: document.getElementById('intent-name').textContent,
        top: [...document.querySelectorAll('#top-intents li')].map(li => [li.dataset.intent, Number(li.dataset.probability)]),
        oos: !document.getElementById('oos-flag').hidden,
        slots: [...document.querySelectorAll('#slotted-text mark.slot')].map(m =>
            [m.dataset.label, Number(m.dataset.start), Number(m.dataset.end)]),
        heat: [...document.querySelectorAll('#heatmaps .heat-row')].map(r =>
            [r.dataset.kind, r.dataset.target, [...r.querySelectorAll('.heat')].map(w => [w.textContent, Number(w.dataset.score)])]),
        error: document.getElementById('parse-error').hidden ? null : document.getElementById('parse-error').textContent,
    })"""
    )


def expected(api: dict) -> dict:
    ex = api["explanation"]
    heat = [
        [
            "intent",
            ex["intent"]["name"],
            [list(p) for p in zip(ex["words"], ex["intent"]["scores"], strict=True)],
        ]
    ]
    heat += [
        ["slot", s["label"], [list(p) for p in zip(ex["words"], s["scores"], strict=True)]]
        for s in ex["slots"]
    ]
    return {
        "intent": api["intent"],
        "top": api["intents_top_k"],
        "oos": api["out_of_scope"],
        "slots": [[s["label"], s["start"], s["end"]] for s in api["slots"]],
        "heat": heat,
        "error": None,
    }


def test_page_renders_what_the_api_answers(page, onnx_server):
    parse_on_page(page, onnx_server.url, TEXT)
    body = {"texts": [TEXT], "explain": {"method": "occlusion"}}
    (api,) = httpx.post(f"{onnx_server.url}/parse", json=body).json()
    shown = rendered(page)
    assert shown == expected(api)
    assert len(shown["heat"][0][2]) == len(api["words"]) == 8
    assert page.get_attribute("#metrics-link", "href") == "/metrics"
    page.wait_for_function("document.getElementById('model-info').textContent.startsWith('onnx model ')")


def test_two_chat_turns_show_the_state_the_api_keeps(page, onnx_server):
    page.goto(onnx_server.url)
    turns = ["book a flight from boston", "to denver tomorrow"]
    for k, turn in enumerate(turns, start=1):
        page.fill("#chat-input", turn)
        page.click("#chat-send")
        page.wait_for_function(
            "k => document.querySelectorAll('.turn-bot').length >= k", arg=k, timeout=30_000
        )
    records = [httpx.post(f"{onnx_server.url}/chat/api-check", json={"text": t}).json() for t in turns]
    state = records[-1]["state"]
    shown = page.evaluate(
        """() => ({
        intent: document.getElementById('state-intent').dataset.intent,
        frame: Object.fromEntries([...document.querySelectorAll('#state-frame tr[data-slot]')].map(
            tr => [tr.dataset.slot, tr.children[1].textContent])),
        responses: [...document.querySelectorAll('.turn-bot > span:first-child')].map(s => s.textContent),
        turns: [...document.querySelectorAll('.turn-bot')].map(d => Number(d.dataset.turn)),
    })"""
    )
    assert shown == {
        "intent": state["intent"] or "",
        "frame": {k: str(v) for k, v in state["frame"].items()},
        "responses": [r["response"] for r in records],
        "turns": [1, 2],
    }


def test_bad_input_shows_a_readable_message(page, model, tmp_path):  # noqa: F811
    server = Server("--onnx", model["onnx"], sessions=tmp_path / "s.sqlite").wait_ready()
    try:
        page.goto(server.url)
        page.click("#parse-button")
        assert page.text_content("#parse-error") == "Type an utterance first: the text is empty."
        page.fill("#utterance", "a" * 100_000)
        page.click("#parse-button")
        page.wait_for_selector("#parse-error:not([hidden])")
        page.wait_for_function("document.getElementById('parse-error').textContent.includes('413')")
        assert page.text_content("#parse-error") == (
            "The server refused the request (413) - text too long: texts[0] has 100000 characters; "
            "the limit is 2000 (--max_text_chars)"
        )
        assert page.is_hidden("#result")
        page.click("#chat-send")
        assert page.text_content("#chat-error") == "Type something to say first: the text is empty."
    finally:
        assert server.stop() == 0
    page.fill("#utterance", TEXT)
    page.click("#parse-button")
    page.wait_for_function("document.getElementById('parse-error').textContent.startsWith('Cannot reach')")
    assert page.text_content("#parse-error").startswith(f"Cannot reach the chatft server at {server.url} (")
    assert page.text_content("#parse-error").endswith('Is "python -m chatft serve" still running?')


def test_checkpoint_server_explains_with_integrated_gradients(page, model, tmp_path):  # noqa: F811
    pytest.importorskip("captum", reason="captum is not installed (pip install 'chatft[explain]')")
    server = Server("--ckpt_path", model["ckpt"], sessions=tmp_path / "s.sqlite").wait_ready()
    try:
        parse_on_page(page, server.url, TEXT, method="integrated_gradients")
        body = {"texts": [TEXT], "explain": {"method": "integrated_gradients"}}
        (api,) = httpx.post(f"{server.url}/parse", json=body).json()
        shown = rendered(page)
        assert api["explanation"]["method"] == "integrated_gradients"
        assert page.text_content("#method-used") == "(integrated_gradients)"
        assert shown == expected(api)
    finally:
        assert server.stop() == 0
