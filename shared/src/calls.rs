//! The calls the processor makes to remote APIs (the Docker Engine API of the managers, and
//! each AWS service), counted by API and by outcome: for the whole process, and for a piece
//! of work that asks for its own tally (a sweep: "what did one sweep cost").
//!
//! AWS calls are counted by [`CountAwsCalls`], an SDK interceptor on every client, once per
//! attempt (a retried call is two calls against the account's API budget). Docker calls are
//! counted by the Docker adapter around each request. A tally is kept per task: calls made by
//! other tasks at the same time (drains beside a sweep) do not enter it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde::Serialize;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered with success.
    Ok,
    /// Refused for the rate of calls (AWS throttling, HTTP 429): retried later.
    Throttled,
    /// Any other failure: an error answer, no answer, a timeout.
    Failed,
}

impl Outcome {
    /// The outcome of a Docker call that ended in `result`.
    pub fn of_docker<T>(result: &Result<T, bollard::errors::Error>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 429, ..
            }) => Self::Throttled,
            Err(_) => Self::Failed,
        }
    }

    /// The outcome of an AWS call answered with HTTP `status` and error `body` (the error
    /// codes AWS uses for a rate exceeded, in the Query, JSON and REST protocols alike).
    pub fn of_aws(status: u16, body: &[u8]) -> Self {
        const THROTTLING: [&str; 5] = [
            "Throttling",
            "RequestLimitExceeded",
            "ProvisionedThroughputExceeded",
            "TooManyRequests",
            "SlowDown",
        ];
        if status < 300 {
            return Self::Ok;
        }
        let body = String::from_utf8_lossy(body);
        if status == 429 || THROTTLING.iter().any(|code| body.contains(code)) {
            Self::Throttled
        } else {
            Self::Failed
        }
    }
}

/// Calls counted: (service, API, outcome) → count. `docker` and `GET /nodes`; an AWS
/// service and operation as the SDK names them, `Auto Scaling` and
/// `DescribeAutoScalingInstances`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally(BTreeMap<(String, String, Outcome), u64>);

/// The service name of the Docker Engine API's calls.
pub const DOCKER: &str = "docker";

impl Tally {
    /// Adds one call.
    pub fn add(&mut self, service: &str, api: &str, outcome: Outcome) {
        *self
            .0
            .entry((service.to_owned(), api.to_owned(), outcome))
            .or_default() += 1;
    }

    /// All calls to `service`.
    pub fn of(&self, service: &str) -> u64 {
        self.0
            .iter()
            .filter(|((of, _, _), _)| of == service)
            .map(|(_, count)| count)
            .sum()
    }

    /// All calls.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Each (service, API, outcome) and its count.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, Outcome, u64)> {
        self.0.iter().map(|((service, api, outcome), count)| {
            (service.as_str(), api.as_str(), *outcome, *count)
        })
    }
}

/// The whole process's calls.
static PROCESS: Mutex<Tally> = Mutex::new(Tally(BTreeMap::new()));

tokio::task_local! {
    /// The tally of the work running in this task, when it asked for one.
    static SCOPE: Arc<Mutex<Tally>>;
}

/// Counts one call to `api` of `service` that ended with `outcome`: in the process's tally,
/// and in the tally of the work this task runs, if it keeps one.
pub fn record(service: &str, api: &str, outcome: Outcome) {
    record_timed(service, api, outcome, None);
}

/// [`record`], with how long the call took when it is known: logged at `debug` (`call
/// done`, with `service`, `api`, `outcome`, `ms`), so a slow step can be read call by call.
pub fn record_timed(service: &str, api: &str, outcome: Outcome, took: Option<Duration>) {
    if let Some(took) = took {
        tracing::debug!(
            service,
            api,
            ?outcome,
            ms = took.as_secs_f64() * 1000.0,
            "call done"
        );
    }
    PROCESS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .add(service, api, outcome);
    let _ = SCOPE.try_with(|scope| {
        scope
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(service, api, outcome);
    });
}

/// The whole process's calls so far.
pub fn process() -> Tally {
    PROCESS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Runs `work` and returns its output with the calls it made (those made in this task while
/// it ran).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use swarm_aws::calls::{DOCKER, Outcome, record, tallied};
/// let ((), tally) = tallied(async { record(DOCKER, "GET /nodes", Outcome::Ok) }).await;
/// record(DOCKER, "GET /info", Outcome::Ok); // outside: not in the tally
/// assert_eq!(tally.of(DOCKER), 1);
/// # }
/// ```
pub async fn tallied<F: Future>(work: F) -> (F::Output, Tally) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let output = SCOPE.scope(Arc::clone(&tally), work).await;
    let tally = tally.lock().unwrap_or_else(PoisonError::into_inner).clone();
    (output, tally)
}

/// A client of an AWS SDK crate, from the shared SDK configuration, with [`CountAwsCalls`]:
/// `counted_client!(aws_sdk_sqs, &sdk)` is an `aws_sdk_sqs::Client` whose every call is
/// counted.
#[macro_export]
macro_rules! counted_client {
    ($sdk_crate:ident, $sdk_config:expr) => {
        $sdk_crate::Client::from_conf(
            $sdk_crate::config::Builder::from($sdk_config)
                .interceptor($crate::calls::CountAwsCalls)
                .build(),
        )
    };
}

/// An AWS SDK interceptor that [`record`]s every attempt of every operation of the client it
/// is given to (`Config::builder().interceptor(CountAwsCalls)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountAwsCalls;

/// When the attempt under way was sent, kept in the attempt's configuration bag.
#[derive(Debug, Clone, Copy)]
struct AttemptSent(Instant);

impl Storable for AttemptSent {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CountAwsCalls {
    fn name(&self) -> &'static str {
        "CountAwsCalls"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptSent(Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, api) = match cfg.load::<Metadata>() {
            Some(metadata) => (metadata.service(), metadata.name()),
            None => ("aws", "unknown"),
        };
        let outcome = match context.response() {
            Some(response) => Outcome::of_aws(
                response.status().as_u16(),
                response.body().bytes().unwrap_or_default(),
            ),
            // No answer: the connection failed or timed out.
            None => Outcome::Failed,
        };
        let took = cfg.load::<AttemptSent>().map(|sent| sent.0.elapsed());
        record_timed(service, api, outcome, took);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aws_answer_reads_as_its_outcome() {
        assert_eq!(Outcome::of_aws(200, b""), Outcome::Ok);
        let query = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert_eq!(Outcome::of_aws(400, query), Outcome::Throttled);
        let json = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}"#;
        assert_eq!(Outcome::of_aws(400, json), Outcome::Throttled);
        assert_eq!(Outcome::of_aws(429, b""), Outcome::Throttled);
        let refused = b"<ErrorResponse><Error><Code>ValidationError</Code></Error></ErrorResponse>";
        assert_eq!(Outcome::of_aws(400, refused), Outcome::Failed);
        assert_eq!(Outcome::of_aws(503, b""), Outcome::Failed);
    }

    #[tokio::test]
    async fn a_tally_holds_the_calls_of_its_own_task_only() {
        let (_, outer) = tallied(async {
            record("Auto Scaling", "DescribeAutoScalingGroups", Outcome::Ok);
            // Another task at the same time: its call is the process's, not this work's.
            tokio::spawn(async { record(DOCKER, "GET /tasks", Outcome::Ok) })
                .await
                .expect("runs");
            record(DOCKER, "GET /nodes", Outcome::Failed);
        })
        .await;
        assert_eq!(outer.of("Auto Scaling"), 1);
        assert_eq!(outer.of(DOCKER), 1);
        assert_eq!(outer.total(), 2);
        assert_eq!(
            outer.iter().collect::<Vec<_>>(),
            [
                ("Auto Scaling", "DescribeAutoScalingGroups", Outcome::Ok, 1),
                (DOCKER, "GET /nodes", Outcome::Failed, 1)
            ]
        );
        assert!(
            process()
                .iter()
                .any(|(_, api, _, count)| api == "GET /tasks" && count >= 1)
        );
    }
}
