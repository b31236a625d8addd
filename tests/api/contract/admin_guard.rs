//! The last-admin guard: no change leaves the service without an active administrator,
//! whether it deletes the account (the account store) or changes its role or suspension (the
//! administrator's directory).

use authgraph::domain::{GuardedChange, Role, Suspension, SuspensionReason, UserId};

use super::{Stores, at};

#[tokio::test]
async fn deleting_the_last_active_admin_is_refused_and_changes_nothing() {
    let stores = Stores::new().await;
    let admin = stores.account("root@example.com", Role::Admin, at(0)).await;
    stores.account("ada@example.com", Role::User, at(0)).await;

    let deleted = stores.accounts.delete(admin.id, at(10)).await.unwrap();

    assert_eq!(deleted, GuardedChange::LastAdmin);
    assert_eq!(stores.reread(&admin).await, Some(admin));
}

#[tokio::test]
async fn an_admin_may_be_deleted_while_another_remains() {
    let stores = Stores::new().await;
    let first = stores
        .account("first@example.com", Role::Admin, at(0))
        .await;
    let second = stores
        .account("second@example.com", Role::Admin, at(0))
        .await;

    assert_eq!(
        stores.accounts.delete(first.id, at(10)).await.unwrap(),
        GuardedChange::Applied
    );
    assert_eq!(stores.reread(&first).await, None);
    assert_eq!(
        stores.accounts.delete(second.id, at(20)).await.unwrap(),
        GuardedChange::LastAdmin,
        "now it is the last one"
    );
}

#[tokio::test]
async fn accounts_that_are_not_admins_are_deleted_without_a_guard() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;

    let deleted = stores.accounts.delete(ada.id, at(10)).await.unwrap();

    assert_eq!(
        deleted,
        GuardedChange::Applied,
        "there was no admin to keep"
    );
    assert_eq!(stores.reread(&ada).await, None);
}

#[tokio::test]
async fn deleting_an_unknown_account_says_so() {
    let stores = Stores::new().await;
    let deleted = stores
        .accounts
        .delete(UserId::generate(), at(10))
        .await
        .unwrap();

    assert_eq!(deleted, GuardedChange::UnknownUser);
}

fn suspension(seconds: i64) -> Suspension {
    Suspension {
        since: at(seconds),
        reason: SuspensionReason::parse("contract test").unwrap(),
    }
}

#[tokio::test]
async fn demoting_the_last_active_admin_is_refused_and_changes_nothing() {
    let stores = Stores::new().await;
    let directory = stores.directory.clone();
    let admin = stores.account("root@example.com", Role::Admin, at(0)).await;

    let demoted = directory
        .set_role(admin.id, Role::User, at(10))
        .await
        .unwrap();

    assert_eq!(demoted, GuardedChange::LastAdmin);
    assert_eq!(stores.reread(&admin).await, Some(admin));
}

#[tokio::test]
async fn suspending_the_last_active_admin_is_refused_and_changes_nothing() {
    let stores = Stores::new().await;
    let directory = stores.directory.clone();
    let admin = stores.account("root@example.com", Role::Admin, at(0)).await;

    let suspended = directory
        .set_suspension(admin.id, Some(&suspension(10)), at(10))
        .await
        .unwrap();

    assert_eq!(suspended, GuardedChange::LastAdmin);
    assert_eq!(
        stores.reread(&admin).await,
        Some(admin),
        "not suspended, and its links still valid"
    );
}

#[tokio::test]
async fn a_suspended_admin_does_not_count_as_an_active_one() {
    let stores = Stores::new().await;
    let directory = stores.directory.clone();
    let first = stores
        .account("first@example.com", Role::Admin, at(0))
        .await;
    let second = stores
        .account("second@example.com", Role::Admin, at(0))
        .await;

    assert_eq!(
        directory
            .set_suspension(first.id, Some(&suspension(10)), at(10))
            .await
            .unwrap(),
        GuardedChange::Applied
    );
    let suspended = stores.reread(&first).await.unwrap();
    assert_eq!(suspended.suspension, Some(suspension(10)));
    assert_eq!(
        suspended.credential_version,
        first.credential_version + 1,
        "a suspension voids the links issued before it"
    );
    assert_eq!(
        directory
            .set_role(second.id, Role::User, at(20))
            .await
            .unwrap(),
        GuardedChange::LastAdmin,
        "the other one is suspended"
    );
    assert_eq!(
        stores.accounts.delete(second.id, at(20)).await.unwrap(),
        GuardedChange::LastAdmin
    );

    assert_eq!(
        directory
            .set_suspension(first.id, None, at(30))
            .await
            .unwrap(),
        GuardedChange::Applied,
        "reinstating is never refused"
    );
    assert_eq!(
        directory
            .set_role(second.id, Role::User, at(40))
            .await
            .unwrap(),
        GuardedChange::Applied
    );
    let demoted = stores.reread(&second).await.unwrap();
    assert_eq!(demoted.role, Role::User);
    assert_eq!(demoted.updated_at, at(40));
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one() {
    let stores = Stores::new().await;
    let directory = stores.directory.clone();
    let first = stores
        .account("first@example.com", Role::Admin, at(0))
        .await;
    let second = stores
        .account("second@example.com", Role::Admin, at(0))
        .await;

    let (one, other) = stores
        .race(async {
            tokio::join!(
                directory.set_role(second.id, Role::User, at(10)),
                directory.set_role(first.id, Role::User, at(10)),
            )
        })
        .await;

    let mut outcomes = [one.unwrap(), other.unwrap()];
    outcomes.sort_by_key(|o| *o == GuardedChange::LastAdmin);
    assert_eq!(outcomes, [GuardedChange::Applied, GuardedChange::LastAdmin]);
    let admins = [
        stores.reread(&first).await.unwrap(),
        stores.reread(&second).await.unwrap(),
    ]
    .iter()
    .filter(|u| u.role == Role::Admin)
    .count();
    assert_eq!(admins, 1);
}
