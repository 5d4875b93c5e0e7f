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

/// Characters no client-written text field may hold: a name or id has to look like what it
/// is, so nothing invisible may change how it displays or compares.
///
/// - Control characters (Unicode Cc: U+0000-U+001F, U+007F-U+009F): tabs, newlines, NUL...
/// - Bidi embeddings and overrides (U+202A-U+202E) and isolates (U+2066-U+2069): they
///   reorder how the text and whatever follows it is displayed ("Trojan Source" spoofing).
/// - Bidi marks LRM/RLM (U+200E, U+200F) and the Arabic letter mark (U+061C): invisible,
///   and they only steer display direction. A person's name or an id never needs them;
///   allowing them lets two identical-looking values differ, so they are refused too.
/// - U+200B zero width space and U+FEFF (BOM / zero width no-break space): invisible, no
///   meaning in a name, and a classic way to make look-alike values.
///
/// Deliberately NOT refused: ZWJ U+200D and ZWNJ U+200C. They change how letters join in
/// Persian, Arabic and Indic scripts (Persian names such as Mohammad\u{200C}Mehdi are
/// written with a ZWNJ) and build emoji sequences (family and profession emoji), so real
/// names contain them. Variation selectors and emoji
/// tag characters stay legal for the same reason.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Whether `text` holds a character [`is_forbidden_char`] refuses.
pub fn has_forbidden_chars(text: &str) -> bool {
    text.chars().any(is_forbidden_char)
}

/// The refusal for a field holding a forbidden character; `what` names it in the message.
fn forbidden_chars(param: &str, what: &str) -> ApiError {
    invalid(
        param,
        format!(
            "{what} must not contain control characters or invisible formatting characters \
             (bidi overrides, isolates or marks, U+200B, U+FEFF)."
        ),
    )
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
    if has_forbidden_chars(name) {
        return Err(forbidden_chars("full_name", "full_name"));
    }
    Ok(name.to_owned())
}

/// `external_id` in a body: a string following [`parse_external_id_text`]'s rules.
pub fn parse_external_id(value: &Value) -> Result<String, ApiError> {
    parse_external_id_text(string("external_id", value)?)
}

/// An `external_id`, from a body or the `external_id` query parameter: 1-128 printable
/// characters, no leading or trailing whitespace. Kept exactly as sent: an id is matched
/// against the client's own records, so a stray space is refused rather than trimmed.
pub fn parse_external_id_text(id: &str) -> Result<String, ApiError> {
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_EXTERNAL_ID_CHARS {
        return Err(invalid(
            "external_id",
            format!("external_id must be 1-{MAX_EXTERNAL_ID_CHARS} characters."),
        ));
    }
    if has_forbidden_chars(id) {
        return Err(forbidden_chars("external_id", "external_id"));
    }
    if id.starts_with(char::is_whitespace) || id.ends_with(char::is_whitespace) {
        return Err(invalid(
            "external_id",
            "external_id must not start or end with whitespace; send the id without leading or trailing spaces.",
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
    if has_forbidden_chars(email) {
        return Err(forbidden_chars("email", "email"));
    }
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
        || email.chars().any(char::is_whitespace)
    {
        return Err(bad());
    }
    Ok(email.to_owned())
}

/// Digits with the usual separators and an optional leading `+`, 3-32 characters.
pub fn parse_phone(value: &Value) -> Result<String, ApiError> {
    let phone = string("phone", value)?.trim();
    if has_forbidden_chars(phone) {
        return Err(forbidden_chars("phone", "phone"));
    }
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

/// ISO 8601 calendar date (`YYYY-MM-DD`), not in the future, not before 1900. A value that
/// is not a real date (`2023-02-30`, `2023-13-01`, `1990-1-5`) and a real date out of range
/// get different messages.
pub fn parse_date_of_birth(value: &Value, today: NaiveDate) -> Result<String, ApiError> {
    let text = string("date_of_birth", value)?;
    let not_a_date = || {
        invalid(
            "date_of_birth",
            "date_of_birth is not a valid calendar date in YYYY-MM-DD form.",
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
        return Err(not_a_date());
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| not_a_date())?;
    if date > today || date < EARLIEST_DATE_OF_BIRTH {
        return Err(invalid(
            "date_of_birth",
            format!("date_of_birth must be a past date on or after {EARLIEST_DATE_OF_BIRTH}."),
        ));
    }
    Ok(date.format("%Y-%m-%d").to_string())
}

/// The earliest accepted `date_of_birth`.
pub const EARLIEST_DATE_OF_BIRTH: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(date) => date,
    None => panic!("1900-01-01 is a date"),
};

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
        if key_chars == 0 || key_chars > MAX_METADATA_KEY_CHARS {
            return Err(invalid(
                "metadata",
                format!("metadata keys must be 1-{MAX_METADATA_KEY_CHARS} characters."),
            ));
        }
        if has_forbidden_chars(key) {
            return Err(forbidden_chars("metadata", "metadata keys"));
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
        if has_forbidden_chars(text) {
            return Err(forbidden_chars(&param, "metadata values"));
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
    fn message_of(body: Value) -> String {
        parse(body).unwrap_err().to_string()
    }

    /// Every character the text fields refuse, with a name for assertion messages.
    const FORBIDDEN: &[(char, &str)] = &[
        ('\u{0}', "NUL"),
        ('\u{7}', "BEL"),
        ('\u{1B}', "ESC"),
        ('\u{7F}', "DEL"),
        ('\u{85}', "NEL"),
        ('\u{9F}', "APC"),
        ('\u{202A}', "LRE"),
        ('\u{202B}', "RLE"),
        ('\u{202C}', "PDF"),
        ('\u{202D}', "LRO"),
        ('\u{202E}', "RLO"),
        ('\u{2066}', "LRI"),
        ('\u{2067}', "RLI"),
        ('\u{2068}', "FSI"),
        ('\u{2069}', "PDI"),
        ('\u{200B}', "ZWSP"),
        ('\u{FEFF}', "BOM"),
        ('\u{200E}', "LRM"),
        ('\u{200F}', "RLM"),
        ('\u{061C}', "ALM"),
    ];

    #[test]
    fn forbidden_char_set_is_exact() {
        for (c, name) in FORBIDDEN {
            assert!(is_forbidden_char(*c), "{name}");
        }
        for c in [
            '\u{200C}',  // ZWNJ
            '\u{200D}',  // ZWJ
            '\u{FE0F}',  // variation selector-16 (emoji presentation)
            '\u{E0067}', // tag letter g (subdivision flags)
            '\u{00A0}',  // no-break space
            '\u{00AD}',  // soft hyphen
            '\u{2029}',  // paragraph separator
            '\u{2060}',  // word joiner
            '\u{2065}',  // unassigned, between the isolates and the invisible operators
            '\u{206A}',  // deprecated format character after PDI
            '\u{200A}',  // hair space
            '\u{2010}',  // hyphen
            '\u{202F}',  // narrow no-break space (after RLO)
            '\u{FEFE}',
            '\u{061B}', // Arabic semicolon
            '\u{061D}',
            ' ',
            'a',
            'é',
            '李',
        ] {
            assert!(!is_forbidden_char(c), "{:?}", c);
        }
    }

    #[test]
    fn zwj_and_zwnj_are_legal_in_names() {
        for name in [
            "Zoë\u{200D}",
            "Zo\u{200D}ë Doe",
            // Persian: "Mohammad-Mehdi" with a zero width non-joiner between the parts.
            "محمد\u{200C}مهدی رضایی",
            // Hindi name with a ZWJ (explicit half form) and a ZWNJ.
            "क्\u{200D}ष\u{200C}मा",
            // Emoji sequences: family, woman technologist, rainbow flag, England flag.
            "Jane \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
            "\u{1F469}\u{200D}\u{1F4BB} Dev",
            "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}",
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} Fan",
        ] {
            assert_eq!(
                parse(json!({"fullName": name})).unwrap().full_name,
                Field::Value(name.to_owned()),
                "{name}"
            );
        }
        // Also legal in the other free-text fields.
        let input = parse(json!({
            "externalId": "crm\u{200C}7741",
            "metadata": {"n\u{200D}ote": "v\u{200C}alue"}
        }))
        .unwrap();
        assert_eq!(input.external_id, Field::Value("crm\u{200C}7741".into()));
    }

    #[test]
    fn forbidden_chars_are_refused_in_every_text_field() {
        for (c, name) in FORBIDDEN {
            let cases = [
                (json!({"fullName": format!("Jane{c}Doe")}), "full_name"),
                (json!({"externalId": format!("crm{c}7741")}), "external_id"),
                (json!({"email": format!("jane{c}@example.com")}), "email"),
                (json!({"email": format!("jane@exam{c}ple.com")}), "email"),
                (json!({"phone": format!("+44 20{c} 7946 0958")}), "phone"),
                (
                    json!({"metadata": {"tier": format!("gold{c}")}}),
                    "metadata.tier",
                ),
                (
                    json!({"metadata": {format!("ti{c}er"): "gold"}}),
                    "metadata",
                ),
            ];
            for (body, param) in cases {
                let err = parse(body).unwrap_err();
                assert_eq!(err.code(), "invalid_request", "{name} in {param}");
                assert_eq!(err.param(), Some(param), "{name} in {param}");
                assert!(
                    err.to_string().contains("invisible formatting characters"),
                    "{name} in {param}: {err}"
                );
            }
        }
    }

    #[test]
    fn forbidden_char_messages_name_the_field() {
        assert_eq!(
            message_of(json!({"fullName": "Jane\u{202E}Doe"})),
            "full_name must not contain control characters or invisible formatting characters \
             (bidi overrides, isolates or marks, U+200B, U+FEFF)."
        );
        assert!(message_of(json!({"externalId": "a\u{200B}b"})).starts_with("external_id must not"));
        assert!(message_of(json!({"email": "\u{FEFF}j@x.com"})).starts_with("email must not"));
        assert!(
            message_of(json!({"phone": "\u{2066}+44 20 7946 0958"})).starts_with("phone must not")
        );
        assert!(
            message_of(json!({"metadata": {"k\u{7}": "v"}})).starts_with("metadata keys must not")
        );
        assert!(message_of(json!({"metadata": {"k": "\u{200F}v"}}))
            .starts_with("metadata values must not"));
    }

    #[test]
    fn external_id_edges_must_not_be_whitespace() {
        for bad in [
            " crm-7741",
            "crm-7741 ",
            "\tcrm-7741",
            "crm-7741\t",
            "\u{A0}crm-7741",
            "crm-7741\u{A0}",
            "\u{3000}crm-7741",
            "crm-7741\u{2003}",
            " ",
            "\u{A0}",
        ] {
            let err = parse(json!({"externalId": bad})).unwrap_err();
            assert_eq!(err.param(), Some("external_id"), "{bad:?}");
            if !bad.contains('\t') {
                assert!(
                    err.to_string()
                        .contains("must not start or end with whitespace"),
                    "{bad:?}: {err}"
                );
            }
        }
        // Inner spaces are part of the id and kept.
        assert_eq!(
            parse(json!({"externalId": "crm 7741\u{A0}x"}))
                .unwrap()
                .external_id,
            Field::Value("crm 7741\u{A0}x".into())
        );
    }

    #[test]
    fn external_id_text_follows_the_same_rules() {
        assert_eq!(parse_external_id_text("crm-7741").unwrap(), "crm-7741");
        assert_eq!(
            parse_external_id_text(&"x".repeat(128)).unwrap(),
            "x".repeat(128)
        );
        assert_eq!(
            parse_external_id_text("é".repeat(128).as_str()).unwrap(),
            "é".repeat(128)
        );
        for bad in [
            String::new(),
            "x".repeat(129),
            " crm".into(),
            "crm ".into(),
            "crm\u{A0}".into(),
            "a\u{202E}b".into(),
            "a\nb".into(),
            "a\u{FEFF}".into(),
        ] {
            let err = parse_external_id_text(&bad).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{bad:?}");
            assert_eq!(err.param(), Some("external_id"), "{bad:?}");
        }
        // The body version agrees with the text version.
        assert_eq!(
            parse_external_id(&json!(" crm")).unwrap_err(),
            parse_external_id_text(" crm").unwrap_err()
        );
        assert_eq!(parse_external_id(&json!("crm")).unwrap(), "crm");
        assert_eq!(
            parse_external_id(&json!(7)).unwrap_err().param(),
            Some("external_id")
        );
    }

    #[test]
    fn date_of_birth_messages_tell_shape_from_range() {
        let not_a_date = "date_of_birth is not a valid calendar date in YYYY-MM-DD form.";
        let out_of_range = "date_of_birth must be a past date on or after 1900-01-01.";
        for bad in [
            "2023-02-30",
            "2001-02-29",
            "2023-13-01",
            "2023-00-10",
            "2023-04-31",
            "1990-01-00",
            "1990-1-5",
            "19900105",
            "1990/01/05",
            "1990-01-05T00:00:00Z",
            " 1990-01-05",
            "",
            "year",
            "١٩٩٠-٠١-٠٥",
        ] {
            let err = parse(json!({"dateOfBirth": bad})).unwrap_err();
            assert_eq!(err.param(), Some("date_of_birth"), "{bad}");
            assert_eq!(err.to_string(), not_a_date, "{bad}");
        }
        for bad in [
            "2030-01-01",
            "2026-11-23",
            "1899-12-31",
            "1850-01-01",
            "0001-01-01",
            "9999-12-31",
        ] {
            let err = parse(json!({"dateOfBirth": bad})).unwrap_err();
            assert_eq!(err.param(), Some("date_of_birth"), "{bad}");
            assert_eq!(err.to_string(), out_of_range, "{bad}");
        }
        for good in ["1900-01-01", "2026-11-22", "2000-02-29", "1990-12-31"] {
            assert_eq!(
                parse(json!({"dateOfBirth": good})).unwrap().date_of_birth,
                Field::Value(good.into()),
                "{good}"
            );
        }
    }

    #[test]
    fn repeated_keys_are_refused_before_spellings_are_compared() {
        // The same spelling twice is caught by the strict JSON parser...
        let err =
            crate::json::parse_strict(br#"{"full_name": "a", "full_name": "b"}"#).unwrap_err();
        assert_eq!(err.param(), Some("full_name"));
        // ...both spellings by CustomerInput::parse.
        let body = crate::json::parse_strict(br#"{"fullName": "a", "full_name": "b"}"#).unwrap();
        let err = CustomerInput::parse(body.as_object().unwrap(), today()).unwrap_err();
        assert_eq!(err.param(), Some("full_name"));
        assert!(err.to_string().contains("send one spelling"));
    }

    #[test]
    fn metadata_key_messages() {
        assert_eq!(
            message_of(json!({"metadata": {"k".repeat(41): "v"}})),
            "metadata keys must be 1-40 characters."
        );
        assert_eq!(param_of(json!({"metadata": {"": "v"}})), "metadata");
    }
}
