//! Every write to the database goes through [`Transactions`]: a transaction that loses a race
//! for locks (a deadlock, a serialization failure, a lock wait timeout, SQLite busy) is rolled
//! back by the database, so it is run again from the start, a bounded number of times with a
//! jittered pause between attempts, and counted.
//!
//! Only the whole transaction is repeated, and only when the database reported contention:
//! that error means nothing of the attempt was kept. A transaction whose commit succeeded is
//! never repeated, and neither is one whose outcome is unknown (the connection broke: the
//! commit may or may not have happened), which reaches the caller as `Unavailable`. The work
//! of an attempt touches nothing but the database, so repeating it repeats nothing else.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, ExecResult, Statement,
    TransactionTrait,
};

use crate::domain::RepositoryError;

use super::failure::{Contention, Failure, classify, repository_error};

/// The work of one attempt at a transaction.
pub type Attempt<'t, T> = Pin<Box<dyn Future<Output = Result<T, DbErr>> + Send + 't>>;

/// How a transaction whose work succeeded ends.
#[derive(Debug)]
pub enum Finish<T> {
    Commit(T),
    /// Nothing of it is kept: the work found it should not happen (a refused change).
    Rollback(T),
}

/// How often and how patiently contention is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The longest pause before the first retry; it doubles for each further one.
    pub first_backoff: Duration,
    /// The longest pause before any retry.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Deadlock victims usually succeed at once on the next attempt: the winner of the race
    /// commits within milliseconds. Five attempts with pauses of up to 5, 10, 20, 40 ms add
    /// at most 75 ms to a request that would otherwise fail.
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(100),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1 for the first): "full jitter", uniformly
    /// random up to a ceiling that doubles, so racing transactions do not collide again in
    /// step.
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .first_backoff
            .saturating_mul(1 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let fraction = f64::from(getrandom::u32().unwrap_or(u32::MAX / 2)) / f64::from(u32::MAX);
        ceiling.mul_f64(fraction)
    }
}

/// Counts the retries for `/metrics` (a couple of atomic increments, and only on contention).
#[derive(Debug, Clone, Default)]
pub struct RetryCounter(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    deadlock: AtomicU64,
    serialization_failure: AtomicU64,
    lock_timeout: AtomicU64,
    busy: AtomicU64,
    exhausted: AtomicU64,
}

impl RetryCounter {
    /// Attempts repeated after contention of this kind, since start.
    pub fn retried(&self, kind: Contention) -> u64 {
        self.slot(kind).load(Ordering::Relaxed)
    }

    /// Attempts repeated after contention of any kind, since start.
    pub fn retried_total(&self) -> u64 {
        [
            Contention::Deadlock,
            Contention::SerializationFailure,
            Contention::LockTimeout,
            Contention::Busy,
        ]
        .into_iter()
        .map(|kind| self.retried(kind))
        .sum()
    }

    /// Transactions still failing with contention after the last attempt, since start.
    pub fn exhausted(&self) -> u64 {
        self.0.exhausted.load(Ordering::Relaxed)
    }

    fn slot(&self, kind: Contention) -> &AtomicU64 {
        match kind {
            Contention::Deadlock => &self.0.deadlock,
            Contention::SerializationFailure => &self.0.serialization_failure,
            Contention::LockTimeout => &self.0.lock_timeout,
            Contention::Busy => &self.0.busy,
        }
    }
}

/// Runs the writes of the repositories: transactions, and single statements (each of which
/// is a transaction of its own), with the retry policy.
#[derive(Clone)]
pub struct Transactions {
    db: DatabaseConnection,
    policy: RetryPolicy,
    retries: RetryCounter,
    #[cfg(feature = "test-hooks")]
    overlap: Option<OverlapGate>,
}

impl Transactions {
    pub fn new(db: DatabaseConnection, retries: RetryCounter) -> Self {
        Self {
            db,
            policy: RetryPolicy::default(),
            retries,
            #[cfg(feature = "test-hooks")]
            overlap: None,
        }
    }

    /// The same, its transactions passing `gate` (test builds).
    #[cfg(feature = "test-hooks")]
    pub fn with_overlap_gate(mut self, gate: OverlapGate) -> Self {
        self.overlap = Some(gate);
        self
    }

    /// The connection the writes go to, for the reads of the same repository.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The same with another retry policy (tests).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Runs `work` in a transaction and commits it (or rolls it back, as `work` says). The
    /// whole of it is run again when the database reports contention. `work` must do nothing
    /// but database work: it may run more than once.
    pub async fn run<T, F>(&self, work: F) -> Result<T, RepositoryError>
    where
        T: Send,
        F: for<'t> Fn(&'t DatabaseTransaction) -> Attempt<'t, Finish<T>> + Send + Sync,
    {
        // SQLite has one connection, which every read waits for too: a transaction held
        // there would stall the racing call before it reached its own, so on SQLite the calls
        // meet at a barrier before either begins.
        #[cfg(feature = "test-hooks")]
        let sqlite = self.db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite;
        #[cfg(feature = "test-hooks")]
        if let Some(gate) = &self.overlap {
            if sqlite {
                gate.barrier().await;
            } else {
                gate.entered();
            }
        }
        #[cfg(feature = "test-hooks")]
        let counted = std::sync::atomic::AtomicBool::new(false);
        self.retry(|| async {
            let txn = self.db.begin().await?;
            #[cfg(feature = "test-hooks")]
            if let Some(gate) = &self.overlap
                && !counted.swap(true, Ordering::SeqCst)
            {
                gate.began();
            }
            let outcome = work(&txn).await;
            #[cfg(feature = "test-hooks")]
            if let (Some(gate), Ok(_), false) = (&self.overlap, &outcome, sqlite) {
                gate.hold_inside().await;
            }
            match outcome {
                Ok(Finish::Commit(value)) => {
                    txn.commit().await?;
                    Ok(value)
                }
                Ok(Finish::Rollback(value)) => {
                    txn.rollback().await?;
                    Ok(value)
                }
                Err(error) => {
                    // MySQL's lock wait timeout rolls back the statement only: end the
                    // transaction before the next attempt (dropping it would too, later).
                    let _ = txn.rollback().await;
                    Err(error)
                }
            }
        })
        .await
    }

    /// Runs one statement on its own (autocommit), again on contention.
    pub async fn execute(&self, statement: Statement) -> Result<ExecResult, RepositoryError> {
        #[cfg(feature = "test-hooks")]
        if let Some(gate) = &self.overlap {
            gate.barrier().await;
        }
        self.retry(|| self.db.execute_raw(statement.clone())).await
    }

    /// Makes attempts until one succeeds, fails otherwise than by contention, or the policy
    /// allows no more. Each attempt must be a whole transaction that the database rolled back
    /// when it reported contention.
    pub async fn retry<T, Fut>(&self, attempt: impl FnMut() -> Fut) -> Result<T, RepositoryError>
    where
        Fut: Future<Output = Result<T, DbErr>>,
    {
        retry(&self.policy, &self.retries, contention_of, attempt)
            .await
            .map_err(repository_error)
    }
}

/// Test builds: makes two calls of a race overlap for sure. Once armed, the first
/// transaction to finish its work is held, before its commit or rollback, until another
/// call has begun its own transaction; the first single statement, and on SQLite the first
/// transaction, waits before it starts until another call has reached the store too. The
/// race test then knows both were in flight at once, not one after the other however the
/// scheduler ordered them.
#[cfg(feature = "test-hooks")]
#[derive(Clone, Default)]
pub struct OverlapGate(Arc<Gate>);

#[cfg(feature = "test-hooks")]
#[derive(Default)]
struct Gate {
    armed: std::sync::atomic::AtomicBool,
    held: std::sync::atomic::AtomicBool,
    overlapped: std::sync::atomic::AtomicBool,
    /// Calls that have reached the store, and begun a transaction, since it was armed.
    entered: tokio::sync::watch::Sender<usize>,
    began: tokio::sync::watch::Sender<usize>,
}

#[cfg(feature = "test-hooks")]
impl OverlapGate {
    /// Holds the next call to finish until a second one is in flight.
    pub fn arm(&self) {
        self.0.entered.send_replace(0);
        self.0.began.send_replace(0);
        self.0.held.store(false, Ordering::SeqCst);
        self.0.overlapped.store(false, Ordering::SeqCst);
        self.0.armed.store(true, Ordering::SeqCst);
    }

    /// Disarms it; whether, since it was armed, a call was held until a second was in
    /// flight.
    pub fn finish(&self) -> bool {
        self.0.armed.store(false, Ordering::SeqCst);
        self.0.overlapped.load(Ordering::SeqCst)
    }

    fn entered(&self) {
        if self.0.armed.load(Ordering::SeqCst) {
            self.0.entered.send_modify(|n| *n += 1);
        }
    }

    fn began(&self) {
        if self.0.armed.load(Ordering::SeqCst) {
            self.0.began.send_modify(|n| *n += 1);
        }
    }

    async fn hold_inside(&self) {
        self.hold(&self.0.began).await;
    }

    async fn barrier(&self) {
        self.entered();
        self.hold(&self.0.entered).await;
    }

    async fn hold(&self, count: &tokio::sync::watch::Sender<usize>) {
        if !self.0.armed.load(Ordering::SeqCst) || self.0.held.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut count = count.subscribe();
        // A bound so a test with no second call fails its overlap check instead of hanging.
        let second =
            tokio::time::timeout(Duration::from_secs(30), count.wait_for(|n| *n >= 2)).await;
        if matches!(second, Ok(Ok(_))) {
            self.0.overlapped.store(true, Ordering::SeqCst);
        }
        self.0.armed.store(false, Ordering::SeqCst);
    }
}

fn contention_of(error: &DbErr) -> Option<Contention> {
    match classify(error) {
        Failure::Contention(kind) => Some(kind),
        _ => None,
    }
}

/// The retry loop, apart from any database so it can be tested with made-up failures.
async fn retry<T, E, Fut>(
    policy: &RetryPolicy,
    counter: &RetryCounter,
    contention: impl Fn(&E) -> Option<Contention>,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut made = 1;
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let Some(kind) = contention(&error) else {
            return Err(error);
        };
        if made >= policy.attempts {
            counter.0.exhausted.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                attempts = made,
                contention = kind.as_str(),
                %error,
                "a transaction kept failing on contention; giving up"
            );
            return Err(error);
        }
        counter.slot(kind).fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            attempt = made,
            contention = kind.as_str(),
            "retrying a transaction"
        );
        tokio::time::sleep(policy.backoff(made)).await;
        made += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use entity::user;
    use sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait, QueryTrait};

    use super::*;
    use crate::infrastructure::persistence::migrated_sqlite;

    #[derive(Debug, PartialEq)]
    enum Made {
        Deadlock,
        ConnectionLost,
    }

    impl std::fmt::Display for Made {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    fn made_up(error: &Made) -> Option<Contention> {
        (*error == Made::Deadlock).then_some(Contention::Deadlock)
    }

    /// Attempts that fail with `failures` in turn, then succeed; counts the attempts.
    async fn attempts_with(
        policy: &RetryPolicy,
        counter: &RetryCounter,
        failures: Vec<Made>,
    ) -> (Result<&'static str, Made>, u32) {
        let made = AtomicU32::new(0);
        let failures = std::sync::Mutex::new(failures.into_iter());
        let result = retry(policy, counter, made_up, || {
            made.fetch_add(1, Ordering::Relaxed);
            let next = failures.lock().unwrap().next();
            async move {
                match next {
                    Some(error) => Err(error),
                    None => Ok("committed"),
                }
            }
        })
        .await;
        (result, made.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn contention_is_retried_until_an_attempt_succeeds() {
        let counter = RetryCounter::default();
        let (result, attempts) = attempts_with(
            &RetryPolicy::default(),
            &counter,
            vec![Made::Deadlock, Made::Deadlock],
        )
        .await;
        assert_eq!(result, Ok("committed"));
        assert_eq!(attempts, 3);
        assert_eq!(counter.retried(Contention::Deadlock), 2);
        assert_eq!(counter.exhausted(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn other_failures_are_not_retried() {
        let counter = RetryCounter::default();
        let (result, attempts) = attempts_with(
            &RetryPolicy::default(),
            &counter,
            vec![Made::ConnectionLost],
        )
        .await;
        assert_eq!(result, Err(Made::ConnectionLost));
        assert_eq!(
            attempts, 1,
            "an outcome that may have committed is never repeated"
        );
        assert_eq!(counter.retried_total(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_bound() {
        let counter = RetryCounter::default();
        let policy = RetryPolicy::default();
        let forever = (0..100).map(|_| Made::Deadlock).collect();
        let started = tokio::time::Instant::now();
        let (result, attempts) = attempts_with(&policy, &counter, forever).await;
        assert_eq!(result, Err(Made::Deadlock));
        assert_eq!(attempts, policy.attempts);
        assert_eq!(
            counter.retried(Contention::Deadlock),
            u64::from(policy.attempts - 1)
        );
        assert_eq!(counter.exhausted(), 1);
        let most: Duration = (1..policy.attempts)
            .map(|r| policy.first_backoff * (1 << (r - 1)))
            .sum();
        assert!(started.elapsed() <= most, "{:?}", started.elapsed());
    }

    #[test]
    fn backoff_is_jittered_under_a_doubling_ceiling() {
        let policy = RetryPolicy::default();
        let pauses: Vec<Duration> = (0..200).map(|_| policy.backoff(3)).collect();
        assert!(pauses.iter().all(|p| *p <= policy.first_backoff * 4));
        let distinct: std::collections::HashSet<_> = pauses.iter().collect();
        assert!(
            distinct.len() > 100,
            "jittered: {} distinct pauses",
            distinct.len()
        );
        assert!(policy.backoff(30) <= policy.max_backoff);
    }

    fn ada(id: uuid::Uuid, email: &str) -> Statement {
        let at = chrono::Utc::now();
        user::Entity::insert(user::ActiveModel {
            id: Set(id),
            email: Set(email.into()),
            password_hash: Set("hash".into()),
            display_name: Set(None),
            role: Set("USER".into()),
            email_verified_at: Set(None),
            suspended_at: Set(None),
            suspension_reason: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            credential_version: Set(0),
            pending_email: Set(None),
            mfa_enabled_at: Set(None),
            has_password: Set(true),
        })
        .build(sea_orm::DbBackend::Sqlite)
    }

    #[tokio::test]
    async fn a_committed_transaction_runs_once_and_a_refused_one_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = migrated_sqlite(&dir.path().join("tx.db")).await;
        let counter = RetryCounter::default();
        let transactions = Transactions::new(db.clone(), counter.clone());
        let runs = AtomicU32::new(0);
        let insert = ada(uuid::Uuid::new_v4(), "ada@example.com");
        let committed = transactions
            .run(|txn| {
                runs.fetch_add(1, Ordering::Relaxed);
                let insert = insert.clone();
                Box::pin(async move {
                    txn.execute_raw(insert).await?;
                    Ok(Finish::Commit("kept"))
                })
            })
            .await
            .unwrap();
        assert_eq!(committed, "kept");
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(user::Entity::find().count(&db).await.unwrap(), 1);

        let refused = ada(uuid::Uuid::new_v4(), "bob@example.com");
        let outcome = transactions
            .run(|txn| {
                let refused = refused.clone();
                Box::pin(async move {
                    txn.execute_raw(refused).await?;
                    Ok(Finish::Rollback("refused"))
                })
            })
            .await
            .unwrap();
        assert_eq!(outcome, "refused");
        assert_eq!(user::Entity::find().count(&db).await.unwrap(), 1);

        // A unique violation is the caller's to handle: reported at once, not retried.
        let duplicate = transactions
            .execute(ada(uuid::Uuid::new_v4(), "ada@example.com"))
            .await;
        assert!(matches!(duplicate, Err(RepositoryError::Conflict)));
        assert_eq!(counter.retried_total(), 0);
    }

    #[tokio::test]
    async fn a_busy_database_is_waited_out_by_retrying_the_whole_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        migrated_sqlite(&path).await.close().await.unwrap();
        // A pool that gives up on a lock at once, so SQLite answers "busy" and not a wait.
        let mut options = sea_orm::ConnectOptions::new(format!("sqlite://{}", path.display()));
        options.max_connections(1).sqlx_logging(false);
        options.map_sqlx_sqlite_opts(|o| o.busy_timeout(Duration::ZERO));
        let db = sea_orm::Database::connect(options).await.unwrap();
        let counter = RetryCounter::default();
        let transactions =
            Transactions::new(db.clone(), counter.clone()).with_policy(RetryPolicy {
                attempts: 50,
                first_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(10),
            });

        let locker = rusqlite::Connection::open(&path).unwrap();
        locker.execute_batch("BEGIN IMMEDIATE;").unwrap();
        // The lock is let go once the transaction has been refused as busy and comes back,
        // an event rather than a delay raced against the retry budget.
        let locker = std::sync::Mutex::new(Some(locker));
        let runs = AtomicU32::new(0);
        let first = ada(uuid::Uuid::new_v4(), "ada@example.com");
        let second = ada(uuid::Uuid::new_v4(), "bob@example.com");
        transactions
            .run(|txn| {
                if runs.fetch_add(1, Ordering::Relaxed) == 1 {
                    assert_eq!(counter.retried(Contention::Busy), 1, "refused as busy");
                    let locker = locker.lock().unwrap().take().unwrap();
                    locker.execute_batch("COMMIT;").unwrap();
                }
                let (first, second) = (first.clone(), second.clone());
                Box::pin(async move {
                    txn.execute_raw(first).await?;
                    txn.execute_raw(second).await?;
                    Ok(Finish::Commit(()))
                })
            })
            .await
            .expect("the transaction succeeds once the lock is released");

        assert_eq!(runs.load(Ordering::Relaxed), 2, "it was retried, once");
        assert_eq!(
            counter.retried(Contention::Busy),
            u64::from(runs.load(Ordering::Relaxed) - 1)
        );
        assert_eq!(
            user::Entity::find().count(&db).await.unwrap(),
            2,
            "each row once: the failed attempts kept nothing"
        );
    }
}
