//! The `cardswitch` binary: see `cardswitch --help`.

fn main() -> std::process::ExitCode {
    cardswitch::cli::main()
}
