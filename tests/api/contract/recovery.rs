//! The "this wasn't me" path (`AccountRecoveryStore`): a recovery link gives its account back
//! to the address it was sent to for its whole window, whatever the account went through
//! since; later links die with it, earlier ones stay; what was set up within the window goes.

use authgraph::domain::{
    AccountToken, Email, OpaqueToken, PasswordHash, Role, TokenHash, TokenPurpose, TotpFactor, User,
};

use super::{Stores, at, email, session_of};

fn locked() -> PasswordHash {
    PasswordHash::new("$argon2id$locked".into())
}

/// A recovery link to `user`'s address as it is now, made at `seconds`, working for an hour.
async fn recovery_link(stores: &Stores, user: &User, seconds: i64) -> TokenHash {
    let now = stores.reread(user).await.unwrap();
    let link = AccountToken {
        hash: OpaqueToken::generate().unwrap().hash(),
        user_id: now.id,
        purpose: TokenPurpose::SecureAccount,
        email: now.email.clone(),
        credential_version: now.credential_version,
        target_email: None,
        created_at: at(seconds),
        expires_at: at(seconds + 3600),
    };
    assert!(
        stores.links.issue(&link).await.unwrap(),
        "the link is stored"
    );
    link.hash
}

/// Moves `user`'s account to `to` as a used confirmation link would.
async fn moved(stores: &Stores, user: &User, to: &str, seconds: i64) {
    let now = stores.reread(user).await.unwrap();
    assert!(
        stores
            .accounts
            .change_email(now.id, &email(to), now.credential_version, at(seconds))
            .await
            .unwrap()
    );
}

async fn secure(stores: &Stores, link: &TokenHash, seconds: i64) -> Option<Email> {
    stores
        .recovery
        .secure(link, &locked(), at(seconds))
        .await
        .unwrap()
        .map(|secured| secured.email)
}

/// Turns a factor on for `user`, confirmed at `seconds`, with three recovery codes.
async fn factor_confirmed_at(stores: &Stores, user: &User, seconds: i64) {
    let factor = TotpFactor {
        user_id: user.id,
        sealed_secret: "sealed".into(),
        created_at: at(seconds),
        confirmed_at: None,
        last_step: 0,
    };
    assert!(stores.factors.begin_enrollment(&factor).await.unwrap());
    let codes: Vec<_> = (0..3)
        .map(|_| OpaqueToken::generate().unwrap().hash())
        .collect();
    assert!(
        stores
            .factors
            .confirm(user.id, "sealed", 1, &codes, at(seconds))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_link_gives_the_account_back_through_any_number_of_changes() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let owners = recovery_link(&stores, &ada, 1).await;
    moved(&stores, &ada, "h1@evil.example", 2).await;
    stores
        .accounts
        .set_password_hash(ada.id, &PasswordHash::new("$argon2id$theirs".into()), at(3))
        .await
        .unwrap();
    let theirs = recovery_link(&stores, &ada, 4).await;
    moved(&stores, &ada, "h2@evil.example", 5).await;
    stores
        .accounts
        .request_email_change(ada.id, &email("h3@evil.example"), at(6))
        .await
        .unwrap();
    let before = stores.reread(&ada).await.unwrap();

    assert_eq!(secure(&stores, &owners, 10).await, Some(ada.email.clone()));

    let back = stores.reread(&ada).await.unwrap();
    assert_eq!(back.email, ada.email);
    assert_eq!(back.email_verified_at, Some(at(10)));
    assert_eq!(back.pending_email, None, "the pending change is void");
    assert_eq!(back.password_hash, locked(), "a reset is needed");
    assert!(back.credential_version > before.credential_version);
    assert_eq!(
        secure(&stores, &theirs, 11).await,
        None,
        "a link issued since dies"
    );
    assert_eq!(secure(&stores, &owners, 12).await, None, "used once");
}

#[tokio::test]
async fn the_intruders_own_link_cannot_undo_the_owners() {
    let stores = Stores::new().await;
    // The intruder uses theirs first: the owner's, older, still wins.
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let owners = recovery_link(&stores, &ada, 1).await;
    moved(&stores, &ada, "h@evil.example", 2).await;
    let theirs = recovery_link(&stores, &ada, 3).await;
    assert_eq!(
        secure(&stores, &theirs, 4).await,
        Some(email("h@evil.example"))
    );
    assert_eq!(secure(&stores, &owners, 5).await, Some(ada.email.clone()));
    assert_eq!(stores.reread(&ada).await.unwrap().email, ada.email);

    // The owner uses theirs first: the intruder's is dead.
    let bob = stores.account("bob@example.com", Role::User, at(0)).await;
    let owners = recovery_link(&stores, &bob, 1).await;
    moved(&stores, &bob, "h2@evil.example", 2).await;
    let theirs = recovery_link(&stores, &bob, 3).await;
    assert_eq!(secure(&stores, &owners, 4).await, Some(bob.email.clone()));
    assert_eq!(secure(&stores, &theirs, 5).await, None);
    assert_eq!(stores.reread(&bob).await.unwrap().email, bob.email);
}

#[tokio::test]
async fn two_links_of_the_owner_work_in_either_order() {
    let stores = Stores::new().await;
    // The owner moved legitimately, X -> Y; then an intruder moved Y -> H.
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let to_x = recovery_link(&stores, &ada, 1).await;
    moved(&stores, &ada, "ada@y.example.com", 2).await;
    let to_y = recovery_link(&stores, &ada, 3).await;
    moved(&stores, &ada, "h@evil.example", 4).await;
    let theirs = recovery_link(&stores, &ada, 5).await;

    assert_eq!(
        secure(&stores, &to_y, 10).await,
        Some(email("ada@y.example.com"))
    );
    assert_eq!(secure(&stores, &theirs, 11).await, None);
    assert_eq!(
        secure(&stores, &to_x, 12).await,
        Some(ada.email.clone()),
        "an earlier link still works: it undoes more"
    );
}

#[tokio::test]
async fn the_window_starts_at_the_earliest_link_to_the_same_mailbox() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let first = recovery_link(&stores, &ada, 1).await;
    factor_confirmed_at(&stores, &ada, 3).await;
    let latest = recovery_link(&stores, &ada, 5).await;

    let secured = stores
        .recovery
        .secure(&latest, &locked(), at(10))
        .await
        .unwrap()
        .unwrap();
    assert!(
        secured.factor_removed,
        "the factor came after the first link"
    );
    assert_eq!(stores.factors.find(ada.id).await.unwrap(), None);
    assert_eq!(stores.reread(&ada).await.unwrap().mfa_enabled_at, None);
    assert_eq!(stores.factors.recovery_codes_left(ada.id).await.unwrap(), 0);
    assert_eq!(
        secure(&stores, &first, 11).await,
        None,
        "it was part of the same window"
    );
}

#[tokio::test]
async fn an_older_factor_stays_but_codes_made_within_the_window_go() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    factor_confirmed_at(&stores, &ada, 1).await;
    let link = recovery_link(&stores, &ada, 5).await;
    let theirs: Vec<_> = (0..3)
        .map(|_| OpaqueToken::generate().unwrap().hash())
        .collect();
    stores
        .factors
        .replace_recovery_codes(ada.id, &theirs, at(6))
        .await
        .unwrap();

    let secured = stores
        .recovery
        .secure(&link, &locked(), at(10))
        .await
        .unwrap()
        .unwrap();
    assert!(!secured.factor_removed);
    assert_eq!(secured.recovery_codes_removed, 3);
    let factor = stores.factors.find(ada.id).await.unwrap().unwrap();
    assert_eq!(factor.confirmed_at, Some(at(1)), "the owner's factor stays");
    assert!(stores.reread(&ada).await.unwrap().mfa_enabled_at.is_some());
    assert_eq!(stores.factors.recovery_codes_left(ada.id).await.unwrap(), 0);
}

#[tokio::test]
async fn every_session_ends() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let mine = session_of(&ada, at(1));
    let theirs = session_of(&ada, at(2));
    for session in [&mine, &theirs] {
        let refresh = OpaqueToken::generate().unwrap().hash();
        stores.sessions.create(session, &refresh).await.unwrap();
    }
    let link = recovery_link(&stores, &ada, 3).await;

    let secured = stores
        .recovery
        .secure(&link, &locked(), at(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secured.sessions_ended, 2);
    for session in [mine, theirs] {
        let stored = stores.sessions.find(session.id).await.unwrap().unwrap();
        assert_eq!(stored.revoked_at, Some(at(10)));
    }
}

#[tokio::test]
async fn a_link_works_within_its_window_and_once_of_two_concurrent_uses() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let link = recovery_link(&stores, &ada, 0).await;
    assert_eq!(secure(&stores, &link, 3600).await, None, "expired");

    let bob = stores.account("bob@example.com", Role::User, at(0)).await;
    let link = recovery_link(&stores, &bob, 0).await;
    let (one, other) = stores
        .race(async { tokio::join!(secure(&stores, &link, 10), secure(&stores, &link, 10)) })
        .await;
    assert_eq!(one.is_some() as u8 + other.is_some() as u8, 1);
}

#[tokio::test]
async fn the_address_is_held_for_its_account_alone() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let link = recovery_link(&stores, &ada, 1).await;
    moved(&stores, &ada, "ada@new.example.com", 2).await;

    assert!(
        stores
            .recovery
            .is_reserved(&ada.email, None, at(3))
            .await
            .unwrap()
    );
    assert!(
        !stores
            .recovery
            .is_reserved(&ada.email, Some(ada.id), at(3))
            .await
            .unwrap(),
        "not against the account itself"
    );
    assert!(
        !stores
            .recovery
            .is_reserved(&ada.email, None, at(1 + 3600))
            .await
            .unwrap(),
        "not after the window"
    );

    // Were another account to hold the address anyway, nothing changes and the link stays.
    let squatter = stores.account("ada@example.com", Role::User, at(4)).await;
    assert!(matches!(
        stores.recovery.secure(&link, &locked(), at(5)).await,
        Err(authgraph::domain::RepositoryError::Conflict)
    ));
    assert_eq!(
        stores.reread(&ada).await.unwrap().email,
        email("ada@new.example.com")
    );
    stores.accounts.delete(squatter.id, at(6)).await.unwrap();
    assert_eq!(secure(&stores, &link, 7).await, Some(ada.email.clone()));
}

#[tokio::test]
async fn a_passkey_added_within_the_window_goes_with_every_ceremony_of_the_account() {
    use super::passkeys::{ceremony, passkey_of};
    use authgraph::domain::{CeremonyBinding, CeremonyPurpose, SessionId};

    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let bob = stores.account("bob@example.com", Role::User, at(0)).await;
    let owners = passkey_of(&ada, 1, 1);
    stores.passkeys.add(&owners).await.unwrap();
    let link = recovery_link(&stores, &ada, 5).await;
    let intruders = passkey_of(&ada, 2, 6);
    stores.passkeys.add(&intruders).await.unwrap();
    let bobs = passkey_of(&bob, 3, 6);
    stores.passkeys.add(&bobs).await.unwrap();
    let enrolling = ceremony(
        CeremonyPurpose::Registration,
        Some(&ada),
        CeremonyBinding::Session(SessionId::generate()),
        7,
    );
    let bobs_enrolment = ceremony(
        CeremonyPurpose::Registration,
        Some(&bob),
        CeremonyBinding::Session(SessionId::generate()),
        7,
    );
    for started in [&enrolling, &bobs_enrolment] {
        stores.passkeys.save_ceremony(started).await.unwrap();
    }

    let secured = stores
        .recovery
        .secure(&link, &locked(), at(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secured.passkeys_removed, 1);
    let left: Vec<_> = stores
        .passkeys
        .list(ada.id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(left, vec![owners.id], "the owner's older passkey stays");
    assert_eq!(
        stores
            .passkeys
            .find_by_credential(&intruders.credential_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(stores.passkeys.list(bob.id).await.unwrap().len(), 1);
    assert_eq!(
        stores
            .passkeys
            .take_ceremony(enrolling.id, enrolling.purpose, &enrolling.binding, at(11))
            .await
            .unwrap(),
        None,
        "the account's ceremonies are gone"
    );
    assert!(
        stores
            .passkeys
            .take_ceremony(
                bobs_enrolment.id,
                bobs_enrolment.purpose,
                &bobs_enrolment.binding,
                at(11)
            )
            .await
            .unwrap()
            .is_some(),
        "another account's stay"
    );
}
