//! Identifiers and secrets: prefixed, time-ordered ids (`evt_…`, `ep_…`) and random tokens,
//! all drawn from the operating system's random generator.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Bytes from the OS generator; there is no safe fallback if it fails, so it panics.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random generator is available");
    bytes
}

/// A uniform draw from [0, 1), for jitter.
pub fn unit_random() -> f64 {
    (u64::from_be_bytes(random_bytes::<8>()) >> 11) as f64 / (1u64 << 53) as f64
}

/// A ULID: 48 bits of Unix milliseconds then 80 random bits, in 26 Crockford base-32 digits,
/// so that ids sort by creation time.
pub fn ulid(unix_ms: u64) -> String {
    let random = u128::from_be_bytes({
        let mut b = [0u8; 16];
        b[6..].copy_from_slice(&random_bytes::<10>());
        b
    });
    let value = (u128::from(unix_ms & 0xFFFF_FFFF_FFFF) << 80) | random;
    (0..26)
        .rev()
        .map(|i| CROCKFORD[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

fn now_ms() -> u64 {
    jiff::Timestamp::now().as_millisecond().try_into().unwrap_or(0)
}

/// A new event id, `evt_` and a ULID: the `webhook-id` receivers deduplicate on.
pub fn event_id() -> String {
    format!("evt_{}", ulid(now_ms()))
}

/// A new endpoint id, `ep_` and a ULID.
pub fn endpoint_id() -> String {
    format!("ep_{}", ulid(now_ms()))
}

/// A new signing secret: `whsec_` and 32 random bytes in standard base64, as Standard Webhooks
/// libraries expect.
pub fn webhook_secret() -> String {
    format!("whsec_{}", STANDARD.encode(random_bytes::<32>()))
}

/// A new admin token: 32 random bytes, URL-safe so that it can be pasted into a shell.
pub fn admin_token() -> String {
    format!("hadm_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_sort_by_time_and_differ() {
        let a = ulid(1_700_000_000_000);
        let b = ulid(1_700_000_000_001);
        assert_eq!(a.len(), 26);
        assert!(a < b);
        assert_ne!(ulid(5), ulid(5));
        assert!(event_id().starts_with("evt_"));
    }

    #[test]
    fn secrets_decode_to_32_bytes() {
        let secret = webhook_secret();
        let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(key.len(), 32);
        assert_ne!(secret, webhook_secret());
    }
}
