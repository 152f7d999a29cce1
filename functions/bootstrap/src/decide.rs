//! The next boot step, from the engine's state and the cluster record: pure, unit-tested.

use swarm_aws::adapters::engine::Membership;
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
    /// Give up a join stuck on one manager, so that the next attempt goes through another.
    Leave,
    /// This manager initialised the swarm but did not record it (the write failed): record it.
    Publish,
}

/// Decides the next step for the node `me`, whose engine stands at `membership`;
/// `join_failed`: this boot's last join call returned an error.
pub fn decide<'a>(
    role: Role,
    membership: Membership,
    join_failed: bool,
    record: Option<&'a ClusterRecord>,
    me: &str,
) -> Boot<'a> {
    match membership {
        Membership::Member => {
            return match record {
                Some(ClusterRecord::Initializing { owner }) if owner == me => Boot::Publish,
                _ => Boot::AlreadyMember,
            };
        }
        // Docker timed the join out and keeps trying the same manager, which may never
        // answer (gone, or an address reused). The swarm never issued the node an identity,
        // so nothing is left behind by leaving: the next join tries another manager.
        Membership::Joining { known: false } if join_failed => return Boot::Leave,
        // Under way (the swarm knows the node), or not this boot's join (a reboot mid-join).
        Membership::Joining { .. } => {
            return Boot::Wait("a join goes on in the background");
        }
        Membership::Out => {}
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

    const OUT: Membership = Membership::Out;

    fn swarm() -> ClusterRecord {
        ClusterRecord::Ready(Swarm {
            id: "s".into(),
            managers: vec!["10.0.1.10:2377".into()],
            legacy_tokens: None,
        })
    }

    #[test]
    fn a_node_already_in_the_swarm_does_nothing_whatever_the_record() {
        assert_eq!(
            decide(Role::Manager, Membership::Member, false, None, "i-1"),
            Boot::AlreadyMember
        );
        assert_eq!(
            decide(
                Role::Worker,
                Membership::Member,
                false,
                Some(&swarm()),
                "i-1"
            ),
            Boot::AlreadyMember
        );
    }

    #[test]
    fn with_no_swarm_recorded_a_manager_claims_and_a_worker_waits() {
        assert_eq!(decide(Role::Manager, OUT, false, None, "i-1"), Boot::Claim);
        assert!(matches!(
            decide(Role::Worker, OUT, false, None, "i-1"),
            Boot::Wait(_)
        ));
    }

    #[test]
    fn only_the_claims_owner_initialises_the_others_wait() {
        let claim = ClusterRecord::Initializing {
            owner: "i-1".into(),
        };
        assert_eq!(
            decide(Role::Manager, OUT, false, Some(&claim), "i-1"),
            Boot::Init
        );
        assert!(matches!(
            decide(Role::Manager, OUT, false, Some(&claim), "i-2"),
            Boot::Wait(_)
        ));
        assert!(matches!(
            decide(Role::Worker, OUT, false, Some(&claim), "i-1"),
            Boot::Wait(_)
        ));
    }

    #[test]
    fn a_recorded_swarm_is_joined_never_initialised_again() {
        let record = swarm();
        assert!(matches!(
            decide(Role::Manager, OUT, false, Some(&record), "i-9"),
            Boot::Join(_)
        ));
        assert!(matches!(
            decide(Role::Worker, OUT, false, Some(&record), "i-9"),
            Boot::Join(_)
        ));
    }

    #[test]
    fn a_join_stuck_after_a_failed_call_is_left_so_that_another_manager_is_tried() {
        let stuck = Membership::Joining { known: false };
        assert_eq!(
            decide(Role::Worker, stuck, true, Some(&swarm()), "i-9"),
            Boot::Leave
        );
    }

    #[test]
    fn a_join_the_swarm_knows_of_or_not_made_by_this_boot_is_waited_for_never_left() {
        let known = Membership::Joining { known: true };
        assert!(matches!(
            decide(Role::Manager, known, true, Some(&swarm()), "i-9"),
            Boot::Wait(_)
        ));
        let unknown = Membership::Joining { known: false };
        assert!(matches!(
            decide(Role::Manager, unknown, false, Some(&swarm()), "i-9"),
            Boot::Wait(_)
        ));
    }

    #[test]
    fn a_swarm_initialised_but_not_recorded_is_recorded_by_its_initialiser_only() {
        let claim = ClusterRecord::Initializing {
            owner: "i-1".into(),
        };
        let member = Membership::Member;
        assert_eq!(
            decide(Role::Manager, member, false, Some(&claim), "i-1"),
            Boot::Publish
        );
        assert_eq!(
            decide(Role::Manager, member, false, Some(&claim), "i-2"),
            Boot::AlreadyMember
        );
    }
}
