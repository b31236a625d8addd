//! Listing users: filters and orderings for administrators.

use chrono::{DateTime, Utc};

use super::{Role, UserId};

/// Which users to list. Every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// A part of the email, matched case-insensitively.
    pub email_contains: Option<String>,
    pub role: Option<Role>,
    pub verified: Option<bool>,
    pub suspended: Option<bool>,
}

/// The key users are sorted by; the id breaks ties, so the order is total and stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOrderField {
    CreatedAt,
    Email,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ascending,
    Descending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserOrder {
    pub field: UserOrderField,
    pub direction: Direction,
}

impl Default for UserOrder {
    fn default() -> Self {
        Self {
            field: UserOrderField::CreatedAt,
            direction: Direction::Descending,
        }
    }
}

/// A position in a user list: the sort key of a user and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCursor {
    CreatedAt(DateTime<Utc>, UserId),
    Email(String, UserId),
}

impl UserCursor {
    /// The ordering this cursor belongs to.
    pub fn field(&self) -> UserOrderField {
        match self {
            UserCursor::CreatedAt(..) => UserOrderField::CreatedAt,
            UserCursor::Email(..) => UserOrderField::Email,
        }
    }

    /// The cursor of `user` in a list ordered by `field`.
    pub fn of(user: &super::User, field: UserOrderField) -> Self {
        match field {
            UserOrderField::CreatedAt => UserCursor::CreatedAt(user.created_at, user.id),
            UserOrderField::Email => UserCursor::Email(user.email.as_str().to_owned(), user.id),
        }
    }
}
