//! `iam-ledger check DIR` / `iam-ledger write DIR`: the AWS calls a test run recorded
//! (`IAM_LEDGER_DIR`, one file per process, see `localdb::ledger`) against the reviewed
//! ledger, `infra/iam/calls.json`. `check` fails when they differ either way: a call the
//! suite makes that nobody reviewed, or a reviewed call the suite no longer makes. `write`
//! makes the file what the run recorded, for review in the diff. `make test` checks;
//! `make iam` then proves every call in the file against template.yaml.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use localdb::ledger::{file_text, read_dir, read_file, Call};

fn ledger_file() -> PathBuf {
    localdb::workspace_root().join("infra/iam/calls.json")
}

fn show(call: &Call) -> String {
    format!("{} {} {}", call.function, call.action, call.line())
}

fn run(command: &str, dir: &Path) -> Result<(), String> {
    let recorded = read_dir(dir)?;
    if recorded.is_empty() {
        return Err(format!(
            "{} holds no recorded calls: run the suite with IAM_LEDGER_DIR set (make test does)",
            dir.display()
        ));
    }
    let file = ledger_file();
    match command {
        "write" => {
            std::fs::write(&file, file_text(&recorded))
                .map_err(|e| format!("{}: {e}", file.display()))?;
            println!(
                "iam-ledger: {} calls written to {}",
                recorded.len(),
                file.display()
            );
            Ok(())
        }
        "check" => {
            let committed: BTreeSet<Call> = read_file(&file)?;
            let new: Vec<&Call> = recorded.difference(&committed).collect();
            let gone: Vec<&Call> = committed.difference(&recorded).collect();
            for call in &new {
                eprintln!(
                    "iam-ledger: the suite made a call the ledger lacks: {}",
                    show(call)
                );
            }
            for call in &gone {
                eprintln!(
                    "iam-ledger: the ledger holds a call the suite no longer made: {}",
                    show(call)
                );
            }
            if new.is_empty() && gone.is_empty() {
                let functions: BTreeSet<&str> =
                    recorded.iter().map(|c| c.function.as_str()).collect();
                println!(
                    "iam-ledger: the suite's {} distinct calls, by {} functions, are the reviewed ledger",
                    recorded.len(),
                    functions.len()
                );
                Ok(())
            } else {
                Err(format!(
                    "{} new and {} vanished calls against {}: review them, then `make iam-ledger` writes the file and `make iam` proves it",
                    new.len(),
                    gone.len(),
                    file.display()
                ))
            }
        }
        other => Err(format!("unknown command {other:?}: check or write")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(command), Some(dir)) = (args.first(), args.get(1)) else {
        eprintln!("usage: iam-ledger check|write DIR");
        return ExitCode::from(2);
    };
    match run(command, Path::new(dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("iam-ledger: {err}");
            ExitCode::FAILURE
        }
    }
}
