fn main() {
    let code = stemflow::cli_main();
    std::process::exit(code);
}
