//! The kernels against plain loops: im2col, the conv forward and backward, the pools.

use super::conv_bwd::add_row_sums;
use super::im2col::{Cols, col2im, im2col};
use super::*;
use super::{direct, winograd};

/// `x[ci][y][x]` of `s`, zero outside the image.
fn at(x: &[f32], s: ConvShape, ci: usize, y: isize, xx: isize) -> f32 {
    let (h, w) = (s.h as isize, s.w as isize);
    if y < 0 || y >= h || xx < 0 || xx >= w {
        return 0.0;
    }
    x[ci * s.in_hw() + (y * w + xx) as usize]
}

fn shapes() -> Vec<ConvShape> {
    let mut v = Vec::new();
    for (c_in, h, w, kernel) in [
        (1, 28, 28, 3),
        (2, 7, 5, 3),
        (3, 4, 6, 5),
        (1, 2, 3, 7),
        (2, 1, 1, 3),
        (1, 3, 1, 1),
    ] {
        v.push(ConvShape::same(1, c_in, 1, h, w, kernel));
    }
    // Strides and paddings of every kind, odd maps and even kernels.
    for (c_in, h, w, kernel, stride, pad) in [
        (1, 28, 28, 3, 1, 0),
        (2, 7, 5, 3, 2, 1),
        (1, 9, 8, 4, 2, 0),
        (3, 6, 7, 5, 3, 2),
        (1, 5, 5, 2, 1, 1),
        (2, 4, 4, 1, 2, 0),
    ] {
        v.push(ConvShape {
            stride,
            pad,
            ..ConvShape::same(1, c_in, 1, h, w, kernel)
        });
    }
    v
}

#[test]
fn row_sums_have_the_bits_of_plain_row_sums() {
    for rows in [1, 7, 8, 9, 20, 40] {
        for ld in [1, 3, 196, 3136] {
            // Values of mixed sign and magnitude, so any change of order shows in the bits.
            let m: Vec<f32> = (0..rows * ld)
                .map(|i| ((i * 7919) % 1000) as f32 * 1.37e-3 - 0.6 + (i % 13) as f32 * 1e-7)
                .collect();
            let mut got = vec![0.25f32; rows];
            add_row_sums(&m, ld, &mut got);
            for (r, &g) in got.iter().enumerate() {
                let want = 0.25f32 + m[r * ld..][..ld].iter().sum::<f32>();
                assert_eq!(g.to_bits(), want.to_bits(), "row {r} of {rows}, ld {ld}");
            }
        }
    }
}

#[test]
fn im2col_and_col2im_are_the_definition_and_its_adjoint() {
    for s in shapes() {
        let (hw, k, p) = (s.out_hw(), s.kernel, s.pad as isize);
        let ihw = s.in_hw();
        let x: Vec<f32> = (0..s.c_in * ihw).map(|i| i as f32 + 1.0).collect();
        // Two images side by side, this one second, to exercise the offset.
        let at_ = Cols {
            ld: 2 * hw,
            off: hw,
        };
        let mut col = vec![f32::NAN; s.k() * 2 * hw];
        im2col(&x, s, &mut col, at_);
        let mut dx_ref = vec![0.0f32; s.c_in * ihw];
        let dcol: Vec<f32> = (0..col.len()).map(|i| (i % 7) as f32 - 3.0).collect();
        for r in 0..s.k() {
            let (ci, kh, kw) = (r / (k * k), (r / k) % k, r % k);
            for j in 0..hw {
                let (y, xx) = ((j / s.ow()) as isize, (j % s.ow()) as isize);
                let st = s.stride as isize;
                let (sy, sx) = (y * st + kh as isize - p, xx * st + kw as isize - p);
                let want = at(&x, s, ci, sy, sx);
                assert_eq!(col[at_.row(r, hw)][j], want, "{s:?} row {r} pos {j}");
                if sy >= 0 && sy < s.h as isize && sx >= 0 && sx < s.w as isize {
                    dx_ref[ci * ihw + (sy * s.w as isize + sx) as usize] += dcol[at_.row(r, hw)][j];
                }
            }
        }
        let mut dx = vec![f32::NAN; s.c_in * ihw];
        col2im(&mut dcol.clone(), s, &mut dx, at_);
        assert_eq!(dx, dx_ref, "{s:?}");
    }
}

#[test]
fn linear_product_in_column_blocks_matches_plain_loops() {
    // 70 columns: two full blocks and a partial one; odd m and k.
    let (m, k, n) = (5, 37, 70);
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i * 5) % 13) as f32 * 0.25 - 1.5)
        .collect();
    let start: Vec<f32> = (0..m * n).map(|i| i as f32).collect();
    let mut dst = start.clone();
    par_sgemm_nt(&mut dst, Mat::row_major(&a, m, k), &w);
    for i in 0..m {
        for j in 0..n {
            let dot: f32 = (0..k).map(|t| a[i * k + t] * w[j * k + t]).sum();
            // Small integers and quarters: every partial sum is exact in f32.
            assert_eq!(dst[i * n + j], start[i * n + j] + dot, "({i}, {j})");
        }
    }
}

/// Inputs, weights and biases for the `s.batch` images of `s`, and their pre-activations by
/// im2col + GEMM (the group layout `z[co][i*OH*OW + p]`).
fn by_im2col(s: ConvShape) -> ([Vec<f32>; 3], Vec<f32>) {
    let x: Vec<f32> = (0..s.batch * s.c_in * s.in_hw())
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect();
    let wt: Vec<f32> = (0..s.c_out * s.k())
        .map(|i| ((i * 53 % 97) as f32 - 48.0) / 64.0)
        .collect();
    let bias: Vec<f32> = (0..s.c_out).map(|c| c as f32 * 0.1 - 0.2).collect();
    let ld = s.batch * s.out_hw();
    let (mut col, mut z) = (vec![0.0; s.k() * ld], vec![0.0; s.c_out * ld]);
    super::conv_fwd::conv_group(&x, &wt, &bias, s, &mut col, &mut z);
    ([x, wt, bias], z)
}

/// `got` is `want` within `tol` relative to 1 + |want|, entry by entry.
fn assert_close(want: &[f32], got: &[f32], tol: f32, s: ConvShape) {
    for (j, (a, b)) in want.iter().zip(got).enumerate() {
        assert!(
            (a - b).abs() <= tol * (1.0 + a.abs()),
            "{s:?} at {j}: {a} vs {b}"
        );
    }
}

#[test]
fn winograd_matches_im2col_on_odd_maps_and_paddings() {
    for (imgs, c_in, c_out, h, w, pad) in [
        (3, 32, 5, 7, 7, 1),
        (1, 33, 3, 26, 26, 0),
        (2, 32, 4, 5, 6, 1),
        (1, 32, 2, 4, 9, 2),
        (4, 40, 7, 4, 3, 1),
    ] {
        let s = ConvShape {
            stride: 1,
            pad,
            ..ConvShape::same(imgs, c_in, c_out, h, w, 3)
        };
        assert!(winograd::suits(s), "{s:?}");
        let ([x, wt, bias], z) = by_im2col(s);
        let [vn, mn] = winograd::scratch(s, imgs);
        let (mut v, mut m, mut zw) = (vec![0.0; vn], vec![0.0; mn], vec![f32::NAN; z.len()]);
        let u = winograd::weights(&wt, s);
        let layouts = [Layout::Images, Layout::Channels];
        winograd::conv_group(&x, &u, &bias, s, layouts, &mut v, &mut m, &mut zw);
        assert_close(&z, &zw, 1e-4, s);
    }
}

#[test]
fn direct_conv_matches_im2col_on_odd_maps_kernels_and_paddings() {
    // Channel counts below, at and past one block of 8; even and odd kernels; pads from
    // "valid" to more than "same"; maps narrower than a SIMD vector and wider.
    for (imgs, c_in, c_out, h, w, kernel, pad) in [
        (3, 1, 6, 28, 28, 5, 2),
        (2, 6, 16, 14, 14, 5, 0),
        (1, 1, 32, 28, 28, 3, 0),
        (4, 3, 9, 7, 5, 3, 1),
        (1, 2, 3, 5, 9, 4, 3),
        (2, 8, 17, 3, 3, 1, 0),
        (1, 1, 8, 1, 1, 3, 1),
    ] {
        let s = ConvShape {
            pad,
            act: Activation::None,
            ..ConvShape::same(imgs, c_in, c_out, h, w, kernel)
        };
        assert!(direct::suits(s), "{s:?}");
        let ([x, wt, bias], z) = by_im2col(s);
        let [bn, an] = direct::scratch(s);
        let (mut xp, mut acc) = (vec![f32::NAN; bn], vec![f32::NAN; an]);
        let mut zd = vec![f32::NAN; z.len()];
        let wb = direct::weights(&wt, s);
        direct::conv_group(&x, &wb, &bias, s, &mut xp, &mut acc, &mut zd);
        assert_close(&z, &zd, 1e-5, s);
    }
}

#[test]
fn input_gradient_by_winograd_matches_the_definition() {
    // Five images: a full group and a short one; odd maps; every padding it takes.
    for (c_in, c_out, h, w, pad) in [(3, 32, 7, 7, 1), (2, 33, 9, 6, 0), (1, 32, 4, 5, 2)] {
        let s = ConvShape {
            pad,
            act: Activation::None,
            ..ConvShape::same(5, c_in, c_out, h, w, 3)
        };
        assert!(winograd::input_grad_shape(s).is_some(), "{s:?}");
        let (ohw, ihw) = (s.out_hw(), s.in_hw());
        let x = vec![0.5; s.batch * c_in * ihw];
        let wt: Vec<f32> = (0..c_out * s.k())
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 64.0)
            .collect();
        let g: Vec<f32> = (0..s.batch * c_out * ohw)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let out = vec![0.0; g.len()];
        let (dx, _, _) = conv_bwd(&x, &wt, &out, &g, None, s, true);
        let dx = dx.expect("asked for");
        for n in 0..s.batch {
            for ci in 0..c_in {
                for y in 0..h {
                    for xx in 0..w {
                        let mut want = 0.0f32;
                        for co in 0..c_out {
                            for kh in 0..3 {
                                for kw in 0..3 {
                                    let (oy, ox) =
                                        ((y + pad).wrapping_sub(kh), (xx + pad).wrapping_sub(kw));
                                    if oy < s.oh() && ox < s.ow() {
                                        let gv = g[(n * c_out + co) * ohw + oy * s.ow() + ox];
                                        want += gv * wt[(co * c_in + ci) * 9 + kh * 3 + kw];
                                    }
                                }
                            }
                        }
                        let got = dx[(n * c_in + ci) * ihw + y * w + xx];
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{s:?} {n} {ci} {y} {xx}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
