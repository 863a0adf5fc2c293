//! `zfs list` parsing and the memory an inventory takes.
//!
//! Run with `cargo bench --bench zfs_list` from `benches/`.

use std::sync::OnceLock;

use divan::counter::{BytesCount, ItemsCount};
use divan::{AllocProfiler, Bencher};
use zsnap_core::{parse_list, render_list, Inventory};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// 10,000 datasets × 100 snapshots and 5,005 parent datasets: 1,015,005 rows.
const DATASETS: usize = 10_000;
const SNAPSHOTS: usize = 100;

fn big_text() -> &'static (String, usize) {
    static TEXT: OnceLock<(String, usize)> = OnceLock::new();
    TEXT.get_or_init(|| zsnap_benches::list_text_with_parents(DATASETS, SNAPSHOTS))
}

fn big_inventory() -> &'static Inventory {
    static INV: OnceLock<Inventory> = OnceLock::new();
    INV.get_or_init(|| parse_list(&big_text().0).expect("generated listings are valid"))
}

/// Parse 1,015,005 rows (15,005 datasets, 1,000,000 snapshots); the allocation
/// figures are the parser's, including the inventory it returns.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn parse_list_1m(bencher: Bencher) {
    let (text, rows) = big_text();
    bencher
        .counter(ItemsCount::new(*rows))
        .counter(BytesCount::of_str(text.as_str()))
        .bench(|| parse_list(divan::black_box(text)).expect("valid"));
}

/// Parse 10,155 rows (100 datasets × 100 snapshots, 55 parents): a typical host.
#[divan::bench(sample_count = 50)]
fn parse_list_10k(bencher: Bencher) {
    let (text, rows) = zsnap_benches::list_text_with_parents(100, 100);
    bencher
        .counter(ItemsCount::new(rows))
        .bench(|| parse_list(divan::black_box(&text)).expect("valid"));
}

/// The heap an inventory of 1,000,000 snapshots takes: cloning allocates exactly a
/// copy of it, so the "alloc" bytes reported here are the inventory's size.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn inventory_1m_memory(bencher: Bencher) {
    let inv = big_inventory();
    bencher
        .counter(ItemsCount::new(inv.snapshot_count()))
        .bench(|| divan::black_box(inv).clone());
}

/// Print 1,015,005 rows back as `zfs list` text (what the fake backend answers).
#[divan::bench(sample_count = 10, sample_size = 1)]
fn render_list_1m(bencher: Bencher) {
    let inv = big_inventory();
    let rows = big_text().1;
    bencher
        .counter(ItemsCount::new(rows))
        .bench(|| render_list(divan::black_box(inv)));
}
