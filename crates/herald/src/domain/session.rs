//! The dashboard's sessions and portal links: who a session acts for, what it may do, and
//! when it lapses. A session lapses after 12 hours without a page; a portal link works once,
//! within its time to live (at most a day).

use std::time::Duration;

use crate::clock::Micros;

/// How long a session lasts without a page asked.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);
/// How long before its next page a session's last sighting is written again: a session seen
/// a minute ago is not written on every page.
pub const TOUCH_AFTER: Micros = 60 * 1_000_000;
/// The longest a portal link may live.
pub const PORTAL_TTL_MAX: Duration = Duration::from_secs(24 * 3600);

/// What a session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permissions {
    /// Sees everything but secrets, and changes nothing.
    View,
    /// Sees and changes.
    Manage,
}

impl Permissions {
    pub fn parse(word: &str) -> Option<Permissions> {
        match word {
            "view" => Some(Permissions::View),
            "manage" => Some(Permissions::Manage),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permissions::View => "view",
            Permissions::Manage => "manage",
        }
    }
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the cookie's token: the token itself is never stored.
    pub token_hash: [u8; 32],
    /// The account it acts for; `None` for support before it picks one.
    pub account_id: Option<i64>,
    /// Signed in with the admin token: may pick any account.
    pub support: bool,
    pub permissions: Permissions,
    /// Opened by a portal link: its pages may be framed by the configured origins.
    pub portal: bool,
    /// The token every form of the session carries.
    pub csrf: String,
    pub created_at: Micros,
    pub last_seen_at: Micros,
}

impl Session {
    /// Whether the session still holds at `now`: asked for a page within [`IDLE`].
    pub fn alive_at(&self, now: Micros) -> bool {
        now - self.last_seen_at < IDLE.as_micros() as Micros
    }

    /// The session a portal link opens: for the link's account, with its permissions, framable,
    /// and never support's.
    pub fn opened_by_link(self, account_id: i64, permissions: Permissions) -> Session {
        Session {
            account_id: Some(account_id),
            permissions,
            portal: true,
            support: false,
            ..self
        }
    }

    /// Whether a page at `now` should write the session's last sighting again.
    pub fn needs_touch_at(&self, now: Micros) -> bool {
        now - self.last_seen_at >= TOUCH_AFTER
    }
}

/// A portal link, before it is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalLink {
    /// SHA-256 of the link's token.
    pub token_hash: [u8; 32],
    pub account_id: i64,
    pub permissions: Permissions,
    pub expires_at: Micros,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lapses_after_twelve_idle_hours_and_is_written_once_a_minute() {
        let hour = 3_600 * 1_000_000;
        let session = Session {
            token_hash: [0; 32],
            account_id: Some(1),
            support: false,
            permissions: Permissions::Manage,
            portal: false,
            csrf: "c".into(),
            created_at: 0,
            last_seen_at: 10 * hour,
        };
        assert!(session.alive_at(10 * hour));
        assert!(session.alive_at(22 * hour - 1));
        assert!(!session.alive_at(22 * hour));
        assert!(!session.needs_touch_at(10 * hour + TOUCH_AFTER - 1));
        assert!(session.needs_touch_at(10 * hour + TOUCH_AFTER));
        assert_eq!(Permissions::parse("view"), Some(Permissions::View));
        assert_eq!(Permissions::parse("admin"), None);
    }
}
