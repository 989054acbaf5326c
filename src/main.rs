//! The `ringcast` binary. (CLI filled in by the server issue.)

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    eprintln!("ringcast: server not built yet");
    std::process::exit(2);
}
