//! AFL target `engine`: frames into the whole data plane (see `vmkstack_afl::engine`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        vmkstack_afl::engine::run(data);
    });
}
