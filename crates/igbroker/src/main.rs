fn main() -> std::process::ExitCode {
    igbroker::cli::main()
}
