"""Offline tests for tfi2i.data.download (local HTTP server on 127.0.0.1)."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import socket
import tarfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tfi2i.data import download as dl
from tfi2i.data.download import DATASETS, DownloadError, add_parser, download, run

NAME = "facades"
FILES = {
    "train/1.jpg": b"\xff\xd8 train image one " * 50,
    "train/2.jpg": b"\xff\xd8 train image two " * 70,
    "val/1.jpg": b"\xff\xd8 val image " * 40,
}


# --------------------------------------------------------------------------- #
# Helpers: archives and a Range-capable HTTP server
# --------------------------------------------------------------------------- #
def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def make_archive(path: Path, files=FILES, top: str | None = NAME, extra=()) -> bytes:
    """Writes a tar.gz with ``files`` under ``top/`` plus raw ``extra`` members."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        if top:
            info = tarfile.TarInfo(top)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for rel, data in files.items():
            _add_file(tar, f"{top}/{rel}" if top else rel, data)
        for info, data in extra:
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server API)
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        path = srv.directory / self.path.lstrip("/")
        if not self.path.startswith("/") or ".." in self.path or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if match and srv.honor_range:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.truncate_next is not None:  # simulate a dropped connection once
            body, srv.truncate_next = body[: srv.truncate_next], None
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, directory: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.directory = directory
        self.honor_range = True
        self.truncate_next: int | None = None
        self.requests: list[tuple[str, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/datasets"

    def ranges(self) -> list[str | None]:
        return [r for _, r in self.requests]


@pytest.fixture
def server(tmp_path):
    srv = _Server(tmp_path / "srv")
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def served(tmp_path, server):
    """The default archive, served as /datasets/facades.tar.gz; returns its bytes."""
    return make_archive(tmp_path / "srv" / "datasets" / f"{NAME}.tar.gz")


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


@pytest.fixture
def closed_port_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}/datasets"


@pytest.fixture(params=["tarfile-filter", "own-checks"])
def filter_mode(request, monkeypatch):
    """Runs a test with tarfile's 'data' filter and with our own checks alone."""
    if request.param == "tarfile-filter":
        if not hasattr(tarfile, "data_filter"):
            pytest.skip("tarfile has no extraction filters on this Python")
        monkeypatch.setattr(dl, "_USE_DATA_FILTER", True)
    else:
        monkeypatch.setattr(dl, "_USE_DATA_FILTER", False)
    return request.param


def assert_extracted(path: Path, files=FILES) -> None:
    got = {
        p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()
    }
    assert got == files


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def record(root: Path) -> dict:
    return json.loads((root / f"{NAME}.tar.gz.sha256.json").read_text())


# --------------------------------------------------------------------------- #
# Download, record, verify
# --------------------------------------------------------------------------- #
def test_download_extracts_and_records_digest(served, server, root):
    path = download(NAME, root, base_url=server.url, progress=False)
    assert path == root / NAME
    assert_extracted(path)
    assert (root / f"{NAME}.tar.gz").read_bytes() == served
    assert record(root)["sha256"] == sha(served)
    assert record(root)["url"] == f"{server.url}/{NAME}.tar.gz"
    assert leftovers(root) == sorted([NAME, f"{NAME}.tar.gz", f"{NAME}.tar.gz.sha256.json"])
    assert server.ranges() == [None]


def test_progress_bar_goes_to_stderr(served, server, root, capsys):
    download(NAME, root, base_url=server.url, progress=True)
    captured = capsys.readouterr()
    assert f"{NAME}.tar.gz" in captured.err
    assert captured.out == ""


def test_second_call_is_idempotent_and_reverifies(served, server, root):
    download(NAME, root, base_url=server.url, progress=False)
    assert download(NAME, root, base_url=server.url, progress=False) == root / NAME
    assert len(server.requests) == 1  # no second download

    archive = root / f"{NAME}.tar.gz"
    tampered = served[:-1] + bytes([served[-1] ^ 0xFF])
    archive.write_bytes(tampered)
    with pytest.raises(DownloadError) as err:
        download(NAME, root, base_url=server.url, progress=False)
    msg = str(err.value)
    assert "SHA-256 mismatch" in msg and str(archive) in msg
    assert sha(served) in msg and sha(tampered) in msg
    assert "\n" not in msg


def test_tampered_archive_is_not_extracted(served, server, root, tmp_path):
    download(NAME, root, base_url=server.url, progress=False)
    os.rename(root / NAME, tmp_path / "old")
    other = make_archive(tmp_path / "other.tar.gz", files={"train/x.jpg": b"other"})
    (root / f"{NAME}.tar.gz").write_bytes(other)
    with pytest.raises(DownloadError, match="SHA-256 mismatch") as err:
        download(NAME, root, base_url=server.url, progress=False)
    assert sha(served) in str(err.value) and sha(other) in str(err.value)
    assert not (root / NAME).exists()
    assert not any(n.startswith(f".{NAME}.extract-") for n in leftovers(root))


def test_explicit_sha256_must_match(served, server, root):
    wrong = "0" * 64
    with pytest.raises(DownloadError) as err:
        download(NAME, root, sha256=wrong, base_url=server.url, progress=False)
    msg = str(err.value)
    assert "SHA-256 mismatch" in msg and f"{NAME}.tar.gz" in msg
    assert wrong in msg and sha(served) in msg
    assert leftovers(root) == []  # nothing extracted, recorded or kept

    # The right digest (any case) works, and is checked again on later calls.
    path = download(NAME, root, sha256=sha(served).upper(), base_url=server.url, progress=False)
    assert_extracted(path)
    assert record(root)["sha256"] == sha(served)
    with pytest.raises(DownloadError, match=wrong):
        download(NAME, root, sha256=wrong, base_url=server.url, progress=False)


def test_invalid_sha256_argument(server, root):
    with pytest.raises(DownloadError, match="64 hexadecimal"):
        download(NAME, root, sha256="abc", base_url=server.url, progress=False)
    assert server.requests == []


# --------------------------------------------------------------------------- #
# Resume
# --------------------------------------------------------------------------- #
def test_resume_from_part_file(served, server, root):
    half = len(served) // 2
    root.mkdir()
    (root / f"{NAME}.tar.gz.part").write_bytes(served[:half])
    path = download(NAME, root, base_url=server.url, progress=False)
    assert server.ranges() == [f"bytes={half}-"]
    assert_extracted(path)
    assert (root / f"{NAME}.tar.gz").read_bytes() == served
    assert not (root / f"{NAME}.tar.gz.part").exists()
    assert record(root)["sha256"] == sha(served)


def test_server_ignoring_range_restarts_cleanly(served, server, root):
    server.honor_range = False
    root.mkdir()
    # Garbage prefix: had it been kept, the archive would be corrupt.
    (root / f"{NAME}.tar.gz.part").write_bytes(b"x" * (len(served) // 2))
    path = download(NAME, root, base_url=server.url, progress=False)
    assert server.ranges() == [f"bytes={len(served) // 2}-"]
    assert_extracted(path)
    assert (root / f"{NAME}.tar.gz").read_bytes() == served


def test_interrupted_download_keeps_part_and_resumes(served, server, root):
    half = len(served) // 2
    server.truncate_next = half
    with pytest.raises(DownloadError, match="interrupted") as err:
        download(NAME, root, base_url=server.url, progress=False)
    part = root / f"{NAME}.tar.gz.part"
    assert str(part) in str(err.value)
    assert part.read_bytes() == served[:half]
    assert not (root / NAME).exists()

    path = download(NAME, root, base_url=server.url, progress=False)
    assert server.ranges() == [None, f"bytes={half}-"]
    assert_extracted(path)


def test_complete_part_file_416(served, server, root):
    root.mkdir()
    (root / f"{NAME}.tar.gz.part").write_bytes(served)
    path = download(NAME, root, base_url=server.url, progress=False)
    assert server.ranges() == [f"bytes={len(served)}-"]
    assert_extracted(path)


# --------------------------------------------------------------------------- #
# Layout, manual archives, atomicity
# --------------------------------------------------------------------------- #
def test_archive_without_top_folder(tmp_path, server, root):
    make_archive(tmp_path / "srv" / "datasets" / f"{NAME}.tar.gz", top=None)
    path = download(NAME, root, base_url=server.url, progress=False)
    assert_extracted(path)
    assert (path.stat().st_mode & 0o777) == 0o755


def test_manually_placed_archive_works_offline(tmp_path, root, closed_port_url):
    data = make_archive(root / f"{NAME}.tar.gz")
    path = download(NAME, root, base_url=closed_port_url, progress=False)
    assert_extracted(path)
    assert record(root)["sha256"] == sha(data)


def test_crash_during_extraction_leaves_no_final_folder(served, server, root, monkeypatch):
    real_extract = tarfile.TarFile.extract
    calls = []

    def crashing_extract(self, member, *args, **kwargs):
        calls.append(member.name)
        if len(calls) == 3:
            raise KeyboardInterrupt  # e.g. Ctrl-C half-way
        return real_extract(self, member, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", crashing_extract)
    with pytest.raises(KeyboardInterrupt):
        download(NAME, root, base_url=server.url, progress=False)
    assert not (root / NAME).exists()
    assert not any(n.startswith(f".{NAME}.extract-") for n in leftovers(root))

    monkeypatch.setattr(tarfile.TarFile, "extract", real_extract)
    assert_extracted(download(NAME, root, base_url=server.url, progress=False))
    assert len(server.requests) == 1  # the verified archive was reused


def test_corrupt_archive_is_a_clear_error(tmp_path, server, root):
    (tmp_path / "srv" / "datasets").mkdir(parents=True)
    (tmp_path / "srv" / "datasets" / f"{NAME}.tar.gz").write_bytes(b"not a tarball" * 10)
    with pytest.raises(DownloadError, match="cannot read archive"):
        download(NAME, root, base_url=server.url, progress=False)
    assert not (root / NAME).exists()


# --------------------------------------------------------------------------- #
# Malicious archives
# --------------------------------------------------------------------------- #
EVIL_ABS = f"/tmp/tfi2i-evil-{uuid.uuid4().hex}"


def _reg(name):
    return tarfile.TarInfo(name), b"evil"


def _sym(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


def _hard(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info, None


def _special(name, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info, None


MALICIOUS = {
    "dotdot": [_reg("../evil.txt")],
    "dotdot-nested": [_reg(f"{NAME}/../../evil.txt")],
    "absolute": [_reg(EVIL_ABS)],
    "symlink-absolute": [_sym(f"{NAME}/train/passwd", "/etc/passwd")],
    "symlink-dotdot": [_sym(f"{NAME}/train/up", "../../x")],
    "symlink-far-dotdot": [_sym(f"{NAME}/train/up", "../../../x")],
    "symlink-chain": [
        _sym(f"{NAME}/d/e/l", "../.."),
        _sym(f"{NAME}/x", "d/e/l/../.."),
        _reg(f"{NAME}/x/evil.txt"),
    ],
    "symlink-chain-only": [_sym(f"{NAME}/d/e/l", "../.."), _sym(f"{NAME}/x", "d/e/l/../..")],
    "write-through-symlink": [_sym(f"{NAME}/lnk", "train"), _reg(f"{NAME}/lnk/evil.txt")],
    "hardlink-absolute": [_hard(f"{NAME}/train/h", "/etc/passwd")],
    "hardlink-dotdot": [_hard(f"{NAME}/train/h", "../outside.txt")],
    "hardlink-to-symlink": [
        _sym(f"{NAME}/s", "train/1.jpg"),
        _hard(f"{NAME}/h", f"{NAME}/s"),
    ],
    "char-device": [_special(f"{NAME}/train/null", tarfile.CHRTYPE)],
    "block-device": [_special(f"{NAME}/train/sda", tarfile.BLKTYPE)],
    "fifo": [_special(f"{NAME}/train/fifo", tarfile.FIFOTYPE)],
}


def _snapshot(tmp_path: Path, root: Path) -> set[str]:
    return {
        p.relative_to(tmp_path).as_posix()
        for p in tmp_path.rglob("*")
        if root not in p.parents and p != root
    }


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archives_are_rejected(case, filter_mode, tmp_path, server, root):
    (tmp_path / "outside.txt").write_text("precious")
    make_archive(tmp_path / "srv" / "datasets" / f"{NAME}.tar.gz", extra=MALICIOUS[case])
    before = _snapshot(tmp_path, root)

    with pytest.raises(DownloadError) as err:
        download(NAME, root, base_url=server.url, progress=False)
    msg = str(err.value)
    assert "refusing to extract" in msg and "nothing was installed" in msg
    assert "\n" not in msg

    assert _snapshot(tmp_path, root) == before  # nothing written outside root
    assert set(leftovers(root)) <= {f"{NAME}.tar.gz", f"{NAME}.tar.gz.sha256.json"}
    assert not (root / NAME).exists()
    assert not os.path.lexists(EVIL_ABS)
    assert (tmp_path / "outside.txt").read_text() == "precious"


def test_internal_relative_symlink_is_allowed(filter_mode, tmp_path, server, root):
    make_archive(
        tmp_path / "srv" / "datasets" / f"{NAME}.tar.gz",
        extra=[_sym(f"{NAME}/val/link.jpg", "../train/1.jpg")],
    )
    path = download(NAME, root, base_url=server.url, progress=False)
    assert (path / "val" / "link.jpg").read_bytes() == FILES["train/1.jpg"]


# --------------------------------------------------------------------------- #
# Network and name errors
# --------------------------------------------------------------------------- #
def test_unreachable_host_is_a_clear_error(root, closed_port_url):
    with pytest.raises(DownloadError) as err:
        download(NAME, root, base_url=closed_port_url, progress=False, timeout=5)
    msg = str(err.value)
    host = closed_port_url.split("/")[2]
    assert f"could not reach {host}" in msg
    assert "manually" in msg and str(root / f"{NAME}.tar.gz") in msg
    assert f"{closed_port_url}/{NAME}.tar.gz" in msg
    assert "\n" not in msg
    assert not (root / NAME).exists()


def test_timeout_is_a_clear_error(root):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP handshake but never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(DownloadError, match=r"could not reach .*timed out.*manually"):
            download(NAME, root, base_url=url, progress=False, timeout=0.3)
    finally:
        listener.close()


def test_http_error_is_reported(server, root):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(NAME, root, base_url=server.url, progress=False)
    assert not (root / NAME).exists()


def test_unknown_name_lists_valid_names(root):
    with pytest.raises(DownloadError) as err:
        download("imagenet", root, progress=False)
    assert "imagenet" in str(err.value)
    assert all(name in str(err.value) for name in DATASETS)
    assert not root.exists()


def test_datasets_constant():
    assert DATASETS == (
        "facades", "cityscapes", "maps", "night2day", "edges2shoes", "edges2handbags",
    )
    assert dl.archive_url("maps") == f"{dl.BASE_URL}/maps.tar.gz"


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #
def _parse(argv):
    parser = argparse.ArgumentParser(prog="tfi2i")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_defaults():
    args = _parse(["download", "maps"])
    assert args.func is run
    assert (args.name, args.root, args.sha256, args.base_url, args.no_progress) == (
        "maps", "./datasets", None, dl.BASE_URL, False,
    )


def test_cli_success_prints_path(served, server, root, capsys):
    args = _parse(["download", NAME, "--root", str(root), "--base-url", server.url,
                   "--sha256", sha(served), "--no-progress"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(root / NAME)


@pytest.mark.parametrize("name", [NAME, "imagenet"])
def test_cli_failure_returns_1(name, root, closed_port_url, capsys):
    args = _parse(["download", name, "--root", str(root), "--base-url", closed_port_url,
                   "--no-progress"])
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
