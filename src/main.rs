//! The `sunledger` command: a thin layer over the library (see `cli`).

fn main() {
    std::process::exit(sunledger::cli::run());
}
