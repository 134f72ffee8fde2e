//! The in-process workloads of `cargo xtask bench` under criterion, to compare two changes with
//! its statistics: `cargo bench -p xtask --bench inproc [-- FILTER]`. Each sample is the
//! thread's CPU time (returned through `iter_custom`), as `openssl speed` counts user CPU, so
//! time slices other processes take on a shared machine do not count.

use criterion::{Criterion, criterion_group, criterion_main};
use xtask::inproc::Fixture;
use xtask::sys::thread_cpu;

fn workloads(c: &mut Criterion) {
    let fixture = Fixture::new().expect("the benchmark fixture");
    let critical = fixture.critical().expect("the benchmark workloads");
    for (id, mut workload) in critical.into_iter().chain(fixture.others()) {
        c.bench_function(&format!("{id:?}"), |b| {
            b.iter_custom(|iterations| {
                let start = thread_cpu();
                for _ in 0..iterations {
                    workload();
                }
                thread_cpu() - start
            })
        });
    }
}

criterion_group!(benches, workloads);
criterion_main!(benches);
