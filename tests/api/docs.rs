//! The documentation's links: every relative link in a Markdown file of the repository names a
//! file that exists (and, with `#…`, a heading of it), and every page of `docs/` is reachable
//! from the README. Pages move; a link left behind fails here instead of in a reader's browser.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `*.md` of the repository, outside build output, dependencies and local data.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !name.starts_with('.')
                    && !["target", "node_modules", "data", "dist", "test-output"]
                        .contains(&name.as_ref())
                {
                    walk(&path, found);
                }
            } else if name.ends_with(".md") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&root(), &mut found);
    found.sort();
    found
}

/// The text of a Markdown file that can hold links: fenced code blocks and inline code spans
/// (which may run over lines within a paragraph) are blanked out, and a line stays a line.
fn prose(text: &str) -> Vec<String> {
    let mut fence: Option<&str> = None;
    let mut in_code = false;
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if let Some(marker) = fence {
                if trimmed.starts_with(marker) {
                    fence = None;
                }
                return String::new();
            }
            for marker in ["```", "~~~"] {
                if trimmed.starts_with(marker) {
                    fence = Some(marker);
                    in_code = false;
                    return String::new();
                }
            }
            if trimmed.is_empty() {
                // A code span ends with its paragraph.
                in_code = false;
            }
            let mut out = String::new();
            for c in line.chars() {
                if c == '`' {
                    in_code = !in_code;
                } else if !in_code {
                    out.push(c);
                }
            }
            out
        })
        .collect()
}

/// The destinations of the inline links `[text](destination)` and reference definitions
/// `[name]: destination` of one line.
fn link_destinations(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        let Some(end) = end else { break };
        // `(destination "title")`: the title is not part of it.
        let destination = after[..end].split_whitespace().next().unwrap_or("");
        found.push(destination.trim_matches(['<', '>']).to_owned());
        rest = &after[end..];
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[')
        && let Some(close) = trimmed.find("]:")
    {
        let destination = trimmed[close + 2..].split_whitespace().next().unwrap_or("");
        found.push(destination.to_owned());
    }
    found
}

/// GitHub's anchors for the headings of a Markdown file: lower case, punctuation dropped,
/// spaces as hyphens, `-1`, `-2`, … for repeats.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if fence || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut anchor = slug.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{slug}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_relative_link_in_the_markdown_files_resolves() {
    let files = markdown_files();
    assert!(
        files.iter().any(|f| f.ends_with("README.md")),
        "no README.md found under {}",
        root().display()
    );
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a Markdown file reads");
        for (number, line) in prose(&text).iter().enumerate() {
            for destination in link_destinations(line) {
                if destination.is_empty() || destination.contains("://") {
                    continue;
                }
                if destination.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, fragment) = match destination.split_once('#') {
                    Some((path, fragment)) => (path, Some(fragment)),
                    None => (destination.as_str(), None),
                };
                let target = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().expect("a file has a folder").join(path)
                };
                let at = format!("{}:{}", relative(file), number + 1);
                if !target.exists() {
                    broken.push(format!("{at}: {destination}: no such file"));
                    continue;
                }
                if let Some(fragment) = fragment
                    && target.extension().is_some_and(|e| e == "md")
                {
                    let target_text =
                        std::fs::read_to_string(&target).expect("a Markdown file reads");
                    if !anchors(&target_text).contains(fragment) {
                        broken.push(format!("{at}: {destination}: no such heading"));
                    }
                }
            }
        }
    }
    assert!(checked > 0, "no relative link found: is the parser broken?");
    assert!(
        broken.is_empty(),
        "broken links in the documentation:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_page_of_docs_is_linked_from_the_readme() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md reads");
    let linked: HashSet<String> = prose(&readme)
        .iter()
        .flat_map(|line| link_destinations(line))
        .map(|destination| destination.split('#').next().unwrap_or("").to_owned())
        .collect();
    let mut pages: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .collect();
    pages.sort();
    assert!(!pages.is_empty(), "docs/ holds no page");
    let missing: Vec<&String> = pages
        .iter()
        .filter(|page| !linked.contains(&format!("docs/{page}")))
        .collect();
    assert!(
        missing.is_empty(),
        "pages of docs/ the README does not link: {missing:?}"
    );
}

#[test]
fn the_link_checker_finds_links_and_headings() {
    assert_eq!(
        link_destinations("see [a](docs/a.md#x-y) and [b](../b.md \"t\"), [c](https://e.x)"),
        ["docs/a.md#x-y", "../b.md", "https://e.x"]
    );
    assert_eq!(link_destinations("[ref]: docs/c.md"), ["docs/c.md"]);
    assert_eq!(prose("a `[x](nowhere.md)` b"), ["a  b"]);
    assert_eq!(prose("```\n[x](nowhere.md)\n```"), ["", "", ""]);
    assert_eq!(prose("a `b\nc` [d](e.md)"), ["a ", " [d](e.md)"]);
    let headings = anchors(
        "# Title\n## Browsers: CSRF, CORS and headers\n## What `x.sh` runs\n## Title\n```\n# not a heading\n```",
    );
    for anchor in [
        "title",
        "browsers-csrf-cors-and-headers",
        "what-xsh-runs",
        "title-1",
    ] {
        assert!(headings.contains(anchor), "{anchor} in {headings:?}");
    }
    assert!(!headings.contains("not-a-heading"));
}
