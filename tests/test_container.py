"""The serving image (``Dockerfile``): built, run as a non-root user, healthy, answering ``/model/parse``.

Slow (a minute or more) and not offline, so marked ``slow``: ``python -m pytest -q -m slow
tests/test_container.py``. It needs a container engine that answers (``podman`` or ``docker``, or the one
named by ``CHATFT_CONTAINER_ENGINE``), a base image (``python:3.11-slim``, or a local image with python3 and
its venv module named by ``CHATFT_CONTAINER_BASE``) and PyPI for the wheels; it is skipped, with the reason,
when one is missing. The wheels are downloaded on the host and the image is built from them with
``--no-index``, so the build itself needs no network (nor the host's certificates).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from chatft.cli import main as cli_main
from tests.conftest import REPO, cli_args, demo_subset

pytestmark = pytest.mark.slow
BASE = os.environ.get("CHATFT_CONTAINER_BASE", "python:3.11-slim")
TEXT = "book a flight from boston to denver"


def _engine() -> str:
    """The first container engine that answers ``info``; skips the module when none does."""
    wanted = os.environ.get("CHATFT_CONTAINER_ENGINE")
    reasons = []
    for name in [wanted] if wanted else ["podman", "docker"]:
        if shutil.which(name) is None:
            reasons.append(f"{name}: not installed")
            continue
        info = subprocess.run([name, "info"], capture_output=True, text=True, timeout=60)
        if info.returncode == 0:
            return name
        reasons.append(f"{name}: `{name} info` failed ({(info.stderr.strip().splitlines() or ['?'])[-1]})")
    pytest.skip("no container engine answers: " + "; ".join(reasons))


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def engine() -> str:
    engine = _engine()
    if _run(engine, "image", "inspect", BASE).returncode != 0 and _run(engine, "pull", BASE).returncode != 0:
        pytest.skip(
            f"base image {BASE} is not here and cannot be pulled: set CHATFT_CONTAINER_BASE to a local image "
            "with python3 and its venv module"
        )
    return engine


@pytest.fixture(scope="module")
def export(tiny_encoder, tmp_path_factory) -> Path:
    """A tiny BERT trained one epoch on a demo slice, exported to ONNX (readable by the image's user)."""
    from chatft.serving.export import export_onnx

    root = tmp_path_factory.mktemp("container")
    data = demo_subset(root / "data")
    cli_main(["fit", *cli_args(tiny_encoder, data, root / "run", trainer__max_epochs=1)])
    ckpt = root / "run/lightning_logs/version_0/checkpoints/last.ckpt"
    out = Path(export_onnx(str(ckpt), str(root / "onnx")))
    for path in [out, *out.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return out


@pytest.fixture(scope="module")
def image(engine, tmp_path_factory):
    """The image built from a copy of the repository's build inputs plus wheels for the base's Python."""
    ctx = tmp_path_factory.mktemp("context")
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, ctx / name)
    shutil.copytree(REPO / "configs", ctx / "configs")
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "chatft", ctx / "chatft", symlinks=True, ignore=skip)
    python = "import sys; print('%d.%d' % sys.version_info[:2])"
    version = _run(engine, "run", "--rm", BASE, "python3", "-c", python)
    assert version.returncode == 0, version.stderr
    from tests.test_packaging import requirements

    wanted = [str(r) for r in requirements() + requirements("serve")] + ["setuptools>=68"]
    arch = platform.machine()
    platforms = [f"--platform={tag}_{arch}" for tag in ("manylinux2014", "manylinux_2_17", "manylinux_2_28")]
    download = _run(
        sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--implementation=cp",
        f"--python-version={version.stdout.strip()}", *platforms, "-d", str(ctx / "wheels"), *wanted,
    )  # fmt: skip
    if download.returncode != 0:
        pytest.skip(
            f"cannot download the serve wheels from the package index: {download.stderr.strip()[-300:]}"
        )
    tag = f"localhost/chatft-serve-test:{uuid.uuid4().hex[:8]}"
    build = _run(
        engine, "build", "-q", *(["--format=docker"] if engine == "podman" else []), "-t", tag,
        "--build-arg", f"BASE={BASE}", "--build-arg", "PIP_OPTIONS=--no-index --find-links /src/wheels", str(ctx),
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    yield tag
    _run(engine, "rmi", "-f", tag)


def test_the_image_serves_an_export_as_a_non_root_user_without_torch(engine, image, export):
    from chatft.serving.onnx_predictor import OnnxPredictor

    heavy = _run(
        engine, "run", "--rm", "--entrypoint", "python", image, "-c",
        "import importlib.util as u; print([m for m in ('torch', 'lightning', 'transformers') if u.find_spec(m)])",
    )  # fmt: skip
    assert (heavy.returncode, heavy.stdout) == (0, "[]\n"), heavy.stderr
    name = f"chatft-test-{uuid.uuid4().hex[:8]}"
    started = _run(
        engine, "run", "-d", "--name", name, "-p", "127.0.0.1::8000", "-v", f"{export}:/model:ro", image
    )
    assert started.returncode == 0, started.stderr
    try:
        port = _run(engine, "port", name, "8000").stdout.strip().splitlines()[0].rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ready", timeout=2) as r:
                    assert (r.status, json.load(r)) == (200, {"status": "ready"})
                break
            except OSError:
                assert time.monotonic() < deadline, _run(engine, "logs", name).stderr
                time.sleep(0.5)
        request = urllib.request.Request(f"{url}/model/parse", data=json.dumps({"text": TEXT}).encode())
        with urllib.request.urlopen(request, timeout=10) as r:
            parsed = json.load(r)
        want = OnnxPredictor(export).batch([TEXT])[0]
        assert parsed["text"] == TEXT and parsed["intent"]["name"] == want.intent
        assert parsed["intent"]["confidence"] == pytest.approx(want.intent_confidence, abs=1e-5)
        assert [e["entity"] for e in parsed["entities"]] == [s.label for s in want.slots]
        assert _run(engine, "exec", name, "id", "-u").stdout == "10001\n"
        if engine == "podman":  # docker runs the HEALTHCHECK on its own schedule; podman on demand
            health = _run(engine, "healthcheck", "run", name)
            assert health.returncode == 0, health.stdout + health.stderr
        # SIGTERM: the server finishes what is in flight and exits 0.
        assert _run(engine, "stop", "-t", "20", name).returncode == 0
        assert _run(engine, "inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip() == "0"
    finally:
        _run(engine, "rm", "-f", name)
