//! Herald's domain: accounts and their hiring process, jobs, candidates, applications, events
//! and endpoints. Types and rules only; nothing here does IO or knows about HTTP.

pub mod account;
pub mod delivery;
pub mod endpoint;
pub mod event;
pub mod filter;
pub mod operational;
pub mod pacing;
pub mod recruiting;
pub mod session;
pub mod snapshot;
pub mod stats;
pub mod version;

/// Input that breaks a domain rule: a stable machine code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub code: &'static str,
    pub message: String,
}

impl Invalid {
    /// An `Invalid` with the code `invalid_field`, naming the field at fault.
    pub fn field(field: &str, problem: &str) -> Invalid {
        Invalid {
            code: "invalid_field",
            message: format!("{field}: {problem}"),
        }
    }
}

/// Checks that a text field is non-blank and at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::field(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(Invalid::field(field, &format!("must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid::field(field, "must not contain control characters"));
    }
    Ok(())
}
