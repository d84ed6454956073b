//! What the support commands share: the account they are about, and reading collections.

use clap::Args;
use serde_json::Value;

/// Which account an endpoint, task or event command is about.
#[derive(Args, Debug, Clone)]
pub struct Account {
    /// The account's login
    #[arg(long, short = 'a')]
    pub account: String,
}

/// The items of a collection's page.
pub fn items(answer: &Value) -> &[Value] {
    answer["items"].as_array().map_or(&[], Vec::as_slice)
}
