//! What an access token says beyond who and which session: the claims a GraphQL engine reads
//! (Hasura's namespace, PostGraphile's `role`), and what the claims hook adds. Computed here,
//! from the account and the session, so the token adapter only signs what it is given, and
//! the introspection endpoint and the Hasura webhook answer the very same claims.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::domain::{AuditKind, Authentication, Role, SessionId, User};

use super::audit::{AuditTrail, Record};
use super::error::ServiceError;
use super::ports::{ClaimsHook, ClaimsHookRequest, CustomClaims, HookError, TokenEvent};

/// Claims the token adapter writes itself (RFC 7519's registered ones, the session, how it
/// was proved): nothing computed here may carry these names.
pub const REGISTERED_CLAIMS: [&str; 10] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "sid",
    "amr",
    "auth_time",
];

/// The most the claims hook may add to a token, as compact JSON. A browser keeps the access
/// token in a cookie (4 KB with its name and attributes); the registered claims, an engine
/// preset and the signature take about 700 bytes of it in base64url.
pub const MAX_HOOK_CLAIMS_BYTES: usize = 1024;

const HASURA_ALLOWED_ROLES: &str = "x-hasura-allowed-roles";
const HASURA_DEFAULT_ROLE: &str = "x-hasura-default-role";
const HASURA_USER_ID: &str = "x-hasura-user-id";

/// Which GraphQL engine's claims tokens carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimsPreset {
    /// None: the registered claims, and what the hook adds.
    None,
    /// Hasura: an object under `namespace` with `x-hasura-allowed-roles`,
    /// `x-hasura-default-role`, `x-hasura-user-id` and the hook's `x-hasura-*` values.
    Hasura { namespace: String },
    /// PostGraphile (PostgreSQL row-level security): `role`, the database role of the user's
    /// role, and `user_id`; PostGraphile hands each to SQL as `jwt.claims.<name>`.
    Postgraphile { roles: DatabaseRoles },
}

/// The database role each application role acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRoles {
    pub user: String,
    pub admin: String,
}

impl DatabaseRoles {
    pub fn of(&self, role: Role) -> &str {
        match role {
            Role::User => &self.user,
            Role::Admin => &self.admin,
        }
    }
}

/// What to do when the claims hook does not give an answer that can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookFailure {
    /// The sign-in, refresh or step-up fails (`SERVICE_UNAVAILABLE`): no token is signed
    /// without the claims the engine's permissions may depend on.
    Closed,
    /// The token is signed without the hook's claims, and the failure is counted.
    Open,
}

/// How claims are computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsPolicy {
    pub preset: ClaimsPreset,
    pub hook_failure: HookFailure,
}

impl Default for ClaimsPolicy {
    fn default() -> Self {
        Self {
            preset: ClaimsPreset::None,
            hook_failure: HookFailure::Closed,
        }
    }
}

/// The claims hook's figures since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct HookStats {
    calls: AtomicU64,
    failures: AtomicU64,
    /// Microseconds spent waiting for the hook, summed.
    latency_micros: AtomicU64,
}

impl HookStats {
    /// Calls made, failed ones included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
    /// Calls without a usable answer (timeouts, errors, refused answers).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
    /// Time spent waiting for the hook, summed over every call.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(Ordering::Relaxed))
    }
}

/// Computes the claims of the access tokens the session service signs.
pub struct TokenClaims {
    policy: ClaimsPolicy,
    hook: Option<Arc<dyn ClaimsHook>>,
    audit: AuditTrail,
    stats: Arc<HookStats>,
}

impl TokenClaims {
    pub fn new(policy: ClaimsPolicy, hook: Option<Arc<dyn ClaimsHook>>, audit: AuditTrail) -> Self {
        Self {
            policy,
            hook,
            audit,
            stats: Arc::default(),
        }
    }

    /// The hook's figures.
    pub fn stats(&self) -> Arc<HookStats> {
        self.stats.clone()
    }

    /// The claims of a token about to be signed for `user`'s session: the preset's, then the
    /// hook's where they take no name already taken. Called only once the credentials are
    /// accepted, so the hook never learns of a refused sign-in.
    pub async fn for_token(
        &self,
        user: &User,
        session_id: SessionId,
        authenticated: Authentication,
        event: TokenEvent,
    ) -> Result<CustomClaims, ServiceError> {
        let mut claims = self.preset_claims(user);
        if let Some(hook) = &self.hook {
            let request = ClaimsHookRequest {
                event,
                user_id: user.id,
                email: user.email.as_str().to_owned(),
                role: user.role,
                session_id,
                authenticated,
            };
            let started = Instant::now();
            let answer = hook.claims(&request).await.and_then(|added| {
                let merged = self.merge(claims.clone(), added);
                let size = serde_json::to_vec(&merged).map_or(usize::MAX, |json| json.len());
                let preset_size = serde_json::to_vec(&claims).map_or(0, |json| json.len());
                if size.saturating_sub(preset_size) > MAX_HOOK_CLAIMS_BYTES {
                    Err(HookError::TooLarge)
                } else {
                    Ok(merged)
                }
            });
            self.stats.calls.fetch_add(1, Ordering::Relaxed);
            self.stats.latency_micros.fetch_add(
                u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            match answer {
                Ok(merged) => claims = merged,
                Err(error) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, user_id = %user.id, "claims hook failed");
                    self.audit.record(Record {
                        kind: AuditKind::ClaimsHookFailed,
                        actor: None,
                        subject: Some(user.id),
                        client: None,
                        detail: Some(format!("{} ({})", error, event.as_str())),
                    });
                    if self.policy.hook_failure == HookFailure::Closed {
                        return Err(ServiceError::Unavailable {
                            retry_after_secs: super::error::UNAVAILABLE_RETRY_AFTER_SECS,
                            source: Box::new(error),
                        });
                    }
                }
            }
        }
        Ok(claims)
    }

    /// The preset's claims for `user`: what the account says now.
    pub fn preset_claims(&self, user: &User) -> CustomClaims {
        let mut claims = Map::new();
        match &self.policy.preset {
            ClaimsPreset::None => {}
            ClaimsPreset::Hasura { namespace } => {
                let allowed: Vec<Value> = match user.role {
                    Role::User => vec!["user".into()],
                    Role::Admin => vec!["admin".into(), "user".into()],
                };
                let mut hasura = Map::new();
                hasura.insert(HASURA_ALLOWED_ROLES.into(), Value::Array(allowed));
                hasura.insert(HASURA_DEFAULT_ROLE.into(), user.role.as_str().into());
                hasura.insert(HASURA_USER_ID.into(), user.id.to_string().into());
                claims.insert(namespace.clone(), Value::Object(hasura));
            }
            ClaimsPreset::Postgraphile { roles } => {
                claims.insert("role".into(), roles.of(user.role).into());
                claims.insert("user_id".into(), user.id.to_string().into());
            }
        }
        claims
    }

    /// Adds the hook's claims to `claims`. Add only: a registered claim, a name the preset
    /// already set or a Hasura variable the preset computes is dropped (and logged), so a hook
    /// can never change who the token is for, its session, its lifetime or its role. Under the
    /// Hasura preset, `x-hasura-*` names go into the namespace and must be strings (Hasura's
    /// session variables are).
    fn merge(&self, mut claims: CustomClaims, added: CustomClaims) -> CustomClaims {
        let namespace = match &self.policy.preset {
            ClaimsPreset::Hasura { namespace } => Some(namespace.clone()),
            _ => None,
        };
        for (name, value) in added {
            let lower = name.to_ascii_lowercase();
            if REGISTERED_CLAIMS.contains(&lower.as_str()) || claims.contains_key(&name) {
                tracing::warn!(claim = %name, "claims hook tried to set a claim it may not: dropped");
                continue;
            }
            match (&namespace, lower.starts_with("x-hasura-")) {
                (Some(namespace), true) => {
                    let reserved = [HASURA_ALLOWED_ROLES, HASURA_DEFAULT_ROLE, HASURA_USER_ID];
                    let Some(Value::Object(hasura)) = claims.get_mut(namespace) else {
                        continue;
                    };
                    if reserved.contains(&lower.as_str())
                        || hasura.contains_key(&lower)
                        || !value.is_string()
                    {
                        tracing::warn!(claim = %name, "claims hook sent a Hasura variable it may not: dropped");
                        continue;
                    }
                    hasura.insert(lower, value);
                }
                _ => {
                    claims.insert(name, value);
                }
            }
        }
        claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::ports::AuditLog;
    use crate::application::ports::SystemClock;
    use crate::domain::{AuditEvent, AuthMethods, Email, PasswordHash, UserId};
    use async_trait::async_trait;
    use serde_json::json;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Events(Mutex<Vec<AuditEvent>>);
    impl AuditLog for Events {
        fn record(&self, event: AuditEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    /// A hook that answers what it is given: a fault-injecting stub (the HTTP adapter is
    /// tested over a real server in tests/api/claims.rs).
    struct Answers(Result<Value, HookError>, Mutex<Vec<ClaimsHookRequest>>);
    #[async_trait]
    impl ClaimsHook for Answers {
        async fn claims(&self, request: &ClaimsHookRequest) -> Result<CustomClaims, HookError> {
            self.1.lock().unwrap().push(request.clone());
            match &self.0 {
                Ok(Value::Object(map)) => Ok(map.clone()),
                Ok(_) => Err(HookError::Invalid("not an object".into())),
                Err(e) => Err(e.clone()),
            }
        }
    }

    fn user(role: Role) -> User {
        let mut user = User::new(
            Email::parse("ada@example.com").unwrap(),
            None,
            role,
            PasswordHash::new("x".into()),
            None,
            chrono::Utc::now(),
        );
        user.id = UserId::generate();
        user
    }

    fn hasura() -> ClaimsPreset {
        ClaimsPreset::Hasura {
            namespace: "https://hasura.io/jwt/claims".into(),
        }
    }

    fn claims_service(
        preset: ClaimsPreset,
        hook: Option<Result<Value, HookError>>,
        failure: HookFailure,
    ) -> (TokenClaims, Arc<Events>) {
        let events = Arc::new(Events::default());
        let audit = AuditTrail::new(events.clone(), Arc::new(SystemClock));
        let hook =
            hook.map(|answer| Arc::new(Answers(answer, Mutex::default())) as Arc<dyn ClaimsHook>);
        (
            TokenClaims::new(
                ClaimsPolicy {
                    preset,
                    hook_failure: failure,
                },
                hook,
                audit,
            ),
            events,
        )
    }

    async fn claims_of(service: &TokenClaims, user: &User) -> Result<CustomClaims, ServiceError> {
        let authenticated = Authentication {
            at: chrono::Utc::now(),
            methods: AuthMethods::Password,
        };
        service
            .for_token(
                user,
                SessionId::generate(),
                authenticated,
                TokenEvent::SignIn,
            )
            .await
    }

    #[tokio::test]
    async fn hasura_claims_follow_the_role() {
        let (service, _) = claims_service(hasura(), None, HookFailure::Closed);
        let admin = user(Role::Admin);
        let claims = claims_of(&service, &admin).await.unwrap();
        assert_eq!(
            Value::Object(claims),
            json!({"https://hasura.io/jwt/claims": {
                "x-hasura-allowed-roles": ["admin", "user"],
                "x-hasura-default-role": "admin",
                "x-hasura-user-id": admin.id.to_string(),
            }})
        );
        let plain = user(Role::User);
        let claims = claims_of(&service, &plain).await.unwrap();
        assert_eq!(
            claims["https://hasura.io/jwt/claims"]["x-hasura-allowed-roles"],
            json!(["user"])
        );
    }

    #[tokio::test]
    async fn postgraphile_claims_name_the_database_role() {
        let roles = DatabaseRoles {
            user: "app_user".into(),
            admin: "app_admin".into(),
        };
        let (service, _) = claims_service(
            ClaimsPreset::Postgraphile { roles },
            None,
            HookFailure::Closed,
        );
        let admin = user(Role::Admin);
        let claims = claims_of(&service, &admin).await.unwrap();
        assert_eq!(
            Value::Object(claims),
            json!({"role": "app_admin", "user_id": admin.id.to_string()})
        );
        let claims = claims_of(&service, &user(Role::User)).await.unwrap();
        assert_eq!(claims["role"], "app_user");
    }

    #[tokio::test]
    async fn the_hook_adds_but_never_overrides() {
        let answer = json!({
            "sub": "someone-else", "SID": "x", "exp": 9_999_999_999_i64, "amr": ["hwk"],
            "iss": "evil", "aud": "evil", "iat": 0, "jti": "j", "auth_time": 0, "nbf": 0,
            "x-hasura-default-role": "admin",
            "X-Hasura-Allowed-Roles": "admin",
            "x-hasura-user-id": "00000000-0000-0000-0000-000000000000",
            "x-hasura-org-id": "42",
            "x-hasura-not-a-string": 42,
            "https://hasura.io/jwt/claims": {"x-hasura-default-role": "admin"},
            "plan": "pro",
        });
        let (service, _) = claims_service(hasura(), Some(Ok(answer)), HookFailure::Closed);
        let someone = user(Role::User);
        let claims = claims_of(&service, &someone).await.unwrap();
        assert_eq!(
            Value::Object(claims),
            json!({
                "https://hasura.io/jwt/claims": {
                    "x-hasura-allowed-roles": ["user"],
                    "x-hasura-default-role": "user",
                    "x-hasura-user-id": someone.id.to_string(),
                    "x-hasura-org-id": "42",
                },
                "plan": "pro",
            })
        );
    }

    #[tokio::test]
    async fn the_hook_cannot_change_the_database_role() {
        let roles = DatabaseRoles {
            user: "app_user".into(),
            admin: "app_admin".into(),
        };
        let answer = json!({"role": "app_admin", "user_id": "other", "org": "7"});
        let (service, _) = claims_service(
            ClaimsPreset::Postgraphile { roles },
            Some(Ok(answer)),
            HookFailure::Closed,
        );
        let someone = user(Role::User);
        let claims = claims_of(&service, &someone).await.unwrap();
        assert_eq!(
            Value::Object(claims),
            json!({"role": "app_user", "user_id": someone.id.to_string(), "org": "7"})
        );
    }

    #[tokio::test]
    async fn a_failing_hook_fails_closed_and_is_audited_and_counted() {
        let (service, events) =
            claims_service(hasura(), Some(Err(HookError::Timeout)), HookFailure::Closed);
        let error = claims_of(&service, &user(Role::User)).await.unwrap_err();
        assert!(
            matches!(error, ServiceError::Unavailable { .. }),
            "{error:?}"
        );
        assert_eq!(service.stats().failures(), 1);
        assert_eq!(service.stats().calls(), 1);
        let events = events.0.lock().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, AuditKind::ClaimsHookFailed);
    }

    #[tokio::test]
    async fn a_failing_hook_fails_open_with_the_preset_claims_only() {
        let (service, events) = claims_service(
            ClaimsPreset::None,
            Some(Err(HookError::Status(500))),
            HookFailure::Open,
        );
        let claims = claims_of(&service, &user(Role::User)).await.unwrap();
        assert!(claims.is_empty());
        assert_eq!(service.stats().failures(), 1);
        assert_eq!(events.0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn too_many_added_claims_are_a_failure() {
        let big = "x".repeat(MAX_HOOK_CLAIMS_BYTES);
        let (service, _) =
            claims_service(hasura(), Some(Ok(json!({"big": big}))), HookFailure::Open);
        let claims = claims_of(&service, &user(Role::User)).await.unwrap();
        assert!(!claims.contains_key("big"));
        assert_eq!(service.stats().failures(), 1);

        let fits = "x".repeat(MAX_HOOK_CLAIMS_BYTES - 20);
        let (service, _) =
            claims_service(hasura(), Some(Ok(json!({"big": fits}))), HookFailure::Open);
        let claims = claims_of(&service, &user(Role::User)).await.unwrap();
        assert!(claims.contains_key("big"));
        assert_eq!(service.stats().failures(), 0);
    }
}
