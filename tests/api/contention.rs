//! A busy deployment: many clients at once registering, signing in, refreshing (alone and as
//! three tabs racing with one token), changing passwords, signing out, deleting their account
//! while another tab refreshes, and two administrators changing the same accounts, for a few
//! seconds. Every request gets its answer or the documented domain error for what it raced
//! with; none reaches a client as an internal error or as "unavailable" (the database is
//! up: contention must be resolved inside the server), and nothing acknowledged is lost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::helpers::{
    AuthPayload, LOGIN, PASSWORD, REFRESH, REGISTER, TestApp, spawn_app_with, unique_email,
};

/// How long the clients run: long enough for thousands of transactions to overlap, short
/// enough for CI.
const LOAD: Duration = Duration::from_secs(3);

const CHANGE_PASSWORD: &str = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) }";
const LOGOUT: &str = "mutation($i: LogoutInput!) { logout(input: $i) }";
const DELETE_ACCOUNT: &str = "mutation($i: DeleteAccountInput!) { deleteAccount(input: $i) }";
const SET_ROLE: &str = "mutation($i: SetUserRoleInput!) { setUserRole(input: $i) { id } }";
const SUSPEND: &str = "mutation($i: SuspendUserInput!) { suspendUser(input: $i) { id } }";
const UNSUSPEND: &str = "mutation($i: UnsuspendUserInput!) { unsuspendUser(input: $i) { id } }";

/// Every answer, by operation and outcome, and every answer that broke the rules.
#[derive(Default)]
struct Tally {
    outcomes: Mutex<BTreeMap<(&'static str, String), u64>>,
    violations: Mutex<Vec<String>>,
    /// Accounts whose registration was acknowledged and that nobody deleted.
    kept: Mutex<Vec<(String, String)>>,
}

/// One client: the app's address and a tally to report to.
#[derive(Clone)]
struct Client {
    app: Arc<TestApp>,
    tally: Arc<Tally>,
}

impl Client {
    /// Sends one operation. `allowed` are the error codes this operation may meet because of
    /// what it races with; anything else, a status other than 200, or a body that is not a
    /// GraphQL response, is a violation. Returns `data` when there was no error.
    async fn call(
        &self,
        operation: &'static str,
        token: Option<&str>,
        query: &str,
        variables: Value,
        allowed: &[&str],
    ) -> Option<Value> {
        let authorization = token.map(|t| format!("Bearer {t}"));
        let response = self
            .app
            .graphql_response(authorization.as_deref(), query, variables)
            .await;
        let status = response.status();
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(error) => {
                self.violation(format!("{operation}: {status}, not JSON: {error}"));
                return None;
            }
        };
        let outcome = match body["errors"].as_array() {
            None => "ok".to_owned(),
            Some(errors) => errors[0]["extensions"]["code"]
                .as_str()
                .unwrap_or("no code")
                .to_owned(),
        };
        if status != StatusCode::OK || (outcome != "ok" && !allowed.contains(&outcome.as_str())) {
            self.violation(format!("{operation}: {status} {body}"));
        }
        *self
            .tally
            .outcomes
            .lock()
            .unwrap()
            .entry((operation, outcome.clone()))
            .or_default() += 1;
        (outcome == "ok").then(|| body["data"].clone())
    }

    fn violation(&self, what: String) {
        self.tally.violations.lock().unwrap().push(what);
    }

    async fn register(&self, email: &str, password: &str, allowed: &[&str]) -> Option<AuthPayload> {
        let variables = json!({ "input": { "email": email, "password": password } });
        let data = self
            .call("register", None, REGISTER, variables, allowed)
            .await?;
        Some(payload(&data["register"]))
    }

    async fn login(&self, email: &str, password: &str, allowed: &[&str]) -> Option<AuthPayload> {
        let variables = json!({ "input": { "email": email, "password": password } });
        Some(payload(
            &self.call("login", None, LOGIN, variables, allowed).await?["login"],
        ))
    }

    async fn refresh(&self, refresh_token: &str, allowed: &[&str]) -> Option<AuthPayload> {
        let variables = json!({ "input": { "refreshToken": refresh_token } });
        Some(payload(
            &self
                .call("refreshToken", None, REFRESH, variables, allowed)
                .await?["refreshToken"],
        ))
    }

    async fn logout(&self, refresh_token: &str, allowed: &[&str]) {
        let variables = json!({ "i": { "refreshToken": refresh_token } });
        self.call("logout", None, LOGOUT, variables, allowed).await;
    }
}

fn payload(data: &Value) -> AuthPayload {
    AuthPayload::deserialize(data).unwrap_or_else(|e| panic!("not an AuthPayload: {e}: {data}"))
}

/// Signs up new accounts; every fourth tries an address taken a moment ago (CONFLICT).
async fn registrations(client: Client, until: Instant) {
    let mut taken: Option<String> = None;
    let mut round = 0u32;
    while Instant::now() < until {
        round += 1;
        if round.is_multiple_of(4)
            && let Some(email) = &taken
        {
            client.register(email, PASSWORD, &["CONFLICT"]).await;
            continue;
        }
        let email = unique_email();
        if client.register(&email, PASSWORD, &[]).await.is_some() {
            client
                .tally
                .kept
                .lock()
                .unwrap()
                .push((email.clone(), PASSWORD.to_owned()));
            taken = Some(email);
        }
    }
}

/// One account's life in a loop: sign in, refresh twice (once as three tabs racing with the
/// same token), change the password, sign out.
async fn sessions(client: Client, until: Instant) {
    let email = unique_email();
    let Some(_) = client.register(&email, PASSWORD, &[]).await else {
        return;
    };
    let passwords = [PASSWORD, "another horse battery staple"];
    let mut current = 0;
    while Instant::now() < until {
        let Some(signed_in) = client.login(&email, passwords[current], &[]).await else {
            break;
        };
        let (_, refresh) = signed_in.tokens();
        let Some(refreshed) = client.refresh(&refresh, &[]).await else {
            break;
        };
        // Three tabs waking up together: within the reuse grace, each gets a pair.
        let (_, refresh) = refreshed.tokens();
        let (a, b, c) = tokio::join!(
            client.refresh(&refresh, &[]),
            client.refresh(&refresh, &[]),
            client.refresh(&refresh, &[])
        );
        let (Some(a), Some(_), Some(_)) = (a, b, c) else {
            break;
        };
        let (access, refresh) = a.tokens();
        let next = 1 - current;
        let changed = client
            .call(
                "changePassword",
                Some(&access),
                CHANGE_PASSWORD,
                json!({ "i": {
                    "currentPassword": passwords[current],
                    "newPassword": passwords[next],
                } }),
                &[],
            )
            .await;
        if changed.is_some() {
            current = next;
        }
        client.logout(&refresh, &[]).await;
    }
    client
        .tally
        .kept
        .lock()
        .unwrap()
        .push((email, passwords[current].to_owned()));
}

/// Accounts deleted while another tab of theirs refreshes: the refresh either wins (a new
/// pair) or finds the session gone (UNAUTHENTICATED); the deletion always succeeds.
async fn deletions(client: Client, until: Instant) {
    while Instant::now() < until {
        let Some(registered) = client.register(&unique_email(), PASSWORD, &[]).await else {
            continue;
        };
        let (access, refresh) = registered.tokens();
        let delete = client.call(
            "deleteAccount",
            Some(&access),
            DELETE_ACCOUNT,
            json!({ "i": { "password": PASSWORD } }),
            &[],
        );
        let racing = client.refresh(&refresh, &["UNAUTHENTICATED"]);
        tokio::join!(delete, racing);
    }
}

/// Signs in to one of the accounts the administrators keep changing, refreshes, signs out.
/// A suspension in between refuses the sign-in or the refresh (FORBIDDEN) or ends the
/// session (UNAUTHENTICATED).
async fn targeted(client: Client, email: String, until: Instant) {
    while Instant::now() < until {
        let Some(signed_in) = client.login(&email, PASSWORD, &["FORBIDDEN"]).await else {
            continue;
        };
        let (_, refresh) = signed_in.tokens();
        let allowed = ["FORBIDDEN", "UNAUTHENTICATED"];
        let Some(refreshed) = client.refresh(&refresh, &allowed).await else {
            continue;
        };
        client.logout(&refreshed.tokens().1, &allowed).await;
    }
}

/// An administrator promoting, demoting, suspending and reinstating the targets in turn,
/// while another administrator does the same to the same accounts.
async fn administration(client: Client, token: String, targets: Vec<String>, until: Instant) {
    let mut round = 0usize;
    while Instant::now() < until {
        let target = &targets[round % targets.len()];
        let (operation, query, input) = match (round / targets.len()) % 4 {
            0 => (
                "setUserRole",
                SET_ROLE,
                json!({ "userId": target, "role": "ADMIN" }),
            ),
            1 => (
                "suspendUser",
                SUSPEND,
                json!({ "userId": target, "reason": "load test" }),
            ),
            2 => ("unsuspendUser", UNSUSPEND, json!({ "userId": target })),
            _ => (
                "setUserRole",
                SET_ROLE,
                json!({ "userId": target, "role": "USER" }),
            ),
        };
        client
            .call(operation, Some(&token), query, json!({ "i": input }), &[])
            .await;
        round += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_at_once_never_see_an_internal_error() {
    // The test app's cheap hashing lets far more transactions race.
    let app = Arc::new(spawn_app_with(|c| c.hashing.password_hash_queue = 1024).await);
    let tally = Arc::new(Tally::default());
    let client = Client {
        app: app.clone(),
        tally: tally.clone(),
    };
    let first_admin = app.admin().await.tokens().0;
    let second_admin = app.admin().await.tokens().0;
    let mut target_emails = Vec::new();
    let mut target_ids = Vec::new();
    for _ in 0..3 {
        let email = unique_email();
        let registered = app.register(&email, PASSWORD).await;
        target_ids.push(registered.user.id);
        target_emails.push(email);
    }

    let until = Instant::now() + LOAD;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..3 {
        clients.spawn(registrations(client.clone(), until));
    }
    for _ in 0..4 {
        clients.spawn(sessions(client.clone(), until));
    }
    clients.spawn(deletions(client.clone(), until));
    for email in &target_emails {
        clients.spawn(targeted(client.clone(), email.clone(), until));
    }
    clients.spawn(administration(
        client.clone(),
        first_admin,
        target_ids.clone(),
        until,
    ));
    let mut reversed = target_ids.clone();
    reversed.reverse();
    clients.spawn(administration(
        client.clone(),
        second_admin,
        reversed,
        until,
    ));
    while let Some(finished) = clients.join_next().await {
        finished.expect("a client panicked");
    }

    let outcomes = tally.outcomes.lock().unwrap().clone();
    eprintln!("outcomes: {outcomes:#?}");
    let violations = tally.violations.lock().unwrap().clone();
    assert!(
        violations.is_empty(),
        "{} answers broke the rules, the first ones:\n{}",
        violations.len(),
        violations
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let ok = |operation: &str| {
        outcomes
            .iter()
            .filter(|((op, outcome), _)| *op == operation && outcome == "ok")
            .map(|(_, count)| *count)
            .sum::<u64>()
    };
    for operation in [
        "register",
        "login",
        "refreshToken",
        "logout",
        "changePassword",
        "deleteAccount",
        "setUserRole",
        "suspendUser",
    ] {
        assert!(ok(operation) >= 3, "too few {operation} ran: {outcomes:#?}");
    }

    // Nothing acknowledged was lost: every account kept can sign in with its last password.
    let kept = tally.kept.lock().unwrap().clone();
    for (email, password) in kept {
        let body = app.login(&email, &password).await;
        assert_eq!(
            body["data"]["login"]["user"]["email"],
            email.as_str(),
            "{body}"
        );
    }
}
