//! The rules of emailed links (`AccountTokenRepository`): each works once, for its purpose,
//! until it expires, and only while the account still has the address and credential
//! version it was issued for.

use authgraph::domain::{
    AccountToken, Email, OpaqueToken, PasswordHash, Role, Suspension, SuspensionReason,
    TokenPurpose, UsedToken, User,
};

use super::{Stores, at, email, issued, used};

/// A link for `user` as it is now, issued at t0 and valid until `expires` seconds later.
fn link(user: &User, purpose: TokenPurpose, expires: i64) -> AccountToken {
    AccountToken {
        hash: OpaqueToken::generate().unwrap().hash(),
        user_id: user.id,
        purpose,
        email: user.email.clone(),
        credential_version: user.credential_version,
        target_email: None,
        created_at: at(0),
        expires_at: at(expires),
    }
}

/// A link that moves `user` to `target`.
fn move_link(user: &User, purpose: TokenPurpose, target: &Email) -> AccountToken {
    AccountToken {
        target_email: Some(target.clone()),
        ..link(user, purpose, 3600)
    }
}

#[tokio::test]
async fn a_link_works_once() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let reset = link(&ada, TokenPurpose::PasswordReset, 1800);
    issued(&stores, &reset).await;

    assert_eq!(
        used(&stores, &reset, 10).await,
        Some(UsedToken {
            user_id: ada.id,
            email: ada.email.clone(),
            target_email: None,
            credential_version: ada.credential_version,
        })
    );
    assert_eq!(used(&stores, &reset, 11).await, None, "used already");
}

#[tokio::test]
async fn peeking_at_a_link_does_not_use_it_and_sees_only_usable_ones() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let reset = link(&ada, TokenPurpose::PasswordReset, 1800);
    issued(&stores, &reset).await;
    let peek = |purpose, seconds| stores.links.peek(&reset.hash, purpose, at(seconds));

    let holder = Some(UsedToken {
        user_id: ada.id,
        email: ada.email.clone(),
        target_email: None,
        credential_version: ada.credential_version,
    });
    assert_eq!(peek(TokenPurpose::PasswordReset, 10).await.unwrap(), holder);
    assert_eq!(peek(TokenPurpose::PasswordReset, 10).await.unwrap(), holder);
    assert_eq!(
        peek(TokenPurpose::EmailVerification, 10).await.unwrap(),
        None
    );
    assert_eq!(
        peek(TokenPurpose::PasswordReset, 1800).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(used(&stores, &reset, 11).await, holder, "still usable");
    assert_eq!(
        peek(TokenPurpose::PasswordReset, 12).await.unwrap(),
        None,
        "used"
    );

    let voided = link(&ada, TokenPurpose::PasswordReset, 1800);
    issued(&stores, &voided).await;
    stores
        .accounts
        .set_password_hash(ada.id, &PasswordHash::new("$argon2id$new".into()), at(5))
        .await
        .unwrap();
    assert_eq!(
        stores
            .links
            .peek(&voided.hash, TokenPurpose::PasswordReset, at(10))
            .await
            .unwrap(),
        None,
        "issued for a credential version the account left"
    );
}

#[tokio::test]
async fn a_link_works_only_for_its_purpose() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let verification = link(&ada, TokenPurpose::EmailVerification, 1800);
    issued(&stores, &verification).await;

    let as_reset = stores
        .links
        .consume(&verification.hash, TokenPurpose::PasswordReset, at(10))
        .await
        .unwrap();

    assert_eq!(as_reset, None);
    assert!(
        used(&stores, &verification, 10).await.is_some(),
        "still good for its own purpose"
    );
}

#[tokio::test]
async fn a_link_expires_at_its_expiry() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let reset = link(&ada, TokenPurpose::PasswordReset, 1800);
    issued(&stores, &reset).await;

    assert_eq!(used(&stores, &reset, 1800).await, None, "expired");
    assert!(
        used(&stores, &reset, 1799).await.is_some(),
        "a second earlier it worked"
    );
}

#[tokio::test]
async fn a_password_change_voids_every_earlier_link() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let reset = link(&ada, TokenPurpose::PasswordReset, 1800);
    let verification = link(&ada, TokenPurpose::EmailVerification, 1800);
    issued(&stores, &reset).await;
    issued(&stores, &verification).await;

    stores
        .accounts
        .set_password_hash(ada.id, &PasswordHash::new("$argon2id$new".into()), at(5))
        .await
        .unwrap();

    assert_eq!(used(&stores, &reset, 10).await, None);
    assert_eq!(used(&stores, &verification, 10).await, None);
    let changed = stores.reread(&ada).await.unwrap();
    assert_eq!(changed.credential_version, ada.credential_version + 1);
    assert_eq!(changed.updated_at, at(5));
}

#[tokio::test]
async fn an_email_change_voids_every_earlier_link() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let reset = link(&ada, TokenPurpose::PasswordReset, 1800);
    issued(&stores, &reset).await;

    stores
        .accounts
        .change_email(
            ada.id,
            &email("ada@new.example.com"),
            ada.credential_version,
            at(5),
        )
        .await
        .unwrap();

    assert_eq!(used(&stores, &reset, 10).await, None);
}

#[tokio::test]
async fn no_link_is_issued_for_a_state_the_account_left() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    stores
        .accounts
        .set_password_hash(ada.id, &PasswordHash::new("$argon2id$new".into()), at(5))
        .await
        .unwrap();

    let stale_version = link(&ada, TokenPurpose::PasswordReset, 1800);
    let other_address = AccountToken {
        email: email("someone-else@example.com"),
        ..link(
            &stores.reread(&ada).await.unwrap(),
            TokenPurpose::PasswordReset,
            1800,
        )
    };

    assert!(!stores.links.issue(&stale_version).await.unwrap());
    assert!(!stores.links.issue(&other_address).await.unwrap());
    assert_eq!(used(&stores, &stale_version, 10).await, None, "not stored");
    assert_eq!(used(&stores, &other_address, 10).await, None, "not stored");
}

#[tokio::test]
async fn a_refused_link_leaves_the_earlier_one_working() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let earlier = link(&ada, TokenPurpose::EmailVerification, 1800);
    issued(&stores, &earlier).await;

    let refused = AccountToken {
        credential_version: ada.credential_version - 1,
        ..link(&ada, TokenPurpose::EmailVerification, 1800)
    };
    assert!(!stores.links.issue(&refused).await.unwrap());

    assert!(used(&stores, &earlier, 10).await.is_some());
}

#[tokio::test]
async fn a_newer_link_replaces_the_earlier_one_of_its_purpose() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let first = link(&ada, TokenPurpose::PasswordReset, 1800);
    let second = link(&ada, TokenPurpose::PasswordReset, 1800);
    let verification = link(&ada, TokenPurpose::EmailVerification, 1800);
    issued(&stores, &first).await;
    issued(&stores, &verification).await;
    issued(&stores, &second).await;

    assert_eq!(used(&stores, &first, 10).await, None, "replaced");
    assert!(used(&stores, &second, 10).await.is_some());
    assert!(
        used(&stores, &verification, 10).await.is_some(),
        "another purpose is not replaced"
    );
}

#[tokio::test]
async fn an_email_change_link_goes_only_to_the_pending_address() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let first_choice = email("ada@first.example.com");
    let second_choice = email("ada@second.example.com");
    stores
        .accounts
        .request_email_change(ada.id, &first_choice, at(1))
        .await
        .unwrap();
    let to_first = move_link(&ada, TokenPurpose::EmailChange, &first_choice);
    issued(&stores, &to_first).await;
    let pending = stores.reread(&ada).await.unwrap();
    assert_eq!(pending.pending_email, Some(first_choice.clone()));
    assert_eq!(
        pending.email, ada.email,
        "nothing moves before the link is used"
    );

    stores
        .accounts
        .request_email_change(ada.id, &second_choice, at(2))
        .await
        .unwrap();

    assert_eq!(
        used(&stores, &to_first, 10).await,
        None,
        "the user asked for another address since"
    );
    let to_second = move_link(&ada, TokenPurpose::EmailChange, &second_choice);
    issued(&stores, &to_second).await;
    assert_eq!(
        used(&stores, &to_second, 10).await,
        Some(UsedToken {
            user_id: ada.id,
            email: ada.email.clone(),
            target_email: Some(second_choice),
            credential_version: ada.credential_version,
        })
    );
}

#[tokio::test]
async fn of_two_concurrent_uses_of_a_link_one_succeeds() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let reset = link(&ada, TokenPurpose::PasswordReset, 1800);
    issued(&stores, &reset).await;

    let (one, other) = stores
        .race(async { tokio::join!(used(&stores, &reset, 10), used(&stores, &reset, 10)) })
        .await;

    assert_eq!(one.is_some() as u8 + other.is_some() as u8, 1);
}

#[tokio::test]
async fn used_and_expired_links_are_deleted() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let reset = link(&ada, TokenPurpose::PasswordReset, 1800);
    let verification = link(&ada, TokenPurpose::EmailVerification, 100);
    let cancel = move_link(&ada, TokenPurpose::SecureAccount, &email("x@example.com"));
    issued(&stores, &reset).await;
    issued(&stores, &verification).await;
    issued(&stores, &cancel).await;
    used(&stores, &reset, 10).await.unwrap();

    assert_eq!(stores.links.delete_spent(at(100)).await.unwrap(), 2);
    assert_eq!(stores.links.delete_spent(at(100)).await.unwrap(), 0);
}

#[tokio::test]
async fn a_deleted_account_takes_its_links_with_it() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let reset = link(&ada, TokenPurpose::PasswordReset, 1800);
    issued(&stores, &reset).await;

    stores.accounts.delete(ada.id, at(5)).await.unwrap();

    assert_eq!(used(&stores, &reset, 10).await, None);
    assert_eq!(
        stores.links.delete_spent(at(10)).await.unwrap(),
        0,
        "nothing of it was left to delete"
    );
}

#[tokio::test]
async fn a_suspension_voids_every_earlier_link() {
    let stores = Stores::new().await;
    let directory = stores.directory.clone();
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let reset = link(&ada, TokenPurpose::PasswordReset, 1800);
    issued(&stores, &reset).await;

    let suspension = Suspension {
        since: at(5),
        reason: SuspensionReason::parse("contract test").unwrap(),
    };
    directory
        .set_suspension(ada.id, Some(&suspension), at(5))
        .await
        .unwrap();
    directory.set_suspension(ada.id, None, at(6)).await.unwrap();

    assert_eq!(
        used(&stores, &reset, 10).await,
        None,
        "reinstating does not bring the link back"
    );
}
