//! Standard Webhooks v1 verification: `v1,` and the base64 HMAC-SHA256 of
//! `id.timestamp.body`, keyed with the base64-decoded part of a `whsec_` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;

/// How far, in seconds, a call's `webhook-timestamp` may be from now.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Why a call was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The secret is not `whsec_` and base64.
    #[error("the secret is not a whsec_ secret in base64")]
    InvalidSecret,
    /// A header the call must carry is absent or not text.
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a number of seconds.
    #[error("the webhook-timestamp header is not a Unix time")]
    InvalidTimestamp,
    /// The call is older than the tolerance: a replay, or a clock far off.
    #[error("the call is too old ({0} s)")]
    TooOld(i64),
    /// The call is from the future beyond the tolerance.
    #[error("the call is from the future ({0} s ahead)")]
    TooNew(i64),
    /// No signature in `webhook-signature` matches this secret.
    #[error("no signature matches")]
    NoMatchingSignature,
}

/// A receiver's secret, ready to verify calls.
#[derive(Clone)]
pub struct Webhook {
    key: Vec<u8>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Webhook(****)")
    }
}

impl Webhook {
    /// A verifier for the endpoint's `whsec_…` secret.
    pub fn new(secret: &str) -> Result<Webhook, VerifyError> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = STANDARD.decode(encoded).map_err(|_| VerifyError::InvalidSecret)?;
        if key.is_empty() {
            return Err(VerifyError::InvalidSecret);
        }
        Ok(Webhook { key })
    }

    /// Verifies a call now: its body exactly as received, and its headers.
    pub fn verify(&self, body: &[u8], headers: &HeaderMap) -> Result<(), VerifyError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.verify_at(body, headers, now)
    }

    /// Verifies a call as if it were `now` (Unix seconds).
    pub fn verify_at(&self, body: &[u8], headers: &HeaderMap, now: i64) -> Result<(), VerifyError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or(VerifyError::MissingHeader(name))
        };
        let id = header("webhook-id")?;
        let timestamp: i64 = header("webhook-timestamp")?
            .trim()
            .parse()
            .map_err(|_| VerifyError::InvalidTimestamp)?;
        let signatures = header("webhook-signature")?;
        // Subtractions of untrusted numbers saturate rather than overflow.
        let age = now.saturating_sub(timestamp);
        if age > TOLERANCE_SECONDS {
            return Err(VerifyError::TooOld(age));
        }
        if age < -TOLERANCE_SECONDS {
            return Err(VerifyError::TooNew(age.saturating_neg()));
        }
        let expected = self.mac(id, timestamp, body);
        let matches = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            .any(|given| constant_time_eq(&given, &expected));
        if matches {
            Ok(())
        } else {
            Err(VerifyError::NoMatchingSignature)
        }
    }

    /// `v1,<signature>` of a message: what a sender puts in `webhook-signature`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Compares without an early exit, so that timing tells nothing of where bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert("webhook-timestamp", timestamp.parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn the_standard_webhooks_test_vector_verifies() {
        let webhook = Webhook::new(SECRET).unwrap();
        let signature = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
        assert_eq!(
            webhook.sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, BODY),
            signature
        );
        let h = headers("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367553", signature);
        assert_eq!(webhook.verify_at(BODY, &h, 1649367553), Ok(()));
        assert_eq!(
            webhook.verify_at(b"{}", &h, 1649367553),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn one_matching_signature_among_several_is_enough() {
        let webhook = Webhook::new(SECRET).unwrap();
        let other = Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let both = format!(
            "{} {}",
            other.sign("msg_1", 100, BODY),
            webhook.sign("msg_1", 100, BODY)
        );
        assert_eq!(webhook.verify_at(BODY, &headers("msg_1", "100", &both), 100), Ok(()));
        let only_other = other.sign("msg_1", 100, BODY);
        assert_eq!(
            webhook.verify_at(BODY, &headers("msg_1", "100", &only_other), 100),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamps_more_than_five_minutes_off_are_refused() {
        let webhook = Webhook::new(SECRET).unwrap();
        let signed = |t: i64| headers("msg_1", &t.to_string(), &webhook.sign("msg_1", t, BODY));
        assert!(webhook.verify_at(BODY, &signed(1000), 1000 + 300).is_ok());
        assert_eq!(
            webhook.verify_at(BODY, &signed(1000), 1000 + 301),
            Err(VerifyError::TooOld(301))
        );
        assert_eq!(
            webhook.verify_at(BODY, &signed(1000), 1000 - 301),
            Err(VerifyError::TooNew(301))
        );
    }

    #[test]
    fn missing_headers_and_bad_secrets_have_their_own_errors() {
        let webhook = Webhook::new(SECRET).unwrap();
        assert_eq!(
            webhook.verify_at(BODY, &HeaderMap::new(), 0),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            webhook.verify_at(BODY, &headers("m", "soon", "v1,x"), 0),
            Err(VerifyError::InvalidTimestamp)
        );
        assert_eq!(
            Webhook::new("whsec_not base64!").unwrap_err(),
            VerifyError::InvalidSecret
        );
        let far = headers("m", &i64::MIN.to_string(), "v1,x");
        let overflowing = webhook.verify_at(BODY, &far, i64::MAX);
        assert!(
            matches!(overflowing, Err(VerifyError::TooOld(_))),
            "no overflow: {overflowing:?}"
        );
        assert!(!format!("{webhook:?}").contains("C2FV"));
    }

    #[test]
    fn signatures_made_by_the_standardwebhooks_crate_verify() {
        let theirs = standardwebhooks::Webhook::new(SECRET).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let signature = theirs.sign("msg_theirs", now, BODY).unwrap();
        let h = headers("msg_theirs", &now.to_string(), &signature);
        assert_eq!(Webhook::new(SECRET).unwrap().verify(BODY, &h), Ok(()));
    }
}
