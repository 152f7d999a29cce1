//! What the processor reports about its work, defined once for both fronts: Prometheus text on
//! `serve`'s metrics port ([`prometheus`]), CloudWatch Embedded Metric Format lines in
//! Lambda's log ([`Metrics::take_emf`]).
//!
//! Every metric is a [`Def`]: its Prometheus name, its CloudWatch name, what it measures, its
//! unit and its labels (CloudWatch dimensions). The processor records into one [`Metrics`];
//! the calls to AWS and Docker come from [`swarm_aws::calls`], counted where they are made.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde_json::{Map, Value, json};
use swarm_aws::calls::{self, Outcome, Tally};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "SwarmOnAws/Lifecycle";

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// A duration in seconds.
    Seconds,
}

impl Unit {
    fn as_cloudwatch(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Seconds => "Seconds",
        }
    }
}

/// One metric's definition.
#[derive(Debug)]
pub struct Def {
    /// Its name in Prometheus (`swarm_lifecycle_...`).
    pub prometheus: &'static str,
    /// Its name in CloudWatch.
    pub cloudwatch: &'static str,
    /// What it measures.
    pub help: &'static str,
    /// Count (a counter) or Seconds (a summary: count, sum, max).
    pub unit: Unit,
    /// Its labels (CloudWatch dimensions besides `Stack`).
    pub labels: &'static [&'static str],
}

/// Drains started: nodes set to `drain` (a termination, or a Spot notice ahead of it).
pub const DRAINS_STARTED: Def = Def {
    prometheus: "swarm_lifecycle_drains_started_total",
    cloudwatch: "DrainsStarted",
    help: "Nodes set to drain before their instance goes.",
    unit: Unit::Count,
    labels: &[],
};
/// Services scaled up before their node drained.
pub const SURGES: Def = Def {
    prometheus: "swarm_lifecycle_surges_total",
    cloudwatch: "Surges",
    help: "Services scaled up by their tasks on a node before it drained.",
    unit: Unit::Count,
    labels: &[],
};
/// Lifecycle actions completed, by transition and result.
pub const ACTIONS_COMPLETED: Def = Def {
    prometheus: "swarm_lifecycle_actions_completed_total",
    cloudwatch: "ActionsCompleted",
    help: "Lifecycle actions completed, by transition (launching, terminating) and result.",
    unit: Unit::Count,
    labels: &["transition", "result"],
};
/// Drains the deadline forced: the node removed, or the action completed, with work left.
pub const DRAINS_FORCED: Def = Def {
    prometheus: "swarm_lifecycle_drains_forced_total",
    cloudwatch: "DrainsForced",
    help: "Drains ended by the drain deadline with tasks or a demotion still pending.",
    unit: Unit::Count,
    labels: &[],
};
/// Actions that had to wait, by what for (counted when an action starts waiting for it).
pub const WAITS: Def = Def {
    prometheus: "swarm_lifecycle_waits_total",
    cloudwatch: "Waits",
    help: "Actions that started waiting, by reason (join, describe, tasks, quorum).",
    unit: Unit::Count,
    labels: &["reason"],
};
/// From an action first seen to its completion.
pub const ACTION_SECONDS: Def = Def {
    prometheus: "swarm_lifecycle_action_seconds",
    cloudwatch: "ActionSeconds",
    help: "Seconds from a lifecycle action's notification to its completion, by transition.",
    unit: Unit::Seconds,
    labels: &["transition"],
};
/// From nothing left to wait for to the completion: the processor's own cost.
pub const OVERHEAD_SECONDS: Def = Def {
    prometheus: "swarm_lifecycle_overhead_seconds",
    cloudwatch: "OverheadSeconds",
    help: "Seconds from the look that found nothing left to wait for to the completion.",
    unit: Unit::Seconds,
    labels: &[],
};
/// Membership sweeps, by outcome.
pub const SWEEPS: Def = Def {
    prometheus: "swarm_lifecycle_sweeps_total",
    cloudwatch: "Sweeps",
    help: "Membership sweeps, by outcome (done, failed).",
    unit: Unit::Count,
    labels: &["outcome"],
};
/// The sweep's actions, by kind.
pub const SWEEP_ACTIONS: Def = Def {
    prometheus: "swarm_lifecycle_sweep_actions_total",
    cloudwatch: "SweepActions",
    help: "Actions of the membership sweep (sweep_demote, sweep_remove, sweep_mark_unhealthy).",
    unit: Unit::Count,
    labels: &["action"],
};
/// The listener sync's changes to the load balancer, by outcome.
pub const LISTENER_CHANGES: Def = Def {
    prometheus: "swarm_lifecycle_listener_changes_total",
    cloudwatch: "ListenerChanges",
    help: "Changes the listener sync made to the load balancer, by outcome (made, failed).",
    unit: Unit::Count,
    labels: &["outcome"],
};
/// What the sweep found and could not act on, where an operator must look.
pub const SWEEP_CANNOT_ACT: Def = Def {
    prometheus: "swarm_lifecycle_sweep_cannot_act_total",
    cloudwatch: "SweepCannotAct",
    help: "Lost members the sweep found and may not act on (quorum lost, most nodes down, ...).",
    unit: Unit::Count,
    labels: &[],
};
/// Message bodies that are not lifecycle messages: left for the dead-letter queue.
pub const MESSAGES_REJECTED: Def = Def {
    prometheus: "swarm_lifecycle_messages_rejected_total",
    cloudwatch: "MessagesRejected",
    help: "Message bodies that could not be read (left for the dead-letter queue).",
    unit: Unit::Count,
    labels: &[],
};
/// Calls to AWS and to the managers' Engine API, by service, API and outcome.
pub const CALLS: Def = Def {
    prometheus: "swarm_lifecycle_calls_total",
    cloudwatch: "Calls",
    help: "Calls to AWS and to the Docker Engine API, by service, API and outcome (ok, throttled, failed).",
    unit: Unit::Count,
    labels: &["service", "api", "outcome"],
};

/// Every metric, in the order they are shown.
pub const ALL: [&Def; 13] = [
    &DRAINS_STARTED,
    &ACTIONS_COMPLETED,
    &DRAINS_FORCED,
    &WAITS,
    &ACTION_SECONDS,
    &OVERHEAD_SECONDS,
    &SWEEPS,
    &SWEEP_ACTIONS,
    &SWEEP_CANNOT_ACT,
    &LISTENER_CHANGES,
    &SURGES,
    &MESSAGES_REJECTED,
    &CALLS,
];

/// A summary of durations: how many, their sum, the longest.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Summary {
    count: u64,
    sum: f64,
    max: f64,
}

/// One series: a metric and its label values.
type Series = (&'static str, Vec<String>);

/// What the process recorded.
#[derive(Debug, Default)]
struct Recorded {
    /// Counters, all time (Prometheus).
    counters: BTreeMap<Series, u64>,
    /// Summaries, all time (Prometheus).
    summaries: BTreeMap<Series, Summary>,
    /// Counter increments since the last EMF flush.
    counted_since: BTreeMap<Series, u64>,
    /// Durations since the last EMF flush.
    observed_since: BTreeMap<Series, Vec<f64>>,
    /// The process's calls at the last EMF flush.
    calls_at_flush: Tally,
}

/// The processor's metrics: record with [`Metrics::count`] and [`Metrics::observe`].
#[derive(Debug, Default)]
pub struct Metrics {
    recorded: Mutex<Recorded>,
}

impl Metrics {
    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds one to the counter `def` with `labels` (its label values, in its order).
    pub fn count(&self, def: &'static Def, labels: &[&str]) {
        debug_assert_eq!(def.labels.len(), labels.len(), "{}", def.prometheus);
        let series = (
            def.prometheus,
            labels.iter().map(|l| (*l).to_owned()).collect(),
        );
        let mut recorded = self.recorded();
        *recorded.counters.entry(series.clone()).or_default() += 1;
        *recorded.counted_since.entry(series).or_default() += 1;
    }

    /// Records one duration of `seconds` in the summary `def` with `labels`.
    pub fn observe(&self, def: &'static Def, labels: &[&str], seconds: f64) {
        debug_assert_eq!(def.labels.len(), labels.len(), "{}", def.prometheus);
        let series: Series = (
            def.prometheus,
            labels.iter().map(|l| (*l).to_owned()).collect(),
        );
        let mut recorded = self.recorded();
        let summary = recorded.summaries.entry(series.clone()).or_default();
        summary.count += 1;
        summary.sum += seconds;
        summary.max = summary.max.max(seconds);
        recorded
            .observed_since
            .entry(series)
            .or_default()
            .push(seconds);
    }

    /// Everything recorded, and the process's calls, as Prometheus text (exposition format
    /// 0.0.4).
    pub fn prometheus(&self) -> String {
        let calls = calls::process();
        let recorded = self.recorded();
        let mut text = String::new();
        for def in ALL {
            let kind = match def.unit {
                Unit::Count => "counter",
                Unit::Seconds => "summary",
            };
            text.push_str(&format!(
                "# HELP {} {}\n# TYPE {} {kind}\n",
                def.prometheus, def.help, def.prometheus
            ));
            if std::ptr::eq(def, &CALLS) {
                for (service, api, outcome, count) in calls.iter() {
                    let values = call_labels(service, api, outcome);
                    text.push_str(&format!(
                        "{}{} {count}\n",
                        def.prometheus,
                        labels(def, &values)
                    ));
                }
                continue;
            }
            for ((name, values), count) in &recorded.counters {
                if *name == def.prometheus {
                    text.push_str(&format!("{name}{} {count}\n", labels(def, values)));
                }
            }
            for ((name, values), summary) in &recorded.summaries {
                if *name == def.prometheus {
                    let labels = labels(def, values);
                    text.push_str(&format!(
                        "{name}_count{labels} {}\n{name}_sum{labels} {}\n",
                        summary.count, summary.sum
                    ));
                    let max_name = format!("{name}_max");
                    text.push_str(&format!("{max_name}{labels} {}\n", summary.max));
                }
            }
        }
        text
    }

    /// What was recorded since the last call, and the calls made since, as Embedded Metric
    /// Format documents (one JSON line each) for the stack `stack`, stamped `timestamp_ms`.
    /// Empty when nothing happened.
    pub fn take_emf(&self, stack: &str, timestamp_ms: i64) -> Vec<String> {
        let calls = calls::process();
        let mut recorded = self.recorded();
        let mut documents = Vec::new();
        let by_name = |name: &str| ALL.into_iter().find(|d| d.prometheus == name);
        for ((name, values), count) in std::mem::take(&mut recorded.counted_since) {
            if let Some(def) = by_name(name) {
                documents.push(emf(def, stack, &values, json!(count), timestamp_ms));
            }
        }
        for ((name, values), seconds) in std::mem::take(&mut recorded.observed_since) {
            if let Some(def) = by_name(name) {
                documents.push(emf(def, stack, &values, json!(seconds), timestamp_ms));
            }
        }
        for (service, api, outcome, count) in calls.iter() {
            let before = recorded
                .calls_at_flush
                .iter()
                .find(|(s, a, o, _)| *s == service && *a == api && *o == outcome)
                .map_or(0, |(_, _, _, c)| c);
            if count > before {
                let values = call_labels(service, api, outcome);
                documents.push(emf(
                    &CALLS,
                    stack,
                    &values,
                    json!(count - before),
                    timestamp_ms,
                ));
            }
        }
        recorded.calls_at_flush = calls;
        documents
    }
}

/// The label values of a call: its service, its API, its outcome.
fn call_labels(service: &str, api: &str, outcome: Outcome) -> Vec<String> {
    let outcome = match outcome {
        Outcome::Ok => "ok",
        Outcome::Throttled => "throttled",
        Outcome::Failed => "failed",
    };
    vec![service.to_owned(), api.to_owned(), outcome.to_owned()]
}

/// `{a="x",b="y"}` (nothing for no labels), values escaped as the text format asks.
fn labels(def: &Def, values: &[String]) -> String {
    if def.labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = def
        .labels
        .iter()
        .zip(values)
        .map(|(label, value)| {
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{label}=\"{value}\"")
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// One EMF document: the metric `def` of the stack `stack` with label values `values` (as
/// dimensions), `value` a number or an array of numbers.
fn emf(def: &Def, stack: &str, values: &[String], value: Value, timestamp_ms: i64) -> String {
    let mut dimensions = vec!["Stack".to_owned()];
    let mut document = Map::new();
    document.insert("Stack".into(), json!(stack));
    for (label, value) in def.labels.iter().zip(values) {
        let dimension = dimension_name(label);
        document.insert(dimension.clone(), json!(value));
        dimensions.push(dimension);
    }
    document.insert(def.cloudwatch.into(), value);
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": [{ "Name": def.cloudwatch, "Unit": def.unit.as_cloudwatch() }],
            }],
        }),
    );
    Value::Object(document).to_string()
}

/// A label as a CloudWatch dimension name: `transition` → `Transition`.
fn dimension_name(label: &str) -> String {
    let mut chars = label.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_summaries_read_as_prometheus_text() {
        let metrics = Metrics::default();
        metrics.count(&ACTIONS_COMPLETED, &["terminating", "CONTINUE"]);
        metrics.count(&ACTIONS_COMPLETED, &["terminating", "CONTINUE"]);
        metrics.count(&WAITS, &["quo\"rum"]);
        metrics.observe(&OVERHEAD_SECONDS, &[], 0.25);
        metrics.observe(&OVERHEAD_SECONDS, &[], 0.5);
        let text = metrics.prometheus();
        for line in [
            "# TYPE swarm_lifecycle_actions_completed_total counter",
            "swarm_lifecycle_actions_completed_total{transition=\"terminating\",result=\"CONTINUE\"} 2",
            "swarm_lifecycle_waits_total{reason=\"quo\\\"rum\"} 1",
            "# TYPE swarm_lifecycle_overhead_seconds summary",
            "swarm_lifecycle_overhead_seconds_count 2",
            "swarm_lifecycle_overhead_seconds_sum 0.75",
            "swarm_lifecycle_overhead_seconds_max 0.5",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        // Every metric is described, recorded or not.
        for def in ALL {
            assert!(text.contains(&format!("# HELP {} ", def.prometheus)));
        }
    }

    #[test]
    fn emf_documents_hold_what_happened_since_the_last_flush_once() {
        let metrics = Metrics::default();
        let _ = metrics.take_emf("swarm", 0);
        metrics.count(&DRAINS_FORCED, &[]);
        metrics.observe(&ACTION_SECONDS, &["terminating"], 12.5);
        let documents = metrics.take_emf("swarm", 1_700_000_000_000);
        let parsed: Vec<Value> = documents
            .iter()
            .map(|d| serde_json::from_str(d).expect("JSON"))
            .filter(|d: &Value| d.get("Calls").is_none())
            .collect();
        assert_eq!(parsed.len(), 2, "{documents:?}");
        let forced = parsed
            .iter()
            .find(|d| d.get("DrainsForced").is_some())
            .expect("forced");
        assert_eq!(forced["DrainsForced"], 1);
        assert_eq!(forced["Stack"], "swarm");
        assert_eq!(
            forced["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stack"]])
        );
        let seconds = parsed
            .iter()
            .find(|d| d.get("ActionSeconds").is_some())
            .expect("seconds");
        assert_eq!(seconds["ActionSeconds"], json!([12.5]));
        assert_eq!(seconds["Transition"], "terminating");
        assert!(
            metrics
                .take_emf("swarm", 0)
                .iter()
                .all(|d| d.contains("\"Calls\"")),
            "recorded twice"
        );
    }
}
