"""Action records (and plan records) of a local store in one SQLite file (``actions.sqlite``):
the "sqlite" :class:`~.record_store.RecordStore`.

Why: creating one small file per record (temp file + rename) costs 0.5-0.9 ms on ordinary
filesystems, while an autocommitted INSERT in WAL mode costs ~35 us and a batched one a few us
(docs/store.md). One connection per (process, thread): connections live in a
``threading.local`` and are reopened when the pid changed, so a Store inherited through
``fork`` never uses its parent's connection. A put commits on its own (visible as soon as its
task is done) unless the caller is inside :meth:`ActionDb.deferred_puts`, where a flusher thread
commits batches every 20 ms; either way a SIGKILL loses nothing already committed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator

DB_NAME = "actions.sqlite"
BUSY_TIMEOUT_S = 60.0
WAL_AUTOCHECKPOINT_PAGES = 10_000
WAL_SIZE_LIMIT = 64 << 20

CREATE_SQL = (
    "CREATE TABLE IF NOT EXISTS actions("
    "key TEXT PRIMARY KEY, record BLOB NOT NULL, written REAL NOT NULL, used REAL"
    ") WITHOUT ROWID"
)
#: Plan records (see plans.py): a replayable copy of a whole run's records, one row per plan.
TABLES_SQL = "SELECT name FROM sqlite_master WHERE type = 'table'"
#: Tables every record database has from creation (see create_db)
REQUIRED_TABLES = frozenset({"actions", "plans"})
CREATE_PLANS_SQL = (
    "CREATE TABLE IF NOT EXISTS plans(digest TEXT PRIMARY KEY, record BLOB NOT NULL, "
    "written REAL NOT NULL)"
)
#: Which plans each pipeline name used, and when (the newest is the hint for changed plans).
CREATE_LATEST_SQL = (
    "CREATE TABLE IF NOT EXISTS latest_plans(name TEXT NOT NULL, digest TEXT NOT NULL, "
    "used REAL NOT NULL, PRIMARY KEY(name, digest)) WITHOUT ROWID"
)
CREATE_LATEST_INDEXES = (
    "CREATE INDEX IF NOT EXISTS latest_by_use ON latest_plans(name, used)",
    "CREATE INDEX IF NOT EXISTS latest_by_digest ON latest_plans(digest)",
)
MARK_RECENT_SQL = "INSERT OR REPLACE INTO latest_plans(name, digest, used) VALUES (?, ?, ?)"
RECENT_SQL = "SELECT digest FROM latest_plans WHERE name = ? ORDER BY used DESC LIMIT -1 OFFSET ?"
UNLIST_SQL = "DELETE FROM latest_plans WHERE name = ? AND digest = ?"
LISTED_SQL = "SELECT 1 FROM latest_plans WHERE digest = ? LIMIT 1"
DELETE_PLAN_SQL = "DELETE FROM plans WHERE digest = ?"
DROP_LATEST_SQL = "DELETE FROM latest_plans"
GET_PLAN_SQL = "SELECT record FROM plans WHERE digest = ?"
PUT_PLAN_SQL = "INSERT OR REPLACE INTO plans(digest, record, written) VALUES (?, ?, ?)"
DROP_PLANS_SQL = "DELETE FROM plans"
COUNT_PLANS_SQL = "SELECT count(*), coalesce(sum(length(record)), 0) FROM plans"
GET_SQL = "SELECT record FROM actions WHERE key = ?"
PUT_SQL = "INSERT OR REPLACE INTO actions(key, record, written, used) VALUES (?, ?, ?, NULL)"
TOUCH_SQL = "UPDATE actions SET used = ? WHERE key = ?"
DELETE_SQL = "DELETE FROM actions WHERE key = ?"
KEYS_SQL = "SELECT key FROM actions"
ENTRIES_SQL = "SELECT key, length(record), max(written, coalesce(used, 0.0)) FROM actions"
COUNT_SQL = "SELECT count(*), coalesce(sum(length(record)), 0) FROM actions"

#: Connections inherited through fork are never used nor closed in the child (closing one there
#: could disturb the parent's locks); they are parked here for the child's lifetime.
_ABANDONED: list[sqlite3.Connection] = []

#: This process's pid, refreshed in fork children (cheaper than an ``os.getpid()`` syscall on
#: the warm cache-hit path).
_PID = os.getpid()


def _after_fork_in_child() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)


def create_db(path: str, tmp_path: str) -> None:
    """Create an initialised database at ``path`` unless one exists.

    Built under ``tmp_path`` (WAL mode set, table created) and published with ``os.link``, which
    never replaces: concurrent creators agree on one file and nobody sees a half-made one.
    """
    conn = sqlite3.connect(tmp_path, isolation_level=None)
    try:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # gc can return freed pages cheaply
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(CREATE_SQL)
        conn.execute(CREATE_PLANS_SQL)
        conn.execute(CREATE_LATEST_SQL)
        for sql in CREATE_LATEST_INDEXES:
            conn.execute(sql)
    finally:
        conn.close()
    try:
        os.link(tmp_path, path)
    except FileExistsError:
        pass
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path + suffix)


#: How long a deferred record may wait before it is committed (see ActionDb.deferred_puts).
DEFER_WINDOW_S = 0.02


class SqliteRecords:
    """key (hex) -> encoded record bytes, with write and last-use times for gc."""

    layout = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        # write-behind state (deferred_puts): records waiting for the flusher's next commit
        self._pending: dict[str, tuple[bytes, float]] = {}
        self._flushing: dict[str, tuple[bytes, float]] = {}  # being committed right now
        self._pending_lock = threading.Lock()
        self._defer_depth = 0
        self._defer_pid = 0
        self._flusher: threading.Thread | None = None
        self._stop_flusher = threading.Event()
        self._defer_lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqliteRecords({self.path!r})"

    def _open(self) -> sqlite3.Connection:
        local = self._local
        old = getattr(local, "conn", None)
        if old is not None:
            _ABANDONED.append(old)  # opened by the parent before a fork
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints (which fsync) every ~40 MB of WAL instead of ~4 MB: ~8 us less per put
        # on the development VM; the WAL is cut back to 64 MiB after each checkpoint.
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        local.conn = conn
        local.pid = _PID
        return conn

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use, and again after a fork)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != _PID:
            conn = self._open()
        return conn

    def get(self, key: str) -> bytes | None:
        if self._pending or self._flushing:  # put by this process, not yet committed
            with self._pending_lock:  # both maps as one snapshot (a batch moves between them)
                item = self._pending.get(key) or self._flushing.get(key)
            if item is not None:
                return item[0]
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != _PID:
            conn = self._open()
        try:
            row = conn.execute(GET_SQL, (key,)).fetchone()
        except sqlite3.OperationalError:
            raise  # locked or busy: not damage
        except sqlite3.DatabaseError:  # damaged while open: a miss (the next open repairs it)
            return None
        return None if row is None else row[0]

    def probe(self) -> None:
        """Raise ``sqlite3.DatabaseError`` now if the file is not a usable record database."""
        conn = self.conn()
        tables = {row[0] for row in conn.execute(TABLES_SQL)}
        missing = sorted(REQUIRED_TABLES - tables)
        if missing:  # a valid but empty database (truncated, or created on a full disk)
            raise sqlite3.DatabaseError(f"no table {', '.join(missing)} in the record database")
        conn.execute("SELECT count(*) FROM actions WHERE key = ''").fetchone()
        conn.execute("SELECT count(*) FROM plans WHERE digest = ''").fetchone()

    def put(self, key: str, data: bytes) -> None:
        """Insert or replace (last writer wins, as ``os.replace`` did); committed on return,
        or within :data:`DEFER_WINDOW_S` inside :meth:`deferred_puts`."""
        if self._defer_depth and self._defer_pid == _PID:
            with self._defer_lock:  # the block's exit takes this lock before its final flush
                if self._defer_depth:
                    with self._pending_lock:
                        self._pending[key] = (data, time.time())
                    if self._flusher is None:  # the first deferred put starts it: an all-hit
                        self._stop_flusher.clear()  # run never does
                        self._flusher = threading.Thread(
                            target=self._flush_loop, name="physflow-records", daemon=True
                        )
                        self._flusher.start()
                    return
        self.conn().execute(PUT_SQL, (key, data, time.time()))

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Commit this process's puts in batches: a flusher thread commits what arrived in the
        last :data:`DEFER_WINDOW_S` in one transaction, and leaving the block commits the rest.

        Why: an autocommitted put costs ~35 us (one WAL append and lock cycle per record), a
        batched one a few us. The runner uses this for executors that run stages in its own
        process. The price: other processes see a record up to one window later, and a process
        killed with SIGKILL loses at most the last window's records (their nodes run again next
        time; nothing wrong is ever served). Puts from forked children are never deferred.
        """
        with self._defer_lock:
            if self._defer_pid != _PID:  # state inherited through fork belongs to the parent
                self._defer_depth, self._defer_pid, self._flusher = 0, _PID, None
                self._pending, self._flushing = {}, {}
            self._defer_depth += 1  # runs may nest, or run in threads on one Store
        try:
            yield
        finally:
            with self._defer_lock:
                self._defer_depth -= 1
                flusher = self._flusher if self._defer_depth == 0 else None
                if flusher is not None:
                    self._stop_flusher.set()
                    flusher.join()
                    self._flusher = None
            try:
                self.flush()  # every block leaves with its records committed
            except sqlite3.Error as exc:
                with self._pending_lock:
                    self._pending = {}
                raise OSError(
                    f"could not record results in {self.path}: {exc}. The stages ran but "
                    "their results are not cached; fix the store (disk space, permissions) "
                    "and run again."
                ) from exc

    def _flush_loop(self) -> None:
        try:
            while not self._stop_flusher.wait(DEFER_WINDOW_S):
                with contextlib.suppress(sqlite3.Error):  # kept pending: the final flush
                    self.flush()  # retries and raises
        finally:
            self.close()  # this thread's connection

    def flush(self) -> None:
        """Commit every pending record in one transaction (kept pending if that fails)."""
        if not self._pending:
            return
        with self._flush_lock:  # one batch at a time: ``_flushing`` stays readable by get()
            self._flush_batch()

    def _flush_batch(self) -> None:
        with self._pending_lock:
            batch, self._pending = self._pending, {}
            self._flushing = batch
        if not batch:
            return
        conn = self.conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(PUT_SQL, ((k, d, w) for k, (d, w) in batch.items()))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except BaseException:
            with self._pending_lock:  # newer puts of the same keys win
                self._pending = {**batch, **self._pending}
                self._flushing = {}
            raise
        with self._pending_lock:
            self._flushing = {}

    def touch(self, key: str) -> None:
        self.conn().execute(TOUCH_SQL, (time.time(), key))

    def delete(self, keys: Iterable[str]) -> None:
        """Delete in one transaction (gc), then return the freed pages to the filesystem."""
        keys = list(keys)
        if self._pending:
            with self._pending_lock:
                for key in keys:
                    self._pending.pop(key, None)
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(DELETE_SQL, ((k,) for k in keys))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self.compact()

    def compact(self) -> None:
        """Return freed pages to the filesystem and fold the WAL back into the database (best
        effort: with readers active the WAL is truncated by a later checkpoint)."""
        conn = self.conn()
        with contextlib.suppress(sqlite3.OperationalError):
            # executescript steps the pragma to completion (execute() frees a single page)
            conn.executescript("PRAGMA incremental_vacuum;")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def get_plan(self, key: str) -> bytes | None:
        row = self.conn().execute(GET_PLAN_SQL, (key,)).fetchone()
        return None if row is None else row[0]

    def put_plan(self, key: str, data: bytes) -> None:
        self.conn().execute(PUT_PLAN_SQL, (key, data, time.time()))

    def delete_plans(self, keys: Iterable[str]) -> None:
        self.conn().executemany(DELETE_PLAN_SQL, ((k,) for k in keys))

    def drop_plans(self) -> None:
        """Delete every plan record and every name's list."""
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(DROP_PLANS_SQL)
            conn.execute(DROP_LATEST_SQL)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def mark_recent(self, name: str, key: str) -> None:
        self.conn().execute(MARK_RECENT_SQL, (name, key, time.time()))

    def recent(self, name: str, skip: int = 0) -> list[str]:
        return [row[0] for row in self.conn().execute(RECENT_SQL, (name, skip)).fetchall()]

    def unlist(self, name: str, keys: Iterable[str]) -> None:
        self.conn().executemany(UNLIST_SQL, ((name, k) for k in keys))

    def listed(self, keys: Iterable[str]) -> set[str]:
        conn = self.conn()
        return {k for k in keys if conn.execute(LISTED_SQL, (k,)).fetchone() is not None}

    def plan_stats(self) -> tuple[int, int]:
        """(plan records, bytes of their data)."""
        n, size = self.conn().execute(COUNT_PLANS_SQL).fetchone()
        return int(n), int(size)

    def list_keys(self) -> list[str]:
        return [row[0] for row in self.conn().execute(KEYS_SQL).fetchall()]

    def entries(self) -> dict[str, tuple[int, float]]:
        """key -> (record bytes, last write or touch time), for gc."""
        return {k: (size, when) for k, size, when in self.conn().execute(ENTRIES_SQL).fetchall()}

    def stats(self) -> tuple[int, int]:
        """(records, bytes on disk: the database plus its write-ahead log; the ``-shm`` index is
        a transient memory map, removed with the last connection)."""
        n = self.conn().execute(COUNT_SQL).fetchone()[0]
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(self.path + suffix).st_size
        return int(n), total

    def close(self) -> None:
        """Close this thread's connection (if this process opened it)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == _PID:
            conn.close()
        local.conn = None
