//! The surge before a drain, sans IO. Swarm's drain is stop-first: a task on a drained node
//! stops before its replacement starts elsewhere, and `update_config.order` does not apply to
//! drains, so a service with one replica there is down until the replacement runs. Scaled up
//! first by its tasks on the node (the node paused, so the new ones go elsewhere), it never
//! is: the node is drained once they run, and the service is given its count back.
//!
//! The surge lives in the service's labels, so that any processor, after any crash, finds it
//! and gives the count back, and two drains surging one service at once add up:
//! [`BASE_LABEL`] holds the count before the first surge, and one [`NODE_LABEL_PREFIX`]`ID`
//! label a node holds what was added for its drain.

use std::collections::HashMap;

/// A service label: `false` keeps the service out of every surge (today's drain for it).
pub const OPT_OUT_LABEL: &str = "com.docker.aws.surge";
/// The service's replica count before the surges under way.
pub const BASE_LABEL: &str = "com.docker.aws.surge.replicas";
/// Followed by a node id: the replicas added for that node's drain.
pub const NODE_LABEL_PREFIX: &str = "com.docker.aws.surge.node.";

/// What a service's labels say of the surges, as a drain of one node reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Surge {
    /// The count before the surges under way, when any is.
    pub base: Option<u64>,
    /// The replicas added for this node's drain, when it surged.
    pub for_node: Option<u64>,
    /// The replicas added for other nodes' drains.
    pub for_others: u64,
    /// Whether the service opted out ([`OPT_OUT_LABEL`] `false`).
    pub opted_out: bool,
}

/// The surges `labels` record, for a drain of `node_id`.
///
/// ```
/// use std::collections::HashMap;
/// use swarm_aws::drain::surge::read;
/// let labels = HashMap::from([
///     ("com.docker.aws.surge.replicas".to_owned(), "1".to_owned()),
///     ("com.docker.aws.surge.node.n1".to_owned(), "1".to_owned()),
///     ("com.docker.aws.surge.node.n2".to_owned(), "2".to_owned()),
/// ]);
/// let surge = read(&labels, "n1");
/// assert_eq!((surge.base, surge.for_node, surge.for_others), (Some(1), Some(1), 2));
/// ```
pub fn read(labels: &HashMap<String, String>, node_id: &str) -> Surge {
    let number = |value: &String| value.trim().parse::<u64>().ok();
    let mut surge = Surge {
        base: labels.get(BASE_LABEL).and_then(number),
        opted_out: labels
            .get(OPT_OUT_LABEL)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false")),
        ..Surge::default()
    };
    for (key, value) in labels {
        let Some(node) = key.strip_prefix(NODE_LABEL_PREFIX) else {
            continue;
        };
        let added = number(value).unwrap_or(0);
        if node == node_id {
            surge.for_node = Some(added);
        } else {
            surge.for_others += added;
        }
    }
    surge
}

/// A service's count and labels after a change of the surge's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaled {
    /// The replica count to set (the service's own when it is left as it is).
    pub replicas: u64,
    /// The labels to set.
    pub labels: HashMap<String, String>,
}

/// The service scaled up by `added` for the drain of `node_id`, from its count `replicas`
/// and `labels`; `None` when it is already surged for that node (the step ran before).
pub fn surged(
    replicas: u64,
    labels: &HashMap<String, String>,
    node_id: &str,
    added: u64,
) -> Option<Scaled> {
    let key = format!("{NODE_LABEL_PREFIX}{node_id}");
    if labels.contains_key(&key) {
        return None;
    }
    let mut labels = labels.clone();
    // The first surge records the count; another one under way already did.
    labels
        .entry(BASE_LABEL.to_owned())
        .or_insert_with(|| replicas.to_string());
    labels.insert(key, added.to_string());
    Some(Scaled {
        replicas: replicas + added,
        labels,
    })
}

/// How a surge ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// The count given back.
    Restored(Scaled),
    /// Someone changed the count meanwhile: it is left as they set it, only the surge's
    /// labels go.
    SteppedAside {
        /// The count and labels to set (the count as they set it).
        scaled: Scaled,
        /// The count the surges would have left.
        expected: u64,
    },
}

/// The service given back its count after the drain of `node_id`, from its count `replicas`
/// and `labels`; `None` when there is nothing to give back (never surged for that node, or
/// given back already).
pub fn restored(
    replicas: u64,
    labels: &HashMap<String, String>,
    node_id: &str,
) -> Option<Restored> {
    let key = format!("{NODE_LABEL_PREFIX}{node_id}");
    let surge = read(labels, node_id);
    let added = surge.for_node?;
    let mut labels = labels.clone();
    labels.remove(&key);
    if surge.for_others == 0 {
        labels.remove(BASE_LABEL);
    }
    let expected = surge.base.map(|base| base + added + surge.for_others);
    Some(match expected {
        Some(expected) if expected == replicas => Restored::Restored(Scaled {
            replicas: replicas - added,
            labels,
        }),
        expected => Restored::SteppedAside {
            scaled: Scaled { replicas, labels },
            expected: expected.map_or(replicas, |e| e.saturating_sub(added)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_surge_records_the_count_once_and_is_made_once_per_node() {
        let first = surged(1, &labels(&[("app", "web")]), "n1", 1).expect("surged");
        assert_eq!(first.replicas, 2);
        assert_eq!(first.labels[BASE_LABEL], "1");
        assert_eq!(first.labels["app"], "web");
        // Again for the same node: nothing (the step ran already).
        assert_eq!(surged(first.replicas, &first.labels, "n1", 1), None);
        // Another node's drain at the same time: added on top, the first count kept.
        let second = surged(first.replicas, &first.labels, "n2", 2).expect("surged");
        assert_eq!(second.replicas, 4);
        assert_eq!(second.labels[BASE_LABEL], "1");
    }

    #[test]
    fn two_surges_of_one_service_give_back_the_count_in_any_order() {
        let one = surged(3, &HashMap::new(), "n1", 1).expect("surged");
        let both = surged(one.replicas, &one.labels, "n2", 2).expect("surged");
        for (first, second) in [("n1", "n2"), ("n2", "n1")] {
            let Some(Restored::Restored(after_first)) =
                restored(both.replicas, &both.labels, first)
            else {
                panic!("{first} first: not restored");
            };
            assert!(
                after_first.labels.contains_key(BASE_LABEL),
                "another surge is under way"
            );
            let Some(Restored::Restored(after_both)) =
                restored(after_first.replicas, &after_first.labels, second)
            else {
                panic!("{second} second: not restored");
            };
            assert_eq!(after_both.replicas, 3, "{first} then {second}");
            assert!(after_both.labels.is_empty(), "{:?}", after_both.labels);
            // Given back already: nothing more.
            assert_eq!(
                restored(after_both.replicas, &after_both.labels, second),
                None
            );
        }
    }

    #[test]
    fn a_count_changed_by_someone_else_is_left_as_they_set_it() {
        let surged = surged(1, &HashMap::new(), "n1", 1).expect("surged");
        // The user scaled the service to 5 meanwhile.
        let Some(Restored::SteppedAside { scaled, expected }) = restored(5, &surged.labels, "n1")
        else {
            panic!("not stepped aside");
        };
        assert_eq!((scaled.replicas, expected), (5, 1));
        assert!(scaled.labels.is_empty());
    }

    #[test]
    fn the_opt_out_label_and_other_nodes_surges_are_read() {
        let read = read(
            &labels(&[
                (OPT_OUT_LABEL, "False"),
                ("com.docker.aws.surge.node.n2", "2"),
                ("com.docker.aws.surge.node.n3", "not a number"),
            ]),
            "n1",
        );
        assert!(read.opted_out);
        assert_eq!((read.for_node, read.for_others, read.base), (None, 2, None));
    }
}
