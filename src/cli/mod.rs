//! Command-line interface: argument definitions and dispatch. Each command
//! lives in its own file and returns an exit code.

mod eval;
mod policy_cmd;
mod scan;
mod serve;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::policy::Role;

/// Palisade: an OpenAI-compatible safety guardrail proxy.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        /// Server configuration (default: config/palisade.yaml if present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve a built-in stand-in model behind the proxy (no key, no network).
        #[arg(long)]
        demo: bool,
    },
    /// Check one text with a policy and print the decision as JSON
    /// (exit 0 when not blocked, 1 when blocked, 2 on error).
    Scan {
        /// Policy file (default: policies/default.yaml).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Treat the text as a model answer instead of a user message.
        #[arg(long)]
        output: bool,
        /// Also print the normalised and deobfuscated forms the matchers read and the
        /// obfuscation signs counted.
        #[arg(long)]
        views: bool,
        /// Also print, for every rule that fired, each of its signals with the text it
        /// matched and its weight (what to change when a rule blocks too much or too little).
        #[arg(long)]
        explain: bool,
        /// Explain this rule too even if it did not fire (repeatable; implies `--explain`).
        #[arg(long = "rule", value_name = "ID")]
        rules: Vec<String>,
        /// Who sent the text: system, developer, user (default), assistant or tool
        /// (a tool result or document the model reads); ignored with `--output`.
        #[arg(long, value_parser = parse_role, default_value = "user")]
        role: Role,
        /// The text, or `-` (or nothing) to read standard input.
        text: Option<String>,
    },
    /// Validate, inspect and test policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Measure detection on labelled JSONL files (`text`, `label`, optional
    /// `source`, `role`: system, developer, user (default), assistant, tool,
    /// and `direction`: input (default) or output, a model answer).
    Eval {
        /// Policy file (default: policies/default.yaml).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
        /// Also list every wrong decision: `file:line`, label, the rules that
        /// fired (that blocked a benign text, or that only flagged or steered
        /// a missed one), and the start of the text.
        #[arg(long)]
        mistakes: bool,
        /// Also count, per rule, the texts of each label it fired on (no
        /// text is printed: usable on data that must not be quoted).
        #[arg(long)]
        rules: bool,
        /// Group the second table by `source` (default), `file`, `category`
        /// or `category:N` (the first N colon-separated parts of each
        /// line's category, such as `technique:language`).
        #[arg(long, default_value = "source")]
        by: eval::GroupBy,
        /// JSONL files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Train the linear classifier: `label` lines against `benign` lines.
    Train(train::TrainArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Load and compile policies, reporting the first mistake with its location.
    Check {
        /// Policy files (default: policies/default.yaml).
        paths: Vec<PathBuf>,
        /// Also list, by rule, the regex patterns searched over every text
        /// because no word of four or more letters is required in each match
        /// (each one adds to the cost of every request).
        #[arg(long)]
        cost: bool,
    },
    /// Print the JSON Schema of the policy format (for editor completion and validation).
    Schema,
    /// Run the `examples` of every rule: block examples must fire it, allow examples must not.
    Test {
        /// Root policy files (default: policies/default.yaml).
        paths: Vec<PathBuf>,
    },
}

/// Default policy for commands that take `--policy`.
pub fn default_policy() -> PathBuf {
    PathBuf::from(crate::config::DEFAULT_POLICY_PATH)
}

/// Parses arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, demo } => serve::run(config, demo),
        Command::Scan {
            policy,
            output,
            views,
            explain,
            rules,
            role,
            text,
        } => scan::run(
            policy,
            scan::Options {
                output,
                views,
                explain: explain || !rules.is_empty(),
                rules,
                role,
            },
            text,
        ),
        Command::Policy {
            command: PolicyCommand::Check { paths, cost },
        } => policy_cmd::check(paths, cost),
        Command::Policy {
            command: PolicyCommand::Test { paths },
        } => policy_cmd::test(paths),
        Command::Policy {
            command: PolicyCommand::Schema,
        } => policy_cmd::schema(),
        Command::Eval {
            policy,
            json,
            mistakes,
            rules,
            by,
            files,
        } => eval::run(policy, json, mistakes, rules, by, files),
        Command::Train(args) => train::run(args),
    }
}

/// Prints a line to standard output; a closed pipe (`| head`) is not an error.
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// A `--role` value: one of the roles a policy can tell apart.
fn parse_role(name: &str) -> Result<Role, String> {
    Role::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!(
            "unknown role `{name}` (expected one of {})",
            known.join(", ")
        )
    })
}
