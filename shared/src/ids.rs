//! Newtypes for the identifiers that cross the system: EC2 instance ids, Auto Scaling group
//! names, lifecycle hook names and lifecycle action tokens.
//!
//! Each is validated once, where it enters (the event parser, the configuration), against the
//! constraints the AWS API reference gives, so the rest of the code never re-checks a string
//! and never mixes one kind of id up with another.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid identifier of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} `{shown}` is invalid: {reason}")]
pub struct InvalidId {
    /// Which kind of identifier was expected (`instance id`, `hook name`, ...).
    pub kind: &'static str,
    /// The offending value, cut to 80 characters so a huge field cannot flood a log line.
    pub shown: String,
    /// What rule it breaks.
    pub reason: &'static str,
}

impl InvalidId {
    fn new(kind: &'static str, value: &str, reason: &'static str) -> Self {
        Self {
            kind,
            shown: crate::text::shorten(value),
            reason,
        }
    }
}

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The identifier as AWS spells it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                let check: fn(&str) -> Result<(), &'static str> = $check;
                match check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(reason) => Err(InvalidId::new($kind, &value, reason)),
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidId;
            fn try_from(value: &str) -> Result<Self, InvalidId> {
                Self::try_from(value.to_owned())
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(value: &str) -> Result<Self, InvalidId> {
                Self::try_from(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_newtype!(
    /// An EC2 instance id: `i-` and 8 or 17 lowercase hexadecimal digits.
    InstanceId,
    "instance id",
    |s| {
        let hex = s.strip_prefix("i-").ok_or("must start with `i-`")?;
        if hex.len() != 8 && hex.len() != 17 {
            return Err("must have 8 or 17 hexadecimal digits after `i-`");
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err("must be lowercase hexadecimal after `i-`");
        }
        Ok(())
    }
);

id_newtype!(
    /// An Auto Scaling group name: 1 to 255 characters, no control characters.
    GroupName,
    "group name",
    |s| bounded_printable(s, 255)
);

id_newtype!(
    /// A lifecycle hook name: 1 to 255 of `A-Z a-z 0-9 - _ /`.
    HookName,
    "hook name",
    |s| {
        bounded_printable(s, 255)?;
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/'))
        {
            return Err("may only hold letters, digits, `-`, `_` and `/`");
        }
        Ok(())
    }
);

id_newtype!(
    /// A lifecycle action token: the 36-character UUID Auto Scaling hands out per action.
    ActionToken,
    "lifecycle action token",
    |s| {
        if s.len() != 36 {
            return Err("must be 36 characters long");
        }
        if !s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err("may only hold hexadecimal digits and `-`");
        }
        Ok(())
    }
);

fn bounded_printable(s: &str, max: usize) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.chars().count() > max {
        return Err("is longer than the AWS limit");
    }
    if s.chars().any(char::is_control) {
        return Err("must not hold control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_of_both_lengths_are_accepted() {
        assert!(InstanceId::try_from("i-0598c7d356eba48d7").is_ok());
        assert!(InstanceId::try_from("i-0598c7d3").is_ok());
    }

    #[test]
    fn malformed_instance_ids_are_refused_with_the_rule_they_break() {
        for (bad, why) in [
            ("", "must start with `i-`"),
            ("0598c7d356eba48d7", "must start with `i-`"),
            (
                "i-0598c7d356eba48d",
                "must have 8 or 17 hexadecimal digits after `i-`",
            ),
            (
                "i-0598C7D356EBA48D7",
                "must be lowercase hexadecimal after `i-`",
            ),
            ("i-zzzzzzzz", "must be lowercase hexadecimal after `i-`"),
        ] {
            let err = InstanceId::try_from(bad).expect_err(bad);
            assert_eq!(err.reason, why, "{bad}");
        }
    }

    #[test]
    fn hook_names_allow_only_the_documented_characters() {
        assert!(HookName::try_from("swarm-worker_drain/v2").is_ok());
        assert!(HookName::try_from("with space").is_err());
        assert!(HookName::try_from("").is_err());
        assert!(HookName::try_from("x".repeat(256)).is_err());
    }

    #[test]
    fn group_names_refuse_control_characters_and_overlong_names() {
        assert!(GroupName::try_from("docker-swarm-WorkerAsg-1ABCDEF2GHIJK").is_ok());
        assert!(GroupName::try_from("a\nb").is_err());
        assert!(GroupName::try_from("g".repeat(256)).is_err());
        assert!(GroupName::try_from("g".repeat(255)).is_ok());
    }

    #[test]
    fn tokens_are_36_character_uuids() {
        assert!(ActionToken::try_from("c613620e-07e2-4ed2-a9e2-ef8258911ade").is_ok());
        assert!(ActionToken::try_from("c613620e").is_err());
        assert!(ActionToken::try_from("c613620e-07e2-4ed2-a9e2-ef825891zzzz").is_err());
    }

    #[test]
    fn an_invalid_id_shows_at_most_80_characters_of_the_value() {
        let err = GroupName::try_from("g".repeat(1000)).expect_err("too long");
        assert!(err.shown.chars().count() <= 81);
        assert!(err.to_string().contains("group name"));
    }

    #[test]
    fn ids_round_trip_through_serde_and_refuse_bad_values() {
        let id: InstanceId = serde_json::from_str("\"i-0598c7d356eba48d7\"").expect("valid");
        assert_eq!(
            serde_json::to_string(&id).expect("ser"),
            "\"i-0598c7d356eba48d7\""
        );
        assert!(serde_json::from_str::<InstanceId>("\"nope\"").is_err());
    }
}
