//! `config check` (`zsnap_core::Config::from_toml`) of a config with 40,000 datasets:
//! parsing and every check must stay linear in the number of entries.
//!
//! Run with `cargo bench --bench config` from `benches/`.

use std::sync::OnceLock;

use divan::counter::ItemsCount;
use divan::{AllocProfiler, Bencher};
use zsnap_core::config::Config;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

fn text(n: usize) -> &'static str {
    static TEXT_40K: OnceLock<String> = OnceLock::new();
    static TEXT_4K: OnceLock<String> = OnceLock::new();
    let cell = if n == 40_000 { &TEXT_40K } else { &TEXT_4K };
    cell.get_or_init(|| zsnap_benches::config_text(n))
}

/// 40,000 `[[datasets]]` entries: well under a second.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn config_check_40k(bencher: Bencher) {
    let text = text(40_000);
    bencher
        .counter(ItemsCount::new(40_000usize))
        .bench(|| Config::from_toml(divan::black_box(text), "zsnap.toml").expect("valid"));
}

/// 4,000 entries: a tenth, to see that the time grows linearly.
#[divan::bench(sample_count = 10)]
fn config_check_4k(bencher: Bencher) {
    let text = text(4_000);
    bencher
        .counter(ItemsCount::new(4_000usize))
        .bench(|| Config::from_toml(divan::black_box(text), "zsnap.toml").expect("valid"));
}
