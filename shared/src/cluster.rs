//! The cluster record: the one item in DynamoDB through which the nodes of a stack find their
//! swarm (its id, the managers' addresses). Written by the first manager with a conditional
//! write, read by every node that boots, by the processor and the test bed.
//!
//! The join tokens are not in it: each is a secret of its own ([`TokenStore`](crate::ports::TokenStore)),
//! so that only the managers can read the manager token, the workers only the worker token,
//! and the processor neither. A record written before that still holds both
//! ([`Swarm::legacy_tokens`]); a manager's bootstrap moves them to their secrets.
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

/// Which join token: the role a node joins as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRole {
    /// The manager token: joins a Raft member, who can schedule anything anywhere.
    Manager,
    /// The worker token.
    Worker,
}

/// The swarm's two join tokens, as the swarm gives them to a manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTokens {
    /// Joins a manager.
    pub manager: JoinToken,
    /// Joins a worker.
    pub worker: JoinToken,
}

impl JoinTokens {
    /// The token for `role`.
    pub fn of(&self, role: TokenRole) -> &JoinToken {
        match role {
            TokenRole::Manager => &self.manager,
            TokenRole::Worker => &self.worker,
        }
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
    /// The join tokens a record written by an earlier version still holds (readable by every
    /// role that reads the record); `None` once they live in their secrets only.
    pub legacy_tokens: Option<JoinTokens>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_token_never_shows_in_debug() {
        let swarm = Swarm {
            id: "abc".into(),
            managers: vec!["10.0.1.10:2377".into()],
            legacy_tokens: Some(JoinTokens {
                manager: JoinToken::new("SWMTKN-1-secret-manager"),
                worker: JoinToken::new("SWMTKN-1-secret-worker"),
            }),
        };
        let shown = format!("{:?}", ClusterRecord::Ready(swarm.clone()));
        assert!(!shown.contains("SWMTKN"), "{shown}");
        let tokens = swarm.legacy_tokens.expect("set");
        assert_eq!(
            tokens.of(TokenRole::Worker).expose(),
            "SWMTKN-1-secret-worker"
        );
    }
}
