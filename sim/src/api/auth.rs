//! OAuth2 client credentials: the token endpoint, the tokens it issues, and the
//! authentication of every other request.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::Rng;
use serde_json::json;

use super::faults::{Endpoint, Prepared, Roll};
use super::problems::{Problems, bad_query};
use super::{Version, first, form_pairs, json_value, not_found_at, query_pairs};
use crate::{Grant, Simulator, State as SimState};

/// Most access tokens held at once; the oldest give way (a client fetching a token per request
/// must not grow the simulator without bound).
const MAX_GRANTS: usize = 10_000;

/// Standard base64 with or without padding: clients differ in whether they pad Basic
/// credentials, and lenient about stray low bits as servers usually are.
const BASIC_CREDENTIALS: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// 401 for a bearer token that is missing, unknown, expired or revoked.
pub(super) fn invalid_token(description: &str) -> Response {
    let mut response = json_value(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "invalid_token", "error_description": description}),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

/// 401 for a token request with wrong, missing or revoked client credentials.
fn invalid_client() -> Response {
    let mut response = json_value(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "invalid_client", "error_description": "Bad client credentials"}),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"oauth2/client\""),
    );
    response
}

pub(super) enum Authorization {
    Basic(String, String),
    Bearer(String),
}

pub(super) fn authorization(headers: &HeaderMap) -> Option<Authorization> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(Authorization::Bearer(rest.to_owned()))
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(BASIC_CREDENTIALS.decode(rest).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some(Authorization::Basic(id.to_owned(), secret.to_owned()))
    } else {
        None
    }
}

/// `POST /api/{version}/oauth/token`.
pub(super) async fn token(
    State(sim): State<Simulator>,
    Path(version): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let prepared = {
        let mut state = sim.state();
        state.answer_token(&version, &headers, &uri, &body)
    };
    prepared.deliver().await
}

impl SimState {
    fn answer_token(
        &mut self,
        version: &str,
        headers: &HeaderMap,
        uri: &Uri,
        body: &[u8],
    ) -> Prepared {
        let now = self.advance();
        if Version::parse(version).is_none() {
            return Prepared::now(not_found_at(now, uri.path()));
        }
        let pairs = match (query_pairs(uri), form_pairs(headers, body)) {
            (Ok(mut pairs), Ok(form)) => {
                pairs.extend(form);
                pairs
            }
            (Err(e), _) | (_, Err(e)) => return Prepared::now(bad_query(e)),
        };
        let (id, secret) = match authorization(headers) {
            Some(Authorization::Basic(id, secret)) => (Some(id), Some(secret)),
            _ => (
                first(&pairs, "client_id").map(str::to_owned),
                first(&pairs, "client_secret").map(str::to_owned),
            ),
        };
        let valid = !self.config.faults.revoke_credentials
            && id.as_deref() == Some(self.config.client_id.as_str())
            && secret.as_deref() == Some(self.config.client_secret.expose());
        if !valid {
            return Prepared::now(invalid_client());
        }
        if let Some(grant) = first(&pairs, "grant_type") {
            if grant != "client_credentials" {
                let mut problems = Problems::default();
                problems.add(
                    "grant_type",
                    "UNSUPPORTED_GRANT_TYPE",
                    format!("grant_type must be client_credentials, got {grant:?}"),
                    json!({"allowed": {"values": ["client_credentials"]}}),
                );
                return Prepared::now(problems.into_response());
            }
        }
        let roll = Roll::draw(&self.config.faults, Endpoint::Token);
        if let Some(response) = roll.failure_response() {
            return Prepared {
                response,
                delay: roll.delay,
            };
        }
        let token = self.grant(self.config.client_id.clone());
        let expires_in = self.config.token_ttl.as_secs().min(i32::MAX as u64);
        let body = json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": expires_in,
            "scope": "read write",
        });
        roll.ok(body.to_string().into_bytes())
    }

    /// Issues an access token for `client`.
    fn grant(&mut self, client: String) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut rng = rand::rng();
        let token: String = (0..43)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        let now = tokio::time::Instant::now();
        self.grants.retain(|_, g| g.expires > now);
        while self.grants.len() >= MAX_GRANTS {
            let oldest = self
                .grants
                .iter()
                .min_by_key(|(_, g)| g.expires)
                .map(|(t, _)| t.clone());
            match oldest {
                Some(t) => self.grants.remove(&t),
                None => break,
            };
        }
        self.grants.insert(
            token.clone(),
            Grant {
                client,
                expires: now + self.config.token_ttl,
            },
        );
        token
    }

    /// Checks the bearer token of a request; the refusal's description if it is not good.
    pub(super) fn authenticate(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let Some(Authorization::Bearer(token)) = authorization(headers) else {
            return Err("Full authentication is required to access this resource");
        };
        if self.config.faults.revoke_credentials {
            return Err("Access token has been revoked");
        }
        match self.grants.get(&token) {
            Some(grant) if grant.expires > tokio::time::Instant::now() => Ok(()),
            Some(_) => Err("Access token expired"),
            None => Err("Invalid access token"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode() {
        let basic = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            match authorization(&headers) {
                Some(Authorization::Basic(id, secret)) => Some((id, secret)),
                _ => None,
            }
        };
        let demo = |secret: &str| Some(("demo".to_owned(), secret.to_owned()));
        assert_eq!(basic("Basic ZGVtbzpkZW1v"), demo("demo"));
        assert_eq!(basic("basic ZGVtbzpkZW1vMQ"), demo("demo1"), "unpadded");
        assert_eq!(basic("Basic ZGVtbzpkZW1vMQ=="), demo("demo1"));
        assert_eq!(basic("Basic ZGVtbzpkZW1v*"), None);
        assert_eq!(basic("Basic ZGVtbw=="), None, "no colon");
    }
}
