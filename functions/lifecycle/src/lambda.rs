//! The AWS Lambda front: an SQS event source with partial batch failures. Each record is
//! driven as far as the invocation's time allows; a record that finished (or needs nothing)
//! is not reported, so Lambda deletes it; one that must wait, failed transiently, or cannot be
//! read is reported, so it comes back (and an unreadable one reaches the dead-letter queue
//! after the queue's receive count). A reported record is shown again after
//! [`COME_BACK_AFTER`], not after the queue's visibility timeout: a drain longer than one
//! invocation carries on in the next, and the hook's heartbeat timeout is never reached.
//!
//! The same function is invoked by a scheduled rule, every minute: that invocation runs the
//! membership sweep ([`crate::sweep`]) and then, when the stack has a listener sync, follows
//! the swarm's service changes for most of the minute ([`crate::listeners`]), so that a
//! published port reaches the load balancer within seconds, not at the next minute.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures_util::future::Either;
use lambda_runtime::LambdaEvent;
use swarm_aws::ports::{Balancer, Groups, LifecycleHooks, Queue, SwarmNodes};
use tracing::Instrument;

use crate::processor::{Outcome, Processor};
use crate::triage::Triage;
use swarm_aws::error::error_chain;

/// Time kept back from the invocation's deadline to answer Lambda.
const ANSWER_MARGIN: Duration = Duration::from_secs(3);

/// How long a scheduled invocation follows the service changes: most of its minute, ending
/// before the next one starts (the function's timeout is longer).
pub const FOLLOW_FOR: Duration = Duration::from_secs(50);

/// How soon a record that must come back is shown again, when the queue is known.
pub const COME_BACK_AFTER: Duration = Duration::from_secs(10);

/// What one invocation of the function is.
#[derive(Debug)]
pub enum Invocation {
    /// A batch from the SQS event source.
    Batch(SqsEvent),
    /// The scheduled rule: run the membership sweep.
    Sweep,
}

/// Tells an invocation's payload: an SQS event (`Records`), or an EventBridge scheduled event
/// (`"detail-type": "Scheduled Event"`, `"source": "aws.events"`). Anything else is named in
/// the error.
pub fn invocation(payload: serde_json::Value) -> Result<Invocation, String> {
    if payload.get("Records").is_some() {
        return serde_json::from_value(payload)
            .map(Invocation::Batch)
            .map_err(|error| format!("not an SQS event: {error}"));
    }
    let field = |name: &str| payload.get(name).and_then(serde_json::Value::as_str);
    if field("detail-type") == Some("Scheduled Event") && field("source") == Some("aws.events") {
        return Ok(Invocation::Sweep);
    }
    let mut fields: Vec<&str> = payload
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    fields.sort_unstable();
    Err(format!(
        "neither an SQS event nor a scheduled event (fields: {})",
        fields.join(", ")
    ))
}

/// Handles one invocation, whatever invoked it: a batch is answered with its batch item
/// failures, a sweep with what it did. A sweep that fails fails the invocation (so Lambda's
/// error metric shows it); the next minute's sweep looks again.
pub async fn invoke<S: SwarmNodes, H: LifecycleHooks + Groups, Q: Queue, B: Balancer>(
    processor: &Processor<S, H>,
    queue: Option<&Q>,
    balancer: Option<&B>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    let (payload, context) = event.into_parts();
    let answer = async {
        match invocation(payload)? {
            Invocation::Batch(batch) => {
                let response = handle(processor, queue, LambdaEvent::new(batch, context)).await?;
                Ok(serde_json::to_value(response)?)
            }
            Invocation::Sweep => {
                let swept = processor
                    .sweep()
                    .instrument(tracing::info_span!("sweep"))
                    .await
                    .inspect_err(|error| {
                        tracing::error!(step = "sweep", error = %error, cause = error_chain(error).as_deref(), "the sweep failed; the next one looks again");
                    });
                // The listeners are followed whatever the sweep found.
                if let Some(balancer) = balancer {
                    let until = Instant::now() + budget(context.deadline).min(FOLLOW_FOR);
                    let (_stop, stopped) = tokio::sync::watch::channel(false);
                    processor
                        .follow_listeners(balancer, Some(until), stopped)
                        .instrument(tracing::info_span!("listeners"))
                        .await;
                }
                let plan = swept?;
                Ok(serde_json::json!({
                    "actions": plan.actions.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "held": plan.held.len(),
                }))
            }
        }
    }
    .await;
    // What this invocation did, as metrics: CloudWatch Logs extracts them from these lines
    // of the function's standard output (Embedded Metric Format), whatever the answer.
    let now = chrono::Utc::now().timestamp_millis();
    for document in processor
        .metrics()
        .take_emf(&processor.config().stack_name, now)
    {
        println!("{document}");
    }
    answer
}

/// Handles one batch; the records are processed side by side. With `queue`, each record
/// reported back is first made visible again after [`COME_BACK_AFTER`].
pub async fn handle<S: SwarmNodes, H: LifecycleHooks + Groups, Q: Queue>(
    processor: &Processor<S, H>,
    queue: Option<&Q>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let budget = budget(event.context.deadline);
    let outcomes = futures_util::future::join_all(event.payload.records.iter().map(|record| {
        let message_id = record.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("message", message_id = %message_id);
        async move {
            let triage = processor.triage(
                &message_id,
                record.body.as_deref().unwrap_or_default(),
            );
            // The work: a hook's action driven as far as the budget allows, or a drain ahead
            // of a Spot interruption.
            let work = match &triage {
                Triage::Acknowledge { .. } | Triage::Reject(_) => None,
                Triage::Action(action) => {
                    let span = tracing::info_span!(
                        "action",
                        instance_id = %action.instance_id,
                        asg_name = %action.group,
                        hook_name = %action.hook,
                    );
                    Some(Either::Left(processor.drive(action, budget).instrument(span)))
                }
                Triage::Spot(notice) => {
                    let span = tracing::info_span!("spot", instance_id = %notice.instance_id);
                    Some(Either::Right(
                        processor.drain_ahead(notice, budget).instrument(span),
                    ))
                }
            };
            let finished = match work {
                None => matches!(triage, Triage::Acknowledge { .. }),
                Some(work) => {
                    match work.await {
                        Ok(Outcome::Finished(_)) => true,
                        Ok(Outcome::Later(step)) => {
                            tracing::info!(step = step.name(), reason = step.reason(), "coming back later");
                            false
                        }
                        Err(error) => {
                            tracing::error!(error = %error, cause = error_chain(&error).as_deref(), "step failed; the record comes back");
                            false
                        }
                    }
                }
            };
            if let (false, Some(queue), Some(receipt)) =
                (finished, queue, record.receipt_handle.as_deref())
                && let Err(error) = queue.show_again(receipt, COME_BACK_AFTER).await
            {
                tracing::warn!(error = %error, "cannot shorten the record's wait; it comes back after the queue's visibility timeout");
            }
            (message_id, finished)
        }
        .instrument(span)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (message_id, finished) in outcomes {
        if !finished {
            response.add_failure(message_id);
        }
    }
    Ok(response)
}

/// The time left before the invocation's deadline (milliseconds since the epoch), less the
/// margin to answer.
fn budget(deadline_ms: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_millis(deadline_ms)
        .saturating_sub(now)
        .saturating_sub(ANSWER_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fakes::{FakeHooks, FakeQueue, FakeSwarm};
    use aws_lambda_events::event::sqs::SqsMessage;

    fn record(id: &str, body: &str) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.to_owned());
        record.receipt_handle = Some(format!("receipt-{id}"));
        record.body = Some(body.to_owned());
        record
    }

    #[test]
    fn an_invocation_is_a_batch_a_scheduled_sweep_or_refused_by_its_fields() {
        let batch = serde_json::json!({"Records": [{"messageId": "m1", "body": "x"}]});
        assert!(matches!(invocation(batch), Ok(Invocation::Batch(e)) if e.records.len() == 1));
        let scheduled = serde_json::json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-12-05T00:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/swarm-Sweep"], "detail": {}
        });
        assert!(matches!(invocation(scheduled), Ok(Invocation::Sweep)));
        let other = serde_json::json!({"detail-type": "Scheduled Event", "source": "my.app"});
        let error = invocation(other).expect_err("not ours");
        assert!(error.contains("fields: detail-type, source"), "{error}");
        assert!(invocation(serde_json::json!({"Records": 3})).is_err());
    }

    #[tokio::test]
    async fn a_batch_reports_only_the_records_that_must_come_back() {
        let config = Config::from_lookup(|var| {
            (var == crate::config::vars::GROUPS).then(|| "workers".to_owned())
        })
        .expect("valid");
        let processor = Processor::new(FakeSwarm::with_busy_worker(), FakeHooks::default(), config);
        let mut event = SqsEvent::default();
        event.records = vec![
            record("malformed", "not json"),
            record("test", r#"{"Event":"autoscaling:TEST_NOTIFICATION"}"#),
            record(
                "foreign",
                r#"{"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","EC2InstanceId":"i-0598c7d356eba48d7","AutoScalingGroupName":"someone-else","LifecycleHookName":"h","LifecycleActionToken":"c613620e-07e2-4ed2-a9e2-ef8258911ade"}"#,
            ),
            record(
                "ours",
                r#"{"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","EC2InstanceId":"i-0598c7d356eba48d7","AutoScalingGroupName":"workers","LifecycleHookName":"drain","LifecycleActionToken":"c613620e-07e2-4ed2-a9e2-ef8258911ade"}"#,
            ),
        ];
        let mut context = lambda_runtime::Context::default();
        context.deadline = (SystemTime::now() + Duration::from_secs(30))
            .duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis() as u64;
        let queue = FakeQueue::default();
        let response = handle(&processor, Some(&queue), LambdaEvent::new(event, context))
            .await
            .expect("handled");
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["malformed"]);
        assert_eq!(
            *queue.shown_again.lock().expect("shown again"),
            [("receipt-malformed".to_owned(), COME_BACK_AFTER)],
            "a record that comes back is shown again soon, not after the visibility timeout"
        );
        assert_eq!(
            processor.hooks().completed.lock().expect("completed").len(),
            1
        );
    }
}
