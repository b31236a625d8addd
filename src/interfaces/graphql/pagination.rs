//! Relay connection arguments → a domain `PageRequest`, and opaque cursors.

use std::borrow::Cow;

use async_graphql::connection::CursorType;
use async_graphql::{ComplexObject, Context, OutputType, SimpleObject, TypeName};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::application::ServiceError;

use super::error::graphql_error;
use crate::domain::{Page, PageRequest};

/// Items per page when the client gives neither `first` nor `last`.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// The most items one page may hold.
pub const MAX_PAGE_SIZE: usize = 100;

/// A cursor naming an item by its UUID, opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdCursor(pub Uuid);

impl CursorType for IdCursor {
    type Error = &'static str;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| "malformed cursor")?;
        Uuid::from_slice(&bytes)
            .map(IdCursor)
            .map_err(|_| "malformed cursor")
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }
}

/// Where a page sits in its list.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether there are items before this page (when paging backwards; paging forwards it is
    /// true whenever an `after` cursor was given).
    has_previous_page: bool,
    /// Whether there are items after this page (when paging forwards; paging backwards it is
    /// true whenever a `before` cursor was given).
    has_next_page: bool,
    /// The cursor of the first item: pass it as `before` for the previous page.
    start_cursor: Option<String>,
    /// The cursor of the last item: pass it as `after` for the next page.
    end_cursor: Option<String>,
}

/// A type listed in pages: it names its connection and edge types (`UserConnection`,
/// `UserEdge`), so this module names none of them.
pub trait Paged: OutputType {
    const CONNECTION: &'static str;
    const EDGE: &'static str;
}

/// An item of a page, with its cursor.
#[derive(SimpleObject)]
#[graphql(name_type)]
pub struct Edge<N: Paged> {
    /// The item.
    node: N,
    /// The item's position: pass it as `after` or `before` to page from here. Opaque, and
    /// stable while items are added or removed.
    cursor: String,
}

impl<N: Paged> TypeName for Edge<N> {
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed(N::EDGE)
    }
}

/// A page of a list (a Relay connection): its items, where it sits, and how many items the
/// list holds in all.
#[derive(SimpleObject)]
#[graphql(name_type, complex)]
pub struct Connection<N: Paged> {
    /// The items of this page, in list order.
    edges: Vec<Edge<N>>,
    /// Where this page sits in the list.
    page_info: PageInfo,
    /// Counted only when the selection asks for `totalCount` ([`total_wanted`]).
    #[graphql(skip)]
    total: Option<u64>,
}

#[ComplexObject]
impl<N: Paged> Connection<N> {
    /// How many items the list holds in all (those that pass its filter), over every page;
    /// counted only when selected. Exact up to 10,000. Past that the count stops: an
    /// unfiltered `users` list gives the database's estimate of the number of accounts
    /// (PostgreSQL and MySQL table statistics, at least 10,001; exact on SQLite), and any other
    /// list gives 10,001, meaning "more than 10,000".
    async fn total_count(&self) -> async_graphql::Result<i64> {
        // `None` only when the resolver did not see `totalCount` in the selection it serves.
        let total = self.total.ok_or_else(|| {
            graphql_error(ServiceError::Internal("totalCount was not counted".into()))
        })?;
        Ok(i64::try_from(total).unwrap_or(i64::MAX))
    }
}

/// Whether the connection field being resolved selects `totalCount`: the count is a query of
/// its own, made only when asked for.
pub fn total_wanted(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

impl<N: Paged> TypeName for Connection<N> {
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed(N::CONNECTION)
    }
}

/// The connection of a page of `total` items; `edge` gives each item its cursor and node.
pub fn connection<T, C: CursorType, N: Paged>(
    page: Page<T>,
    total: Option<u64>,
    mut edge: impl FnMut(T) -> (C, N),
) -> Connection<N> {
    let edges: Vec<Edge<N>> = page
        .items
        .into_iter()
        .map(|item| {
            let (cursor, node) = edge(item);
            Edge {
                node,
                cursor: cursor.encode_cursor(),
            }
        })
        .collect();
    Connection {
        page_info: PageInfo {
            has_previous_page: page.has_previous,
            has_next_page: page.has_next,
            start_cursor: edges.first().map(|e| e.cursor.clone()),
            end_cursor: edges.last().map(|e| e.cursor.clone()),
        },
        edges,
        total,
    }
}

/// The complexity of a connection field: each requested item costs what its selection costs,
/// so `first: 100` of a deep selection is refused before it runs.
pub fn page_cost(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let items = first.or(last).map_or(DEFAULT_PAGE_SIZE, |n| {
        usize::try_from(n).unwrap_or(0).min(MAX_PAGE_SIZE)
    });
    items.max(1).saturating_mul(child_complexity)
}

/// The size of a first page from `first`: [`DEFAULT_PAGE_SIZE`] when absent.
pub fn first_page_size(first: Option<i32>) -> Result<usize, ServiceError> {
    match page_request::<IdCursor, Uuid>(None, None, first, None, |c| c.0)? {
        PageRequest::Forward { first, .. } => Ok(first),
        PageRequest::Backward { last, .. } => Ok(last),
    }
}

/// Validates Relay's `first`/`after`/`last`/`before`: one direction at a time, sizes from 0 to
/// [`MAX_PAGE_SIZE`], cursors this server made.
pub fn page_request<C: CursorType, T>(
    after: Option<String>,
    before: Option<String>,
    first: Option<i32>,
    last: Option<i32>,
    into_key: impl Fn(C) -> T,
) -> Result<PageRequest<T>, ServiceError> {
    let cursor = |field: &'static str, value: Option<String>| {
        value
            .map(|s| {
                C::decode_cursor(&s)
                    .map(&into_key)
                    .map_err(|_| ServiceError::InvalidInput {
                        field,
                        message: format!("`{field}` is not a cursor this server gave out."),
                    })
            })
            .transpose()
    };
    let size = |field: &'static str, value: i32| {
        usize::try_from(value)
            .ok()
            .filter(|n| *n <= MAX_PAGE_SIZE)
            .ok_or_else(|| ServiceError::InvalidInput {
                field,
                message: format!("`{field}` must be between 0 and {MAX_PAGE_SIZE}."),
            })
    };
    match (first, last) {
        (Some(_), Some(_)) => Err(ServiceError::InvalidInput {
            field: "last",
            message: "Give `first` (with `after`) or `last` (with `before`), not both.".into(),
        }),
        (_, Some(last)) if after.is_none() => Ok(PageRequest::Backward {
            before: cursor("before", before)?,
            last: size("last", last)?,
        }),
        (_, Some(_)) => Err(ServiceError::InvalidInput {
            field: "after",
            message: "`after` goes with `first`; use `before` with `last`.".into(),
        }),
        (first, None) if before.is_none() => Ok(PageRequest::Forward {
            after: cursor("after", after)?,
            first: first.map_or(Ok(DEFAULT_PAGE_SIZE), |n| size("first", n))?,
        }),
        (_, None) => Err(ServiceError::InvalidInput {
            field: "before",
            message: "`before` goes with `last`; use `after` with `first`.".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        after: Option<&str>,
        before: Option<&str>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<PageRequest<Uuid>, ServiceError> {
        page_request::<IdCursor, _>(
            after.map(str::to_owned),
            before.map(str::to_owned),
            first,
            last,
            |c| c.0,
        )
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = Uuid::now_v7();
        let cursor = IdCursor(id).encode_cursor();
        assert_eq!(IdCursor::decode_cursor(&cursor), Ok(IdCursor(id)));
        assert!(IdCursor::decode_cursor("not a cursor").is_err());
        assert!(IdCursor::decode_cursor("").is_err());
    }

    #[test]
    fn no_arguments_reads_the_first_default_page() {
        assert_eq!(
            request(None, None, None, None).unwrap(),
            PageRequest::Forward {
                after: None,
                first: DEFAULT_PAGE_SIZE
            }
        );
    }

    #[test]
    fn bad_combinations_and_sizes_are_input_errors() {
        let cursor = IdCursor(Uuid::now_v7()).encode_cursor();
        for (case, result) in [
            ("both sizes", request(None, None, Some(1), Some(1))),
            ("negative", request(None, None, Some(-1), None)),
            ("too many", request(None, None, None, Some(101))),
            (
                "after with last",
                request(Some(&cursor), None, None, Some(2)),
            ),
            (
                "before with first",
                request(None, Some(&cursor), Some(2), None),
            ),
            ("garbage cursor", request(Some("zzz"), None, Some(2), None)),
        ] {
            assert!(
                matches!(result, Err(ServiceError::InvalidInput { .. })),
                "{case}"
            );
        }
    }
}
