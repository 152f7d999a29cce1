//! The request side of the AWS query protocol: a form-encoded body
//! (`Action=...&Version=2011-01-01&...`), lists as `Name.member.N`, structures in lists as
//! `Name.member.N.Field`.

use std::collections::BTreeMap;

use super::xml::ApiError;

/// The parameters of one request.
#[derive(Debug, Default)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses a form-encoded body (or query string).
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// A parameter that may be absent.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter that must be present, or the `ValidationError` AWS answers.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.optional(name).ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(name)
            ))
        })
    }

    /// An integer parameter that may be absent.
    pub fn optional_u32(&self, name: &str) -> Result<Option<u32>, ApiError> {
        self.optional(name)
            .map(|text| {
                text.parse().map_err(|_| {
                    ApiError::validation(format!(
                        "Value '{text}' at '{}' is not a valid integer",
                        lower_first(name)
                    ))
                })
            })
            .transpose()
    }

    /// A boolean parameter that may be absent.
    pub fn optional_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.optional(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::validation(format!(
                "Value '{other}' at '{}' is not a valid boolean",
                lower_first(name)
            ))),
        }
    }

    /// The list `name.member.1`, `name.member.2`, ..., in order.
    pub fn list(&self, name: &str) -> Vec<&str> {
        (1..)
            .map_while(|n| self.optional(&format!("{name}.member.{n}")))
            .collect()
    }

    /// The list of structures `name.member.N.field`, each as a map of its fields.
    pub fn structs(&self, name: &str) -> Vec<BTreeMap<&str, &str>> {
        (1..)
            .map(|n| {
                let prefix = format!("{name}.member.{n}.");
                self.0
                    .iter()
                    .filter_map(|(key, value)| {
                        key.strip_prefix(&prefix)
                            .map(|field| (field, value.as_str()))
                    })
                    .collect::<BTreeMap<_, _>>()
            })
            .take_while(|fields| !fields.is_empty())
            .collect()
    }
}

/// `HeartbeatTimeout` → `heartbeatTimeout`, as AWS names members in validation messages.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_structures_are_read_in_member_order() {
        let params = Params::parse(
            b"Action=X&AvailabilityZones.member.2=b&AvailabilityZones.member.1=a\
              &Tags.member.1.Key=k&Tags.member.1.Value=v%20w&Tags.member.2.Key=j",
        );
        assert_eq!(params.list("AvailabilityZones"), vec!["a", "b"]);
        let tags = params.structs("Tags");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].get("Value"), Some(&"v w"));
        assert_eq!(tags[1].get("Key"), Some(&"j"));
        assert!(params.list("InstanceIds").is_empty());
    }

    #[test]
    fn a_missing_required_parameter_is_a_validation_error_naming_it() {
        let error = Params::parse(b"Action=X")
            .required("InstanceId")
            .expect_err("missing");
        assert_eq!(error.code, "ValidationError");
        assert!(error.message.contains("'instanceId'"), "{}", error.message);
    }

    #[test]
    fn numbers_and_booleans_are_checked() {
        let params = Params::parse(b"A=7&B=x&C=true&D=1");
        assert_eq!(params.optional_u32("A").expect("number"), Some(7));
        assert!(params.optional_u32("B").is_err());
        assert_eq!(params.optional_bool("C").expect("bool"), Some(true));
        assert!(params.optional_bool("D").is_err());
        assert_eq!(params.optional_bool("E").expect("absent"), None);
    }
}
