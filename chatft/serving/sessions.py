"""Dialogue sessions for ``POST /chat/{session_id}``: a small store interface and its SQLite implementation.

A session is a JSON object (the tracker's ``{"intent", "frame"}`` plus the turn count). The server needs three
operations, so the interface is three methods plus housekeeping:

* ``update(session_id, fn)``: read the session (``None`` when new or expired), compute the new one with ``fn``
  and write it, **atomically** (two workers answering turns of one session never lose a turn);
* ``delete(session_id)``: reset one dialogue;
* ``purge_expired()`` and ``close()`` (flush everything to disk).

The calls are synchronous and may wait (SQLite waits up to 30 s for another worker's write lock): the server
makes every call on one thread of its own, never on its event loop, and :func:`purge_periodically` runs
``purge_expired`` for as long as the server runs, whatever one purge raises.

:class:`SQLiteSessionStore` keeps sessions in one file with the standard library's ``sqlite3`` in WAL mode, so
several worker processes on one machine share it and a restarted server continues every dialogue. A session
idle for longer than ``ttl_s`` is expired: it reads as new and is deleted by the next purge.

Replacing it with Redis (several machines): implement the same four methods with one key per session,
``SET chatft:session:<id> <json> EX <ttl_s>`` (Redis expires idle sessions itself, ``purge_expired`` returns 0),
``update`` as ``WATCH`` / ``GET`` / ``MULTI`` / ``SET`` / ``EXEC`` retried on conflict (or a Lua script), and
pass the instance to :func:`chatft.serving.app.create_app` instead of the SQLite store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from chatft.core.errors import ConfigError

__all__ = ["SessionStore", "SessionStoreError", "SQLiteSessionStore", "purge_periodically"]


class SessionStoreError(Exception):
    """A session could not be read or written (a full or locked disk, a file that went away). The server
    answers 503 for that request and keeps serving: the store is usable again once the cause is gone."""


class SessionStore(Protocol):
    """What the server needs from a session store (see the module docstring)."""

    def update(self, session_id: str, fn: Callable[[dict | None], dict]) -> dict: ...

    def get(self, session_id: str) -> dict | None: ...

    def delete(self, session_id: str) -> bool: ...

    def purge_expired(self) -> int: ...

    def close(self) -> None: ...


class SQLiteSessionStore:
    """Sessions in an SQLite file (WAL mode), shared by the worker processes of one machine.

    Args:
        path: The database file (created if missing).
        ttl_s: Idle time after which a session expires (seconds).
        clock: Wall-clock seconds (tests pass a fake one).
    """

    def __init__(
        self, path: str | Path, ttl_s: float = 1800.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path).expanduser()
        self.ttl_s = float(ttl_s)
        self.clock = clock
        db = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE takes the write lock before reading).
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed turn survives a killed process (not a power cut), without an
            # fsync per turn.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS sessions "
                "(id TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL)"
            )
        except (OSError, sqlite3.Error) as err:
            if db is not None:
                db.close()
            reason = str(err)
            if (
                isinstance(err, OSError) and err.strerror
            ):  # "File exists: /srv/x" (the part of the path at fault)
                reason = f"{err.strerror}: {err.filename}" if err.filename else err.strerror
            raise ConfigError(
                f"--sessions {self.path}: cannot open or create the session database ({reason}); "
                "choose a writable file"
            ) from None
        self._db = db

    def _live(self, row) -> dict | None:
        if row is None or row[1] < self.clock() - self.ttl_s:
            return None
        return json.loads(row[0])

    def get(self, session_id: str) -> dict | None:
        row = self._db.execute("SELECT state, updated FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return self._live(row)

    def update(self, session_id: str, fn: Callable[[dict | None], dict]) -> dict:
        """``fn``'s new session, written atomically. Whatever fails (``fn``, the write, or the COMMIT itself on
        a full or locked disk) rolls the transaction back: a COMMIT that failed left it open, and every later
        ``BEGIN`` then failed too ("cannot start a transaction within a transaction") until a restart."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT state, updated FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            new = fn(self._live(row))
            self._db.execute(
                "INSERT OR REPLACE INTO sessions (id, state, updated) VALUES (?, ?, ?)",
                (session_id, json.dumps(new, ensure_ascii=False), self.clock()),
            )
            self._db.execute("COMMIT")
        except BaseException as err:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the first error is the one worth reporting
                    self._db.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise SessionStoreError(f"{self.path}: {err}") from err
            raise
        return new

    def delete(self, session_id: str) -> bool:
        try:
            return self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0
        except sqlite3.Error as err:
            raise SessionStoreError(f"{self.path}: {err}") from err

    def purge_expired(self) -> int:
        cutoff = self.clock() - self.ttl_s
        return self._db.execute("DELETE FROM sessions WHERE updated < ?", (cutoff,)).rowcount

    def close(self) -> None:
        """Fold the WAL into the database file and close it (nothing is left only in the log)."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()


async def purge_periodically(purge: Callable[[], Awaitable[int]], interval_s: float) -> None:
    """Call ``purge`` every ``interval_s`` seconds until cancelled.

    A purge that raises (a locked or full disk, a store that went away) is reported as one warning line on
    stderr and tried again next time: sessions keep expiring once the cause is gone, instead of the task
    dying silently on its first error.
    """
    while True:
        await asyncio.sleep(interval_s)
        try:
            await purge()
        except Exception as err:  # noqa: BLE001 - any failure: report it, and keep purging
            print(
                f"chatft: warning: purging expired sessions failed ({type(err).__name__}: {err}); "
                f"trying again in {interval_s:g} s",
                file=sys.stderr,
                flush=True,
            )
