//! The cluster record: the one item in DynamoDB through which the nodes of a stack find their
//! swarm (its id, the managers' addresses, the join tokens). Written by the first manager
//! with a conditional write, read by every node that boots, by the processor and the test bed.
//!
//! Join tokens are secrets: [`JoinToken`] never shows its value in `Debug` or `Display`.

use std::fmt;

/// The port of swarm management (Raft and joins) on the managers: recorded addresses are
/// `address:SWARM_PORT`.
pub const SWARM_PORT: u16 = 2377;

/// A swarm join token. Its value is reachable only through [`JoinToken::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken(String);

impl JoinToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the join call and the store; never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinToken(<redacted>)")
    }
}

/// Where the swarm is in its life, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRecord {
    /// A manager won the right to initialise the swarm and is doing it.
    Initializing {
        /// The instance that won.
        owner: String,
    },
    /// The swarm exists.
    Ready(Swarm),
}

/// A swarm as recorded once it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swarm {
    /// The swarm's cluster id.
    pub id: String,
    /// `address:2377` of the managers that joined, oldest first.
    pub managers: Vec<String>,
    /// Joins a manager.
    pub manager_token: JoinToken,
    /// Joins a worker.
    pub worker_token: JoinToken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_token_never_shows_in_debug() {
        let swarm = Swarm {
            id: "abc".into(),
            managers: vec!["10.0.1.10:2377".into()],
            manager_token: JoinToken::new("SWMTKN-1-secret-manager"),
            worker_token: JoinToken::new("SWMTKN-1-secret-worker"),
        };
        let shown = format!("{:?}", ClusterRecord::Ready(swarm.clone()));
        assert!(!shown.contains("SWMTKN"), "{shown}");
        assert_eq!(swarm.worker_token.expose(), "SWMTKN-1-secret-worker");
    }
}
