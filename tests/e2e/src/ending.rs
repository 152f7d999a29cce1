//! How a scenario's run ended, measured one way for every scenario that loses or changes
//! managers under load (`hard-failures`, `manager-count`): the quorum over the whole run, the
//! membership at the end, the requests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::load::{Load, Sample};
use crate::manager_count::{in_service, raft};
use crate::rolling::{GROUPS, Watched, final_swarm, quorum_losses, seconds_since};

/// The longest a swarm may go without a leader and still count as having kept its quorum: a
/// lost leader is followed by an election of a few seconds; a lost quorum never ends.
pub const ELECTION: Duration = Duration::from_secs(20);

/// The figures every such run ends with.
#[derive(Debug, Clone, Serialize)]
pub struct Ending {
    /// Whether the quorum held: at every sample (every 250 ms) in which a manager answered, a
    /// majority of the managers was reachable, and no stretch without any answer (no leader)
    /// lasted as long as [`ELECTION`].
    pub quorum_kept: bool,
    /// The longest stretch of samples in which no manager answered (no leader), in seconds.
    pub longest_without_leader_seconds: f64,
    /// The most Raft members seen unreachable at once: a manager gone without being demoted
    /// and removed first stays in Raft as a dead member.
    pub max_unreachable_members: usize,
    /// The longest stretch in which some Raft member was unreachable, in seconds: a dead
    /// member stays so for good; a leader handing over (a demoted leader) for moments.
    pub longest_unreachable_seconds: f64,
    /// Raft members at the end (`None`: no manager answers).
    pub raft_members_end: Option<usize>,
    /// Instances in service in the managers' group at the end.
    pub managers_in_service_end: usize,
    /// Nodes left in `docker node ls` at the end that are not Ready (`None`: no manager
    /// answers).
    pub down_nodes_left: Option<usize>,
    /// Requests sent.
    pub requests_total: usize,
    /// Requests failed or timed out.
    pub requests_failed: usize,
    /// The fewest replicas of the service running at any sample.
    pub min_running_replicas: usize,
}

impl Ending {
    /// Stops the load and the watcher, lets the swarm settle, and measures. Returns the
    /// figures, what went wrong with the quorum and when (seconds from `started_at`), and
    /// every request.
    pub(crate) async fn measure(
        load: Load,
        watching: tokio::task::JoinHandle<()>,
        watched: &Arc<Mutex<Watched>>,
        started_at: DateTime<Utc>,
    ) -> Result<(Self, Vec<(f64, String)>, Vec<Sample>)> {
        // A little more load after the last step, for the tail of the timeline.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let samples = load.stop().await;
        watching.abort();
        let watches = watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .watches
            .clone();
        let (events, longest) = quorum_losses(&watches, started_at, ELECTION);
        let (down_nodes_left, _, _) = final_swarm().await;
        // The longest stretch of samples (where a manager answered) with a member unreachable.
        let (mut longest_unreachable, mut since) = (0.0_f64, None);
        for w in watches.iter().filter(|w| w.running.is_some()) {
            match (w.unreachable > 0, since) {
                (true, None) => since = Some(w.at),
                (true, Some(first)) => {
                    longest_unreachable = longest_unreachable.max(seconds_since(first, w.at));
                }
                (false, _) => since = None,
            }
        }
        let ending = Self {
            quorum_kept: events.is_empty(),
            longest_without_leader_seconds: longest,
            max_unreachable_members: watches.iter().map(|w| w.unreachable).max().unwrap_or(0),
            longest_unreachable_seconds: longest_unreachable,
            raft_members_end: raft().await.map(|r| r.0),
            managers_in_service_end: in_service(&testbed::autoscaling::state()?, GROUPS[0]),
            down_nodes_left,
            requests_total: samples.len(),
            requests_failed: samples.iter().filter(|s| s.error.is_some()).count(),
            min_running_replicas: watches.iter().filter_map(|w| w.running).min().unwrap_or(0),
        };
        Ok((ending, events, samples))
    }

    /// The summary's lines: what went wrong (`events`), the quorum, the membership at the end,
    /// the requests.
    pub fn summary(&self, events: &[(f64, String)]) -> Vec<(&'static str, String)> {
        let yes = crate::demo::yes;
        let or_none = crate::demo::or_none;
        vec![
            (
                "what went wrong",
                if events.is_empty() {
                    "nothing".to_owned()
                } else {
                    events
                        .iter()
                        .map(|(at, what)| format!("{at:.0}s {what}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                },
            ),
            ("managers kept quorum", yes(self.quorum_kept).to_owned()),
            (
                "longest without a leader",
                format!("{:.1} s", self.longest_without_leader_seconds),
            ),
            (
                "most Raft members unreachable",
                format!(
                    "{} (longest {:.1} s)",
                    self.max_unreachable_members, self.longest_unreachable_seconds
                ),
            ),
            ("Raft members at the end", or_none(self.raft_members_end)),
            (
                "managers in service at the end",
                self.managers_in_service_end.to_string(),
            ),
            ("nodes left not Ready", or_none(self.down_nodes_left)),
            ("requests sent", self.requests_total.to_string()),
            ("requests failed", self.requests_failed.to_string()),
            (
                "fewest replicas running",
                if self.longest_without_leader_seconds > 0.0 {
                    format!(
                        "{} of 3 while a manager could tell",
                        self.min_running_replicas
                    )
                } else {
                    format!("{} of 3", self.min_running_replicas)
                },
            ),
        ]
    }

    /// Whether the membership came through whole: the quorum kept, no node left not Ready,
    /// and as many Raft members as managers in service.
    pub fn whole(&self) -> bool {
        self.quorum_kept
            && self.down_nodes_left == Some(0)
            && self.raft_members_end == Some(self.managers_in_service_end)
    }
}
