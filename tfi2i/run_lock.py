"""One training process per run directory: the ``W/lock`` file.

`fit` holds `RunLock` on its run directory from start to end, so a second
trainer on the same ``--workdir`` stops at once with a message naming the
holder, instead of mixing its steps, checkpoints and ``config.json`` into the
first one's. The lock file holds the holder's pid, host and start time as
JSON; on Linux the holder also keeps an ``flock`` on it (released by the
kernel even after ``kill -9``), which closes the race between two processes
starting together.

A lock whose holder is gone (same host, pid not running, or running but a
different process than the one that wrote it) is stale: it is taken over
with a warning. A lock written on another host cannot be checked from here:
it is refused with a message saying how to remove it. Readers (``tfi2i
evaluate``, ``export``, ``translate``) never take the lock.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import os
import socket

try:
    import fcntl
except ImportError:  # not POSIX: the pid/host record alone
    fcntl = None

log = logging.getLogger("tfi2i")

#: The lock's file name inside the run directory.
LOCK_NAME = "lock"


class RunLockError(RuntimeError):
    """The run directory is held by another training process."""


class RunLock:
    """Exclusive training lock on ``workdir`` (a context manager; creates the folder).

    Raises `RunLockError` from `acquire` when another live process holds it.
    """

    def __init__(self, workdir):
        self.workdir = os.fspath(workdir)
        self.path = os.path.join(self.workdir, LOCK_NAME)
        self._fd = None
        self._created_dir = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False

    def acquire(self):
        """Takes the lock (taking over a stale one with a warning); returns self."""
        if not os.path.isdir(self.workdir):
            os.makedirs(self.workdir, exist_ok=True)
            self._created_dir = True
        for _ in range(5):  # another process may remove or replace the file between open and flock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not _flock(fd):
                    raise RunLockError(held_message(self.workdir, _read(fd)))
                if not _same_file(fd, self.path):
                    continue  # released (unlinked) by its holder meanwhile: lock the new file
                holder = _read(fd)
                if holder is not None:
                    self._take_over(holder)
                _write(fd, own_record())
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            return self
        raise RunLockError(f"cannot lock {self.workdir}: {self.path} keeps changing; is another process training "
                           "into it?")

    def release(self):
        """Removes the lock file (and the run folder when `acquire` created it and it stayed empty)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if _same_file(self._fd, self.path):
                os.unlink(self.path)  # still under flock: nobody can take the file we remove
        os.close(self._fd)
        self._fd = None
        if self._created_dir:
            with contextlib.suppress(OSError):
                os.rmdir(self.workdir)  # only when empty (e.g. a --resume that found no run)

    def _take_over(self, holder):
        """Warns about a stale lock, or raises `RunLockError` when its holder may still be running."""
        if holder.get("host") != socket.gethostname() and holder.get("host") is not None:
            raise RunLockError(held_message(self.workdir, holder, other_host=True))
        if holder_alive(holder):
            raise RunLockError(held_message(self.workdir, holder))
        log.warning("taking over the stale lock of %s (%s, which is no longer running)", self.workdir,
                    describe(holder))


def own_record():
    """This process's lock record: pid, host, start time (and its kernel start tick when known)."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "start_ticks": _start_ticks(os.getpid()),
            "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def holder_alive(holder):
    """True when the process a lock record names (on this host) may still be running."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    ticks = holder.get("start_ticks")
    now = _start_ticks(pid)
    return ticks is None or now is None or ticks == now  # a different start: the pid was reused


def describe(holder):
    """``pid 123 on host h since 2024-...`` of a lock record."""
    if "raw" in holder:
        return f"an unreadable record {holder['raw']!r}"
    since = f" since {holder['since']}" if holder.get("since") else ""
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}{since}"


def held_message(workdir, holder, other_host=False):
    """The refusal: which directory, who holds it, what to do."""
    path = os.path.join(workdir, LOCK_NAME)
    if holder is None:
        holder = {}
    who = describe(holder)
    if other_host:
        return (f"{workdir} is locked by another training process ({who}); a lock from another host cannot be "
                f"checked from here: if no process on {holder.get('host')} trains into it any more, delete {path} "
                "and start again, or choose another --workdir")
    return (f"{workdir} is in use by another training process ({who}); wait for it to finish or stop it, "
            "or choose another --workdir")


def _flock(fd):
    """``flock(LOCK_EX | LOCK_NB)``: False when another process holds it (True where flock is unsupported)."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        log.debug("flock unsupported on %s (%s); relying on the pid/host record", fd, exc)
    return True


def _same_file(fd, path):
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _read(fd):
    """The lock record in ``fd`` (None when empty; a placeholder when unreadable)."""
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    if not raw.strip():
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    return record if isinstance(record, dict) else {"pid": None, "host": None, "raw": raw[:200].decode(errors="replace")}


def _write(fd, record):
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(record) + "\n").encode())
    os.fsync(fd)


def _start_ticks(pid):
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


__all__ = ["LOCK_NAME", "RunLock", "RunLockError", "describe", "held_message", "holder_alive", "own_record"]
