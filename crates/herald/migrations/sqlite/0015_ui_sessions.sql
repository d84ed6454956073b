-- The dashboard's sessions and portal links (see ui/session.rs). A session or a link is
-- found by the SHA-256 of its token, never by the token itself, so a read of this table
-- signs nobody in. Both go with their account.
CREATE TABLE ui_sessions (
    token_hash BLOB PRIMARY KEY,
    -- The account it acts for; NULL for support before it picks one.
    account_id INTEGER REFERENCES accounts (id) ON DELETE CASCADE,
    support INTEGER NOT NULL,
    -- `view` or `manage`.
    permissions TEXT NOT NULL,
    -- 1 for a session opened by a portal link: its pages may be framed.
    portal INTEGER NOT NULL,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ui_sessions_by_last_seen ON ui_sessions (last_seen_at);

CREATE TABLE ui_portal_links (
    token_hash BLOB PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    permissions TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Set when the link is followed: it works once.
    used_at INTEGER
) WITHOUT ROWID;
CREATE INDEX ui_portal_links_by_expiry ON ui_portal_links (expires_at);
