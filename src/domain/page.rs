//! Cursor pagination in domain terms: a window of a list ordered by a stable key.

/// A list's total is counted exactly up to this many items; past it, the count stops and the
/// total is an estimate (see [`UserDirectory::count`](super::UserDirectory::count)): reading
/// every row of a table of millions beside each page of twenty would cost more than the page.
pub const EXACT_TOTAL_UP_TO: u64 = 10_000;

/// Which window of a list to read: the `first` items after a cursor, or the `last` items
/// before one (Relay's connection arguments, already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest<C> {
    Forward { after: Option<C>, first: usize },
    Backward { before: Option<C>, last: usize },
}

/// A window of a list, in list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_previous: bool,
    pub has_next: bool,
}

impl<C> PageRequest<C> {
    /// The number of items wanted.
    pub fn size(&self) -> usize {
        match self {
            PageRequest::Forward { first, .. } => *first,
            PageRequest::Backward { last, .. } => *last,
        }
    }
}

impl<T> Page<T> {
    /// Builds a page from up to `size + 1` items read in the request's direction (after the
    /// cursor ascending, or before it descending): the extra item only says there is more.
    pub fn from_probe<C>(request: &PageRequest<C>, mut probe: Vec<T>) -> Self {
        let more = probe.len() > request.size();
        probe.truncate(request.size());
        match request {
            PageRequest::Forward { after, .. } => Page {
                items: probe,
                // Paging forward, anything before the cursor counts as a previous page.
                has_previous: after.is_some(),
                has_next: more,
            },
            PageRequest::Backward { before, .. } => {
                probe.reverse();
                Page {
                    items: probe,
                    has_previous: more,
                    has_next: before.is_some(),
                }
            }
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_previous: self.has_previous,
            has_next: self.has_next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_probe_with_an_extra_item_has_a_next_page() {
        let request = PageRequest::Forward {
            after: None::<u32>,
            first: 2,
        };
        let page = Page::from_probe(&request, vec![1, 2, 3]);
        assert_eq!(page.items, vec![1, 2]);
        assert!(page.has_next && !page.has_previous);
    }

    #[test]
    fn a_backward_probe_is_returned_in_list_order() {
        let request = PageRequest::Backward {
            before: Some(9u32),
            last: 2,
        };
        let page = Page::from_probe(&request, vec![8, 7]);
        assert_eq!(page.items, vec![7, 8]);
        assert!(!page.has_previous && page.has_next);
    }
}
