//! What an e-mail about an endpoint says: which endpoint, what happened, what it answered,
//! and where to see more. Plain text: an endpoint's answer is shown, never interpreted.

use serde_json::Value;

use crate::domain::operational::{Mail, MailKind};

/// The most of an endpoint's answer an e-mail quotes.
const QUOTED: usize = 2_000;

pub struct Text {
    pub subject: String,
    pub body: String,
}

/// The e-mail for `mail`; `public_url` is the dashboard's base URL, or empty.
pub fn render(mail: &Mail, public_url: &str) -> Text {
    let event: Value = mail
        .event_body
        .as_deref()
        .and_then(|body| serde_json::from_str(body).ok())
        .unwrap_or_default();
    let data = &event["data"];
    let (id, url, description) = match &mail.endpoint {
        Some((id, url, description)) => (id.as_str(), url.as_str(), description.as_str()),
        None => ("", data["url"].as_str().unwrap_or("(deleted since)"), ""),
    };
    let when = event["datetime"].as_str().unwrap_or("recently");
    let mut body = String::new();
    let subject = match mail.kind {
        MailKind::Suspended => {
            let until = data["suspended_until"].as_str().unwrap_or("later");
            let failures = data["consecutive_failures"].as_u64().unwrap_or(0);
            body.push_str(&format!(
                "Herald suspended your webhook endpoint at {when}, after {failures} failed calls in a row.\n\
                 It will try it again at {until}; its events wait meanwhile, nothing is lost.\n\n"
            ));
            format!("Webhook endpoint suspended: {url}")
        }
        MailKind::Disabled => {
            body.push_str(&format!(
                "Herald disabled your webhook endpoint at {when}: it failed for too long, or answered 410 Gone.\n\
                 It is no longer called until someone resumes it; its events wait meanwhile.\n\n"
            ));
            format!("Webhook endpoint disabled: {url}")
        }
    };
    body.push_str(&format!("Endpoint:    {url}\n"));
    if !description.is_empty() {
        body.push_str(&format!("Description: {description}\n"));
    }
    match &mail.call {
        Some((0, _, error)) => body.push_str(&format!(
            "\nIts last call got no answer: {}\n",
            error.as_deref().unwrap_or("no reason recorded")
        )),
        Some((status, answer, _)) => {
            body.push_str(&format!("\nIts last call was answered HTTP {status}"));
            if answer.is_empty() {
                body.push_str(" with an empty body.\n");
            } else {
                let quoted: String = answer.chars().take(QUOTED).collect();
                let cut = if quoted.len() < answer.len() { "\n[…]" } else { "" };
                body.push_str(&format!(":\n\n{quoted}{cut}\n"));
            }
        }
        None => {}
    }
    if !id.is_empty() {
        body.push_str(&match public_url {
            "" => format!(
                "\nIts calls: GET /restapi/v1/webhook/task?endpoint={id}\n\
                 To resume it now: POST /restapi/v1/webhook/endpoint/{id}/resume\n"
            ),
            base => format!("\nIts calls, and a button to resume it: {base}/ui/endpoints/{id}\n"),
        });
    }
    Text { subject, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suspended() -> Mail {
        Mail {
            id: 1,
            kind: MailKind::Suspended,
            attempts: 0,
            created_at: 0,
            to: Some("ops@example.com".into()),
            event_body: Some(
                r#"{"id":"evt_1","event":"EndpointSuspended","datetime":"2026-12-02 10:00:00",
                    "endpoint":{"_self":"/restapi/v1/webhook/endpoint/ep_1"},
                    "data":{"url":"https://hooks.example.com/in","state":"suspended","consecutive_failures":5,
                            "suspended_until":"2026-12-02 10:01:00","last_call":null}}"#
                    .into(),
            ),
            endpoint: Some(("ep_1".into(), "https://hooks.example.com/in".into(), "Billing".into())),
            call: Some((
                500,
                "<h1>Internal Server Error</h1>".into(),
                Some("http_status: 500".into()),
            )),
        }
    }

    #[test]
    fn a_suspension_names_the_endpoint_its_answer_and_its_page() {
        let text = render(&suspended(), "https://hooks.example.com");
        assert_eq!(text.subject, "Webhook endpoint suspended: https://hooks.example.com/in");
        for part in [
            "after 5 failed calls in a row",
            "try it again at 2026-12-02 10:01:00",
            "Description: Billing",
            "answered HTTP 500:\n\n<h1>Internal Server Error</h1>",
            "https://hooks.example.com/ui/endpoints/ep_1",
        ] {
            assert!(text.body.contains(part), "{part:?} in {}", text.body);
        }
    }

    #[test]
    fn a_call_without_an_answer_says_why_and_a_long_answer_is_cut() {
        let mut mail = suspended();
        mail.call = Some((0, String::new(), Some("timeout: no answer within 30 s".into())));
        let text = render(&mail, "");
        assert!(
            text.body.contains("got no answer: timeout: no answer within 30 s"),
            "{}",
            text.body
        );
        assert!(
            text.body.contains("POST /restapi/v1/webhook/endpoint/ep_1/resume"),
            "{}",
            text.body
        );
        mail.call = Some((502, "x".repeat(5_000), None));
        let text = render(&mail, "");
        assert!(
            text.body.contains(&format!("{}\n[…]", "x".repeat(2_000))),
            "cut at 2,000 characters"
        );
        assert!(!text.body.contains(&"x".repeat(2_001)));
    }
}
