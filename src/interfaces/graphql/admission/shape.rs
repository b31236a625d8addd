//! What a parsed but unvalidated document asks for, found in one pass that is linear in its
//! size: fragment cycles, the number of fields once every fragment is expanded, aliases,
//! introspection, and the root fields of the selected operation.
//!
//! Each fragment is walked once, after every fragment it spreads (an explicit stack, so a
//! chain of thousands of fragments needs no deep recursion), and its totals are reused by every
//! spread of it. So `fragment F0 { ...F1 ...F1 } fragment F1 { ...F2 ...F2 } …` costs one walk
//! per fragment here, though it expands to 2ⁿ fields, and that count is what gets refused.
//! Everything async-graphql walks later (its depth check, its validation visitors, execution)
//! expands fragments without memory of them: it runs only on documents this pass admitted,
//! acyclic and small once expanded.

use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Pos, Positioned};

/// The totals of a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// Fields over every operation with each fragment spread expanded (saturating).
    pub expanded_fields: u64,
    /// Aliases, counted the same way.
    pub aliases: u64,
    /// Where an operation first reaches `__schema` or `__type`.
    pub introspection: Option<Pos>,
    /// The most directives on one field, spread or inline fragment, and where.
    pub most_directives: (usize, Option<Pos>),
    /// The operation the request runs, when the document names one unambiguously.
    pub selected: Option<Selected>,
    /// Fragment definitions walked (each at most once).
    pub fragments_walked: usize,
}

/// The selected operation's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub ty: OperationType,
    /// Where its selection set starts.
    pub pos: Pos,
    /// Fields at the root, fragments expanded, repeats included.
    pub root_fields: u64,
    /// Distinct root field names, in order of appearance, at most `name_cap` of them.
    pub root_names: Vec<Name>,
}

/// A fragment that spreads itself, directly or through others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentCycle {
    pub fragment: Name,
    pub pos: Pos,
}

/// The totals of one selection set, fragments expanded.
#[derive(Debug, Clone, Default)]
struct Totals {
    fields: u64,
    aliases: u64,
    introspection: Option<Pos>,
    most_directives: (usize, Option<Pos>),
    root_fields: u64,
    root_names: Vec<Name>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    InProgress,
    Done(usize),
}

/// Analyses `document`, keeping up to `name_cap` distinct root names of the operation named
/// `operation_name` (or of the only one).
pub fn analyse(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    name_cap: usize,
) -> Result<Shape, FragmentCycle> {
    let mut walker = Walker {
        document,
        name_cap,
        marks: HashMap::with_capacity(document.fragments.len()),
        done: Vec::with_capacity(document.fragments.len()),
    };
    // Every fragment, used or not: a cycle is refused wherever it is.
    for name in document.fragments.keys() {
        walker.complete(name)?;
    }
    let mut shape = Shape {
        fragments_walked: walker.done.len(),
        ..Shape::default()
    };
    let selected = selected_operation(&document.operations, operation_name);
    for (name, operation) in document.operations.iter() {
        let totals = walker.totals(&operation.node.selection_set);
        shape.expanded_fields = shape.expanded_fields.saturating_add(totals.fields);
        shape.aliases = shape.aliases.saturating_add(totals.aliases);
        shape.introspection = shape.introspection.or(totals.introspection);
        shape.most_directives = shape.most_directives.max(totals.most_directives);
        if selected == Some(name.map(Name::as_str)) {
            shape.selected = Some(Selected {
                ty: operation.node.ty,
                pos: operation.node.selection_set.pos,
                root_fields: totals.root_fields,
                root_names: totals.root_names,
            });
        }
    }
    Ok(shape)
}

/// Which operation runs: the named one, or the only one. `Some(None)` is the anonymous one.
fn selected_operation<'a>(
    operations: &'a DocumentOperations,
    name: Option<&'a str>,
) -> Option<Option<&'a str>> {
    match (operations, name) {
        (DocumentOperations::Single(_), _) => Some(None),
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.contains_key(name).then_some(Some(name))
        }
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.keys().next().map(|name| Some(name.as_str()))
        }
        _ => None,
    }
}

struct Walker<'a> {
    document: &'a ExecutableDocument,
    name_cap: usize,
    marks: HashMap<&'a str, Mark>,
    done: Vec<Totals>,
}

impl<'a> Walker<'a> {
    /// Computes the totals of `start` and of every fragment it reaches, each after the ones it
    /// spreads, with an explicit stack.
    fn complete(&mut self, start: &'a Name) -> Result<(), FragmentCycle> {
        if self.marks.contains_key(start.as_str()) {
            return Ok(());
        }
        let mut stack: Vec<(&'a str, Vec<&'a Positioned<Name>>)> = Vec::new();
        self.enter(start.as_str(), &mut stack);
        while let Some((name, pending)) = stack.last_mut() {
            let Some(spread) = pending.pop() else {
                let name = *name;
                stack.pop();
                let definition = &self.document.fragments[name];
                let totals = self.totals(&definition.node.selection_set);
                self.marks.insert(name, Mark::Done(self.done.len()));
                self.done.push(totals);
                continue;
            };
            let target = spread.node.as_str();
            match self.marks.get(target) {
                Some(Mark::InProgress) => {
                    return Err(FragmentCycle {
                        fragment: spread.node.clone(),
                        pos: spread.pos,
                    });
                }
                Some(Mark::Done(_)) => {}
                // A spread of an unknown fragment adds nothing; validation names it.
                None if !self.document.fragments.contains_key(target) => {}
                None => self.enter(target, &mut stack),
            }
        }
        Ok(())
    }

    fn enter(&mut self, name: &'a str, stack: &mut Vec<(&'a str, Vec<&'a Positioned<Name>>)>) {
        self.marks.insert(name, Mark::InProgress);
        let mut spreads = Vec::new();
        spreads_in(
            &self.document.fragments[name].node.selection_set,
            &mut spreads,
        );
        stack.push((name, spreads));
    }

    /// The totals of a selection set whose spread fragments are all complete.
    fn totals(&self, set: &Positioned<SelectionSet>) -> Totals {
        let mut totals = Totals::default();
        self.add(set, true, &mut totals);
        totals
    }

    /// Recursion here follows the nesting of selection sets, which the parser bounds.
    fn add(&self, set: &Positioned<SelectionSet>, at_root: bool, totals: &mut Totals) {
        for item in &set.node.items {
            let directives = item.node.directives().len();
            if directives > totals.most_directives.0 {
                totals.most_directives = (directives, Some(item.pos));
            }
            match &item.node {
                Selection::Field(field) => {
                    let name = &field.node.name.node;
                    totals.fields = totals.fields.saturating_add(1);
                    totals.aliases = totals
                        .aliases
                        .saturating_add(u64::from(field.node.alias.is_some()));
                    if matches!(name.as_str(), "__schema" | "__type") {
                        totals.introspection.get_or_insert(field.pos);
                    }
                    if at_root {
                        totals.root_fields = totals.root_fields.saturating_add(1);
                        self.add_root_name(name, totals);
                    }
                    self.add(&field.node.selection_set, false, totals);
                }
                Selection::InlineFragment(fragment) => {
                    self.add(&fragment.node.selection_set, at_root, totals);
                }
                Selection::FragmentSpread(spread) => {
                    let Some(Mark::Done(index)) =
                        self.marks.get(spread.node.fragment_name.node.as_str())
                    else {
                        continue; // unknown fragment
                    };
                    let fragment = &self.done[*index];
                    totals.fields = totals.fields.saturating_add(fragment.fields);
                    totals.aliases = totals.aliases.saturating_add(fragment.aliases);
                    totals.introspection = totals.introspection.or(fragment.introspection);
                    totals.most_directives = totals.most_directives.max(fragment.most_directives);
                    if at_root {
                        totals.root_fields =
                            totals.root_fields.saturating_add(fragment.root_fields);
                        for name in &fragment.root_names {
                            self.add_root_name(name, totals);
                        }
                    }
                }
            }
        }
    }

    fn add_root_name(&self, name: &Name, totals: &mut Totals) {
        if totals.root_names.len() < self.name_cap && !totals.root_names.contains(name) {
            totals.root_names.push(name.clone());
        }
    }
}

/// The fragment spreads anywhere in a selection set.
fn spreads_in<'a>(set: &'a Positioned<SelectionSet>, spreads: &mut Vec<&'a Positioned<Name>>) {
    for item in &set.node.items {
        match &item.node {
            Selection::Field(field) => spreads_in(&field.node.selection_set, spreads),
            Selection::InlineFragment(fragment) => {
                spreads_in(&fragment.node.selection_set, spreads)
            }
            Selection::FragmentSpread(spread) => spreads.push(&spread.node.fragment_name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;
    use proptest::prelude::*;

    fn shape(document: &str) -> Result<Shape, FragmentCycle> {
        analyse(&parse_query(document).unwrap(), None, 3)
    }

    #[test]
    fn counts_fields_and_aliases_with_every_fragment_expanded() {
        let found = shape(
            "{ a: me { id } ...F ...F } fragment F on Query { b: __typename ... on Query { me { id } } }",
        )
        .unwrap();
        assert_eq!((found.expanded_fields, found.aliases), (8, 3));
        let selected = found.selected.unwrap();
        assert_eq!(selected.root_fields, 5);
        let names: Vec<&str> = selected.root_names.iter().map(Name::as_str).collect();
        assert_eq!(names, ["me", "__typename"]);
        assert_eq!(found.fragments_walked, 1);
    }

    #[test]
    fn refuses_a_fragment_spreading_itself_directly_or_through_others() {
        for document in [
            "{ ...A } fragment A on Query { __typename ...A }",
            "{ ...A } fragment A on Query { ...B } fragment B on Query { me { ...C } } fragment C on User { ...A }",
            // Unused, but still refused: other walks visit every definition.
            "{ __typename } fragment A on Query { ...A }",
            "{ __schema { types { ...T } } } fragment T on __Type { name ofType { ...T } }",
        ] {
            assert!(shape(document).is_err(), "{document}");
        }
    }

    #[test]
    fn exponential_fan_out_costs_one_walk_per_fragment_and_saturates() {
        let mut document = String::from("{ ...F0 }");
        for i in 0..80 {
            document += &format!(
                " fragment F{i} on Query {{ __typename ...F{n} ...F{n} }}",
                n = i + 1
            );
        }
        document += " fragment F80 on Query { __typename }";
        let found = shape(&document).unwrap();
        assert_eq!(found.fragments_walked, 81);
        assert_eq!(found.expanded_fields, u64::MAX);
    }

    #[test]
    fn a_chain_of_thousands_of_fragments_needs_no_deep_recursion() {
        let mut document = String::from("{ ...F0 }");
        for i in 0..20_000 {
            document += &format!(" fragment F{i} on Query {{ ...F{} }}", i + 1);
        }
        document += " fragment F20000 on Query { __typename }";
        let document = parse_query(&document).unwrap();
        let found = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || analyse(&document, None, 3).map(|s| s.expanded_fields))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(found, Ok(1));
    }

    #[test]
    fn the_selected_operation_is_the_named_or_the_only_one() {
        let document = parse_query("query A { me { id } } mutation B { logoutAll }").unwrap();
        let named = analyse(&document, Some("B"), 3).unwrap().selected.unwrap();
        assert_eq!(named.ty, OperationType::Mutation);
        assert_eq!(analyse(&document, None, 3).unwrap().selected, None);
        assert_eq!(analyse(&document, Some("C"), 3).unwrap().selected, None);
    }

    /// A document whose fragments spread each other along random edges, cycles included:
    /// `edges[i]` lists the fragments fragment `i` spreads, each under a field of its own.
    fn document(edges: &[Vec<usize>], root: &[usize]) -> String {
        let spread = |targets: &[usize]| -> String {
            targets
                .iter()
                .map(|t| format!("me {{ ...F{t} }} "))
                .collect()
        };
        let mut text = format!("{{ __typename {} }}", spread(root));
        for (i, targets) in edges.iter().enumerate() {
            text += &format!(
                " fragment F{i} on Query {{ __typename {} }}",
                spread(targets)
            );
        }
        text
    }

    /// The same counts the slow way: expanding every spread, with a depth bound for cycles.
    fn naive(edges: &[Vec<usize>], fragment: usize, depth: usize) -> Option<u64> {
        if depth > edges.len() {
            return None; // a cycle
        }
        edges[fragment].iter().try_fold(1u64, |sum, &t| {
            Some(
                sum.saturating_add(1)
                    .saturating_add(naive(edges, t, depth + 1)?),
            )
        })
    }

    proptest! {
        #[test]
        fn any_fragment_graph_is_analysed_in_one_walk_per_fragment_and_matches_expansion(
            edges in (1usize..8).prop_flat_map(|n| {
                proptest::collection::vec(proptest::collection::vec(0..n, 0..3), n)
            }),
            root_seed in proptest::collection::vec(any::<usize>(), 0..4),
        ) {
            let n = edges.len();
            let root: Vec<usize> = root_seed.iter().map(|r| r % n).collect();
            let text = document(&edges, &root);
            let parsed = parse_query(&text).unwrap();
            let expected: Option<u64> = (0..n)
                .map(|f| naive(&edges, f, 0).map(|_| ()))
                .collect::<Option<Vec<()>>>()
                .map(|_| {
                    root.iter().fold(1u64, |sum, &t| {
                        sum.saturating_add(1).saturating_add(naive(&edges, t, 0).unwrap())
                    })
                });
            match (analyse(&parsed, None, 3), expected) {
                (Ok(found), Some(fields)) => {
                    prop_assert_eq!(found.expanded_fields, fields);
                    prop_assert_eq!(found.fragments_walked, n);
                }
                (Err(_), None) => {}
                (found, expected) => prop_assert!(false, "{found:?} but expected {expected:?}"),
            }
        }
    }
}
