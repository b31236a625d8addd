//! Refresh-token exchange: rotation, siblings within the grace, and a spent token found again
//! so that its reuse is recognised.

use authgraph::domain::{
    OpaqueToken, RefreshChain, RefreshTokenExchange, RefreshVerdict, Role, SessionId, SiblingAdded,
    TokenHash,
};
use chrono::Duration;

use super::{Stores, at, session_of};

const GRACE: Duration = Duration::seconds(10);

fn new_token() -> TokenHash {
    OpaqueToken::generate().unwrap().hash()
}

/// An exchange of `presented` for `successor` at `seconds`, as the service builds it from
/// the chain's generation it found.
fn exchange<'a>(
    session: SessionId,
    presented: &'a TokenHash,
    successor: &'a TokenHash,
    generation: i64,
    seconds: i64,
) -> RefreshTokenExchange<'a> {
    RefreshTokenExchange {
        session,
        presented,
        successor,
        generation,
        now: at(seconds),
        expires_at: at(seconds) + Duration::days(1),
    }
}

/// Exchanges `presented` for `successor` at `seconds`; whether the store took the exchange.
async fn rotate(
    stores: &Stores,
    session: SessionId,
    presented: &TokenHash,
    successor: &TokenHash,
    generation: i64,
    seconds: i64,
) -> bool {
    stores
        .sessions
        .rotate_refresh_token(&exchange(
            session, presented, successor, generation, seconds,
        ))
        .await
        .unwrap()
}

/// A signed-in user's session and its first refresh token.
async fn signed_in(stores: &Stores) -> (SessionId, TokenHash) {
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let session = session_of(&ada, at(0));
    let first = new_token();
    stores.sessions.create(&session, &first).await.unwrap();
    (session.id, first)
}

#[tokio::test]
async fn a_new_session_starts_its_chain_at_generation_zero() {
    let stores = Stores::new().await;
    let (session, first) = signed_in(&stores).await;

    let found = stores
        .sessions
        .find_by_refresh_token(&first)
        .await
        .unwrap()
        .expect("the first token is found");
    assert_eq!(found.session.id, session);
    assert_eq!(found.generation, 0);
    assert_eq!(
        found.chain,
        RefreshChain {
            generation: 0,
            rotated_at: at(0),
            siblings: 0
        }
    );
    assert!(
        stores
            .sessions
            .find_by_refresh_token(&new_token())
            .await
            .unwrap()
            .is_none(),
        "a token never issued is not found"
    );
}

#[tokio::test]
async fn rotation_moves_the_chain_on_and_the_session_with_it() {
    let stores = Stores::new().await;
    let (session, first) = signed_in(&stores).await;
    let second = new_token();

    let rotated = rotate(&stores, session, &first, &second, 0, 60).await;

    assert!(rotated);
    let found = stores
        .sessions
        .find_by_refresh_token(&second)
        .await
        .unwrap()
        .expect("the successor is found");
    assert_eq!(found.generation, 1);
    assert_eq!(
        found.chain,
        RefreshChain {
            generation: 1,
            rotated_at: at(60),
            siblings: 0
        }
    );
    assert_eq!(found.session.last_used_at, at(60));
    assert_eq!(found.session.expires_at, at(60) + Duration::days(1));
}

#[tokio::test]
async fn a_racing_exchange_of_the_same_generation_changes_nothing() {
    let stores = Stores::new().await;
    let (session, first) = signed_in(&stores).await;
    let winner = new_token();
    let loser = new_token();
    let rotated = stores
        .race(async {
            tokio::join!(
                rotate(&stores, session, &first, &winner, 0, 60),
                rotate(&stores, session, &first, &loser, 0, 61),
            )
        })
        .await;

    let (winner, loser, rotated_at) = match rotated {
        (true, false) => (winner, loser, at(60)),
        (false, true) => (loser, winner, at(61)),
        both => panic!("exactly one exchange moves the chain: {both:?}"),
    };
    assert!(
        stores
            .sessions
            .find_by_refresh_token(&loser)
            .await
            .unwrap()
            .is_none(),
        "the loser's successor was not stored"
    );
    let chain = stores
        .sessions
        .find_by_refresh_token(&winner)
        .await
        .unwrap()
        .unwrap()
        .chain;
    assert_eq!(chain.generation, 1);
    assert_eq!(chain.rotated_at, rotated_at);
}

#[tokio::test]
async fn a_spent_token_is_still_found_so_its_reuse_is_recognised() {
    let stores = Stores::new().await;
    let (session, first) = signed_in(&stores).await;
    let second = new_token();
    let third = new_token();
    rotate(&stores, session, &first, &second, 0, 60).await;
    rotate(&stores, session, &second, &third, 1, 120).await;

    let replayed = stores
        .sessions
        .find_by_refresh_token(&first)
        .await
        .unwrap()
        .expect("a spent token is still found");

    assert_eq!(replayed.session.id, session);
    assert_eq!(replayed.generation, 0);
    assert_eq!(replayed.chain.generation, 2);
    assert_eq!(
        replayed.chain.judge(replayed.generation, at(121), GRACE),
        RefreshVerdict::Reuse,
        "two generations old"
    );
    let just_spent = stores
        .sessions
        .find_by_refresh_token(&second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        just_spent
            .chain
            .judge(just_spent.generation, at(125), GRACE),
        RefreshVerdict::Sibling,
        "the predecessor within the grace"
    );
    assert_eq!(
        just_spent
            .chain
            .judge(just_spent.generation, at(131), GRACE),
        RefreshVerdict::Reuse,
        "the predecessor after the grace"
    );
}

#[tokio::test]
async fn siblings_join_the_current_generation_up_to_the_bound() {
    let stores = Stores::new().await;
    let (session, first) = signed_in(&stores).await;
    let current = new_token();
    rotate(&stores, session, &first, &current, 0, 60).await;

    let siblings: Vec<TokenHash> = (0..RefreshChain::MAX_SIBLINGS)
        .map(|_| new_token())
        .collect();
    for (n, sibling) in siblings.iter().enumerate() {
        let added = stores
            .sessions
            .add_sibling(
                &exchange(session, &first, sibling, 1, 61 + n as i64),
                RefreshChain::MAX_SIBLINGS,
            )
            .await
            .unwrap();
        assert_eq!(added, SiblingAdded::Added, "sibling {n}");
    }
    let one_too_many = new_token();
    let refused = stores
        .sessions
        .add_sibling(
            &exchange(session, &first, &one_too_many, 1, 65),
            RefreshChain::MAX_SIBLINGS,
        )
        .await
        .unwrap();

    assert_eq!(refused, SiblingAdded::Exhausted);
    assert!(
        stores
            .sessions
            .find_by_refresh_token(&one_too_many)
            .await
            .unwrap()
            .is_none()
    );
    let last = siblings.last().unwrap();
    let found = stores
        .sessions
        .find_by_refresh_token(last)
        .await
        .unwrap()
        .expect("a sibling is found");
    assert_eq!(found.generation, 1, "a sibling of the current generation");
    assert_eq!(
        found.chain,
        RefreshChain {
            generation: 1,
            rotated_at: at(60),
            siblings: RefreshChain::MAX_SIBLINGS
        },
        "siblings do not move the chain on"
    );
    assert_eq!(found.session.last_used_at, at(63));
}

#[tokio::test]
async fn a_sibling_for_a_chain_that_moved_on_is_refused_as_moved() {
    let stores = Stores::new().await;
    let (session, first) = signed_in(&stores).await;
    let second = new_token();
    let third = new_token();
    rotate(&stores, session, &first, &second, 0, 60).await;
    rotate(&stores, session, &second, &third, 1, 61).await;

    let late = new_token();
    let added = stores
        .sessions
        .add_sibling(
            &exchange(session, &first, &late, 1, 62),
            RefreshChain::MAX_SIBLINGS,
        )
        .await
        .unwrap();
    assert_eq!(added, SiblingAdded::Moved);

    let unknown = stores
        .sessions
        .add_sibling(
            &exchange(SessionId::generate(), &first, &late, 0, 62),
            RefreshChain::MAX_SIBLINGS,
        )
        .await
        .unwrap();
    assert_eq!(unknown, SiblingAdded::Moved, "no such session");
    assert!(
        stores
            .sessions
            .find_by_refresh_token(&late)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn exchanging_a_sibling_supersedes_the_others() {
    let stores = Stores::new().await;
    let (session, first) = signed_in(&stores).await;
    let current = new_token();
    let sibling = new_token();
    let next = new_token();
    rotate(&stores, session, &first, &current, 0, 60).await;
    stores
        .sessions
        .add_sibling(
            &exchange(session, &first, &sibling, 1, 61),
            RefreshChain::MAX_SIBLINGS,
        )
        .await
        .unwrap();

    let rotated = rotate(&stores, session, &sibling, &next, 1, 70).await;

    assert!(rotated, "a sibling is a token of the current generation");
    let superseded = stores
        .sessions
        .find_by_refresh_token(&current)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(superseded.generation, 1);
    assert_eq!(
        superseded.chain,
        RefreshChain {
            generation: 2,
            rotated_at: at(70),
            siblings: 0
        }
    );
}

#[tokio::test]
async fn a_deleted_account_takes_its_sessions_and_their_tokens_with_it() {
    let stores = Stores::new().await;
    let (session, first) = signed_in(&stores).await;
    let owner = stores
        .sessions
        .find(session)
        .await
        .unwrap()
        .unwrap()
        .user_id;

    stores.accounts.delete(owner, at(30)).await.unwrap();

    assert!(stores.sessions.find(session).await.unwrap().is_none());
    assert!(
        stores
            .reads
            .session_with_user(session)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        stores
            .sessions
            .find_by_refresh_token(&first)
            .await
            .unwrap()
            .is_none()
    );
    let successor = new_token();
    assert!(
        !rotate(&stores, session, &first, &successor, 0, 60).await,
        "no session to rotate"
    );
    assert!(!stores.sessions.revoke(session, at(60)).await.unwrap());
}
