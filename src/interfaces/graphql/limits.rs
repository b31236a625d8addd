//! Limits async-graphql does not enforce itself: aliases per document, fields at the root of an
//! operation, and introspection switched off (async-graphql would silently answer null).

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Pos, Positioned, ServerError};

use super::Limits;

/// Refuses a document that breaks a limit, saying which.
pub fn check(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    limits: &Limits,
) -> Result<(), ServerError> {
    let sets = document
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set)
        .chain(document.fragments.values().map(|f| &f.node.selection_set));

    let mut aliases = 0;
    let mut introspection: Option<Pos> = None;
    for set in sets {
        walk(set, &mut |field_name, has_alias, pos| {
            aliases += usize::from(has_alias);
            if matches!(field_name, "__schema" | "__type") {
                introspection.get_or_insert(pos);
            }
        });
    }
    if aliases > limits.max_aliases {
        return Err(ServerError::new(
            format!(
                "The document uses {aliases} aliases; at most {} are allowed.",
                limits.max_aliases
            ),
            None,
        ));
    }
    if let (false, Some(pos)) = (limits.introspection, introspection) {
        return Err(ServerError::new(
            "Introspection is turned off on this server; use the published schema.graphql.",
            Some(pos),
        ));
    }
    if let Some(operation) = selected(document, operation_name) {
        let roots = root_fields(document, &operation.selection_set);
        if roots > limits.max_root_fields {
            return Err(ServerError::new(
                format!(
                    "The operation selects {roots} top-level fields; at most {} are allowed.",
                    limits.max_root_fields
                ),
                Some(operation.selection_set.pos),
            ));
        }
    }
    Ok(())
}

fn selected<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        _ => None,
    }
}

/// Every field of a selection set, nested ones included (fragment spreads are counted where
/// the fragment is defined).
fn walk(set: &Positioned<SelectionSet>, visit: &mut impl FnMut(&str, bool, Pos)) {
    for item in &set.node.items {
        match &item.node {
            Selection::Field(field) => {
                visit(
                    field.node.name.node.as_str(),
                    field.node.alias.is_some(),
                    field.pos,
                );
                walk(&field.node.selection_set, visit);
            }
            Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set, visit),
            Selection::FragmentSpread(_) => {}
        }
    }
}

/// Fields at the top of an operation, looking through fragments there.
fn root_fields(document: &ExecutableDocument, set: &Positioned<SelectionSet>) -> usize {
    set.node
        .items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(fragment) => {
                root_fields(document, &fragment.node.selection_set)
            }
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |f| root_fields(document, &f.node.selection_set)),
        })
        .sum()
}

/// The distinct root field names of the selected operation, or `None` when no operation is
/// selected.
pub fn root_field_names(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<Vec<String>> {
    fn collect(
        document: &ExecutableDocument,
        set: &Positioned<SelectionSet>,
        names: &mut Vec<String>,
    ) {
        for item in &set.node.items {
            match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.to_string();
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                Selection::InlineFragment(fragment) => {
                    collect(document, &fragment.node.selection_set, names)
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        collect(document, &fragment.node.selection_set, names);
                    }
                }
            }
        }
    }
    let operation = selected(document, operation_name)?;
    let mut names = Vec::new();
    collect(document, &operation.selection_set, &mut names);
    Some(names)
}
