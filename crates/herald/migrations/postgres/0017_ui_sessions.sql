-- The dashboard's sessions and portal links (see ui/session.rs). A session or a link is
-- found by the SHA-256 of its token, never by the token itself, so a read of this table
-- signs nobody in. Both go with their account.
CREATE TABLE ui_sessions (
    token_hash bytea PRIMARY KEY,
    -- The account it acts for; NULL for support before it picks one.
    account_id bigint REFERENCES accounts (id) ON DELETE CASCADE,
    support boolean NOT NULL,
    -- `view` or `manage`.
    permissions text NOT NULL,
    -- True for a session opened by a portal link: its pages may be framed.
    portal boolean NOT NULL,
    csrf text NOT NULL,
    created_at bigint NOT NULL,
    last_seen_at bigint NOT NULL
);
CREATE INDEX ui_sessions_by_last_seen ON ui_sessions (last_seen_at);
CREATE INDEX ui_sessions_by_account ON ui_sessions (account_id);

CREATE TABLE ui_portal_links (
    token_hash bytea PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    permissions text NOT NULL,
    expires_at bigint NOT NULL,
    -- Set when the link is followed: it works once.
    used_at bigint
);
CREATE INDEX ui_portal_links_by_expiry ON ui_portal_links (expires_at);
CREATE INDEX ui_portal_links_by_account ON ui_portal_links (account_id);
