fn main() {
    let code = stemflow::cli::main();
    std::process::exit(code);
}
