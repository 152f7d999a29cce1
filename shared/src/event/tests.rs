//! Every shape the parser knows, every way a body can be wrong, and a property: no input panics.

use super::*;
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn action(name: &str) -> LifecycleAction {
    match parse_message(fixture(name).as_bytes()) {
        Ok(LifecycleMessage::Action(action)) => action,
        other => panic!("{name}: expected an action, got {other:?}"),
    }
}

fn error_of(body: &[u8]) -> ParseError {
    parse_message(body).expect_err("the body must be rejected")
}

/// Rewrites one field of a fixture, or removes it (`None`).
fn with_field(name: &str, field: &str, value: Option<serde_json::Value>) -> Vec<u8> {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&fixture(name)).expect("fixture is JSON");
    match value {
        Some(value) => object.insert(field.to_owned(), value),
        None => object.remove(field),
    };
    serde_json::to_vec(&object).expect("serialises")
}

#[test]
fn a_direct_termination_notification_is_a_terminating_action_with_every_field() {
    let action = action("terminate-direct.json");
    assert_eq!(action.transition, Transition::Terminating);
    assert_eq!(action.instance_id.as_str(), "i-04c2e1f0a9b8d7c65");
    assert_eq!(action.group.as_str(), "swarm-Workers-7QW3ER5TY");
    assert_eq!(action.hook.as_str(), "workers-drain");
    assert_eq!(
        action.token.as_str(),
        "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
    );
    assert_eq!(action.envelope, Envelope::Direct);
    assert_eq!(action.metadata, None);
    let time = action.time.expect("time is present");
    assert_eq!(
        time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "2026-10-02T08:41:09.517Z"
    );
}

#[test]
fn a_direct_launch_notification_carries_the_hook_metadata() {
    let action = action("launch-direct.json");
    assert_eq!(action.transition, Transition::Launching);
    assert_eq!(action.instance_id.as_str(), "i-0f1e2d3c4b5a69788");
    assert_eq!(action.metadata.as_deref(), Some("{\"role\":\"worker\"}"));
}

#[test]
fn the_test_notification_is_recognised_with_its_group() {
    let message = parse_message(fixture("test-notification.json").as_bytes()).expect("parses");
    assert_eq!(
        message,
        LifecycleMessage::TestNotification {
            group: Some("swarm-Workers-7QW3ER5TY".try_into().expect("valid"))
        }
    );
}

#[test]
fn an_eventbridge_termination_is_the_same_action_with_the_envelope_time() {
    let action = action("terminate-eventbridge.json");
    assert_eq!(action.transition, Transition::Terminating);
    assert_eq!(action.envelope, Envelope::EventBridge);
    assert_eq!(action.instance_id.as_str(), "i-0123456789abcdef1");
    assert_eq!(action.hook.as_str(), "managers-drain");
    assert_eq!(action.group.as_str(), "swarm-Managers-2ZX4CV6BN");
    assert_eq!(
        action.time.map(|t| t.to_rfc3339()),
        Some("2026-10-02T08:41:09+00:00".to_owned())
    );
}

#[test]
fn an_eventbridge_launch_is_a_launching_action() {
    let action = action("launch-eventbridge.json");
    assert_eq!(action.transition, Transition::Launching);
    assert_eq!(action.metadata.as_deref(), Some("manager"));
}

#[test]
fn a_spot_interruption_warning_names_the_instance_and_the_action() {
    let message = parse_message(fixture("spot-interruption.json").as_bytes()).expect("parses");
    let LifecycleMessage::SpotInterruption(spot) = message else {
        panic!("expected a spot interruption, got {message:?}");
    };
    assert_eq!(spot.instance_id.as_str(), "i-0aa11bb22cc33dd44");
    assert_eq!(spot.action, "terminate");
    assert_eq!(spot.notice, SpotNotice::InterruptionWarning);
    assert!(spot.time.is_some());
}

#[test]
fn a_rebalance_recommendation_names_the_instance() {
    let message =
        parse_message(fixture("rebalance-recommendation.json").as_bytes()).expect("parses");
    let LifecycleMessage::SpotInterruption(spot) = message else {
        panic!("expected a spot notice, got {message:?}");
    };
    assert_eq!(spot.instance_id.as_str(), "i-0aa11bb22cc33dd44");
    assert_eq!(spot.notice, SpotNotice::RebalanceRecommendation);
    assert!(spot.time.is_some());
    let body = String::from_utf8(with_field(
        "rebalance-recommendation.json",
        "detail",
        Some(serde_json::json!({})),
    ))
    .expect("text");
    assert_eq!(
        error_of(body.as_bytes()).to_string(),
        "required field `instance-id` is missing"
    );
}

#[test]
fn an_sns_wrapped_termination_is_the_same_action_as_the_direct_one() {
    let through_sns = action("terminate-sns.json");
    assert_eq!(through_sns.envelope, Envelope::Sns);
    let direct = action("terminate-direct.json");
    assert_eq!(
        through_sns,
        LifecycleAction {
            envelope: Envelope::Sns,
            ..direct
        }
    );
}

#[test]
fn an_sns_wrapped_test_notification_is_recognised_with_its_group() {
    let message = parse_message(fixture("test-notification-sns.json").as_bytes()).expect("parses");
    assert_eq!(
        message,
        LifecycleMessage::TestNotification {
            group: Some("swarm-Workers-7QW3ER5TY".try_into().expect("valid"))
        }
    );
}

#[test]
fn an_sns_wrapped_eventbridge_event_keeps_its_eventbridge_envelope() {
    let event = fixture("terminate-eventbridge.json");
    let body = with_field("terminate-sns.json", "Message", Some(event.into()));
    let LifecycleMessage::Action(action) = parse_message(&body).expect("parses") else {
        panic!("expected an action");
    };
    assert_eq!(action.envelope, Envelope::EventBridge);
    assert_eq!(action.instance_id.as_str(), "i-0123456789abcdef1");
}

#[test]
fn raw_sns_delivery_is_the_notification_itself() {
    // With raw message delivery on, SNS puts the published text in the body unchanged.
    let raw = serde_json::from_str::<serde_json::Value>(&fixture("terminate-sns.json"))
        .expect("JSON")["Message"]
        .as_str()
        .expect("a string")
        .to_owned();
    assert_eq!(
        parse_message(raw.as_bytes()).expect("parses"),
        LifecycleMessage::Action(action("terminate-direct.json"))
    );
}

#[test]
fn an_sns_message_that_is_not_a_string_is_named() {
    let object =
        serde_json::from_str::<serde_json::Value>(&fixture("terminate-direct.json")).expect("JSON");
    let body = with_field("terminate-sns.json", "Message", Some(object));
    assert_eq!(
        error_of(&body).to_string(),
        "field `Message` has the wrong type: expected a string, found an object"
    );
    let body = with_field("terminate-sns.json", "Message", None);
    assert_eq!(
        error_of(&body).to_string(),
        "required field `Message` is missing"
    );
}

#[test]
fn an_sns_message_that_is_not_json_or_not_an_object_is_named() {
    let body = with_field("terminate-sns.json", "Message", Some("drain i-0abc".into()));
    let err = error_of(&body);
    assert!(
        matches!(err, ParseError::SnsMessageNotJson { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the SNS notification's `Message` is not JSON"
    );
    let cause = std::error::Error::source(&err).expect("cause").to_string();
    assert!(cause.contains("line 1 column 1"), "{cause}");
    let body = with_field("terminate-sns.json", "Message", Some("[1,2]".into()));
    assert_eq!(
        error_of(&body).to_string(),
        "field `Message` has the wrong type: expected a JSON object in the string, found a JSON array"
    );
}

#[test]
fn an_sns_message_of_the_wrong_shape_says_what_is_wrong_inside_it() {
    let mut inner: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&fixture("terminate-direct.json")).expect("JSON");
    inner.remove("LifecycleActionToken");
    let body = with_field(
        "terminate-sns.json",
        "Message",
        Some(serde_json::Value::Object(inner).to_string().into()),
    );
    let err = error_of(&body);
    assert_eq!(
        err.to_string(),
        "the SNS notification's `Message` is not a lifecycle notification"
    );
    assert_eq!(
        crate::error::error_chain(&err).as_deref(),
        Some("required field `LifecycleActionToken` is missing")
    );
    let body = with_field(
        "terminate-sns.json",
        "Message",
        Some(r#"{"hello":1}"#.into()),
    );
    let cause = std::error::Error::source(&error_of(&body))
        .expect("cause")
        .to_string();
    assert!(cause.contains("found fields hello"), "{cause}");
}

#[test]
fn an_sns_message_of_another_type_is_refused_by_its_type() {
    let body = with_field(
        "terminate-sns.json",
        "Type",
        Some("SubscriptionConfirmation".into()),
    );
    assert_eq!(
        error_of(&body).to_string(),
        "message is not an Auto Scaling lifecycle notification: \
         an SNS message of `Type` `SubscriptionConfirmation`, not `Notification`"
    );
}

#[test]
fn every_team_sample_parses_when_the_samples_are_beside_the_checkout() {
    // The team's shared samples live beside the repository (`../shared/aws-samples`), not in
    // it: a user's clone has only the fixtures above, so this test says so and checks nothing.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/aws-samples");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "no team samples at {}: only the fixtures were checked",
            dir.display()
        );
        return;
    };
    let mut checked = 0;
    for entry in entries {
        let path = entry.expect("readable dir").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let body = std::fs::read(&path).expect("readable sample");
        if name == "sqs-lambda-event.json" {
            let event: aws_lambda_events::event::sqs::SqsEvent =
                serde_json::from_slice(&body).expect("an SQS event");
            for record in event.records {
                let body = record.body.expect("a body");
                parse_message(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        } else {
            parse_message(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        checked += 1;
    }
    assert!(checked >= 6, "expected every sample, checked {checked}");
}

#[test]
fn unknown_fields_are_ignored_and_optional_fields_may_be_missing() {
    let body = with_field(
        "terminate-direct.json",
        "SomethingNew",
        Some(serde_json::json!({"a": [1, 2]})),
    );
    assert!(matches!(
        parse_message(&body),
        Ok(LifecycleMessage::Action(_))
    ));
    for optional in [
        "Time",
        "RequestId",
        "AccountId",
        "Origin",
        "Destination",
        "Service",
    ] {
        let body = with_field("terminate-direct.json", optional, None);
        assert!(
            matches!(parse_message(&body), Ok(LifecycleMessage::Action(_))),
            "{optional}"
        );
    }
}

#[test]
fn an_empty_or_blank_body_is_refused_as_empty() {
    assert!(matches!(error_of(b""), ParseError::Empty));
    assert!(matches!(error_of(b" \n\t "), ParseError::Empty));
}

#[test]
fn a_body_that_is_not_json_is_refused_with_the_parser_position() {
    let err = error_of(b"Test message from the console");
    assert!(matches!(err, ParseError::NotJson { .. }));
    let source = std::error::Error::source(&err)
        .expect("has a source")
        .to_string();
    assert!(source.contains("line 1"), "{source}");
}

#[test]
fn json_that_is_not_an_object_is_refused_with_its_kind() {
    assert_eq!(
        error_of(b"[1,2]").to_string(),
        "message body is a JSON array, not an object"
    );
    assert_eq!(
        error_of(b"\"hi\"").to_string(),
        "message body is a JSON string, not an object"
    );
    assert_eq!(
        error_of(b"null").to_string(),
        "message body is a JSON null, not an object"
    );
}

#[test]
fn an_object_of_the_wrong_shape_says_which_fields_it_found() {
    let err = error_of(br#"{"hello":"world","Records":[]}"#);
    assert!(matches!(err, ParseError::UnknownShape { .. }), "{err:?}");
    assert!(err.to_string().contains("Records, hello"), "{err}");
    assert!(error_of(b"{}").to_string().contains("an empty object"));
}

#[test]
fn a_scaling_notification_is_not_mistaken_for_a_lifecycle_action() {
    let body =
        br#"{"Event":"autoscaling:EC2_INSTANCE_TERMINATE","EC2InstanceId":"i-0123456789abcdef1"}"#;
    let err = error_of(body);
    assert!(err.to_string().contains("EC2_INSTANCE_TERMINATE"), "{err}");
}

#[test]
fn a_missing_token_is_named() {
    let body = with_field("terminate-direct.json", "LifecycleActionToken", None);
    let err = error_of(&body);
    assert_eq!(
        err.to_string(),
        "required field `LifecycleActionToken` is missing"
    );
    let body = with_field(
        "terminate-eventbridge.json",
        "detail",
        Some(serde_json::json!({
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "EC2InstanceId": "i-0123456789abcdef1",
            "AutoScalingGroupName": "g",
            "LifecycleHookName": "h"
        })),
    );
    assert_eq!(
        error_of(&body).to_string(),
        "required field `LifecycleActionToken` is missing"
    );
}

#[test]
fn every_required_field_is_named_when_missing() {
    for field in [
        "LifecycleTransition",
        "EC2InstanceId",
        "AutoScalingGroupName",
        "LifecycleHookName",
    ] {
        let body = with_field("terminate-direct.json", field, None);
        let message = error_of(&body).to_string();
        assert!(
            message.contains(field) || message.contains("LifecycleTransition"),
            "{field}: {message}"
        );
    }
}

#[test]
fn an_unknown_transition_is_refused_by_name() {
    let body = with_field(
        "terminate-direct.json",
        "LifecycleTransition",
        Some("autoscaling:EC2_INSTANCE_HIBERNATING".into()),
    );
    let err = error_of(&body);
    assert!(
        matches!(err, ParseError::UnknownTransition(ref t) if t == "autoscaling:EC2_INSTANCE_HIBERNATING")
    );
}

#[test]
fn a_field_of_the_wrong_type_or_value_is_named() {
    let body = with_field("terminate-direct.json", "EC2InstanceId", Some(42.into()));
    assert_eq!(
        error_of(&body).to_string(),
        "field `EC2InstanceId` has the wrong type: expected a string, found a number"
    );
    let body = with_field(
        "terminate-direct.json",
        "EC2InstanceId",
        Some("instance-1".into()),
    );
    let err = error_of(&body);
    assert_eq!(err.to_string(), "field `EC2InstanceId` is invalid");
    let cause = std::error::Error::source(&err).expect("cause").to_string();
    assert!(cause.contains("must start with `i-`"), "{cause}");
    let body = with_field("terminate-direct.json", "Time", Some("yesterday".into()));
    assert!(error_of(&body).to_string().contains("`Time` is invalid"));
}

#[test]
fn an_eventbridge_event_of_another_kind_is_unsupported_by_name() {
    let body = with_field(
        "spot-interruption.json",
        "detail-type",
        Some("EC2 Instance State-change Notification".into()),
    );
    assert_eq!(
        error_of(&body).to_string(),
        "unsupported EventBridge event `EC2 Instance State-change Notification` from `aws.ec2`"
    );
    let body = with_field("terminate-eventbridge.json", "detail", Some("oops".into()));
    assert!(
        error_of(&body)
            .to_string()
            .contains("`detail` has the wrong type")
    );
}

#[test]
fn a_body_at_the_sqs_limit_parses_and_one_byte_more_is_too_large() {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&fixture("terminate-direct.json")).expect("json");
    object.insert("Padding".into(), String::new().into());
    let base = serde_json::to_vec(&object).expect("ser").len();
    object.insert("Padding".into(), "x".repeat(MAX_BODY_BYTES - base).into());
    let body = serde_json::to_vec(&object).expect("ser");
    assert_eq!(body.len(), MAX_BODY_BYTES);
    assert!(matches!(
        parse_message(&body),
        Ok(LifecycleMessage::Action(_))
    ));

    let mut larger = body;
    larger.push(b' ');
    assert_eq!(
        error_of(&larger).to_string(),
        "message body is 262145 bytes, over the SQS limit of 262144 bytes"
    );
}

#[test]
fn invalid_utf8_is_refused_not_panicked_on() {
    let mut body = fixture("terminate-direct.json").into_bytes();
    body[20] = 0xff;
    assert!(matches!(error_of(&body), ParseError::NotUtf8 { .. }));
    assert!(matches!(
        error_of(&[0xc3, 0x28]),
        ParseError::NotUtf8 { .. }
    ));
}

#[test]
fn a_huge_field_value_does_not_make_a_huge_error_message() {
    let body = with_field(
        "terminate-direct.json",
        "LifecycleTransition",
        Some("x".repeat(100_000).into()),
    );
    assert!(error_of(&body).to_string().len() < 200);
}

#[test]
fn a_duplicate_delivery_parses_to_the_same_action() {
    let body = fixture("terminate-direct.json");
    assert_eq!(
        parse_message(body.as_bytes()).ok(),
        parse_message(body.as_bytes()).ok()
    );
}

/// Values that look like the real thing, so that mutated bodies reach deep into the parser.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(Into::into),
        any::<i64>().prop_map(Into::into),
        ".{0,40}".prop_map(Into::into),
        prop_oneof![
            Just("autoscaling:EC2_INSTANCE_TERMINATING"),
            Just("autoscaling:EC2_INSTANCE_LAUNCHING"),
            Just("autoscaling:TEST_NOTIFICATION"),
            Just("i-0123456789abcdef1"),
            Just("9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"),
            Just("2026-10-02T08:41:09.517Z"),
            Just("aws.autoscaling"),
            Just("EC2 Instance-terminate Lifecycle Action"),
        ]
        .prop_map(Into::into),
    ];
    leaf.prop_recursive(3, 32, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Into::into),
            prop::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "LifecycleTransition",
            "EC2InstanceId",
            "AutoScalingGroupName",
            "LifecycleHookName",
            "LifecycleActionToken",
            "Time",
            "Event",
            "NotificationMetadata",
            "detail-type",
            "source",
            "detail",
            "time",
            "resources",
            "instance-id",
            "instance-action",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z-]{1,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_byte_string_makes_the_parser_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_message(&body);
    }

    #[test]
    fn no_json_value_makes_the_parser_panic(value in json_value()) {
        let _ = parse_message(&serde_json::to_vec(&value).expect("serialises"));
    }

    #[test]
    fn no_mutation_of_a_fixture_makes_the_parser_panic(
        which in prop::sample::select(vec![
            "terminate-direct.json", "launch-direct.json", "test-notification.json",
            "terminate-eventbridge.json", "launch-eventbridge.json", "spot-interruption.json",
        ]),
        field in field_name(),
        value in proptest::option::of(json_value()),
        nested in any::<bool>(),
    ) {
        let mut object: serde_json::Value = serde_json::from_str(&fixture(which)).expect("json");
        let target = match object.get_mut("detail") {
            Some(detail) if nested && detail.is_object() => detail,
            _ => &mut object,
        };
        let map = target.as_object_mut().expect("object");
        match value {
            Some(v) => { map.insert(field, v); }
            None => { map.remove(&field); }
        }
        let _ = parse_message(&serde_json::to_vec(&object).expect("serialises"));
    }
}
