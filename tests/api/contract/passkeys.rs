//! Passkeys (`PasskeyStore`): a credential id belongs to one account only; renames, removals
//! and uses touch only the owner's passkey; a use moves the signature counter forward or is
//! refused; and the ceremony state between a start and a finish is used once, before it
//! expires, by the use case and the session or ticket that started it — of concurrent takes
//! of one ceremony, exactly one gets it.
//!
//! The SeaORM repository only, on the database `TEST_DATABASE_URL` names (SQLite otherwise).

use std::sync::Arc;

use authgraph::domain::{
    AccountStore, Ceremony, CeremonyBinding, CeremonyId, CeremonyPurpose, CredentialId,
    GuardedChange, OpaqueToken, Passkey, PasskeyId, PasskeyName, PasskeyRemoval, PasskeyStore,
    PasskeyUse, PasswordHash, RepositoryError, Role, SessionId, User,
};
use authgraph::infrastructure::persistence::{
    OverlapGate, SeaOrmPasskeyRepository, SeaOrmUserRepository,
};

use super::{Fresh, at, email};
use crate::helpers::TestDatabase;

/// The passkey store and the account store over one fresh, migrated database.
struct Stores {
    accounts: Arc<dyn AccountStore>,
    passkeys: Arc<dyn PasskeyStore>,
    overlap: OverlapGate,
    _database: TestDatabase,
}

impl Stores {
    async fn new() -> Self {
        let Fresh {
            database,
            writes,
            overlap,
            ..
        } = Fresh::database().await;
        Self {
            accounts: Arc::new(SeaOrmUserRepository::new(writes.clone())),
            passkeys: Arc::new(SeaOrmPasskeyRepository::new(writes)),
            overlap,
            _database: database,
        }
    }

    /// Runs the calls of a race so that they overlap for sure (see `contract::Stores::race`).
    async fn race<T>(&self, calls: impl std::future::Future<Output = T>) -> T {
        self.overlap.arm();
        let outcome = calls.await;
        assert!(self.overlap.finish(), "the racing calls did not overlap");
        outcome
    }

    async fn account(&self, address: &str) -> User {
        let user = User::new(
            email(address),
            None,
            Role::User,
            PasswordHash::new("$argon2id$not-checked-here".into()),
            None,
            at(0),
        );
        self.accounts.insert(&user).await.unwrap();
        user
    }

    async fn credential_version(&self, user: &User) -> i64 {
        self.accounts
            .find_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .credential_version
    }

    async fn list(&self, user: &User) -> Vec<Passkey> {
        self.passkeys.list(user.id).await.unwrap()
    }

    /// Adds a passkey of `user` with a credential id made of `seed`, at `seconds`.
    async fn added(&self, user: &User, seed: u8, seconds: i64) -> Passkey {
        let passkey = passkey_of(user, seed, seconds);
        self.passkeys.add(&passkey).await.unwrap();
        passkey
    }

    async fn take(
        &self,
        ceremony: &Ceremony,
        purpose: CeremonyPurpose,
        binding: &CeremonyBinding,
        seconds: i64,
    ) -> Option<Ceremony> {
        self.passkeys
            .take_ceremony(ceremony.id, purpose, binding, at(seconds))
            .await
            .unwrap()
    }
}

/// A credential id of 32 bytes of `seed`.
pub(super) fn credential(seed: u8) -> CredentialId {
    CredentialId::from_bytes(vec![seed; 32]).unwrap()
}

pub(super) fn passkey_of(user: &User, seed: u8, seconds: i64) -> Passkey {
    Passkey {
        id: PasskeyId::generate(),
        user_id: user.id,
        credential_id: credential(seed),
        credential: format!(r#"{{"cred":{{"seed":{seed},"counter":0}}}}"#),
        name: PasskeyName::parse(&format!("Key {seed}")).unwrap(),
        created_at: at(seconds),
        last_used_at: None,
        sign_count: 0,
        backup_eligible: true,
        backed_up: false,
    }
}

/// A use of `passkey` carrying `counter`, at `seconds`.
fn use_of(passkey: &Passkey, counter: u32, seconds: i64) -> PasskeyUse<'static> {
    PasskeyUse {
        passkey: passkey.id,
        user: passkey.user_id,
        credential: r#"{"cred":"updated"}"#,
        sign_count: counter,
        backup_eligible: passkey.backup_eligible,
        backed_up: true,
        at: at(seconds),
    }
}

/// A ceremony started at `seconds`, expiring five minutes later.
pub(super) fn ceremony(
    purpose: CeremonyPurpose,
    user: Option<&User>,
    binding: CeremonyBinding,
    seconds: i64,
) -> Ceremony {
    Ceremony {
        id: CeremonyId::generate().unwrap(),
        purpose,
        user_id: user.map(|u| u.id),
        binding,
        state: r#"{"rs":{"challenge":"c2VjcmV0"}}"#.into(),
        created_at: at(seconds),
        expires_at: at(seconds + 300),
    }
}

// Passkeys.

#[tokio::test]
async fn a_passkey_is_listed_and_found_by_its_credential_id_as_added() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let bob = stores.account("bob@example.com").await;

    let second = stores.added(&ada, 2, 20).await;
    let first = stores.added(&ada, 1, 10).await;
    // The longest credential id WebAuthn allows fits.
    let long = Passkey {
        credential_id: CredentialId::from_bytes(vec![0xfe; CredentialId::MAX_BYTES]).unwrap(),
        ..passkey_of(&bob, 0, 30)
    };
    stores.passkeys.add(&long).await.unwrap();

    assert_eq!(stores.list(&ada).await, vec![first.clone(), second]);
    assert_eq!(stores.list(&bob).await, vec![long.clone()]);
    assert_eq!(
        stores
            .passkeys
            .find_by_credential(&credential(1))
            .await
            .unwrap(),
        Some(first)
    );
    assert_eq!(
        stores
            .passkeys
            .find_by_credential(&long.credential_id)
            .await
            .unwrap(),
        Some(long)
    );
    assert_eq!(
        stores
            .passkeys
            .find_by_credential(&credential(9))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_credential_id_registered_to_one_account_is_refused_to_every_account() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let bob = stores.account("bob@example.com").await;
    let adas = stores.added(&ada, 1, 10).await;
    let bob_version = stores.credential_version(&bob).await;

    for (owner, seconds) in [(&bob, 20), (&ada, 30)] {
        let again = Passkey {
            name: PasskeyName::parse("Taken").unwrap(),
            ..passkey_of(owner, 1, seconds)
        };
        assert!(
            matches!(
                stores.passkeys.add(&again).await,
                Err(RepositoryError::Conflict)
            ),
            "{}",
            owner.email.as_str()
        );
    }

    assert_eq!(stores.list(&ada).await, vec![adas.clone()]);
    assert_eq!(stores.list(&bob).await, vec![]);
    assert_eq!(
        stores.credential_version(&bob).await,
        bob_version,
        "nothing of the refused add is kept"
    );
    assert_eq!(
        stores
            .passkeys
            .find_by_credential(&credential(1))
            .await
            .unwrap()
            .map(|p| p.user_id),
        Some(ada.id)
    );
}

#[tokio::test]
async fn adding_and_removing_a_passkey_moves_the_credential_version_on() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let before = stores.credential_version(&ada).await;

    let key = stores.added(&ada, 1, 10).await;
    let added = stores.credential_version(&ada).await;
    assert!(added > before, "links issued before the passkey die");

    assert_eq!(
        stores.passkeys.remove(ada.id, key.id, false).await.unwrap(),
        PasskeyRemoval::Removed
    );
    assert!(stores.credential_version(&ada).await > added);

    let unchanged = stores.credential_version(&ada).await;
    assert_eq!(
        stores.passkeys.remove(ada.id, key.id, false).await.unwrap(),
        PasskeyRemoval::NotFound
    );
    assert_eq!(stores.passkeys.remove_all(ada.id).await.unwrap(), 0);
    assert_eq!(
        stores.credential_version(&ada).await,
        unchanged,
        "removing nothing changes nothing"
    );
}

#[tokio::test]
async fn only_the_owner_renames_or_removes_a_passkey() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let bob = stores.account("bob@example.com").await;
    let key = stores.added(&ada, 1, 10).await;
    let name = PasskeyName::parse("Phone").unwrap();

    assert!(!stores.passkeys.rename(bob.id, key.id, &name).await.unwrap());
    assert_eq!(
        stores.passkeys.remove(bob.id, key.id, false).await.unwrap(),
        PasskeyRemoval::NotFound
    );
    assert_eq!(
        stores.passkeys.remove_all(bob.id).await.unwrap(),
        0,
        "not another account's"
    );
    assert_eq!(stores.list(&ada).await, vec![key.clone()]);

    assert!(stores.passkeys.rename(ada.id, key.id, &name).await.unwrap());
    assert!(
        stores.passkeys.rename(ada.id, key.id, &name).await.unwrap(),
        "the same name again still finds it"
    );
    assert_eq!(
        stores.list(&ada).await,
        vec![Passkey {
            name,
            ..key.clone()
        }]
    );
    assert!(
        !stores
            .passkeys
            .rename(ada.id, PasskeyId::generate(), &key.name)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_last_passkey_stays_when_the_caller_keeps_one() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let first = stores.added(&ada, 1, 10).await;
    let second = stores.added(&ada, 2, 20).await;

    assert_eq!(
        stores
            .passkeys
            .remove(ada.id, first.id, true)
            .await
            .unwrap(),
        PasskeyRemoval::Removed
    );
    let version = stores.credential_version(&ada).await;
    assert_eq!(
        stores
            .passkeys
            .remove(ada.id, second.id, true)
            .await
            .unwrap(),
        PasskeyRemoval::LastPasskey
    );
    assert_eq!(stores.list(&ada).await, vec![second.clone()]);
    assert_eq!(stores.credential_version(&ada).await, version);

    assert_eq!(
        stores
            .passkeys
            .remove(ada.id, second.id, false)
            .await
            .unwrap(),
        PasskeyRemoval::Removed
    );
    assert_eq!(stores.list(&ada).await, vec![]);
}

#[tokio::test]
async fn removing_the_last_two_passkeys_at_once_keeping_one_removes_one() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let first = stores.added(&ada, 1, 10).await;
    let second = stores.added(&ada, 2, 20).await;

    let (a, b) = stores
        .race(async {
            tokio::join!(
                stores.passkeys.remove(ada.id, first.id, true),
                stores.passkeys.remove(ada.id, second.id, true)
            )
        })
        .await;

    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| *o == PasskeyRemoval::LastPasskey);
    assert_eq!(
        outcomes,
        [PasskeyRemoval::Removed, PasskeyRemoval::LastPasskey]
    );
    assert_eq!(stores.list(&ada).await.len(), 1);
}

#[tokio::test]
async fn removing_all_of_an_accounts_passkeys_leaves_the_others() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let bob = stores.account("bob@example.com").await;
    stores.added(&ada, 1, 10).await;
    stores.added(&ada, 2, 20).await;
    let bobs = stores.added(&bob, 3, 30).await;
    let version = stores.credential_version(&ada).await;

    assert_eq!(stores.passkeys.remove_all(ada.id).await.unwrap(), 2);

    assert_eq!(stores.list(&ada).await, vec![]);
    assert_eq!(stores.list(&bob).await, vec![bobs]);
    assert!(stores.credential_version(&ada).await > version);
}

// Uses.

#[tokio::test]
async fn a_use_moves_the_counter_forward_and_records_what_the_authenticator_reported() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let key = stores.added(&ada, 1, 10).await;

    assert!(
        stores
            .passkeys
            .record_use(&use_of(&key, 5, 60))
            .await
            .unwrap()
    );

    assert_eq!(
        stores.list(&ada).await,
        vec![Passkey {
            credential: r#"{"cred":"updated"}"#.into(),
            sign_count: 5,
            backed_up: true,
            last_used_at: Some(at(60)),
            ..key
        }]
    );
}

#[tokio::test]
async fn a_counter_that_does_not_move_forward_is_refused() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let key = stores.added(&ada, 1, 10).await;
    assert!(
        stores
            .passkeys
            .record_use(&use_of(&key, 5, 60))
            .await
            .unwrap()
    );
    let after_first = stores.list(&ada).await;

    for (counter, what) in [(5, "the same counter"), (4, "a lower one"), (0, "zero")] {
        assert!(
            !stores
                .passkeys
                .record_use(&use_of(&key, counter, 70))
                .await
                .unwrap(),
            "{what}"
        );
    }
    assert_eq!(stores.list(&ada).await, after_first, "nothing changed");
    assert!(
        stores
            .passkeys
            .record_use(&use_of(&key, 6, 80))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_authenticator_without_a_counter_may_use_its_passkey_again() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let key = stores.added(&ada, 1, 10).await;

    for seconds in [60, 70] {
        assert!(
            stores
                .passkeys
                .record_use(&use_of(&key, 0, seconds))
                .await
                .unwrap()
        );
    }
    assert_eq!(stores.list(&ada).await[0].last_used_at, Some(at(70)));
}

#[tokio::test]
async fn a_use_reporting_another_backup_eligibility_or_by_another_account_is_refused() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let bob = stores.account("bob@example.com").await;
    let key = stores.added(&ada, 1, 10).await;

    let flipped = PasskeyUse {
        backup_eligible: !key.backup_eligible,
        ..use_of(&key, 5, 60)
    };
    let not_bobs = PasskeyUse {
        user: bob.id,
        ..use_of(&key, 5, 60)
    };
    assert!(!stores.passkeys.record_use(&flipped).await.unwrap());
    assert!(!stores.passkeys.record_use(&not_bobs).await.unwrap());
    assert_eq!(stores.list(&ada).await, vec![key]);
}

#[tokio::test]
async fn of_two_uses_carrying_the_same_counter_at_once_one_is_recorded() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let key = stores.added(&ada, 1, 10).await;

    let (first, second) = (use_of(&key, 7, 60), use_of(&key, 7, 60));
    let (a, b) = stores
        .race(async {
            tokio::join!(
                stores.passkeys.record_use(&first),
                stores.passkeys.record_use(&second)
            )
        })
        .await;

    let mut recorded = [a.unwrap(), b.unwrap()];
    recorded.sort();
    assert_eq!(recorded, [false, true]);
}

// Ceremonies.

#[tokio::test]
async fn a_ceremony_is_taken_once_as_it_was_saved() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let session = CeremonyBinding::Session(SessionId::generate());
    let started = ceremony(
        CeremonyPurpose::Registration,
        Some(&ada),
        session.clone(),
        0,
    );
    stores.passkeys.save_ceremony(&started).await.unwrap();

    assert_eq!(
        stores
            .take(&started, CeremonyPurpose::Registration, &session, 60)
            .await,
        Some(started.clone())
    );
    assert_eq!(
        stores
            .take(&started, CeremonyPurpose::Registration, &session, 61)
            .await,
        None,
        "used"
    );
}

#[tokio::test]
async fn a_ceremony_is_taken_only_for_its_purpose_and_by_what_started_it() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    let session = SessionId::generate();
    let ticket = OpaqueToken::generate().unwrap().hash();
    let mfa = ceremony(
        CeremonyPurpose::Mfa,
        Some(&ada),
        CeremonyBinding::Ticket(ticket.clone()),
        0,
    );
    let sign_in = ceremony(CeremonyPurpose::SignIn, None, CeremonyBinding::Unbound, 0);
    for started in [&mfa, &sign_in] {
        stores.passkeys.save_ceremony(started).await.unwrap();
    }

    let other_ticket = CeremonyBinding::Ticket(OpaqueToken::generate().unwrap().hash());
    for (purpose, binding) in [
        (
            CeremonyPurpose::Reauthentication,
            CeremonyBinding::Ticket(ticket.clone()),
        ),
        (
            CeremonyPurpose::SignIn,
            CeremonyBinding::Ticket(ticket.clone()),
        ),
        (CeremonyPurpose::Mfa, other_ticket.clone()),
        (CeremonyPurpose::Mfa, CeremonyBinding::Session(session)),
        (CeremonyPurpose::Mfa, CeremonyBinding::Unbound),
    ] {
        assert_eq!(
            stores.take(&mfa, purpose, &binding, 10).await,
            None,
            "{purpose:?} {binding:?}"
        );
    }
    for (purpose, binding) in [
        (CeremonyPurpose::SignIn, other_ticket),
        (CeremonyPurpose::SignIn, CeremonyBinding::Session(session)),
        (CeremonyPurpose::Mfa, CeremonyBinding::Unbound),
    ] {
        assert_eq!(
            stores.take(&sign_in, purpose, &binding, 10).await,
            None,
            "{purpose:?} {binding:?}"
        );
    }

    // The wrong takes left them there.
    assert_eq!(
        stores
            .take(
                &mfa,
                CeremonyPurpose::Mfa,
                &CeremonyBinding::Ticket(ticket),
                20
            )
            .await,
        Some(mfa)
    );
    assert_eq!(
        stores
            .take(
                &sign_in,
                CeremonyPurpose::SignIn,
                &CeremonyBinding::Unbound,
                20
            )
            .await,
        Some(sign_in)
    );
}

#[tokio::test]
async fn an_expired_ceremony_is_not_taken() {
    let stores = Stores::new().await;
    let started = ceremony(CeremonyPurpose::SignIn, None, CeremonyBinding::Unbound, 0);
    stores.passkeys.save_ceremony(&started).await.unwrap();

    assert_eq!(
        stores
            .take(
                &started,
                CeremonyPurpose::SignIn,
                &CeremonyBinding::Unbound,
                300
            )
            .await,
        None,
        "it ends at its expiry"
    );
    assert_eq!(
        stores
            .take(
                &started,
                CeremonyPurpose::SignIn,
                &CeremonyBinding::Unbound,
                299
            )
            .await,
        Some(started),
        "(it was there, unused)"
    );
}

#[tokio::test]
async fn of_two_takes_of_one_ceremony_at_once_exactly_one_gets_it() {
    let stores = Stores::new().await;
    let started = ceremony(CeremonyPurpose::SignIn, None, CeremonyBinding::Unbound, 0);
    stores.passkeys.save_ceremony(&started).await.unwrap();

    let (a, b) = stores
        .race(async {
            tokio::join!(
                stores.take(
                    &started,
                    CeremonyPurpose::SignIn,
                    &CeremonyBinding::Unbound,
                    10
                ),
                stores.take(
                    &started,
                    CeremonyPurpose::SignIn,
                    &CeremonyBinding::Unbound,
                    10
                )
            )
        })
        .await;

    let taken: Vec<Ceremony> = [a, b].into_iter().flatten().collect();
    assert_eq!(taken, vec![started]);
}

#[tokio::test]
async fn expired_ceremonies_are_deleted_and_the_others_kept() {
    let stores = Stores::new().await;
    let early = ceremony(CeremonyPurpose::SignIn, None, CeremonyBinding::Unbound, 0);
    let late = ceremony(CeremonyPurpose::SignIn, None, CeremonyBinding::Unbound, 100);
    for started in [&early, &late] {
        stores.passkeys.save_ceremony(started).await.unwrap();
    }

    assert_eq!(
        stores
            .passkeys
            .delete_expired_ceremonies(at(300))
            .await
            .unwrap(),
        1
    );

    let unbound = CeremonyBinding::Unbound;
    assert_eq!(
        stores
            .take(&early, CeremonyPurpose::SignIn, &unbound, 0)
            .await,
        None,
        "deleted"
    );
    assert_eq!(
        stores
            .take(&late, CeremonyPurpose::SignIn, &unbound, 300)
            .await,
        Some(late)
    );
}

#[tokio::test]
async fn a_deleted_account_takes_its_passkeys_and_ceremonies_with_it() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com").await;
    stores.added(&ada, 1, 10).await;
    let session = CeremonyBinding::Session(SessionId::generate());
    let started = ceremony(
        CeremonyPurpose::Reauthentication,
        Some(&ada),
        session.clone(),
        20,
    );
    stores.passkeys.save_ceremony(&started).await.unwrap();

    assert_eq!(
        stores.accounts.delete(ada.id, at(30)).await.unwrap(),
        GuardedChange::Applied
    );

    assert_eq!(stores.list(&ada).await, vec![]);
    assert_eq!(
        stores
            .passkeys
            .find_by_credential(&credential(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .take(&started, CeremonyPurpose::Reauthentication, &session, 40)
            .await,
        None
    );
    // Its credential id may now be registered again.
    let bob = stores.account("bob@example.com").await;
    stores.added(&bob, 1, 50).await;
}
