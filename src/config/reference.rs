//! The configuration reference, generated from the settings' definitions so it cannot drift
//! from them: `authgraph config-reference` prints it, and a test keeps `docs/configuration.md`
//! equal to it.

use std::fmt::Write;

use clap::Arg;

use super::Config;

/// How to bring `docs/configuration.md` up to date; the page and the failing test say it.
const REGENERATE: &str = "cargo run -- config-reference > docs/configuration.md";

/// Every setting as Markdown: one table per area (the `--help` headings), each row the
/// variable, the flag, the default and the description (the field's doc comment).
pub fn markdown() -> String {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    let command = Config::command();
    for arg in command.get_arguments() {
        let Some(variable) = arg.get_env() else {
            continue;
        };
        let heading = arg.get_help_heading().unwrap_or("Server").to_owned();
        let row = format!(
            "| `{}` | `--{}` | {} | {} |",
            variable.to_string_lossy(),
            arg.get_long().unwrap_or_default(),
            default(arg),
            description(arg)
        );
        match sections.iter_mut().find(|(name, _)| *name == heading) {
            Some((_, rows)) => rows.push(row),
            None => sections.push((heading, vec![row])),
        }
    }
    let mut page = format!(
        "# Configuration\n\n\
         <!-- Generated from src/config/ by `authgraph config-reference`: do not edit. -->\n\n\
         Every setting is an environment variable, read at startup (a `.env` file in the \
         working directory is read too), and also a command-line flag: `DATABASE_URL` is \
         `--database-url`. A flag wins over the variable. `authgraph --help` lists the same \
         settings under the same headings.\n\n\
         Durations take units: `90s`, `15m`, `12h`, `30days`. Yes-or-no settings take `true` \
         or `false` (or `yes`/`no`, `on`/`off`, `1`/`0`). Settings that hold a secret (a \
         password in a URL, a key) are never shown by `--help` or in the log. A setting with \
         no default is unset until given; its description says what that means.\n\n\
         The log filter is `RUST_LOG`, read by the logger, not listed below: default \
         `{}` ([syntax](https://docs.rs/tracing-subscriber/latest/tracing_subscriber/filter/struct.EnvFilter.html)).\n\n\
         This page is generated from the settings' definitions in `src/config/`, and a test \
         fails while it differs from them: after changing a setting, run `{REGENERATE}` \
         (or `UPDATE_DOCS=1 cargo test --lib config::reference`).\n",
        crate::telemetry::DEFAULT_FILTER
    );
    for (heading, rows) in sections {
        let _ = write!(
            page,
            "\n## {heading}\n\n| variable | flag | default | description |\n|---|---|---|---|\n"
        );
        for row in rows {
            page.push_str(&row);
            page.push('\n');
        }
    }
    page
}

fn default(arg: &Arg) -> String {
    let values: Vec<_> = arg
        .get_default_values()
        .iter()
        .map(|value| format!("`{}`", value.to_string_lossy()))
        .collect();
    if values.is_empty() {
        "—".to_owned()
    } else {
        values.join(", ")
    }
}

/// The doc comment, then the values a choice takes with their own doc comments (yes-or-no
/// settings aside: the page says once what they take).
fn description(arg: &Arg) -> String {
    let help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    let mut text = help.trim().replace("\n\n", "<br><br>").replace('\n', " ");
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    let values: Vec<_> = arg
        .get_possible_values()
        .into_iter()
        .filter(|value| !value.is_hide_set())
        .collect();
    let yes_or_no = values
        .iter()
        .all(|v| ["true", "false"].contains(&v.get_name()));
    if !yes_or_no {
        for value in values {
            let _ = write!(text, "<br>`{}`", value.get_name());
            if let Some(help) = value.get_help() {
                let _ = write!(text, ": {}", help.to_string().trim_end_matches('.'));
            }
        }
    }
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_variable_a_flag_and_a_description() {
        for arg in Config::command().get_arguments() {
            let id = arg.get_id();
            let variable = arg
                .get_env()
                .unwrap_or_else(|| panic!("{id} has no variable"));
            assert_eq!(
                arg.get_long()
                    .map(|long| long.replace('-', "_").to_uppercase()),
                Some(variable.to_string_lossy().into_owned()),
                "{id}: the flag is the variable's name"
            );
            assert!(arg.get_help().is_some(), "{id} has no description");
            assert!(
                arg.is_global_set(),
                "{id} is not accepted after a subcommand"
            );
        }
    }

    /// `UPDATE_DOCS=1 cargo test --lib config::reference` writes the page instead.
    #[test]
    fn docs_configuration_md_is_the_generated_reference() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
        let generated = markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        if written != generated {
            let first_difference = written
                .lines()
                .zip(generated.lines())
                .find(|(w, g)| w != g)
                .map_or_else(
                    || "one is longer".to_owned(),
                    |(w, g)| format!("\n  written:   {w}\n  generated: {g}"),
                );
            panic!(
                "docs/configuration.md differs from the settings' definitions ({first_difference}). \
                 Regenerate it: `{REGENERATE}` or `UPDATE_DOCS=1 cargo test --lib config::reference`"
            );
        }
    }
}
