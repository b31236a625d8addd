//! Sessions: ending them, listing the active ones a keyset page at a time, and deleting the
//! ended ones.

use authgraph::domain::{
    EXACT_TOTAL_UP_TO, OpaqueToken, Page, PageRequest, Role, Session, SessionId, User, UserId,
};

use super::{Stores, at, session_of};

/// Opens a session of `user` at `seconds`, expiring after `lasts` seconds.
async fn open(stores: &Stores, user: &User, seconds: i64, lasts: i64) -> Session {
    let session = Session {
        expires_at: at(seconds + lasts),
        ..session_of(user, at(seconds))
    };
    stores
        .sessions
        .create(&session, &OpaqueToken::generate().unwrap().hash())
        .await
        .unwrap();
    session
}

#[tokio::test]
async fn a_session_is_revoked_once() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let session = open(&stores, &ada, 0, 3600).await;

    assert!(stores.sessions.revoke(session.id, at(10)).await.unwrap());
    assert!(
        !stores.sessions.revoke(session.id, at(20)).await.unwrap(),
        "no longer active"
    );

    let (revoked, user) = stores
        .reads
        .session_with_user(session.id)
        .await
        .unwrap()
        .expect("a revoked session is still found");
    assert_eq!(revoked.revoked_at, Some(at(10)));
    assert_eq!(user.id, ada.id);
    assert_eq!(
        stores.sessions.find(session.id).await.unwrap(),
        Some(Session {
            revoked_at: Some(at(10)),
            ..session
        })
    );
}

#[tokio::test]
async fn ending_every_other_session_counts_only_the_active_ones() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let bob = stores.account("bob@example.com", Role::User, at(0)).await;
    let this_one = open(&stores, &ada, 0, 3600).await;
    open(&stores, &ada, 1, 3600).await;
    open(&stores, &ada, 2, 3600).await;
    open(&stores, &ada, 3, 50).await; // expires at 53
    let bobs = open(&stores, &bob, 0, 3600).await;

    let ended = stores
        .sessions
        .revoke_all(ada.id, Some(this_one.id), at(60))
        .await
        .unwrap();

    assert_eq!(ended, 2, "the expired one had ended already");
    assert_eq!(
        stores
            .sessions
            .count_active(ada.id, at(60), EXACT_TOTAL_UP_TO)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        stores
            .sessions
            .count_active(bob.id, at(60), EXACT_TOTAL_UP_TO)
            .await
            .unwrap(),
        1
    );
    assert!(
        stores
            .sessions
            .find(bobs.id)
            .await
            .unwrap()
            .unwrap()
            .is_active_at(at(60))
    );
    assert_eq!(
        stores
            .sessions
            .revoke_all(ada.id, None, at(61))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        stores
            .sessions
            .count_active(ada.id, at(61), EXACT_TOTAL_UP_TO)
            .await
            .unwrap(),
        0
    );
}

/// Seven sessions of Ada, of which five are active at 100: one is revoked, one expires at 100.
async fn five_active_of_seven(stores: &Stores) -> (UserId, Vec<SessionId>) {
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let mut active = Vec::new();
    for n in 0..7 {
        let lasts = if n == 3 { 100 - n } else { 3600 };
        let session = open(stores, &ada, n, lasts).await;
        if n == 5 {
            stores.sessions.revoke(session.id, at(50)).await.unwrap();
        } else if n != 3 {
            active.push(session.id);
        }
    }
    let bob = stores.account("bob@example.com", Role::User, at(0)).await;
    open(stores, &bob, 0, 3600).await;
    // Newest first: ids are time-ordered, and the id is the keyset.
    active.sort_by_key(|id| std::cmp::Reverse(id.as_uuid()));
    (ada.id, active)
}

fn ids(page: &Page<Session>) -> Vec<SessionId> {
    page.items.iter().map(|s| s.id).collect()
}

#[tokio::test]
async fn active_sessions_page_forward_newest_first() {
    let stores = Stores::new().await;
    let (ada, newest_first) = five_active_of_seven(&stores).await;

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = stores
            .sessions
            .list_active(ada, at(100), &PageRequest::Forward { after, first: 2 })
            .await
            .unwrap();
        assert_eq!(page.has_previous, after.is_some());
        seen.extend(ids(&page));
        after = seen.last().copied();
        if !page.has_next {
            break;
        }
    }

    assert_eq!(seen, newest_first);
    assert_eq!(
        stores
            .sessions
            .count_active(ada, at(100), EXACT_TOTAL_UP_TO)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        stores.sessions.count_active(ada, at(100), 3).await.unwrap(),
        4,
        "the count stops one past its bound"
    );
    assert_eq!(
        stores.sessions.count_active(ada, at(100), 5).await.unwrap(),
        5,
        "exact at the bound"
    );
}

#[tokio::test]
async fn active_sessions_page_backward_to_the_newest() {
    let stores = Stores::new().await;
    let (ada, newest_first) = five_active_of_seven(&stores).await;

    let mut seen: Vec<SessionId> = Vec::new();
    let mut before = None;
    loop {
        let page = stores
            .sessions
            .list_active(ada, at(100), &PageRequest::Backward { before, last: 2 })
            .await
            .unwrap();
        assert_eq!(page.has_next, before.is_some());
        seen.splice(0..0, ids(&page));
        before = seen.first().copied();
        if !page.has_previous {
            break;
        }
    }

    assert_eq!(seen, newest_first);
}

#[tokio::test]
async fn ended_sessions_are_deleted_with_their_tokens() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let token = OpaqueToken::generate().unwrap().hash();
    let revoked = session_of(&ada, at(0));
    stores.sessions.create(&revoked, &token).await.unwrap();
    stores.sessions.revoke(revoked.id, at(10)).await.unwrap();
    let expired = open(&stores, &ada, 0, 100).await;
    let active = open(&stores, &ada, 0, 3600).await;

    let deleted = stores.sessions.delete_ended(at(100)).await.unwrap();

    assert_eq!(deleted, 2, "revoked, and expired at that very moment");
    assert!(stores.sessions.find(revoked.id).await.unwrap().is_none());
    assert!(stores.sessions.find(expired.id).await.unwrap().is_none());
    assert!(stores.sessions.find(active.id).await.unwrap().is_some());
    assert!(
        stores
            .sessions
            .find_by_refresh_token(&token)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(stores.sessions.delete_ended(at(100)).await.unwrap(), 0);
}
