//! Charts drawn on the server as SVG, from an endpoint's figures (`…/stats`): no script and
//! no chart library, so they show in any browser and under the strictest policy. Each bar
//! and point has a `<title>`, which a browser shows on hover.

use maud::{Markup, html};
use serde_json::Value;

const GREEN: &str = "#2f9e44";
const RED: &str = "#e03131";
const BLUE: &str = "#1c7ed6";
const VIOLET: &str = "#9c36b5";
const GRID: &str = "#dee2e6";
const INK: &str = "#495057";

fn n(step: &Value, key: &str) -> i64 {
    step[key].as_i64().unwrap_or(0)
}

/// A coordinate to a tenth of a pixel, which keeps the page small.
fn r(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The step's start as the chart labels it: `HH:MM` by the hour, `MM-DD` by the day.
fn label(step: &Value, by_day: bool) -> String {
    let from = step["from"].as_str().unwrap_or_default();
    let part = if by_day { from.get(5..10) } else { from.get(11..16) };
    part.unwrap_or(from).to_owned()
}

/// A round number at least `max`, for the top of an axis.
fn ceiling(max: i64) -> i64 {
    if max <= 4 {
        return 4;
    }
    let magnitude = 10i64.pow((max as f64).log10().floor() as u32);
    [1, 2, 5, 10]
        .iter()
        .map(|k| k * magnitude)
        .find(|top| *top >= max)
        .unwrap_or(10 * magnitude)
}

/// A tiny chart of calls by step, failed on top of succeeded, for a list of endpoints.
pub fn sparkline(series: &[Value]) -> Markup {
    let (width, height) = (120.0, 28.0);
    let top = series.iter().map(|s| n(s, "calls")).max().unwrap_or(0).max(1) as f64;
    let bar = width / series.len().max(1) as f64;
    let calls: i64 = series.iter().map(|s| n(s, "calls")).sum();
    let failed: i64 = series.iter().map(|s| n(s, "failed")).sum();
    html! {
        svg.spark width=(r(width)) height=(r(height)) viewBox={"0 0 " (width) " " (height)} role="img"
            aria-label={(calls) " calls, " (failed) " failed, over 24 hours"} {
            line x1="0" y1=(r(height - 0.5)) x2=(r(width)) y2=(r(height - 0.5)) stroke=(GRID) {}
            @for (i, step) in series.iter().enumerate() {
                @let ok = n(step, "succeeded") as f64 / top * (height - 2.0);
                @let bad = n(step, "failed") as f64 / top * (height - 2.0);
                @let x = i as f64 * bar + 0.5;
                @if ok > 0.0 {
                    rect x=(r(x)) y=(r(height - ok)) width=(r(bar - 1.0)) height=(r(ok)) fill=(GREEN) {}
                }
                @if bad > 0.0 {
                    rect x=(r(x)) y=(r(height - ok - bad)) width=(r(bar - 1.0)) height=(r(bad)) fill=(RED) {}
                }
            }
        }
    }
}

/// Calls by step, stacked by outcome, with a labelled count axis and time axis.
pub fn calls(series: &[Value], by_day: bool) -> Markup {
    let (width, height, left, bottom, top_pad) = (720.0, 220.0, 44.0, 26.0, 10.0);
    let plot_h = height - bottom - top_pad;
    let plot_w = width - left - 8.0;
    let top = ceiling(series.iter().map(|s| n(s, "calls")).max().unwrap_or(0));
    let scale = plot_h / top as f64;
    let bar = plot_w / series.len().max(1) as f64;
    let every = label_every(series.len(), by_day);
    let y = |v: f64| top_pad + plot_h - v * scale;
    html! {
        svg.chart viewBox={"0 0 " (width) " " (height)} role="img" aria-label="Calls by outcome" {
            @for tick in [0, top / 2, top] {
                line x1=(r(left)) x2=(r(width - 8.0)) y1=(r(y(tick as f64))) y2=(r(y(tick as f64))) stroke=(GRID) {}
                text x=(r(left - 6.0)) y=(r(y(tick as f64) + 4.0)) text-anchor="end" fill=(INK) font-size="11" { (tick) }
            }
            @for (i, step) in series.iter().enumerate() {
                @let ok = n(step, "succeeded") as f64 * scale;
                @let bad = n(step, "failed") as f64 * scale;
                @let x = left + i as f64 * bar + 1.0;
                g {
                    title { (step["from"].as_str().unwrap_or_default()) ": " (n(step, "succeeded")) " succeeded, "
                        (n(step, "failed")) " failed" }
                    rect x=(r(x)) y=(r(top_pad)) width=(r(bar - 2.0)) height=(r(plot_h)) fill="transparent" {}
                    @if ok > 0.0 {
                        rect x=(r(x)) y=(r(y(0.0) - ok)) width=(r(bar - 2.0)) height=(r(ok)) fill=(GREEN) {}
                    }
                    @if bad > 0.0 {
                        rect x=(r(x)) y=(r(y(0.0) - ok - bad)) width=(r(bar - 2.0)) height=(r(bad)) fill=(RED) {}
                    }
                }
                @if i % every == 0 {
                    text x=(r(x + (bar - 2.0) / 2.0)) y=(r(height - 8.0)) text-anchor="middle" fill=(INK) font-size="11" {
                        (label(step, by_day))
                    }
                }
            }
        }
    }
}

/// How many steps apart the time axis is labelled.
fn label_every(steps: usize, by_day: bool) -> usize {
    match (by_day, steps) {
        (true, _) => 4, // 6-hour steps: one label a day
        (false, s) if s > 12 => 3,
        _ => 1,
    }
}

/// Latency p50 and p95 by step, on a logarithmic axis from 1 ms to 30 s; steps without calls
/// leave a gap.
pub fn latency(series: &[Value], by_day: bool) -> Markup {
    let (width, height, left, bottom, top_pad) = (720.0, 200.0, 52.0, 26.0, 10.0);
    let plot_h = height - bottom - top_pad;
    let plot_w = width - left - 8.0;
    let (low, high) = (1f64.log10(), 30_000f64.log10());
    let y = |ms: f64| top_pad + plot_h - (ms.max(1.0).log10() - low) / (high - low) * plot_h;
    let step_w = plot_w / series.len().max(1) as f64;
    let x = |i: usize| left + (i as f64 + 0.5) * step_w;
    let every = label_every(series.len(), by_day);
    let line = |key: &str| -> Vec<Vec<(f64, f64)>> {
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, step) in series.iter().enumerate() {
            match step[key].as_f64() {
                Some(ms) => runs.last_mut().expect("one run at least").push((x(i), y(ms))),
                None => runs.push(Vec::new()),
            }
        }
        runs.retain(|run| !run.is_empty());
        runs
    };
    let points = |run: &[(f64, f64)]| {
        run.iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        svg.chart viewBox={"0 0 " (width) " " (height)} role="img" aria-label="Latency p50 and p95" {
            @for (ms, tick) in [(10.0, "10 ms"), (100.0, "100 ms"), (1000.0, "1 s"), (10_000.0, "10 s")] {
                line x1=(r(left)) x2=(r(width - 8.0)) y1=(r(y(ms))) y2=(r(y(ms))) stroke=(GRID) {}
                text x=(r(left - 6.0)) y=(r(y(ms) + 4.0)) text-anchor="end" fill=(INK) font-size="11" { (tick) }
            }
            @for (key, colour) in [("p95_ms", VIOLET), ("p50_ms", BLUE)] {
                @for run in line(key) {
                    @if run.len() == 1 {
                        circle cx=(r(run[0].0)) cy=(r(run[0].1)) r="3" fill=(colour) {}
                    } @else {
                        polyline points=(points(&run)) fill="none" stroke=(colour) stroke-width="2" {}
                    }
                }
            }
            @for (i, step) in series.iter().enumerate() {
                @if step["calls"].as_i64().unwrap_or(0) > 0 {
                    g {
                        title { (step["from"].as_str().unwrap_or_default()) ": p50 " (super::text::ms(&step["p50_ms"]))
                            ", p95 " (super::text::ms(&step["p95_ms"])) }
                        rect x=(r(left + i as f64 * step_w)) y=(r(top_pad)) width=(r(step_w)) height=(r(plot_h)) fill="transparent" {}
                    }
                }
                @if i % every == 0 {
                    text x=(r(x(i))) y=(r(height - 8.0)) text-anchor="middle" fill=(INK) font-size="11" { (label(step, by_day)) }
                }
            }
        }
    }
}

/// Counts as horizontal bars, largest first, each labelled with its key and count.
pub fn bars(counts: &[(String, i64)], colour_bad: bool) -> Markup {
    if counts.is_empty() {
        return html! { p.muted { "None." } };
    }
    let (width, row, label_w) = (360.0, 22.0, 120.0);
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1) as f64;
    let height = row * counts.len() as f64;
    let colour = if colour_bad { RED } else { BLUE };
    html! {
        svg.bars viewBox={"0 0 " (width) " " (height)} role="img" aria-label="Counts" {
            @for (i, (key, count)) in counts.iter().enumerate() {
                @let y = i as f64 * row;
                @let w = (*count as f64 / max * (width - label_w - 50.0)).max(1.0);
                text x=(r(label_w - 8.0)) y=(r(y + 15.0)) text-anchor="end" fill=(INK) font-size="12" { (key) }
                rect x=(r(label_w)) y=(r(y + 4.0)) width=(r(w)) height=(r(row - 8.0)) fill=(colour) rx="2" {}
                text x=(r(label_w + w + 6.0)) y=(r(y + 15.0)) fill=(INK) font-size="12" { (count) }
            }
        }
    }
}

/// A legend entry: a coloured square and its words.
pub fn key(colour: &str, words: &str) -> Markup {
    html! {
        span.key {
            svg width="10" height="10" viewBox="0 0 10 10" { rect width="10" height="10" fill=(colour) {} }
            " " (words)
        }
    }
}

pub fn legend_calls() -> Markup {
    html! { (key(GREEN, "succeeded")) (key(RED, "failed")) }
}

pub fn legend_latency() -> Markup {
    html! { (key(BLUE, "p50")) (key(VIOLET, "p95")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(ceiling(0), 4);
        assert_eq!(ceiling(7), 10);
        assert_eq!(ceiling(11), 20);
        assert_eq!(ceiling(120), 200);
        assert_eq!(ceiling(4_900), 5_000);
        assert_eq!(ceiling(5_001), 10_000);
    }
}
