//! Social sign-in's store (`SocialIdentityStore`, `SocialFlowStore`) on the SeaORM
//! repositories, on whichever database the suite runs on (there is no second implementation
//! to hold to it).
//!
//! An (issuer, subject) pair belongs to one account, and is compared exactly; an account has
//! one identity per provider; a flow is used once, only before it expires and only with the
//! binding of the browser that started it, and so is a one-time code.

use std::sync::Arc;

use authgraph::domain::{
    AccountStore, CreateOutcome, CredentialId, Delivery, Email, FlowPurpose, GuardedChange,
    IdentityKey, LinkOutcome, OpaqueToken, Passkey, PasskeyId, PasskeyName, PasskeyStore,
    PasswordHash, ProviderId, Replacing, Role, SessionId, SessionRepository, SocialCode,
    SocialCodeKind, SocialFlow, SocialFlowStore, SocialIdentity, SocialIdentityStore, TokenHash,
    UnlinkOutcome, User, VerifiedIdentity,
};
use authgraph::infrastructure::persistence::{
    OverlapGate, SeaOrmPasskeyRepository, SeaOrmSessionRepository, SeaOrmSocialRepository,
    SeaOrmUserRepository,
};

use super::{Fresh, at, email, session_of};
use crate::helpers::TestDatabase;

const ISSUER: &str = "https://idp.example";

/// The social store and the accounts it refers to, on a fresh, migrated database.
struct Social {
    accounts: Arc<dyn AccountStore>,
    passkeys: Arc<dyn PasskeyStore>,
    sessions: Arc<dyn SessionRepository>,
    identities: Arc<dyn SocialIdentityStore>,
    flows: Arc<dyn SocialFlowStore>,
    overlap: OverlapGate,
    _database: TestDatabase,
}

impl Social {
    async fn new() -> Self {
        let Fresh {
            database,
            writes,
            overlap,
            ..
        } = Fresh::database().await;
        let social = Arc::new(SeaOrmSocialRepository::new(writes.clone()));
        Self {
            passkeys: Arc::new(SeaOrmPasskeyRepository::new(writes.clone())),
            sessions: Arc::new(SeaOrmSessionRepository::new(writes.clone())),
            accounts: Arc::new(SeaOrmUserRepository::new(writes)),
            identities: social.clone(),
            flows: social,
            overlap,
            _database: database,
        }
    }

    async fn account(&self, address: &str) -> User {
        let user = User::new(
            Email::parse(address).unwrap(),
            None,
            Role::User,
            PasswordHash::new("$argon2id$not-checked-here".into()),
            None,
            at(0),
        );
        self.accounts.insert(&user).await.unwrap();
        user
    }

    /// A session of `user`, opened at t0.
    async fn signed_in(&self, user: &User) -> SessionId {
        let session = session_of(user, at(0));
        self.sessions.create(&session, &hash()).await.unwrap();
        session.id
    }

    /// Runs racing calls so that they overlap for sure (see `contract::Stores::race`).
    async fn race<T>(&self, calls: impl std::future::Future<Output = T>) -> T {
        self.overlap.arm();
        let outcome = calls.await;
        assert!(self.overlap.finish(), "the racing calls did not overlap");
        outcome
    }

    async fn link(&self, identity: &SocialIdentity) -> LinkOutcome {
        self.identities.link(identity).await.unwrap()
    }

    async fn find(&self, issuer: &str, subject: &str) -> Option<SocialIdentity> {
        self.identities
            .find(&IdentityKey::new(issuer, subject).unwrap())
            .await
            .unwrap()
    }

    async fn take_flow(
        &self,
        flow: &SocialFlow,
        binding: &TokenHash,
        seconds: i64,
    ) -> Option<SocialFlow> {
        self.flows
            .take_flow(&flow.id, binding, at(seconds))
            .await
            .unwrap()
    }

    async fn take_code(
        &self,
        code: &SocialCode,
        kind: SocialCodeKind,
        seconds: i64,
    ) -> Option<SocialCode> {
        self.flows
            .take_code(&code.hash, kind, at(seconds))
            .await
            .unwrap()
    }
}

fn provider(id: &str) -> ProviderId {
    ProviderId::parse(id).unwrap()
}

fn verified(provider_id: &str, subject: &str, address: &str) -> VerifiedIdentity {
    VerifiedIdentity {
        provider: provider(provider_id),
        key: IdentityKey::new(ISSUER, subject).unwrap(),
        email: Some(email(address)),
        email_verified: true,
        provider_mfa: false,
    }
}

/// `subject` at the test issuer through provider `corp`, linked to `user` at `seconds`.
fn identity(user: &User, subject: &str, seconds: i64) -> SocialIdentity {
    SocialIdentity::link(
        user.id,
        &verified("corp", subject, user.email.as_str()),
        at(seconds),
    )
}

fn hash() -> TokenHash {
    OpaqueToken::generate().unwrap().hash()
}

/// A sign-in flow started at t0, bound to `binding`, that expires `expires` seconds later.
fn flow(binding: &TokenHash, expires: i64) -> SocialFlow {
    SocialFlow {
        id: hash(),
        provider: provider("corp"),
        purpose: FlowPurpose::SignIn,
        binding: binding.clone(),
        pkce_verifier: OpaqueToken::generate().unwrap().expose().to_owned(),
        nonce: OpaqueToken::generate().unwrap().expose().to_owned(),
        redirect_to: "https://app.example/signed-in?from=social".into(),
        delivery: Delivery::Code,
        created_at: at(0),
        expires_at: at(expires),
    }
}

fn code(user: &User, kind: SocialCodeKind, expires: i64) -> SocialCode {
    SocialCode {
        hash: hash(),
        kind,
        user_id: user.id,
        identity: VerifiedIdentity {
            provider_mfa: true,
            ..verified("corp", "subject-1", user.email.as_str())
        },
        created_at: at(0),
        expires_at: at(expires),
    }
}

// Identities.

#[tokio::test]
async fn a_linked_identity_is_found_by_its_pair_and_listed_with_its_account() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    let corp = identity(&ada, "248289761001", 10);
    let google = SocialIdentity::link(
        ada.id,
        &VerifiedIdentity {
            provider: provider("google"),
            key: IdentityKey::new("https://accounts.google.example", "248289761001").unwrap(),
            email: None,
            email_verified: false,
            provider_mfa: false,
        },
        at(20),
    );

    assert_eq!(social.link(&corp).await, LinkOutcome::Linked);
    assert_eq!(social.link(&google).await, LinkOutcome::Linked);

    assert_eq!(
        social.find(ISSUER, "248289761001").await,
        Some(corp.clone())
    );
    assert_eq!(
        social.identities.list_for_user(ada.id).await.unwrap(),
        vec![corp, google],
        "oldest link first"
    );
    assert_eq!(social.find(ISSUER, "unknown").await, None);
    assert_eq!(
        social.find("https://other.example", "248289761001").await,
        None,
        "the same subject at another issuer is another identity"
    );
}

#[tokio::test]
async fn an_identity_linked_to_an_account_is_refused_to_any_other_and_to_it_again() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    let mallory = social.account("mallory@example.com").await;
    let linked = identity(&ada, "subject-1", 10);
    assert_eq!(social.link(&linked).await, LinkOutcome::Linked);

    assert_eq!(
        social.link(&identity(&mallory, "subject-1", 20)).await,
        LinkOutcome::IdentityTaken
    );
    assert_eq!(
        social.link(&identity(&ada, "subject-1", 30)).await,
        LinkOutcome::IdentityTaken
    );

    assert_eq!(social.find(ISSUER, "subject-1").await, Some(linked));
    assert!(
        social
            .identities
            .list_for_user(mallory.id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn subjects_are_compared_exactly_whatever_the_database_collation() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    let bob = social.account("bob@example.com").await;
    let lower = identity(&ada, "abc", 10);
    let upper = identity(&bob, "ABC", 10);
    let mut padded = identity(&bob, "abc ", 10);
    padded.provider = provider("other");

    assert_eq!(social.link(&lower).await, LinkOutcome::Linked);
    assert_eq!(social.link(&upper).await, LinkOutcome::Linked);
    assert_eq!(social.link(&padded).await, LinkOutcome::Linked);

    assert_eq!(social.find(ISSUER, "abc").await, Some(lower));
    assert_eq!(social.find(ISSUER, "ABC").await, Some(upper));
    assert_eq!(social.find(ISSUER, "abc ").await, Some(padded));
}

#[tokio::test]
async fn an_account_has_one_identity_per_provider() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    assert_eq!(
        social.link(&identity(&ada, "first", 10)).await,
        LinkOutcome::Linked
    );

    assert_eq!(
        social.link(&identity(&ada, "second", 20)).await,
        LinkOutcome::ProviderTaken
    );
    assert_eq!(social.find(ISSUER, "second").await, None);
}

#[tokio::test]
async fn an_identity_cannot_be_linked_to_an_account_that_does_not_exist() {
    let social = Social::new().await;
    let ghost = User::new(
        email("ghost@example.com"),
        None,
        Role::User,
        PasswordHash::new("$argon2id$not-checked-here".into()),
        None,
        at(0),
    );

    assert_eq!(
        social.link(&identity(&ghost, "subject-1", 10)).await,
        LinkOutcome::UnknownUser
    );
    assert_eq!(social.find(ISSUER, "subject-1").await, None);
}

#[tokio::test]
async fn two_accounts_linking_one_identity_at_once_cannot_both_have_it() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    let mallory = social.account("mallory@example.com").await;
    let (for_ada, for_mallory) = (
        identity(&ada, "subject-1", 10),
        identity(&mallory, "subject-1", 10),
    );

    let outcomes = social
        .race(async { tokio::join!(social.link(&for_ada), social.link(&for_mallory)) })
        .await;

    let mut outcomes = [outcomes.0, outcomes.1];
    outcomes.sort_by_key(|o| *o != LinkOutcome::Linked);
    assert_eq!(
        outcomes,
        [LinkOutcome::Linked, LinkOutcome::IdentityTaken],
        "exactly one link"
    );
    let owner = social.find(ISSUER, "subject-1").await.unwrap().user_id;
    assert!(owner == ada.id || owner == mallory.id);
}

#[tokio::test]
async fn only_the_owner_unlinks_an_identity_and_then_it_is_free() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    let mallory = social.account("mallory@example.com").await;
    assert_eq!(
        social.link(&identity(&ada, "subject-1", 10)).await,
        LinkOutcome::Linked
    );
    let corp = provider("corp");

    assert!(
        !social.identities.unlink(mallory.id, &corp).await.unwrap(),
        "not mallory's"
    );
    assert!(social.find(ISSUER, "subject-1").await.is_some());
    assert!(
        !social
            .identities
            .unlink(ada.id, &provider("google"))
            .await
            .unwrap(),
        "no identity through that provider"
    );

    assert!(social.identities.unlink(ada.id, &corp).await.unwrap());
    assert!(!social.identities.unlink(ada.id, &corp).await.unwrap());
    assert_eq!(social.find(ISSUER, "subject-1").await, None);
    assert_eq!(
        social.link(&identity(&mallory, "subject-1", 20)).await,
        LinkOutcome::Linked,
        "an unlinked identity may be linked again"
    );
}

#[tokio::test]
async fn deleting_an_account_removes_its_identities_flows_and_codes() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    assert_eq!(
        social.link(&identity(&ada, "subject-1", 10)).await,
        LinkOutcome::Linked
    );
    let binding = hash();
    let linking = SocialFlow {
        purpose: FlowPurpose::Link {
            user: ada.id,
            session: social.signed_in(&ada).await,
        },
        ..flow(&binding, 600)
    };
    social.flows.save_flow(&linking).await.unwrap();
    let pending = code(&ada, SocialCodeKind::Link, 600);
    social.flows.save_code(&pending).await.unwrap();

    assert_eq!(
        social.accounts.delete(ada.id, at(20)).await.unwrap(),
        GuardedChange::Applied
    );

    assert_eq!(social.find(ISSUER, "subject-1").await, None);
    assert_eq!(social.take_flow(&linking, &binding, 30).await, None);
    assert_eq!(
        social.take_code(&pending, SocialCodeKind::Link, 30).await,
        None
    );
}

// Accounts that sign in through providers.

impl Social {
    /// An account that signs in only through providers (no password of its own).
    async fn social_only(&self, address: &str) -> User {
        let mut user = User::new(
            Email::parse(address).unwrap(),
            None,
            Role::User,
            PasswordHash::new("$argon2id$dummy".into()),
            Some(at(0)),
            at(0),
        );
        user.has_password = false;
        self.accounts.insert(&user).await.unwrap();
        user
    }

    async fn unlink_unless_last(&self, user: &User, provider_id: &str) -> UnlinkOutcome {
        self.identities
            .unlink_unless_last(user.id, &provider(provider_id))
            .await
            .unwrap()
    }

    async fn create(
        &self,
        user: &User,
        identity: &SocialIdentity,
        replacing: Option<Replacing>,
    ) -> CreateOutcome {
        self.identities
            .create_with_identity(user, identity, replacing)
            .await
            .unwrap()
    }

    async fn stored(&self, user: &User) -> Option<User> {
        self.accounts.find_by_id(user.id).await.unwrap()
    }
}

/// `subject` at the test issuer through provider `provider_id`, for `user`.
fn identity_via(user: &User, provider_id: &str, subject: &str, seconds: i64) -> SocialIdentity {
    SocialIdentity::link(
        user.id,
        &verified(provider_id, subject, user.email.as_str()),
        at(seconds),
    )
}

fn a_passkey_of(user: &User) -> Passkey {
    Passkey {
        id: PasskeyId::generate(),
        user_id: user.id,
        credential_id: CredentialId::from_bytes(vec![7; 32]).unwrap(),
        credential: r#"{"cred":{}}"#.into(),
        name: PasskeyName::parse("Key").unwrap(),
        created_at: at(0),
        last_used_at: None,
        sign_count: 0,
        backup_eligible: true,
        backed_up: false,
    }
}

#[tokio::test]
async fn an_account_keeps_its_has_password_as_stored_and_a_new_password_sets_it() {
    let social = Social::new().await;
    let ada = social.social_only("ada@example.com").await;
    let bob = social.account("bob@example.com").await;
    assert!(!social.stored(&ada).await.unwrap().has_password);
    assert!(social.stored(&bob).await.unwrap().has_password);

    social
        .accounts
        .set_password_hash(ada.id, &PasswordHash::new("$argon2id$new".into()), at(10))
        .await
        .unwrap();

    let ada = social.stored(&ada).await.unwrap();
    assert!(ada.has_password);
    assert_eq!(ada.credential_version, 1);
}

#[tokio::test]
async fn the_last_identity_of_an_account_without_a_password_or_passkey_stays() {
    let social = Social::new().await;
    let ada = social.social_only("ada@example.com").await;
    assert_eq!(
        social.link(&identity_via(&ada, "corp", "a-1", 10)).await,
        LinkOutcome::Linked
    );

    assert_eq!(
        social.unlink_unless_last(&ada, "corp").await,
        UnlinkOutcome::LastMethod
    );
    assert!(social.find(ISSUER, "a-1").await.is_some(), "kept");
    assert_eq!(
        social.unlink_unless_last(&ada, "google").await,
        UnlinkOutcome::NotLinked
    );
}

#[tokio::test]
async fn an_identity_is_unlinked_while_another_way_to_sign_in_remains() {
    let social = Social::new().await;
    // Another identity.
    let ada = social.social_only("ada@example.com").await;
    social.link(&identity_via(&ada, "corp", "a-1", 10)).await;
    social.link(&identity_via(&ada, "google", "a-2", 10)).await;
    assert_eq!(
        social.unlink_unless_last(&ada, "corp").await,
        UnlinkOutcome::Unlinked
    );
    assert_eq!(social.find(ISSUER, "a-1").await, None);
    assert_eq!(
        social.unlink_unless_last(&ada, "google").await,
        UnlinkOutcome::LastMethod
    );
    // A password.
    let bob = social.account("bob@example.com").await;
    social.link(&identity_via(&bob, "corp", "b-1", 10)).await;
    assert_eq!(
        social.unlink_unless_last(&bob, "corp").await,
        UnlinkOutcome::Unlinked
    );
    assert_eq!(
        social.unlink_unless_last(&bob, "corp").await,
        UnlinkOutcome::NotLinked
    );
    // A passkey.
    let carol = social.social_only("carol@example.com").await;
    social.link(&identity_via(&carol, "corp", "c-1", 10)).await;
    social.passkeys.add(&a_passkey_of(&carol)).await.unwrap();
    assert_eq!(
        social.unlink_unless_last(&carol, "corp").await,
        UnlinkOutcome::Unlinked
    );
}

#[tokio::test]
async fn only_the_owner_unlinks_with_the_last_method_rule() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    let mallory = social.account("mallory@example.com").await;
    social.link(&identity_via(&ada, "corp", "a-1", 10)).await;

    assert_eq!(
        social.unlink_unless_last(&mallory, "corp").await,
        UnlinkOutcome::NotLinked
    );
    assert!(social.find(ISSUER, "a-1").await.is_some());
}

#[tokio::test]
async fn unlinking_the_last_two_identities_at_once_keeps_one() {
    let social = Social::new().await;
    let ada = social.social_only("ada@example.com").await;
    social.link(&identity_via(&ada, "corp", "a-1", 10)).await;
    social.link(&identity_via(&ada, "google", "a-2", 10)).await;

    let outcomes = social
        .race(async {
            tokio::join!(
                social.unlink_unless_last(&ada, "corp"),
                social.unlink_unless_last(&ada, "google")
            )
        })
        .await;

    let mut outcomes = [outcomes.0, outcomes.1];
    outcomes.sort_by_key(|o| *o != UnlinkOutcome::Unlinked);
    assert_eq!(
        outcomes,
        [UnlinkOutcome::Unlinked, UnlinkOutcome::LastMethod]
    );
    assert_eq!(
        social.identities.list_for_user(ada.id).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn an_account_is_created_with_its_identity_all_or_nothing() {
    let social = Social::new().await;
    let mut ada = User::new(
        email("ada@example.com"),
        None,
        Role::User,
        PasswordHash::new("$argon2id$dummy".into()),
        Some(at(5)),
        at(5),
    );
    ada.has_password = false;
    let linked = identity_via(&ada, "corp", "a-1", 5);

    assert_eq!(
        social.create(&ada, &linked, None).await,
        CreateOutcome::Created
    );
    assert_eq!(social.stored(&ada).await, Some(ada.clone()));
    assert_eq!(social.find(ISSUER, "a-1").await, Some(linked.clone()));

    // The address is taken: nothing is written, not even the identity.
    let twin = User::new(
        email("ADA@example.com"),
        None,
        Role::User,
        PasswordHash::new("x".into()),
        None,
        at(6),
    );
    assert_eq!(
        social
            .create(&twin, &identity_via(&twin, "corp", "a-2", 6), None)
            .await,
        CreateOutcome::EmailTaken
    );
    assert_eq!(social.find(ISSUER, "a-2").await, None);
    // The identity is taken: nothing is written, not even the account.
    let bob = User::new(
        email("bob@example.com"),
        None,
        Role::User,
        PasswordHash::new("x".into()),
        None,
        at(6),
    );
    assert_eq!(
        social
            .create(&bob, &identity_via(&bob, "corp", "a-1", 6), None)
            .await,
        CreateOutcome::IdentityTaken
    );
    assert_eq!(social.stored(&bob).await, None);
    assert_eq!(social.find(ISSUER, "a-1").await.unwrap().user_id, ada.id);
}

#[tokio::test]
async fn an_unverified_account_is_replaced_with_its_sessions_and_identities() {
    let social = Social::new().await;
    // Mallory registered Ada's address first, signed in, and linked her own identity to it.
    let squatter = social.account("ada@example.com").await;
    let session = social.signed_in(&squatter).await;
    social
        .link(&identity_via(&squatter, "google", "mallory", 10))
        .await;
    let ada = User::new(
        email("ada@example.com"),
        None,
        Role::User,
        PasswordHash::new("x".into()),
        Some(at(20)),
        at(20),
    );
    let linked = identity_via(&ada, "corp", "ada", 20);

    let outcome = social
        .create(
            &ada,
            &linked,
            Some(Replacing {
                user: squatter.id,
                credential_version: squatter.credential_version,
            }),
        )
        .await;

    assert_eq!(outcome, CreateOutcome::Created);
    assert_eq!(social.stored(&squatter).await, None);
    assert_eq!(
        social.sessions.find(session).await.unwrap(),
        None,
        "its sessions ended"
    );
    assert_eq!(
        social.find(ISSUER, "mallory").await,
        None,
        "its identities gone"
    );
    assert_eq!(social.find(ISSUER, "ada").await, Some(linked));
    assert_eq!(
        social.stored(&ada).await.unwrap().email.as_str(),
        "ada@example.com"
    );
}

#[tokio::test]
async fn an_account_that_changed_proved_its_address_or_administers_is_not_replaced() {
    let social = Social::new().await;
    let newcomer = |subject: &str| {
        let user = User::new(
            email("ada@example.com"),
            None,
            Role::User,
            PasswordHash::new("x".into()),
            Some(at(20)),
            at(20),
        );
        let linked = identity_via(&user, "corp", subject, 20);
        (user, linked)
    };
    // Its credential version moved on since it was read.
    let moved = social.account("ada@example.com").await;
    social
        .accounts
        .set_password_hash(moved.id, &PasswordHash::new("y".into()), at(10))
        .await
        .unwrap();
    let (ada, linked) = newcomer("s-1");
    assert_eq!(
        social
            .create(
                &ada,
                &linked,
                Some(Replacing {
                    user: moved.id,
                    credential_version: 0
                })
            )
            .await,
        CreateOutcome::ReplacedChanged
    );
    assert!(social.stored(&moved).await.is_some());
    assert_eq!(social.stored(&ada).await, None);
    assert_eq!(social.find(ISSUER, "s-1").await, None);
    social.accounts.delete(moved.id, at(11)).await.unwrap();
    // It proved its address.
    let proven = social.account("ada@example.com").await;
    assert!(
        social
            .accounts
            .mark_email_verified(proven.id, &proven.email, at(12))
            .await
            .unwrap()
    );
    let (ada, linked) = newcomer("s-2");
    assert_eq!(
        social
            .create(
                &ada,
                &linked,
                Some(Replacing {
                    user: proven.id,
                    credential_version: 0
                })
            )
            .await,
        CreateOutcome::ReplacedChanged
    );
    assert!(social.stored(&proven).await.is_some());
    social.accounts.delete(proven.id, at(13)).await.unwrap();
    // It is an administrator's (unverified, never replaced by a stranger's sign-in).
    let admin = User::new(
        email("ada@example.com"),
        None,
        Role::Admin,
        PasswordHash::new("x".into()),
        None,
        at(0),
    );
    social.accounts.insert(&admin).await.unwrap();
    let (ada, linked) = newcomer("s-3");
    assert_eq!(
        social
            .create(
                &ada,
                &linked,
                Some(Replacing {
                    user: admin.id,
                    credential_version: 0
                })
            )
            .await,
        CreateOutcome::ReplacedChanged
    );
    assert!(social.stored(&admin).await.is_some());
}

// Flows.

#[tokio::test]
async fn a_flow_is_taken_once_with_everything_it_was_saved_with() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    let binding = hash();
    let session = social.signed_in(&ada).await;
    let signing_in = flow(&binding, 600);
    let linking = SocialFlow {
        purpose: FlowPurpose::Link {
            user: ada.id,
            session,
        },
        delivery: Delivery::Cookies,
        ..flow(&binding, 600)
    };
    let proving = SocialFlow {
        purpose: FlowPurpose::Reauthenticate {
            user: ada.id,
            session,
        },
        ..flow(&binding, 600)
    };
    for flow in [&signing_in, &linking, &proving] {
        social.flows.save_flow(flow).await.unwrap();
    }

    assert_eq!(
        social.take_flow(&signing_in, &binding, 10).await,
        Some(signing_in.clone())
    );
    assert_eq!(
        social.take_flow(&signing_in, &binding, 11).await,
        None,
        "a replayed callback finds nothing"
    );
    assert_eq!(
        social.take_flow(&linking, &binding, 12).await,
        Some(linking)
    );
    assert_eq!(
        social.take_flow(&proving, &binding, 13).await,
        Some(proving)
    );
}

#[tokio::test]
async fn a_flow_of_a_session_is_deleted_with_the_session() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    let session = social.signed_in(&ada).await;
    let binding = hash();
    let linking = SocialFlow {
        purpose: FlowPurpose::Link {
            user: ada.id,
            session,
        },
        ..flow(&binding, 600)
    };
    social.flows.save_flow(&linking).await.unwrap();

    assert!(social.sessions.revoke(session, at(10)).await.unwrap());
    assert_eq!(social.sessions.delete_ended(at(20)).await.unwrap(), 1);

    assert_eq!(social.take_flow(&linking, &binding, 30).await, None);
}

#[tokio::test]
async fn two_callbacks_taking_one_flow_at_once_get_it_once() {
    let social = Social::new().await;
    let binding = hash();
    let started = flow(&binding, 600);
    social.flows.save_flow(&started).await.unwrap();

    let (first, second) = social
        .race(async {
            tokio::join!(
                social.take_flow(&started, &binding, 10),
                social.take_flow(&started, &binding, 10)
            )
        })
        .await;

    assert_eq!(
        [first.is_some(), second.is_some()]
            .iter()
            .filter(|t| **t)
            .count(),
        1,
        "exactly one callback gets the flow"
    );
}

#[tokio::test]
async fn an_expired_flow_is_never_taken() {
    let social = Social::new().await;
    let binding = hash();
    let started = flow(&binding, 600);
    social.flows.save_flow(&started).await.unwrap();

    assert_eq!(social.take_flow(&started, &binding, 600).await, None);
    assert_eq!(social.take_flow(&started, &binding, 601).await, None);
    assert_eq!(
        social.take_flow(&started, &binding, 599).await,
        Some(started),
        "it was there until it expired"
    );
}

#[tokio::test]
async fn a_flow_is_not_taken_by_another_browser_and_stays_for_its_own() {
    let social = Social::new().await;
    let (ours, theirs) = (hash(), hash());
    let started = flow(&ours, 600);
    social.flows.save_flow(&started).await.unwrap();

    assert_eq!(social.take_flow(&started, &theirs, 10).await, None);
    assert_eq!(
        social
            .flows
            .take_flow(&hash(), &ours, at(10))
            .await
            .unwrap(),
        None,
        "an unknown state"
    );

    assert_eq!(social.take_flow(&started, &ours, 11).await, Some(started));
}

// One-time codes.

#[tokio::test]
async fn a_code_is_taken_once_for_its_kind_with_the_identity_it_carries() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    let sign_in = code(&ada, SocialCodeKind::SignIn, 120);
    let pending = code(&ada, SocialCodeKind::Link, 3600);
    social.flows.save_code(&sign_in).await.unwrap();
    social.flows.save_code(&pending).await.unwrap();

    assert_eq!(
        social.take_code(&sign_in, SocialCodeKind::Link, 10).await,
        None,
        "a sign-in code is no confirmation link"
    );
    assert_eq!(
        social.take_code(&sign_in, SocialCodeKind::SignIn, 10).await,
        Some(sign_in.clone())
    );
    assert_eq!(
        social.take_code(&sign_in, SocialCodeKind::SignIn, 11).await,
        None,
        "a reused code finds nothing"
    );
    assert_eq!(
        social.take_code(&pending, SocialCodeKind::Link, 12).await,
        Some(pending)
    );
}

#[tokio::test]
async fn two_clients_finishing_with_one_code_at_once_get_it_once() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    let sign_in = code(&ada, SocialCodeKind::SignIn, 120);
    social.flows.save_code(&sign_in).await.unwrap();

    let (first, second) = social
        .race(async {
            tokio::join!(
                social.take_code(&sign_in, SocialCodeKind::SignIn, 10),
                social.take_code(&sign_in, SocialCodeKind::SignIn, 10)
            )
        })
        .await;

    assert_eq!(
        [first.is_some(), second.is_some()]
            .iter()
            .filter(|t| **t)
            .count(),
        1
    );
}

#[tokio::test]
async fn an_expired_code_is_never_taken_and_expired_state_is_purged() {
    let social = Social::new().await;
    let ada = social.account("ada@example.com").await;
    let binding = hash();
    let (old_flow, new_flow) = (flow(&binding, 60), flow(&binding, 600));
    let (old_code, new_code) = (
        code(&ada, SocialCodeKind::SignIn, 60),
        code(&ada, SocialCodeKind::SignIn, 600),
    );
    for flow in [&old_flow, &new_flow] {
        social.flows.save_flow(flow).await.unwrap();
    }
    for code in [&old_code, &new_code] {
        social.flows.save_code(code).await.unwrap();
    }

    assert_eq!(
        social
            .take_code(&old_code, SocialCodeKind::SignIn, 60)
            .await,
        None
    );
    assert_eq!(social.flows.delete_expired(at(60)).await.unwrap(), 2);
    assert_eq!(social.flows.delete_expired(at(60)).await.unwrap(), 0);

    assert_eq!(
        social
            .take_code(&old_code, SocialCodeKind::SignIn, 30)
            .await,
        None,
        "purged"
    );
    assert_eq!(social.take_flow(&old_flow, &binding, 30).await, None);
    assert_eq!(
        social
            .take_code(&new_code, SocialCodeKind::SignIn, 70)
            .await,
        Some(new_code)
    );
    assert_eq!(
        social.take_flow(&new_flow, &binding, 70).await,
        Some(new_flow)
    );
}

#[tokio::test]
async fn live_flows_are_counted_per_binding_and_overall_and_expired_ones_are_not() {
    let social = Social::new().await;
    let (mine, theirs) = (hash(), hash());
    let first = flow(&mine, 600);
    for saved in [
        &first,
        &flow(&mine, 600),
        &flow(&theirs, 600),
        &flow(&mine, 30),
    ] {
        social.flows.save_flow(saved).await.unwrap();
    }
    let live = |binding: Option<TokenHash>, seconds| {
        let flows = social.flows.clone();
        async move {
            flows
                .live_flows(binding.as_ref(), at(seconds))
                .await
                .unwrap()
        }
    };
    assert_eq!(live(Some(mine.clone()), 10).await, 3);
    assert_eq!(live(Some(theirs.clone()), 10).await, 1);
    assert_eq!(live(None, 10).await, 4);
    // One expired, one used.
    assert_eq!(live(Some(mine.clone()), 30).await, 2);
    assert!(social.take_flow(&first, &mine, 40).await.is_some());
    assert_eq!(live(Some(mine.clone()), 40).await, 1);
    assert_eq!(live(None, 40).await, 2);
    assert_eq!(live(None, 600).await, 0);
}
