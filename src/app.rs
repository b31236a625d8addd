//! The composition root: config → database → repositories → services → schema → router.
//! `main` and the integration tests build the application the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::application::ports::SystemClock;
use crate::application::{AuthService, SessionPolicy, UserService};
use crate::config::Config;
use crate::infrastructure::persistence::{self, SeaOrmSessionRepository, SeaOrmUserRepository};
use crate::infrastructure::security::{Argon2Hasher, JwtSettings, JwtTokens, resolve_jwt_secret};
use crate::interfaces::graphql;
use crate::interfaces::http::{self, AppState};

/// A fully wired server, bound to its port but not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Connects to the database, applies migrations and binds the listener.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let db = connect_and_migrate(config).await?;
        let router = http::router(state(config, db)?);
        let listener = TcpListener::bind((config.host, config.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
        Ok(Self { listener, router })
    }

    /// Where the server listens (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Opens the database and brings its schema up to date.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = persistence::connect(&config.database())
        .await
        .context("cannot connect to the database (check DATABASE_URL)")?;
    persistence::migrate(&db)
        .await
        .context("cannot apply database migrations")?;
    Ok(db)
}

fn state(config: &Config, db: DatabaseConnection) -> anyhow::Result<AppState> {
    let secret = resolve_jwt_secret(
        config.jwt_secret.as_deref(),
        config.dev_state_dir().as_deref(),
    )?;
    let users = Arc::new(SeaOrmUserRepository::new(db.clone()));
    let sessions = Arc::new(SeaOrmSessionRepository::new(db.clone()));
    let hasher = Arc::new(Argon2Hasher::new(&config.hashing()).map_err(anyhow::Error::msg)?);
    let tokens = Arc::new(JwtTokens::new(JwtSettings {
        secret,
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_audience.clone(),
        lifetime: config.access_token_ttl,
    }));
    let policy = SessionPolicy {
        idle_timeout: chrono::Duration::from_std(config.refresh_token_ttl)
            .context("REFRESH_TOKEN_TTL is too large")?,
        max_age: chrono::Duration::from_std(config.session_max_age)
            .context("SESSION_MAX_AGE is too large")?,
    };
    let auth = Arc::new(AuthService::new(
        users.clone(),
        sessions,
        hasher,
        tokens,
        Arc::new(SystemClock),
        policy,
    ));
    let user_service = Arc::new(UserService::new(users));
    Ok(AppState {
        schema: graphql::schema(auth, user_service),
        db,
    })
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
