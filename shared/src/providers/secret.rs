//! A provider secret in clear: checked once when it comes in, masked for every view, wiped
//! from memory when dropped, and never printed (`Debug` shows its length only).

use zeroize::Zeroizing;

/// The longest secret taken: 4 KiB (a World Check pair or a long JWT-style key fits).
pub const MAX_SECRET_BYTES: usize = 4096;
/// Secrets at least this long show their last 4 characters; shorter ones show fewer.
const FULL_REVEAL_FROM: usize = 16;
const MASK: char = '•';

pub struct ProviderSecret(Zeroizing<String>);

impl std::fmt::Debug for ProviderSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProviderSecret({} bytes)", self.0.len())
    }
}

impl ProviderSecret {
    /// Checks `text` as a secret: 1 to 4096 printable ASCII characters (space allowed
    /// inside, not at either end: that is a copy-paste slip). `Err` says what is wrong
    /// without quoting any of it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("secret is empty: paste the key the provider gave you.".into());
        }
        if text.len() > MAX_SECRET_BYTES {
            return Err(format!(
                "secret is longer than {MAX_SECRET_BYTES} bytes; no provider key is that long."
            ));
        }
        if let Some(at) = text.bytes().position(|b| !(0x20..=0x7e).contains(&b)) {
            return Err(format!(
                "secret holds a character that is not printable ASCII (at byte {at}): \
                 provider keys are plain ASCII; check for a stray line break or smart quote."
            ));
        }
        if text.starts_with(' ') || text.ends_with(' ') {
            return Err("secret starts or ends with a space; remove it.".into());
        }
        Ok(Self(Zeroizing::new(text.to_owned())))
    }

    /// From the vault's plaintext (already checked when it was sealed).
    pub(crate) fn from_opened(text: Zeroizing<String>) -> Self {
        Self(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The contract's `masked_key`: `•` for every character but the last few, which show.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// How many trailing characters a secret of `len` characters shows: 4 from 16 on; fewer,
/// a quarter at most, below (so a short secret never shows most of itself).
fn shown(len: usize) -> usize {
    if len >= FULL_REVEAL_FROM {
        4
    } else {
        len / 4
    }
}

pub fn mask(secret: &str) -> String {
    let len = secret.chars().count();
    let show = shown(len);
    let mut masked: String = std::iter::repeat_n(MASK, len - show).collect();
    masked.extend(secret.chars().skip(len - show));
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_shows_the_last_four_of_long_secrets_and_a_quarter_at_most_of_short_ones() {
        let long = "abcdefghijklmnopqrstuvwxyz0123456789";
        assert_eq!(mask(long), format!("{}6789", "•".repeat(long.len() - 4)));
        assert_eq!(mask("0123456789abcdef"), format!("{}cdef", "•".repeat(12)));
        // Shorter than 16: at most a quarter shows.
        assert_eq!(mask("0123456789abcde"), format!("{}cde", "•".repeat(12)));
        assert_eq!(mask("12345678"), "••••••78");
        assert_eq!(mask("abc"), "•••");
        assert_eq!(mask("x"), "•");
        for len in 1..40 {
            let secret: String = "k".repeat(len);
            let masked = mask(&secret);
            assert_eq!(masked.chars().count(), len);
            let visible = masked.chars().filter(|c| *c != '•').count();
            assert!(visible <= 4 && visible * 4 <= len, "{len}: {masked}");
        }
    }

    #[test]
    fn secrets_are_printable_ascii_of_bounded_length_and_errors_never_quote_them() {
        assert!(ProviderSecret::parse("sk-live-0123456789").is_ok());
        assert!(ProviderSecret::parse("key:secret with inner space").is_ok());
        assert!(ProviderSecret::parse(&"a".repeat(MAX_SECRET_BYTES)).is_ok());
        let secret_bits = "zz9PLURALzAlpha";
        for bad in [
            String::new(),
            "a".repeat(MAX_SECRET_BYTES + 1),
            format!("{secret_bits}\n"),
            format!("{secret_bits}\u{0}"),
            format!("{secret_bits}\u{7f}"),
            format!("{secret_bits}é"),
            format!("{secret_bits}\u{200b}"),
            format!(" {secret_bits}"),
            format!("{secret_bits} "),
            format!("{secret_bits}\t"),
        ] {
            let err = ProviderSecret::parse(&bad).expect_err(&format!("{bad:?}"));
            assert!(!err.contains(secret_bits), "{err}");
        }
        let secret = ProviderSecret::parse("do-not-print-me").unwrap();
        assert_eq!(format!("{secret:?}"), "ProviderSecret(15 bytes)");
    }
}
