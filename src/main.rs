//! The `palisade` binary: everything happens in the library's CLI module.

fn main() -> std::process::ExitCode {
    palisade::cli::run()
}
