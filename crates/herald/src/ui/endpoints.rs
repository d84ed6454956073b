//! The endpoints: the list with each one's health over the last day, one endpoint with its
//! configuration, figures and actions, and the form that creates or edits one.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::layout::{Section, csrf, page};
use super::session::{Change, Visitor};
use super::text::{ms, plain, rate, state_badge, status};
use super::{UiError, UiResult, UiState, charts};
use crate::domain::endpoint::MASK;

/// A 303 to `to`, the answer to a form that worked.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// A path segment as the API's paths take it.
pub fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// `GET /ui`: every endpoint with its state, its last day's success rate, latency and calls,
/// and its last call.
pub async fn list(State(state): State<UiState>, visitor: Visitor) -> UiResult {
    let base = visitor.base()?;
    let api = &state.api;
    let listing = api.get(&format!("{base}/webhook/endpoint?limit=100")).await?;
    let endpoints = listing["items"].as_array().cloned().unwrap_or_default();
    let mut rows = Vec::with_capacity(endpoints.len());
    for endpoint in &endpoints {
        let id = segment(endpoint["id"].as_str().unwrap_or_default());
        let stats = api.get(&format!("{base}/webhook/endpoint/{id}/stats")).await?;
        let last = api.get(&format!("{base}/webhook/task?endpoint={id}&limit=1")).await?;
        rows.push((endpoint, stats, last["items"].get(0).cloned()));
    }
    let more = listing["_next"].as_str().is_some_and(|next| !next.is_empty());
    let content = html! {
        div.heading {
            h1 { "Endpoints" }
            @if visitor.may_change() {
                a.button href="/ui/endpoints/new" { "Add an endpoint" }
            }
        }
        @if rows.is_empty() {
            p.empty { "No endpoint yet. An endpoint is a URL that Herald calls when something happens to an application." }
        } @else {
            table.endpoints {
                thead { tr {
                    th { "Endpoint" } th { "State" } th.num { "Success, 24 h" } th.num { "p50 / p95" }
                    th { "Calls, 24 h" } th { "Last call" }
                } }
                tbody {
                    @for (endpoint, stats, last) in &rows {
                        tr {
                            td {
                                a.url href={"/ui/endpoints/" (plain(&endpoint["id"]))} { (plain(&endpoint["url"])) }
                                @let description = plain(&endpoint["description"]);
                                @if !description.is_empty() { div.muted { (description) } }
                            }
                            td { (state_badge(&endpoint["state"])) }
                            td.num { (rate(&stats["success_rate"])) div.muted { (stats["calls"]) " calls" } }
                            td.num { (ms(&stats["latency_ms"]["p50"])) " / " (ms(&stats["latency_ms"]["p95"])) }
                            td { (charts::sparkline(stats["series"].as_array().map_or(&[][..], Vec::as_slice))) }
                            td {
                                @match last {
                                    Some(task) => {
                                        a href={"/ui/tasks/" (plain(&task["id"]))} { (status(&task["response_status"])) }
                                        " " span.muted.nowrap { (plain(&task["datetime"])) }
                                    }
                                    None => span.muted { "never called" },
                                }
                            }
                        }
                    }
                }
            }
            @if more { p.muted { "The first 100 endpoints are shown." } }
        }
    };
    Ok(page(&visitor, Section::Endpoints, "Endpoints", content))
}

#[derive(Deserialize)]
pub struct WindowQuery {
    window: Option<String>,
}

/// `GET /ui/endpoints/{id}`: one endpoint, its figures over 24 h or 7 d, its last calls and
/// what can be done with it.
pub async fn show(
    State(state): State<UiState>,
    visitor: Visitor,
    Path(id): Path<String>,
    Query(query): Query<WindowQuery>,
) -> UiResult {
    let base = visitor.base()?;
    let path = format!("{base}/webhook/endpoint/{}", segment(&id));
    let endpoint = state.api.get(&path).await?;
    let week = query.window.as_deref() == Some("7d");
    let window = if week { "7d" } else { "24h" };
    let stats = state.api.get(&format!("{path}/stats?window={window}")).await?;
    let calls = state
        .api
        .get(&format!("{base}/webhook/task?endpoint={}&limit=10", segment(&id)))
        .await?;
    let series = stats["series"].as_array().cloned().unwrap_or_default();
    let failures_by_status: Vec<(String, i64)> = counts(&stats["by_status"])
        .into_iter()
        .filter(|(code, _)| !code.starts_with('2'))
        .map(|(code, n)| (if code == "0" { "no answer".into() } else { code }, n))
        .collect();
    let content = html! {
        div.heading {
            div {
                h1.url { (plain(&endpoint["url"])) }
                @let description = plain(&endpoint["description"]);
                @if !description.is_empty() { p.muted { (description) } }
            }
            (state_badge(&endpoint["state"]))
        }
        (health_note(&endpoint))
        @if visitor.may_change() { (actions(&visitor, &id, &endpoint)) }
        section {
            div.heading {
                h2 { "Calls" }
                nav.tabs {
                    a href={"/ui/endpoints/" (id)} class=[(!week).then_some("active")] { "Last 24 hours" }
                    a href={"/ui/endpoints/" (id) "?window=7d"} class=[week.then_some("active")] { "Last 7 days" }
                }
            }
            div.figures {
                div { span.big { (stats["calls"]) } " calls" }
                div { span.big { (rate(&stats["success_rate"])) } " succeeded" }
                div { span.big { (ms(&stats["latency_ms"]["p50"])) } " p50" }
                div { span.big { (ms(&stats["latency_ms"]["p95"])) } " p95" }
                div { span.big { (ms(&stats["latency_ms"]["p99"])) } " p99" }
            }
            h3 { "Calls " (if week { "every 6 hours" } else { "by hour" }) " " (charts::legend_calls()) }
            (charts::calls(&series, week))
            h3 { "Latency " (charts::legend_latency()) }
            (charts::latency(&series, week))
            div.columns {
                div { h3 { "Failures by status" } (charts::bars(&failures_by_status, true)) }
                div { h3 { "Failures by cause" } (charts::bars(&counts(&stats["by_failure"]), true)) }
            }
        }
        section {
            div.heading {
                h2 { "Last calls" }
                a href={"/ui/tasks?endpoint=" (segment(&id))} { "All calls to this endpoint →" }
            }
            (super::tasks::table(calls["items"].as_array().map_or(&[][..], Vec::as_slice), false))
        }
        section {
            h2 { "Configuration" }
            (configuration(&endpoint, visitor.may_change()))
        }
    };
    Ok(page(&visitor, Section::Endpoints, &plain(&endpoint["url"]), content))
}

/// A JSON object of counts as pairs, largest first.
fn counts(object: &Value) -> Vec<(String, i64)> {
    let mut pairs: Vec<(String, i64)> = object
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0))).collect())
        .unwrap_or_default();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    pairs
}

/// Why a resting endpoint gets no calls, and what brings it back.
fn health_note(endpoint: &Value) -> Markup {
    let failures = endpoint["consecutive_failures"].as_i64().unwrap_or(0);
    match endpoint["state"].as_str() {
        Some("suspended") => html! {
            p.note.warn {
                "Suspended after " (failures) " failures in a row: Herald tries one call at "
                (plain(&endpoint["suspended_until"])) " and resumes the endpoint if it succeeds. "
                "Resume it now once it is fixed."
            }
        },
        Some("disabled") => html! {
            p.note.bad { "Disabled: it failed for days, or answered 410 Gone. Herald calls it no more until it is resumed." }
        },
        _ if failures > 0 => html! {
            p.note.warn { (failures) " failures in a row; the next calls are retried on the schedule." }
        },
        _ => html! {},
    }
}

fn actions(visitor: &Visitor, id: &str, endpoint: &Value) -> Markup {
    let at = |action: &str| format!("/ui/endpoints/{id}/{action}");
    html! {
        div.actions {
            form method="post" action=(at("test")) {
                (csrf(visitor)) button type="submit" { "Send a test event" }
            }
            @if endpoint["state"].as_str() != Some("active") {
                form method="post" action=(at("resume")) {
                    (csrf(visitor)) button.primary type="submit" { "Resume" }
                }
            }
            a.button href=(at("edit")) { "Edit" }
            form method="post" action=(at("rotate-secret")) data-confirm="Rotate the signing secret? The old one keeps signing during its grace period." {
                (csrf(visitor)) button type="submit" { "Rotate the secret" }
            }
            form.replay method="post" action=(at("replay")) {
                (csrf(visitor))
                label { "Replay since " input name="since" type="text" placeholder="YYYY-MM-DD HH:MM:SS" required; }
                button type="submit" { "Replay" }
            }
            form method="post" action=(at("delete")) data-confirm="Delete this endpoint and its pending calls? This cannot be undone." {
                (csrf(visitor)) button.danger type="submit" { "Delete" }
            }
        }
    }
}

/// The endpoint's settings; header values and credentials masked for a `view` session.
fn configuration(endpoint: &Value, may_change: bool) -> Markup {
    let list = |value: &Value| -> String {
        value
            .as_array()
            .map(|items| items.iter().map(plain).collect::<Vec<_>>().join(", "))
            .unwrap_or_else(|| "the server's".into())
    };
    let headers: Vec<(String, String)> = endpoint["headers"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), if may_change { plain(v) } else { MASK.into() }))
                .collect()
        })
        .unwrap_or_default();
    let auth = &endpoint["auth"];
    html! {
        dl.config {
            dt { "Id" } dd { code { (plain(&endpoint["id"])) } }
            dt { "Events" } dd { (list(&endpoint["events"])) }
            dt { "Format version" } dd { (plain(&endpoint["version"])) }
            dt { "Ordering" } dd { (plain(&endpoint["ordering"])) }
            dt { "Rate limit" } dd {
                @match endpoint["rate_limit"].as_i64() { Some(n) => { (n) " calls a second" } None => "none" }
            }
            dt { "Time-out" } dd { @if endpoint["timeout"].is_null() { "the server's" } @else { (plain(&endpoint["timeout"])) } }
            dt { "Retry schedule" } dd { (list(&endpoint["retry_schedule"])) }
            dt { "Filter" } dd {
                @if endpoint["filter"].is_null() { "none: every event it subscribes to" }
                @else { pre { (serde_json::to_string_pretty(&endpoint["filter"]).unwrap_or_default()) } }
            }
            dt { "Extra headers" } dd {
                @if headers.is_empty() { "none" }
                @for (name, value) in &headers { div { code { (name) ": " (value) } } }
            }
            dt { "Credentials" } dd {
                @if auth.is_null() { "none" } @else { (plain(&auth["type"])) " (masked)" }
            }
            dt { "Signing secret" } dd { "shown only when made or rotated" }
            dt { "Failures in a row" } dd { (endpoint["consecutive_failures"]) }
            dt { "Created" } dd { (plain(&endpoint["created"])) }
            dt { "Changed" } dd { (plain(&endpoint["updated"])) }
        }
    }
}

/// `POST /ui/endpoints/{id}/test`.
pub async fn test(State(state): State<UiState>, Path(id): Path<String>, Change(form): Change) -> UiResult {
    let base = form.visitor.base()?;
    state
        .api
        .post(&format!("{base}/webhook/endpoint/{}/test", segment(&id)), json!({}))
        .await?;
    Ok(see_other(&format!("/ui/tasks?endpoint={}&tested=1", segment(&id))))
}

/// `POST /ui/endpoints/{id}/resume`.
pub async fn resume(State(state): State<UiState>, Path(id): Path<String>, Change(form): Change) -> UiResult {
    let base = form.visitor.base()?;
    state
        .api
        .post(&format!("{base}/webhook/endpoint/{}/resume", segment(&id)), json!({}))
        .await?;
    Ok(see_other(&format!("/ui/endpoints/{}", segment(&id))))
}

/// `POST /ui/endpoints/{id}/replay`: every event since the date-time, delivered again.
pub async fn replay(State(state): State<UiState>, Path(id): Path<String>, Change(form): Change) -> UiResult {
    let base = form.visitor.base()?;
    let since = form.field("since").trim().to_owned();
    let replay = state
        .api
        .post(
            &format!("{base}/webhook/endpoint/{}/replay", segment(&id)),
            json!({"since": since}),
        )
        .await?;
    let count = replay["deliveries"].as_u64().unwrap_or(0);
    Ok(see_other(&format!(
        "/ui/tasks?endpoint={}&replayed={count}",
        segment(&id)
    )))
}

/// `POST /ui/endpoints/{id}/delete`.
pub async fn delete(State(state): State<UiState>, Path(id): Path<String>, Change(form): Change) -> UiResult {
    let base = form.visitor.base()?;
    state
        .api
        .delete(&format!("{base}/webhook/endpoint/{}", segment(&id)))
        .await?;
    Ok(see_other("/ui"))
}

/// `POST /ui/endpoints/{id}/rotate-secret`: the new secret, shown on this page once.
pub async fn rotate_secret(State(state): State<UiState>, Path(id): Path<String>, Change(form): Change) -> UiResult {
    let base = form.visitor.base()?;
    let endpoint = state
        .api
        .post(
            &format!("{base}/webhook/endpoint/{}/secret/rotate", segment(&id)),
            json!({}),
        )
        .await?;
    Ok(secret_page(&form.visitor, &endpoint, "The signing secret was rotated"))
}

/// A page that shows a secret just made, this once.
fn secret_page(visitor: &Visitor, endpoint: &Value, title: &str) -> Response {
    let id = plain(&endpoint["id"]);
    page(
        visitor,
        Section::Endpoints,
        title,
        html! {
            h1 { (title) }
            p { "The signing secret of " code { (plain(&endpoint["url"])) } ":" }
            p.secret { code id="secret" { (plain(&endpoint["secret"])) } }
            p.note.warn {
                "Copy it now into the receiver's configuration: it is not shown again. "
                "During the grace period, calls carry a signature with the previous secret too."
            }
            p { a.button href={"/ui/endpoints/" (id)} { "Go to the endpoint" } }
        },
    )
}

/// `GET /ui/endpoints/new`.
pub async fn new_form(State(state): State<UiState>, visitor: Visitor) -> UiResult {
    visitor.account()?;
    visitor.changer()?;
    let types = event_types(&state).await?;
    Ok(page(
        &visitor,
        Section::Endpoints,
        "Add an endpoint",
        html! {
            h1 { "Add an endpoint" }
            (endpoint_form(&visitor, "/ui/endpoints/new", &Value::Null, &types, None))
        },
    ))
}

/// `POST /ui/endpoints/new`: the new endpoint's secret, shown once.
pub async fn create(State(state): State<UiState>, Change(form): Change) -> UiResult {
    let base = form.visitor.base()?;
    let body = match endpoint_body(&form, true) {
        Ok(body) => body,
        Err(problem) => return refill(&state, &form, "/ui/endpoints/new", &Value::Null, problem).await,
    };
    match state.api.post(&format!("{base}/webhook/endpoint"), body).await {
        Ok(endpoint) => Ok(secret_page(&form.visitor, &endpoint, "The endpoint was added")),
        Err(refused) if refused.status.is_client_error() => {
            refill(&state, &form, "/ui/endpoints/new", &Value::Null, refused.message).await
        }
        Err(refused) => Err(refused.into()),
    }
}

/// `GET /ui/endpoints/{id}/edit`.
pub async fn edit_form(State(state): State<UiState>, visitor: Visitor, Path(id): Path<String>) -> UiResult {
    let base = visitor.base()?;
    visitor.changer()?;
    let endpoint = state
        .api
        .get(&format!("{base}/webhook/endpoint/{}", segment(&id)))
        .await?;
    let types = event_types(&state).await?;
    let action = format!("/ui/endpoints/{}/edit", segment(&id));
    Ok(page(
        &visitor,
        Section::Endpoints,
        "Edit the endpoint",
        html! {
            h1 { "Edit the endpoint" }
            (endpoint_form(&visitor, &action, &endpoint, &types, None))
        },
    ))
}

/// `POST /ui/endpoints/{id}/edit`.
pub async fn edit(State(state): State<UiState>, Path(id): Path<String>, Change(form): Change) -> UiResult {
    let base = form.visitor.base()?;
    let path = format!("{base}/webhook/endpoint/{}", segment(&id));
    let action = format!("/ui/endpoints/{}/edit", segment(&id));
    let before = state.api.get(&path).await?;
    let body = match endpoint_body(&form, false) {
        Ok(body) => body,
        Err(problem) => return refill(&state, &form, &action, &before, problem).await,
    };
    match state.api.patch(&path, body).await {
        Ok(_) => Ok(see_other(&format!("/ui/endpoints/{}", segment(&id)))),
        Err(refused) if refused.status.is_client_error() => {
            refill(&state, &form, &action, &before, refused.message).await
        }
        Err(refused) => Err(refused.into()),
    }
}

/// The form again, with what was typed and what was wrong with it (422).
async fn refill(
    state: &UiState,
    form: &super::session::Posted,
    action: &str,
    before: &Value,
    problem: String,
) -> UiResult {
    let types = event_types(state).await?;
    let mut typed = before.as_object().cloned().unwrap_or_default();
    for key in [
        "url",
        "description",
        "version",
        "ordering",
        "rate_limit",
        "timeout",
        "retry_schedule",
        "headers",
        "filter",
    ] {
        typed.insert(key.into(), Value::String(form.field(key).to_owned()));
    }
    typed.insert("events".into(), json!(form.all("events")));
    let mut response = page(
        &form.visitor,
        Section::Endpoints,
        "Check the endpoint",
        html! {
            h1 { "Check the endpoint" }
            (endpoint_form(&form.visitor, action, &Value::Object(typed), &types, Some(&problem)))
        },
    );
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

async fn event_types(state: &UiState) -> Result<Vec<Value>, UiError> {
    let types = state.api.get("/admin/v1/event-type?limit=100").await?;
    Ok(types["items"].as_array().cloned().unwrap_or_default())
}

/// A form's text as it was typed, or the stored value as the form shows it.
fn shown(endpoint: &Value, key: &str) -> String {
    match &endpoint[key] {
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Object(map) if key == "headers" => map
            .iter()
            .map(|(k, v)| format!("{k}: {}", plain(v)))
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Object(_) => serde_json::to_string_pretty(&endpoint[key]).unwrap_or_default(),
        other => plain(other),
    }
}

fn endpoint_form(visitor: &Visitor, action: &str, endpoint: &Value, types: &[Value], problem: Option<&str>) -> Markup {
    let subscribed: Vec<String> = endpoint["events"]
        .as_array()
        .map(|e| e.iter().map(plain).collect())
        .unwrap_or_default();
    let version = shown(endpoint, "version");
    let ordering = shown(endpoint, "ordering");
    html! {
        @if let Some(problem) = problem { p.error role="alert" { (problem) } }
        form.card.wide method="post" action=(action) {
            (csrf(visitor))
            label { "URL" input name="url" type="url" required value=(shown(endpoint, "url")) placeholder="https://example.com/webhooks"; }
            label { "Description" input name="description" value=(shown(endpoint, "description")); }
            fieldset {
                legend { "Events" }
                label.check { input type="checkbox" name="events" value="*" checked[subscribed.iter().any(|e| e == "*")]; " every type (*)" }
                @for t in types {
                    @let name = plain(&t["name"]);
                    label.check title=(plain(&t["description"])) {
                        input type="checkbox" name="events" value=(name) checked[subscribed.contains(&name)]; " " (name)
                    }
                }
            }
            div.row {
                label { "Format version"
                    select name="version" {
                        option value="1" selected[version != "2"] { "1: the seed's format" }
                        option value="2" selected[version == "2"] { "2: Standard Webhooks" }
                    }
                }
                label { "Ordering"
                    select name="ordering" {
                        option value="parallel" selected[ordering != "fifo"] { "parallel" }
                        option value="fifo" selected[ordering == "fifo"] { "fifo: in order per application" }
                    }
                }
                label { "Rate limit (calls a second)" input name="rate_limit" inputmode="numeric" value=(shown(endpoint, "rate_limit")) placeholder="none"; }
                label { "Time-out" input name="timeout" value=(shown(endpoint, "timeout")) placeholder="the server's, such as 30s"; }
            }
            label { "Retry schedule" input name="retry_schedule" value=(shown(endpoint, "retry_schedule")) placeholder="the server's, such as 5s, 5m, 30m, 2h"; }
            label { "Extra headers, one per line" textarea name="headers" rows="3" placeholder="X-Tenant: acme" { (shown(endpoint, "headers")) } }
            label { "Filter (JSON)" textarea name="filter" rows="4" placeholder="{\"data.step.status\": \"END\"}" { (shown(endpoint, "filter")) } }
            button.primary type="submit" { "Save" }
        }
    }
}

/// The API body a posted endpoint form asks for: blank fields are the server's defaults (on
/// creation, left out; on an edit, `null`).
fn endpoint_body(form: &super::session::Posted, creating: bool) -> Result<Value, String> {
    let mut body = Map::new();
    let text = |name: &str| form.field(name).trim().to_owned();
    body.insert("url".into(), json!(text("url")));
    body.insert("description".into(), json!(text("description")));
    body.insert("events".into(), json!(form.all("events")));
    body.insert("version".into(), json!(text("version")));
    body.insert("ordering".into(), json!(text("ordering")));
    let blank = |body: &mut Map<String, Value>, key: &str| {
        if !creating {
            body.insert(key.into(), Value::Null);
        }
    };
    match text("rate_limit") {
        t if t.is_empty() => blank(&mut body, "rate_limit"),
        t => {
            let n: u32 = t
                .parse()
                .map_err(|_| format!("rate_limit: {t:?} is not a whole number"))?;
            body.insert("rate_limit".into(), json!(n));
        }
    }
    match text("timeout") {
        t if t.is_empty() => blank(&mut body, "timeout"),
        t => {
            body.insert("timeout".into(), json!(t));
        }
    }
    match text("retry_schedule") {
        t if t.is_empty() => blank(&mut body, "retry_schedule"),
        t => {
            let delays: Vec<&str> = t.split(',').map(str::trim).filter(|d| !d.is_empty()).collect();
            body.insert("retry_schedule".into(), json!(delays));
        }
    }
    let mut headers = Map::new();
    for line in form.field("headers").lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("headers: write each as \"Name: value\", not {line:?}"))?;
        headers.insert(name.trim().to_owned(), json!(value.trim()));
    }
    body.insert("headers".into(), Value::Object(headers));
    match text("filter") {
        t if t.is_empty() => blank(&mut body, "filter"),
        t => {
            let filter: Value = serde_json::from_str(&t).map_err(|e| format!("filter: not JSON ({e})"))?;
            body.insert("filter".into(), filter);
        }
    }
    Ok(Value::Object(body))
}
