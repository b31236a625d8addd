//! argon2id on a small pool of dedicated threads with a bounded queue.
//!
//! Each hash burns tens of milliseconds of CPU and needs `m` KiB of memory. Running it on the
//! async runtime would stall every other request; running it on an unbounded pool would let a
//! login storm take all memory. So: as many workers as configured, a queue of fixed length in
//! front of them, and an immediate `Overloaded` when the queue is full. Each worker keeps its
//! argon2 memory between hashes (faulting the memory in again is a large share of a hash) and
//! gives it back after a pause, so an idle server stays small.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use argon2::password_hash::phc;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use crossbeam_channel::{RecvTimeoutError, Sender, TrySendError};
use tokio::sync::oneshot;

use crate::application::ports::{HashError, HashingLoad, PasswordHasher};
use crate::domain::{Password, PasswordHash};
use crate::infrastructure::scheduling::BackgroundThread;

/// A worker idle this long gives its argon2 memory back.
const KEEP_MEMORY_FOR: Duration = Duration::from_secs(2);
const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;

/// argon2id cost and the size of the hashing pool.
#[derive(Debug, Clone)]
pub struct HashingSettings {
    /// Memory cost in KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// Passes over memory (OWASP: 2).
    pub iterations: u32,
    /// Lanes (OWASP: 1).
    pub parallelism: u32,
    /// Hashes computed at once.
    pub workers: usize,
    /// Hashes allowed to wait for a worker before new ones are refused.
    pub queue: usize,
    /// Whether the hashing threads give way to the request threads.
    pub priority: HashPriority,
}

/// The scheduling priority of the hashing threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HashPriority {
    /// Below every other thread, stepping aside every millisecond while it hashes (see
    /// `infrastructure::scheduling`): a login storm uses the spare CPU without delaying
    /// other requests.
    Background,
    /// Like any other thread: hashing competes with requests for the cores.
    Normal,
}

/// The argon2id adapter of the `PasswordHasher` port.
pub struct Argon2Hasher {
    params: Params,
    dummy: PasswordHash,
    pool: WorkerPool,
}

impl Argon2Hasher {
    /// Starts the worker threads. Fails on parameters argon2 rejects.
    pub fn new(settings: &HashingSettings) -> Result<Self, String> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            Some(OUTPUT_BYTES),
        )
        .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        let dummy = phc_string(&params, &[0x5a; SALT_BYTES], &[0; OUTPUT_BYTES])?;
        let pool = WorkerPool::start(
            settings.workers.max(1),
            settings.queue.max(1),
            settings.priority,
        )
        .map_err(|e| format!("cannot start the password hashing threads: {e}"))?;
        Ok(Self {
            params,
            dummy,
            pool,
        })
    }
}

/// For metrics, and for tests proving that no hash was computed.
impl HashingLoad for Argon2Hasher {
    fn in_flight(&self) -> u64 {
        self.pool.in_flight.load(Ordering::Relaxed)
    }

    fn completed(&self) -> u64 {
        self.pool.completed.load(Ordering::Relaxed)
    }
}

/// The PHC string of an argon2id hash. With a zero output it is the dummy hash: well formed,
/// with the current parameters, matched by no password, and exactly as costly to check.
fn phc_string(params: &Params, salt: &[u8], output: &[u8]) -> Result<PasswordHash, String> {
    let unbuildable = |e: phc::Error| format!("cannot build a PHC string: {e}");
    let phc = phc::PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: phc::ParamsString::try_from(params).map_err(|e| e.to_string())?,
        salt: Some(phc::Salt::new(salt).map_err(unbuildable)?),
        hash: Some(phc::Output::new(output).map_err(unbuildable)?),
    };
    Ok(PasswordHash::new(phc.to_string()))
}

/// Runs argon2 in the worker's memory.
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    output: &mut [u8],
    worker: &mut Worker,
) -> Result<(), HashError> {
    let count = params.block_count();
    if worker.memory.len() < count {
        worker.memory = vec![Block::default(); count];
    }
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, output, &mut worker.memory[..count])
        .map_err(|e| HashError::Failed(e.to_string()))
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, HashError> {
        let params = self.params.clone();
        self.pool
            .run(move |worker| {
                let mut salt = [0u8; SALT_BYTES];
                getrandom::fill(&mut salt).map_err(|e| HashError::Failed(e.to_string()))?;
                let mut output = [0u8; OUTPUT_BYTES];
                compute(
                    Algorithm::Argon2id,
                    Version::V0x13,
                    params.clone(),
                    password.expose().as_bytes(),
                    &salt,
                    &mut output,
                    worker,
                )?;
                phc_string(&params, &salt, &output).map_err(HashError::Failed)
            })
            .await?
    }

    async fn verify(&self, password: Password, hash: &PasswordHash) -> Result<bool, HashError> {
        let hash = hash.clone();
        self.pool
            .run(move |worker| {
                let unreadable = |e: &dyn std::fmt::Display| {
                    HashError::Failed(format!("unreadable password hash: {e}"))
                };
                let parsed = phc::PasswordHash::new(hash.as_str()).map_err(|e| unreadable(&e))?;
                // The parameters come from the stored hash, so older hashes still verify.
                let algorithm =
                    Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| unreadable(&e))?;
                let version = parsed
                    .version
                    .map_or(Ok(Version::V0x13), Version::try_from)
                    .map_err(|e| unreadable(&e))?;
                let params = Params::try_from(&parsed).map_err(|e| unreadable(&e))?;
                let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
                    return Err(unreadable(&"no salt or no hash"));
                };
                let mut output = vec![0u8; expected.len()];
                compute(
                    algorithm,
                    version,
                    params,
                    password.expose().as_bytes(),
                    salt.as_ref(),
                    &mut output,
                    worker,
                )?;
                // `Output`'s equality is constant-time.
                let computed = phc::Output::new(&output).map_err(|e| unreadable(&e))?;
                Ok(computed == *expected)
            })
            .await?
    }

    fn dummy_hash(&self) -> &PasswordHash {
        &self.dummy
    }

    fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        let Ok(parsed) = phc::PasswordHash::new(hash.as_str()) else {
            return false; // unreadable: verification will report it
        };
        let current = Params::try_from(&parsed).ok();
        parsed.algorithm.as_str() != "argon2id"
            || parsed.version != Some(Version::V0x13.into())
            || current.is_none_or(|p| {
                (p.m_cost(), p.t_cost(), p.p_cost())
                    != (
                        self.params.m_cost(),
                        self.params.t_cost(),
                        self.params.p_cost(),
                    )
            })
    }
}

/// What a hashing thread keeps between jobs: its argon2 memory.
struct Worker {
    memory: Vec<Block>,
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// Leaves the in-flight count when the job ends, even by a panic.
struct InFlight(Arc<AtomicU64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Dedicated threads fed by a bounded queue. Dropping the pool lets the threads finish.
struct WorkerPool {
    queue: Sender<Job>,
    completed: Arc<AtomicU64>,
    in_flight: Arc<AtomicU64>,
}

impl WorkerPool {
    fn start(workers: usize, queue: usize, priority: HashPriority) -> std::io::Result<Self> {
        let (sender, receiver) = crossbeam_channel::bounded::<Job>(queue);
        for i in 0..workers {
            let receiver = receiver.clone();
            thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    let background = (priority == HashPriority::Background)
                        .then(BackgroundThread::for_this_thread);
                    let mut worker = Worker { memory: Vec::new() };
                    loop {
                        match receiver.recv_timeout(KEEP_MEMORY_FOR) {
                            // A panicking job drops its reply channel; the caller sees an error.
                            Ok(job) => {
                                let run = || job(&mut worker);
                                let _ =
                                    std::panic::catch_unwind(AssertUnwindSafe(
                                        || match &background {
                                            Some(background) => background.run(run),
                                            None => run(),
                                        },
                                    ));
                            }
                            Err(RecvTimeoutError::Timeout) => worker.memory = Vec::new(),
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            queue: sender,
            completed: Arc::default(),
            in_flight: Arc::default(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Worker) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (reply, answer) = oneshot::channel();
        let (completed, in_flight) = (self.completed.clone(), self.in_flight.clone());
        let job: Job = Box::new(move |worker| {
            let running = InFlight(in_flight);
            let started = std::time::Instant::now();
            let outcome = work(worker);
            // From the hashing thread itself, so a capture of the log can prove it sees these
            // threads too; it carries nothing of the password or the hash.
            tracing::trace!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "password hashing job finished"
            );
            // Counted before the caller can see the result, so the counters never lag it.
            completed.fetch_add(1, Ordering::Relaxed);
            drop(running);
            let _ = reply.send(outcome);
        });
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.queue.try_send(job).map_err(|e| {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            match e {
                TrySendError::Full(_) => HashError::Overloaded,
                TrySendError::Disconnected(_) => {
                    HashError::Failed("hashing threads stopped".into())
                }
            }
        })?;
        answer
            .await
            .map_err(|_| HashError::Failed("a hashing job panicked".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(workers: usize, queue: usize) -> Argon2Hasher {
        // Production parameters: the dev profile optimises argon2, so this stays fast.
        Argon2Hasher::new(&HashingSettings {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            workers,
            queue,
            priority: HashPriority::Background,
        })
        .unwrap()
    }

    fn password(s: &str) -> Password {
        Password::new(s.into()).unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_with_owasp_parameters() {
        let hash = hasher(1, 4).hash(password("correct horse")).await.unwrap();
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
    }

    #[tokio::test]
    async fn verify_accepts_the_password_and_rejects_others() {
        let hasher = hasher(1, 4);
        let hash = hasher.hash(password("correct horse")).await.unwrap();
        assert!(
            hasher
                .verify(password("correct horse"), &hash)
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(password("wrong horse!"), &hash)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_same_password_gets_a_fresh_salt_each_time() {
        let hasher = hasher(1, 4);
        let a = hasher.hash(password("correct horse")).await.unwrap();
        let b = hasher.hash(password("correct horse")).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn the_dummy_hash_matches_nothing_and_uses_the_current_parameters() {
        let hasher = hasher(1, 4);
        let dummy = hasher.dummy_hash().clone();
        assert!(
            dummy
                .as_str()
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
        assert!(
            !hasher
                .verify(password("correct horse"), &dummy)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_hash_with_other_parameters_needs_rehashing() {
        let current = hasher(1, 4);
        let weaker = Argon2Hasher::new(&HashingSettings {
            memory_kib: 8_192,
            iterations: 1,
            parallelism: 1,
            workers: 1,
            queue: 4,
            priority: HashPriority::Normal,
        })
        .unwrap();
        let old = weaker.hash(password("correct horse")).await.unwrap();
        let new = current.hash(password("correct horse")).await.unwrap();
        assert!(current.needs_rehash(&old));
        assert!(!current.needs_rehash(&new));
        assert!(
            current
                .verify(password("correct horse"), &old)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn our_hashes_verify_with_the_argon2_crate_itself() {
        use argon2::password_hash::PasswordVerifier as _;
        let stored = hasher(1, 4).hash(password("correct horse")).await.unwrap();
        let parsed = phc::PasswordHash::new(stored.as_str()).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse!", &parsed)
                .is_err()
        );
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_itself_verify() {
        use argon2::password_hash::PasswordHasher as _;
        let phc = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        let hasher = hasher(1, 4);
        let stored = PasswordHash::new(phc);
        assert!(
            hasher
                .verify(password("correct horse"), &stored)
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(password("wrong horse!"), &stored)
                .await
                .unwrap()
        );
    }

    /// Made by the C reference implementation (argon2-cffi's `PasswordHasher`): the argon2 we
    /// build (vendor/argon2, with yield points) computes the same argon2id, with one lane and
    /// with several.
    #[tokio::test]
    async fn hashes_made_by_the_reference_implementation_verify() {
        let hasher = hasher(1, 4);
        for phc in [
            "$argon2id$v=19$m=19456,t=2,p=1$Rd29kZE7h3a7Gl7ic1VhAA$b8ga3uVrP4dU553lx6vdiLZBBieL7WD2GUFnFRTMe2U",
            "$argon2id$v=19$m=65536,t=3,p=4$NBenXujH8W/T4hVSt6K6ow$/o9XJ/nXI9BMw175DhlNaLsnPFe/RBD2UwW/J2YakYg",
        ] {
            let stored = PasswordHash::new(phc.into());
            let verify = |p| hasher.verify(password(p), &stored);
            assert!(
                verify("correct horse battery staple").await.unwrap(),
                "{phc}"
            );
            assert!(
                !verify("correct horse battery stapler").await.unwrap(),
                "{phc}"
            );
        }
    }

    #[tokio::test]
    async fn an_unreadable_stored_hash_is_an_error_not_a_mismatch() {
        let result = hasher(1, 4)
            .verify(
                password("correct horse"),
                &PasswordHash::new("garbage".into()),
            )
            .await;
        assert!(matches!(result, Err(HashError::Failed(_))));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_work_at_once() {
        let hasher = hasher(1, 1);
        // One job runs, one waits; everything after that is refused.
        let jobs: Vec<_> = (0..6)
            .map(|_| hasher.hash(password("correct horse")))
            .collect();
        let results = futures_util::future::join_all(jobs).await;
        let accepted = results.iter().filter(|r| r.is_ok()).count();
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(HashError::Overloaded)))
            .count();
        assert!((1..=2).contains(&accepted), "{results:?}");
        assert_eq!(accepted + refused, 6, "{results:?}");
    }
}
