//! Customer request bodies, parsed strictly at the boundary: camelCase or snake_case names,
//! no unknown or read-only fields, no field given twice, every value validated. Past this
//! module a customer field cannot hold a bad value.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::customers::model::CustomerType;
use crate::error::ApiError;

pub const MAX_FULL_NAME_CHARS: usize = 200;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_EXTERNAL_ID_CHARS: usize = 128;
pub const MAX_PHONE_CHARS: usize = 32;
pub const MAX_METADATA_PAIRS: usize = 20;
pub const MAX_METADATA_KEY_CHARS: usize = 40;
pub const MAX_METADATA_VALUE_CHARS: usize = 500;

/// Writable fields: (canonical snake_case name, camelCase alias).
const WRITABLE: &[(&str, &str)] = &[
    ("external_id", "externalId"),
    ("type", "type"),
    ("full_name", "fullName"),
    ("email", "email"),
    ("phone", "phone"),
    ("date_of_birth", "dateOfBirth"),
    ("country", "country"),
    ("metadata", "metadata"),
];

/// Fields the server owns: sending one is a mistake worth naming.
const READ_ONLY: &[(&str, &str)] = &[
    ("id", "id"),
    ("object", "object"),
    ("kyc_status", "kycStatus"),
    ("aml", "aml"),
    ("added_via", "addedVia"),
    ("created_at", "createdAt"),
    ("updated_at", "updatedAt"),
];

/// A field of a write: not sent, sent as `null` (clear it), or sent with a value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Field<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Field<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Field::Absent)
    }
}

/// A validated create, upsert or patch body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerInput {
    pub external_id: Field<String>,
    pub customer_type: Field<CustomerType>,
    pub full_name: Field<String>,
    pub email: Field<String>,
    pub phone: Field<String>,
    pub date_of_birth: Field<String>,
    pub country: Field<String>,
    pub metadata: Field<BTreeMap<String, String>>,
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_param(param, message)
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

fn string<'a>(param: &str, value: &'a Value) -> Result<&'a str, ApiError> {
    value
        .as_str()
        .ok_or_else(|| invalid(param, format!("{param} must be a string.")))
}

pub fn parse_full_name(value: &Value) -> Result<String, ApiError> {
    let name = string("full_name", value)?.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_FULL_NAME_CHARS {
        return Err(invalid(
            "full_name",
            format!("full_name must be 1-{MAX_FULL_NAME_CHARS} characters after trimming."),
        ));
    }
    if has_control(name) {
        return Err(invalid(
            "full_name",
            "full_name must not contain control characters.",
        ));
    }
    Ok(name.to_owned())
}

pub fn parse_external_id(value: &Value) -> Result<String, ApiError> {
    let id = string("external_id", value)?;
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_EXTERNAL_ID_CHARS {
        return Err(invalid(
            "external_id",
            format!("external_id must be 1-{MAX_EXTERNAL_ID_CHARS} characters."),
        ));
    }
    if has_control(id) || id.trim().is_empty() {
        return Err(invalid(
            "external_id",
            "external_id must be printable characters (no control characters, not only spaces).",
        ));
    }
    Ok(id.to_owned())
}

/// Deliberately simple: one `@`, a non-empty local part, a dotted domain, no spaces. Full
/// RFC 5322 accepts addresses no mail system delivers to.
pub fn parse_email(value: &Value) -> Result<String, ApiError> {
    let email = string("email", value)?.trim();
    let bad = || {
        invalid(
            "email",
            "email must be a well-formed address such as jane@example.com.",
        )
    };
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(invalid(
            "email",
            format!("email must be at most {MAX_EMAIL_CHARS} characters."),
        ));
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    if local.is_empty()
        || local.chars().count() > 64
        || domain.contains('@')
        || !domain_ok
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(email.to_owned())
}

/// Digits with the usual separators and an optional leading `+`, 3-32 characters.
pub fn parse_phone(value: &Value) -> Result<String, ApiError> {
    let phone = string("phone", value)?.trim();
    let allowed =
        |(i, c): (usize, char)| c.is_ascii_digit() || " -().".contains(c) || (i == 0 && c == '+');
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if phone.chars().count() > MAX_PHONE_CHARS
        || digits < 3
        || !phone.chars().enumerate().all(allowed)
    {
        return Err(invalid("phone", "phone must be a phone number such as +44 20 7946 0958 (digits, spaces, - ( ) . and a leading +)."));
    }
    Ok(phone.to_owned())
}

/// ISO 8601 calendar date (`YYYY-MM-DD`), not in the future, not before 1900.
pub fn parse_date_of_birth(value: &Value, today: NaiveDate) -> Result<String, ApiError> {
    let text = string("date_of_birth", value)?;
    let bad = || {
        invalid(
            "date_of_birth",
            "date_of_birth must be a past date in YYYY-MM-DD form.",
        )
    };
    let shape_ok = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape_ok {
        return Err(bad());
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?;
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).ok_or_else(bad)?;
    if date > today || date < earliest {
        return Err(bad());
    }
    Ok(date.format("%Y-%m-%d").to_string())
}

/// ISO 3166-1 alpha-2, officially assigned codes; lower case is accepted and upper-cased.
pub fn parse_country(value: &Value) -> Result<String, ApiError> {
    let code = string("country", value)?.trim().to_ascii_uppercase();
    if code.len() == 2 && ISO_3166_ALPHA_2.split(' ').any(|c| c == code) {
        Ok(code)
    } else {
        Err(invalid(
            "country",
            "country must be an ISO 3166-1 alpha-2 code such as GB or US.",
        ))
    }
}

pub fn parse_metadata(value: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let map = value.as_object().ok_or_else(|| {
        invalid(
            "metadata",
            "metadata must be an object of string keys to string values.",
        )
    })?;
    if map.len() > MAX_METADATA_PAIRS {
        return Err(invalid(
            "metadata",
            format!("metadata holds at most {MAX_METADATA_PAIRS} pairs."),
        ));
    }
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let param = format!("metadata.{key}");
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > MAX_METADATA_KEY_CHARS || has_control(key) {
            return Err(invalid("metadata", format!("metadata keys must be 1-{MAX_METADATA_KEY_CHARS} characters without control characters.")));
        }
        let text = value
            .as_str()
            .ok_or_else(|| invalid(&param, "metadata values must be strings."))?;
        if text.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(invalid(
                &param,
                format!("metadata values must be at most {MAX_METADATA_VALUE_CHARS} characters."),
            ));
        }
        if has_control(text) {
            return Err(invalid(
                &param,
                "metadata values must not contain control characters.",
            ));
        }
        out.insert(key.clone(), text.to_owned());
    }
    Ok(out)
}

pub fn parse_type(value: &Value) -> Result<CustomerType, ApiError> {
    match value.as_str() {
        Some("INDIVIDUAL") => Ok(CustomerType::Individual),
        Some("BUSINESS") => Ok(CustomerType::Business),
        _ => Err(invalid("type", "type must be INDIVIDUAL or BUSINESS.")),
    }
}

impl CustomerInput {
    /// Parses a JSON object body. `today` bounds `date_of_birth`.
    pub fn parse(body: &Map<String, Value>, today: NaiveDate) -> Result<Self, ApiError> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for name in body.keys() {
            if let Some((canonical, _)) = READ_ONLY.iter().find(|(s, c)| s == name || c == name) {
                return Err(invalid(
                    name,
                    format!("{canonical} is read-only and cannot be set through the API."),
                ));
            }
            let Some((canonical, _)) = WRITABLE.iter().find(|(s, c)| s == name || c == name) else {
                return Err(invalid(name, format!("Unknown field {name:?}.")));
            };
            if let Some(first) = seen.insert(canonical, name) {
                return Err(invalid(
                    canonical,
                    format!("{canonical} is given twice ({first} and {name}); send one spelling."),
                ));
            }
        }
        let get = |canonical: &str| seen.get(canonical).and_then(|name| body.get(*name));
        fn field<T>(
            value: Option<&Value>,
            parse: impl FnOnce(&Value) -> Result<T, ApiError>,
        ) -> Result<Field<T>, ApiError> {
            match value {
                None => Ok(Field::Absent),
                Some(Value::Null) => Ok(Field::Null),
                Some(v) => parse(v).map(Field::Value),
            }
        }
        let input = CustomerInput {
            external_id: field(get("external_id"), parse_external_id)?,
            customer_type: field(get("type"), parse_type)?,
            full_name: field(get("full_name"), parse_full_name)?,
            email: field(get("email"), parse_email)?,
            phone: field(get("phone"), parse_phone)?,
            date_of_birth: field(get("date_of_birth"), |v| parse_date_of_birth(v, today))?,
            country: field(get("country"), parse_country)?,
            metadata: field(get("metadata"), parse_metadata)?,
        };
        if input.full_name == Field::Null {
            return Err(invalid(
                "full_name",
                "full_name is required and cannot be cleared.",
            ));
        }
        if input.customer_type == Field::Null {
            return Err(invalid(
                "type",
                "type cannot be cleared; send INDIVIDUAL or BUSINESS.",
            ));
        }
        Ok(input)
    }

    pub fn is_empty(&self) -> bool {
        *self == CustomerInput::default()
    }
}

/// Officially assigned ISO 3166-1 alpha-2 codes.
const ISO_3166_ALPHA_2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ \
FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM \
JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT \
MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB \
SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    fn parse(body: Value) -> Result<CustomerInput, ApiError> {
        CustomerInput::parse(body.as_object().unwrap(), today())
    }

    fn param_of(body: Value) -> String {
        parse(body).unwrap_err().param().unwrap().to_owned()
    }

    #[test]
    fn both_spellings_are_accepted() {
        let camel = parse(
            json!({"externalId": "crm-7741", "fullName": "Jane Doe", "dateOfBirth": "1990-02-03"}),
        )
        .unwrap();
        let snake = parse(json!({"external_id": "crm-7741", "full_name": "Jane Doe", "date_of_birth": "1990-02-03"})).unwrap();
        assert_eq!(camel, snake);
        assert_eq!(camel.external_id, Field::Value("crm-7741".into()));
        assert_eq!(camel.full_name, Field::Value("Jane Doe".into()));
    }

    #[test]
    fn unknown_read_only_and_doubled_fields_name_the_field() {
        assert_eq!(param_of(json!({"fullname": "x"})), "fullname");
        assert_eq!(param_of(json!({"kycStatus": "VERIFIED"})), "kycStatus");
        assert_eq!(param_of(json!({"id": "x"})), "id");
        assert_eq!(param_of(json!({"aml": {}})), "aml");
        assert_eq!(param_of(json!({"added_via": "MANUAL"})), "added_via");
        assert_eq!(param_of(json!({"updatedAt": "x"})), "updatedAt");
        assert_eq!(
            param_of(json!({"fullName": "a", "full_name": "b"})),
            "full_name"
        );
    }

    #[test]
    fn null_clears_optional_fields_but_not_required_ones() {
        let input = parse(json!({"email": null, "metadata": null, "externalId": null})).unwrap();
        assert_eq!(input.email, Field::Null);
        assert_eq!(input.metadata, Field::Null);
        assert_eq!(input.external_id, Field::Null);
        assert_eq!(param_of(json!({"fullName": null})), "full_name");
        assert_eq!(param_of(json!({"type": null})), "type");
    }

    #[test]
    fn wrong_types_name_the_field() {
        assert_eq!(param_of(json!({"fullName": 5})), "full_name");
        assert_eq!(param_of(json!({"email": true})), "email");
        assert_eq!(param_of(json!({"metadata": []})), "metadata");
        assert_eq!(param_of(json!({"metadata": {"a": 1}})), "metadata.a");
        assert_eq!(param_of(json!({"type": "PERSON"})), "type");
        assert_eq!(param_of(json!({"externalId": ["x"]})), "external_id");
    }

    #[test]
    fn full_name_is_trimmed_and_bounded() {
        assert_eq!(
            parse(json!({"fullName": "  Zoë Ñúñez 李  "}))
                .unwrap()
                .full_name,
            Field::Value("Zoë Ñúñez 李".into())
        );
        assert_eq!(param_of(json!({"fullName": "   "})), "full_name");
        assert!(parse(json!({"fullName": "é".repeat(200)})).is_ok());
        assert_eq!(param_of(json!({"fullName": "é".repeat(201)})), "full_name");
        assert_eq!(param_of(json!({"fullName": "Jane\u{0}Doe"})), "full_name");
        assert_eq!(param_of(json!({"fullName": "Jane\nDoe"})), "full_name");
    }

    #[test]
    fn external_id_rules() {
        assert!(parse(json!({"externalId": "x".repeat(128)})).is_ok());
        assert_eq!(
            param_of(json!({"externalId": "x".repeat(129)})),
            "external_id"
        );
        assert_eq!(param_of(json!({"externalId": ""})), "external_id");
        assert_eq!(param_of(json!({"externalId": "  "})), "external_id");
        assert_eq!(param_of(json!({"externalId": "a\tb"})), "external_id");
    }

    #[test]
    fn email_rules() {
        for good in [
            "jane@example.com",
            "j.d+tag@mail.example.co.uk",
            "ü@exämple.de",
        ] {
            assert!(parse(json!({"email": good})).is_ok(), "{good}");
        }
        for bad in [
            "jane",
            "@example.com",
            "jane@",
            "jane@example",
            "jane@@example.com",
            "ja ne@example.com",
            "jane@.example.com",
            "jane@example..com",
        ] {
            assert_eq!(param_of(json!({"email": bad})), "email", "{bad}");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert_eq!(param_of(json!({"email": long})), "email");
    }

    #[test]
    fn dates_countries_phones() {
        assert!(parse(json!({"dateOfBirth": "2000-02-29"})).is_ok());
        for bad in [
            "2001-02-29",
            "1990-1-5",
            "19900105",
            "2030-01-01",
            "1850-01-01",
            "1990-01-05T00:00:00Z",
        ] {
            assert_eq!(
                param_of(json!({"dateOfBirth": bad})),
                "date_of_birth",
                "{bad}"
            );
        }
        assert_eq!(
            parse(json!({"country": "gb"})).unwrap().country,
            Field::Value("GB".into())
        );
        for bad in ["UK", "GBR", "", "X1"] {
            assert_eq!(param_of(json!({"country": bad})), "country", "{bad}");
        }
        assert!(parse(json!({"phone": "+44 20 7946 0958"})).is_ok());
        for bad in ["12", "+44 20 7946 0958 ext. 5", "phone", "4+4"] {
            assert_eq!(param_of(json!({"phone": bad})), "phone", "{bad}");
        }
    }

    #[test]
    fn metadata_limits() {
        let twenty: Map<String, Value> = (0..20).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(parse(json!({"metadata": twenty})).is_ok());
        let twenty_one: Map<String, Value> =
            (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(param_of(json!({"metadata": twenty_one})), "metadata");
        assert_eq!(
            param_of(json!({"metadata": {"k".repeat(41): "v"}})),
            "metadata"
        );
        assert!(parse(json!({"metadata": {"k".repeat(40): "v".repeat(500)}})).is_ok());
        assert_eq!(
            param_of(json!({"metadata": {"k": "v".repeat(501)}})),
            "metadata.k"
        );
        assert_eq!(param_of(json!({"metadata": {"k": "a\u{7}"}})), "metadata.k");
    }
}
