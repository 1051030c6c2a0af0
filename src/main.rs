fn main() {
    std::process::exit(plan::cli::main())
}
