"""The embedded store's tables: their columns, the migrations that make them (numbered by
`PRAGMA user_version`), and the statements that write a call: each an upsert, so a re-sent
start, end or completed call rewrites the same row."""

from __future__ import annotations

SCHEMA_VERSION = 3
START_COLUMNS = (
    "project_id",
    "id",
    "trace_id",
    "op_name",
    "display_name",
    "parent_id",
    "thread_id",
    "turn_id",
    "started_at",
    "attributes",
    "inputs",
    "otel_dump",
    "wb_user_id",
    "wb_run_id",
    "wb_run_step",
)
END_COLUMNS = ("ended_at", "exception", "output", "summary", "wb_run_step_end")
COMPLETE_COLUMNS = START_COLUMNS + END_COLUMNS
# COMPLETE_COLUMNS with those a call usually leaves NULL last: when a batch leaves all of
# those NULL, its rows lose them with one slice each (store.upserts), not a pick by index.
COMPLETE_COLUMNS_NULLS_LAST = (
    "project_id",
    "id",
    "trace_id",
    "op_name",
    "started_at",
    "attributes",
    "inputs",
    "ended_at",
    "summary",
    "output",
    "parent_id",
    "exception",
    "display_name",
    "thread_id",
    "turn_id",
    "wb_run_step",
    "wb_run_step_end",
    "wb_user_id",
    "wb_run_id",
    "otel_dump",
)
assert sorted(COMPLETE_COLUMNS_NULLS_LAST) == sorted(COMPLETE_COLUMNS)
# Every column of `calls`, in the order a query SELECTs them (store.render unpacks a row so).
CALL_COLUMNS = (*COMPLETE_COLUMNS, "deleted_at")

# Each entry migrates user_version i → i + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE calls (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            trace_id TEXT NOT NULL,
            op_name TEXT NOT NULL,
            display_name TEXT,
            parent_id TEXT,
            thread_id TEXT,
            turn_id TEXT,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            attributes TEXT NOT NULL,
            inputs TEXT NOT NULL,
            output TEXT,
            summary TEXT,
            exception TEXT,
            otel_dump TEXT,
            wb_user_id TEXT,
            wb_run_id TEXT,
            wb_run_step INTEGER,
            wb_run_step_end INTEGER,
            deleted_at TEXT,
            PRIMARY KEY (project_id, id)
        )""",
        "CREATE INDEX calls_project_started ON calls (project_id, started_at)",
        "CREATE INDEX calls_project_trace ON calls (project_id, trace_id)",
        "CREATE INDEX calls_project_parent ON calls (project_id, parent_id)",
        """CREATE TABLE pending_ends (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            exception TEXT,
            output TEXT,
            summary TEXT,
            wb_run_step_end INTEGER,
            PRIMARY KEY (project_id, id)
        )""",
    ),
    # 2: what the weave SDK publishes beside its calls (tracecli.store.objects).
    (
        """CREATE TABLE objects (
            project_id TEXT NOT NULL,
            object_id TEXT NOT NULL,
            digest TEXT NOT NULL,
            kind TEXT NOT NULL,
            base_object_class TEXT,
            val TEXT NOT NULL,
            wb_user_id TEXT,
            created_at TEXT NOT NULL,
            version_index INTEGER NOT NULL,
            PRIMARY KEY (project_id, object_id, digest)
        )""",
        """CREATE TABLE table_rows (
            project_id TEXT NOT NULL, digest TEXT NOT NULL, val TEXT NOT NULL,
            PRIMARY KEY (project_id, digest)
        )""",
        """CREATE TABLE tables (
            project_id TEXT NOT NULL, digest TEXT NOT NULL, row_digests TEXT NOT NULL,
            PRIMARY KEY (project_id, digest)
        )""",
        """CREATE TABLE files (
            project_id TEXT NOT NULL, digest TEXT NOT NULL, val BLOB NOT NULL,
            PRIMARY KEY (project_id, digest)
        )""",
    ),
    # 3: feedback on calls (the weave SDK's call.feedback), an object's leaf class (what
    # get_evaluations asks for), and an index for deleting a call with its descendants.
    (
        """CREATE TABLE feedback (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            weave_ref TEXT NOT NULL,
            wb_user_id TEXT,
            creator TEXT,
            created_at TEXT NOT NULL,
            feedback_type TEXT NOT NULL,
            payload TEXT NOT NULL,
            annotation_ref TEXT,
            runnable_ref TEXT,
            call_ref TEXT,
            trigger_ref TEXT,
            queue_id TEXT,
            PRIMARY KEY (project_id, id)
        )""",
        "CREATE INDEX feedback_project_ref ON feedback (project_id, weave_ref)",
        "ALTER TABLE objects ADD COLUMN leaf_object_class TEXT",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION


CALL_KEY = ("project_id", "id")
PEND_COLUMNS = ("project_id", "id", *END_COLUMNS)
SQL_END = (
    f"UPDATE calls SET {', '.join(f'{c} = ?' for c in END_COLUMNS)} WHERE project_id = ? AND id = ?"
)
SQL_EXISTING = (
    "SELECT id FROM calls WHERE project_id = ? AND id IN (SELECT value FROM json_each(?))"
)
SQL_MERGE = (
    f"UPDATE calls SET {', '.join(f'{c} = p.{c}' for c in END_COLUMNS)} "
    "FROM pending_ends AS p WHERE p.project_id = ? AND p.id IN (SELECT value FROM json_each(?)) "
    "AND calls.project_id = p.project_id AND calls.id = p.id"
)
SQL_UNPEND = (
    "DELETE FROM pending_ends WHERE project_id = ? AND id IN (SELECT value FROM json_each(?))"
)

# The store's identity, beside the numbered schema (so an older tracecli still opens the
# file): a random id made with the store, or on the first ask of a file from before it.
# INSERT OR IGNORE under a write transaction: two processes making it at once end with one.
STORE_META_TABLE = (
    "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) "
    "WITHOUT ROWID"
)
SQL_NEW_STORE_ID = (
    "INSERT OR IGNORE INTO store_meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))))"
)
SQL_STORE_ID = "SELECT value FROM store_meta WHERE key = 'store_id'"
# A journal's mark (see tracecli.journal.store_marks): one row per journal, 'mark:<id>'.
SQL_MARK = "SELECT value FROM store_meta WHERE key = ?"
SQL_SET_MARK = "INSERT OR REPLACE INTO store_meta (key, value) VALUES (?, ?)"
