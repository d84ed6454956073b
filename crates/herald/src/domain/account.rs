//! Accounts (tenants) and the hiring process each one is created with.

use super::Invalid;
use crate::clock::Micros;

/// A customer of the service. `login` is its name in Basic auth and in admin paths.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub process_id: i64,
    pub created_at: Micros,
    /// Where e-mail about the account's endpoints goes (suspended, disabled), if anywhere.
    pub notify_email: Option<String>,
}

/// A validated change to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    pub name: Option<String>,
    pub password: Option<String>,
    /// `Some(None)` stops the e-mail.
    pub notify_email: Option<Option<String>>,
}

impl AccountChange {
    /// Checks each field given as its creation checks it; an address must be one.
    pub fn new(
        name: Option<String>,
        password: Option<String>,
        notify_email: Option<Option<String>>,
    ) -> Result<AccountChange, Invalid> {
        if let Some(name) = &name {
            super::text("name", name, 200)?;
        }
        if let Some(password) = &password {
            check_password(password)?;
        }
        if let Some(Some(email)) = &notify_email {
            check_email(email)?;
        }
        Ok(AccountChange {
            name,
            password,
            notify_email,
        })
    }
}

fn check_password(password: &str) -> Result<(), Invalid> {
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(Invalid::field("password", "must be 8 to 1024 characters"));
    }
    Ok(())
}

/// An e-mail address, `local@domain`, as SMTP takes it in `RCPT TO`.
fn check_email(email: &str) -> Result<(), Invalid> {
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && email.chars().all(|c| c.is_ascii_graphic())
        && email.matches('@').count() == 1;
    if ok {
        Ok(())
    } else {
        Err(Invalid::field(
            "notify_email",
            "must be an e-mail address such as \"ops@example.com\"",
        ))
    }
}

/// A validated request to create an account with its hiring process.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub login: String,
    pub name: String,
    pub password: String,
    pub process_name: String,
    pub steps: Vec<String>,
}

/// The process an account gets when none is given: the spec's example.
pub const DEFAULT_STEPS: [&str; 6] = ["New", "Screening", "Interview", "Offer", "Hired", "Rejected"];

const MAX_STEPS: usize = 50;

impl NewAccount {
    /// Checks the login's shape, the password's length and the process's steps.
    pub fn new(
        login: String,
        password: String,
        name: Option<String>,
        process: Option<(String, Vec<String>)>,
    ) -> Result<NewAccount, Invalid> {
        let login_ok = (2..=64).contains(&login.len())
            && login
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
            && login.as_bytes()[0].is_ascii_alphanumeric();
        if !login_ok {
            return Err(Invalid::field(
                "login",
                "must be 2 to 64 characters of a-z, 0-9, '_', '.' or '-', starting with a letter or digit",
            ));
        }
        check_password(&password)?;
        let name = name.unwrap_or_else(|| login.clone());
        super::text("name", &name, 200)?;
        let (process_name, steps) =
            process.unwrap_or_else(|| ("Hiring".into(), DEFAULT_STEPS.map(String::from).to_vec()));
        super::text("process.name", &process_name, 200)?;
        if !(2..=MAX_STEPS).contains(&steps.len()) {
            return Err(Invalid::field(
                "process.steps",
                &format!("must list 2 to {MAX_STEPS} steps"),
            ));
        }
        for (i, step) in steps.iter().enumerate() {
            super::text(&format!("process.steps[{i}]"), step, 200)?;
            if steps[..i].contains(step) {
                return Err(Invalid::field("process.steps", &format!("{step:?} appears twice")));
            }
        }
        Ok(NewAccount {
            login,
            name,
            password,
            process_name,
            steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_email_must_be_an_address() {
        for good in ["ops@example.com", "a.b+hooks@mail.example.co.uk"] {
            assert!(check_email(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ops",
            "ops@",
            "@example.com",
            "ops@localhost",
            "a b@example.com",
            "a@b@example.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
