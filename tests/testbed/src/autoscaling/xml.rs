//! The response side of the AWS query protocol: `<ActionResponse>` with its `<ActionResult>`
//! and `<ResponseMetadata>`, lists as `<member>` elements, and errors as `<ErrorResponse>`
//! with HTTP 400, the shapes `aws-sdk-autoscaling` and the `aws` CLI parse.

use std::fmt::{Display, Write};

/// The namespace of every Auto Scaling response.
const NAMESPACE: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

/// An error the API answers, as AWS would: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// `ValidationError`, `AlreadyExists`, `ResourceInUse`, `InvalidAction`, ...
    pub code: &'static str,
    /// The message, worded as AWS words it where the documentation or users' reports say.
    pub message: String,
    /// The HTTP status (400 for the caller's errors).
    pub status: u16,
}

impl ApiError {
    /// A `ValidationError`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationError", message)
    }

    /// Any client error.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: 400,
        }
    }

    /// The `<ErrorResponse>` document.
    pub fn to_xml(&self, request_id: &str) -> String {
        let mut xml = Xml::default();
        xml.raw(&format!("<ErrorResponse xmlns=\"{NAMESPACE}\">"));
        xml.open("Error");
        xml.el("Type", "Sender");
        xml.el("Code", self.code);
        xml.el("Message", &self.message);
        xml.close("Error");
        xml.el("RequestId", request_id);
        xml.close("ErrorResponse");
        xml.0
    }
}

/// A small XML writer: elements with escaped text, nothing more is needed.
#[derive(Debug, Default)]
pub struct Xml(String);

impl Xml {
    /// `<name>`.
    pub fn open(&mut self, name: &str) {
        let _ = write!(self.0, "<{name}>");
    }

    /// `</name>`.
    pub fn close(&mut self, name: &str) {
        let _ = write!(self.0, "</{name}>");
    }

    /// `<name>value</name>`, the value escaped.
    pub fn el(&mut self, name: &str, value: impl Display) {
        let _ = write!(self.0, "<{name}>{}</{name}>", escape(&value.to_string()));
    }

    /// `<name>value</name>` when there is a value.
    pub fn opt(&mut self, name: &str, value: Option<impl Display>) {
        if let Some(value) = value {
            self.el(name, value);
        }
    }

    /// `<name><member>...</member>...</name>`, each member written by `write`.
    pub fn list<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut write: impl FnMut(&mut Self, T),
    ) {
        self.open(name);
        for item in items {
            self.open("member");
            write(self, item);
            self.close("member");
        }
        self.close(name);
    }

    /// `<name><member>text</member>...</name>`: a list of strings.
    pub fn strings<T: Display>(&mut self, name: &str, items: impl IntoIterator<Item = T>) {
        self.open(name);
        for item in items {
            self.el("member", item);
        }
        self.close(name);
    }

    fn raw(&mut self, text: &str) {
        self.0.push_str(text);
    }

    /// The whole `<ActionResponse>` document around the result written so far.
    pub fn into_response(self, action: &str, request_id: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NAMESPACE}\"><{action}Result>{}</{action}Result><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>",
            self.0
        )
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_lists_are_members() {
        let mut xml = Xml::default();
        xml.el("NotificationMetadata", r#"{"a":"<b>&"}"#);
        xml.strings("AvailabilityZones", ["a", "b"]);
        let doc = xml.into_response("DescribeLifecycleHooks", "r-1");
        assert!(doc.contains("<NotificationMetadata>{&quot;a&quot;:&quot;&lt;b&gt;&amp;&quot;}</NotificationMetadata>"));
        assert!(doc.contains(
            "<AvailabilityZones><member>a</member><member>b</member></AvailabilityZones>"
        ));
        assert!(doc.contains("<DescribeLifecycleHooksResult>"));
        assert!(doc.ends_with("</DescribeLifecycleHooksResponse>"));
    }

    #[test]
    fn an_error_is_an_error_response_with_code_and_message() {
        let doc =
            ApiError::validation("No active Lifecycle Action found with token t").to_xml("r-2");
        assert!(doc.starts_with("<ErrorResponse"));
        assert!(doc.contains("<Code>ValidationError</Code><Message>No active Lifecycle Action found with token t</Message>"));
    }
}
