//! The import graph of the crate's own files: which `src/` file names which through a
//! `crate::`, `super::` or `self::` path (in a `use` or inline). No file may import one that
//! imports it back, directly or through others; a cycle means two modules are one module in
//! two files, or that a type shared by both belongs in a third. Test code (`#[cfg(test)]`
//! items and files) is left out: tests are a composition root of their own.
//!
//! A path that names an item a `mod.rs` re-exports counts as an import of the file that
//! defines the item, not of the `mod.rs`: re-exports are a facade, not a dependency.
//!
//! Only `std` is used, so `rustc --edition 2024 --test tests/api/imports.rs` builds it alone
//! (run it from the repository root).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles known when this check landed, each to be removed from here with the change that
/// breaks it. A cycle listed here that is gone (or smaller) passes; any other fails. None is
/// left.
const KNOWN_CYCLES: &[&[&str]] = &[];

#[test]
fn no_source_file_imports_one_that_imports_it_back() {
    let graph = Graph::of_crate(&root().join("src"));
    let cycles: Vec<Vec<String>> = graph
        .cycles()
        .into_iter()
        .filter(|cycle| {
            !KNOWN_CYCLES.iter().any(|known| {
                let known: BTreeSet<&str> = known.iter().copied().collect();
                let found: BTreeSet<&str> = cycle.iter().map(String::as_str).collect();
                found.is_subset(&known)
            })
        })
        .collect();
    assert!(
        cycles.is_empty(),
        "import cycles (files that import each other, directly or through the others \
         listed):\n{}",
        describe(&graph, &cycles)
    );
}

#[test]
fn the_graph_sees_imports_through_use_trees_inline_paths_and_re_exports() {
    let dir = std::env::temp_dir().join(format!("import-graph-{}", std::process::id()));
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n");
    write(
        "a/mod.rs",
        "mod one;\nmod two;\n#[cfg(test)]\nmod fakes;\npub use one::One;\npub use two::{Two, \
         Three};\n",
    );
    write(
        "a/one.rs",
        "use super::{two::Two, Three};\n// use crate::c::C; in a comment\npub struct One;\n\
         #[cfg(test)]\nmod tests { use crate::b::B; }\n",
    );
    write(
        "a/two.rs",
        "pub struct Two; pub struct Three;\nfn f() { let s = \"crate::c::C\"; }\n",
    );
    write("a/fakes.rs", "use crate::c::C;\n");
    write("b.rs", "pub struct B;\nfn f() { crate::a::One; }\n");
    write("c.rs", "use crate::{a::Two, b::B};\npub struct C;\n");
    let graph = Graph::of_crate(&dir);
    std::fs::remove_dir_all(&dir).unwrap();

    let edges =
        |from: &str| -> Vec<&str> { graph.edges[from].iter().map(String::as_str).collect() };
    assert_eq!(edges("a/one.rs"), ["a/two.rs"], "through the re-export");
    assert_eq!(edges("a/two.rs"), Vec::<&str>::new(), "not in a string");
    assert_eq!(edges("b.rs"), ["a/one.rs"], "an inline path");
    assert_eq!(edges("c.rs"), ["a/two.rs", "b.rs"], "a use tree");
    assert!(!graph.edges.contains_key("a/fakes.rs"), "a test-only file");
    assert!(graph.cycles().is_empty());
}

fn root() -> PathBuf {
    PathBuf::from(option_env!("CARGO_MANIFEST_DIR").unwrap_or("."))
}

/// Each cycle with the imports that close it.
fn describe(graph: &Graph, cycles: &[Vec<String>]) -> String {
    let mut out = String::new();
    for cycle in cycles {
        out.push_str(&format!("- {}\n", cycle.join(", ")));
        for from in cycle {
            for to in &graph.edges[from] {
                if cycle.contains(to) {
                    out.push_str(&format!("    {from} -> {to}\n"));
                }
            }
        }
    }
    out
}

/// Files (relative to `src/`, `/`-separated) and the files each imports.
pub struct Graph {
    pub edges: BTreeMap<String, BTreeSet<String>>,
}

/// One source file as the graph reads it.
struct File {
    /// Module path from the crate root (`["application", "auth"]`).
    module: Vec<String>,
    /// The text, without comments, string contents or test-only items.
    code: String,
    /// Child modules declared in it (`mod x;`), test-only ones left out.
    children: BTreeSet<String>,
    /// Names it re-exports (`pub use path::Name;`), to the path they come from.
    re_exports: BTreeMap<String, Vec<String>>,
}

impl Graph {
    pub fn of_crate(src: &Path) -> Self {
        let mut files: BTreeMap<String, File> = BTreeMap::new();
        let mut pending = vec![("lib.rs".to_owned(), Vec::<String>::new())];
        while let Some((path, module)) = pending.pop() {
            let Ok(text) = std::fs::read_to_string(src.join(&path)) else {
                continue;
            };
            let is_dir_module = path == "lib.rs" || path.ends_with("/mod.rs");
            let file = File::read(&text, module);
            let dir = match path.rsplit_once('/') {
                Some((dir, _)) if is_dir_module => format!("{dir}/"),
                Some((dir, name)) => format!("{dir}/{}/", name.trim_end_matches(".rs")),
                None if is_dir_module => String::new(),
                None => format!("{}/", path.trim_end_matches(".rs")),
            };
            for child in &file.children {
                let mut module = file.module.clone();
                module.push(child.clone());
                let flat = format!("{dir}{child}.rs");
                let nested = format!("{dir}{child}/mod.rs");
                let found = if src.join(&flat).exists() {
                    flat
                } else {
                    nested
                };
                pending.push((found, module));
            }
            files.insert(path, file);
        }
        let by_module: BTreeMap<Vec<String>, String> = files
            .iter()
            .map(|(path, file)| (file.module.clone(), path.clone()))
            .collect();
        let mut edges = BTreeMap::new();
        for (path, file) in &files {
            let mut to = BTreeSet::new();
            for used in file.paths() {
                if let Some(target) = resolve(&files, &by_module, &used, 0)
                    && &target != path
                {
                    to.insert(target);
                }
            }
            edges.insert(path.clone(), to);
        }
        Self { edges }
    }

    /// The files that reach themselves through imports, in groups of files that reach each
    /// other (one cycle, or several sharing files), each sorted.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let reach: BTreeMap<&str, BTreeSet<&str>> = self
            .edges
            .keys()
            .map(|file| (file.as_str(), self.reachable(file)))
            .collect();
        let mut groups = BTreeSet::new();
        for (file, reached) in &reach {
            if reached.contains(file) {
                let group: Vec<String> = reached
                    .iter()
                    .filter(|other| reach[**other].contains(file))
                    .map(|other| (*other).to_owned())
                    .collect();
                groups.insert(group);
            }
        }
        groups.into_iter().collect()
    }

    fn reachable(&self, from: &str) -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut next: Vec<&str> = self.edges[from].iter().map(String::as_str).collect();
        while let Some(file) = next.pop() {
            if seen.insert(file) {
                next.extend(
                    self.edges
                        .get(file)
                        .into_iter()
                        .flatten()
                        .map(String::as_str),
                );
            }
        }
        seen
    }
}

/// The file that defines what `path` (absolute module segments, then maybe an item) names:
/// the deepest file module on the path, or, when that is a `mod.rs` re-exporting the next
/// segment, the file the re-export comes from.
fn resolve(
    files: &BTreeMap<String, File>,
    by_module: &BTreeMap<Vec<String>, String>,
    path: &[String],
    depth: usize,
) -> Option<String> {
    let (mut found, mut len) = (None, 0);
    for end in 0..=path.len() {
        if let Some(file) = by_module.get(&path[..end]) {
            (found, len) = (Some(file.clone()), end);
        }
    }
    let found = found?;
    let file = &files[&found];
    if depth < 8
        && let Some(name) = path.get(len)
        && let Some(origin) = file.re_exports.get(name)
    {
        let mut origin = file.absolute(origin)?;
        origin.extend(path[len + 1..].iter().cloned());
        return resolve(files, by_module, &origin, depth + 1).or(Some(found));
    }
    // Only the crate's own modules count; `crate::` alone is the root's items.
    (len > 0).then_some(found)
}

impl File {
    fn read(text: &str, module: Vec<String>) -> Self {
        let code = strip(text);
        let mut file = Self {
            module,
            children: declared_modules(&code),
            re_exports: BTreeMap::new(),
            code,
        };
        for (public, tree) in use_statements(&file.code) {
            if !public {
                continue;
            }
            for path in expand(&tree) {
                let Some(last) = path.last() else { continue };
                let name = match path.iter().position(|s| s == "as") {
                    Some(at) => path.get(at + 1).cloned().unwrap_or_default(),
                    None => last.clone(),
                };
                let source: Vec<String> = path.iter().take_while(|s| *s != "as").cloned().collect();
                if name != "*" && name != "self" {
                    file.re_exports.insert(name, source);
                }
            }
        }
        file
    }

    /// The module `self` stands for in this file, and `super` from there.
    fn absolute(&self, path: &[String]) -> Option<Vec<String>> {
        let mut at = self.module.clone();
        let mut segments = path.iter().peekable();
        match segments.peek().map(|s| s.as_str()) {
            Some("crate") => {
                at.clear();
                segments.next();
            }
            Some("self") => {
                segments.next();
            }
            Some("super") => {
                while segments.peek().map(|s| s.as_str()) == Some("super") {
                    at.pop()?;
                    segments.next();
                }
            }
            // A child module of this file (`use reads::X` in a `mod.rs`).
            Some(first) if self.children.contains(first) => {}
            _ => return None,
        }
        at.extend(segments.cloned());
        Some(at)
    }

    /// Every path this file names in its own crate, absolute; re-exports (`pub use`) left
    /// out, since whoever names a re-exported item is sent on to where it comes from.
    fn paths(&self) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        let mut rest = self.code.clone();
        for (public, tree) in use_statements(&self.code) {
            rest = rest.replacen(&tree, " ", 1);
            if public {
                continue;
            }
            for path in expand(&tree) {
                let path: Vec<String> = path.into_iter().take_while(|s| s != "as").collect();
                paths.extend(self.absolute(&path));
            }
        }
        for path in inline_paths(&rest) {
            paths.extend(self.absolute(&path));
        }
        paths
    }
}

/// The text without comments, without the contents of string and char literals, and without
/// items under a `#[cfg(...)]` that mentions `test`.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let close = if next == Some('\\') {
                (i + 3..chars.len().min(i + 12)).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(end) => {
                    out.push_str("' '");
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    without_test_items(&out)
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Removes every item under a `#[cfg(…test…)]` (the attribute, any attributes after it, and
/// the item up to its `;` or its closing brace).
fn without_test_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(") {
        out.push_str(&rest[..at]);
        let attribute_end =
            matching(rest, at + "#[cfg".len(), '(', ')').map_or(rest.len(), |e| e + 1);
        let condition = &rest[at..attribute_end];
        let is_test = words(condition).any(|w| w == "test");
        if !is_test {
            out.push_str(&rest[at..attribute_end]);
            rest = &rest[attribute_end..];
            continue;
        }
        // Skip the attribute's `]`, then the item.
        let item = rest[attribute_end..]
            .find(']')
            .map_or(rest.len(), |e| attribute_end + e + 1);
        let body = &rest[item..];
        let semicolon = body.find(';');
        let brace = body.find('{');
        let end = match (semicolon, brace) {
            (Some(s), Some(b)) if s < b => item + s + 1,
            (Some(s), None) => item + s + 1,
            (_, Some(b)) => matching(rest, item + b, '{', '}').map_or(rest.len(), |e| e + 1),
            (None, None) => rest.len(),
        };
        out.push(' ');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Where the bracket opened at `open_at` closes.
fn matching(text: &str, open_at: usize, open: char, close: char) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in text[open_at..].char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(open_at + i);
            }
        }
    }
    None
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// `mod x;` declarations (with or without a visibility).
fn declared_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let tokens: Vec<&str> = code
        .split(|c: char| c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    for pair in tokens.windows(2) {
        if pair[0] == "mod"
            && let Some(name) = pair[1].strip_suffix(';')
            && !name.is_empty()
        {
            found.insert(name.to_owned());
        }
    }
    found
}

/// Each `use` statement: whether it is public, and its tree as written (`super::{a::X, b}`).
fn use_statements(code: &str) -> Vec<(bool, String)> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut search = 0;
    while let Some(at) = code[search..].find("use ").map(|i| search + i) {
        search = at + 4;
        let starts_word =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if !starts_word {
            continue;
        }
        let Some(end) = code[at..].find(';').map(|i| at + i) else {
            break;
        };
        let before = code[..at].trim_end();
        let public = before.ends_with("pub") || (before.ends_with(')') && before.contains("pub("));
        found.push((public, code[at + 4..end].trim().to_owned()));
        search = end;
    }
    found
}

/// The paths of a use tree: `a::{b::C, d}` is `a::b::C` and `a::d`; `x as y` keeps `as`.
fn expand(tree: &str) -> Vec<Vec<String>> {
    expand_from(&tree.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn expand_from(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim().trim_start_matches("::");
    let Some(open) = tree.find('{') else {
        let mut segments: Vec<String> = Vec::new();
        for part in tree.split("::") {
            let mut words = part.split_whitespace();
            if let Some(first) = words.next() {
                segments.push(first.to_owned());
            }
            if let (Some("as"), Some(alias)) = (words.next(), words.next()) {
                segments.push("as".to_owned());
                segments.push(alias.to_owned());
            }
        }
        return vec![segments];
    };
    let prefix: Vec<String> = tree[..open]
        .trim_end_matches("::")
        .split("::")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let close = matching(tree, open, '{', '}').unwrap_or(tree.len() - 1);
    let inner = &tree[open + 1..close];
    let mut paths = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    for part in parts.into_iter().filter(|p| !p.trim().is_empty()) {
        for tail in expand_from(part) {
            let mut path = prefix.clone();
            if tail.first().map(String::as_str) != Some("self") {
                path.extend(tail);
            } else {
                path.extend(tail.into_iter().skip(1));
            }
            paths.push(path);
        }
    }
    paths
}

/// Paths written inline (`crate::a::b(…)`, `super::x::Y`), outside `use` statements.
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let roots: Vec<Vec<char>> = ["crate::", "super::", "self::"]
        .iter()
        .map(|root| root.chars().collect())
        .collect();
    let mut i = 0;
    while i < chars.len() {
        let starts =
            !ident_before(&chars, i) && roots.iter().any(|root| chars[i..].starts_with(root));
        if !starts {
            i += 1;
            continue;
        }
        let mut segments = Vec::new();
        let mut j = i;
        loop {
            let begin = j;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            if begin == j {
                break;
            }
            segments.push(chars[begin..j].iter().collect::<String>());
            if chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
                j += 2;
            } else {
                break;
            }
        }
        paths.push(segments);
        i = j.max(i + 1);
    }
    paths
}
