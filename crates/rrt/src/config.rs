//! The config file, `$XDG_CONFIG_HOME/rrt/config.toml`: every `rrt daemon` setting, and the
//! global ones (`mesh`, `instance`, `runtime-dir`, `state-dir`), as `key = value` with the flag's
//! long name as the key.
//!
//! ```toml
//! mesh = "home"
//! device = "laptop"
//! peer = ["nas.lan:47474"]
//! history = 200
//! share = ["image/*=16MiB", "text/html=off"]
//! no-mdns = true
//! ```
//!
//! Why flags: the file then holds exactly what the command line can, nothing gets a second
//! spelling, and each value is checked by the very parser its flag uses (`16MiB`, `image/*=off`,
//! an address). A flag given on the command line overrides the file's value; a list given by
//! flags (`--peer`) replaces the file's list. A file that does not parse, names a key no flag
//! has, or holds a value its flag refuses is an error naming its line and column, and nothing
//! starts half-configured.
//!
//! How: each key becomes flags (`history = 200` → `--history=200`), put into the command line
//! where clap reads them — globals right after the program's name, the daemon's after the rest
//! (it takes no positional arguments) — for every key the command line did not set; then clap
//! parses the whole as usual.

use std::{
    ffi::OsString,
    fs, io,
    ops::Range,
    path::{Path, PathBuf},
};

use clap::{ArgAction, ArgMatches, CommandFactory, parser::ValueSource};
use toml::de::{DeTable, DeValue};

/// The settings only the daemon reads: the subcommands that take them.
const DAEMON_SUBCOMMANDS: &[&[&str]] = &[&["daemon"], &["config", "show"]];
/// Global flags that are not settings.
const NOT_SETTINGS: &[&str] = &["config", "help", "version"];

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The command line.
    Flag,
    /// The config file, at this line.
    File(usize),
    /// Nowhere: the flag's default.
    Default,
}

/// A config file, read and checked.
#[derive(Debug)]
pub(crate) struct ConfigFile {
    /// Where it is.
    pub(crate) path: PathBuf,
    settings: Vec<Setting>,
}

/// One key of the file, as flags.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    /// The flag's long name (the key).
    key: String,
    /// The flag's id, for clap.
    id: String,
    /// The flags it becomes: `--key=value`, one per item of a list; none for `false`.
    flags: Vec<OsString>,
    /// Whether every command reads it (else only the daemon's).
    global: bool,
    line: usize,
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// It could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Something in it is wrong, here.
    #[error("{}:{line}:{column}: {message}", path.display())]
    At {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// 1-based, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// `$XDG_CONFIG_HOME/rrt/config.toml`, else `$HOME/.config/rrt/config.toml`.
pub(crate) fn default_path() -> PathBuf {
    crate::xdg_dir("XDG_CONFIG_HOME", ".config")
        .unwrap_or_else(std::env::temp_dir)
        .join("rrt")
        .join("config.toml")
}

/// The config file at `path`; `None` if there is none and none was asked for by name
/// (`explicit`: given with `--config`, which must exist).
pub(crate) fn read(path: &Path, explicit: bool) -> Result<Option<ConfigFile>, ConfigError> {
    match fs::read_to_string(path) {
        Ok(text) => parse(path, &text).map(Some),
        Err(error) if error.kind() == io::ErrorKind::NotFound && !explicit => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// A setting the file may hold: a flag of `rrt daemon`, or a global one.
struct Known {
    id: String,
    action: ArgAction,
    global: bool,
}

fn known(key: &str) -> Option<Known> {
    let command = crate::Cli::command();
    let global = command
        .get_arguments()
        .filter(|arg| !NOT_SETTINGS.contains(&arg.get_id().as_str()))
        .map(|arg| (arg, true));
    let daemon = command
        .find_subcommand("daemon")
        .into_iter()
        .flat_map(|daemon| daemon.get_arguments())
        .filter(|arg| !arg.is_global_set() && !NOT_SETTINGS.contains(&arg.get_id().as_str()))
        .map(|arg| (arg, false));
    global
        .chain(daemon)
        .find(|(arg, _)| arg.get_long() == Some(key))
        .map(|(arg, global)| Known {
            id: arg.get_id().to_string(),
            action: arg.get_action().clone(),
            global,
        })
}

fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    let at = |span: Range<usize>, message: String| {
        let (line, column) = line_column(text, span.start);
        ConfigError::At {
            path: path.to_owned(),
            line,
            column,
            message,
        }
    };
    let table = DeTable::parse(text)
        .map_err(|error| at(error.span().unwrap_or(0..0), error.message().to_owned()))?;
    let mut settings = Vec::new();
    for (key, value) in table.get_ref() {
        let name = key.get_ref().as_ref();
        let Some(known) = known(name) else {
            return Err(at(
                key.span(),
                format!(
                    "no setting is named `{name}`: the settings are `rrt daemon`'s flags and \
                     mesh, instance, runtime-dir and state-dir, by their long names"
                ),
            ));
        };
        let flag = |value: &str| OsString::from(format!("--{name}={value}"));
        let flags = match (&known.action, value.get_ref()) {
            (ArgAction::SetTrue, DeValue::Boolean(set)) => {
                if *set {
                    vec![OsString::from(format!("--{name}"))]
                } else {
                    Vec::new()
                }
            }
            (ArgAction::SetTrue, _) => {
                return Err(at(value.span(), format!("`{name}` is true or false")));
            }
            (ArgAction::Append, DeValue::Array(items)) => items
                .iter()
                .map(|item| {
                    scalar(item.get_ref())
                        .map(|value| flag(&value))
                        .ok_or_else(|| at(item.span(), format!("`{name}` lists strings")))
                })
                .collect::<Result<_, _>>()?,
            (_, other) => vec![flag(&scalar(other).ok_or_else(|| {
                at(
                    value.span(),
                    format!(
                        "`{name}` is a string or a number (a list only where the flag repeats)"
                    ),
                )
            })?)],
        };
        let setting = Setting {
            key: name.to_owned(),
            id: known.id,
            flags,
            global: known.global,
            line: line_column(text, key.span().start).0,
        };
        if let Err(message) = check(&setting) {
            return Err(at(value.span(), message));
        }
        settings.push(setting);
    }
    Ok(ConfigFile {
        path: path.to_owned(),
        settings,
    })
}

/// A TOML string or integer, as a flag's value.
fn scalar(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(text) => Some(text.to_string()),
        DeValue::Integer(integer) => i128::from_str_radix(integer.as_str(), integer.radix())
            .ok()
            .map(|n| n.to_string()),
        _ => None,
    }
}

/// Whether the setting's flags are ones its flag's parser takes: clap's complaint if not.
fn check(setting: &Setting) -> Result<(), String> {
    let mut probe: Vec<OsString> = vec!["rrt".into()];
    if setting.global {
        probe.extend(setting.flags.iter().cloned());
        probe.push("status".into());
    } else {
        probe.push("daemon".into());
        probe.extend(setting.flags.iter().cloned());
    }
    crate::Cli::command()
        .try_get_matches_from(probe)
        .map(drop)
        .map_err(|error| {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_owned()
        })
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    (line, column)
}

impl ConfigFile {
    /// `args` (a whole command line) with the file's settings put in where the command line
    /// (parsed as `matches`) has none of its own: globals for every command, the daemon's for
    /// `rrt daemon` and `rrt config show`.
    pub(crate) fn apply(&self, mut args: Vec<OsString>, matches: &ArgMatches) -> Vec<OsString> {
        let daemon = daemon_matches(matches);
        let mut globals = Vec::new();
        for setting in &self.settings {
            let given = if setting.global {
                matches.value_source(&setting.id)
            } else {
                daemon.and_then(|daemon| daemon.value_source(&setting.id))
            };
            if given == Some(ValueSource::CommandLine) {
                continue;
            }
            if setting.global {
                globals.extend(setting.flags.iter().cloned());
            } else if daemon.is_some() {
                args.extend(setting.flags.iter().cloned());
            }
        }
        let at = 1.min(args.len());
        args.splice(at..at, globals);
        args
    }

    /// Where the file sets `id`, if it does.
    fn line_of(&self, id: &str) -> Option<usize> {
        self.settings
            .iter()
            .find(|setting| setting.id == id)
            .map(|setting| setting.line)
    }
}

/// The keys whose flags differ between two readings of the config file (`None`: there was none).
pub(crate) fn changed(before: Option<&ConfigFile>, after: Option<&ConfigFile>) -> Vec<String> {
    fn settings(file: Option<&ConfigFile>) -> &[Setting] {
        file.map_or(&[], |file| &file.settings)
    }
    let flags = |file: Option<&ConfigFile>, key: &str| {
        settings(file)
            .iter()
            .find(|setting| setting.key == key)
            .map(|setting| setting.flags.clone())
    };
    let mut keys: Vec<String> = settings(before)
        .iter()
        .chain(settings(after))
        .map(|setting| setting.key.clone())
        .filter(|key| flags(before, key) != flags(after, key))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The matches of the subcommand that reads the daemon's settings, if that is the one run.
fn daemon_matches(matches: &ArgMatches) -> Option<&ArgMatches> {
    DAEMON_SUBCOMMANDS.iter().find_map(|path| {
        path.iter()
            .try_fold(matches, |matches, name| matches.subcommand_matches(name))
    })
}

/// One effective setting, for `rrt config show`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Effective {
    /// The key (the flag's long name).
    pub(crate) key: String,
    /// Its values (several for a list; none when unset).
    pub(crate) values: Vec<String>,
    /// `flag`, `config file` or `default`.
    pub(crate) source: &'static str,
    /// The line of the config file that set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) line: Option<usize>,
    /// Whether the flag repeats (a list).
    #[serde(skip)]
    pub(crate) list: bool,
}

/// `rrt config show`: every setting `rrt daemon` would run with, given the file and the flags,
/// and where each came from — as TOML a config file could hold, or as JSON.
pub(crate) fn show(
    config: &crate::Config,
    given: &ArgMatches,
    effective: &ArgMatches,
    json: bool,
) -> anyhow::Result<()> {
    let settings = effective_settings(config.file(), given, effective);
    let path = config.path().display().to_string();
    if json {
        let shown = serde_json::json!({
            "config_file": path,
            "exists": config.file().is_some(),
            "settings": settings,
        });
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(());
    }
    match config.file() {
        Some(_) => println!("# config file: {path}"),
        None => println!("# config file: {path} (none there: defaults and flags only)"),
    }
    for setting in settings {
        let from = match setting.line {
            Some(line) => format!("{}, line {line}", setting.source),
            None => setting.source.to_owned(),
        };
        let value = match (setting.list, setting.values.as_slice()) {
            (true, values) => format!(
                "[{}]",
                values
                    .iter()
                    .map(|v| toml_value(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (false, []) => {
                println!("# {} is not set  # {from}", setting.key);
                continue;
            }
            (false, [value, ..]) => toml_value(value),
        };
        println!("{} = {value}  # {from}", setting.key);
    }
    Ok(())
}

/// A flag's value as a TOML value: numbers and booleans bare, the rest quoted.
fn toml_value(value: &str) -> String {
    if value.parse::<i64>().is_ok() || value == "true" || value == "false" {
        value.to_owned()
    } else {
        serde_json::to_string(value).unwrap_or_default()
    }
}

/// Every setting as `rrt config show` was run with it: `given` are the matches of the command
/// line alone, `effective` of it with the file applied.
pub(crate) fn effective_settings(
    file: Option<&ConfigFile>,
    given: &ArgMatches,
    effective: &ArgMatches,
) -> Vec<Effective> {
    let command = crate::Cli::command();
    let mut settings = Vec::new();
    let daemon = command.find_subcommand("daemon");
    let args = command.get_arguments().map(|arg| (arg, true)).chain(
        daemon
            .into_iter()
            .flat_map(|daemon| daemon.get_arguments())
            .filter(|arg| !arg.is_global_set())
            .map(|arg| (arg, false)),
    );
    for (arg, global) in args {
        let id = arg.get_id().as_str();
        let Some(key) = arg.get_long() else { continue };
        if NOT_SETTINGS.contains(&id) {
            continue;
        }
        let (given, effective) = if global {
            (Some(given), Some(effective))
        } else {
            (daemon_matches(given), daemon_matches(effective))
        };
        let values = effective
            .and_then(|matches| matches.get_raw(id))
            .map(|values| {
                values
                    .map(|value| value.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let from_flag =
            given.and_then(|matches| matches.value_source(id)) == Some(ValueSource::CommandLine);
        let line = file.and_then(|file| file.line_of(id));
        let (source, line) = match (from_flag, line) {
            (true, _) => (Source::Flag, None),
            (false, Some(line)) => (Source::File(line), Some(line)),
            (false, None) => (Source::Default, None),
        };
        settings.push(Effective {
            key: key.to_owned(),
            values,
            source: match source {
                Source::Flag => "flag",
                Source::File(_) => "config file",
                Source::Default => "default",
            },
            line,
            list: matches!(arg.get_action(), ArgAction::Append),
        });
    }
    settings
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parsed(text: &str) -> Result<ConfigFile, ConfigError> {
        parse(Path::new("config.toml"), text)
    }

    fn error_at(text: &str) -> (usize, usize, String) {
        match parsed(text) {
            Err(ConfigError::At {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("not an error at a place: {other:?}"),
        }
    }

    fn args(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    #[test]
    fn keys_become_the_flags_of_the_same_name() {
        let file = parsed(
            "mesh = \"home\"\nhistory = 200\npeer = [\"a:1\", \"b:2\"]\nno-mdns = true\n\
             insecure = false\neager-max = \"1MiB\"\n",
        )
        .expect("parses");
        let mut flags: Vec<_> = file.settings.iter().flat_map(|s| s.flags.clone()).collect();
        flags.sort();
        assert_eq!(
            flags,
            args(&[
                "--eager-max=1MiB",
                "--history=200",
                "--mesh=home",
                "--no-mdns",
                "--peer=a:1",
                "--peer=b:2",
            ])
        );
        let global = |key: &str| {
            file.settings
                .iter()
                .find(|s| s.key == key)
                .map(|s| s.global)
        };
        assert_eq!(
            (global("mesh"), global("history")),
            (Some(true), Some(false))
        );
        assert_eq!(file.line_of("history"), Some(2));
    }

    #[test]
    fn a_bad_file_is_an_error_at_its_line_and_column() {
        assert_eq!(error_at("history = 10\nhistroy = 5\n").0, 2);
        let (line, column, message) = error_at("history = 10\n  heartbeat-ms = \"soon\"\n");
        assert_eq!((line, column), (2, 18), "{message}");
        assert!(message.contains("soon"), "{message}");
        let (line, column, _) = error_at("no-mdns = \"yes\"\n");
        assert_eq!((line, column), (1, 11));
        let (line, _, _) = error_at("mesh = \"a\"\n\neager-max = \"lots\"\n");
        assert_eq!(line, 3);
        let (line, _, _) = error_at("history = [1, 2]\n");
        assert_eq!(line, 1);
        let (line, _, _) = error_at("mesh = \"a\"\nmesh = \"b\"\n");
        assert_eq!(line, 2, "a key set twice");
        let (line, _, _) = error_at("peer = [\"a:1\",\n  { x = 1 }]\n");
        assert_eq!(line, 2);
        // Not a setting: the file's own flag, help.
        for key in ["config", "help", "version", "instance-x"] {
            assert!(parsed(&format!("{key} = \"x\"\n")).is_err(), "{key}");
        }
    }

    #[test]
    fn flags_on_the_command_line_win_and_a_listed_flag_replaces_the_files_list() {
        let file = parsed("history = 200\nheartbeat-ms = 50\npeer = [\"a:1\"]\nmesh = \"home\"\n")
            .expect("parses");
        let given = args(&["rrt", "daemon", "--history", "7", "--peer", "c:3"]);
        let matches = crate::Cli::command()
            .try_get_matches_from(given.clone())
            .expect("parses");
        let applied = file.apply(given, &matches);
        let effective = crate::Cli::command()
            .try_get_matches_from(applied.clone())
            .expect("parses");
        let daemon = effective.subcommand_matches("daemon").expect("daemon");
        assert_eq!(daemon.get_one::<usize>("history"), Some(&7));
        assert_eq!(daemon.get_one::<u64>("heartbeat_ms"), Some(&50));
        let peers: Vec<&String> = daemon.get_many("peers").expect("peers").collect();
        assert_eq!(peers, ["c:3"]);
        assert_eq!(
            effective.get_one::<String>("mesh").map(String::as_str),
            Some("home")
        );
        let shown = effective_settings(Some(&file), &matches, &effective);
        let source = |key: &str| {
            shown
                .iter()
                .find(|setting| setting.key == key)
                .map(|setting| (setting.source, setting.values.clone()))
        };
        assert_eq!(source("history"), Some(("flag", vec!["7".to_owned()])));
        assert_eq!(
            source("heartbeat-ms"),
            Some(("config file", vec!["50".to_owned()]))
        );
        assert_eq!(
            source("peer-timeout-ms"),
            Some(("default", vec!["3000".to_owned()]))
        );
        // Every command reads the globals; only the daemon its own settings.
        let status = args(&["rrt", "status"]);
        let matches = crate::Cli::command()
            .try_get_matches_from(status.clone())
            .expect("parses");
        let cli = crate::Cli::try_parse_from(file.apply(status, &matches)).expect("parses");
        assert_eq!(cli.locate.mesh, "home");
    }

    #[test]
    fn a_changed_file_names_what_changed() {
        let before = parsed("history = 200\nmesh = \"home\"\n").expect("parses");
        let after = parsed("history = 300\nmesh = \"home\"\nno-mdns = true\n").expect("parses");
        assert_eq!(changed(Some(&before), Some(&after)), ["history", "no-mdns"]);
        assert!(changed(Some(&before), Some(&before)).is_empty());
        assert_eq!(changed(None, Some(&before)), ["history", "mesh"]);
    }
}
