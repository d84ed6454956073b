//! The call history: every call with the REST API's filters and keyset paging, and one call
//! in full (the request as sent, credentials masked, and the answer as received, as text)
//! with "retry now".

use axum::extract::{Path, RawQuery, State};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::endpoints::{see_other, segment};
use super::layout::{Section, csrf, page};
use super::session::{Change, Visitor};
use super::text::{plain, pretty, status};
use super::{UiResult, UiState};

/// The history's filters, as the REST API names them.
const FILTERS: [(&str, &str, &str); 6] = [
    ("event", "Event type", "ProcessStepChange"),
    ("response_status", "Status", "500"),
    ("endpoint", "Endpoint id", "ep_…"),
    ("application", "Application id", "42"),
    ("from", "From", "YYYY-MM-DD HH:MM:SS"),
    ("to", "To", "YYYY-MM-DD HH:MM:SS"),
];

/// `GET /ui/tasks`: the history, filtered as the query says, a page at a time.
pub async fn list(State(state): State<UiState>, visitor: Visitor, RawQuery(query): RawQuery) -> UiResult {
    let base = visitor.base()?;
    let query = query.unwrap_or_default();
    // What the form that led here did, told once above the history.
    let told = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    let notice = match (told("replayed"), told("tested")) {
        (Some(count), _) => Some(format!(
            "{} events are being delivered again to this endpoint; their calls appear here as they are made.",
            count.parse::<u64>().unwrap_or(0)
        )),
        (None, Some(_)) => Some("A test event is on its way; its call appears here once made.".to_owned()),
        _ => None,
    };
    // Only the API's own parameters, and only those with a value, go on to the API.
    let asked: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(key, value)| {
            !value.trim().is_empty()
                && (FILTERS.iter().any(|(name, _, _)| name == key) || key == "pagecursor" || key == "limit")
        })
        .collect();
    let forwarded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(asked.iter().map(|(k, v)| (k.as_str(), v.trim())))
        .finish();
    let listing = state.api.get(&format!("{base}/webhook/task?{forwarded}")).await;
    let value = |name: &str| {
        asked
            .iter()
            .find(|(key, _)| key == name)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let filtered = asked.iter().any(|(key, _)| key != "pagecursor" && key != "limit");
    let (items, next, problem) = match listing {
        Ok(listing) => {
            let next = listing["_next"]
                .as_str()
                .and_then(|n| n.split_once('?'))
                .map(|(_, query)| format!("/ui/tasks?{query}"));
            (listing["items"].as_array().cloned().unwrap_or_default(), next, None)
        }
        Err(refused) if refused.status.is_client_error() => (Vec::new(), None, Some(refused.message)),
        Err(refused) => return Err(refused.into()),
    };
    let first_page = value("pagecursor").is_empty();
    let content = html! {
        div.heading {
            h1 { "Calls" }
            @if first_page {
                label.check.refresh { input type="checkbox" id="auto-refresh"; " refresh every 5 s" }
            }
        }
        form.filters method="get" action="/ui/tasks" {
            @for (name, label, hint) in FILTERS {
                label { (label) input name=(name) value=(value(name)) placeholder=(hint); }
            }
            button type="submit" { "Filter" }
            @if filtered { a href="/ui/tasks" { "Clear" } }
        }
        @if let Some(notice) = notice { p.note.ok role="status" { (notice) } }
        @if let Some(problem) = problem { p.error role="alert" { (problem) } }
        (table(&items, true))
        nav.pages {
            @if !first_page { a href={"/ui/tasks?" (first_query(&asked))} { "← Newest" } }
            @if let Some(next) = next { a.button href=(next) { "Older →" } }
        }
    };
    Ok(page(&visitor, Section::Calls, "Calls", content))
}

/// The query of the first page under the same filters.
fn first_query(asked: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(asked.iter().filter(|(k, _)| k != "pagecursor"))
        .finish()
}

/// Calls as a table, newest first.
pub fn table(items: &[Value], with_endpoint: bool) -> Markup {
    html! {
        @if items.is_empty() {
            p.empty { "No call yet." }
        } @else {
            table.calls {
                thead { tr {
                    th { "When" } th { "Event" } @if with_endpoint { th { "Endpoint" } }
                    th { "Status" } th.num { "Duration" } th.num { "Attempt" } th { "Answer" }
                } }
                tbody {
                    @for task in items {
                        tr {
                            td { a href={"/ui/tasks/" (plain(&task["id"]))} { (plain(&task["datetime"])) } }
                            td { (plain(&task["event"])) }
                            @if with_endpoint {
                                td { a.url href={"/ui/endpoints/" (plain(&task["endpoint"]["id"]))} { (plain(&task["endpoint"]["url"])) } }
                            }
                            td { (status(&task["response_status"])) }
                            td.num { (task["duration_ms"]) " ms" }
                            td.num { (task["attempt"]) }
                            td.answer { (excerpt(task)) }
                        }
                    }
                }
            }
        }
    }
}

/// The start of what the endpoint answered, or why there was no answer.
fn excerpt(task: &Value) -> String {
    let text = match task["error"].as_str() {
        Some(error) if !error.is_empty() => error.to_owned(),
        _ => plain(&task["response_body"]),
    };
    let mut short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// `GET /ui/tasks/{id}`: one call in full.
pub async fn show(State(state): State<UiState>, visitor: Visitor, Path(id): Path<String>) -> UiResult {
    let base = visitor.base()?;
    let task = state.api.get(&format!("{base}/webhook/task/{}", segment(&id))).await?;
    let request = &task["request"];
    let mut headers: Vec<(String, String)> = request["headers"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), plain(v))).collect())
        .unwrap_or_default();
    headers.sort();
    let content = html! {
        div.heading {
            h1 { "Call " (plain(&task["id"])) }
            @if visitor.may_change() {
                form method="post" action={"/ui/tasks/" (plain(&task["id"])) "/retry"} {
                    (csrf(&visitor)) button.primary type="submit" { "Retry now" }
                }
            }
        }
        dl.config {
            dt { "When" } dd { (plain(&task["datetime"])) }
            dt { "Event" } dd { (plain(&task["event"])) " " code { (plain(&task["event_id"])) } }
            dt { "Endpoint" } dd { a.url href={"/ui/endpoints/" (plain(&task["endpoint"]["id"]))} { (plain(&task["endpoint"]["url"])) } }
            dt { "Attempt" } dd { (task["attempt"]) }
            dt { "Status" } dd { (status(&task["response_status"])) }
            dt { "Duration" } dd { (task["duration_ms"]) " ms" }
            dt { "Delivery" } dd { (plain(&task["delivery"])) }
            @if let Some(error) = task["error"].as_str() {
                dt { "Error" } dd.error-text { (error) }
            }
        }
        section {
            h2 { "Request" }
            p { code { (plain(&request["method"])) " " (plain(&request["url"])) } }
            table.headers { tbody {
                @for (name, value) in &headers { tr { th { (name) } td { code { (value) } } } }
            } }
            h3 { "Body" }
            pre.body { (pretty(&plain(&request["body"]))) }
        }
        section {
            h2 { "Response" }
            p { (status(&task["response_status"])) " after " (task["duration_ms"]) " ms" }
            h3 { "Body, as received (at most 16 KiB)" }
            pre.body id="response-body" { (plain(&task["response_body"])) }
        }
    };
    Ok(page(
        &visitor,
        Section::Calls,
        &format!("Call {}", plain(&task["id"])),
        content,
    ))
}

/// `POST /ui/tasks/{id}/retry`: the call's event, to its endpoint again, now.
pub async fn retry(State(state): State<UiState>, Path(id): Path<String>, Change(form): Change) -> UiResult {
    let base = form.visitor.base()?;
    let task = state
        .api
        .post(&format!("{base}/webhook/task/{}/retry", segment(&id)), json!({}))
        .await?;
    Ok(see_other(&format!(
        "/ui/tasks?endpoint={}",
        segment(&plain(&task["endpoint"]["id"]))
    )))
}
