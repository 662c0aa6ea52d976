//! `rrt service install|uninstall|status`: the daemon as a service of the user's session,
//! started at login and restarted when it fails — a systemd user unit on Linux (logs in the
//! journal: `journalctl --user -u rrt`), a launchd agent on macOS (logs in
//! `~/Library/Logs/rrt.log`; written as launchd documents it, not run on macOS by our tests).
//!
//! The service runs `rrt daemon` with the global flags `install` was given (`--mesh`,
//! `--config`, …); every other setting comes from the config file, which `systemctl --user
//! reload rrt` (SIGHUP) makes it read again. The display variables of the session `install` runs
//! in (`DISPLAY`, `WAYLAND_DISPLAY`) go into the unit, so the daemon follows that desktop's
//! clipboard.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};

use crate::Locate;

/// The unit's name (systemd) and the agent's label (launchd).
const SYSTEMD_UNIT: &str = "rrt.service";
const LAUNCHD_LABEL: &str = "org.rrt.daemon";
/// The session's variables the daemon needs to reach its desktop's clipboard.
const DISPLAY_VARIABLES: &[&str] = &["DISPLAY", "WAYLAND_DISPLAY"];

#[derive(Debug, Subcommand)]
pub(crate) enum ServiceCommand {
    /// Install the daemon as a service of your session and start it (a systemd user unit; a
    /// launchd agent on macOS).
    Install {
        /// Print the unit (or agent) to standard output; install nothing.
        #[arg(long)]
        print: bool,
        #[arg(long, value_enum, default_value_t = Manager::native())]
        manager: Manager,
        /// The program the service runs [default: this one] (a package's unit names
        /// /usr/bin/rrt).
        #[arg(long, value_name = "PATH")]
        exec: Option<PathBuf>,
        /// Leave out this session's DISPLAY and WAYLAND_DISPLAY (a package's unit: the desktop
        /// hands them to the user manager).
        #[arg(long)]
        no_display_env: bool,
    },
    /// Stop the service and remove it.
    Uninstall {
        #[arg(long, value_enum, default_value_t = Manager::native())]
        manager: Manager,
    },
    /// Whether the service is installed, and what its manager says of it.
    Status {
        #[arg(long, value_enum, default_value_t = Manager::native())]
        manager: Manager,
    },
}

/// Which service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Manager {
    /// A systemd user unit.
    Systemd,
    /// A launchd agent (macOS).
    Launchd,
}

impl Manager {
    fn native() -> Self {
        if cfg!(target_os = "macos") {
            Self::Launchd
        } else {
            Self::Systemd
        }
    }
}

pub(crate) fn run(locate: &Locate, command: ServiceCommand) -> anyhow::Result<()> {
    match command {
        ServiceCommand::Install {
            print,
            manager,
            exec,
            no_display_env,
        } => {
            let exe = match exec {
                Some(exec) => exec,
                None => std::env::current_exe().context("finding this program")?,
            };
            let args = daemon_args(locate);
            let env = if no_display_env {
                Vec::new()
            } else {
                session_env()
            };
            let text = match manager {
                Manager::Systemd => systemd_unit(&exe, &args, &env),
                Manager::Launchd => launchd_agent(&exe, &args, &env, &home()?),
            };
            if print {
                print!("{text}");
                return Ok(());
            }
            install(manager, &text)
        }
        ServiceCommand::Uninstall { manager } => uninstall(manager),
        ServiceCommand::Status { manager } => status(manager),
    }
}

/// The arguments of `rrt daemon` in the service: the global flags given to `install`.
fn daemon_args(locate: &Locate) -> Vec<String> {
    let mut args = Vec::new();
    if locate.mesh != "default" {
        args.extend(["--mesh".to_owned(), locate.mesh.clone()]);
    }
    let paths = [
        ("--runtime-dir", &locate.runtime_dir),
        ("--state-dir", &locate.state_dir),
        ("--config", &locate.config),
    ];
    for (flag, path) in paths {
        if let Some(path) = path {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            args.extend([flag.to_owned(), path.display().to_string()]);
        }
    }
    if let Some(instance) = &locate.instance {
        args.extend(["--instance".to_owned(), instance.clone()]);
    }
    args.push("daemon".to_owned());
    args
}

/// The session's display variables that are set, as (name, value).
fn session_env() -> Vec<(String, String)> {
    DISPLAY_VARIABLES
        .iter()
        .filter_map(|name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .map(|value| ((*name).to_owned(), value))
        })
        .collect()
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set")
}

/// A systemd user unit running `exe args…` with `env` (and `RUST_LOG=info`).
fn systemd_unit(exe: &Path, args: &[String], env: &[(String, String)]) -> String {
    let command: Vec<String> = std::iter::once(exe.display().to_string())
        .chain(args.iter().cloned())
        .map(|word| systemd_quoted(&word))
        .collect();
    let mut environment = vec![systemd_quoted("RUST_LOG=info")];
    environment.extend(
        env.iter()
            .map(|(name, value)| systemd_quoted(&format!("{name}={value}"))),
    );
    format!(
        "# Written by `rrt service install`; `rrt service uninstall` removes it.\n\
         [Unit]\n\
         Description=rrt: clipboard and documents in sync across your devices\n\
         Documentation={}\n\
         \n\
         [Service]\n\
         Type=exec\n\
         ExecStart={}\n\
         ExecReload=/bin/kill -HUP $MAINPID\n\
         Restart=on-failure\n\
         RestartSec=2s\n\
         Environment={}\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        env!("CARGO_PKG_REPOSITORY"),
        command.join(" "),
        environment.join(" "),
    )
}

/// `word` as one quoted word of a systemd command line or assignment: `"`, `\` escaped, `%`
/// (a specifier) and `$` (a variable) doubled.
fn systemd_quoted(word: &str) -> String {
    let mut quoted = String::from("\"");
    for c in word.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '%' => quoted.push_str("%%"),
            '$' => quoted.push_str("$$"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A launchd agent running `exe args…` with `env` at login, again when it fails, logging to
/// `~/Library/Logs/rrt.log`.
fn launchd_agent(exe: &Path, args: &[String], env: &[(String, String)], home: &Path) -> String {
    let arguments: String = std::iter::once(exe.display().to_string())
        .chain(args.iter().cloned())
        .map(|word| format!("\t\t<string>{}</string>\n", xml_escaped(&word)))
        .collect();
    let environment: String = std::iter::once(("RUST_LOG".to_owned(), "info".to_owned()))
        .chain(env.iter().cloned())
        .map(|(name, value)| {
            format!(
                "\t\t<key>{}</key>\n\t\t<string>{}</string>\n",
                xml_escaped(&name),
                xml_escaped(&value)
            )
        })
        .collect();
    let log = home.join("Library/Logs/rrt.log");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- Written by `rrt service install`; `rrt service uninstall` removes it. -->\n\
         <plist version=\"1.0\">\n\
         <dict>\n\
         \t<key>Label</key>\n\t<string>{LAUNCHD_LABEL}</string>\n\
         \t<key>ProgramArguments</key>\n\t<array>\n{arguments}\t</array>\n\
         \t<key>EnvironmentVariables</key>\n\t<dict>\n{environment}\t</dict>\n\
         \t<key>RunAtLoad</key>\n\t<true/>\n\
         \t<key>KeepAlive</key>\n\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>\n\
         \t<key>StandardErrorPath</key>\n\t<string>{}</string>\n\
         </dict>\n\
         </plist>\n",
        xml_escaped(&log.display().to_string()),
    )
}

fn xml_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where the unit (or agent) is installed.
fn installed_path(manager: Manager) -> anyhow::Result<PathBuf> {
    Ok(match manager {
        Manager::Systemd => crate::xdg_dir("XDG_CONFIG_HOME", ".config")
            .context("neither XDG_CONFIG_HOME nor HOME is set")?
            .join("systemd/user")
            .join(SYSTEMD_UNIT),
        Manager::Launchd => home()?
            .join("Library/LaunchAgents")
            .join(format!("{LAUNCHD_LABEL}.plist")),
    })
}

fn install(manager: Manager, text: &str) -> anyhow::Result<()> {
    let path = installed_path(manager)?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    let started = match manager {
        Manager::Systemd => systemctl(&["daemon-reload"])
            .and_then(|()| systemctl(&["enable", "--now", SYSTEMD_UNIT])),
        Manager::Launchd => launchctl(&["bootstrap", &gui_domain(), &path.display().to_string()]),
    };
    match started {
        Ok(()) => {
            println!("started; it starts again at every login, and when it fails");
            Ok(())
        }
        Err(error) => bail!(
            "the service is installed but could not be started: {error:#}\n(start it once your \
             session's service manager runs: {})",
            match manager {
                Manager::Systemd => "systemctl --user enable --now rrt.service",
                Manager::Launchd => "launchctl bootstrap gui/$(id -u) <the plist>",
            }
        ),
    }
}

fn uninstall(manager: Manager) -> anyhow::Result<()> {
    let path = installed_path(manager)?;
    // Stopped first; a manager that is not running has nothing to stop.
    let stopped = match manager {
        Manager::Systemd => systemctl(&["disable", "--now", SYSTEMD_UNIT]),
        Manager::Launchd => launchctl(&["bootout", &format!("{}/{LAUNCHD_LABEL}", gui_domain())]),
    };
    if let Err(error) = stopped {
        eprintln!("rrt: could not stop the service (it may not be running): {error:#}");
    }
    match fs::remove_file(&path) {
        Ok(()) => println!("removed {}", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            println!("not installed ({} is not there)", path.display());
        }
        Err(error) => return Err(error).with_context(|| format!("removing {}", path.display())),
    }
    if manager == Manager::Systemd {
        let _ = systemctl(&["daemon-reload"]);
    }
    Ok(())
}

fn status(manager: Manager) -> anyhow::Result<()> {
    let path = installed_path(manager)?;
    if path.exists() {
        println!("installed: {}", path.display());
    } else {
        println!("not installed ({} is not there)", path.display());
    }
    let asked = match manager {
        Manager::Systemd => output("systemctl", &["--user", "is-active", SYSTEMD_UNIT]),
        Manager::Launchd => output(
            "launchctl",
            &["print", &format!("{}/{LAUNCHD_LABEL}", gui_domain())],
        ),
    };
    match asked {
        Ok(said) => println!("{}: {}", manager_name(manager), said.trim()),
        Err(error) => println!("{}: not reachable ({error:#})", manager_name(manager)),
    }
    Ok(())
}

fn manager_name(manager: Manager) -> &'static str {
    match manager {
        Manager::Systemd => "systemd (user)",
        Manager::Launchd => "launchd",
    }
}

fn gui_domain() -> String {
    format!("gui/{}", rustix::process::getuid().as_raw())
}

fn systemctl(args: &[&str]) -> anyhow::Result<()> {
    run_quietly("systemctl", &[&["--user"], args].concat())
}

fn launchctl(args: &[&str]) -> anyhow::Result<()> {
    run_quietly("launchctl", args)
}

/// Runs `program args…`; its error output is the error if it fails.
fn run_quietly(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let ran = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if ran.status.success() {
        return Ok(());
    }
    bail!(
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&ran.stderr).trim()
    )
}

/// What `program args…` prints, whether or not it succeeds (`is-active` fails when inactive).
fn output(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let ran = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    let said = String::from_utf8_lossy(&ran.stdout).trim().to_owned();
    if said.is_empty() {
        bail!("{}", String::from_utf8_lossy(&ran.stderr).trim());
    }
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_daemon_with_the_global_flags_and_the_display() {
        let unit = systemd_unit(
            Path::new("/opt/my tools/rrt"),
            &["--mesh".into(), "home".into(), "daemon".into()],
            &[("DISPLAY".into(), ":0".into())],
        );
        assert!(
            unit.contains("ExecStart=\"/opt/my tools/rrt\" \"--mesh\" \"home\" \"daemon\"\n"),
            "{unit}"
        );
        assert!(unit.contains("Environment=\"RUST_LOG=info\" \"DISPLAY=:0\"\n"));
        assert!(unit.contains("Restart=on-failure\n"));
        assert!(unit.contains("WantedBy=default.target\n"));
        assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID\n"));
    }

    #[test]
    fn words_are_quoted_for_systemd() {
        assert_eq!(
            systemd_quoted(r#"a "b" \ 100% $HOME"#),
            r#""a \"b\" \\ 100%% $$HOME""#
        );
    }

    #[test]
    fn the_agent_is_a_plist_with_escaped_strings() {
        let agent = launchd_agent(
            Path::new("/Applications/r&r/rrt"),
            &["daemon".into()],
            &[],
            Path::new("/Users/me"),
        );
        assert!(agent.contains("<string>/Applications/r&amp;r/rrt</string>"));
        assert!(agent.contains("<string>/Users/me/Library/Logs/rrt.log</string>"));
        assert!(agent.contains("<key>Label</key>\n\t<string>org.rrt.daemon</string>"));
        assert_eq!(
            agent.matches("<dict>").count(),
            agent.matches("</dict>").count()
        );
    }

    #[test]
    fn the_service_gets_the_global_flags_install_was_given() {
        let locate = Locate {
            mesh: "home".into(),
            instance: None,
            runtime_dir: None,
            state_dir: Some("/var/lib/me".into()),
            config: None,
        };
        assert_eq!(
            daemon_args(&locate),
            ["--mesh", "home", "--state-dir", "/var/lib/me", "daemon"]
        );
    }
}
