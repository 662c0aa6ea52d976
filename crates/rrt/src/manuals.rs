//! `rrt completions SHELL` and `rrt man`: shell completions and manual pages, generated from the
//! command-line definition itself (clap_complete, clap_mangen), so they never drift from it.

use std::{io::Write, path::PathBuf};

use anyhow::Context as _;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell. Bash: `source <(rrt completions
    /// bash)`, or save it as ~/.local/share/bash-completion/completions/rrt.
    shell: Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write rrt.1 and a page per subcommand (rrt-clip-copy.1, …) into this directory instead
    /// of printing rrt.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub(crate) fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    // Into memory first: the generator panics on a failed write (a closed pipe, `| head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut crate::Cli::command(), "rrt", &mut script);
    std::io::stdout().write_all(&script)?;
    Ok(())
}

pub(crate) fn man(args: &ManArgs) -> anyhow::Result<()> {
    let command = crate::Cli::command();
    match &args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            std::io::stdout().write_all(&page)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_name_every_subcommand() {
        let mut bash = Vec::new();
        clap_complete::generate(Shell::Bash, &mut crate::Cli::command(), "rrt", &mut bash);
        let bash = String::from_utf8(bash).expect("UTF-8");
        for subcommand in crate::Cli::command().get_subcommands() {
            assert!(
                bash.contains(subcommand.get_name()),
                "{}",
                subcommand.get_name()
            );
        }
    }

    #[test]
    fn the_manual_describes_the_program_and_its_commands() {
        let mut page = Vec::new();
        clap_mangen::Man::new(crate::Cli::command())
            .render(&mut page)
            .expect("renders");
        let page = String::from_utf8(page).expect("UTF-8");
        assert!(page.starts_with(".ie"), "a roff page");
        assert!(page.contains(".TH rrt 1"), "{page}");
        assert!(page.contains("daemon"));
    }
}
