//! A client's document is hostile until async-graphql has validated it. Admission is all that
//! happens to it before then, in one place and in this order, each step linear in its size:
//!
//! 1. persisted queries: the document behind a hash, or the hash checked against the text;
//! 2. the parser's limits, on the text, before parsing (`size.rs`);
//! 3. parsing, once;
//! 4. the shape of the parsed document (`shape.rs`): fragment cycles refused, fields counted
//!    with every fragment expanded, and the limits async-graphql lacks (aliases, root fields,
//!    introspection switched off);
//! 5. object literals with a field written twice, read from the text (`input_fields.rs`),
//!    since the parsed document keeps only the last of them.
//!
//! async-graphql's own walks (its recursion-depth check, its validation visitors) expand
//! fragments with no memory of them and would follow a cycle until the stack overflows; they
//! only ever see a document admitted here. Nothing of a document is kept, counted or named
//! until it has validated: `finish` then remembers a persisted query and names the operation
//! for the metrics from its validated root fields.

mod input_fields;
mod persisted;
mod shape;
mod size;

use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use async_graphql::{Name, ServerError};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use persisted::PersistedLimits;
pub use size::SizeLimits;

use super::error::{code, parse_failed, with_code};
use persisted::PersistedQueries;

/// What one request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Checked on the text, before parsing.
    pub size: SizeLimits,
    /// Deepest selection nesting (GraphiQL's own introspection query is 13 levels deep).
    pub max_depth: usize,
    /// Highest cost: each field costs 1, lists multiply by their page size. It also bounds
    /// the fields a document expands to once its fragments are inlined.
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    /// Most directives on one field, fragment spread or inline fragment.
    pub max_directives: usize,
    pub introspection: bool,
    /// Automatic persisted queries: what the store of documents may hold.
    pub persisted: PersistedLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // GraphiQL's introspection query is ~400 tokens and 13 levels deep; Apollo Router
            // also refuses past 15,000 tokens by default.
            size: SizeLimits {
                max_tokens: 15_000,
                max_nesting: 128,
            },
            max_depth: 16,
            // A page of 100 items with a rich selection costs ~2,000; nested pages multiply.
            max_complexity: 20_000,
            max_aliases: 30,
            max_root_fields: 10,
            max_directives: 10,
            introspection: true,
            persisted: PersistedLimits {
                entries: 1024,
                bytes: 2 * 1024 * 1024,
            },
        }
    }
}

/// Admits documents under the server's limits and holds the persisted queries.
pub struct Admission {
    limits: Limits,
    persisted: Option<PersistedQueries>,
}

/// A document that may go on to validation.
pub struct Admitted {
    /// The type of the operation that runs, when the document names one unambiguously.
    pub operation_type: Option<OperationType>,
    root_names: Vec<Name>,
    /// A persisted query to remember once it has validated.
    persist: Option<(String, Arc<str>)>,
}

/// Apollo's `extensions.persistedQuery`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersistedQuery {
    version: i64,
    sha256_hash: String,
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            persisted: PersistedQueries::new(limits.persisted),
        }
    }

    /// Resolves a persisted query, checks the document's size, parses it into the request and
    /// checks its shape. The error carries its `extensions.code`.
    pub fn admit(&self, request: &mut async_graphql::Request) -> Result<Admitted, ServerError> {
        let persist = self.resolve_persisted(request)?;
        size::check(&request.query, self.limits.size).map_err(|e| {
            with_code(
                ServerError::new(e.to_string(), None),
                code::GRAPHQL_PARSE_FAILED,
            )
        })?;
        let operation_name = request.operation_name.clone();
        let document = request.parsed_query().map_err(parse_failed)?;
        // One more name than allowed is enough to know there are too many.
        let name_cap = self.limits.max_root_fields.saturating_add(1);
        let shape =
            shape::analyse(document, operation_name.as_deref(), name_cap).map_err(|cycle| {
                refused(
                    format!(
                        "Cannot spread fragment \"{}\" within itself.",
                        cycle.fragment
                    ),
                    Some(cycle.pos),
                )
            })?;
        self.check(&shape)?;
        if let Some(repeat) = input_fields::first_repeat(&request.query) {
            return Err(refused(
                format!(
                    "There can be only one input field named \"{}\".",
                    repeat.name
                ),
                Some(repeat.pos),
            ));
        }
        let (operation_type, root_names) = shape
            .selected
            .map_or((None, Vec::new()), |s| (Some(s.ty), s.root_names));
        Ok(Admitted {
            operation_type,
            root_names,
            persist,
        })
    }

    /// After execution: remembers a persisted query that validated, and names the operation
    /// for the metrics by its root field (`multiple` for several), or `invalid` when it did
    /// not validate. The names are the schema's, so they are bounded whatever clients send.
    pub fn finish(&self, admitted: Admitted, validated: bool) -> String {
        if !validated {
            return "invalid".into();
        }
        if let (Some(persisted), Some((hash, document))) = (&self.persisted, admitted.persist) {
            persisted.remember(hash, document);
        }
        match admitted.root_names.as_slice() {
            [single] => single.to_string(),
            [] => "invalid".into(),
            _ => "multiple".into(),
        }
    }

    /// Persisted documents held and their bytes.
    pub fn persisted_usage(&self) -> (usize, usize) {
        self.persisted
            .as_ref()
            .map_or((0, 0), PersistedQueries::usage)
    }

    /// Fills in the document behind a hash, or checks a hash sent with its document (which is
    /// then remembered if it validates).
    fn resolve_persisted(
        &self,
        request: &mut async_graphql::Request,
    ) -> Result<Option<(String, Arc<str>)>, ServerError> {
        let Some(extension) = request.extensions.remove("persistedQuery") else {
            return Ok(None);
        };
        let Some(persisted) = &self.persisted else {
            return if request.query.is_empty() {
                Err(with_code(
                    ServerError::new("PersistedQueryNotSupported", None),
                    code::PERSISTED_QUERY_NOT_SUPPORTED,
                ))
            } else {
                Ok(None)
            };
        };
        let asked: PersistedQuery = async_graphql::from_value(extension).map_err(|_| {
            refused(
                "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": \"…\"}.",
                None,
            )
        })?;
        if asked.version != 1 {
            return Err(refused(
                "Only version 1 of persisted queries is supported.",
                None,
            ));
        }
        if request.query.is_empty() {
            let document = persisted.get(&asked.sha256_hash).ok_or_else(|| {
                with_code(
                    ServerError::new("PersistedQueryNotFound", None),
                    code::PERSISTED_QUERY_NOT_FOUND,
                )
            })?;
            request.query = document.to_string();
            return Ok(None);
        }
        let hash = format!("{:x}", Sha256::digest(request.query.as_bytes()));
        if hash != asked.sha256_hash {
            return Err(refused("provided sha does not match query", None));
        }
        Ok(Some((hash, request.query.as_str().into())))
    }

    /// The limits async-graphql does not enforce, and the one that bounds its own walks.
    fn check(&self, shape: &shape::Shape) -> Result<(), ServerError> {
        let limits = &self.limits;
        // async-graphql's walks and execution expand every fragment: bound what they expand.
        if shape.expanded_fields > limits.max_complexity as u64 {
            return Err(refused(
                format!(
                    "The document selects more than {max} fields once its fragments are \
                     expanded; at most {max} are allowed.",
                    max = limits.max_complexity
                ),
                None,
            ));
        }
        if shape.aliases > limits.max_aliases as u64 {
            return Err(refused(
                format!(
                    "The document uses {} aliases; at most {} are allowed.",
                    shape.aliases, limits.max_aliases
                ),
                None,
            ));
        }
        if let (count, pos) = shape.most_directives
            && count > limits.max_directives
        {
            return Err(refused(
                format!(
                    "A selection carries {count} directives; at most {} are allowed.",
                    limits.max_directives
                ),
                pos,
            ));
        }
        if let (false, Some(pos)) = (limits.introspection, shape.introspection) {
            return Err(refused(
                "Introspection is turned off on this server; use the published schema.graphql.",
                Some(pos),
            ));
        }
        if let Some(selected) = &shape.selected
            && selected.root_fields > limits.max_root_fields as u64
        {
            return Err(refused(
                format!(
                    "The operation selects {} top-level fields; at most {} are allowed.",
                    selected.root_fields, limits.max_root_fields
                ),
                Some(selected.pos),
            ));
        }
        Ok(())
    }
}

fn refused(message: impl Into<String>, pos: Option<async_graphql::Pos>) -> ServerError {
    with_code(
        ServerError::new(message, pos),
        code::GRAPHQL_VALIDATION_FAILED,
    )
}
