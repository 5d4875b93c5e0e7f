//! Strict JSON request bodies: a JSON object that names a field twice is refused.
//!
//! `serde_json::from_slice` keeps the last of two equal keys without a word, so
//! `{"email": "a@x.com", "email": "b@x.com"}` would silently mean the second address.
//! [`parse_strict`] parses exactly as `serde_json::from_slice::<Value>` does (same grammar,
//! same `Number` semantics, same recursion limit, trailing characters refused, key order
//! kept by the `preserve_order` map) but refuses any object, at any depth, that repeats a
//! key, naming the key's path in `param`.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// Parses a JSON document, refusing any object that names a key more than once.
///
/// - Invalid JSON (including trailing characters, and nesting deeper than serde_json's
///   recursion limit of 128) → `invalid_request` without a param, with the same message
///   as a plain `serde_json::from_slice` failure.
/// - A repeated key → `invalid_request` whose `param` is the key's dotted path from the
///   root: `email` at top level, `metadata.tier` inside `metadata`; array elements are
///   named by their index (`items.0.sku`).
pub fn parse_strict(bytes: &[u8]) -> Result<Value, ApiError> {
    let duplicate = Cell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = ValueSeed {
        path: Path::Root,
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    // A duplicate aborts the parse through a custom serde error; the side channel holds
    // the error the client should see.
    if let Some(err) = duplicate.take() {
        return Err(err);
    }
    parsed.map_err(|e| ApiError::invalid(format!("The body is not valid JSON: {e}.")))
}

/// Where a value sits in the document; formatted only when a duplicate is found.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (parent, segment): (&Path<'_>, &dyn fmt::Display) = match self {
            Path::Root => return Ok(()),
            Path::Key(parent, key) => (parent, key),
            Path::Index(parent, index) => (parent, index),
        };
        if matches!(parent, Path::Root) {
            write!(f, "{segment}")
        } else {
            write!(f, "{parent}.{segment}")
        }
    }
}

/// Builds a `serde_json::Value` like serde_json's own visitor, checking objects for
/// repeated keys.
struct ValueSeed<'a> {
    path: Path<'a>,
    duplicate: &'a Cell<Option<ApiError>>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        // serde_json's `deserialize_any` enforces the recursion limit on `[` and `{`.
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = ValueSeed {
                path: Path::Index(&self.path, items.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let param = Path::Key(&self.path, &key).to_string();
                self.duplicate.set(Some(ApiError::invalid_param(
                    param,
                    format!("The body names {key} more than once; send each field once."),
                )));
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(ValueSeed {
                path: Path::Key(&self.path, &key),
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(text: &str) -> ApiError {
        parse_strict(text.as_bytes()).unwrap_err()
    }

    fn message(err: &ApiError) -> String {
        err.to_string()
    }

    #[test]
    fn parses_like_serde_json() {
        for text in [
            r#"{"fullName": "Jane", "metadata": {"tier": "gold"}, "n": [1, -2, 3.5, 1e300, -0.0, null, true]}"#,
            r#"[]"#,
            r#"{}"#,
            r#" "text" "#,
            "18446744073709551615",
            "-9223372036854775808",
            "0.1",
            "123456789012345678901234567890",
            r#"{"a": {"b": [{"c": 1}, {"c": 2}]}}"#,
            r#""\u00e9\ud83d\ude00""#,
        ] {
            let expected: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse_strict(text.as_bytes()).unwrap(), expected, "{text}");
        }
        // Numbers keep serde_json's semantics: kinds (u64, i64, f64) as serde_json gives them,
        // and an out-of-range float is refused just as serde_json refuses it.
        let value = parse_strict(b"[1, -1, 1.0, 18446744073709551616]").unwrap();
        assert!(value[0].is_u64() && value[1].is_i64() && value[2].is_f64() && value[3].is_f64());
        let expected = serde_json::from_str::<Value>("1e400").unwrap_err();
        assert_eq!(
            err("1e400").to_string(),
            format!("The body is not valid JSON: {expected}.")
        );
    }

    #[test]
    fn key_order_is_kept() {
        let value = parse_strict(br#"{"z": 1, "a": {"y": 2, "b": 3}, "m": 4}"#).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["z", "a", "m"]);
        let inner: Vec<&str> = value["a"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(inner, ["y", "b"]);
    }

    #[test]
    fn duplicate_at_top_level_names_the_key() {
        let e = err(r#"{"email": "a@x.com", "fullName": "Jane", "email": "b@x.com"}"#);
        assert_eq!(e.code(), "invalid_request");
        assert_eq!(e.param(), Some("email"));
        assert_eq!(
            message(&e),
            "The body names email more than once; send each field once."
        );
        // Equal values are still a repeat.
        assert_eq!(err(r#"{"a": 1, "a": 1}"#).param(), Some("a"));
        // Even when the first value is null.
        assert_eq!(err(r#"{"a": null, "a": 1}"#).param(), Some("a"));
    }

    #[test]
    fn nested_duplicate_names_the_dotted_path() {
        let e = err(r#"{"metadata": {"tier": "gold", "tier": "silver"}}"#);
        assert_eq!(e.param(), Some("metadata.tier"));
        assert_eq!(
            message(&e),
            "The body names tier more than once; send each field once."
        );
        assert_eq!(
            err(r#"{"a": {"b": {"c": 1, "c": 2}}}"#).param(),
            Some("a.b.c")
        );
        assert_eq!(
            err(r#"{"items": [{"sku": 1}, {"sku": 2, "sku": 3}]}"#).param(),
            Some("items.1.sku")
        );
        assert_eq!(err(r#"[{"x": 1, "x": 2}]"#).param(), Some("0.x"));
    }

    #[test]
    fn the_same_key_in_different_objects_is_fine() {
        let value = parse_strict(br#"{"a": {"k": 1}, "b": {"k": 2}, "k": 3}"#).unwrap();
        assert_eq!(value, json!({"a": {"k": 1}, "b": {"k": 2}, "k": 3}));
    }

    #[test]
    fn keys_are_compared_after_unescaping() {
        // "\u0061" is "a": the same field, spelled differently on the wire.
        assert_eq!(err(r#"{"a": 1, "\u0061": 2}"#).param(), Some("a"));
        // Case matters: these are different keys.
        assert!(parse_strict(br#"{"a": 1, "A": 2}"#).is_ok());
    }

    #[test]
    fn invalid_json_has_the_usual_message_and_no_param() {
        let expected = serde_json::from_str::<Value>("{\"a\": }").unwrap_err();
        let e = err("{\"a\": }");
        assert_eq!(e.param(), None);
        assert_eq!(
            message(&e),
            format!("The body is not valid JSON: {expected}.")
        );
        for bad in ["", "{", "{\"a\" 1}", "[1,]", "{'a': 1}", "nul", "\"\\x\""] {
            let e = err(bad);
            assert_eq!(e.code(), "invalid_request", "{bad}");
            assert_eq!(e.param(), None, "{bad}");
            assert!(
                message(&e).starts_with("The body is not valid JSON: "),
                "{bad}"
            );
        }
    }

    #[test]
    fn trailing_characters_are_refused() {
        for bad in [r#"{"a": 1} x"#, r#"{"a": 1}{"b": 2}"#, "1 2", "{} ,"] {
            let e = err(bad);
            assert_eq!(e.param(), None, "{bad}");
            assert!(message(&e).contains("trailing characters"), "{bad}: {e}");
        }
        // Trailing whitespace is fine.
        assert!(parse_strict(b"{\"a\": 1} \r\n\t ").is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_without_crashing() {
        for text in ["[".repeat(10_000), "{\"a\":".repeat(10_000)] {
            let e = err(&text);
            assert_eq!(e.param(), None);
            assert!(message(&e).contains("recursion limit"), "{e}");
        }
        // Closed deep nesting is refused too; shallow nesting is fine.
        let closed = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(message(&err(&closed)).contains("recursion limit"));
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse_strict(fine.as_bytes()).is_ok());
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let e = parse_strict(b"{\"a\": \"\xff\"}").unwrap_err();
        assert_eq!(e.param(), None);
        assert!(message(&e).starts_with("The body is not valid JSON: "));
    }
}
