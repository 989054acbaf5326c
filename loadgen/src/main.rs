//! loadgen: simulated viewers and publishers for sizing ringcast edge boxes.
//! (Filled in by its own issue.)

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    eprintln!("loadgen: not built yet");
    std::process::exit(2);
}
