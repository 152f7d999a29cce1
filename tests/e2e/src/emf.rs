//! CloudWatch Embedded Metric Format documents, checked as CloudWatch Logs would read them:
//! against the format's JSON schema (`tests/e2e/schemas/emf.schema.json`, written from the
//! specification), and for what a schema cannot say: every metric and dimension a directive
//! names is a member of the root, a metric's value a number or an array of at most 100
//! numbers, a dimension's value a string.

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

/// The schema, as the specification defines the document.
const SCHEMA: &str = include_str!("../schemas/emf.schema.json");

/// Every line of `log` that is an EMF document (a JSON object with `_aws`), parsed.
pub fn documents(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .filter(|value| value.get("_aws").is_some())
        .collect()
}

/// Whether `document` is a valid EMF document; the error says what is wrong.
pub fn check(document: &Value) -> Result<()> {
    let schema: Value = serde_json::from_str(SCHEMA).context("the EMF schema is not JSON")?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|error| anyhow::anyhow!("the EMF schema is not a schema: {error}"))?;
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|error| format!("{} at {}", error, error.instance_path))
        .collect();
    if !errors.is_empty() {
        bail!("not EMF: {}: {document}", errors.join("; "));
    }
    for directive in document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for dimension in directive["Dimensions"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|set| set.as_array().into_iter().flatten())
            .filter_map(Value::as_str)
        {
            ensure!(
                document[dimension].is_string(),
                "the dimension {dimension} has no string value: {document}"
            );
        }
        for metric in directive["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["Name"].as_str())
        {
            let value = &document[metric];
            let numbers = match value {
                Value::Number(_) => true,
                Value::Array(values) => values.len() <= 100 && values.iter().all(Value::is_number),
                _ => false,
            };
            ensure!(
                numbers,
                "the metric {metric} has no number (or array of at most 100 numbers): {document}"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_passes_and_each_break_is_caught() {
        let good: Value = serde_json::from_str(
            r#"{"_aws":{"Timestamp":1574109732004,"CloudWatchMetrics":[{"Namespace":"lambda-function-metrics","Dimensions":[["functionVersion"]],"Metrics":[{"Name":"time","Unit":"Milliseconds","StorageResolution":60}]}]},"functionVersion":"$LATEST","time":100,"requestId":"989ffbf8"}"#,
        )
        .expect("JSON");
        check(&good).expect("valid");
        let broken = [
            ("no _aws", r#"{"time":1}"#),
            (
                "a unit CloudWatch does not know",
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"time","Unit":"Hours"}]}]},"time":1}"#,
            ),
            (
                "no value for the metric",
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"time"}]}]}}"#,
            ),
            (
                "no value for the dimension",
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["Stack"]],"Metrics":[{"Name":"time"}]}]},"time":1}"#,
            ),
            (
                "a timestamp that is not a number",
                r#"{"_aws":{"Timestamp":"now","CloudWatchMetrics":[]}}"#,
            ),
        ];
        for (what, text) in broken {
            let document: Value = serde_json::from_str(text).expect("JSON");
            assert!(check(&document).is_err(), "{what} passed");
        }
    }

    #[test]
    fn every_document_the_processor_writes_is_valid_emf() {
        use lifecycle::metrics::{ALL, Metrics, Unit};
        let metrics = Metrics::default();
        for def in ALL {
            let labels: Vec<&str> = def.labels.iter().map(|_| "a value").collect();
            match def.unit {
                Unit::Count => metrics.count(def, &labels),
                Unit::Seconds => metrics.observe(def, &labels, 1.5),
            }
        }
        swarm_aws::calls::record(
            "Auto Scaling",
            "DescribeAutoScalingInstances",
            swarm_aws::calls::Outcome::Throttled,
        );
        let documents = metrics.take_emf("swarm", 1_700_000_000_000);
        assert!(documents.len() >= ALL.len(), "{documents:?}");
        for text in documents {
            let document: Value = serde_json::from_str(&text).expect("JSON");
            check(&document).unwrap_or_else(|error| panic!("{error:#}"));
        }
    }
}
