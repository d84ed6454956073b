//! `GET /restapi/v1/openapi.json` and `GET /admin/v1/openapi.json`: OpenAPI 3.1 documents of
//! the two APIs. The answers' schemas are the very ones `_schema` serves (`schemas::all`),
//! and the bodies' schemas are generated from the types the handlers read, so neither can
//! drift from the code; what is written here by hand is the list of operations, which the
//! test suite checks against the live router (every operation answers) and which
//! schemathesis checks against the live server.
//!
//! JSON Schema 2020-12 is OpenAPI 3.1's own dialect, so a schema goes in as it is, but for
//! its `$defs`, which move to `components/schemas` (a document has one place for them).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::AppState;
use super::accounts::{AccountIn, AccountPatch};
use super::applications::ApplicationIn;
use super::candidates::CandidateIn;
use super::endpoints::{EndpointIn, EndpointPatch, ReplayIn};
use super::events::{EventIn, EventTypeIn};
use super::extract::MAX_LIMIT;
use super::jobs::JobIn;
use super::portal::PortalIn;
use super::schemas;
use super::steps::StepChangeIn;
use super::versions::DeprecationIn;

/// Which API a document describes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Rest,
    Admin,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/restapi/v1/openapi.json", get(|| async { serve(Which::Rest) }))
        .route("/admin/v1/openapi.json", get(|| async { serve(Which::Admin) }))
}

fn serve(which: Which) -> Response {
    static REST: OnceLock<Value> = OnceLock::new();
    static ADMIN: OnceLock<Value> = OnceLock::new();
    let document = match which {
        Which::Rest => REST.get_or_init(|| document(Which::Rest)),
        Which::Admin => ADMIN.get_or_init(|| document(Which::Admin)),
    };
    axum::Json(document).into_response()
}

/// One operation: its method, path, what it reads and what it answers.
struct Op {
    method: &'static str,
    path: String,
    summary: &'static str,
    tag: &'static str,
    query: Vec<Value>,
    /// The body's schema, by the name it is kept under in `components/schemas`.
    body: Option<&'static str>,
    /// The success status and the answer's schema (`None`: no body).
    answer: (u16, Option<&'static str>),
    /// The answer's media type when it is text rather than JSON.
    text: Option<&'static str>,
    /// Answered without credentials.
    open: bool,
}

impl Op {
    fn new(method: &'static str, path: impl Into<String>, summary: &'static str, tag: &'static str) -> Op {
        Op {
            method,
            path: path.into(),
            summary,
            tag,
            query: Vec::new(),
            body: None,
            answer: (200, None),
            text: None,
            open: false,
        }
    }

    /// Answers 200 with text of this media type.
    fn text(mut self, media_type: &'static str) -> Op {
        self.text = Some(media_type);
        self
    }

    fn answers(mut self, status: u16, schema: &'static str) -> Op {
        self.answer = (status, Some(schema));
        self
    }

    fn empty(mut self, status: u16) -> Op {
        self.answer = (status, None);
        self
    }

    fn body(mut self, schema: &'static str) -> Op {
        self.body = Some(schema);
        self
    }

    fn paged(mut self) -> Op {
        self.query.extend([
            query(
                "limit",
                "How many items a page holds.",
                json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 20}),
            ),
            query(
                "since",
                "Only items after this id (newer), oldest first.",
                json!({"type": "string"}),
            ),
            query(
                "pagecursor",
                "The cursor of a page, as `_next` gives it.",
                json!({"type": "string"}),
            ),
        ]);
        self
    }

    fn with_query(mut self, name: &str, description: &str, schema: Value) -> Op {
        self.query.push(query(name, description, schema));
        self
    }

    fn open(mut self) -> Op {
        self.open = true;
        self
    }
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    let mut parameter = json!({"name": name, "in": "query", "required": false, "description": description});
    parameter["schema"] = schema;
    parameter
}

/// A date-time as the API reads it: `YYYY-MM-DD HH:MM:SS` in the configured time zone, or
/// RFC 3339.
fn datetime() -> Value {
    json!({
        "type": "string",
        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?$",
        "examples": ["2021-04-01 12:13:14"]
    })
}

/// The endpoints', their figures' and the history's operations under `base`, the same on
/// both APIs.
fn webhooks(base: &str) -> Vec<Op> {
    let endpoint = format!("{base}/webhook/endpoint/{{id}}");
    let task = format!("{base}/webhook/task/{{id}}");
    vec![
        Op::new("get", format!("{base}/webhook/endpoint"), "The endpoints", "endpoints")
            .answers(200, "webhookendpoints")
            .paged(),
        Op::new(
            "post",
            format!("{base}/webhook/endpoint"),
            "Add an endpoint; its secret is shown in this answer only",
            "endpoints",
        )
        .body("EndpointIn")
        .answers(201, "webhookendpoint"),
        Op::new("get", endpoint.clone(), "One endpoint", "endpoints").answers(200, "webhookendpoint"),
        Op::new("patch", endpoint.clone(), "Change an endpoint", "endpoints")
            .body("EndpointPatch")
            .answers(200, "webhookendpoint"),
        Op::new(
            "delete",
            endpoint.clone(),
            "Delete an endpoint and its pending deliveries",
            "endpoints",
        )
        .empty(204),
        Op::new(
            "post",
            format!("{endpoint}/resume"),
            "Resume a suspended or disabled endpoint",
            "endpoints",
        )
        .answers(200, "webhookendpoint"),
        Op::new(
            "post",
            format!("{endpoint}/secret/rotate"),
            "Rotate the signing secret; the new one is shown in this answer only",
            "endpoints",
        )
        .answers(200, "webhookendpoint"),
        Op::new(
            "post",
            format!("{endpoint}/test"),
            "Send a WebhookTest event to this endpoint alone",
            "endpoints",
        )
        .answers(200, "webhookdispatch"),
        Op::new(
            "post",
            format!("{endpoint}/replay"),
            "Deliver again every event since a date-time",
            "endpoints",
        )
        .body("ReplayIn")
        .answers(200, "webhookdispatch"),
        Op::new(
            "get",
            format!("{endpoint}/stats"),
            "The endpoint's figures over 24 hours or 7 days",
            "endpoints",
        )
        .with_query(
            "window",
            "The window: 24h (by hour) or 7d (by 6 hours).",
            json!({"type": "string", "enum": ["24h", "7d"], "default": "24h"}),
        )
        .answers(200, "webhookendpointstats"),
        Op::new(
            "get",
            format!("{base}/webhook/task"),
            "The call history, newest first",
            "calls",
        )
        .paged()
        .with_query("event", "Only calls of this event type.", json!({"type": "string"}))
        .with_query(
            "response_status",
            "Only calls answered with this status (0: no answer).",
            json!({"type": "integer", "minimum": 0, "maximum": 65535}),
        )
        .with_query(
            "application",
            "Only calls about this application.",
            json!({"type": "integer", "format": "int64"}),
        )
        .with_query("endpoint", "Only calls to this endpoint.", json!({"type": "string"}))
        .with_query("from", "Only calls made at or after this date-time.", datetime())
        .with_query("to", "Only calls made before this date-time.", datetime())
        .answers(200, "webhooktasks"),
        Op::new("get", task.clone(), "One call, with the request as sent", "calls").answers(200, "webhooktask"),
        Op::new(
            "post",
            format!("{task}/retry"),
            "Call the endpoint with this call's event again, now",
            "calls",
        )
        .answers(200, "webhooktask"),
    ]
}

fn rest_ops() -> Vec<Op> {
    let base = "/restapi/v1";
    let mut ops = vec![
        Op::new("get", base, "The collections", "root").answers(200, "root"),
        Op::new("get", format!("{base}/job"), "The jobs", "recruiting")
            .answers(200, "jobs")
            .paged(),
        Op::new("post", format!("{base}/job"), "Open a job", "recruiting")
            .body("JobIn")
            .answers(201, "job"),
        Op::new("get", format!("{base}/job/{{id}}"), "One job", "recruiting").answers(200, "job"),
        Op::new(
            "get",
            format!("{base}/job/{{id}}/application"),
            "A job's applications",
            "recruiting",
        )
        .answers(200, "applications")
        .paged(),
        Op::new("get", format!("{base}/candidate"), "The candidates", "recruiting")
            .answers(200, "candidates")
            .paged(),
        Op::new("post", format!("{base}/candidate"), "Add a candidate", "recruiting")
            .body("CandidateIn")
            .answers(201, "candidate"),
        Op::new("get", format!("{base}/candidate/{{id}}"), "One candidate", "recruiting").answers(200, "candidate"),
        Op::new(
            "get",
            format!("{base}/candidate/{{id}}/application"),
            "A candidate's applications",
            "recruiting",
        )
        .answers(200, "applications")
        .paged(),
        Op::new("get", format!("{base}/application"), "The applications", "recruiting")
            .answers(200, "applications")
            .paged(),
        Op::new(
            "post",
            format!("{base}/application"),
            "Apply a candidate to a job (ApplicationCreate)",
            "recruiting",
        )
        .body("ApplicationIn")
        .answers(201, "application"),
        Op::new(
            "get",
            format!("{base}/application/{{id}}"),
            "One application",
            "recruiting",
        )
        .answers(200, "application"),
        Op::new(
            "delete",
            format!("{base}/application/{{id}}"),
            "Delete an application (ApplicationDelete)",
            "recruiting",
        )
        .empty(204),
        Op::new("get", format!("{base}/step"), "The step changes", "recruiting")
            .answers(200, "steps")
            .paged(),
        Op::new(
            "post",
            format!("{base}/step"),
            "Move an application to a step (ProcessStepChange)",
            "recruiting",
        )
        .body("StepChangeIn")
        .answers(201, "step"),
        Op::new("get", format!("{base}/step/{{id}}"), "One step change", "recruiting").answers(200, "step"),
        Op::new(
            "get",
            format!("{base}/process/{{id}}"),
            "The hiring process and its steps",
            "recruiting",
        )
        .answers(200, "process"),
        Op::new(
            "get",
            format!("{base}/webhook/event"),
            "The event types an endpoint can subscribe to",
            "events",
        )
        .answers(200, "webhookevents")
        .paged(),
        Op::new(
            "get",
            format!("{base}/webhook/event/{{name}}"),
            "One event type, with its schemas",
            "events",
        )
        .answers(200, "webhookevent"),
        Op::new(
            "get",
            "/restapi/schemav1/{name}",
            "The JSON Schema an answer names in `_schema`",
            "schemas",
        )
        .open(),
        Op::new("get", "/restapi/v1/openapi.json", "This document", "schemas").open(),
    ];
    ops.extend(webhooks(base));
    ops
}

fn admin_ops() -> Vec<Op> {
    let account = "/admin/v1/account/{login}";
    let version = "/admin/v1/webhook-version/{version}";
    let mut ops = vec![
        Op::new("get", "/admin/v1/account", "The accounts", "accounts")
            .answers(200, "accounts")
            .paged(),
        Op::new(
            "post",
            "/admin/v1/account",
            "Create an account and its hiring process",
            "accounts",
        )
        .body("AccountIn")
        .answers(201, "account"),
        Op::new("get", account, "One account", "accounts").answers(200, "account"),
        Op::new(
            "patch",
            account,
            "Change an account's name, password or e-mail",
            "accounts",
        )
        .body("AccountPatch")
        .answers(200, "account"),
        Op::new(
            "delete",
            account,
            "Delete an account and everything it owns",
            "accounts",
        )
        .empty(204),
        Op::new(
            "post",
            format!("{account}/portal"),
            "A one-time link into the account's dashboard",
            "accounts",
        )
        .body("PortalIn")
        .answers(201, "portal"),
        Op::new("get", "/admin/v1/event-type", "The event types", "events")
            .answers(200, "webhookevents")
            .paged(),
        Op::new(
            "post",
            "/admin/v1/event-type",
            "Register a host product's event type",
            "events",
        )
        .body("EventTypeIn")
        .answers(201, "webhookevent"),
        Op::new(
            "post",
            format!("{account}/event"),
            "Publish an event to the account's endpoints",
            "events",
        )
        .body("EventIn")
        .answers(201, "event"),
        Op::new(
            "get",
            format!("{account}/event/{{id}}"),
            "One published event",
            "events",
        )
        .answers(200, "event"),
        Op::new(
            "get",
            "/admin/v1/webhook-version",
            "The webhook format versions",
            "versions",
        )
        .answers(200, "webhookversions"),
        Op::new("get", version, "One webhook format version", "versions").answers(200, "webhookversion"),
        Op::new(
            "post",
            format!("{version}/deprecate"),
            "Deprecate a version until a sunset date",
            "versions",
        )
        .body("DeprecationIn")
        .answers(200, "webhookversion"),
        Op::new(
            "delete",
            format!("{version}/deprecate"),
            "Lift a deprecation",
            "versions",
        )
        .answers(200, "webhookversion"),
        Op::new("get", "/healthz", "Alive: answered without the database", "operations")
            .text("text/plain")
            .open(),
        Op::new(
            "get",
            "/readyz",
            "Ready: the database answers within a second (503 otherwise)",
            "operations",
        )
        .text("text/plain")
        .open(),
        Op::new(
            "get",
            "/metrics",
            "Prometheus metrics (OpenMetrics when asked for)",
            "operations",
        )
        .text("text/plain")
        .open(),
        Op::new("get", "/admin/v1/openapi.json", "This document", "operations").open(),
    ];
    ops.extend(webhooks(account));
    ops
}

/// The schemas the bodies are read with, by name.
fn body_schemas() -> Vec<(&'static str, Value)> {
    fn of<T: schemars::JsonSchema>() -> Value {
        serde_json::to_value(schemars::schema_for!(T)).expect("a schema serialises")
    }
    vec![
        ("JobIn", of::<JobIn>()),
        ("CandidateIn", of::<CandidateIn>()),
        ("ApplicationIn", of::<ApplicationIn>()),
        ("StepChangeIn", of::<StepChangeIn>()),
        ("EndpointIn", of::<EndpointIn>()),
        ("EndpointPatch", of::<EndpointPatch>()),
        ("ReplayIn", of::<ReplayIn>()),
        ("AccountIn", of::<AccountIn>()),
        ("AccountPatch", of::<AccountPatch>()),
        ("PortalIn", of::<PortalIn>()),
        ("EventTypeIn", of::<EventTypeIn>()),
        ("EventIn", of::<EventIn>()),
        ("DeprecationIn", of::<DeprecationIn>()),
    ]
}

/// Puts a schema into `components/schemas` under `name`, its `$defs` beside it, and points
/// its references there.
fn place(components: &mut BTreeMap<String, Value>, name: &str, mut schema: Value) {
    if let Some(Value::Object(defs)) = schema.as_object_mut().and_then(|o| o.remove("$defs")) {
        for (def, mut value) in defs {
            repoint(&mut value);
            match components.get(&def) {
                Some(existing) => assert_eq!(
                    existing, &value,
                    "two schemas define {def} differently; rename one type"
                ),
                None => {
                    components.insert(def, value);
                }
            }
        }
    }
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        object.remove("$id");
    }
    repoint(&mut schema);
    components.insert(name.to_owned(), schema);
}

/// `#/$defs/X` becomes `#/components/schemas/X`, everywhere in the value; and a property or
/// item that may be anything, the boolean schema `true`, becomes `{}`, which means the same
/// and which client generators read (some take no boolean schema).
fn repoint(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get_mut("$ref") {
                if let Some(def) = reference.strip_prefix("#/$defs/") {
                    *reference = format!("#/components/schemas/{def}");
                }
            }
            if let Some(Value::Object(properties)) = object.get_mut("properties") {
                for property in properties.values_mut().filter(|p| **p == Value::Bool(true)) {
                    *property = json!({});
                }
            }
            if object.get("items") == Some(&Value::Bool(true)) {
                object.insert("items".into(), json!({}));
            }
            object.values_mut().for_each(repoint);
        }
        Value::Array(items) => items.iter_mut().for_each(repoint),
        _ => {}
    }
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// What every operation may answer besides its success, all in the error envelope.
fn errors(op: &Op) -> Vec<(u16, &'static str)> {
    let mut errors = vec![
        (400, "A malformed query, body or header"),
        (404, "Nothing at this path for this caller"),
    ];
    if !op.open {
        errors.push((401, "No credentials, or wrong ones"));
        errors.push((429, "Too many calls, or too many failed logins; see Retry-After"));
    }
    errors.push((503, "The database cannot be reached or is full; see Retry-After"));
    if op.method != "get" {
        errors.push((
            409,
            "A conflict with what is stored, or the same Idempotency-Key still in flight",
        ));
        errors.push((408, "The body did not arrive in time"));
        errors.push((413, "The body is over 1 MiB"));
        errors.push((415, "The body is not application/json"));
        errors.push((
            422,
            "The body breaks a rule, or the Idempotency-Key was used for another request",
        ));
    }
    errors.sort_unstable();
    errors
}

fn operation(op: &Op) -> Value {
    let mut parameters: Vec<Value> = path_params(&op.path)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}))
        .collect();
    parameters.extend(op.query.iter().cloned());
    if op.method == "post" && !op.open {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Makes the write once: a repeat within 24 hours gets the first answer again.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"}
        }));
    }
    let mut responses = Map::new();
    let (status, schema) = op.answer;
    let success = match (schema, op.text) {
        (Some(name), _) => json!({"description": "Done", "content": {"application/json": {"schema": reference(name)}}}),
        (None, Some(media_type)) => {
            json!({"description": "Done", "content": {media_type: {"schema": {"type": "string"}}}})
        }
        (None, None) if op.path.starts_with("/restapi/schemav1") => json!({
            "description": "A JSON Schema, draft 2020-12",
            "content": {"application/schema+json": {"schema": {"type": "object"}}}
        }),
        (None, None) if op.path.ends_with("/openapi.json") => json!({
            "description": "An OpenAPI 3.1 document",
            "content": {"application/json": {"schema": {"type": "object"}}}
        }),
        (None, None) => json!({"description": "Done; no body"}),
    };
    responses.insert(status.to_string(), success);
    for (status, description) in errors(op) {
        responses.insert(
            status.to_string(),
            json!({"description": description, "content": {"application/json": {"schema": reference("error")}}}),
        );
    }
    let mut operation = json!({
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": operation_id(op),
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(body) = op.body {
        operation["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": reference(body)}}
        });
    }
    if op.open {
        operation["security"] = json!([]);
    }
    operation
}

/// A stable, unique id: the method and the path's words.
fn operation_id(op: &Op) -> String {
    let words: Vec<String> = op
        .path
        .split(['/', '-', '.'])
        .filter(|w| !w.is_empty() && *w != "restapi" && *w != "admin" && *w != "v1")
        .map(|w| w.trim_matches(|c| c == '{' || c == '}').to_owned())
        .collect();
    format!("{}_{}", op.method, words.join("_"))
}

/// The path parameters of a path, in order.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// OpenAPI links from what makes or lists a resource to what works on one, so that a
/// stateful test (schemathesis') reaches real resources rather than 404s: a creation's
/// answer, or a collection's first item, gives the id of the path one segment deeper; the
/// other path parameters are the request's own.
fn links(op: &Op, ops: &[Op]) -> Map<String, Value> {
    let mut links = Map::new();
    let creates = op.method == "post" && op.answer.0 == 201;
    let lists = op.method == "get" && op.query.iter().any(|q| q["name"] == "pagecursor");
    if !creates && !lists {
        return links;
    }
    let own = path_params(&op.path);
    for target in ops {
        let Some(rest) = target.path.strip_prefix(&format!("{}/", op.path)) else {
            continue;
        };
        let Some(first) = rest.split('/').next() else { continue };
        let Some(name) = first.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            continue;
        };
        let field = if name == "id" { "id" } else { name };
        let source = if creates {
            format!("$response.body#/{field}")
        } else {
            format!("$response.body#/items/0/{field}")
        };
        let mut parameters = Map::new();
        for param in path_params(&target.path) {
            let value = if param == name {
                source.clone()
            } else if own.contains(&param) {
                format!("$request.path.{param}")
            } else {
                continue;
            };
            parameters.insert(param.to_owned(), Value::String(value));
        }
        links.insert(
            operation_id(target),
            json!({"operationId": operation_id(target), "parameters": parameters}),
        );
    }
    links
}

fn document(which: Which) -> Value {
    let ops = match which {
        Which::Rest => rest_ops(),
        Which::Admin => admin_ops(),
    };
    let mut components = BTreeMap::new();
    for (name, schema) in schemas::all() {
        place(&mut components, name, schema.clone());
    }
    for (name, schema) in body_schemas() {
        place(&mut components, name, schema);
    }
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for op in &ops {
        let mut operation = operation(op);
        let links = links(op, &ops);
        if !links.is_empty() {
            let status = op.answer.0.to_string();
            operation["responses"][&status]["links"] = Value::Object(links);
        }
        paths
            .entry(op.path.clone())
            .or_default()
            .insert(op.method.to_owned(), operation);
    }
    let (title, description, security) = match which {
        Which::Rest => (
            "Herald REST API",
            "An account's API: its recruiting data, its webhook endpoints and its call history. \
             HTTP Basic with the account's login and password.",
            json!({"basic": {"type": "http", "scheme": "basic"}}),
        ),
        Which::Admin => (
            "Herald admin API",
            "Support's API: accounts, event types, publishing, webhook versions, and every \
             account's endpoints and history. The admin token as a bearer token.",
            json!({"bearer": {"type": "http", "scheme": "bearer"}}),
        ),
    };
    let scheme = security
        .as_object()
        .and_then(|o| o.keys().next().cloned())
        .unwrap_or_default();
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": env!("CARGO_PKG_VERSION"), "description": description},
        "servers": [{"url": "/"}],
        "security": [{scheme: []}],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": security},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_names_a_component_and_every_operation_id_is_unique() {
        for document in [document(Which::Rest), document(Which::Admin)] {
            let components = document["components"]["schemas"].as_object().unwrap();
            let text = document.to_string();
            for reference in text.split("\"$ref\":\"").skip(1) {
                let target = reference.split('"').next().unwrap();
                let name = target
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("{target}"));
                assert!(components.contains_key(name), "{target}");
            }
            assert!(!text.contains("#/$defs/"));
            let mut ids: Vec<&str> = document["paths"]
                .as_object()
                .unwrap()
                .values()
                .flat_map(|ops| ops.as_object().unwrap().values())
                .map(|op| op["operationId"].as_str().unwrap())
                .collect();
            let all = ids.len();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), all, "unique operation ids");
        }
    }
}
