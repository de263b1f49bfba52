"""Test hooks for server processes, active only when tests/test_serve.py puts this folder on PYTHONPATH.

Python imports ``sitecustomize`` at start-up, before ``chatft``: the server process then runs unchanged except
for what the environment asks for, which makes states that are otherwise a matter of timing deterministic:

* ``CHATFT_TEST_LOAD_GATE=PATH``: loading the model waits until the file PATH exists (at most 60 s), so a
  test sees the server before it is ready for as long as it needs;
* ``CHATFT_TEST_PURGE_FAILS=N``: the first N purges of expired sessions raise ``OSError``;
* ``CHATFT_TEST_COMMIT_FAILS=N``: the first N COMMITs of a session update fail ("not authorized", an SQLite
  authorizer), as a COMMIT on a full or locked disk does, leaving the transaction open;
* ``CHATFT_TEST_RESOLVE_HOLD=PATH``: resolving entity values waits while the file PATH exists (at most 60 s),
  as a slow date parse would;
* ``CHATFT_TEST_READY_DIR=DIR``: each worker process creates ``DIR/<pid>`` the moment its app is ready (a test
  of ``--workers N`` waits for N files: ``GET /ready`` only ever says that the worker it reached is ready);
* ``CHATFT_TEST_SUBMIT_GATES=DIR``: once ``DIR/armed`` exists, the k-th call to the batcher's ``submit`` (a
  ``/chat`` tracker turn that has read its session and is about to run the model) creates ``DIR/waiting-k`` and
  waits, on the event loop, until ``DIR/go-k`` exists (at most 60 s); so a test orders concurrent turns of one
  session exactly as it wants (which one reads, which one writes first).
"""

import os
import time

if os.environ.get("CHATFT_TEST_LOAD_GATE"):
    import chatft.serving.loading as _loading

    _load_model = _loading.load_model

    def _gated_load_model(settings):
        gate, deadline = os.environ["CHATFT_TEST_LOAD_GATE"], time.monotonic() + 60
        while not os.path.exists(gate):
            if time.monotonic() > deadline:
                raise TimeoutError(f"test gate {gate} never opened")
            time.sleep(0.01)
        return _load_model(settings)

    _loading.load_model = _gated_load_model

if os.environ.get("CHATFT_TEST_PURGE_FAILS"):
    from chatft.serving.sessions import SQLiteSessionStore

    _purge, _failures = SQLiteSessionStore.purge_expired, [int(os.environ["CHATFT_TEST_PURGE_FAILS"])]

    def _failing_purge(self):
        if _failures[0] > 0:
            _failures[0] -= 1
            raise OSError("disk I/O error (test hook)")
        return _purge(self)

    SQLiteSessionStore.purge_expired = _failing_purge

if os.environ.get("CHATFT_TEST_COMMIT_FAILS"):
    import sqlite3

    from chatft.serving.sessions import SQLiteSessionStore

    _init, _commits = SQLiteSessionStore.__init__, [int(os.environ["CHATFT_TEST_COMMIT_FAILS"])]

    def _deny_commits(action, arg1, *_):
        if action == sqlite3.SQLITE_TRANSACTION and arg1 == "COMMIT" and _commits[0] > 0:
            _commits[0] -= 1
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    def _init_failing_commits(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        self._db.set_authorizer(_deny_commits)

    SQLiteSessionStore.__init__ = _init_failing_commits

if os.environ.get("CHATFT_TEST_RESOLVE_HOLD"):
    from chatft.core.entities import EntityResolver

    _resolve_all = EntityResolver.resolve_all

    def _held_resolve_all(self, *args, **kwargs):
        hold, deadline = os.environ["CHATFT_TEST_RESOLVE_HOLD"], time.monotonic() + 60
        while os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.01)
        return _resolve_all(self, *args, **kwargs)

    EntityResolver.resolve_all = _held_resolve_all

if os.environ.get("CHATFT_TEST_READY_DIR"):
    import chatft.serving.app as _app

    def _set_ready(self, value):
        self.__dict__["_ready"] = value
        if value:
            open(os.path.join(os.environ["CHATFT_TEST_READY_DIR"], str(os.getpid())), "w").close()

    _app._State.ready = property(lambda self: self.__dict__["_ready"], _set_ready)

if os.environ.get("CHATFT_TEST_SUBMIT_GATES"):
    import asyncio

    from chatft.serving.batcher import DynamicBatcher

    _submit, _gates, _submitted = DynamicBatcher.submit, os.environ["CHATFT_TEST_SUBMIT_GATES"], [0]

    async def _gated_submit(self, texts):
        if os.path.exists(os.path.join(_gates, "armed")):
            _submitted[0] += 1
            k = _submitted[0]
            open(os.path.join(_gates, f"waiting-{k}"), "w").close()
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(_gates, f"go-{k}")):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"test gate go-{k} never opened")
                await asyncio.sleep(0.01)
        return await _submit(self, texts)

    DynamicBatcher.submit = _gated_submit
