//! Who gets deliveries of an event being written, as both backends' fan-out statement takes
//! it: one `INSERT … SELECT` over the account's endpoints, narrowed by three parameters.

/// Who gets deliveries of an event being written.
#[derive(Clone, Copy)]
pub(super) enum Fanout {
    /// Every endpoint of the account that subscribes to the event's type.
    Subscribers,
    /// This endpoint (by seq) alone, whatever it subscribes to: a test event.
    Only(i64),
    /// Every endpoint of the account that names the event's type (`"*"` does not), but this
    /// one (by seq), which the event is about: an operational event.
    About(i64),
    /// Every endpoint of the account that names the event's type: an operational event about
    /// no one endpoint.
    Named,
}

/// The fan-out statement's parameters.
pub(super) struct Narrowing {
    /// This endpoint alone.
    pub only: Option<i64>,
    /// Endpoints that name the type, not those that take every type (`"*"`).
    pub named: bool,
    /// Not this endpoint.
    pub except: Option<i64>,
}

impl Fanout {
    pub fn narrowing(self) -> Narrowing {
        let (only, named, except) = match self {
            Fanout::Subscribers => (None, false, None),
            Fanout::Only(endpoint) => (Some(endpoint), false, None),
            Fanout::About(endpoint) => (None, true, Some(endpoint)),
            Fanout::Named => (None, true, None),
        };
        Narrowing { only, named, except }
    }

    /// Whether the endpoints' filters may leave some out: a test call goes to its endpoint
    /// whatever it filters.
    pub fn filtered(self) -> bool {
        !matches!(self, Fanout::Only(_))
    }
}
