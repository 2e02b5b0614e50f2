//! `--config FILE` (or `LIVECHART_CONFIG`): the server's flags in a TOML file, one key per
//! long flag name, for deployments that keep settings in a file:
//!
//! ```toml
//! addr = "0.0.0.0:3000"
//! retention = "90d"
//! ingest-tokens = ["t1", "t2"]
//! demo = true
//! ```
//!
//! Precedence: flags over environment over file. The file is read before the flags are
//! parsed, and each key becomes its flag's `LIVECHART_*` variable unless that variable is
//! already set; the flag parser then takes a flag over the variable as always, so every
//! default and check applies to file values too. A key that is not a flag, or a flag that
//! has no variable, is an error naming the key.

use clap::CommandFactory;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The file named by `--config` in `args` (or `LIVECHART_CONFIG`), if any.
pub fn path_from(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os("LIVECHART_CONFIG").map(PathBuf::from)
}

/// The variables the file at `path` sets: (name, value), for keys whose variable is unset.
pub fn read(path: &PathBuf) -> Result<Vec<(String, String)>, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.clone(),
        source,
    })?;
    variables(&text, |name| std::env::var_os(name).is_some()).map_err(|message| {
        ConfigFileError::Invalid {
            path: path.clone(),
            message,
        }
    })
}

/// 1-based line and column of byte `at` in `text`.
fn line_and_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

/// The variables `text` sets, skipping those `is_set` says the environment has.
fn variables(text: &str, is_set: impl Fn(&str) -> bool) -> Result<Vec<(String, String)>, String> {
    // The error's own text quotes the offending line, which may hold a token: say where
    // and what, not the text.
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        match e.span().map(|span| line_and_column(text, span.start)) {
            Some((line, column)) => format!("line {line}, column {column}: {}", e.message()),
            None => e.message().to_string(),
        }
    })?;
    let cmd = super::config::Cli::command();
    let mut out = Vec::new();
    for (key, value) in table {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
            .ok_or_else(|| {
                format!("unknown key {key:?} (keys are the long flag names, e.g. \"retention\")")
            })?;
        let env = arg.get_env().and_then(|e| e.to_str()).ok_or_else(|| {
            format!("{key:?} cannot be set in the file; give --{key} on the command line")
        })?;
        if key == "config" {
            return Err("\"config\" cannot name another file".into());
        }
        let text = match &value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) if !s.contains(',') => Ok(s.clone()),
                    toml::Value::String(_) => {
                        Err(format!("{key:?}: a list item may not contain ','"))
                    }
                    other => Ok(other.to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            other => {
                return Err(format!(
                    "{key:?}: a {} is not a value a flag takes",
                    other.type_str()
                ))
            }
        };
        // `false` is every switch's default; setting the variable would still count as
        // "given" to the flag parser (and trip `requires`/`conflicts_with` rules).
        if !is_set(env) && value != toml::Value::Boolean(false) {
            out.push((env.to_string(), text));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_their_flags_variables_unless_the_environment_has_them() {
        let vars = variables(
            "addr = \"0.0.0.0:3000\"\nretention = \"90d\"\ningest-tokens = [\"a\", \"b\"]\ndemo = true\nwindow-secs = 120\n",
            |name| name == "LIVECHART_RETENTION",
        )
        .unwrap();
        assert!(vars.contains(&("LIVECHART_ADDR".into(), "0.0.0.0:3000".into())));
        assert!(vars.contains(&("LIVECHART_INGEST_TOKENS".into(), "a,b".into())));
        assert!(vars.contains(&("LIVECHART_DEMO".into(), "true".into())));
        assert!(vars.contains(&("LIVECHART_WINDOW_SECS".into(), "120".into())));
        assert!(
            !vars.iter().any(|(k, _)| k == "LIVECHART_RETENTION"),
            "the environment wins"
        );
        let off = variables("redis-cluster = false\nin-memory = false", |_| false).unwrap();
        assert!(
            off.is_empty(),
            "false is the default, not a given flag: {off:?}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_files_are_named() {
        let e = variables("retension = \"1d\"", |_| false).unwrap_err();
        assert!(e.contains("retension"), "{e}");
        assert!(variables("addr = ", |_| false).is_err());
        // A malformed line is named by position, never quoted: it may hold a token.
        let e = variables("demo = true\ningest-tokens = [\"s3cret\" \"t2\"]", |_| {
            false
        })
        .unwrap_err();
        assert!(e.starts_with("line 2, column "), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let e = variables("ingest-tokens = { a = \"s3cret\" }", |_| false).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        let e = variables("ingest-tokens = [\"a,b\"]", |_| false).unwrap_err();
        assert!(e.contains("ingest-tokens"), "{e}");
        let e = variables("ingest-token = \"a\"", |_| false).unwrap_err();
        assert!(e.contains("command line"), "{e}");
    }

    #[test]
    fn the_path_comes_from_the_flag() {
        let args: Vec<OsString> = ["livechart", "--config", "/etc/lc.toml"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(path_from(&args), Some(PathBuf::from("/etc/lc.toml")));
        let args: Vec<OsString> = ["livechart", "--config=/x.toml"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(path_from(&args), Some(PathBuf::from("/x.toml")));
    }
}
