//! The `cutover` binary: everything lives in the `plan_cli` library.

fn main() -> std::process::ExitCode {
    plan_cli::main()
}
