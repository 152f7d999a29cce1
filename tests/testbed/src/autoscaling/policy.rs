//! Where a group launches and which instance it terminates on scale-in: the default
//! termination policy as the EC2 Auto Scaling user guide describes it ("Use different
//! termination policies", default policy), and zone balancing on launch.
//!
//! Pure functions over plain values, unit-tested here.

use chrono::{DateTime, Utc};

/// What the policy looks at in an instance that may be terminated.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The instance id.
    pub id: String,
    /// Its availability zone.
    pub zone: String,
    /// When its launch configuration was created (older goes first).
    pub configuration_created: DateTime<Utc>,
    /// How long it has run, in API seconds (for "closest to the next billing hour").
    pub uptime_secs: u64,
}

/// The zone a new instance goes to: the one of `zones` with the fewest instances now
/// (`current` lists the zone of each instance counted as capacity), the first listed on a tie.
pub fn zone_for_launch<'a>(zones: &'a [String], current: &[&str]) -> Option<&'a String> {
    zones
        .iter()
        .min_by_key(|zone| current.iter().filter(|c| **c == zone.as_str()).count())
}

/// The instance the default termination policy terminates first, among `candidates`:
/// 1. from the zone with the most of them (keeps the zones balanced);
/// 2. then the one whose launch configuration is the oldest;
/// 3. then the one closest to its next billing hour;
/// 4. then (AWS picks at random) the smallest id, so that tests can tell.
pub fn to_terminate(candidates: &[Candidate]) -> Option<&Candidate> {
    let per_zone = |zone: &str| candidates.iter().filter(|c| c.zone == zone).count();
    let most = candidates.iter().map(|c| per_zone(&c.zone)).max()?;
    // Several zones may tie for the most: any of them may lose an instance.
    candidates
        .iter()
        .filter(|c| per_zone(&c.zone) == most)
        .min_by(|a, b| {
            a.configuration_created
                .cmp(&b.configuration_created)
                .then(to_billing_hour(a).cmp(&to_billing_hour(b)))
                .then(a.id.cmp(&b.id))
        })
}

/// Seconds until the instance's next billing hour.
fn to_billing_hour(candidate: &Candidate) -> u64 {
    3600 - candidate.uptime_secs % 3600
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, hour, 0, 0)
            .single()
            .expect("valid")
    }

    fn candidate(id: &str, zone: &str, configuration_hour: u32, uptime_secs: u64) -> Candidate {
        Candidate {
            id: id.into(),
            zone: zone.into(),
            configuration_created: at(configuration_hour),
            uptime_secs,
        }
    }

    #[test]
    fn scale_in_takes_from_the_zone_with_the_most_instances_first() {
        let candidates = [
            candidate("i-a1", "a", 1, 100),
            candidate("i-b1", "b", 1, 100),
            candidate("i-b2", "b", 2, 100),
        ];
        // i-a1 has the oldest configuration too, but zone b has more instances.
        assert_eq!(
            to_terminate(&candidates).map(|c| c.id.as_str()),
            Some("i-b1")
        );
    }

    #[test]
    fn within_a_zone_the_oldest_launch_configuration_goes_first() {
        let candidates = [
            candidate("i-new", "a", 5, 3500),
            candidate("i-old", "a", 1, 10),
        ];
        assert_eq!(
            to_terminate(&candidates).map(|c| c.id.as_str()),
            Some("i-old")
        );
    }

    #[test]
    fn then_the_instance_closest_to_its_next_billing_hour_goes_first() {
        let candidates = [
            candidate("i-1", "a", 1, 600),
            candidate("i-2", "a", 1, 3590),
            candidate("i-3", "a", 1, 7100),
        ];
        assert_eq!(
            to_terminate(&candidates).map(|c| c.id.as_str()),
            Some("i-2")
        );
    }

    #[test]
    fn a_full_tie_is_broken_by_id_and_no_candidate_gives_none() {
        let candidates = [candidate("i-2", "a", 1, 5), candidate("i-1", "a", 1, 5)];
        assert_eq!(
            to_terminate(&candidates).map(|c| c.id.as_str()),
            Some("i-1")
        );
        assert!(to_terminate(&[]).is_none());
    }

    #[test]
    fn a_launch_goes_to_the_zone_with_the_fewest_instances() {
        let zones = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(
            zone_for_launch(&zones, &["a", "b", "a"]).map(String::as_str),
            Some("c")
        );
        assert_eq!(
            zone_for_launch(&zones, &["a", "c"]).map(String::as_str),
            Some("b")
        );
        assert_eq!(zone_for_launch(&zones, &[]).map(String::as_str), Some("a"));
        assert!(zone_for_launch(&[], &[]).is_none());
    }
}
