//! AFL target `offload`: `stack_targets::check_offload_input` on each input (see fuzz/README.md).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        vmkstack_afl::stack_targets::check_offload_input(data);
    });
}
