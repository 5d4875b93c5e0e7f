//! The API key format (`ic_live_` or `ic_test_` + 32 random base62 + 6 base62 CRC32
//! checksum) and its hash.
//! Pure code: generating, parsing and hashing a key never touches storage.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::org::Mode;

/// Fixed prefixes, so secret scanners can recognise a leaked key and people its mode.
pub const KEY_PREFIX: &str = "ic_live_";
pub const TEST_KEY_PREFIX: &str = "ic_test_";
pub const KEY_RANDOM_CHARS: usize = 32;
pub const KEY_CHECKSUM_CHARS: usize = 6;
pub const KEY_LEN_CHARS: usize = KEY_PREFIX.len() + KEY_RANDOM_CHARS + KEY_CHECKSUM_CHARS;
/// How much of a key is stored and shown to identify it (`ic_live_AbCd`).
pub const DISPLAY_PREFIX_CHARS: usize = 12;
pub const LAST_CHARS: usize = 4;
/// The regex a secret scanner can use to find our keys.
pub const SCANNER_REGEX: &str = r"\bic_(?:live|test)_[0-9A-Za-z]{38}\b";

/// The prefix of a mode's keys.
pub fn prefix_of(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => KEY_PREFIX,
        Mode::Test => TEST_KEY_PREFIX,
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a key. The variants exist for tests and logs; clients get one 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedKey {
    #[error("wrong length")]
    Length,
    #[error("wrong prefix")]
    Prefix,
    #[error("character outside base62")]
    Alphabet,
    #[error("checksum mismatch")]
    Checksum,
}

/// A string of the key format with a valid checksum. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyToken(String);

impl ApiKeyToken {
    /// A fresh key of `mode` from the operating system's CSPRNG.
    pub fn generate(mode: Mode) -> Result<Self, getrandom::Error> {
        let mut key = String::with_capacity(KEY_LEN_CHARS);
        key.push_str(prefix_of(mode));
        key.push_str(&random_base62(KEY_RANDOM_CHARS)?);
        let sum = checksum(&key);
        key.push_str(&sum);
        Ok(Self(key))
    }

    /// Checks format and checksum only; whether the key exists is storage's question.
    pub fn parse(candidate: &str) -> Result<Self, MalformedKey> {
        if candidate.len() != KEY_LEN_CHARS {
            return Err(MalformedKey::Length);
        }
        let Some(rest) = Mode::ALL
            .into_iter()
            .find_map(|mode| candidate.strip_prefix(prefix_of(mode)))
        else {
            return Err(MalformedKey::Prefix);
        };
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedKey::Alphabet);
        }
        let (body, sum) = candidate.split_at(KEY_LEN_CHARS - KEY_CHECKSUM_CHARS);
        if checksum(body).as_bytes().ct_eq(sum.as_bytes()).into() {
            Ok(Self(candidate.to_owned()))
        } else {
            Err(MalformedKey::Checksum)
        }
    }

    /// Live or test, from the prefix.
    pub fn mode(&self) -> Mode {
        mode_of_prefix(&self.0)
    }

    /// The plaintext. Only the key-creation response may show it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The first 12 characters, stored so people can tell keys apart.
    pub fn display_prefix(&self) -> &str {
        &self.0[..DISPLAY_PREFIX_CHARS]
    }

    pub fn last4(&self) -> &str {
        &self.0[KEY_LEN_CHARS - LAST_CHARS..]
    }
}

impl fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyToken(<redacted>)")
    }
}

/// SHA-256 of a key's plaintext: the lookup key of the API keys table.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality, so timing does not tell how much of a hash matched.
    pub fn matches(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(<redacted>)")
    }
}

/// The mode a key, or a stored display prefix, names (`ic_test_…` is test; all else live).
pub fn mode_of_prefix(prefix: &str) -> Mode {
    if prefix.starts_with(TEST_KEY_PREFIX) {
        Mode::Test
    } else {
        Mode::Live
    }
}

/// Six base62 digits of the CRC32 of `body` (62^6 > 2^32, so every value fits).
fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut digits = [b'0'; KEY_CHECKSUM_CHARS];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    digits.iter().map(|&b| b as char).collect()
}

/// `len` uniformly random base62 characters from the OS CSPRNG (rejection sampling, no bias).
pub fn random_base62(len: usize) -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf)?;
        // 248 = 4 * 62: bytes at or above it would favour the first characters.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            out.push(BASE62[(b % 62) as usize] as char);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> ApiKeyToken {
        ApiKeyToken::generate(Mode::Live).expect("OS randomness")
    }

    #[test]
    fn generated_keys_have_the_documented_format() {
        let key = fresh();
        let s = key.expose_secret();
        assert_eq!(s.len(), 46);
        assert!(s.starts_with("ic_live_"));
        assert!(s[8..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(key.display_prefix(), &s[..12]);
        assert_eq!(key.last4(), &s[42..]);
        assert_eq!(ApiKeyToken::parse(s), Ok(key.clone()));
        assert_eq!(key.mode(), Mode::Live);
    }

    #[test]
    fn test_keys_differ_only_by_prefix_and_checksum() {
        let key = ApiKeyToken::generate(Mode::Test).unwrap();
        let s = key.expose_secret();
        assert_eq!(s.len(), KEY_LEN_CHARS);
        assert!(s.starts_with("ic_test_"));
        assert_eq!(key.mode(), Mode::Test);
        assert_eq!(ApiKeyToken::parse(s).unwrap().mode(), Mode::Test);
        assert_eq!(mode_of_prefix(key.display_prefix()), Mode::Test);
        // The checksum covers the prefix: a test key relabelled live is no key at all.
        let relabelled = s.replacen("ic_test_", "ic_live_", 1);
        assert_eq!(ApiKeyToken::parse(&relabelled), Err(MalformedKey::Checksum));
    }

    #[test]
    fn generated_keys_differ() {
        let keys: std::collections::HashSet<String> = (0..200)
            .map(|_| fresh().expose_secret().to_owned())
            .collect();
        assert_eq!(keys.len(), 200);
    }

    #[test]
    fn checksum_is_crc32_in_base62() {
        // Independent computation: crc32 of the body, written in base62, left-padded to 6.
        let body = "ic_live_00000000000000000000000000000000";
        let crc = crc32fast::hash(body.as_bytes()) as u64;
        let decoded = checksum(body).bytes().fold(0u64, |acc, c| {
            acc * 62 + BASE62.iter().position(|&d| d == c).unwrap() as u64
        });
        assert_eq!(decoded, crc);
        assert_eq!(checksum(body).len(), 6);
    }

    #[test]
    fn every_single_character_typo_is_caught() {
        let key = fresh();
        let s = key.expose_secret();
        for i in KEY_PREFIX.len()..s.len() {
            let mut bytes = s.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert_eq!(
                ApiKeyToken::parse(&typo),
                Err(MalformedKey::Checksum),
                "position {i}"
            );
        }
    }

    #[test]
    fn malformed_keys_are_rejected_by_kind() {
        let s = fresh().expose_secret().to_owned();
        assert_eq!(ApiKeyToken::parse(&s[..45]), Err(MalformedKey::Length));
        assert_eq!(
            ApiKeyToken::parse(&format!("{s}x")),
            Err(MalformedKey::Length)
        );
        assert_eq!(ApiKeyToken::parse(""), Err(MalformedKey::Length));
        let other_prefix = s.replacen("ic_live_", "ic_demo_", 1);
        assert_eq!(ApiKeyToken::parse(&other_prefix), Err(MalformedKey::Prefix));
        let dashed = format!("{}-{}", &s[..20], &s[21..]);
        assert_eq!(ApiKeyToken::parse(&dashed), Err(MalformedKey::Alphabet));
        // Multi-byte characters must not be sliced mid-character.
        let accented = format!("{}é{}", &s[..20], &s[22..]);
        assert_eq!(accented.len(), 46);
        assert_eq!(ApiKeyToken::parse(&accented), Err(MalformedKey::Alphabet));
    }

    #[test]
    fn hash_is_sha256_of_the_plaintext() {
        let key = ApiKeyToken::parse(&{
            let body = "ic_live_abcdefghijklmnopqrstuvwxyzABCDEF";
            format!("{body}{}", checksum(body))
        })
        .unwrap();
        let expected: [u8; 32] = Sha256::digest(key.expose_secret().as_bytes()).into();
        assert_eq!(key.hash().as_bytes(), &expected);
        assert!(key.hash().matches(&KeyHash::from_slice(&expected).unwrap()));
        assert!(!key.hash().matches(&fresh().hash()));
        assert!(KeyHash::from_slice(&expected[..31]).is_none());
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = fresh();
        let shown = format!("{key:?} {:?}", key.hash());
        assert!(!shown.contains(&key.expose_secret()[8..]));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn scanner_regex_documents_the_format() {
        // The regex in the README is this constant; check its shape matches the constants.
        assert_eq!(
            SCANNER_REGEX,
            format!(
                r"\bic_(?:live|test)_[0-9A-Za-z]{{{}}}\b",
                KEY_RANDOM_CHARS + KEY_CHECKSUM_CHARS
            )
        );
        assert_eq!(KEY_PREFIX.len(), TEST_KEY_PREFIX.len());
    }

    #[test]
    fn random_base62_uses_the_whole_alphabet() {
        let s = random_base62(5000).unwrap();
        assert_eq!(s.len(), 5000);
        for c in BASE62.iter() {
            assert!(s.as_bytes().contains(c), "{} never drawn", *c as char);
        }
    }
}
