//! `lifecycle triage` as a person runs it: message bodies on standard input, one per line,
//! and one log line for each saying what the processor would do with it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The group the fixtures' actions belong to.
const GROUP: &str = "swarm-Workers-7QW3ER5TY";

/// A fixture of the event model, on one line (its JSON holds no newline inside a string).
fn fixture_line(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.replace('\n', "").into_bytes()
}

/// Runs `lifecycle triage` over `lines` with text logs.
fn triage(lines: &[Vec<u8>]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifecycle"))
        .arg("triage")
        .env("SWARM_GROUPS", GROUP)
        .env_remove("LOG_FORMAT")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the lifecycle binary starts");
    let mut stdin = child.stdin.take().expect("stdin");
    for line in lines {
        stdin.write_all(line).expect("written");
        stdin.write_all(b"\n").expect("written");
    }
    drop(stdin);
    child.wait_with_output().expect("it exits")
}

/// The log line about input line `n`.
fn line_about(log: &str, n: usize) -> &str {
    let tag = format!("message_id=\"stdin:{n}\"");
    log.lines()
        .find(|line| line.contains(&tag))
        .unwrap_or_else(|| panic!("no log line for stdin:{n} in:\n{log}"))
}

#[test]
fn an_sns_wrapped_termination_is_an_action_of_its_group() {
    let output = triage(&[fixture_line("terminate-sns.json")]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    let line = line_about(&log, 1);
    assert!(line.contains("lifecycle action received"), "{line}");
    assert!(line.contains(&format!("asg_name={GROUP}")), "{line}");
    assert!(line.contains("instance_id=i-04c2e1f0a9b8d7c65"), "{line}");
}

#[test]
fn a_line_that_is_not_utf8_is_named_by_number_and_the_lines_after_it_are_read() {
    let output = triage(&[
        b"{\"Event\": \"\xff\xfe\"}".to_vec(),
        fixture_line("test-notification-sns.json"),
        fixture_line("terminate-direct.json"),
    ]);
    let log = String::from_utf8_lossy(&output.stderr);
    // One rejected line makes the exit status say so.
    assert_eq!(output.status.code(), Some(1), "{log}");
    let rejected = line_about(&log, 1);
    assert!(rejected.contains("not UTF-8"), "{rejected}");
    assert!(
        line_about(&log, 2).contains("message needs no action"),
        "{log}"
    );
    assert!(
        line_about(&log, 3).contains("lifecycle action received"),
        "{log}"
    );
}

#[test]
fn a_rejected_line_carries_no_empty_field_and_a_bounded_body() {
    let huge = [b"{\"x\":\"".as_slice(), &[b'a'; 500_000], b"\"}"].concat();
    let output = triage(&[b"{\"hello\": 1}".to_vec(), huge]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{log}");
    let shapeless = line_about(&log, 1);
    assert!(!shapeless.contains("cause="), "{shapeless}");
    assert!(shapeless.contains("body_bytes=12"), "{shapeless}");
    let large = line_about(&log, 2);
    assert!(large.contains("over the SQS limit"), "{large}");
    assert!(large.contains("body_bytes=500008"), "{large}");
    assert!(
        large.len() < 5 * 1024,
        "a 500 KB body made a {} byte log line",
        large.len()
    );
}
