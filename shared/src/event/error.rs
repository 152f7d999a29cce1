//! Why a message body is not a lifecycle message we understand.

use crate::ids::InvalidId;
pub(crate) use crate::text::shorten;

/// Why a message body was rejected. Each variant says what is wrong in words an operator
/// reading the log can act on; the caller logs it together with the body.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The body is empty or only whitespace.
    #[error("message body is empty")]
    Empty,
    /// Larger than SQS allows: it did not come from SQS.
    #[error("message body is {size} bytes, over the SQS limit of {limit} bytes")]
    TooLarge {
        /// The body's size in bytes.
        size: usize,
        /// [`super::MAX_BODY_BYTES`].
        limit: usize,
    },
    /// Not UTF-8 text.
    #[error("message body is not UTF-8 text")]
    NotUtf8 {
        /// Where the decoding failed.
        #[source]
        source: std::str::Utf8Error,
    },
    /// Text, but not JSON.
    #[error("message body is not JSON")]
    NotJson {
        /// The JSON parser's complaint, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but not an object.
    #[error("message body is a JSON {found}, not an object")]
    NotAnObject {
        /// The JSON kind found (`array`, `string`, ...).
        found: &'static str,
    },
    /// A JSON object that is none of the known notifications.
    #[error("message is not an Auto Scaling lifecycle notification: {reason}")]
    UnknownShape {
        /// What was expected and what was found.
        reason: String,
    },
    /// SNS's envelope whose `Message` string is not JSON.
    #[error("the SNS notification's `Message` is not JSON")]
    SnsMessageNotJson {
        /// The JSON parser's complaint, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// SNS's envelope whose `Message` is not a lifecycle notification; the source says why.
    #[error("the SNS notification's `Message` is not a lifecycle notification")]
    InSnsMessage {
        /// What is wrong with the `Message` (boxed: the error is recursive).
        #[source]
        source: Box<ParseError>,
    },
    /// An EventBridge event of a source or type the processor does not handle.
    #[error("unsupported EventBridge event `{detail_type}` from `{source_name}`")]
    UnsupportedEvent {
        /// The event's `source`.
        source_name: String,
        /// The event's `detail-type`.
        detail_type: String,
    },
    /// A lifecycle transition other than launching or terminating.
    #[error("unknown lifecycle transition `{0}`")]
    UnknownTransition(String),
    /// A required field is absent.
    #[error("required field `{field}` is missing")]
    MissingField {
        /// The field as AWS names it.
        field: &'static str,
    },
    /// A field is present with the wrong JSON type.
    #[error("field `{field}` has the wrong type: {reason}")]
    WrongType {
        /// The field as AWS names it.
        field: &'static str,
        /// What was expected and found.
        reason: String,
    },
    /// A field's value breaks its rule (a malformed time, for example).
    #[error("field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The field as AWS names it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An identifier field breaks the AWS constraints for its kind.
    #[error("field `{field}` is invalid")]
    InvalidId {
        /// The field as AWS names it.
        field: &'static str,
        /// The rule it breaks.
        #[source]
        source: InvalidId,
    },
}

/// The JSON kind of a value, for error messages.
pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// The JSON kind of a value with its article (`an object`, `a string`), for "found ..." in
/// error messages.
pub(crate) fn a_json_kind(value: &serde_json::Value) -> String {
    let kind = json_kind(value);
    let article = if kind.starts_with(['a', 'o']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}
