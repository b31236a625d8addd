//! Reading and managing user accounts.

use std::sync::Arc;

use crate::domain::{User, UserRepository};

use super::error::{AuthFailure, ServiceError};
use super::sessions::Principal;

/// Account reads and changes, always on behalf of a caller.
pub struct UserService {
    users: Arc<dyn UserRepository>,
}

impl UserService {
    pub fn new(users: Arc<dyn UserRepository>) -> Self {
        Self { users }
    }

    /// The caller's own account. An account deleted under a live token counts as signed out.
    pub async fn me(&self, caller: &Principal) -> Result<User, ServiceError> {
        self.users
            .find_by_id(caller.user_id)
            .await?
            .ok_or_else(|| AuthFailure::SessionEnded.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::ClientInfo;
    use crate::application::fakes::Fakes;
    use crate::domain::{Email, NewUser, Password, SessionId, UserId};

    #[tokio::test]
    async fn me_returns_the_callers_account() {
        let fakes = Fakes::new();
        let services = fakes.services();
        let signed_in = services
            .auth
            .register(
                NewUser {
                    email: Email::parse("ada@example.com").unwrap(),
                    password: Password::new("correct horse".into()).unwrap(),
                    display_name: None,
                },
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        let caller = services
            .sessions
            .authenticate(&signed_in.access_token.token)
            .await
            .unwrap();

        let me = services.users.me(&caller).await.unwrap();
        assert_eq!(me, signed_in.user);
    }

    #[tokio::test]
    async fn me_for_a_vanished_account_is_unauthenticated() {
        let fakes = Fakes::new();
        let ghost = Principal {
            user_id: UserId::generate(),
            session_id: SessionId::generate(),
        };
        let result = fakes.services().users.me(&ghost).await;
        assert!(matches!(
            result,
            Err(ServiceError::Unauthenticated(AuthFailure::SessionEnded))
        ));
    }
}
