//! The administrator's directory: keyset paging both ways in every order, over ties of the
//! sort key, and its filters.

use std::sync::Arc;

use authgraph::domain::{
    Direction, EXACT_TOTAL_UP_TO, Page, PageRequest, Role, Suspension, SuspensionReason, User,
    UserCursor, UserDirectory, UserFilter, UserOrder, UserOrderField,
};

use super::{Stores, at};

const ORDERS: [UserOrder; 4] = [
    UserOrder {
        field: UserOrderField::CreatedAt,
        direction: Direction::Ascending,
    },
    UserOrder {
        field: UserOrderField::CreatedAt,
        direction: Direction::Descending,
    },
    UserOrder {
        field: UserOrderField::Email,
        direction: Direction::Ascending,
    },
    UserOrder {
        field: UserOrderField::Email,
        direction: Direction::Descending,
    },
];

/// Seven accounts, three of them created at the same instant and two more at another, with
/// addresses whose order differs from their creation order. (Addresses differ in their
/// first letter, so every collation sorts them alike.)
async fn seven_accounts(stores: &Stores) -> Vec<User> {
    let mut users = Vec::new();
    for (name, seconds) in [
        ("dan", 0),
        ("amy", 10),
        ("gus", 0),
        ("cat", 20),
        ("bea", 0),
        ("fay", 10),
        ("eve", 30),
    ] {
        let email = format!("{name}@example.com");
        users.push(stores.account(&email, Role::User, at(seconds)).await);
    }
    users
}

/// Every user in `order`: the sort key, then the id to break ties.
fn sorted(users: &[User], order: UserOrder) -> Vec<User> {
    let mut sorted = users.to_vec();
    sorted.sort_by(|a, b| match order.field {
        UserOrderField::CreatedAt => {
            (a.created_at, a.id.as_uuid()).cmp(&(b.created_at, b.id.as_uuid()))
        }
        UserOrderField::Email => {
            (a.email.as_str(), a.id.as_uuid()).cmp(&(b.email.as_str(), b.id.as_uuid()))
        }
    });
    if order.direction == Direction::Descending {
        sorted.reverse();
    }
    sorted
}

async fn page(
    directory: &Arc<dyn UserDirectory>,
    order: UserOrder,
    request: PageRequest<UserCursor>,
) -> Page<User> {
    directory
        .list(&UserFilter::default(), order, &request)
        .await
        .unwrap()
}

#[tokio::test]
async fn paging_forward_visits_every_user_once_in_each_order() {
    let stores = Stores::new().await;
    let directory = stores.directory.clone();
    let users = seven_accounts(&stores).await;

    for order in ORDERS {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let window = page(
                &directory,
                order,
                PageRequest::Forward {
                    after: after.clone(),
                    first: 2,
                },
            )
            .await;
            assert_eq!(window.has_previous, after.is_some(), "{order:?}");
            after = window.items.last().map(|u| UserCursor::of(u, order.field));
            seen.extend(window.items);
            if !window.has_next {
                break;
            }
        }
        assert_eq!(seen, sorted(&users, order), "{order:?}");
    }
}

#[tokio::test]
async fn paging_backward_visits_every_user_once_in_each_order() {
    let stores = Stores::new().await;
    let directory = stores.directory.clone();
    let users = seven_accounts(&stores).await;

    for order in ORDERS {
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let window = page(
                &directory,
                order,
                PageRequest::Backward {
                    before: before.clone(),
                    last: 2,
                },
            )
            .await;
            assert_eq!(window.has_next, before.is_some(), "{order:?}");
            before = window.items.first().map(|u| UserCursor::of(u, order.field));
            seen.splice(0..0, window.items);
            if !window.has_previous {
                break;
            }
        }
        assert_eq!(seen, sorted(&users, order), "{order:?}");
    }
}

#[tokio::test]
async fn a_cursor_inside_a_run_of_ties_pages_from_exactly_there() {
    let stores = Stores::new().await;
    let directory = stores.directory.clone();
    let users = seven_accounts(&stores).await;

    for order in ORDERS {
        let all = sorted(&users, order);
        let cursor = |i: usize| Some(UserCursor::of(&all[i], order.field));

        let after = page(
            &directory,
            order,
            PageRequest::Forward {
                after: cursor(1),
                first: 3,
            },
        )
        .await;
        assert_eq!(after.items, all[2..5], "{order:?}");
        assert!(after.has_previous && after.has_next, "{order:?}");

        let before = page(
            &directory,
            order,
            PageRequest::Backward {
                before: cursor(5),
                last: 3,
            },
        )
        .await;
        assert_eq!(before.items, all[2..5], "{order:?}");
        assert!(before.has_previous && before.has_next, "{order:?}");
    }
}

#[tokio::test]
async fn filters_select_and_count_the_same_users() {
    let stores = Stores::new().await;
    let directory = stores.directory.clone();
    let users = seven_accounts(&stores).await;
    let admin = stores.account("zed@example.com", Role::Admin, at(40)).await;
    stores
        .accounts
        .mark_email_verified(users[0].id, &users[0].email, at(50))
        .await
        .unwrap();
    directory
        .set_suspension(
            users[1].id,
            Some(&Suspension {
                since: at(50),
                reason: SuspensionReason::parse("contract test").unwrap(),
            }),
            at(50),
        )
        .await
        .unwrap();

    let cases = [
        (UserFilter::default(), 8),
        (
            UserFilter {
                email_contains: Some("Y".into()),
                ..UserFilter::default()
            },
            2,
        ),
        (
            UserFilter {
                email_contains: Some("_".into()),
                ..UserFilter::default()
            },
            0,
        ),
        (
            UserFilter {
                email_contains: Some("%".into()),
                ..UserFilter::default()
            },
            0,
        ),
        (
            UserFilter {
                role: Some(Role::Admin),
                ..UserFilter::default()
            },
            1,
        ),
        (
            UserFilter {
                verified: Some(true),
                ..UserFilter::default()
            },
            1,
        ),
        (
            UserFilter {
                suspended: Some(true),
                ..UserFilter::default()
            },
            1,
        ),
        (
            UserFilter {
                suspended: Some(false),
                role: Some(Role::User),
                ..UserFilter::default()
            },
            6,
        ),
    ];
    for (filter, expected) in cases {
        let listed = directory
            .list(
                &filter,
                UserOrder::default(),
                &PageRequest::Forward {
                    after: None,
                    first: 20,
                },
            )
            .await
            .unwrap();
        assert_eq!(listed.items.len(), expected, "{filter:?}");
        assert_eq!(
            directory.count(&filter, EXACT_TOTAL_UP_TO).await.unwrap(),
            expected as u64,
            "{filter:?}"
        );
    }
    let admins = directory
        .list(
            &UserFilter {
                role: Some(Role::Admin),
                ..UserFilter::default()
            },
            UserOrder::default(),
            &PageRequest::Forward {
                after: None,
                first: 20,
            },
        )
        .await
        .unwrap();
    assert_eq!(admins.items, vec![admin]);
}

/// A count stops one past its bound, so a page of a huge table never pays for reading all of
/// it: exact up to the bound, then "more than the bound" for a filter, and for the whole
/// table an estimate that is never below what the count saw (exact on SQLite).
#[tokio::test]
async fn counts_are_exact_up_to_their_bound_and_stop_past_it() {
    let stores = Stores::new().await;
    let directory = &stores.directory;
    let users = seven_accounts(&stores).await;
    let regular = UserFilter {
        role: Some(Role::User),
        ..UserFilter::default()
    };
    assert_eq!(
        directory.count(&regular, 7).await.unwrap(),
        7,
        "at the bound"
    );
    assert_eq!(directory.count(&regular, 100).await.unwrap(), 7);
    assert_eq!(
        directory.count(&regular, 3).await.unwrap(),
        4,
        "past the bound: one more than it"
    );
    assert_eq!(directory.count(&regular, 0).await.unwrap(), 1);

    let all = UserFilter::default();
    assert_eq!(directory.count(&all, 7).await.unwrap(), users.len() as u64);
    let estimate = directory.count(&all, 3).await.unwrap();
    assert!(
        (4..=users.len() as u64).contains(&estimate),
        "an estimate past the bound, never below it: {estimate}"
    );
    if stores.url().starts_with("sqlite:") {
        assert_eq!(estimate, users.len() as u64, "SQLite counts exactly");
    }
}
