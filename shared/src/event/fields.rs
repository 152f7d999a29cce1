//! Typed access to the fields of a JSON object, with errors that name the field.

use super::ParseError;
use super::error::{a_json_kind, shorten};
use crate::ids::InvalidId;
use serde_json::{Map, Value};

/// A JSON object read field by field.
pub(super) struct Fields<'a>(pub(super) &'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// A string field that may be absent (or `null`, which AWS never sends for a present field
    /// but a hand-made message might).
    pub(super) fn optional_str(&self, field: &'static str) -> Result<Option<&'a str>, ParseError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ParseError::WrongType {
                field,
                reason: format!("expected a string, found {}", a_json_kind(other)),
            }),
        }
    }

    /// A string field that must be present.
    pub(super) fn required_str(&self, field: &'static str) -> Result<&'a str, ParseError> {
        self.optional_str(field)?
            .ok_or(ParseError::MissingField { field })
    }

    /// A required identifier field, validated as its newtype.
    pub(super) fn required_id<T>(&self, field: &'static str) -> Result<T, ParseError>
    where
        T: for<'s> TryFrom<&'s str, Error = InvalidId>,
    {
        T::try_from(self.required_str(field)?)
            .map_err(|source| ParseError::InvalidId { field, source })
    }

    /// The field names present, for an error about an object of unknown shape.
    pub(super) fn names(&self) -> String {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).take(12).collect();
        if names.is_empty() {
            return "an empty object".to_owned();
        }
        names.sort_unstable();
        let more = if self.0.len() > names.len() {
            ", …"
        } else {
            ""
        };
        format!("fields {}{more}", shorten(&names.join(", ")))
    }
}
