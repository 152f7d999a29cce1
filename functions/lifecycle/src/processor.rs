//! The reconcile step of one lifecycle action, kept apart from the fronts that feed it and
//! from their error policy: observe (Auto Scaling, the swarm), [`decide`], act, and drive
//! that loop until the action is finished or the front's time budget is spent.
//!
//! Every step re-observes the world, so it may run twice, or in two processes, or after a
//! crash halfway, and still do the right thing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use swarm_aws::drain::{ActionStatus, Observation, Step, WaitFor, decide};
use swarm_aws::error::Error;
use swarm_aws::event::{LifecycleAction, SpotInterruption, Transition};
use swarm_aws::ids::InstanceId;
use swarm_aws::ports::{Answer, LifecycleHooks, Restoration, SwarmNodes};

use crate::config::Config;
use crate::metrics::{
    ACTION_SECONDS, ACTIONS_COMPLETED, DRAINS_FORCED, DRAINS_STARTED, Metrics, OVERHEAD_SECONDS,
    SURGES, WAITS,
};

/// How a [`Processor::drive`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The action needs nothing more: delete its message.
    Finished(Step),
    /// Still waiting when the budget ran out: the message must come back later.
    Later(Step),
}

/// The processor of lifecycle actions, over a swarm and Auto Scaling.
pub struct Processor<S, H> {
    pub(crate) swarm: S,
    pub(crate) hooks: H,
    config: Config,
    /// What this process keeps of each drain in flight: by token, or by instance for a Spot
    /// notice. Forgotten when the drain finishes.
    drains: Mutex<HashMap<String, InFlight>>,
    /// Demotions one at a time: each is decided on a fresh count of reachable managers, so
    /// two terminating managers never both pass the quorum check on the same stale view. The
    /// membership sweep holds it too.
    pub(crate) demotions: tokio::sync::Mutex<()>,
    /// When the membership sweep first saw each instance of the stack's groups.
    pub(crate) known_instances: Mutex<HashMap<InstanceId, Instant>>,
    /// Raised when a termination completes: a sweep then looks at what it may have left.
    pub(crate) sweep_wanted: tokio::sync::Notify,
    /// What it reports.
    metrics: Metrics,
}

/// What this process keeps of one drain in flight.
#[derive(Debug, Default)]
struct InFlight {
    /// When this process first saw it, for actions that carry no time.
    first_seen: Option<Instant>,
    /// When this process last heartbeated it.
    heartbeat: Option<Instant>,
    /// Auto Scaling's state of the action and when it was learnt, from a
    /// `DescribeAutoScalingInstances` or a heartbeat's answer: read again only when older
    /// than [`Processor::status_ttl`], and always before a completion.
    status: Option<(ActionStatus, Instant)>,
    /// What it waits for now.
    waiting_on: Option<WaitFor>,
    /// When it found nothing left to wait for (its node's removal was decided).
    ready_at: Option<Instant>,
}

/// How an observation reads Auto Scaling's state of the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// What this process learnt lately will do (within [`Processor::status_ttl`]).
    Recent,
    /// Ask Auto Scaling now: the step about to be taken ends the action.
    Now,
}

impl<S: SwarmNodes, H: LifecycleHooks> Processor<S, H> {
    /// A processor acting through `swarm` and `hooks`.
    pub fn new(swarm: S, hooks: H, config: Config) -> Self {
        Self {
            swarm,
            hooks,
            config,
            drains: Mutex::new(HashMap::new()),
            demotions: tokio::sync::Mutex::new(()),
            known_instances: Mutex::new(HashMap::new()),
            sweep_wanted: tokio::sync::Notify::new(),
            metrics: Metrics::default(),
        }
    }

    /// Reads or changes what this process keeps of the drain under `key`.
    fn in_flight<T>(&self, key: &str, with: impl FnOnce(&mut InFlight) -> T) -> T {
        with(lock(&self.drains).entry(key.to_owned()).or_default())
    }

    /// How long a learnt action state is used without asking Auto Scaling again: two
    /// heartbeat periods. A waiting action is heartbeated every period, and the heartbeat's
    /// answer says whether the action is still open, so while it waits the state is never
    /// read for itself: one Auto Scaling call a heartbeat period, not one a poll.
    fn status_ttl(&self) -> Duration {
        self.config.heartbeat_every * 2
    }

    /// Auto Scaling's state of `action`: learnt lately, or read now.
    async fn status(&self, action: &LifecycleAction, read: Read) -> Result<ActionStatus, Error> {
        let token = action.token.as_str();
        if read == Read::Recent
            && let Some((status, at)) = self.in_flight(token, |d| d.status)
            && at.elapsed() < self.status_ttl()
        {
            return Ok(status);
        }
        let status = self.hooks.status(action).await?;
        self.in_flight(token, |d| d.status = Some((status, Instant::now())));
        Ok(status)
    }

    /// What it reports (both fronts render it).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Its Auto Scaling port (tests look at what it was asked).
    #[cfg(test)]
    pub(crate) fn hooks(&self) -> &H {
        &self.hooks
    }

    /// Everything [`decide`] needs about `action`, read now (Auto Scaling's state of it as
    /// [`Processor::status`] reads it).
    async fn observe(&self, action: &LifecycleAction, read: Read) -> Result<Observation, Error> {
        let status = self.status(action, read).await?;
        let swarm = self.swarm.observe(&action.instance_id).await?;
        let elapsed = match action.time {
            Some(time) => (Utc::now() - time).to_std().unwrap_or_default(),
            None => self
                .in_flight(action.token.as_str(), |d| {
                    *d.first_seen.get_or_insert_with(Instant::now)
                })
                .elapsed(),
        };
        Ok(Observation {
            transition: action.transition,
            action: status,
            swarm,
            elapsed,
            deadline: match action.transition {
                Transition::Terminating => self.config.drain_deadline,
                Transition::Launching => self.config.launch_deadline,
            },
            since_heartbeat: self
                .in_flight(action.token.as_str(), |d| d.heartbeat)
                .map(|at| at.elapsed()),
            heartbeat_every: self.config.heartbeat_every,
            surge: self.config.surge,
        })
    }

    /// Everything [`decide`] needs to drain ahead of a Spot notice, read now: no hook holds
    /// the instance yet, so the drain goes on until its node is out of the swarm.
    pub async fn observe_notice(&self, notice: &SpotInterruption) -> Result<Observation, Error> {
        let swarm = self.swarm.observe(&notice.instance_id).await?;
        Ok(Observation {
            transition: Transition::Terminating,
            action: ActionStatus::Waiting,
            swarm,
            elapsed: notice
                .time
                .and_then(|time| (Utc::now() - time).to_std().ok())
                .unwrap_or_default(),
            deadline: self.config.drain_deadline,
            since_heartbeat: None,
            heartbeat_every: self.config.heartbeat_every,
            surge: self.config.surge,
        })
    }

    /// One reconcile step: observe, decide, act. Returns the step taken.
    pub async fn step(&self, action: &LifecycleAction) -> Result<Step, Error> {
        self.step_of(Subject::Action(action)).await
    }

    /// One step for `subject`.
    async fn step_of(&self, subject: Subject<'_>) -> Result<Step, Error> {
        let mut seen = self.observe_subject(subject, Read::Recent).await?;
        let mut step = decide(&seen);
        // A completion ends the action: decided again on Auto Scaling's state read now, not
        // on one this process learnt earlier (it may have ended elsewhere meanwhile).
        if matches!(step, Step::Complete { .. }) {
            seen = self.observe_subject(subject, Read::Now).await?;
            step = decide(&seen);
        }
        let _serialized = if matches!(step, Step::Demote { .. }) {
            let guard = self.demotions.lock().await;
            // Decide again under the lock: another demotion may have just changed the count.
            seen = self.observe_subject(subject, Read::Recent).await?;
            step = decide(&seen);
            Some(guard)
        } else {
            None
        };
        let decided = Instant::now();
        self.act(subject.action(), &step).await?;
        self.record(subject, &step, seen.elapsed, decided);
        Ok(step)
    }

    /// Counts a step taken, for the metrics: drains started and forced, what actions wait
    /// for (once per action and reason), completions with their time, and the overhead from
    /// the decision that nothing was left to wait for (`decided` of the removal) to the end.
    fn record(&self, subject: Subject<'_>, step: &Step, elapsed: Duration, decided: Instant) {
        let key = subject.key();
        let metrics = &self.metrics;
        match step {
            Step::Drain { .. } => metrics.count(&DRAINS_STARTED, &[]),
            Step::Wait { on, .. } => {
                if self.in_flight(key, |d| d.waiting_on.replace(*on)) != Some(*on) {
                    metrics.count(&WAITS, &[on.as_str()]);
                }
            }
            Step::RemoveNode { forced: true, .. } => metrics.count(&DRAINS_FORCED, &[]),
            Step::RemoveNode { forced: false, .. } => {
                self.in_flight(key, |d| d.ready_at = Some(decided));
            }
            Step::Complete { result, forced, .. } => {
                let transition = subject.transition();
                if *forced && transition == Transition::Terminating {
                    metrics.count(&DRAINS_FORCED, &[]);
                }
                let transition = match transition {
                    Transition::Terminating => "terminating",
                    Transition::Launching => "launching",
                };
                if subject.action().is_some() {
                    metrics.count(&ACTIONS_COMPLETED, &[transition, result.as_aws_str()]);
                    metrics.observe(&ACTION_SECONDS, &[transition], elapsed.as_secs_f64());
                }
                // The drain is over: what was kept of it goes.
                let finished = lock(&self.drains).remove(key);
                if let Some(ready) = finished.and_then(|d| d.ready_at) {
                    metrics.observe(&OVERHEAD_SECONDS, &[], ready.elapsed().as_secs_f64());
                }
            }
            Step::Done { .. } => {
                lock(&self.drains).remove(key);
            }
            Step::Demote { .. } | Step::Pause { .. } | Step::Restore { .. } => {}
            Step::Surge { services, .. } => {
                for _ in services {
                    metrics.count(&SURGES, &[]);
                }
            }
        }
    }

    async fn observe_subject(
        &self,
        subject: Subject<'_>,
        read: Read,
    ) -> Result<Observation, Error> {
        match subject {
            Subject::Action(action) => self.observe(action, read).await,
            Subject::Notice(notice) => self.observe_notice(notice).await,
        }
    }

    async fn act(&self, action: Option<&LifecycleAction>, step: &Step) -> Result<(), Error> {
        let reason = step.reason();
        match step {
            Step::Done { .. } => tracing::info!(step = step.name(), reason, "nothing left to do"),
            Step::Demote { node_id, .. } => {
                tracing::info!(step = step.name(), node_id, reason, "demoting the manager");
                self.swarm.demote(node_id).await?;
            }
            Step::Drain { node_id, .. } => {
                // A service drained as it stands, where the surge could not help: said loudly.
                if reason.contains("drained as it stands") {
                    tracing::warn!(step = step.name(), node_id, reason, "draining the node");
                } else {
                    tracing::info!(step = step.name(), node_id, reason, "draining the node");
                }
                self.swarm.drain(node_id).await?;
            }
            Step::Pause { node_id, .. } => {
                tracing::info!(step = step.name(), node_id, reason, "pausing the node");
                self.swarm.pause(node_id).await?;
            }
            Step::Surge {
                node_id, services, ..
            } => {
                tracing::info!(
                    step = step.name(),
                    node_id,
                    reason,
                    "scaling up before the drain"
                );
                for (service_id, _, added) in services {
                    self.swarm.surge(service_id, node_id, *added).await?;
                }
            }
            Step::Restore {
                node_id, services, ..
            } => {
                for (service_id, name) in services {
                    match self.swarm.restore(service_id, node_id).await? {
                        Restoration::Restored { replicas } => tracing::info!(
                            step = step.name(),
                            node_id,
                            service = %name,
                            replicas,
                            "the count before the surge given back"
                        ),
                        Restoration::SteppedAside { replicas, expected } => tracing::warn!(
                            step = step.name(),
                            node_id,
                            service = %name,
                            replicas,
                            expected,
                            "the service's count was changed by someone else during the surge: left as they set it"
                        ),
                        Restoration::Nothing => {}
                    }
                }
            }
            Step::Wait { heartbeat, .. } => {
                tracing::debug!(step = step.name(), reason, "waiting");
                if *heartbeat && let Some(action) = action {
                    let answer = self.hooks.heartbeat(action).await?;
                    let now = Instant::now();
                    // The answer is Auto Scaling's state of the action, learnt for free.
                    let status = match answer {
                        Answer::Accepted => ActionStatus::Waiting,
                        Answer::NoActiveAction => ActionStatus::Ended,
                    };
                    self.in_flight(action.token.as_str(), |d| {
                        d.heartbeat = Some(now);
                        d.status = Some((status, now));
                    });
                    tracing::info!(
                        step = "heartbeat",
                        reason,
                        ?answer,
                        "still waiting: heartbeat recorded"
                    );
                }
            }
            Step::RemoveNode {
                node_id, forced, ..
            } => {
                if *forced {
                    tracing::warn!(
                        step = step.name(),
                        node_id,
                        reason,
                        "DRAIN DEADLINE PASSED: removing the node anyway"
                    );
                } else {
                    tracing::info!(
                        step = step.name(),
                        node_id,
                        reason,
                        "removing the node from the swarm"
                    );
                }
                self.swarm.remove(node_id).await?;
            }
            Step::Complete { result, forced, .. } => {
                let Some(action) = action else {
                    // No hook holds the instance yet: when its termination hook comes, the
                    // node is already out of the swarm and it completes at once.
                    if *forced {
                        tracing::warn!(
                            step = step.name(),
                            reason,
                            "DEADLINE PASSED: no longer draining ahead of the interruption"
                        );
                    } else {
                        tracing::info!(
                            step = step.name(),
                            reason,
                            "drained ahead of the interruption"
                        );
                    }
                    return Ok(());
                };
                let answer = self.hooks.complete(action, *result).await?;
                let result = result.as_aws_str();
                if *forced {
                    tracing::warn!(
                        step = step.name(),
                        result,
                        reason,
                        ?answer,
                        "DEADLINE PASSED: lifecycle action completed anyway"
                    );
                } else if answer == Answer::NoActiveAction {
                    tracing::info!(
                        step = step.name(),
                        result,
                        reason,
                        "the lifecycle action had already ended"
                    );
                } else {
                    tracing::info!(
                        step = step.name(),
                        result,
                        reason,
                        "lifecycle action completed"
                    );
                }
            }
        }
        Ok(())
    }

    /// Drives `action` step by step until it is finished, or until `budget` runs out while it
    /// waits. Between observations it follows the swarm (see [`SwarmNodes::changed`]).
    pub async fn drive(
        &self,
        action: &LifecycleAction,
        budget: Duration,
    ) -> Result<Outcome, Error> {
        let outcome = self.follow(Subject::Action(action), budget).await?;
        if let Outcome::Finished(Step::Complete { .. }) = &outcome
            && action.transition == Transition::Terminating
        {
            // What the termination leaves (or what happened meanwhile) is the sweep's.
            self.sweep_wanted.notify_one();
        }
        Ok(outcome)
    }

    /// Takes step after step for `subject` until one finishes (done, or completed), or until
    /// `budget` runs out while it waits.
    pub(crate) async fn follow(
        &self,
        subject: Subject<'_>,
        budget: Duration,
    ) -> Result<Outcome, Error> {
        let started = Instant::now();
        loop {
            // One step: observe, decide, act.
            let step = self.step_of(subject).await?;
            match step {
                Step::Done { .. } | Step::Complete { .. } => return Ok(Outcome::Finished(step)),
                // Waiting: come back later if the budget would run out, else follow the swarm.
                Step::Wait { .. } => {
                    if started.elapsed() + self.config.poll_interval >= budget {
                        return Ok(Outcome::Later(step));
                    }
                    self.swarm.changed(self.config.poll_interval).await;
                }
                // An action taken: look again at once.
                Step::Demote { .. }
                | Step::Pause { .. }
                | Step::Surge { .. }
                | Step::Restore { .. }
                | Step::Drain { .. }
                | Step::RemoveNode { .. } => {}
            }
        }
    }
}

/// What a drain is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject<'a> {
    /// A lifecycle action its hook holds: heartbeated while it waits, completed at the end.
    Action(&'a LifecycleAction),
    /// A Spot notice: no hook holds the instance yet, nothing to heartbeat or complete.
    Notice(&'a SpotInterruption),
}

impl<'a> Subject<'a> {
    /// The hook's action, if one holds the instance.
    fn action(self) -> Option<&'a LifecycleAction> {
        match self {
            Self::Action(action) => Some(action),
            Self::Notice(_) => None,
        }
    }

    /// What this process keeps its state of the drain under: the action's token, or the
    /// instance of a notice.
    fn key(self) -> &'a str {
        match self {
            Self::Action(action) => action.token.as_str(),
            Self::Notice(notice) => notice.instance_id.as_str(),
        }
    }

    /// Its transition: a notice announces a termination.
    fn transition(self) -> Transition {
        match self {
            Self::Action(action) => action.transition,
            Self::Notice(_) => Transition::Terminating,
        }
    }
}

/// A std mutex of plain maps: a panic elsewhere leaves them usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeHooks, FakeSwarm};
    use swarm_aws::event::{LifecycleMessage, parse_message};

    fn config() -> Config {
        Config::from_lookup(|var| {
            (var == crate::config::vars::GROUPS).then(|| "workers".to_owned())
        })
        .expect("valid")
    }

    fn action() -> LifecycleAction {
        let body = br#"{"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","EC2InstanceId":"i-0598c7d356eba48d7","AutoScalingGroupName":"workers","LifecycleHookName":"drain","LifecycleActionToken":"c613620e-07e2-4ed2-a9e2-ef8258911ade"}"#;
        let Ok(LifecycleMessage::Action(action)) = parse_message(body) else {
            panic!("the fixture parses");
        };
        action
    }

    #[tokio::test]
    async fn a_busy_worker_is_drained_removed_and_completed_in_that_order() {
        let processor = Processor::new(
            FakeSwarm::with_busy_worker(),
            FakeHooks::default(),
            config(),
        );
        let outcome = processor
            .drive(&action(), Duration::from_secs(5))
            .await
            .expect("drives");
        assert!(
            matches!(outcome, Outcome::Finished(Step::Complete { .. })),
            "{outcome:?}"
        );
        assert_eq!(
            *processor.swarm.calls.lock().expect("calls"),
            ["pause", "surge", "drain", "restore", "remove"]
        );
        assert_eq!(
            processor.hooks.completed.lock().expect("completed").len(),
            1
        );
    }

    #[tokio::test]
    async fn driving_the_same_action_twice_completes_it_once() {
        let processor = Processor::new(
            FakeSwarm::with_busy_worker(),
            FakeHooks::default(),
            config(),
        );
        processor
            .drive(&action(), Duration::from_secs(5))
            .await
            .expect("first");
        let again = processor
            .drive(&action(), Duration::from_secs(5))
            .await
            .expect("second");
        assert!(
            matches!(again, Outcome::Finished(Step::Done { .. })),
            "{again:?}"
        );
        assert_eq!(
            processor.hooks.completed.lock().expect("completed").len(),
            1
        );
        assert_eq!(
            *processor.swarm.calls.lock().expect("calls"),
            ["pause", "surge", "drain", "restore", "remove"]
        );
    }

    #[tokio::test]
    async fn a_wait_longer_than_the_budget_comes_back_later_having_heartbeated() {
        let swarm = FakeSwarm::with_busy_worker();
        // Drained already, but the replica never comes back elsewhere.
        {
            let mut view = swarm.view.lock().expect("view");
            if let Some(node) = view.node.as_mut() {
                node.availability = swarm_aws::drain::Availability::Drain;
            }
        }
        let processor = Processor::new(swarm, FakeHooks::default(), config());
        let outcome = processor
            .drive(&action(), Duration::from_millis(350))
            .await
            .expect("drives");
        assert!(
            matches!(outcome, Outcome::Later(Step::Wait { .. })),
            "{outcome:?}"
        );
        assert_eq!(
            *processor.hooks.heartbeats.lock().expect("heartbeats"),
            1,
            "one heartbeat per interval"
        );
        // Polled every 100 ms, Auto Scaling asked once: the heartbeat's answer says the rest.
        assert_eq!(*processor.hooks.status_reads.lock().expect("reads"), 1);
        assert!(
            processor
                .hooks
                .completed
                .lock()
                .expect("completed")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn an_action_that_ended_elsewhere_meanwhile_is_not_completed_on_a_state_learnt_earlier() {
        let processor = Processor::new(
            FakeSwarm::with_busy_worker(),
            FakeHooks::default(),
            config(),
        );
        // This process learns the action is open, and pauses the node to surge its service.
        let first = processor.step(&action()).await.expect("steps");
        assert_eq!(first.name(), "pause");
        // Another processor completes it meanwhile; this one still remembers it open.
        *processor.hooks.ended_elsewhere.lock().expect("ended") = true;
        let outcome = processor
            .drive(&action(), Duration::from_secs(5))
            .await
            .expect("drives");
        assert!(
            matches!(outcome, Outcome::Finished(Step::Done { .. })),
            "{outcome:?}"
        );
        assert!(
            processor
                .hooks
                .completed
                .lock()
                .expect("completed")
                .is_empty(),
            "completed an action that had ended"
        );
        // Read when first seen, and again before the completion it was about to make.
        assert_eq!(*processor.hooks.status_reads.lock().expect("reads"), 2);
    }
}
