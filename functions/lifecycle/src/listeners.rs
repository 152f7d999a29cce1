//! The listener sync, driven: read what the swarm's services publish (from the one view the
//! drains use) and what the stack's Network Load Balancer has, let
//! [`swarm_aws::listeners::decide`] say what to change, change it, and look again until
//! nothing is left to do.
//!
//! [`Processor::follow_listeners`] runs it on every service change the managers' event stream
//! reports (within a second of the change) and every [`FULL_SYNC_EVERY`] whatever happens, the
//! safety net of a level-triggered loop: `serve` follows for as long as it runs, Lambda for
//! most of the minute of its scheduled invocation. Two syncs at once are harmless: every
//! change is idempotent, and each decides on what it has just read.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use swarm_aws::error::{Error, error_chain};
use swarm_aws::listeners::{Action, Plan, decide};
use swarm_aws::ports::{Balancer, LifecycleHooks, SwarmNodes};
use tokio::sync::watch;

use crate::metrics::LISTENER_CHANGES;
use crate::processor::Processor;

/// A full sync at least this often, events or not.
pub const FULL_SYNC_EVERY: Duration = Duration::from_secs(60);
/// How soon a sync that waits on AWS (a target group detaching) looks again.
const LOOK_AGAIN: Duration = Duration::from_secs(2);
/// How soon a sync that could not look is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Rounds of look-decide-act in one sync: serving a new port takes three (target group;
/// attachment and listener; nothing left), removing one four.
const ROUNDS: usize = 6;
/// The longest one wait on the event stream lasts (the Engine API client's own timeout is
/// longer): a quiet stream is opened again, at no cost but one request.
const EVENT_WAIT: Duration = Duration::from_secs(20);

/// What one sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Synced {
    /// The changes made.
    pub made: Vec<Action>,
    /// The changes that failed, with why (retried by the next sync).
    pub failed: Vec<(Action, String)>,
    /// The last plan: its refusals and unreadable labels are what the operator must see.
    pub plan: Plan,
}

impl<S: SwarmNodes, H: LifecycleHooks> Processor<S, H> {
    /// One sync: the services as they stand no earlier than `not_before`, then rounds of
    /// look at the load balancer, decide, act, until the plan is empty or a round changes
    /// nothing. A change that fails is logged and the others go on (one port's bad
    /// certificate must not hold every other port back); a look that fails ends the sync.
    pub async fn sync_listeners<B: Balancer>(
        &self,
        balancer: &B,
        not_before: Instant,
    ) -> Result<Synced, Error> {
        let publishing = self.swarm.publishing(not_before).await?;
        let mut synced = Synced::default();
        for _ in 0..ROUNDS {
            let mut seen = balancer.observe().await?;
            seen.published = publishing.published.clone();
            seen.certificates = publishing.certificates.clone();
            let plan = decide(&seen);
            let mut progress = false;
            for action in &plan.actions {
                // Failed once in this sync: the next sync tries it again, not this one.
                if synced.failed.iter().any(|(failed, _)| failed == action) {
                    continue;
                }
                match balancer.act(action).await {
                    Ok(()) => {
                        tracing::info!(step = "listeners", action = ?action, "load balancer changed");
                        self.metrics().count(&LISTENER_CHANGES, &["made"]);
                        synced.made.push(action.clone());
                        progress = true;
                    }
                    Err(error) => {
                        tracing::warn!(step = "listeners", action = ?action, error = %error, cause = error_chain(&error).as_deref(), "a load balancer change failed; the next sync tries again");
                        self.metrics().count(&LISTENER_CHANGES, &["failed"]);
                        synced.failed.push((action.clone(), error.to_string()));
                    }
                }
            }
            let done = plan.actions.is_empty() || !progress;
            synced.plan = plan;
            if done {
                break;
            }
        }
        Ok(synced)
    }

    /// Syncs now, after every service change, and every [`FULL_SYNC_EVERY`], until `until`
    /// (Lambda's invocation) or `stop` says so (`serve`'s shutdown). A refusal or unreadable
    /// label is warned about when it first appears, not on every sync.
    pub async fn follow_listeners<B: Balancer>(
        &self,
        balancer: &B,
        until: Option<Instant>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut said: BTreeSet<String> = BTreeSet::new();
        let mut not_before = Instant::now();
        // Changes since then are waited for: when a sync fails, the time of the last that
        // did not, so a change made meanwhile brings the next sync at once.
        let mut since = SystemTime::now();
        loop {
            // Sync on what stands now (a change seen at `not_before` included).
            let started = Instant::now();
            let started_at = SystemTime::now();
            let mut next_full = started + FULL_SYNC_EVERY;
            match self.sync_listeners(balancer, not_before).await {
                Ok(synced) => {
                    since = started_at;
                    if synced.plan.waiting {
                        next_full = started + LOOK_AGAIN;
                    }
                    said = self.tell(&synced.plan, said);
                    tracing::debug!(
                        step = "listeners",
                        made = synced.made.len(),
                        failed = synced.failed.len(),
                        took_ms = started.elapsed().as_millis() as u64,
                        "listeners synced"
                    );
                }
                Err(error) => {
                    tracing::warn!(step = "listeners", error = %error, cause = error_chain(&error).as_deref(), "the listener sync could not look; it tries again");
                    next_full = started + RETRY_AFTER;
                }
            }
            // Wait for a service change, the next full sync, the end of the invocation or the
            // shutdown, whichever comes first; a quiet stream is waited on again.
            loop {
                let now = Instant::now();
                let end = until.map_or(next_full, |u| u.min(next_full));
                if now >= end || *stop.borrow() {
                    break;
                }
                let wait = (end - now).min(EVENT_WAIT);
                let changed = tokio::select! {
                    changed = self.swarm.services_changed(since, wait) => changed,
                    // The sender gone is a shutdown too.
                    closed = stop.changed() => {
                        if closed.is_err() {
                            return;
                        }
                        false
                    }
                };
                if changed {
                    break;
                }
            }
            not_before = Instant::now();
            if *stop.borrow() || until.is_some_and(|u| not_before >= u) {
                return;
            }
        }
    }

    /// Warns of each refusal and unreadable label not warned of before; returns what stands.
    fn tell(&self, plan: &Plan, said: BTreeSet<String>) -> BTreeSet<String> {
        let mut now = BTreeSet::new();
        for refusal in &plan.refusals {
            let key = format!(
                "refused {} {:?} {}",
                refusal.port, refusal.services, refusal.reason
            );
            if !said.contains(&key) {
                tracing::warn!(step = "listeners", port = refusal.port, services = ?refusal.services, reason = %refusal.reason, "a published port is not served by the load balancer");
            }
            now.insert(key);
        }
        for (service, why) in &plan.unreadable {
            let key = format!("unreadable {service} {why}");
            if !said.contains(&key) {
                tracing::warn!(step = "listeners", service = %service, reason = %why, "a certificate label cannot be read: this service's ports are left as they are");
            }
            now.insert(key);
        }
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeBalancer, FakeHooks, FakeSwarm};
    use swarm_aws::listeners::{ListenerProtocol, Published, Transport};

    fn processor_publishing(ports: &[u16]) -> Processor<FakeSwarm, FakeHooks> {
        let swarm = FakeSwarm::with_busy_worker();
        swarm.publishing.lock().expect("publishing").published = ports
            .iter()
            .map(|&port| Published {
                service: format!("app{port}"),
                port,
                transport: Transport::Tcp,
            })
            .collect();
        let config = crate::config::Config::from_lookup(|var| {
            (var == crate::config::vars::GROUPS).then(|| "workers".to_owned())
        })
        .expect("valid");
        Processor::new(swarm, FakeHooks::default(), config)
    }

    fn listening(balancer: &FakeBalancer) -> Vec<u16> {
        let state = balancer.state.lock().expect("state");
        state.listeners.iter().map(|l| l.port).collect()
    }

    #[tokio::test]
    async fn one_sync_serves_a_new_port_end_to_end_and_the_next_changes_nothing() {
        let processor = processor_publishing(&[8080]);
        let balancer = FakeBalancer::at_limits();
        let synced = processor
            .sync_listeners(&balancer, Instant::now())
            .await
            .expect("synced");
        assert_eq!(
            synced.made,
            [
                Action::CreateTargetGroup {
                    port: 8080,
                    protocol: ListenerProtocol::Tcp
                },
                Action::AttachTargetGroup {
                    arn: "tg-8080".into()
                },
                Action::CreateListener {
                    port: 8080,
                    protocol: ListenerProtocol::Tcp,
                    target_group: "tg-8080".into()
                },
            ]
        );
        assert_eq!(listening(&balancer), [8080]);
        let again = processor
            .sync_listeners(&balancer, Instant::now())
            .await
            .expect("synced");
        assert_eq!(again.made, []);
    }

    #[tokio::test]
    async fn a_change_that_fails_holds_no_other_port_back_and_is_tried_again() {
        let processor = processor_publishing(&[8080, 9090]);
        let balancer = FakeBalancer {
            refuse: vec![8080],
            ..FakeBalancer::at_limits()
        };
        let synced = processor
            .sync_listeners(&balancer, Instant::now())
            .await
            .expect("synced");
        assert_eq!(listening(&balancer), [9090]);
        assert_eq!(synced.failed.len(), 1, "{synced:?}");
        // The next sync tries the refused one again, and only it.
        let again = processor
            .sync_listeners(&balancer, Instant::now())
            .await
            .expect("synced");
        assert_eq!(again.made, []);
        assert!(matches!(
            again.failed.as_slice(),
            [(Action::CreateListener { port: 8080, .. }, _)]
        ));
    }

    #[tokio::test]
    async fn a_port_no_longer_published_is_taken_down_whole_in_one_sync() {
        let processor = processor_publishing(&[8080]);
        let balancer = FakeBalancer::at_limits();
        processor
            .sync_listeners(&balancer, Instant::now())
            .await
            .expect("synced");
        processor
            .swarm
            .publishing
            .lock()
            .expect("publishing")
            .published
            .clear();
        processor
            .sync_listeners(&balancer, Instant::now())
            .await
            .expect("synced");
        let state = balancer.state.lock().expect("state");
        assert!(state.listeners.is_empty());
        assert!(state.target_groups.is_empty());
    }
}
