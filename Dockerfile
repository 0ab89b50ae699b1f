# A static stemflow in an otherwise empty image, for low-RAM pods and batch
# nodes: no shell, no libc, no package manager — the binary is all there is.
#
#   docker build -t stemflow .
#   docker run --rm -v "$PWD:/data" stemflow render /data/songs.toml --out /data/out
#
# benches/static_root.sh runs the same build command and the result in an
# empty root under a 64 MiB address-space limit, without a container daemon
# (tests/container.rs checks that the two commands stay the same).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# glibc linked statically (+crt-static on the gnu target; symphonia, zip and
# the rest are pure Rust, so nothing needs dlopen or NSS), symbols stripped.
# --target keeps RUSTFLAGS off build scripts and proc macros, which must
# stay dynamic.
RUN RUSTFLAGS='-C target-feature=+crt-static' CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked --target x86_64-unknown-linux-gnu --bin stemflow

FROM scratch
COPY --from=build /src/target/x86_64-unknown-linux-gnu/release/stemflow /stemflow
# Any unprivileged id works; the output volume must be writable by it.
USER 65532:65532
WORKDIR /data
ENTRYPOINT ["/stemflow"]
CMD ["--help"]
