"""Download, verify and safely extract the public pix2pix data sets.

This module implements ``tfi2i download NAME`` for the six paired data sets
published with pix2pix (Isola et al., 2017). The archives are fetched from
``BASE_URL/NAME.tar.gz`` (the location used by the reference
``download_pix2pix_dataset.sh`` script) and installed as ``ROOT/NAME``.

Guarantees:

* **Streaming with progress.** The archive is streamed to disk in 1 MiB chunks
  with a ``tqdm`` progress bar on stderr (``progress=False`` / ``--no-progress``
  disables it).
* **Resumable.** The download is written to ``ROOT/NAME.tar.gz.part``. If that
  file exists, the download resumes with an HTTP ``Range`` request. If the
  server ignores the range (it answers ``200`` instead of ``206``), the partial
  file is discarded and the download starts over from the same response.
* **Integrity.** No digests are published for these archives. A known digest
  is pinned with ``sha256`` (``--sha256``): any other archive is refused.
  Without one the first archive is trusted (trust on first use): its SHA-256
  is recorded in ``ROOT/NAME.tar.gz.sha256.json`` only once it has extracted
  cleanly, and checked on every later use (``tfi2i download`` prints it, to
  pin on other machines). On a mismatch a :class:`DownloadError` names the
  file and both digests, and the archive is not extracted.
* **Rejected archives are deleted.** An archive that is corrupt or unsafe to
  extract (below) is deleted, with a digest record of that same archive, so
  nothing it held is installed and its digest is never trusted.
* **Safe extraction.** Every member is checked before it is extracted: absolute
  paths, ``..`` components, device files/FIFOs, links that point outside the
  target folder, hard links to anything but a regular file earlier in the
  archive, and members that would be written through a symbolic link are all
  rejected. Where :mod:`tarfile` has extraction filters (Python >= 3.12 and the
  security backports 3.10.12+/3.11.4+), the ``"data"`` filter is applied on top
  of these checks. After extraction every symbolic link is resolved on disk and
  must stay inside the data set folder.
* **Atomic installation.** The archive is extracted into a temporary hidden
  sibling folder (``ROOT/.NAME.extract-*``) that is renamed to ``ROOT/NAME``
  only once extraction and all checks succeeded, so an interrupted run never
  leaves a half-extracted data set under its final name.
* **Clear offline errors.** When the host cannot be reached, a one-line
  :class:`DownloadError` explains how to download the archive manually and
  where to put it; a later run then verifies and extracts it offline.

Example:
    >>> from tfi2i.data.download import download
    >>> path = download("facades", "datasets")  # doctest: +SKIP
    >>> sorted(p.name for p in path.iterdir())  # doctest: +SKIP
    ['test', 'train', 'val']
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import http.client
import json
import os
import pathlib
import posixpath
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from typing import Any

from tqdm import tqdm

__all__ = [
    "BASE_URL",
    "DATASETS",
    "DownloadError",
    "add_parser",
    "archive_url",
    "download",
    "run",
]

DATASETS: tuple[str, ...] = (
    "facades",
    "cityscapes",
    "maps",
    "night2day",
    "edges2shoes",
    "edges2handbags",
)
"""Names of the public pix2pix data sets that can be downloaded."""

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
"""Default location of the ``NAME.tar.gz`` archives."""

DEFAULT_ROOT = "./datasets"

_ARCHIVE_SUFFIX = ".tar.gz"
_PART_SUFFIX = ".part"
_RECORD_SUFFIX = ".sha256.json"
_EXTRACT_PREFIX = ".{name}.extract-"
_CHUNK = 1 << 20  # 1 MiB
_USER_AGENT = "tfi2i-download/1.0 (+python-urllib)"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"\s*bytes\s+\*/(\d+)\s*", re.IGNORECASE)
# Top-level archive entries that are metadata junk rather than data (macOS tar).
_JUNK_TOP_LEVEL = ("__MACOSX",)

# Use tarfile's "data" extraction filter where it exists (3.12+ and the
# 3.10.12+/3.11.4+ security backports). Our own member checks always run first,
# so this is defence in depth; tests switch it off to exercise our checks alone.
_USE_DATA_FILTER = hasattr(tarfile, "data_filter")


class DownloadError(RuntimeError):
    """A data set could not be downloaded, verified or extracted.

    The message is a single line meant to be shown to the user as is.
    """


class _RejectedArchive(DownloadError):
    """The archive itself is bad (unreadable, corrupt or unsafe to extract): it is deleted, never trusted."""


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def archive_url(name: str, base_url: str = BASE_URL) -> str:
    """Returns the URL of the archive of data set ``name``.

    Args:
        name: One of :data:`DATASETS`.
        base_url: Folder URL holding the ``NAME.tar.gz`` archives.

    Returns:
        ``base_url/NAME.tar.gz``.

    Raises:
        DownloadError: If ``name`` is not a known data set.
    """
    _check_name(name)
    return f"{base_url.rstrip('/')}/{name}{_ARCHIVE_SUFFIX}"


def download(
    name: str,
    root: str | os.PathLike,
    *,
    sha256: str | None = None,
    base_url: str = BASE_URL,
    progress: bool = True,
    timeout: float = 30.0,
) -> pathlib.Path:
    """Downloads (resumably), verifies and safely extracts a pix2pix data set.

    The archive is kept as ``root/NAME.tar.gz`` next to the extracted folder,
    and its SHA-256 is recorded in ``root/NAME.tar.gz.sha256.json`` on first
    download. If ``root/NAME.tar.gz`` already exists (for example because it
    was downloaded manually), it is verified and extracted without network
    access.

    The call is idempotent: if ``root/NAME`` already exists it is returned
    as is, after checking the archive (when still present) against the
    recorded digest and ``sha256``.

    Args:
        name: Data set name, one of :data:`DATASETS`.
        root: Folder that receives the archive and the extracted data set.
            Created if missing.
        sha256: Expected SHA-256 of the archive (64 hex digits). If given, the
            archive must match it, in addition to any recorded digest.
        base_url: Folder URL holding the archives (for mirrors and tests).
        progress: Show ``tqdm`` progress bars on stderr.
        timeout: Socket timeout in seconds for connecting and for each read.

    Returns:
        The extracted data set folder ``root/NAME``; for the real archives it
        contains ``train/``, ``val/`` and (for most sets) ``test/``.

    Raises:
        DownloadError: If ``name`` is unknown, the host cannot be reached, the
            download fails, the archive does not match the expected or
            recorded digest, or the archive is corrupt or unsafe to extract.
    """
    url = archive_url(name, base_url)
    expected = _normalize_digest(sha256) if sha256 is not None else None
    root = pathlib.Path(root).expanduser()
    target = root / name
    archive = root / f"{name}{_ARCHIVE_SUFFIX}"
    record_file = _record_path(archive)
    recorded = _read_record(record_file)

    if target.exists():
        if archive.is_file():
            _verify_existing(  # not recorded here: only an archive seen to extract cleanly is
                archive,
                expected=expected,
                recorded=recorded,
                record_file=record_file,
                progress=progress,
                consequence=f"the installed data set {target} may not come from this archive",
            )
        elif expected is not None:
            if recorded is None:
                raise DownloadError(
                    f"cannot check --sha256 for {target}: neither the archive {archive} nor "
                    f"its recorded digest {record_file} exists; delete {target} to download "
                    "and verify it again"
                )
            if recorded != expected:
                raise DownloadError(
                    f"SHA-256 mismatch for {archive}: expected {expected} (--sha256), but "
                    f"{record_file} records {recorded} for the archive that {target} was "
                    f"extracted from; delete {target} and {record_file} to download it again"
                )
        return target

    root.mkdir(parents=True, exist_ok=True)
    if archive.is_file():
        actual = _verify_existing(
            archive,
            expected=expected,
            recorded=recorded,
            record_file=record_file,
            progress=progress,
            consequence="it was not extracted",
        )
    else:
        part = archive.with_name(archive.name + _PART_SUFFIX)
        _fetch(url, part, archive=archive, name=name, progress=progress, timeout=timeout)
        actual = _sha256_file(part, progress=progress, desc=f"verify {archive.name}")
        problem = _digest_problem(actual, expected, recorded, record_file)
        if problem is not None:
            part.unlink()
            raise DownloadError(
                f"SHA-256 mismatch for {archive.name} downloaded from {url}: {problem}; the "
                f"download was deleted and not extracted (if the upstream archive changed "
                f"legitimately, delete {record_file} and rerun)"
            )
        os.replace(part, archive)

    _install(archive, target, name=name, progress=progress, digest=actual, recorded=recorded,
             record_file=record_file, url=url)
    return target


def _install(
    archive: pathlib.Path,
    target: pathlib.Path,
    *,
    name: str,
    progress: bool,
    digest: str,
    recorded: str | None,
    record_file: pathlib.Path,
    url: str,
) -> None:
    """Extracts a verified archive to ``target``, then records its digest (first use only).

    The digest is recorded only once the archive has extracted cleanly. A
    rejected archive (unreadable, corrupt, unsafe) is deleted, together with a
    record of its own digest, so that it is never trusted on a later run.
    """
    try:
        _extract(archive, target, name=name, progress=progress)
    except _RejectedArchive as exc:
        _discard_rejected(archive, digest=digest, recorded=recorded, record_file=record_file)
        raise DownloadError(
            f"{exc}; the rejected archive {archive} was deleted and its digest not trusted "
            "(rerun to download it again, or pin a known digest with --sha256)"
        ) from exc.__cause__
    if recorded is None:
        _write_record(record_file, archive=archive, url=url, sha256=digest)


def _discard_rejected(
    archive: pathlib.Path, *, digest: str, recorded: str | None, record_file: pathlib.Path
) -> None:
    """Deletes a rejected archive, and its digest record when that records this very archive."""
    archive.unlink(missing_ok=True)
    if recorded is not None and recorded == digest:
        record_file.unlink(missing_ok=True)


def add_parser(subparsers: Any) -> None:
    """Registers the ``download`` subcommand.

    Args:
        subparsers: The object returned by
            :meth:`argparse.ArgumentParser.add_subparsers`.
    """
    parser = subparsers.add_parser(
        "download",
        help="download, verify and extract a public pix2pix data set",
        description=(
            "Download (resumably), verify (SHA-256) and safely extract one of the public "
            f"pix2pix data sets into ROOT/NAME. Valid names: {', '.join(DATASETS)}."
        ),
    )
    parser.add_argument(
        "name", metavar="NAME", help=f"data set name, one of: {', '.join(DATASETS)}"
    )
    parser.add_argument(
        "--root",
        default=DEFAULT_ROOT,
        help="folder receiving the archive and the extracted data set (default: %(default)s)",
    )
    parser.add_argument(
        "--sha256",
        default=None,
        metavar="HEX",
        help="pin the SHA-256 of NAME.tar.gz: any other archive is refused (without it the first archive "
        "that extracts cleanly is trusted and its digest recorded in ROOT/NAME.tar.gz.sha256.json)",
    )
    parser.add_argument(
        "--base-url",
        default=BASE_URL,
        metavar="URL",
        help="folder URL holding NAME.tar.gz, e.g. a mirror (default: %(default)s)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="do not show progress bars"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="network timeout in seconds (default: %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: Any) -> int:
    """Executes a parsed ``download`` command.

    Prints the path of the extracted data set on stdout on success.

    Args:
        args: Namespace produced by the parser registered with
            :func:`add_parser` (``name``, ``root``, ``sha256``, ``base_url``,
            ``no_progress`` and optionally ``timeout``).

    Returns:
        The process exit code: 0 on success, 1 if a :class:`DownloadError`
        occurred (its message is printed to stderr as ``error: ...``), 130 if
        interrupted.
    """
    root = getattr(args, "root", DEFAULT_ROOT)
    record_file = _record_path(pathlib.Path(root).expanduser() / f"{args.name}{_ARCHIVE_SUFFIX}")
    had_record = record_file.is_file()
    try:
        path = download(
            args.name,
            root,
            sha256=getattr(args, "sha256", None),
            base_url=getattr(args, "base_url", BASE_URL),
            progress=not getattr(args, "no_progress", False),
            timeout=getattr(args, "timeout", 30.0),
        )
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "error: interrupted; a partial download is kept and resumed by rerunning the "
            "same command",
            file=sys.stderr,
        )
        return 130
    if getattr(args, "sha256", None) is None and not had_record:
        _note_first_use(record_file)
    print(path)
    return 0


def _note_first_use(record_file: pathlib.Path) -> None:
    """Tells the user (stderr) which digest was just trusted on first use, and how to pin it."""
    try:
        digest = _read_record(record_file)
    except DownloadError:
        return
    if digest is not None:
        print(
            f"note: no --sha256 was given, so this archive was trusted on first use: its SHA-256 {digest} is "
            f"recorded in {record_file} and checked from now on; pin it elsewhere with --sha256 {digest}",
            file=sys.stderr,
        )


# --------------------------------------------------------------------------- #
# Names, digests and the digest record
# --------------------------------------------------------------------------- #
def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise DownloadError(
            f"unknown data set {name!r}; valid names are: {', '.join(DATASETS)}"
        )


def _normalize_digest(digest: str) -> str:
    value = str(digest).strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:"):]
    if not _HEX64.fullmatch(value):
        raise DownloadError(
            f"invalid SHA-256 {digest!r}: expected 64 hexadecimal digits"
        )
    return value


def _record_path(archive: pathlib.Path) -> pathlib.Path:
    return archive.with_name(archive.name + _RECORD_SUFFIX)


def _read_record(record_file: pathlib.Path) -> str | None:
    """Returns the digest recorded in ``record_file`` or None if there is none."""
    try:
        text = record_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DownloadError(f"cannot read digest record {record_file}: {exc}") from exc
    try:
        data = json.loads(text)
        value = data["sha256"]
        if not isinstance(value, str) or not _HEX64.fullmatch(value.lower()):
            raise ValueError(value)
    except (ValueError, KeyError, TypeError) as exc:
        raise DownloadError(
            f"digest record {record_file} is corrupt (no valid 'sha256' entry); delete it "
            "and rerun to record the archive's digest again"
        ) from exc
    return value.lower()


def _write_record(
    record_file: pathlib.Path, *, archive: pathlib.Path, url: str, sha256: str
) -> None:
    data = {
        "file": archive.name,
        "url": url,
        "sha256": sha256,
        "size": archive.stat().st_size,
        "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
    tmp = record_file.with_name(f".{record_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, record_file)


def _sha256_file(path: pathlib.Path, *, progress: bool, desc: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f, _bar(progress, desc, path.stat().st_size) as bar:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _digest_problem(
    actual: str, expected: str | None, recorded: str | None, record_file: pathlib.Path
) -> str | None:
    """Describes how ``actual`` disagrees with the expected/recorded digests."""
    if expected is not None and actual != expected:
        return f"expected {expected} (--sha256), got {actual}"
    if recorded is not None and actual != recorded:
        return f"expected {recorded} (recorded on first download in {record_file}), got {actual}"
    return None


def _verify_existing(
    archive: pathlib.Path,
    *,
    expected: str | None,
    recorded: str | None,
    record_file: pathlib.Path,
    progress: bool,
    consequence: str,
) -> str:
    """Checks an archive already on disk against the pinned and recorded digests; returns its SHA-256."""
    actual = _sha256_file(archive, progress=progress, desc=f"verify {archive.name}")
    problem = _digest_problem(actual, expected, recorded, record_file)
    if problem is not None:
        raise DownloadError(
            f"SHA-256 mismatch for {archive}: {problem}; {consequence} (the archive is "
            f"corrupt or was modified: delete it to download it again, and also delete "
            f"{record_file} if the upstream archive changed legitimately)"
        )
    return actual


# --------------------------------------------------------------------------- #
# HTTP download with resume
# --------------------------------------------------------------------------- #
def _bar(progress: bool, desc: str, total: int | None) -> tqdm:
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) if isinstance(exc, urllib.error.URLError) else exc
    if reason is None:
        reason = exc
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "timed out"
    text = str(reason).strip() or type(reason).__name__
    return " ".join(text.split())  # keep it on one line


def _manual_hint(url: str, archive: pathlib.Path, name: str) -> str:
    return (
        f"download {url} manually (e.g. with a web browser or `wget {url}`) and save it as "
        f"{archive}, then rerun `tfi2i download {name} --root {archive.parent}`: it is "
        "verified and extracted without network access"
    )


def _unreachable(url: str, archive: pathlib.Path, name: str, exc: BaseException) -> DownloadError:
    host = urllib.parse.urlsplit(url).netloc or url
    return DownloadError(
        f"could not reach {host} to download {name} ({_describe(exc)}); check your network "
        f"connection or {_manual_hint(url, archive, name)}"
    )


def _parse_content_range(value: str | None) -> tuple[int, int | None] | None:
    """Parses ``bytes START-END/TOTAL`` into ``(START, TOTAL or None)``."""
    if not value:
        return None
    match = _CONTENT_RANGE.fullmatch(value)
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _fetch(
    url: str,
    part: pathlib.Path,
    *,
    archive: pathlib.Path,
    name: str,
    progress: bool,
    timeout: float,
) -> None:
    """Downloads ``url`` into ``part``, resuming from its current size."""
    for _attempt in range(2):
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code == 416 and offset:
                    # Range not satisfiable: either the partial file is already
                    # complete, or it is longer than the archive (stale): restart.
                    match = _UNSATISFIED_RANGE.fullmatch(exc.headers.get("Content-Range", ""))
                    if match and int(match.group(1)) == offset:
                        return
                    part.unlink()
                    continue
                raise DownloadError(
                    f"server answered HTTP {exc.code} ({exc.reason}) for {url}; check the name "
                    f"and --base-url, or {_manual_hint(url, archive, name)}"
                ) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            raise _unreachable(url, archive, name, exc) from exc

        with response:
            status = getattr(response, "status", None)
            total: int | None
            if offset and status == 206:
                content_range = _parse_content_range(response.headers.get("Content-Range"))
                if content_range is None or content_range[0] != offset:
                    # A partial answer we cannot append safely: start over.
                    part.unlink()
                    continue
                mode = "ab"
                total = content_range[1]
                if total is None:
                    length = _int_header(response.headers.get("Content-Length"))
                    total = None if length is None else offset + length
            else:
                # No partial file, or the server ignored the Range header
                # (200 instead of 206): restart cleanly from this response.
                offset = 0
                mode = "wb"
                total = _int_header(response.headers.get("Content-Length"))
            _stream(response, part, mode=mode, offset=offset, total=total, url=url,
                    archive=archive, name=name, progress=progress)
        return
    raise DownloadError(  # pragma: no cover - needs a misbehaving server twice in a row
        f"server for {url} sent inconsistent partial content twice; {_manual_hint(url, archive, name)}"
    )


def _stream(
    response: Any,
    part: pathlib.Path,
    *,
    mode: str,
    offset: int,
    total: int | None,
    url: str,
    archive: pathlib.Path,
    name: str,
    progress: bool,
) -> None:
    """Copies ``response`` into ``part``; raises a resumable error on failure."""
    def interrupted(reason: str) -> DownloadError:
        size = part.stat().st_size if part.exists() else 0
        return DownloadError(
            f"download of {url} was interrupted after {size} of "
            f"{total if total is not None else 'unknown'} bytes ({reason}); the partial file "
            f"{part} was kept: rerun the same command to resume, or "
            f"{_manual_hint(url, archive, name)}"
        )

    with open(part, mode) as f, _bar(progress, f"download {archive.name}", total) as bar:
        bar.update(offset)
        try:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            f.flush()
            raise interrupted(_describe(exc)) from exc
    size = part.stat().st_size
    if total is not None and size != total:
        raise interrupted(f"connection closed early, expected {total} bytes")
    if size == 0:
        part.unlink()
        raise DownloadError(f"server sent an empty file for {url}; {_manual_hint(url, archive, name)}")


# --------------------------------------------------------------------------- #
# Safe, atomic extraction
# --------------------------------------------------------------------------- #
def _path_problem(path: str, what: str = "path") -> str | None:
    """Returns why an archive path may not be used, or None if it is fine."""
    if not path:
        return f"has an empty {what}"
    if "\x00" in path:
        return f"has a {what} containing a NUL byte"
    if path.startswith(("/", "\\")) or os.path.isabs(path) or os.path.splitdrive(path)[0]:
        return f"has an absolute {what} ({path!r})"
    if ".." in re.split(r"[/\\]", path):
        return f"has a {what} with a '..' component ({path!r})"
    return None


def _archive_key(path: str) -> str:
    """Normalizes an archive path ('./a//b/' -> 'a/b')."""
    return posixpath.normpath(path.replace("\\", "/"))


class _MemberChecker:
    """Validates tar members one by one, in archive order, before extraction."""

    def __init__(self) -> None:
        self.symlinks: set[str] = set()
        self.files: set[str] = set()

    def problem(self, member: tarfile.TarInfo) -> str | None:
        """Returns why ``member`` must not be extracted, or None if it is safe."""
        problem = _path_problem(member.name)
        if problem:
            return problem
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            return "is a device file, FIFO or other special file"
        key = _archive_key(member.name)
        if self._through_symlink(key):
            return "would be written through a symbolic link"
        if member.issym():
            target = member.linkname
            if (
                not target
                or "\x00" in target
                or target.startswith(("/", "\\"))
                or os.path.isabs(target)
                or os.path.splitdrive(target)[0]
            ):
                return f"is a symbolic link to an absolute or invalid path ({target!r})"
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(key), target))
            if resolved == ".." or resolved.startswith(("../", "/")):
                return f"is a symbolic link pointing outside the target folder ({target!r})"
            self.symlinks.add(key)
        elif member.islnk():
            target = member.linkname
            problem = _path_problem(target, "link target")
            if problem:
                return f"is a hard link that {problem}, pointing outside the target folder"
            target_key = _archive_key(target)
            if self._through_symlink(target_key) or target_key not in self.files:
                return (
                    f"is a hard link to {target!r}, which is not a regular file earlier in "
                    "the archive"
                )
            self.files.add(key)
        elif member.isreg():
            self.files.add(key)
        return None

    def _through_symlink(self, key: str) -> bool:
        parts = key.split("/")
        return any("/".join(parts[:i]) in self.symlinks for i in range(1, len(parts) + 1))


def _sanitize(member: tarfile.TarInfo) -> None:
    """Applies 'data'-filter-like metadata to a member (for Pythons without filters)."""
    if member.isdir():
        member.mode = 0o755
    elif member.isreg() or member.islnk():
        mode = (member.mode & 0o755) | 0o600
        if not mode & 0o100:
            mode &= ~0o111
        member.mode = mode
    member.uid = os.getuid() if hasattr(os, "getuid") else 0
    member.gid = os.getgid() if hasattr(os, "getgid") else 0
    member.uname = ""
    member.gname = ""


def _is_within(path: str, base: str) -> bool:
    try:
        return os.path.commonpath([path, base]) == base
    except ValueError:  # different drives on Windows
        return False


def _check_links_inside(folder: pathlib.Path, archive: pathlib.Path) -> None:
    """Resolves every symbolic link on disk; each must stay inside ``folder``."""
    base = os.path.realpath(folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        for entry in dirnames + filenames:
            path = os.path.join(dirpath, entry)
            if os.path.islink(path) and not _is_within(os.path.realpath(path), base):
                rel = os.path.relpath(path, folder)
                raise _RejectedArchive(
                    f"refusing to extract {archive}: symbolic link {rel!r} resolves outside "
                    "the data set folder; nothing was installed"
                )


def _pick_source(tmp: pathlib.Path, name: str) -> pathlib.Path:
    """Returns the folder to install: ``tmp/NAME`` if that is the only top entry."""
    entries = [
        p for p in tmp.iterdir()
        if p.name not in _JUNK_TOP_LEVEL and not p.name.startswith("._")
    ]
    if len(entries) == 1 and entries[0].name == name and entries[0].is_dir() \
            and not entries[0].is_symlink():
        return entries[0]
    return tmp


def _extract_members(archive: pathlib.Path, dest: pathlib.Path, *, progress: bool) -> None:
    try:
        tar = tarfile.open(archive, "r:gz")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise _RejectedArchive(f"cannot read archive {archive} ({_describe(exc)})") from exc
    except OSError as exc:  # not the archive's content (permissions, I/O): kept, not trusted
        raise DownloadError(f"cannot open archive {archive} ({_describe(exc)}); nothing was installed") from exc
    checker = _MemberChecker()
    with tar, tqdm(
        desc=f"extract {archive.name}",
        unit=" files",
        file=sys.stderr,
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    ) as bar:
        try:
            for member in tar:
                problem = checker.problem(member)
                if problem is not None:
                    raise _RejectedArchive(
                        f"refusing to extract {archive}: member {member.name!r} {problem}; "
                        "nothing was installed"
                    )
                if _USE_DATA_FILTER:
                    tar.extract(member, dest, filter="data")
                else:
                    _sanitize(member)
                    if hasattr(tarfile, "fully_trusted_filter"):
                        # Checked above; avoid the 3.12+ DeprecationWarning.
                        tar.extract(member, dest, filter="fully_trusted")
                    else:
                        tar.extract(member, dest)
                bar.update(1)
        except DownloadError:
            raise
        except tarfile.TarError as exc:  # includes tarfile.FilterError
            raise _RejectedArchive(
                f"refusing to extract {archive}: {_describe(exc)}; nothing was installed"
            ) from exc
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise _RejectedArchive(
                f"archive {archive} is corrupt or truncated ({_describe(exc)}); nothing was "
                "installed"
            ) from exc
        except OSError as exc:
            raise DownloadError(
                f"failed to extract {archive} ({_describe(exc)}); nothing was installed"
            ) from exc


def _extract(archive: pathlib.Path, target: pathlib.Path, *, name: str, progress: bool) -> None:
    """Extracts ``archive`` into a temporary sibling, then renames it to ``target``."""
    tmp = pathlib.Path(
        tempfile.mkdtemp(prefix=_EXTRACT_PREFIX.format(name=name), dir=target.parent)
    )
    try:
        _extract_members(archive, tmp, progress=progress)
        source = _pick_source(tmp, name)
        _check_links_inside(source, archive)
        if source == tmp:
            os.chmod(tmp, 0o755)  # mkdtemp creates it 0o700
        if os.path.lexists(target):
            raise DownloadError(
                f"{target} appeared while {archive} was being extracted (another process?); "
                "leaving it untouched"
            )
        os.rename(source, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
