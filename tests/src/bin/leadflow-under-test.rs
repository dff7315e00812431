//! The `leadflow` binary, built inside this package so the restart test can start it as its own
//! process (and kill it) through `CARGO_BIN_EXE_leadflow-under-test`.
fn main() -> std::process::ExitCode {
    leadflow_infra::cli::main()
}
