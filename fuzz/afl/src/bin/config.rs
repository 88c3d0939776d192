//! AFL target `config`: `stack_targets::check_config` on each input that is UTF-8 (the daemon
//! reads text; anything else is refused before this parser) (see fuzz/README.md).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            vmkstack_afl::stack_targets::check_config(text);
        }
    });
}
