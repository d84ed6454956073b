//! `herald listen`: a local receiver that prints every call it gets (time, event, id,
//! application, whether the signature verifies) and answers a chosen status. The debugging
//! sink, and the demo's receiver.

use std::io::Write;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use herald_receiver::{Event, Webhook};

/// How `herald listen` runs.
#[derive(clap::Args, Debug, Clone)]
pub struct ListenArgs {
    /// The port to listen on, on 127.0.0.1
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    /// The endpoint's whsec_ secret, to verify each call's signature
    #[arg(long, env = "HERALD_SECRET")]
    pub secret: Option<String>,
    /// The status to answer every call with
    #[arg(long, default_value_t = 200)]
    pub status: u16,
}

struct Listener {
    webhook: Option<Webhook>,
    status: StatusCode,
}

/// Serves until interrupted.
pub fn run(args: &ListenArgs) -> anyhow::Result<()> {
    let webhook = args
        .secret
        .as_deref()
        .map(Webhook::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
    let status = StatusCode::from_u16(args.status)
        .map_err(|_| anyhow::anyhow!("--status: {} is not an HTTP status", args.status))?;
    let listener = Arc::new(Listener { webhook, status });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let socket = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
        println!(
            "listening on http://127.0.0.1:{}/ (any path), answering {}",
            args.port, args.status
        );
        if listener.webhook.is_none() {
            println!("no --secret: signatures are shown but not checked");
        }
        let app = axum::Router::new().fallback(receive).with_state(listener);
        axum::serve(socket, app).await?;
        Ok(())
    })
}

async fn receive(State(listener): State<Arc<Listener>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    println!("{}", describe(&listener, &headers, &body, jiff::Timestamp::now()));
    let _ = std::io::stdout().flush();
    listener.status
}

/// One line about one call.
fn describe(listener: &Listener, headers: &HeaderMap, body: &[u8], now: jiff::Timestamp) -> String {
    let signature = match &listener.webhook {
        None => "signature not checked".to_owned(),
        Some(webhook) => match webhook.verify(body, headers) {
            Ok(()) => "signature valid".to_owned(),
            Err(e) => format!("signature INVALID ({e})"),
        },
    };
    let time = now.strftime("%H:%M:%S");
    match serde_json::from_slice::<Event>(body) {
        Ok(event) => {
            let application = event.application.map_or("-".to_owned(), |a| a.self_);
            format!("{time}  {:<18} {}  {application}  {signature}", event.event, event.id)
        }
        Err(_) => format!("{time}  (not a Herald event, {} bytes)  {signature}", body.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_one_line_with_its_verdict() {
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let webhook = Webhook::new(secret).unwrap();
        let body = br#"{"id":"evt_1","event":"ProcessStepChange","datetime":"x","application":{"_self":"/restapi/v1/application/42"},"data":{}}"#;
        let now = jiff::Timestamp::now();
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", "evt_1".parse().unwrap());
        headers.insert("webhook-timestamp", now.as_second().to_string().parse().unwrap());
        headers.insert(
            "webhook-signature",
            webhook.sign("evt_1", now.as_second(), body).parse().unwrap(),
        );
        let listener = Listener {
            webhook: Some(webhook),
            status: StatusCode::OK,
        };
        let line = describe(&listener, &headers, body, now);
        assert!(line.contains("ProcessStepChange") && line.contains("evt_1"), "{line}");
        assert!(
            line.contains("/restapi/v1/application/42") && line.contains("signature valid"),
            "{line}"
        );
        let line = describe(&listener, &headers, b"{}", now);
        assert!(
            line.contains("not a Herald event") && line.contains("INVALID"),
            "{line}"
        );
    }
}
