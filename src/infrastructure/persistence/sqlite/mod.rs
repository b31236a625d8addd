//! The SQLite-only fast paths, each an adapter that wraps a generic repository and replaces
//! only the methods it speeds up: the session check of every authenticated request and the
//! lookup by email of every sign-in or reset request, read on the calling thread (`reads`).
//! The composition root uses them on a SQLite database unless `SQLITE_FAST_PATHS=false`,
//! which keeps the generic repositories (to compare the two). A path stays here only while
//! paired benchmark runs show it pays (bench/FAST-PATHS.md).

mod reads;
mod sessions;
mod users;

pub use reads::DirectReads;
pub use sessions::SqliteSessionRepository;
pub use users::SqliteUserRepository;

#[cfg(test)]
mod tests;
