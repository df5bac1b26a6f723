//! Temporary: variants of Bone's fold measured inside a frozen layer's forward + backward.
use std::time::Instant;

use burn::backend::Autodiff;
use burn::tensor::{Distribution, Int, Tensor};

type B = Autodiff<burn::backend::NdArray>;

fn time(label: &str, f: &dyn Fn()) {
    for _ in 0..2 {
        f();
    }
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("{label:<28} median {:8.2} ms  min {:8.2}", times[4], times[0]);
}

fn main() {
    let device = Default::default();
    for (rows, d_in, d_out, r) in [(2048, 1024, 1024, 64), (2048, 1024, 4096, 64), (400, 384, 384, 64), (400, 384, 1536, 64)] {
        println!("rows {rows} {d_in}->{d_out} r={r}");
        let x0: Tensor<B, 2> = Tensor::random([rows, d_in], Distribution::Normal(0.0, 1.0), &device);
        let w: Tensor<B, 2> = Tensor::random([d_in, d_out], Distribution::Normal(0.0, 0.02), &device);
        let block: Tensor<B, 2> = Tensor::random([r, d_out], Distribution::Normal(0.0, 0.02), &device).require_grad();
        let chunks = d_in / r;
        let fold: Tensor<B, 2> = Tensor::<B, 2>::eye(r, &device).repeat_dim(0, chunks);
        let idx: Tensor<B, 1, Int> = Tensor::from_data(
            burn::tensor::TensorData::new((0..d_in).map(|j| (j % r) as i64).collect::<Vec<_>>(), [d_in]),
            &device,
        );
        let run = |variant: u8| {
            let x = x0.clone().detach().require_grad();
            let y = x.clone().matmul(w.clone());
            let y = match variant {
                0 => y,
                1 => {
                    let s: Tensor<B, 2> = x.reshape([rows, chunks, r]).sum_dim(1).reshape([rows, r]);
                    y + s.matmul(block.clone())
                }
                2 => y + x.matmul(fold.clone()).matmul(block.clone()),
                3 => {
                    let s = Tensor::<B, 2>::zeros([rows, r], &device).select_assign(1, idx.clone(), x, burn::tensor::IndexingUpdateOp::Add);
                    y + s.matmul(block.clone())
                }
                4 => {
                    // merged weight for the value and dX; block gradient through a zero term
                    let s: Tensor<B, 2> = x.clone().detach().reshape([rows, chunks, r]).sum_dim(1).reshape([rows, r]);
                    let delta = block.clone().detach().repeat_dim(0, chunks);
                    let merged = (w.clone() + delta).detach();
                    let zero = block.clone() - block.clone().detach();
                    x.matmul(merged) + s.matmul(zero)
                }
                _ => unreachable!(),
            };
            let g = y.sum().backward();
            drop(g);
        };
        for v in [0u8, 1, 2, 3, 4, 0, 1, 2, 4] {
            time(&format!("variant {v}"), &|| run(v));
        }
    }
}
