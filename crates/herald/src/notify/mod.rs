//! E-mail to account owners when an endpoint is suspended or disabled (`[notify]`).
//!
//! The e-mails are queued by the store in the transaction that records the news (see
//! `store::recording`), so a crash loses none; the mailer sends them from that queue, on its
//! own task, so a slow or absent SMTP server never holds up delivery. A failed send is tried
//! again with growing pauses for a day; every node's mailer takes its own lease on what it
//! sends.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::clock::{Clock, Micros};
use crate::config::Config;
use crate::domain::operational::Mail;
use crate::store::Store;

mod message;

/// E-mails taken from the queue at a time.
const BATCH: u32 = 20;
/// How long a mailer holds an e-mail it is sending before another may take it.
const LEASE: Micros = 60_000_000;
/// How often the queue is looked at. E-mail is not delivery's hot path: a second's wait
/// before the owner hears of a suspension is nothing, and the look is one indexed query.
const PERIOD: Duration = Duration::from_secs(1);
/// A send that keeps failing is given up this long after the news.
const GIVE_UP_AFTER: Micros = 24 * 3_600 * 1_000_000;

/// Sends the queued e-mails.
pub struct Mailer {
    store: Arc<dyn Store>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The dashboard's base URL, for the link to the endpoint's page; empty when unknown.
    public_url: String,
    clock: Clock,
}

impl Mailer {
    /// A mailer, if `[notify] smtp_url` names a server.
    pub fn new(store: Arc<dyn Store>, config: &Config, clock: Clock) -> anyhow::Result<Option<Mailer>> {
        let Some(smtp) = &config.notify.smtp else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(10)))
            .build();
        Ok(Some(Mailer {
            store,
            transport,
            from: config.notify.from.parse()?,
            public_url: config.ui.public_url.clone(),
            clock,
        }))
    }

    /// Sends every e-mail due now, each once; returns how many were sent. The loop's one
    /// step: tests call it between moves of a manual clock.
    pub async fn step(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let mut sent = 0;
        for mail in self.store.due_mail(now, now + LEASE, BATCH).await? {
            let outcome = self.send(&mail).await;
            let (delivered, retry_at) = match outcome {
                Ok(()) => (true, None),
                Err(Failed::ForGood(why)) => {
                    tracing::warn!(mail = mail.id, error = %why, "an e-mail cannot be sent; dropped");
                    (false, None)
                }
                Err(Failed::ForNow(why)) => {
                    let retry_at = retry_at(&mail, now);
                    tracing::warn!(mail = mail.id, error = %why, given_up = retry_at.is_none(), "sending an e-mail failed");
                    (false, retry_at)
                }
            };
            sent += usize::from(delivered);
            self.store.mail_tried(mail.id, now, delivered, retry_at).await?;
        }
        Ok(sent)
    }

    /// Sends what is due, once a `PERIOD`, until `shutdown`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.step().await {
                tracing::error!(error = %e, "reading the e-mail queue failed");
            }
            tokio::select! {
                () = tokio::time::sleep(PERIOD) => {}
                () = &mut shutdown => return,
            }
        }
    }

    async fn send(&self, mail: &Mail) -> Result<(), Failed> {
        let Some(to) = &mail.to else {
            return Err(Failed::ForGood("the account no longer gives an address".into()));
        };
        let to: Mailbox = to
            .parse()
            .map_err(|e| Failed::ForGood(format!("the address {to:?}: {e}")))?;
        let text = message::render(mail, &self.public_url);
        let email = Message::builder()
            .message_id(None)
            .from(self.from.clone())
            .to(to)
            .subject(text.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text.body)
            .map_err(|e| Failed::ForGood(e.to_string()))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            // A permanent refusal (a 5xx: no such mailbox, say) will not mend by waiting.
            Err(e) if e.is_permanent() => Err(Failed::ForGood(e.to_string())),
            Err(e) => Err(Failed::ForNow(e.to_string())),
        }
    }
}

enum Failed {
    ForNow(String),
    ForGood(String),
}

/// When to try a failed e-mail again: 30 s after the first try, doubling up to an hour
/// apart; `None` once the news is a day old.
fn retry_at(mail: &Mail, now: Micros) -> Option<Micros> {
    if now - mail.created_at >= GIVE_UP_AFTER {
        return None;
    }
    let pause = 30_000_000_i64
        .saturating_mul(1 << mail.attempts.min(7))
        .min(3_600_000_000);
    Some(now + pause)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::operational::MailKind;

    fn mail(attempts: u32, created_at: Micros) -> Mail {
        Mail {
            id: 1,
            kind: MailKind::Suspended,
            attempts,
            created_at,
            to: Some("ops@example.com".into()),
            event_body: None,
            endpoint: None,
            call: None,
        }
    }

    #[test]
    fn failed_sends_are_tried_again_less_and_less_often_for_a_day() {
        const S: Micros = 1_000_000;
        assert_eq!(retry_at(&mail(0, 0), 0), Some(30 * S));
        assert_eq!(retry_at(&mail(1, 0), 0), Some(60 * S));
        assert_eq!(retry_at(&mail(12, 0), 0), Some(3600 * S), "at most an hour apart");
        assert_eq!(retry_at(&mail(3, 0), 24 * 3600 * S), None, "a day on, it is given up");
    }
}
