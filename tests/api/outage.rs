//! The database goes away in the middle of traffic and comes back: requests in between are
//! told "unavailable, try again" (503, SERVICE_UNAVAILABLE, retryAfter), never "internal
//! error"; the server recovers by itself; nothing it acknowledged is lost.
//!
//! A small TCP proxy sits between the app and the database server, so the outage is real on
//! the wire (connections cut mid-use, new ones refused) on PostgreSQL and MySQL/MariaDB
//! alike. SQLite is a file: nothing to cut, so these tests skip there.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{
    AuthPayload, Backend, ME, PASSWORD, REFRESH, REGISTER, TestApp, TestDatabase,
    skip_unless_backend, spawn_on, test_config, unique_email,
};

/// Forwards TCP connections to `upstream` until cut; refuses them until restored.
struct Proxy {
    address: SocketAddr,
    upstream: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            address: listener.local_addr().unwrap(),
            upstream,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, tasks) = (self.upstream.clone(), self.tasks.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let forwarding = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(forwarding);
            }
        });
        self.tasks.lock().unwrap().push(accepting);
    }

    /// The database "goes down": every open connection is cut and new ones are refused.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// The database is back on the same address.
    async fn restore(&self) {
        // The aborted accept loop drops its listener on its next poll; rebind once it has.
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(error) => panic!("cannot listen on {} again: {error}", self.address),
            }
        };
        self.serve(listener);
    }
}

/// `scheme://user@host:port/db?params` with `host:port` replaced by `address`.
fn through(url: &str, address: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
    let path = rest.find('/').map_or("", |slash| &rest[slash..]);
    let user = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    format!("{scheme}://{user}{address}{path}")
}

/// `host:port` of a server URL.
fn server_address(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap();
    if authority.contains(':') {
        authority.to_owned()
    } else if url.starts_with("postgres") {
        format!("{authority}:5432")
    } else {
        format!("{authority}:3306")
    }
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    ok: u64,
    unavailable: u64,
    /// When the last request that was answered "unavailable" was sent.
    last_unavailable_sent: Option<Instant>,
    /// When the database came back, once it has.
    restored_at: Option<Instant>,
    /// Successes of requests sent after the restore, and when the first of them was answered.
    ok_after_restore: u64,
    first_ok_after_restore: Option<Instant>,
    /// The longest any request took, and any request answered "unavailable".
    slowest: Duration,
    slowest_unavailable: Duration,
    violations: Vec<String>,
    /// Accounts whose registration was acknowledged: email and id.
    registered: Vec<(String, uuid::Uuid)>,
}

/// How long a request waits for a database connection before it is told to come back.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Waits until what the clients saw meets `condition`; fails if it never does.
async fn wait_until(seen: &Mutex<Seen>, what: &str, condition: impl Fn(&Seen) -> bool) {
    // A bound on a hang, far above what any phase takes, not a schedule.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !condition(&seen.lock().unwrap()) {
        assert!(Instant::now() < deadline, "never reached: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends one request and checks its answer is a success or a well-formed "unavailable".
async fn send(
    app: &TestApp,
    seen: &Mutex<Seen>,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Option<Value> {
    let authorization = token.map(|t| format!("Bearer {t}"));
    let sent = Instant::now();
    let response = app
        .graphql_response(authorization.as_deref(), query, variables)
        .await;
    let status = response.status();
    let retry_after = response.headers().get("retry-after").cloned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let mut seen = seen.lock().unwrap();
    seen.slowest = seen.slowest.max(sent.elapsed());
    if status == StatusCode::OK && body.get("errors").is_none() && body["data"].is_object() {
        seen.ok += 1;
        if seen.restored_at.is_some_and(|restored| sent >= restored) {
            seen.ok_after_restore += 1;
            seen.first_ok_after_restore.get_or_insert_with(Instant::now);
        }
        return Some(body["data"].clone());
    }
    let error = &body["errors"][0];
    let well_formed = status == StatusCode::SERVICE_UNAVAILABLE
        && error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        && error["extensions"]["retryAfter"]
            .as_u64()
            .is_some_and(|s| s > 0)
        && error["extensions"]["requestId"].is_string()
        && retry_after.is_some()
        // The driver's words (SQL, addresses) stay in the log.
        && error["message"] == "The service is briefly unavailable; try again in 2 seconds.";
    if well_formed {
        seen.unavailable += 1;
        seen.slowest_unavailable = seen.slowest_unavailable.max(sent.elapsed());
        seen.last_unavailable_sent = Some(sent);
    } else {
        seen.violations.push(format!("{status} {body}"));
    }
    None
}

/// A client signing up new accounts in a loop.
async fn registering(app: Arc<TestApp>, seen: Arc<Mutex<Seen>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let email = unique_email();
        let variables = json!({ "input": { "email": email, "password": PASSWORD } });
        if let Some(data) = send(&app, &seen, None, REGISTER, variables).await {
            let id = data["register"]["user"]["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            seen.lock().unwrap().registered.push((email, id));
        }
    }
}

/// A client keeping one session alive: refreshing, and reading `me` with the latest token.
/// A refresh that was not acknowledged is retried with the same token, as a client does.
async fn refreshing(
    app: Arc<TestApp>,
    seen: Arc<Mutex<Seen>>,
    mut tokens: (String, String),
    stop: Arc<AtomicBool>,
) -> (String, String) {
    while !stop.load(Ordering::SeqCst) {
        let variables = json!({ "input": { "refreshToken": tokens.1 } });
        if let Some(data) = send(&app, &seen, None, REFRESH, variables).await {
            tokens = AuthPayload::deserialize(&data["refreshToken"])
                .expect("an AuthPayload")
                .tokens();
        }
        send(&app, &seen, Some(&tokens.0), ME, json!({})).await;
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_answers_unavailable_then_the_server_recovers_and_keeps_what_it_acknowledged() {
    if skip_unless_backend(
        &[Backend::Postgres, Backend::MySql],
        "a server database (TEST_DATABASE_URL=postgres://… or mysql://…)",
    ) {
        return;
    }
    let database = TestDatabase::create().await;
    let proxy = Proxy::start(server_address(&database.url)).await;
    let config = test_config(&through(&database.url, proxy.address), |c| {
        // How long a request waits for a connection before it is told to come back later.
        c.database.database_connect_timeout = CONNECT_TIMEOUT;
    });
    let app = Arc::new(spawn_on(config, database).await);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(app.register(&unique_email(), PASSWORD).await.tokens());
    }

    // Traffic that succeeds, an outage every client runs into, then traffic that succeeds
    // again: each phase ends on what the clients saw, not after a fixed time.
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut registrations = Vec::new();
    for _ in 0..3 {
        registrations.push(tokio::spawn(registering(
            app.clone(),
            seen.clone(),
            stop.clone(),
        )));
    }
    let refreshes: Vec<_> = sessions
        .into_iter()
        .map(|tokens| tokio::spawn(refreshing(app.clone(), seen.clone(), tokens, stop.clone())))
        .collect();

    wait_until(&seen, "traffic before the outage", |s| s.ok >= 12).await;
    proxy.cut();
    let cut_at = started.elapsed();
    // The outage lasts until clients have been refused again and again, and until one
    // request waited out the whole connect timeout before it was told to come back.
    wait_until(&seen, "the outage seen", |s| {
        s.unavailable >= 6 && s.slowest_unavailable >= CONNECT_TIMEOUT
    })
    .await;
    let unavailable_during = seen.lock().unwrap().unavailable;
    proxy.restore().await;
    let restored = Instant::now();
    seen.lock().unwrap().restored_at = Some(restored);
    let restored_at = restored - started;
    wait_until(&seen, "traffic after the restore", |s| {
        s.ok_after_restore >= 12
    })
    .await;
    stop.store(true, Ordering::SeqCst);

    for registration in registrations {
        registration.await.unwrap();
    }
    let mut last_tokens = Vec::new();
    for refresh in refreshes {
        last_tokens.push(refresh.await.unwrap());
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    eprintln!(
        "cut at {cut_at:?}, restored at {restored_at:?}: {} ok, {} unavailable, the last sent at {:?}; slowest {:?}, slowest unavailable {:?}",
        seen.ok,
        seen.unavailable,
        seen.last_unavailable_sent.map(|at| at - started),
        seen.slowest,
        seen.slowest_unavailable,
    );
    assert!(
        seen.violations.is_empty(),
        "{} answers were neither a success nor a well-formed SERVICE_UNAVAILABLE:\n{}",
        seen.violations.len(),
        seen.violations
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(unavailable_during > 0, "the outage was seen");

    // It recovered by itself: once one request sent after the restore had succeeded (a
    // connection could be opened again), every request sent later succeeded too, and so
    // does every request now.
    let last_unavailable = seen.last_unavailable_sent.unwrap() - started;
    let recovered = seen.first_ok_after_restore.unwrap() - started;
    assert!(
        last_unavailable < recovered,
        "a request sent {last_unavailable:?} in, after the first success at {recovered:?} \
         (restore at {restored_at:?}), was still refused"
    );
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    for (access, _) in &last_tokens {
        assert!(app.me(access).await.get("errors").is_none());
    }
    // Nothing acknowledged is lost: every registration signs in, every session's last
    // refresh token still works.
    assert!(
        seen.registered.len() >= 5,
        "{} registered",
        seen.registered.len()
    );
    let app_ref = &app;
    let sign_ins = futures_util::stream::iter(&seen.registered)
        .map(|(email, _)| async move { (email, app_ref.login(email, PASSWORD).await) })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    for (email, body) in sign_ins {
        assert_eq!(
            body["data"]["login"]["user"]["email"],
            email.as_str(),
            "{body}"
        );
    }
    for (_, refresh) in &last_tokens {
        let body = app.refresh(refresh).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    // Nor their audit trail: events queued when the database went away waited for it.
    app.flush_audit().await;
    use entity::audit_event;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let recorded = audit_event::Entity::find()
        .filter(audit_event::Column::Kind.eq("registered"))
        .filter(audit_event::Column::SubjectId.is_in(seen.registered.iter().map(|(_, id)| *id)))
        .count(&app.db().await)
        .await
        .unwrap();
    assert_eq!(
        recorded,
        seen.registered.len() as u64,
        "acknowledged registrations missing from the audit trail"
    );
}

#[test]
fn urls_are_pointed_at_the_proxy_whatever_their_form() {
    let proxy: SocketAddr = "127.0.0.1:4242".parse().unwrap();
    assert_eq!(
        through("postgres://postgres@127.0.0.1:5432/t_1", proxy),
        "postgres://postgres@127.0.0.1:4242/t_1"
    );
    assert_eq!(
        through(
            "mysql://root:pw@db.example:3306/t_1?ssl-mode=disabled",
            proxy
        ),
        "mysql://root:pw@127.0.0.1:4242/t_1?ssl-mode=disabled"
    );
    assert_eq!(server_address("mysql://root@localhost/t"), "localhost:3306");
    assert_eq!(
        server_address("postgres://u:p@10.0.0.1:6543/t"),
        "10.0.0.1:6543"
    );
}
