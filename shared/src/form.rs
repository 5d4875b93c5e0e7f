//! `application/x-www-form-urlencoded` bodies (what Zapier's webhook step sends by default),
//! read strictly into the JSON object the same request would send, so a form write has the
//! JSON write's names, validation, errors and idempotency fingerprint.
//!
//! - `name=value` is the string `"value"`; an empty value is `null` (a form has no other way
//!   to send one), so `email=` clears an optional field as `"email": null` does.
//! - `name[key]=value` is `"name": {"key": "value"}` (`metadata[source]=crm`).
//! - `name[]=value`, repeated, is `"name": ["value", …]` (`categories[]=PEP`).
//! - `+` is a space; `%XX` a byte; the decoded bytes must be UTF-8.
//!
//! A name given twice, a malformed `%` escape, bytes that are not UTF-8, or a name that is
//! not one of those shapes is a 400 naming the field; nothing is guessed.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The JSON object a form body stands for.
pub fn parse_form(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut object = Map::new();
    for pair in bytes.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (raw_name, raw_value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode(raw_name)
            .map_err(|why| ApiError::invalid_param("body", format!("A form field name {why}.")))?;
        let value = decode(raw_value)
            .map_err(|why| ApiError::invalid_param(&name, format!("The value of {name} {why}.")))?;
        insert(&mut object, &name, value)?;
    }
    Ok(object)
}

fn insert(object: &mut Map<String, Value>, name: &str, value: String) -> Result<(), ApiError> {
    let twice = |param: &str| {
        ApiError::invalid_param(
            param,
            format!("{param} is given more than once; send it once."),
        )
    };
    let bad_name = || {
        ApiError::invalid_param(
            if name.is_empty() { "body" } else { name },
            format!("{name:?} is not a form field name: use name=value, name[key]=value or name[]=value."),
        )
    };
    let Some(open) = name.find('[') else {
        if name.is_empty() || name.contains(']') {
            return Err(bad_name());
        }
        if object.contains_key(name) {
            return Err(twice(name));
        }
        let value = if value.is_empty() {
            Value::Null
        } else {
            Value::String(value)
        };
        object.insert(name.to_owned(), value);
        return Ok(());
    };
    let (base, rest) = name.split_at(open);
    let Some(key) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return Err(bad_name());
    };
    if base.is_empty() || key.contains(['[', ']']) {
        return Err(bad_name());
    }
    if key.is_empty() {
        // name[]=value: one more item of a list.
        match object
            .entry(base.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => items.push(Value::String(value)),
            _ => return Err(twice(base)),
        }
        return Ok(());
    }
    match object
        .entry(base.to_owned())
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(entries) => {
            if entries.contains_key(key) {
                return Err(twice(name));
            }
            entries.insert(key.to_owned(), Value::String(value));
            Ok(())
        }
        _ => Err(twice(base)),
    }
}

/// A form value: `+` is a space (a `%2B` stays a plus), then [`percent_decode`].
fn decode(raw: &[u8]) -> Result<String, &'static str> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced)
}

/// Percent-decoding, strictly: `%XX` two hex digits (no sign, no short form), the result
/// UTF-8. A `+` is itself; forms turn it into a space first.
pub fn percent_decode(raw: &[u8]) -> Result<String, &'static str> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .filter(|_| raw[i + 1].is_ascii_hexdigit() && raw[i + 2].is_ascii_hexdigit())
                    .ok_or("has a % that is not followed by two hex digits")?;
                out.push(hex);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once decoded")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(text: &[u8]) -> Value {
        Value::Object(parse_form(text).unwrap())
    }

    fn param_of(text: &[u8]) -> String {
        let err = parse_form(text).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
        err.param().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_form_reads_as_the_json_object_it_stands_for() {
        assert_eq!(
            form(b"externalId=crm-7741&fullName=Jane+Doe&email=jane%40example.com"),
            json!({"externalId": "crm-7741", "fullName": "Jane Doe", "email": "jane@example.com"})
        );
        assert_eq!(
            form(b"metadata[source]=crm&metadata[tier]=gold&phone="),
            json!({"metadata": {"source": "crm", "tier": "gold"}, "phone": null})
        );
        assert_eq!(
            form(b"status=POTENTIAL_MATCH&categories[]=PEP&categories[]=SANCTIONS"),
            json!({"status": "POTENTIAL_MATCH", "categories": ["PEP", "SANCTIONS"]})
        );
        // UTF-8 through escapes; empty pairs and a bare name (= empty value) are fine.
        assert_eq!(
            form(b"fullName=J%C3%BCrgen&&metadata%5Bnote%5D=a%2Bb&email"),
            json!({"fullName": "Jürgen", "metadata": {"note": "a+b"}, "email": null})
        );
        assert_eq!(form(b""), json!({}));
    }

    #[test]
    fn what_a_form_cannot_say_is_refused_naming_the_field() {
        assert_eq!(param_of(b"email=a&email=b"), "email");
        assert_eq!(param_of(b"metadata[a]=1&metadata[a]=2"), "metadata[a]");
        assert_eq!(param_of(b"metadata=x&metadata[a]=1"), "metadata");
        assert_eq!(param_of(b"metadata[a]=1&metadata=x"), "metadata");
        assert_eq!(param_of(b"fullName=100%"), "fullName");
        assert_eq!(param_of(b"fullName=%zz"), "fullName");
        assert_eq!(param_of(b"fullName=%4"), "fullName");
        assert_eq!(param_of(b"fullName=%C3%28"), "fullName");
        assert_eq!(param_of(b"fullName=\xff"), "fullName");
        assert_eq!(param_of(b"full%zzName=x"), "body");
        for bad in [&b"a[b][c]=1"[..], b"a]=1", b"[a]=1", b"a[b=1", b"=x"] {
            assert!(
                parse_form(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
