//! The SQLite fast paths: the two hot reads (`HotReads`: the session check of every
//! authenticated request and the lookup by email of every sign-in or reset request) run on the
//! calling thread (`reads`), with the statements SeaORM builds for the generic path (`rows`).
//! The composition root uses them on a SQLite file unless `SQLITE_FAST_PATHS=false`, which
//! keeps the generic reads (to compare the two). A path stays here only while paired benchmark
//! runs show it pays (bench/FAST-PATHS.md).

mod reads;
mod rows;

pub use reads::DirectReads;

#[cfg(test)]
mod tests;
