//! What both backends do alike when they record a batch of calls: apply the health rule call
//! by call, and find the news to tell the endpoints' accounts. Each backend reads and writes
//! the rows; what the calls mean is decided here, once.

use std::collections::BTreeMap;

use super::CallRules;
use crate::clock::Micros;
use crate::domain::delivery::{CallRecord, Next};
use crate::domain::endpoint::Health;
use crate::domain::event::Event;
use crate::domain::operational::{MailKind, News, mailed};

/// An endpoint, as `(seq, account id)`: every query names the account.
pub type EndpointKey = (i64, i64);

/// Each endpoint's health before the batch, and as the batch leaves it.
pub type Healths = BTreeMap<EndpointKey, (Health, Health)>;

/// News to tell: about which endpoint, what, the call of the batch (its index) that made it,
/// and the endpoint's health right after that call.
#[derive(Debug)]
pub struct Found {
    pub endpoint: EndpointKey,
    pub news: News,
    pub call: usize,
    pub health: Health,
}

impl Found {
    /// The e-mail that tells this news, written as `event` (about the call of task
    /// `task_id`), when such news is mailed and an SMTP server is configured.
    pub fn mail<'a>(&self, event: &'a Event, task_id: Option<i64>, rules: &dyn CallRules) -> Option<Queued<'a>> {
        let kind = mailed(self.news).filter(|_| rules.mails())?;
        Some(Queued {
            account: self.endpoint.1,
            endpoint_seq: self.endpoint.0,
            event_id: &event.id,
            task_id,
            kind,
            at: event.created_at,
        })
    }
}

/// An e-mail to queue in the transaction of the news it tells.
pub struct Queued<'a> {
    pub account: i64,
    pub endpoint_seq: i64,
    pub event_id: &'a str,
    pub task_id: Option<i64>,
    pub kind: MailKind,
    pub at: Micros,
}

pub fn endpoint_of(call: &CallRecord) -> EndpointKey {
    (call.attempt.claimed.endpoint_seq, call.attempt.claimed.account_id)
}

/// Applies the health rule for every call of an endpoint in `healths`, in the calls' order;
/// returns each change of state worth telling, in that order (an endpoint suspended and
/// resumed within one batch tells both).
pub fn apply(calls: &[CallRecord], healths: &mut Healths, rules: &dyn CallRules) -> Vec<Found> {
    let mut found = Vec::new();
    for (index, call) in calls.iter().enumerate() {
        let endpoint = endpoint_of(call);
        if let Some((_, health)) = healths.get_mut(&endpoint) {
            let after = rules.health(*health, call);
            if let Some(news) = News::of_change(health.state, after.state) {
                found.push(Found {
                    endpoint,
                    news,
                    call: index,
                    health: after,
                });
            }
            *health = after;
        }
    }
    found
}

/// Deliveries that used up their retries in the batch, by endpoint: how many, and the index
/// of the last one's call.
pub fn failed_deliveries(calls: &[CallRecord]) -> BTreeMap<EndpointKey, (u32, usize)> {
    let mut failed: BTreeMap<EndpointKey, (u32, usize)> = BTreeMap::new();
    for (index, call) in calls.iter().enumerate() {
        if call.next == Next::Failed {
            let entry = failed.entry(endpoint_of(call)).or_default();
            *entry = (entry.0 + 1, index);
        }
    }
    failed
}
