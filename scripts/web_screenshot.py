"""Take the screenshot of serve's web page that README shows (docs/images/web.png), with Playwright.

    python scripts/web_screenshot.py --onnx /work/equiv/after/atis-onnx --out docs/images/web.png

Starts ``python -m chatft serve`` on an ephemeral 127.0.0.1 port, parses one utterance with its explanation,
runs two chat turns, saves a full-page PNG and stops the server. The browser is Debian's chromium
(``apt-get install chromium``; ``--chromium`` to point elsewhere): Playwright's own download is not needed.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--onnx", help="export folder to serve")
    model.add_argument("--ckpt_path", help="checkpoint to serve")
    parser.add_argument("--out", default=str(REPO / "docs/images/web.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--text", default="show me the cheapest fare from boston to denver on monday")
    parser.add_argument("--turns", nargs=2, default=["i want to fly from boston", "to denver tomorrow"])
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    source = ["--onnx", args.onnx] if args.onnx else ["--ckpt_path", args.ckpt_path]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chatft",
                "serve",
                "--port",
                "0",
                "--sessions",
                f"{tmp}/s.sqlite",
                *source,
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            url = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline()).group(0)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium)
                page = browser.new_page(viewport={"width": 1280, "height": 820})
                page.goto(url)
                page.fill("#utterance", args.text)
                page.click("#parse-button")
                page.wait_for_selector("#heatmaps .heat")
                for turn in args.turns:
                    page.fill("#chat-input", turn)
                    page.click("#chat-send")
                    page.wait_for_function("t => document.querySelectorAll('.turn-bot').length >= t", arg=1)
                page.wait_for_function("document.querySelectorAll('.turn-bot').length >= 2")
                page.screenshot(path=args.out, full_page=True)
                browser.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
