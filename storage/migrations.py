"""Schema migrations, applied in order by `Database.start()`.

Each migration is a function registered on `MIGRATIONS`; registration order is
application order. sqlite-utils records every applied migration (by name, with
`applied_at`) in the `_migrations` table and runs each one inside a transaction
together with that record, so a failed migration leaves nothing behind.

Never edit or rename a migration that has shipped: add a new one.
"""

from __future__ import annotations

import sqlite_utils

from .chain import GENESIS_HASH, event_hash


class _Migrations(sqlite_utils.Migrations):
    # Our own table name rather than sqlite-utils' default "_sqlite_migrations".
    migrations_table = "_migrations"


MIGRATIONS = _Migrations("defense_room")


@MIGRATIONS(name="0001_initial_schema")
def _initial_schema(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE defense_days (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            date TEXT NOT NULL,          -- ISO date, e.g. 2026-11-23
            starts_at REAL NOT NULL,     -- unix time
            timezone TEXT NOT NULL,      -- IANA name, e.g. Europe/Moscow
            created_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            day_id INTEGER NOT NULL REFERENCES defense_days(id),
            role TEXT NOT NULL,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,  -- SHA-256 hex; never the token
            expires_at REAL NOT NULL,
            revoked_at REAL,
            created_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX people_day_id ON people(day_id)")
    db.execute(
        """
        CREATE TABLE journal (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            day_id INTEGER NOT NULL REFERENCES defense_days(id),
            person_id INTEGER REFERENCES people(id),
            kind TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'  -- JSON object
        )
        """
    )
    db.execute("CREATE INDEX journal_day_id_at ON journal(day_id, at)")
    # The journal is evidence of what happened during a defense, so rows are
    # never rewritten. Deleting stays possible for the retention policy.
    db.execute(
        """
        CREATE TRIGGER journal_append_only BEFORE UPDATE ON journal
        BEGIN
            SELECT RAISE(ABORT, 'journal is append-only');
        END
        """
    )


@MIGRATIONS(name="0002_journal_hash_chain")
def _journal_hash_chain(db: sqlite_utils.Database) -> None:
    # See storage/journal.py: each row carries the hash of the one before it.
    db.execute("ALTER TABLE journal ADD COLUMN prev_hash TEXT")
    db.execute("ALTER TABLE journal ADD COLUMN hash TEXT")
    rows = db.execute(
        "SELECT id, at, day_id, person_id, kind, detail FROM journal ORDER BY id"
    ).fetchall()
    if not rows:
        return
    # Chaining the rows already there is the one rewrite the journal ever
    # gets; it happens in this migration's transaction, trigger and all.
    db.execute("DROP TRIGGER journal_append_only")
    prev_hash = GENESIS_HASH
    for event_id, at, day_id, person_id, kind, detail in rows:
        digest = event_hash(
            event_id=event_id,
            at=at,
            day_id=day_id,
            person_id=person_id,
            kind=kind,
            detail_json=detail,
            prev_hash=prev_hash,
        )
        db.execute(
            "UPDATE journal SET prev_hash = ?, hash = ? WHERE id = ?",
            [prev_hash, digest, event_id],
        )
        prev_hash = digest
    db.execute(
        """
        CREATE TRIGGER journal_append_only BEFORE UPDATE ON journal
        BEGIN
            SELECT RAISE(ABORT, 'journal is append-only');
        END
        """
    )


@MIGRATIONS(name="0003_roster")
def _roster(db: sqlite_utils.Database) -> None:
    # The roster of a defense day (rules B1, B3): who defends in which order,
    # and what each student has on file. Only new tables and one defaulted
    # column, so the days, people and journal already there stay as they are.
    db.execute(
        "ALTER TABLE defense_days ADD COLUMN norm_control_required INTEGER NOT NULL DEFAULT 0"
    )
    db.execute(
        """
        CREATE TABLE students (
            person_id INTEGER PRIMARY KEY REFERENCES people(id),
            thesis_title TEXT NOT NULL,
            supervisor TEXT NOT NULL,    -- name of the thesis supervisor
            reviewer TEXT NOT NULL,      -- name of the reviewer
            timezone TEXT NOT NULL,      -- IANA name of where the student is
            consent_at REAL,             -- unix time of consent to personal-data processing
            queue_position INTEGER NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES students(person_id),
            kind TEXT NOT NULL CHECK (kind IN ('thesis', 'plagiarism_report',
                'supervisor_review', 'reviewer_review', 'presentation_pdf', 'norm_control')),
            uploaded_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX documents_person_id ON documents(person_id)")


@MIGRATIONS(name="0004_protocols")
def _protocols(db: sqlite_utils.Database) -> None:
    # Protocols (rules V5, V6; protocols/approvals.py). Drafts are rebuilt from the
    # journal on demand and never stored; what people do with them is. Both tables
    # are evidence (clause 7.18): an approval and a signed protocol are never
    # changed or deleted, so the triggers below refuse it outright.
    db.execute(
        """
        CREATE TABLE protocol_approvals (
            id INTEGER PRIMARY KEY,
            day_id INTEGER NOT NULL REFERENCES defense_days(id),
            protocol TEXT NOT NULL,       -- 'day' or the student's person id
            person_id INTEGER NOT NULL REFERENCES people(id),
            content_hash TEXT NOT NULL,   -- SHA-256 hex of the draft approved
            approved_at REAL NOT NULL,
            UNIQUE (day_id, protocol, person_id, content_hash)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE protocols (
            day_id INTEGER NOT NULL REFERENCES defense_days(id),
            protocol TEXT NOT NULL,       -- 'day' or the student's person id
            content_hash TEXT NOT NULL,   -- SHA-256 hex of content_json
            content_json TEXT NOT NULL,   -- canonical JSON of the protocol
            html TEXT NOT NULL,           -- as signed, with approvals and signature
            pdf BLOB NOT NULL,
            approvals TEXT NOT NULL,      -- JSON [[person_id, content_hash, approved_at]]
            signed_by INTEGER NOT NULL REFERENCES people(id),
            signed_at REAL NOT NULL,
            journal_id INTEGER NOT NULL,  -- the 'protocol_signed' journal event
            PRIMARY KEY (day_id, protocol)
        )
        """
    )
    for table, what in (("protocols", "a signed protocol"),
                        ("protocol_approvals", "a protocol approval")):
        for action in ("UPDATE", "DELETE"):
            db.execute(
                f"""
                CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}
                BEGIN
                    SELECT RAISE(ABORT, '{what} is immutable');
                END
                """
            )


@MIGRATIONS(name="0005_recordings_archive")
def _recordings_archive(db: sqlite_utils.Database) -> None:
    # Recordings after capture (issue 4; recordings/archive_store.py): the state of
    # each defense's build, the archive index (one row per day and student, and one
    # per file with its SHA-256), appeal holds (rule R1) and what retention deleted.
    db.execute(
        """
        CREATE TABLE recording_jobs (
            day_id INTEGER NOT NULL REFERENCES defense_days(id),
            student_id INTEGER NOT NULL REFERENCES people(id),
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
            progress REAL NOT NULL DEFAULT 0,   -- 0..1
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            requested_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (day_id, student_id)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE recording_archives (
            day_id INTEGER NOT NULL REFERENCES defense_days(id),
            student_id INTEGER NOT NULL REFERENCES people(id),
            folder TEXT NOT NULL,            -- relative to the recordings folder
            manifest_sha256 TEXT NOT NULL,
            manifest_json TEXT NOT NULL,     -- kept after the files are deleted
            defense_start REAL NOT NULL,
            defense_end REAL NOT NULL,
            chapters_json TEXT NOT NULL,
            built_at REAL NOT NULL,
            deleted_at REAL,
            PRIMARY KEY (day_id, student_id)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE recording_files (
            id INTEGER PRIMARY KEY,
            day_id INTEGER NOT NULL REFERENCES defense_days(id),
            student_id INTEGER NOT NULL REFERENCES people(id),
            path TEXT NOT NULL,              -- relative to the recordings folder
            role TEXT NOT NULL,              -- composite, chapters, timeline, manifest, raw, archived
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            deleted_at REAL,
            UNIQUE (day_id, student_id, path)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE appeal_holds (
            id INTEGER PRIMARY KEY,
            day_id INTEGER NOT NULL REFERENCES defense_days(id),
            student_id INTEGER NOT NULL REFERENCES people(id),
            placed_by INTEGER NOT NULL REFERENCES people(id),
            placed_at REAL NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            released_by INTEGER REFERENCES people(id),
            released_at REAL,
            decision TEXT
        )
        """
    )
    db.execute(
        "CREATE UNIQUE INDEX appeal_holds_active ON appeal_holds(day_id, student_id)"
        " WHERE released_at IS NULL"
    )
    db.execute(
        """
        CREATE TABLE recording_deletions (
            id INTEGER PRIMARY KEY,
            day_id INTEGER NOT NULL REFERENCES defense_days(id),
            student_id INTEGER REFERENCES people(id),  -- NULL: the whole day folder
            folder TEXT NOT NULL,
            manifest_sha256 TEXT NOT NULL,
            manifest_json TEXT NOT NULL,
            files INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            deleted_at REAL NOT NULL,
            journal_id INTEGER NOT NULL
        )
        """
    )



@MIGRATIONS(name="0006_signing_keys")
def _signing_keys(db: sqlite_utils.Database) -> None:
    # Electronic signatures (rule V6; protocols/signing.py): members' public keys,
    # made in their browsers, and the signature on every approval and on the chair's
    # signing. Keys are evidence too: never changed or deleted.
    db.execute(
        """
        CREATE TABLE signing_keys (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id),
            jwk TEXT NOT NULL,               -- the public key as registered (P-256 JWK)
            fingerprint TEXT NOT NULL UNIQUE, -- SHA-256 hex of its SPKI DER
            registered_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX signing_keys_person ON signing_keys(person_id)")
    for action in ("UPDATE", "DELETE"):
        db.execute(
            f"""
            CREATE TRIGGER signing_keys_no_{action.lower()} BEFORE {action} ON signing_keys
            BEGIN
                SELECT RAISE(ABORT, 'a signing key is immutable');
            END
            """
        )
    for table in ("protocol_approvals", "protocols"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN key_id INTEGER REFERENCES signing_keys(id)")
        db.execute(f"ALTER TABLE {table} ADD COLUMN signature TEXT")  # P1363 r||s, base64url


@MIGRATIONS(name="0007_appeals")
def _appeals(db: sqlite_utils.Database) -> None:
    # Appeals (section 8; storage/appeals.py). A day is a defense day, an appeal
    # sitting or a repeated defense; the two latter point at their appeal.
    db.execute("ALTER TABLE defense_days ADD COLUMN kind TEXT NOT NULL DEFAULT 'defense'"
               " CHECK (kind IN ('defense', 'appeal', 'repeat'))")
    db.execute("ALTER TABLE defense_days ADD COLUMN appeal_id INTEGER")
    db.execute(
        """
        CREATE TABLE appeals (
            id INTEGER PRIMARY KEY,
            day_id INTEGER NOT NULL REFERENCES defense_days(id),   -- the defense appealed
            student_id INTEGER NOT NULL REFERENCES people(id),
            text TEXT NOT NULL,
            filed_by INTEGER NOT NULL REFERENCES people(id),       -- the student or the secretary
            on_paper INTEGER NOT NULL DEFAULT 0,
            filed_at REAL NOT NULL,
            deadline REAL NOT NULL,
            conclusion TEXT,            -- the commission chair's conclusion on the procedure
            conclusion_at REAL,
            sitting_day_id INTEGER REFERENCES defense_days(id),
            sitting_at REAL,
            decision TEXT CHECK (decision IN ('rejected', 'upheld')),
            reasoning TEXT,
            decided_at REAL,
            delivery_at REAL,           -- when the student learns it (clause 8.11)
            repeat_day_id INTEGER REFERENCES defense_days(id),
            UNIQUE (day_id, student_id)
        )
        """
    )


@MIGRATIONS(name="0008_extra_time")
def _extra_time(db: sqlite_utils.Database) -> None:
    # Adjusted time for a student with a disability (clause 4.3): the percent added to
    # their talk, questions and whole defense. A defaulted column, so every student
    # already on a roster keeps the regulation's limits.
    db.execute("ALTER TABLE students ADD COLUMN extra_time_percent REAL NOT NULL DEFAULT 0"
               " CHECK (extra_time_percent BETWEEN 0 AND 100)")


@MIGRATIONS(name="0009_absence_proof")
def _absence_proof(db: sqlite_utils.Database) -> None:
    # A valid reason for absence needs its proof on file (clause 7.9): a new kind of
    # document. SQLite cannot change a CHECK, so the table is rebuilt with its rows.
    db.execute("ALTER TABLE documents RENAME TO documents_0003")
    db.execute(
        """
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES students(person_id),
            kind TEXT NOT NULL CHECK (kind IN ('thesis', 'plagiarism_report',
                'supervisor_review', 'reviewer_review', 'presentation_pdf', 'norm_control',
                'absence_proof')),
            uploaded_at REAL NOT NULL
        )
        """
    )
    db.execute("INSERT INTO documents SELECT id, person_id, kind, uploaded_at"
               " FROM documents_0003")
    db.execute("DROP TABLE documents_0003")
    db.execute("CREATE INDEX documents_person_id ON documents(person_id)")


@MIGRATIONS(name="0010_signing_trust")
def _signing_trust(db: sqlite_utils.Database) -> None:
    # Keys bound to people (protocols/keys.py): a person's first key is theirs; a
    # further key signs only once the secretary approves it. signing_keys is
    # immutable, so approvals get a table of their own, immutable too.
    db.execute(
        """
        CREATE TABLE signing_key_approvals (
            key_id INTEGER PRIMARY KEY REFERENCES signing_keys(id),
            approved_by INTEGER NOT NULL REFERENCES people(id),  -- the secretary
            approved_at REAL NOT NULL
        )
        """
    )
    for action in ("UPDATE", "DELETE"):
        db.execute(
            f"""
            CREATE TRIGGER signing_key_approvals_no_{action.lower()}
            BEFORE {action} ON signing_key_approvals
            BEGIN
                SELECT RAISE(ABORT, 'a key approval is immutable');
            END
            """
        )
    # The exact statement each approval and signature signs (it names the person and
    # the time); NULL for those made before, which signed the shorter v1 statement.
    db.execute("ALTER TABLE protocol_approvals ADD COLUMN statement TEXT")
    db.execute("ALTER TABLE protocols ADD COLUMN statement TEXT")


@MIGRATIONS(name="0011_document_versions")
def _document_versions(db: sqlite_utils.Database) -> None:
    # Every uploaded file is a version kept under its SHA-256 (finding S4,
    # storage/document_versions.py): a row per upload says what, how big, by whom
    # and why (a replacement after the student's uploads closed needs a reason).
    # Rows without a hash are documents declared on file (day file, day API).
    # A version is evidence of what was on file when: rows are never changed.
    db.execute("ALTER TABLE documents ADD COLUMN sha256 TEXT"
               " CHECK (sha256 IS NULL OR length(sha256) = 64)")
    db.execute("ALTER TABLE documents ADD COLUMN size INTEGER")
    db.execute("ALTER TABLE documents ADD COLUMN uploaded_by INTEGER REFERENCES people(id)")
    db.execute("ALTER TABLE documents ADD COLUMN reason TEXT")
    db.execute("CREATE INDEX documents_person_kind ON documents(person_id, kind, id)")
    db.execute(
        """
        CREATE TRIGGER documents_no_update BEFORE UPDATE ON documents
        BEGIN
            SELECT RAISE(ABORT, 'a document version is immutable');
        END
        """
    )


@MIGRATIONS(name="0012_day_chains")
def _day_chains(db: sqlite_utils.Database) -> None:
    # One hash chain per day instead of one over all days (storage/chain.py): a
    # damaged row stops only its day, and starting a day reads only its rows. The rows
    # already there are re-chained by day rather than accepted up to a checkpoint,
    # so that every day verifies the same way, from its own rows. Re-hashing vouches
    # for nothing new: each row is first checked against the old chain, and a row
    # that fails keeps a link or hash that never verifies (`rechain_by_day`).
    from .chain import rechain_by_day

    db.execute("CREATE INDEX journal_day_id ON journal(day_id)")  # (day_id, rowid)
    rows = db.query("SELECT id, at, day_id, person_id, kind, detail, prev_hash, hash"
                    " FROM journal ORDER BY id")
    relinked = rechain_by_day(rows)
    if relinked:
        # The one rewrite after 0002, in this migration's transaction, trigger and all
        # (which someone with the file may have dropped already).
        db.execute("DROP TRIGGER IF EXISTS journal_append_only")
        db.conn.executemany("UPDATE journal SET prev_hash = ?, hash = ? WHERE id = ?",
                            [(r.prev_hash, r.hash, r.event_id) for r in relinked])
        db.execute(
            """
            CREATE TRIGGER journal_append_only BEFORE UPDATE ON journal
            BEGIN
                SELECT RAISE(ABORT, 'journal is append-only');
            END
            """
        )
    # Retention deletes recordings, never their journal: deletions are journaled too.
    db.execute(
        """
        CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
        BEGIN
            SELECT RAISE(ABORT, 'journal rows are never deleted');
        END
        """
    )


@MIGRATIONS(name="0015_student_consents")
def _student_consents(db: sqlite_utils.Database) -> None:
    # The student's own consents from their page (clause 6.6; the regulation's
    # "заявление на размещение ВКР в ЭБС"): personal-data processing, which also sets
    # students.consent_at like the paper one, and publishing the thesis in the
    # university's e-library, a yes or no the student may change until their defense.
    # One row per statement, never changed: the newest of a kind is what stands.
    db.execute(
        """
        CREATE TABLE student_consents (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id),
            kind TEXT NOT NULL CHECK (kind IN ('personal_data', 'elibrary')),
            choice INTEGER NOT NULL CHECK (choice IN (0, 1)),
            how TEXT NOT NULL CHECK (how IN ('page', 'paper')),
            at REAL NOT NULL,
            by_person INTEGER REFERENCES people(id)
        )
        """
    )
    db.execute("CREATE INDEX student_consents_person ON student_consents(person_id, kind, id)")
    db.execute(
        """
        CREATE TRIGGER student_consents_no_update BEFORE UPDATE ON student_consents
        BEGIN
            SELECT RAISE(ABORT, 'a consent statement is immutable');
        END
        """
    )


@MIGRATIONS(name="0013_people_contact")
def _people_contact(db: sqlite_utils.Database) -> None:
    # How to reach a person (issue 15: e-mail): an address, or none, and the language
    # their mail is written in. Defaulted columns: everyone on file stays reachable
    # only by the link handed to them, in Russian.
    db.execute("ALTER TABLE people ADD COLUMN email TEXT")
    db.execute("ALTER TABLE people ADD COLUMN language TEXT NOT NULL DEFAULT 'ru'"
               " CHECK (language IN ('ru', 'en'))")


@MIGRATIONS(name="0014_mail_outbox")
def _mail_outbox(db: sqlite_utils.Database) -> None:
    # The durable outbox of server/mail.py: a row per mail to send, never the link
    # (links are issued when the mail goes). `source` is the journal event that called
    # for it, so reading the journal again queues nothing twice.
    db.execute(
        """
        CREATE TABLE mail_outbox (
            id INTEGER PRIMARY KEY,
            day_id INTEGER NOT NULL REFERENCES defense_days(id),
            person_id INTEGER NOT NULL REFERENCES people(id),
            kind TEXT NOT NULL,            -- moved, appeal_sitting, appeal_decision
            language TEXT NOT NULL,        -- the person's when queued
            detail TEXT NOT NULL DEFAULT '{}',  -- JSON: what the mail says
            source INTEGER NOT NULL,       -- journal.id of the event behind it
            created_at REAL NOT NULL,
            due_at REAL NOT NULL,          -- not before (a decision's delivery, 8.11)
            next_try_at REAL NOT NULL,     -- due_at, later after a failed try
            sent_at REAL,
            gave_up_at REAL,               -- no address, or max_attempts failed
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            UNIQUE (source, person_id, kind)
        )
        """
    )
    db.execute("CREATE INDEX mail_outbox_pending ON mail_outbox(sent_at, next_try_at)")
    # How far the mailer has read the journal: one row.
    db.execute("CREATE TABLE mail_cursor (id INTEGER PRIMARY KEY CHECK (id = 1),"
               " journal_id INTEGER NOT NULL)")


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Apply every pending migration to `db`; return the names applied."""
    pending = [migration.name for migration in MIGRATIONS.pending(db)]
    MIGRATIONS.apply(db)
    return pending
