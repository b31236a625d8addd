//! What services do with a typed password: check it against a stored hash (every form of it,
//! at the same cost whether or not the account exists), confirm it before a sensitive change
//! (with a recent second factor for an account that has one: the step-up), and judge a new
//! one's strength.

use std::sync::Arc;

use crate::domain::{DisplayName, Email, Password, PasswordAttempt, PasswordHash, User};

use super::caller::Principal;
use super::error::ServiceError;
use super::ports::PasswordHasher;
use super::sessions::SessionService;
use super::throttle::Throttle;

/// Confirms that the signed-in user is at the keyboard before a change that would let a
/// stolen session keep the account: their password typed again, throttled like a sign-in.
pub struct Confirmation {
    hasher: Arc<dyn PasswordHasher>,
    throttle: Arc<Throttle>,
    sessions: Arc<SessionService>,
}

impl Confirmation {
    pub fn new(
        hasher: Arc<dyn PasswordHasher>,
        throttle: Arc<Throttle>,
        sessions: Arc<SessionService>,
    ) -> Self {
        Self {
            hasher,
            throttle,
            sessions,
        }
    }

    /// Before a sensitive change (the password, the email, deleting the account): the password
    /// typed again proves a recent authentication, except for an account with a second
    /// factor, whose session must also have proved that factor recently (`reauthenticate`), so
    /// a stolen session and a phished password are not enough.
    pub async fn sensitive_change(
        &self,
        caller: &Principal,
        user: &User,
        password: String,
    ) -> Result<(), ServiceError> {
        if self.sessions.has_second_factor(user).await? {
            self.sessions.require_recent(caller, user).await?;
        }
        self.password(caller, user, password).await
    }

    /// Checks that the signed-in user typed their own password; a wrong one is an input error
    /// on `password`. Throttled like a sign-in, before any hashing: a stolen session is no
    /// oracle for guessing the password.
    pub async fn password(
        &self,
        caller: &Principal,
        user: &User,
        password: String,
    ) -> Result<(), ServiceError> {
        let _turn = self
            .throttle
            .password_confirmation(caller.session_id, &user.email)
            .await?;
        let matches = match PasswordAttempt::parse(password) {
            Some(password) => {
                verify_attempt(self.hasher.as_ref(), &password, &user.password_hash).await?
                    != Matched::No
            }
            None => false,
        };
        if matches {
            self.throttle.password_succeeded(&user.email).await;
            Ok(())
        } else {
            self.throttle.password_failed(&user.email).await;
            Err(ServiceError::InvalidInput {
                field: "password",
                message: "The password is incorrect.".into(),
            })
        }
    }
}

/// Which form of a typed password matched a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Matched {
    No,
    /// Its normalised form: a hash made since passwords are normalised.
    Normalised,
    /// The characters as typed: a hash made before, to be replaced.
    AsTyped,
}

/// Checks every form of an attempt against a hash until one matches: one argon2 hash per
/// form, so the dummy hash of an unknown email (which matches nothing) costs exactly what a
/// wrong password costs for the same typed text. The caller counts it as one attempt.
pub(super) async fn verify_attempt(
    hasher: &dyn PasswordHasher,
    attempt: &PasswordAttempt,
    hash: &PasswordHash,
) -> Result<Matched, ServiceError> {
    for (i, form) in attempt.forms().enumerate() {
        if hasher.verify(form.clone(), hash).await? {
            return Ok(if i == 0 {
                Matched::Normalised
            } else {
                Matched::AsTyped
            });
        }
    }
    Ok(Matched::No)
}

/// Refuses a guessable new password (`Password::check_strength`) as an input error on
/// `field`. The estimate costs up to milliseconds of CPU, so it runs on the blocking pool,
/// not on the async threads and not in the hashing pool (which it would slow for sign-ins).
pub(super) async fn require_strong(
    password: &Password,
    email: &Email,
    display_name: Option<&DisplayName>,
    field: &'static str,
) -> Result<(), ServiceError> {
    let (password, email, display_name) = (password.clone(), email.clone(), display_name.cloned());
    tokio::task::spawn_blocking(move || password.check_strength(&email, display_name.as_ref()))
        .await
        .map_err(ServiceError::internal)?
        .map_err(|e| ServiceError::invalid(field, e))
}
