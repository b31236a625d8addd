//! Automatic persisted queries (Apollo's protocol): documents remembered by their SHA-256, so a
//! client can send the hash alone. Only a document that was admitted and then passed
//! validation is remembered, and the store is bounded in bytes as well as in entries, so no
//! stream of documents, however large or broken, can make it grow past its bounds.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

/// How much the store may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistedLimits {
    /// Most documents; 0 turns persisted queries off.
    pub entries: usize,
    /// Most bytes of document text.
    pub bytes: usize,
}

/// Documents by the lowercase hex SHA-256 of their text, least recently used evicted first.
pub struct PersistedQueries {
    max_bytes: usize,
    store: Mutex<Store>,
}

struct Store {
    documents: LruCache<String, Arc<str>>,
    bytes: usize,
}

impl PersistedQueries {
    /// `None` when the limits turn persisted queries off.
    pub fn new(limits: PersistedLimits) -> Option<Self> {
        let entries = NonZeroUsize::new(limits.entries)?;
        (limits.bytes > 0).then(|| Self {
            max_bytes: limits.bytes,
            store: Mutex::new(Store {
                documents: LruCache::new(entries),
                bytes: 0,
            }),
        })
    }

    pub fn get(&self, hash: &str) -> Option<Arc<str>> {
        self.lock().documents.get(hash).cloned()
    }

    /// Remembers a validated document, evicting the least recently used ones to make room;
    /// one larger than the whole store is not kept.
    pub fn remember(&self, hash: String, document: Arc<str>) {
        let size = entry_size(&hash, &document);
        if size > self.max_bytes {
            return;
        }
        let mut store = self.lock();
        if let Some(old) = store.documents.pop(&hash) {
            store.bytes -= entry_size(&hash, &old);
        }
        while store.bytes + size > self.max_bytes {
            match store.documents.pop_lru() {
                Some((key, old)) => store.bytes -= entry_size(&key, &old),
                None => break,
            }
        }
        if let Some((key, old)) = store.documents.push(hash, document) {
            store.bytes -= entry_size(&key, &old);
        }
        store.bytes += size;
    }

    /// Documents held and their bytes, for the metrics.
    pub fn usage(&self) -> (usize, usize) {
        let store = self.lock();
        (store.documents.len(), store.bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        // The store stays consistent at every await-free step, so a poisoned lock is usable.
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn entry_size(hash: &str, document: &str) -> usize {
    hash.len() + document.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(entries: usize, bytes: usize) -> PersistedQueries {
        PersistedQueries::new(PersistedLimits { entries, bytes }).unwrap()
    }

    #[test]
    fn stays_within_its_bytes_evicting_the_least_recently_used() {
        let queries = store(100, 300);
        for i in 0..10 {
            queries.remember(format!("h{i}"), "x".repeat(98).into());
        }
        let (entries, bytes) = queries.usage();
        assert_eq!((entries, bytes), (3, 300));
        assert!(queries.get("h9").is_some() && queries.get("h6").is_none());
    }

    #[test]
    fn stays_within_its_entries_and_counts_a_replaced_document_once() {
        let queries = store(2, 10_000);
        queries.remember("a".into(), "1".into());
        queries.remember("a".into(), "1".into());
        queries.remember("b".into(), "2".into());
        queries.remember("c".into(), "3".into());
        assert_eq!(queries.usage(), (2, 4));
        assert!(queries.get("a").is_none());
    }

    #[test]
    fn a_document_larger_than_the_store_is_not_kept() {
        let queries = store(10, 100);
        queries.remember("small".into(), "{ a }".into());
        queries.remember("big".into(), "x".repeat(200).into());
        assert!(queries.get("big").is_none() && queries.get("small").is_some());
    }

    #[test]
    fn zero_entries_or_bytes_turn_it_off() {
        assert!(
            PersistedQueries::new(PersistedLimits {
                entries: 0,
                bytes: 10
            })
            .is_none()
        );
        assert!(
            PersistedQueries::new(PersistedLimits {
                entries: 10,
                bytes: 0
            })
            .is_none()
        );
    }
}
