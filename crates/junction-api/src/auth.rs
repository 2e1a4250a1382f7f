//! Bearer-token authentication: JWTs checked against pinned algorithms and configured keys.
//!
//! Rules (RFC 8725, OWASP JWT cheat sheet): the accepted algorithms are fixed by configuration
//! and never mix shared-secret with public-key algorithms; `alg: none` never verifies; `kid`
//! only selects among keys already configured; keys named in the token itself (`jwk`, `jku`,
//! `x5u`, `x5c`) are refused; `exp`, `iss`, `aud` and `sub` are required; `nbf` is honoured.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use junction_domain::{Principal, Role};
use serde::{Deserialize, Serialize};

use crate::revocation::Revocations;

/// The claims Junction reads and, for `junction token`, writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Where verification keys come from.
pub enum KeySource {
    /// One shared secret for HS256.
    SharedSecret(Vec<u8>),
    /// A JWKS document's public keys, selected by `kid`.
    Jwks(String),
}

/// Why a token was refused. The message is safe to show: it never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token in the Authorization header")]
    Missing,
    #[error("token refused: {0}")]
    Refused(String),
}

/// Verifies tokens, and issues them when the key is a shared secret.
pub struct Authenticator {
    algorithms: Vec<Algorithm>,
    keys: Keys,
    issuer: String,
    audience: String,
    leeway_secs: u64,
    /// Longest lifetime (`exp - iat`) accepted, in seconds.
    max_lifetime_secs: Option<i64>,
    /// Tokens withdrawn before they expire, checked on every use.
    revocations: Arc<Revocations>,
    /// Tokens already verified, by their exact text, with what they proved. A caller sends the
    /// same token with every request until it expires; its signature need be checked once.
    verified: quick_cache::sync::Cache<Box<str>, TokenInfo>,
}

/// What a verified token proved, and the claims that bound it.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub principal: Principal,
    pub exp: i64,
    pub nbf: Option<i64>,
    pub iat: i64,
    pub jti: Option<String>,
}

type Verified = TokenInfo;

impl Verified {
    /// The same test the full verification applies to `exp` and `nbf`, with the same leeway.
    fn current(&self, now: i64, leeway: i64) -> bool {
        self.exp >= now - leeway && self.nbf.is_none_or(|nbf| nbf <= now + leeway)
    }
}

/// How many verified tokens are remembered.
const VERIFIED_CAPACITY: usize = 10_000;

/// Longer tokens are verified every time rather than remembered.
const MAX_REMEMBERED_LEN: usize = 4_096;

enum Keys {
    Shared {
        decoding: DecodingKey,
        encoding: EncodingKey,
    },
    ByKid(HashMap<String, (DecodingKey, Option<Algorithm>)>),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.algorithms)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Longest `kid` looked up.
const MAX_KID_LEN: usize = 128;

impl Authenticator {
    /// Builds an authenticator. `algorithms` must all belong to the key source's family.
    pub fn new(
        source: KeySource,
        algorithms: Vec<Algorithm>,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, String> {
        if algorithms.is_empty() {
            return Err("at least one algorithm must be accepted".into());
        }
        let keys = match source {
            KeySource::SharedSecret(secret) => {
                if let Some(a) = algorithms.iter().find(|a| **a != Algorithm::HS256) {
                    return Err(format!("a shared secret verifies only HS256, not {a:?}"));
                }
                if secret.len() < 32 {
                    return Err("the shared secret must be at least 32 bytes".into());
                }
                Keys::Shared {
                    decoding: DecodingKey::from_secret(&secret),
                    encoding: EncodingKey::from_secret(&secret),
                }
            }
            KeySource::Jwks(json) => {
                if let Some(a) = algorithms
                    .iter()
                    .find(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
                {
                    return Err(format!(
                        "{a:?} needs a shared secret; a JWKS file holds public keys only"
                    ));
                }
                let set: JwkSet = serde_json::from_str(&json)
                    .map_err(|e| format!("the JWKS file is not valid: {e}"))?;
                let mut by_kid = HashMap::new();
                for jwk in &set.keys {
                    let kid = jwk
                        .common
                        .key_id
                        .clone()
                        .ok_or("every key in the JWKS file needs a `kid`")?;
                    let key = DecodingKey::from_jwk(jwk)
                        .map_err(|e| format!("key `{kid}` cannot be used: {e}"))?;
                    let alg = jwk
                        .common
                        .key_algorithm
                        .map(|k| k.to_string().parse::<Algorithm>())
                        .transpose()
                        .ok()
                        .flatten();
                    by_kid.insert(kid, (key, alg));
                }
                if by_kid.is_empty() {
                    return Err("the JWKS file has no keys".into());
                }
                Keys::ByKid(by_kid)
            }
        };
        Ok(Authenticator {
            algorithms,
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_secs: 30,
            max_lifetime_secs: None,
            revocations: Arc::default(),
            verified: quick_cache::sync::Cache::new(VERIFIED_CAPACITY),
        })
    }

    /// Refuses tokens that live longer than `secs` (`exp - iat`).
    pub fn with_max_lifetime(mut self, secs: u64) -> Self {
        self.max_lifetime_secs = Some(secs as i64);
        self
    }

    /// Checks every token against `revocations`.
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        self.revocations = revocations;
        self
    }

    /// The revocation list this authenticator checks.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    /// Checks a token and returns who it speaks for, with its expiry (Unix seconds).
    pub fn verify(&self, token: &str) -> Result<(Principal, i64), AuthError> {
        self.verify_token(token).map(|v| (v.principal, v.exp))
    }

    /// Checks a token and returns what it proved.
    pub fn verify_token(&self, token: &str) -> Result<TokenInfo, AuthError> {
        let leeway = self.leeway_secs as i64;
        let verified = match self.verified.get(token) {
            Some(known) if known.current(chrono::Utc::now().timestamp(), leeway) => known,
            // Not seen, or no longer current: the full check, which also says why it fails.
            _ => {
                let verified = self.verify_fully(token)?;
                if token.len() <= MAX_REMEMBERED_LEN {
                    self.verified.insert(token.into(), verified.clone());
                }
                verified
            }
        };
        if self.is_revoked(&verified) {
            return Err(AuthError::Refused("token has been revoked".into()));
        }
        Ok(verified)
    }

    /// Whether `token` has been revoked since it was verified.
    pub fn is_revoked(&self, token: &TokenInfo) -> bool {
        self.revocations
            .is_revoked(&token.principal.subject, token.jti.as_deref(), token.iat)
    }

    fn verify_fully(&self, token: &str) -> Result<Verified, AuthError> {
        let refuse = |why: &str| AuthError::Refused(why.to_string());
        let header =
            decode_header(token).map_err(|_| refuse("malformed token or unsupported algorithm"))?;
        if header.jwk.is_some()
            || header.jku.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
        {
            return Err(refuse("keys named in the token header are not accepted"));
        }
        if header.crit.is_some() {
            return Err(refuse("critical header extensions are not supported"));
        }
        if !self.algorithms.contains(&header.alg) {
            return Err(AuthError::Refused(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = match &self.keys {
            Keys::Shared { decoding, .. } => decoding,
            Keys::ByKid(keys) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| refuse("token has no `kid`"))?;
                if kid.len() > MAX_KID_LEN {
                    return Err(refuse("`kid` is too long"));
                }
                let (key, alg) = keys.get(kid).ok_or_else(|| refuse("unknown `kid`"))?;
                if alg.is_some_and(|a| a != header.alg) {
                    return Err(refuse("the token's algorithm does not match its key"));
                }
                key
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway_secs;
        let data = decode::<Claims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            AuthError::Refused(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "token has expired",
                    ErrorKind::ImmatureSignature => "token is not valid yet",
                    ErrorKind::InvalidIssuer => "wrong issuer",
                    ErrorKind::InvalidAudience => "wrong audience",
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::MissingRequiredClaim(_) => {
                        "a required claim (exp, iss, aud, sub) is missing"
                    }
                    ErrorKind::InvalidAlgorithm => "algorithm does not match the key",
                    _ => "token could not be verified",
                }
                .to_string(),
            )
        })?;
        let claims = data.claims;
        if claims.sub.trim().is_empty() {
            return Err(refuse("empty subject"));
        }
        if claims.iat > chrono::Utc::now().timestamp() + self.leeway_secs as i64 {
            return Err(refuse("token was issued in the future (`iat`)"));
        }
        if let Some(max) = self.max_lifetime_secs
            && claims.exp.saturating_sub(claims.iat) > max
        {
            return Err(AuthError::Refused(format!(
                "token lives longer (exp - iat) than the {max} s this server accepts"
            )));
        }
        let roles = claims
            .roles
            .iter()
            .map(|r| {
                Role::parse(r).ok_or_else(|| {
                    AuthError::Refused(format!("unknown role `{}`", truncate(r, 32)))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Verified {
            principal: Principal::new(claims.sub, claims.agency, roles),
            exp: claims.exp,
            nbf: claims.nbf,
            iat: claims.iat,
            jti: claims.jti.map(|j| truncate(&j, 128)),
        })
    }

    /// Issues a token for `subject`, valid for `ttl`. Only a shared-secret authenticator can.
    pub fn issue(
        &self,
        subject: &str,
        agency: Option<&str>,
        roles: &[Role],
        ttl: Duration,
    ) -> Result<String, String> {
        let Keys::Shared { encoding, .. } = &self.keys else {
            return Err("tokens can be issued only with a shared secret (HS256); use your identity provider".into());
        };
        if let Some(max) = self.max_lifetime_secs
            && ttl.as_secs() as i64 > max
        {
            return Err(format!(
                "a lifetime of {} s is over the {max} s this server accepts ([auth] max_token_lifetime_secs)",
                ttl.as_secs()
            ));
        }
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: subject.into(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            nbf: None,
            agency: agency.map(String::from),
            roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
        };
        encode(&Header::new(Algorithm::HS256), &claims, encoding).map_err(|e| e.to_string())
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The token of an `Authorization` value: the scheme `Bearer`, in any case, then the token.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(char::is_whitespace)?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64_like::b64;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "  BeArEr   abc  "] {
            assert_eq!(bearer(value), Some("abc"), "{value}");
        }
        for value in ["Basic abc", "Bearer", "Bearer   ", "abc", "Bearerabc"] {
            assert_eq!(bearer(value), None, "{value}");
        }
    }

    fn auth() -> Authenticator {
        Authenticator::new(
            KeySource::SharedSecret(SECRET.to_vec()),
            vec![Algorithm::HS256],
            "junction",
            "junction",
        )
        .unwrap()
    }

    fn claims(exp_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: "alice".into(),
            iss: "junction".into(),
            aud: "junction".into(),
            exp: now + exp_offset,
            iat: now,
            nbf: None,
            agency: Some("highways".into()),
            roles: vec!["officer".into()],
            jti: None,
        }
    }

    fn sign(header: &Header, c: &Claims) -> String {
        encode(header, c, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    fn refused(token: &str) -> String {
        match auth().verify(token) {
            Err(AuthError::Refused(why)) => why,
            other => panic!("expected refusal, got {other:?}"),
        }
    }

    #[test]
    fn accepts_its_own_tokens() {
        let t = auth()
            .issue("bob", None, &[Role::Admin], Duration::from_secs(60))
            .unwrap();
        let (p, _) = auth().verify(&t).unwrap();
        assert_eq!(p.subject, "bob");
        assert_eq!(p.roles, vec![Role::Admin]);
    }

    #[test]
    fn long_lived_and_future_dated_tokens_are_refused() {
        let auth = auth().with_max_lifetime(3_600);
        let why = |t: &str| match auth.verify(t) {
            Err(AuthError::Refused(why)) => why,
            other => panic!("expected refusal, got {other:?}"),
        };
        let long = sign(&Header::new(Algorithm::HS256), &claims(7_200));
        assert!(why(&long).contains("3600 s"), "{}", why(&long));
        let mut future = claims(600);
        future.iat += 3_600;
        let future = sign(&Header::new(Algorithm::HS256), &future);
        assert!(why(&future).contains("future"), "{}", why(&future));
        assert!(
            auth.verify(&sign(&Header::new(Algorithm::HS256), &claims(3_600)))
                .is_ok()
        );
        // Nor does it issue what it would refuse.
        let refused = auth.issue("x", None, &[], Duration::from_secs(7_200));
        assert!(refused.unwrap_err().contains("max_token_lifetime_secs"));
    }

    #[test]
    fn a_remembered_token_is_held_to_its_times_and_its_exact_text() {
        let auth = auth();
        let token = sign(&Header::new(Algorithm::HS256), &claims(60));
        assert_eq!(auth.verify(&token).unwrap().0.subject, "alice");
        assert_eq!(auth.verified.len(), 1);
        assert_eq!(auth.verify(&token).unwrap().0.subject, "alice");

        // One character changed in the signature: not the remembered token, so checked, and bad.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(auth.verify(&forged).is_err());

        // Remembered times are judged as the full check judges them, leeway (30 s) included.
        let now = 1_000_000;
        let at = |exp, nbf| Verified {
            principal: auth.verify(&token).unwrap().0,
            exp,
            nbf,
            iat: now - 60,
            jti: None,
        };
        assert!(at(now - 30, None).current(now, 30));
        assert!(!at(now - 31, None).current(now, 30));
        assert!(at(now + 60, Some(now + 30)).current(now, 30));
        assert!(!at(now + 60, Some(now + 31)).current(now, 30));
    }

    #[test]
    fn refuses_bad_tokens() {
        assert_eq!(
            refused(&sign(&Header::new(Algorithm::HS256), &claims(-120))),
            "token has expired"
        );
        let mut c = claims(60);
        c.iss = "elsewhere".into();
        assert_eq!(
            refused(&sign(&Header::new(Algorithm::HS256), &c)),
            "wrong issuer"
        );
        let mut c = claims(60);
        c.aud = "other".into();
        assert_eq!(
            refused(&sign(&Header::new(Algorithm::HS256), &c)),
            "wrong audience"
        );
        assert_eq!(
            refused(&sign(&Header::new(Algorithm::HS384), &claims(60))),
            "algorithm HS384 is not accepted"
        );
        let mut h = Header::new(Algorithm::HS256);
        h.jku = Some("https://attacker.example/keys".into());
        assert_eq!(
            refused(&sign(&h, &claims(60))),
            "keys named in the token header are not accepted"
        );
        let mut c = claims(60);
        c.roles = vec!["superuser".into()];
        assert_eq!(
            refused(&sign(&Header::new(Algorithm::HS256), &c)),
            "unknown role `superuser`"
        );
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &claims(60),
            &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
        )
        .unwrap();
        assert_eq!(refused(&forged), "bad signature");
    }

    #[test]
    fn refuses_alg_none() {
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64(serde_json::to_string(&claims(60)).unwrap().as_bytes());
        assert_eq!(
            refused(&format!("{header}.{body}.")),
            "malformed token or unsupported algorithm"
        );
    }

    #[test]
    fn refuses_mixed_algorithm_families() {
        let e = Authenticator::new(
            KeySource::SharedSecret(SECRET.to_vec()),
            vec![Algorithm::RS256],
            "i",
            "a",
        )
        .unwrap_err();
        assert!(e.contains("only HS256"));
        let e = Authenticator::new(
            KeySource::Jwks(r#"{"keys":[]}"#.into()),
            vec![Algorithm::HS256],
            "i",
            "a",
        )
        .unwrap_err();
        assert!(e.contains("shared secret"));
    }

    /// Unpadded URL-safe base64, enough to hand-build a token.
    mod base64_like {
        pub fn b64(input: &[u8]) -> String {
            const T: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in input.chunks(3) {
                let n = chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
                for i in 0..=chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }
}
