//! The account store: unique addresses, and the changes sign-in and self-service make.

use authgraph::domain::{DisplayName, RepositoryError, Role, UserId};

use super::{Stores, at, email};

#[tokio::test]
async fn an_address_belongs_to_one_account() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let bob = stores.account("bob@example.com", Role::User, at(0)).await;

    let twin = authgraph::domain::User {
        id: UserId::generate(),
        ..ada.clone()
    };
    assert!(matches!(
        stores.accounts.insert(&twin).await,
        Err(RepositoryError::Conflict)
    ));
    assert!(matches!(
        stores
            .accounts
            .change_email(bob.id, &ada.email, bob.credential_version, at(5))
            .await,
        Err(RepositoryError::Conflict)
    ));
    assert_eq!(stores.reread(&bob).await, Some(bob));
    assert_eq!(
        stores
            .reads
            .user_by_email(&ada.email)
            .await
            .unwrap()
            .map(|u| u.id),
        Some(ada.id)
    );
}

#[tokio::test]
async fn an_address_is_marked_verified_only_while_the_account_has_it() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;

    assert!(
        !stores
            .accounts
            .mark_email_verified(ada.id, &email("old@example.com"), at(5))
            .await
            .unwrap()
    );
    assert_eq!(stores.reread(&ada).await.unwrap().email_verified_at, None);

    assert!(
        stores
            .accounts
            .mark_email_verified(ada.id, &ada.email, at(10))
            .await
            .unwrap()
    );
    assert!(
        stores
            .accounts
            .mark_email_verified(ada.id, &ada.email, at(20))
            .await
            .unwrap(),
        "verifying again is no error"
    );
    let verified = stores.reread(&ada).await.unwrap();
    assert_eq!(
        verified.email_verified_at,
        Some(at(10)),
        "the first date stays"
    );
    assert_eq!(verified.updated_at, at(20));
}

#[tokio::test]
async fn an_email_change_waits_for_its_link_and_moves_only_from_the_links_state() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let new = email("ada@new.example.com");

    stores
        .accounts
        .request_email_change(ada.id, &new, at(5))
        .await
        .unwrap();
    let pending = stores.reread(&ada).await.unwrap();
    assert_eq!(pending.pending_email, Some(new.clone()));
    assert_eq!(pending.credential_version, ada.credential_version);
    assert_eq!(pending.updated_at, at(5));

    assert!(
        !stores
            .accounts
            .change_email(ada.id, &new, ada.credential_version - 1, at(6))
            .await
            .unwrap(),
        "a link of an earlier state moves nothing"
    );
    assert_eq!(stores.reread(&ada).await.unwrap(), pending);

    assert!(
        stores
            .accounts
            .change_email(ada.id, &new, ada.credential_version, at(8))
            .await
            .unwrap()
    );
    let moved = stores.reread(&ada).await.unwrap();
    assert_eq!(moved.email, new);
    assert_eq!(moved.pending_email, None);
    assert_eq!(moved.email_verified_at, Some(at(8)), "proven by the link");
    assert_eq!(moved.credential_version, ada.credential_version + 1);
    assert_eq!(stores.reads.user_by_email(&ada.email).await.unwrap(), None);
}

#[tokio::test]
async fn profile_changes_are_stored() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let name = DisplayName::parse("Ada Lovelace").unwrap();

    stores
        .accounts
        .set_display_name(ada.id, name.as_ref(), at(5))
        .await
        .unwrap();

    let named = stores.reread(&ada).await.unwrap();
    assert_eq!(named.display_name, name);
    assert_eq!(named.updated_at, at(5));
    assert_eq!(
        named.credential_version, ada.credential_version,
        "a display name is no credential"
    );
}

#[tokio::test]
async fn many_accounts_are_found_at_once() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let bob = stores.account("bob@example.com", Role::Admin, at(1)).await;

    let mut found = stores
        .accounts
        .find_many(&[bob.id, UserId::generate(), ada.id])
        .await
        .unwrap();
    found.sort_by_key(|u| u.created_at);

    assert_eq!(found, vec![ada, bob]);
    assert!(stores.accounts.find_many(&[]).await.unwrap().is_empty());
}
