//! Typed shapes of the answers the tests read most: the tokens of a sign-in, a user, a page of
//! a list, an error. Each mirrors a selection made by the helpers (`REGISTER`, `LOGIN`,
//! `REFRESH`, `ME`) or by a test's own query, field for field: a field that is missing (or of
//! another type) fails the test where the answer is read, instead of comparing as `null`.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The user fields every helper selects (`USER_FIELDS`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub role: Role,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    User,
    Admin,
}

/// An `AuthPayload` as the helpers select it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthPayload {
    /// `null` when the session travels in cookies.
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub token_type: String,
    pub expires_in: i64,
    pub user: User,
}

impl AuthPayload {
    /// The access token of a bearer client's answer.
    pub fn access(&self) -> String {
        self.access_token
            .clone()
            .unwrap_or_else(|| panic!("no access token in {self:#?}"))
    }

    /// The refresh token of a bearer client's answer.
    pub fn refresh(&self) -> String {
        self.refresh_token
            .clone()
            .unwrap_or_else(|| panic!("no refresh token in {self:#?}"))
    }

    /// The access and refresh tokens of a bearer client's answer.
    pub fn tokens(&self) -> (String, String) {
        (self.access(), self.refresh())
    }
}

/// A Relay connection, with every field of `pageInfo` selected.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connection<N> {
    pub total_count: i64,
    pub page_info: PageInfo,
    pub edges: Vec<Edge<N>>,
}

impl<N> Connection<N> {
    /// The nodes of the page, in order.
    pub fn nodes(&self) -> Vec<&N> {
        self.edges.iter().map(|edge| &edge.node).collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge<N> {
    pub cursor: String,
    pub node: N,
}

/// A session of the `sessions` list, every field selected.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Session {
    pub id: String,
    pub current: bool,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// A GraphQL error, with the extensions the API sets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GraphqlError {
    pub message: String,
    pub extensions: Extensions,
}

/// `extensions` of an error: `code` always, the rest where the API documents them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Extensions {
    pub code: String,
    /// The input field a `BAD_USER_INPUT` is about.
    pub field: Option<String>,
    /// Why a `FORBIDDEN` (`MFA_REQUIRED`, `REAUTHENTICATION_REQUIRED`, …).
    pub reason: Option<String>,
    /// The ticket of an `MFA_REQUIRED` sign-in.
    pub mfa_ticket: Option<String>,
    /// Seconds to wait after `RATE_LIMITED` or `SERVICE_UNAVAILABLE`.
    pub retry_after: Option<u64>,
    /// The request's id, on internal and unavailable errors.
    pub request_id: Option<String>,
}

/// `data.<field>` of an answer that has no errors, as `T`.
pub fn data<T: DeserializeOwned>(body: &Value, field: &str) -> T {
    assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
    T::deserialize(&body["data"][field]).unwrap_or_else(|e| {
        let shape = std::any::type_name::<T>();
        panic!("data.{field} is not a {shape}: {e}\n{body:#}")
    })
}

/// The only error of an answer.
pub fn only_error(body: &Value) -> GraphqlError {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("expected errors: {body:#}"));
    assert_eq!(errors.len(), 1, "expected one error: {body:#}");
    GraphqlError::deserialize(&errors[0])
        .unwrap_or_else(|e| panic!("an error of another shape: {e}\n{body:#}"))
}
