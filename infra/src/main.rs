fn main() -> std::process::ExitCode {
    leadflow_infra::cli::main()
}
