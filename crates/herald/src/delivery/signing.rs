//! Standard Webhooks v1 signatures: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`,
//! keyed with the base64-decoded part of a `whsec_` secret.

use herald_receiver::Webhook;

/// A signing key, decoded once from its `whsec_…` form. Signing is the receivers' crate's
/// own code, so that what Herald signs and what receivers verify cannot drift apart.
#[derive(Clone, Debug)]
pub struct SigningKey(Webhook);

impl SigningKey {
    /// Decodes `whsec_<base64>`; `None` if the secret is not of that form.
    pub fn from_secret(secret: &str) -> Option<SigningKey> {
        Webhook::new(secret).ok().map(SigningKey)
    }

    /// `v1,<signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.0.sign(id, timestamp, body)
    }
}

/// The `webhook-signature` header: one signature per key, space-separated (several while a
/// rotated secret is still honoured).
pub fn signature_header(keys: &[SigningKey], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks specification.
    #[test]
    fn the_standard_webhooks_test_vector_holds() {
        let key = SigningKey::from_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let signature = key.sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body);
        assert_eq!(signature, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn several_keys_give_several_signatures() {
        let a = SigningKey::from_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let b = SigningKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let header = signature_header(&[a.clone(), b], "msg_1", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], a.sign("msg_1", 1, b"{}"));
        assert_ne!(parts[0], parts[1]);
    }
}
