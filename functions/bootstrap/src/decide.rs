//! The next boot step, from the engine's state and the cluster record: pure, unit-tested.

use swarm_aws::cluster::{ClusterRecord, Swarm};

/// What the node is to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A swarm manager (Raft member).
    Manager,
    /// A swarm worker.
    Worker,
}

/// The next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot<'a> {
    /// Already in the swarm (a reboot, or a second run): nothing to do.
    AlreadyMember,
    /// No swarm recorded: try to be the one manager that initialises it.
    Claim,
    /// This manager holds the claim: initialise the swarm and record it.
    Init,
    /// Someone else is initialising it, or no manager has yet: wait, for this reason.
    Wait(&'static str),
    /// Join the recorded swarm.
    Join(&'a Swarm),
}

/// Decides the next step for the node `me`.
pub fn decide<'a>(
    role: Role,
    in_swarm: bool,
    record: Option<&'a ClusterRecord>,
    me: &str,
) -> Boot<'a> {
    if in_swarm {
        return Boot::AlreadyMember;
    }
    match record {
        None if role == Role::Manager => Boot::Claim,
        None => Boot::Wait("no swarm is recorded yet: waiting for the first manager"),
        // The claim is ours (a crash between the claim and the record): initialise now.
        Some(ClusterRecord::Initializing { owner }) if owner == me && role == Role::Manager => {
            Boot::Init
        }
        Some(ClusterRecord::Initializing { .. }) => {
            Boot::Wait("the first manager is initialising the swarm")
        }
        Some(ClusterRecord::Ready(swarm)) => Boot::Join(swarm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_aws::cluster::JoinToken;

    fn swarm() -> ClusterRecord {
        ClusterRecord::Ready(Swarm {
            id: "s".into(),
            managers: vec!["10.0.1.10:2377".into()],
            manager_token: JoinToken::new("m"),
            worker_token: JoinToken::new("w"),
        })
    }

    #[test]
    fn a_node_already_in_the_swarm_does_nothing_whatever_the_record() {
        assert_eq!(
            decide(Role::Manager, true, None, "i-1"),
            Boot::AlreadyMember
        );
        assert_eq!(
            decide(Role::Worker, true, Some(&swarm()), "i-1"),
            Boot::AlreadyMember
        );
    }

    #[test]
    fn with_no_swarm_recorded_a_manager_claims_and_a_worker_waits() {
        assert_eq!(decide(Role::Manager, false, None, "i-1"), Boot::Claim);
        assert!(matches!(
            decide(Role::Worker, false, None, "i-1"),
            Boot::Wait(_)
        ));
    }

    #[test]
    fn only_the_claims_owner_initialises_the_others_wait() {
        let claim = ClusterRecord::Initializing {
            owner: "i-1".into(),
        };
        assert_eq!(
            decide(Role::Manager, false, Some(&claim), "i-1"),
            Boot::Init
        );
        assert!(matches!(
            decide(Role::Manager, false, Some(&claim), "i-2"),
            Boot::Wait(_)
        ));
        assert!(matches!(
            decide(Role::Worker, false, Some(&claim), "i-1"),
            Boot::Wait(_)
        ));
    }

    #[test]
    fn a_recorded_swarm_is_joined_never_initialised_again() {
        let record = swarm();
        assert!(matches!(
            decide(Role::Manager, false, Some(&record), "i-9"),
            Boot::Join(_)
        ));
        assert!(matches!(
            decide(Role::Worker, false, Some(&record), "i-9"),
            Boot::Join(_)
        ));
    }
}
