//! The composition root: config → database → repositories → services → schema → router.
//! `main` and the integration tests build the application the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::application::ports::{
    Clock, Mailer, PublishedKeys, RateLimiter, SecretSealer, StoreHealth, SystemClock,
};
use crate::application::{PasskeyPolicy, Policies, Ports, Services, Stores};
use crate::config::{Config, MailerKind, RateLimitStore};
use crate::domain::HotReads;
use crate::infrastructure::audit::AuditWriter;
use crate::infrastructure::deferred::DeferredQueue;
use crate::infrastructure::mail::{LogMailer, SmtpMailer};
use crate::infrastructure::oidc::OidcProviders;
use crate::infrastructure::persistence::sqlite::DirectReads;
use crate::infrastructure::persistence::{
    self, DatabaseHealth, QueryCounter, RetryCounter, SeaOrmAccountRecovery,
    SeaOrmAccountTokenRepository, SeaOrmAuditRepository, SeaOrmHotReads, SeaOrmPasskeyRepository,
    SeaOrmSecondFactorRepository, SeaOrmSessionRepository, SeaOrmSocialRepository,
    SeaOrmUserRepository, Transactions,
};
use crate::infrastructure::rate_limit::{MemoryRateLimiter, RedisRateLimiter};
use crate::infrastructure::security::{Argon2Hasher, JwtTokens, WebauthnCeremonies};
use crate::interfaces::graphql;
use crate::interfaces::http::{self, AppState, MetricSources, Metrics};

/// Everything behind the interfaces: the database, the services and their background parts.
/// The server and the command line build it the same way.
pub struct Core {
    pub services: Services,
    pub db: DatabaseConnection,
    /// The emails "sent" when `MAILER=log`, for tests and local development.
    pub mailbox: Option<Arc<LogMailer>>,
    /// The audit writer, to wait until recorded events are stored.
    pub audit: Arc<AuditWriter>,
    /// The statements sent to the database so far.
    pub queries: QueryCounter,
    /// The transactions repeated after contention so far.
    pub retries: RetryCounter,
    /// The password hasher, for its counters.
    pub hasher: Arc<Argon2Hasher>,
    /// Work handed off by requests (emails with links), to wait for it at shutdown.
    pub deferred: Arc<DeferredQueue>,
    /// The public keys of access tokens, for `/.well-known/jwks.json`.
    pub keys: Arc<dyn PublishedKeys>,
    /// Makes the transactions of two racing requests overlap (test builds).
    #[cfg(feature = "test-hooks")]
    pub overlap: persistence::OverlapGate,
}

impl Core {
    /// Connects to the database, applies migrations and wires the services.
    pub async fn assemble(config: &Config) -> anyhow::Result<Self> {
        Self::assemble_with_clock(config, Arc::new(SystemClock)).await
    }

    /// The same, with every expiry (tokens, sessions, links, limits, retention) judged by
    /// `clock`: tests pass one they can move forward.
    pub async fn assemble_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        config.check()?;
        // Before the database: a rate-limit store that cannot be reached stops startup before
        // any migration runs.
        let limiter = limiter(config, clock.clone()).await?;
        // So does a missing or malformed encryption or signing key.
        let dev_dir = config.dev_state_dir();
        let sealer: Arc<dyn SecretSealer> = Arc::new(config.mfa.sealer(dev_dir.as_deref())?);
        let tokens = Arc::new(JwtTokens::new(config.tokens.settings(dev_dir.as_deref())?));
        // And WebAuthn settings no browser would accept.
        let ceremonies = Arc::new(
            WebauthnCeremonies::new(&config.webauthn.settings(&config.links.public_url)?)
                .map_err(|e| anyhow::anyhow!("WEBAUTHN_RP_ID / WEBAUTHN_ORIGINS: {e}"))?,
        );
        let queries = QueryCounter::default();
        let db = connect_and_migrate_counted(config, &queries).await?;
        let retries = RetryCounter::default();
        let writes = Transactions::new(db.clone(), retries.clone());
        let mail = mail(config)?;
        let audit = AuditWriter::start(Arc::new(SeaOrmAuditRepository::new(writes.clone())));
        // The requests' writes only: the audit writer's background ones never count as a
        // racing request.
        #[cfg(feature = "test-hooks")]
        let overlap = persistence::OverlapGate::default();
        #[cfg(feature = "test-hooks")]
        let writes = writes.with_overlap_gate(overlap.clone());
        let hasher =
            Arc::new(Argon2Hasher::new(&config.hashing.settings()).map_err(anyhow::Error::msg)?);
        let deferred = DeferredQueue::start(config.mail.mail_senders, config.mail.mail_queue_size);
        let providers = Arc::new(OidcProviders::new(
            config.social.providers()?,
            &config
                .social
                .oidc_settings(config.tokens.api_url.as_deref(), config.is_production()),
        )?);
        if config.social.enabled() {
            // Discovery in the background: a provider that is down delays nothing at startup,
            // and is tried again when it is first used.
            let discovering = providers.clone();
            tokio::spawn(async move { discovering.discover_all().await });
        }
        let ports = Ports {
            stores: stores(
                config.database.url(),
                config.database.sqlite_fast_paths,
                &writes,
                &queries,
            ),
            hasher: hasher.clone(),
            tokens: tokens.clone(),
            sealer,
            mailer: mail.sender,
            deferred: deferred.clone(),
            audit_log: audit.clone(),
            limiter,
            claims_hook: config
                .claims
                .hook()?
                .map(|hook| Arc::new(hook) as Arc<dyn crate::application::ports::ClaimsHook>),
            clock,
            providers,
            ceremonies,
        };
        let services = Services::new(ports, policies(config)?);
        Ok(Self {
            services,
            db,
            mailbox: mail.mailbox,
            audit,
            queries,
            retries,
            hasher,
            deferred,
            keys: tokens,
            #[cfg(feature = "test-hooks")]
            overlap,
        })
    }
}

/// A fully wired server, bound to its port but not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    /// `/metrics` on a listener of its own, when metrics are on.
    metrics_server: Option<(TcpListener, Router)>,
    connections: http::ConnectionLimits,
    core: Core,
    cleanup_interval: Duration,
    shutdown_timeout: Duration,
}

impl Application {
    /// Assembles the core and binds the listener.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// The same, on `clock` (see [`Core::assemble_with_clock`]).
    pub async fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        config.check_listen_address()?;
        let core = Core::assemble_with_clock(config, clock).await?;
        let limits = config.graphql_limits();
        let admission = Arc::new(graphql::Admission::new(limits));
        let store: Arc<dyn StoreHealth> = Arc::new(DatabaseHealth::new(
            core.db.clone(),
            core.queries.clone(),
            core.retries.clone(),
        ));
        let metrics = config.telemetry.metrics.then(|| {
            Arc::new(Metrics::new(MetricSources {
                hashing: core.hasher.clone(),
                audit: core.audit.clone(),
                store: store.clone(),
                mail: core.deferred.clone(),
                admission: admission.clone(),
                limits: core.services.throttle.clone(),
                claims_hook: core.services.sessions.claims().stats(),
            }))
        });
        let metrics_server = match &metrics {
            Some(metrics) => Some((
                TcpListener::bind(config.telemetry.metrics_addr)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot listen for metrics on {}",
                            config.telemetry.metrics_addr
                        )
                    })?,
                http::metrics_router(metrics.clone()),
            )),
            None => None,
        };
        let listener = TcpListener::bind((config.host, config.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
        let router = http::router(AppState {
            schema: graphql::schema(&core.services, limits),
            admission,
            store,
            settings: Arc::new(config.http_settings()),
            metrics,
            load: Arc::new(http::Load::new(config.http.load_limits())),
            keys: core.keys.clone(),
            discovery: Arc::new(config.tokens.discovery(listener.local_addr()?)),
            social: core.services.social.clone(),
            sessions: core.services.sessions.clone(),
            introspection: Arc::new(config.claims.introspection_clients()?),
            throttle: core.services.throttle.clone(),
        });
        Ok(Self {
            listener,
            router,
            metrics_server,
            connections: config.http.connection_limits(),
            core,
            cleanup_interval: config.sessions.session_cleanup_interval,
            shutdown_timeout: config.http.shutdown_timeout,
        })
    }

    /// The database, services and background parts behind the server.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Where the server listens (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served, when metrics are on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then stops accepting and gives requests in flight
    /// up to the shutdown timeout to finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let cleanup = tokio::spawn(clean_up_periodically(
            self.core.services.clone(),
            self.cleanup_interval,
        ));
        let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
        let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = stopping.send(());
            let _ = metrics_stop.send(());
        };
        let metrics = self.metrics_server.map(|(listener, router)| {
            let stop = async {
                let _ = metrics_stopped.await;
            };
            tokio::spawn(http::serve(listener, router, self.connections, stop))
        });
        let serve = http::serve(self.listener, self.router, self.connections, signal);
        let deadline = async {
            if stopped.await.is_ok() {
                tokio::time::sleep(self.shutdown_timeout).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let served = tokio::select! {
            served = serve => served,
            () = deadline => {
                tracing::warn!("shutdown timeout reached: requests still running were dropped");
                Ok(())
            }
        };
        cleanup.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        // Emails of the last requests are still queued; send them, then store the events.
        if tokio::time::timeout(self.shutdown_timeout, self.core.deferred.idle())
            .await
            .is_err()
        {
            tracing::warn!("shutdown timeout reached: queued emails were not all sent");
        }
        self.core.audit.flush().await;
        served
    }
}

/// Opens the database and brings its schema up to date.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<DatabaseConnection> {
    connect_and_migrate_counted(config, &QueryCounter::default()).await
}

async fn connect_and_migrate_counted(
    config: &Config,
    queries: &QueryCounter,
) -> anyhow::Result<DatabaseConnection> {
    let _turn = persistence::startup_turn(config.database.url())
        .await
        .context("cannot take the migration lock beside the SQLite database")?;
    let db = persistence::connect(&config.database.settings(), queries)
        .await
        .context("cannot connect to the database (check DATABASE_URL)")?;
    persistence::migrate(&db)
        .await
        .context("cannot apply database migrations")?;
    Ok(db)
}

/// The services' policies, each built by its area of the configuration.
fn policies(config: &Config) -> anyhow::Result<Policies> {
    Ok(Policies {
        sessions: config.sessions.policy()?,
        links: config.links.policy()?,
        mfa: config.mfa.policy()?,
        passkeys: PasskeyPolicy::default(),
        throttle: config.rate_limits.throttle(),
        claims: config.claims.policy()?,
        audit: config.audit.retention()?,
        social: config.social_policy(),
    })
}

/// The repositories over one database, as every service uses them: the SeaORM repositories,
/// and the hot reads on the calling thread on a SQLite file (the SQLite fast paths) unless
/// `sqlite_fast_paths` is off. Public so that the repository suite and the service tests run
/// on what the service runs.
pub fn stores(
    database_url: &str,
    sqlite_fast_paths: bool,
    writes: &Transactions,
    queries: &QueryCounter,
) -> Stores {
    let generic = SeaOrmHotReads::new(writes.db().clone());
    let reads: Arc<dyn HotReads> =
        match persistence::sqlite_file(database_url).filter(|_| sqlite_fast_paths) {
            Some(file) => Arc::new(DirectReads::new(file, queries.clone(), generic)),
            None => Arc::new(generic),
        };
    let audit = Arc::new(SeaOrmAuditRepository::new(writes.clone()));
    let social = Arc::new(SeaOrmSocialRepository::new(writes.clone()));
    Stores {
        accounts: Arc::new(SeaOrmUserRepository::new(writes.clone())),
        reads,
        sessions: Arc::new(SeaOrmSessionRepository::new(writes.clone())),
        links: Arc::new(SeaOrmAccountTokenRepository::new(writes.clone())),
        recovery: Arc::new(SeaOrmAccountRecovery::new(writes.clone())),
        factors: Arc::new(SeaOrmSecondFactorRepository::new(writes.clone())),
        passkeys: Arc::new(SeaOrmPasskeyRepository::new(writes.clone())),
        directory: Arc::new(SeaOrmUserRepository::new(writes.clone())),
        audit: audit.clone(),
        audit_queries: audit,
        social_identities: social.clone(),
        social_flows: social,
    }
}

/// The store of rate-limit counters.
async fn limiter(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<dyn RateLimiter>> {
    let settings = &config.rate_limits;
    Ok(match settings.rate_limit_store {
        RateLimitStore::Memory => Arc::new(MemoryRateLimiter::new(
            settings.rate_limit_memory_keys,
            clock,
        )),
        RateLimitStore::Redis => {
            let url = settings
                .redis_url
                .as_ref()
                .map(ExposeSecret::expose_secret)
                .context("RATE_LIMIT_STORE=redis needs REDIS_URL")?;
            let redis = RedisRateLimiter::connect(url, &settings.redis_key_prefix)
                .await
                .map_err(|e| anyhow::anyhow!("cannot connect to Redis (check REDIS_URL): {e}"))?;
            // An evicted block is a lockout lifted: production refuses a Redis that may evict.
            match redis.eviction_policy().await {
                Ok(None) => {}
                Ok(Some(policy)) if config.is_production() => anyhow::bail!(
                    "Redis may evict rate-limit keys (maxmemory-policy {policy}), which would \
                     lift lockouts: set maxmemory-policy noeviction (or no maxmemory)"
                ),
                Ok(Some(policy)) => tracing::warn!(
                    policy,
                    "Redis may evict rate-limit keys, which would lift lockouts: set \
                     maxmemory-policy noeviction (production refuses to start)"
                ),
                Err(error) => tracing::warn!(
                    %error,
                    "could not read Redis's maxmemory-policy: make sure it is noeviction, or an \
                     evicted key could lift a lockout"
                ),
            }
            Arc::new(redis)
        }
    })
}

/// The configured mailer, and the in-memory mailbox when email goes to the log.
struct Mail {
    sender: Arc<dyn Mailer>,
    mailbox: Option<Arc<LogMailer>>,
}

fn mail(config: &Config) -> anyhow::Result<Mail> {
    match config.mail.kind(config.is_production())? {
        MailerKind::Smtp => {
            let smtp = SmtpMailer::new(config.mail.smtp_url()?, &config.mail.mail_from)
                .map_err(anyhow::Error::msg)?;
            Ok(Mail {
                sender: Arc::new(smtp),
                mailbox: None,
            })
        }
        MailerKind::Log => {
            if config.is_production() {
                tracing::warn!("MAILER=log: emails, with their links, go to the log, not to users");
            }
            // In production the log must not hold links anyone reading it could use.
            let mailbox = Arc::new(LogMailer::new(config.is_production()));
            Ok(Mail {
                sender: mailbox.clone(),
                mailbox: Some(mailbox),
            })
        }
    }
}

/// Deletes ended sessions, spent email links, expired passkey ceremonies and audit events past
/// their retention now and then, off the request path.
async fn clean_up_periodically(services: Services, every: Duration) {
    let every = every.max(Duration::from_secs(1));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match tokio::try_join!(
            services.sessions.delete_ended(),
            services.account.delete_spent_tokens(),
            services.passkeys.delete_expired_ceremonies(),
            services.audit.apply_retention(),
            services.social.delete_expired(),
        ) {
            Ok((sessions, links, ceremonies, (events, clients), social))
                if sessions + links + ceremonies + events + clients + social > 0 =>
            {
                tracing::info!(
                    sessions,
                    links,
                    passkey_ceremonies = ceremonies,
                    social_flows_and_codes = social,
                    audit_events = events,
                    audit_clients_forgotten = clients,
                    "deleted ended sessions, spent links, expired passkey ceremonies and audit events \
                     past their retention"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cleanup failed; will retry"),
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
