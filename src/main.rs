//! The `spar` command; everything lives in the library.

fn main() -> std::process::ExitCode {
    spar::cli::main()
}
