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
        if password.chars().count() < 8 || password.len() > 1024 {
            return Err(Invalid::field("password", "must be 8 to 1024 characters"));
        }
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
