//! Query strings: parsed strictly, so a misspelt or repeated parameter is an error rather
//! than silently ignored.

use std::collections::BTreeMap;

use crate::error::ApiError;

/// The parameters of one request, each given at most once and each one known to the route.
#[derive(Debug, Default)]
pub struct QueryParams(BTreeMap<String, String>);

impl QueryParams {
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut params = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                let expected = if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                };
                return Err(ApiError::invalid_param(
                    name.as_ref(),
                    format!("Unknown query parameter {name:?}; this route accepts: {expected}."),
                ));
            }
            if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(ApiError::invalid_param(
                    name.as_ref(),
                    format!("Query parameter {name:?} is given more than once."),
                ));
            }
        }
        Ok(Self(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_parameters_are_decoded() {
        let q = QueryParams::parse(
            Some("limit=5&external_id=crm%207741"),
            &["limit", "external_id"],
        )
        .unwrap();
        assert_eq!(q.get("limit"), Some("5"));
        assert_eq!(q.get("external_id"), Some("crm 7741"));
        assert_eq!(q.get("cursor"), None);
        assert!(QueryParams::parse(None, &[]).is_ok());
    }

    #[test]
    fn unknown_and_repeated_parameters_name_the_parameter() {
        let err = QueryParams::parse(Some("limt=5"), &["limit"]).unwrap_err();
        assert_eq!(err.param(), Some("limt"));
        let err = QueryParams::parse(Some("limit=5&limit=6"), &["limit"]).unwrap_err();
        assert_eq!(err.param(), Some("limit"));
        assert_eq!(err.code(), "invalid_request");
    }
}
