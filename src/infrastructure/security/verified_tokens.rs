//! Access tokens whose signature already checked out. A session sends the same access token
//! with every request for its lifetime, and checking an ES256 or EdDSA signature costs far
//! more than the rest of a `me` (an HMAC check does not, so HS256 goes without). The first
//! check of a token stores its claims here under the token's SHA-256; later requests with it
//! skip the signature. Only verified tokens enter, the store is bounded (least recently used
//! out), and expiry is still judged on every use, as is the session behind the token.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::application::ports::AccessClaims;

/// Verified tokens: their claims and expiry (`exp`, seconds).
pub struct VerifiedTokens(Mutex<LruCache<[u8; 32], (AccessClaims, i64)>>);

impl VerifiedTokens {
    /// A store of `capacity` tokens; `None` for 0 (every token is verified every time).
    pub fn new(capacity: usize) -> Option<Self> {
        NonZeroUsize::new(capacity).map(|capacity| Self(Mutex::new(LruCache::new(capacity))))
    }

    /// What `token` said when its signature was checked, if it was.
    pub fn get(&self, token: &str) -> Option<(AccessClaims, i64)> {
        let key = Self::key(token);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .copied()
    }

    /// Remembers a token whose signature checked out.
    pub fn insert(&self, token: &str, claims: AccessClaims, exp: i64) {
        let key = Self::key(token);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, (claims, exp));
    }

    fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }
}
