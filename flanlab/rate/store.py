"""The SQLite store behind `flanlab rate`: raters, their sessions, and their ratings.

Durability: the database runs in WAL mode with synchronous=FULL and autocommit, so every rating is on disk
when the POST that made it returns; a crash or restart loses nothing. One connection is shared by the
server's threads behind a lock (SQLite serialises writers anyway; ratings are tiny).

Tables
  meta      key/value: the schema version and the server secret. The secret (random, made once when the
            database is created) keys the HMACs that decide each rater's pair order, the left/right side of
            each pair and the opaque item tokens in the page; so those decisions are fixed per rater and pair,
            survive restarts, and are never sent to the browser.
  raters    one row per name (case-insensitive).
  sessions  sha256 of the session cookie -> rater, with the session's CSRF token.
  ratings   one row per (rater, prompt, model pair): which model was shown left and right, the choice
            (left | right | tie) and the winning model (NULL for a tie). Model pairs are stored sorted
            (model_a < model_b), so the same pair is the same row whatever side each model was shown on.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path

SCHEMA_VERSION = "1"
CHOICES = ("left", "right", "tie")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raters (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY,
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    csrf TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY,
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    prompt_id TEXT NOT NULL,
    category TEXT NOT NULL,
    variant TEXT NOT NULL,
    model_a TEXT NOT NULL,
    model_b TEXT NOT NULL,
    left_model TEXT NOT NULL,
    right_model TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie')),
    winner TEXT,
    created TEXT NOT NULL,
    CHECK (model_a < model_b),
    UNIQUE (rater_id, prompt_id, model_a, model_b)
);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Store:
    """The ratings database at `path` (created with its schema when absent, unless readonly)."""

    def __init__(self, path: str | os.PathLike, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            if not self.path.is_file():
                raise FileNotFoundError(f"no ratings database at {self.path} (rate some pairs first: flanlab rate DIR)")
            self.conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                        check_same_thread=False, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.row_factory = sqlite3.Row
        self.lock = threading.Lock()
        if not readonly:
            with self.lock:
                self.conn.executescript(SCHEMA)
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('secret', ?)", (secrets.token_hex(32),))
        version = self._meta("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"{self.path}: ratings database schema version {version!r}, expected {SCHEMA_VERSION!r}")

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def _meta(self, key: str) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def secret(self) -> bytes:
        return bytes.fromhex(self._meta("secret"))

    # ------------------------------------------------------------------------------------------------------
    # raters and sessions

    def rater(self, name: str) -> int:
        """The id of the rater called `name` (case-insensitive), created when new."""
        with self.lock:
            self.conn.execute("INSERT OR IGNORE INTO raters (name, created) VALUES (?, ?)", (name, _now()))
            return self.conn.execute("SELECT id FROM raters WHERE name = ?", (name,)).fetchone()["id"]

    def rater_name(self, rater_id: int) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT name FROM raters WHERE id = ?", (rater_id,)).fetchone()
        return row["name"] if row else None

    def new_session(self, rater_id: int) -> tuple[str, str]:
        """A fresh (session token, CSRF token) for the rater; only the token's sha256 is stored."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.lock:
            self.conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (_sha256(token), rater_id, csrf, _now()))
        return token, csrf

    def session(self, token: str | None) -> dict | None:
        """{"rater_id", "name", "csrf"} for a valid session token, else None."""
        if not token:
            return None
        with self.lock:
            row = self.conn.execute(
                "SELECT s.rater_id, r.name, s.csrf FROM sessions s JOIN raters r ON r.id = s.rater_id "
                "WHERE s.token_sha256 = ?", (_sha256(token),)).fetchone()
        return dict(row) if row else None

    def end_session(self, token: str) -> None:
        with self.lock:
            self.conn.execute("DELETE FROM sessions WHERE token_sha256 = ?", (_sha256(token),))

    # ------------------------------------------------------------------------------------------------------
    # ratings

    def add_rating(self, rater_id: int, prompt_id: str, category: str, variant: str,
                   left_model: str, right_model: str, choice: str) -> bool:
        """Store one rating, committed at once. False when this rater already rated this pair (the first
        rating stands: a double-submitted form changes nothing)."""
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {', '.join(CHOICES)}, got {choice!r}")
        if left_model == right_model:
            raise ValueError(f"a pair needs two different models, got {left_model!r} twice")
        model_a, model_b = sorted((left_model, right_model))
        winner = {"left": left_model, "right": right_model, "tie": None}[choice]
        with self.lock:
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO ratings (rater_id, prompt_id, category, variant, model_a, model_b, "
                "left_model, right_model, choice, winner, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rater_id, prompt_id, category, variant, model_a, model_b, left_model, right_model, choice,
                 winner, _now()))
        return cur.rowcount == 1

    def rated_pairs(self, rater_id: int) -> set[tuple[str, str, str]]:
        """{(prompt_id, model_a, model_b)} already rated by this rater."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT prompt_id, model_a, model_b FROM ratings WHERE rater_id = ?", (rater_id,)).fetchall()
        return {(r["prompt_id"], r["model_a"], r["model_b"]) for r in rows}

    def ratings(self) -> list[dict]:
        """Every rating with its rater's name, oldest first."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT t.id, r.name AS rater, t.prompt_id, t.category, t.variant, t.model_a, t.model_b, "
                "t.left_model, t.right_model, t.choice, t.winner, t.created "
                "FROM ratings t JOIN raters r ON r.id = t.rater_id ORDER BY t.id").fetchall()
        return [dict(r) for r in rows]
