//! What ships under `deploy/`: the Prometheus alerting rules pass `promtool check rules` and
//! fire on their sample series (`promtool test rules`), Herald's own `/metrics` passes
//! `promtool check metrics`, and the rules and the Grafana dashboard name only metrics that
//! Herald serves. promtool comes from `scripts/promtool`, which `scripts/test` runs.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::delivery::{WAIT, subscribe, tasks};
use crate::helpers::spawn_app;
use crate::receiver::TestReceiver;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// promtool, when the suite was started by `scripts/test` (which fetches it).
fn promtool() -> Option<PathBuf> {
    let tool = std::env::var_os("HERALD_TEST_PROMTOOL").map(PathBuf::from);
    if tool.is_none() {
        eprintln!("skipped: promtool is fetched by scripts/test (HERALD_TEST_PROMTOOL)");
    }
    tool
}

/// Runs promtool with `args` in `deploy/prometheus`, feeding it `input`; panics with its
/// output if it fails.
fn run_promtool(tool: &Path, args: &[&str], input: &str) {
    let mut child = Command::new(tool)
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `/metrics` of a server that has made a call and answered an error, so that every histogram
/// and counter family has samples.
async fn metrics_after_a_call() -> String {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    subscribe(&acme, &receiver.url(), json!({})).await;
    acme.new_application().await;
    receiver.wait_for(1, WAIT).await;
    tasks(&acme, 1).await;
    // And an error answer, counted by its code.
    assert_eq!(acme.get("/restapi/v1/job/404").await.status, 404);
    app.anonymous().get("/metrics").await.text
}

/// The `herald_…` metric names an expression text mentions, histogram suffixes taken off.
fn herald_metrics_named_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("herald_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        names.insert(base.to_owned());
    }
    names
}

#[test]
fn the_alerting_rules_are_valid_and_fire_on_their_samples() {
    let Some(tool) = promtool() else { return };
    run_promtool(&tool, &["check", "rules", "alerts.yml"], "");
    run_promtool(&tool, &["test", "rules", "alerts.test.yml"], "");
}

#[tokio::test]
async fn herald_metrics_pass_promtool() {
    let Some(tool) = promtool() else { return };
    let metrics = metrics_after_a_call().await;
    run_promtool(&tool, &["check", "metrics"], &metrics);
}

#[tokio::test]
async fn the_rules_and_the_dashboard_name_only_metrics_herald_serves() {
    let metrics = metrics_after_a_call().await;
    // Each family by its name, and each of its series (a counter's `_total`, a histogram's
    // `_bucket`, `_sum` and `_count`) by theirs.
    let served: BTreeSet<String> = metrics
        .lines()
        .filter_map(|line| match line.strip_prefix("# TYPE ") {
            Some(family) => family.split(' ').next(),
            None if line.starts_with('#') => None,
            None => line.split(['{', ' ']).next(),
        })
        .map(str::to_owned)
        .collect();
    let rules = std::fs::read_to_string(deploy().join("prometheus/alerts.yml")).unwrap();
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(deploy().join("grafana/herald.json")).unwrap())
            .expect("the dashboard is JSON");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("the dashboard has panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap())
        .map(|target| target["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    for (what, text) in [("alerts.yml", rules), ("herald.json", exprs.join("\n"))] {
        let named = herald_metrics_named_in(&text);
        assert!(!named.is_empty(), "{what} names no herald metric");
        let unknown: Vec<&String> = named.difference(&served).collect();
        assert!(
            unknown.is_empty(),
            "{what} names metrics Herald does not serve: {unknown:?}"
        );
    }
}
