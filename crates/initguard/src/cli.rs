//! Command-line interface.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::check;
use crate::config;
use crate::output::{self, Format};

/// Admission control for Kubernetes init containers.
#[derive(Debug, Parser)]
#[command(name = "initguard", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate manifests offline with the same engine as the webhook.
    Check(CheckArgs),
    /// List the built-in rules, or show one with its examples.
    Rules {
        /// A rule id such as IG-V004.
        id: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files, folders (searched for *.yaml, *.yml, *.json) or `-` for stdin.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Config file; the embedded default when not given.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Write the manifests after mutation to this folder, or `-` for stdout.
    #[arg(long, value_name = "DIR|-")]
    pub mutated: Option<PathBuf>,
    /// Exit 1 on warnings too, not only on denials.
    #[arg(long)]
    pub fail_on_warn: bool,
}

/// Runs a parsed command line; errors are usage or input errors (exit 2).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(args) => run_check(&args),
        Command::Rules { id } => run_rules(id.as_deref()),
    }
}

fn run_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let pipeline = config::load_pipeline(args.config.as_deref())?;
    let report = check::check(&pipeline, &args.inputs, &mut std::io::stdin().lock());
    let mut stdout = std::io::stdout().lock();
    match &args.mutated {
        Some(target) if target.as_os_str() == "-" => {
            for (_, objects) in report.final_manifests() {
                stdout.write_all(yaml_stream(&objects)?.as_bytes())?;
            }
        }
        other => {
            stdout.write_all(output::render(&report, args.output).as_bytes())?;
            if let Some(folder) = other {
                std::fs::create_dir_all(folder)
                    .with_context(|| format!("cannot create {}", folder.display()))?;
                for (source, objects) in report.final_manifests() {
                    let path = check::mutated_path(folder, source);
                    std::fs::write(&path, yaml_stream(&objects)?)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
            }
        }
    }
    stdout.flush()?;
    Ok(ExitCode::from(report.exit_code(args.fail_on_warn)))
}

fn yaml_stream(objects: &[serde_json::Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(object)?);
    }
    Ok(out)
}

fn run_rules(id: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match id {
        None => {
            for rule in initguard_rules::RULES {
                writeln!(
                    stdout,
                    "{:<8} {:<24} {}",
                    rule.id, rule.policy, rule.summary
                )?;
            }
        }
        Some(id) => {
            let rule = initguard_rules::RULES
                .iter()
                .find(|r| r.id.eq_ignore_ascii_case(id))
                .with_context(|| format!("no rule {id:?}: `initguard rules` lists them"))?;
            writeln!(stdout, "{} ({}): {}", rule.id, rule.policy, rule.summary)?;
            if !rule.settings.is_empty() {
                writeln!(stdout, "settings: {}", rule.settings)?;
            }
            writeln!(
                stdout,
                "\nExamples (fails, fails, passes):\n{}",
                rule.examples.trim_end()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
