"""Load test of ``chatft serve``: served throughput and latency vs the in-process predictor, on this machine.

    apt-get install wrk      # the load generator (Debian package)
    python benchmarks/serve_load.py --ckpt runs/atis/.../best-….ckpt --onnx exports/atis

For each backend (PyTorch checkpoint, its ONNX export) and batching on (``--max_batch_size 32 --max_wait_ms 5``)
and off (``--max_batch_size 1``), starts the server on 127.0.0.1, waits for ``/ready`` and drives
``POST /model/parse`` with ``wrk`` (closed loop: each connection sends its next request when the previous one
is answered) at each concurrency level for ``--duration`` seconds, bounded at ``--max-requests`` per level;
request bodies cycle through the ATIS test utterances. Reports requests/s, p50/p95/p99 latency, errors
(connection errors, timeouts and non-2xx answers) and the mean batch size the server ran (from ``/metrics``).

In the same run and process, before any server starts: the in-process ``predictor.batch(texts, 32)``
throughput (best of 3) and single-utterance ``predictor(text)`` p50 (200 calls after 20 warm-up), with the
library's default threads as the server uses. Then the ratios the targets are about. Prints Markdown; ``--json``
also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from inference_latency import cpu_name, percentile  # noqa: E402

DEFAULT_TEXTS = [REPO.parent / "shared/data/atis/test/seq.in", REPO / "chatft/resources/demo/test/seq.in"]
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")

LUA = """
local bodies = {%(bodies)s}
local i = 0
local answered = 0
local limit = %(limit)d
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/model/parse", {["Content-Type"] = "application/json"}, bodies[i])
end
response = function(status, headers, body)
  answered = answered + 1
  if answered >= limit then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, '
    .. '"timeout": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wrk_script(texts: list[str], limit: int, folder: Path) -> Path:
    bodies = ", ".join("[==[" + json.dumps({"text": t}) + "]==]" for t in texts)
    path = folder / "parse.lua"
    path.write_text(LUA % {"bodies": bodies, "limit": limit}, encoding="utf-8")
    return path


def in_process(backend: str, ckpt: str, onnx: str, texts: list[str]) -> dict:
    """Single-utterance p50 and batch throughput of the predictor itself (default threads)."""
    if backend == "PyTorch":
        from chatft.serving.predictor import Predictor

        predictor = Predictor.from_checkpoint(ckpt)
    else:
        from chatft.serving.onnx_predictor import OnnxPredictor

        predictor = OnnxPredictor(onnx)
    for text in texts[:20]:
        predictor(text)
    latencies = []
    for i in range(200):
        t0 = time.perf_counter()
        predictor(texts[i % len(texts)])
        latencies.append((time.perf_counter() - t0) * 1000)
    predictor.batch(texts[:64], batch_size=32)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        predictor.batch(texts, batch_size=32)
        best = min(best, time.perf_counter() - t0)
    return {"single_p50_ms": percentile(latencies, 0.5), "batch_utt_s": len(texts) / best}


def batch_stats(url: str) -> tuple[float, float]:
    import httpx

    text = httpx.get(f"{url}/metrics").text
    values = dict(re.findall(r"^(chatft_batch_size_(?:sum|count)) (\S+)$", text, re.MULTILINE))
    return float(values.get("chatft_batch_size_sum", 0)), float(values.get("chatft_batch_size_count", 0))


def run_server(args, backend: str, batching: bool, script: Path, tmp: Path) -> list[dict]:
    import httpx

    model = ["--ckpt_path", args.ckpt] if backend == "PyTorch" else ["--onnx", args.onnx]
    batch = ["--max_batch_size", "32", "--max_wait_ms", "5"] if batching else ["--max_batch_size", "1"]
    cmd = [sys.executable, "-m", "chatft", "serve", *model, *batch, "--port", "0"]
    cmd += ["--sessions", str(tmp / "sessions.sqlite")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    rows = []
    try:
        url = LISTENING.search(proc.stdout.readline()).group(1)
        while True:
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "the server exited"
            time.sleep(0.1)
        for c in args.levels:
            s0, n0 = batch_stats(url)
            wrk = ["wrk", "-t1", f"-c{c}", f"-d{args.duration}s", "--timeout", "10s", "-s", str(script)]
            out = subprocess.run([*wrk, url], capture_output=True, text=True, check=True).stdout
            r = json.loads(out.split("WRKJSON ", 1)[1].splitlines()[0])
            s1, n1 = batch_stats(url)
            errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
            rows.append(
                {
                    "backend": backend,
                    "batching": batching,
                    "concurrency": c,
                    "requests": r["requests"],
                    "req_s": r["requests"] / (r["duration_us"] / 1e6),
                    "p50_ms": r["p50_us"] / 1000,
                    "p95_ms": r["p95_us"] / 1000,
                    "p99_ms": r["p99_us"] / 1000,
                    "errors": errors,
                    "mean_batch": (s1 - s0) / (n1 - n0) if n1 > n0 else 0.0,
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, f"server exited {code} after SIGTERM"
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    parser.add_argument("--onnx", required=True, help="its export (python -m chatft export)")
    parser.add_argument("--text", default=None, help="one utterance per line (default: ATIS test seq.in)")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32, 64], help="concurrency levels")
    parser.add_argument("--duration", type=int, default=5, help="seconds per level")
    parser.add_argument("--max-requests", type=int, default=20000, help="bound on requests per level")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    from chatft.core.text import read_utterances

    text_path = Path(args.text) if args.text else next(p for p in DEFAULT_TEXTS if p.is_file())
    texts = [t for t in read_utterances(text_path) if t.strip()]
    started = time.monotonic()
    baseline = {b: in_process(b, args.ckpt, args.onnx, texts) for b in ("PyTorch", "ONNX")}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = wrk_script(texts, args.max_requests, Path(tmp))
        for backend in ("PyTorch", "ONNX"):
            for batching in (True, False):
                rows += run_server(args, backend, batching, script, Path(tmp))
    elapsed = time.monotonic() - started

    def row(backend: str, batching: bool, c: int) -> dict | None:
        return next(
            (r for r in rows if (r["backend"], r["batching"], r["concurrency"]) == (backend, batching, c)),
            None,
        )

    import onnxruntime
    import torch

    print(f"{len(texts)} utterances from {text_path}; {args.duration} s per level; wrk closed loop, 1 thread")
    print(
        f"machine: {cpu_name()}, {len(os.sched_getaffinity(0))} logical CPUs, python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}; "
        f"whole run {elapsed:.0f} s"
    )
    print()
    print(
        "| backend | batching | concurrency | req/s | p50 (ms) | p95 (ms) | p99 (ms) | errors | mean batch |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        on = "on (32, 5 ms)" if r["batching"] else "off"
        print(
            f"| {r['backend']} | {on} | {r['concurrency']} | {r['req_s']:.0f} | {r['p50_ms']:.1f} | "
            f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | {r['mean_batch']:.1f} |"
        )
    print()
    print("| backend | in-process batch (utt/s) | in-process single p50 (ms) | served c=32 batching / in-process | "
          "served c=1 p50 - in-process p50 (ms) | batching on / off at c=32 |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    summary = {}
    for backend, base in baseline.items():
        on32, off32, on1 = row(backend, True, 32), row(backend, False, 32), row(backend, True, 1)
        ratio = on32["req_s"] / base["batch_utt_s"] if on32 else float("nan")
        delta = on1["p50_ms"] - base["single_p50_ms"] if on1 else float("nan")
        gain = on32["req_s"] / off32["req_s"] if on32 and off32 else float("nan")
        summary[backend] = {
            **base,
            "served_over_in_process": ratio,
            "c1_p50_delta_ms": delta,
            "on_over_off": gain,
        }
        print(
            f"| {backend} | {base['batch_utt_s']:.0f} | {base['single_p50_ms']:.1f} | {ratio:.0%} | "
            f"{delta:+.1f} | {gain:.2f}x |"
        )
    errors = sum(r["errors"] for r in rows)
    print()
    print(f"errors over all levels: {errors}")
    report = {"texts": str(text_path), "rows": rows, "summary": summary, "errors": errors, "seconds": elapsed}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
