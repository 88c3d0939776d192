//! AFL target `ipv4`: `stack_targets::check_ipv4_frame` on each input (see fuzz/README.md).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        vmkstack_afl::stack_targets::check_ipv4_frame(data);
    });
}
