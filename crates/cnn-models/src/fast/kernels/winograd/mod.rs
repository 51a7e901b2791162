//! 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3): each 2x2 block of
//! outputs from a 4x4 input tile with 16 multiplications per input channel instead of 36.
//!
//! The transforms (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
//! 2015): a tile `d` becomes `V = Bᵀ d B`, a kernel `g` becomes `U = G g Gᵀ`, and the 2x2
//! outputs are `Aᵀ M A` with `M = Σ_ci U ⊙ V`. The sum over input channels is 16 GEMMs, one
//! per position `e` of the 4x4 transformed tile: `M_e (Co x tiles) = U_e (Co x Ci) · V_e
//! (Ci x tiles)`. Compared with im2col + GEMM this is 2.25x fewer multiply-adds, and a
//! transformed input (16 values per tile, 4 outputs) smaller than the im2col matrix (9 per
//! output). The results differ from im2col's in rounding only.
//!
//! Written here rather than taken from a crate: no maintained Rust crate offers it on
//! slices, and its GEMMs are the same `gemm` calls as the rest of the fast path.

mod tiles;

use super::gemm::{Mat, sgemm};
use super::{ConvShape, Layout};
use tiles::{InputRows, input_transform, output_transform, write_rows};

/// Whether `s` is computed here: 3x3 at stride 1, with enough input channels for the 16
/// GEMMs to be worth their transforms. Their inner dimension is the input channels alone
/// (im2col's is 9 times that): at 10 or 20 channels (`small_cnn`, `medium_cnn`) they ran
/// so far below the GEMM peak that inference lost a third; from 32 they gain.
pub(super) fn suits(s: ConvShape) -> bool {
    s.kernel == 3 && s.stride == 1 && s.c_in >= 32 && s.oh() >= 2 && s.ow() >= 2
}

/// Tiles of one image: rows and columns of 2x2 output blocks (the last may stick out).
fn tiles(s: ConvShape) -> (usize, usize) {
    (s.oh().div_ceil(2), s.ow().div_ceil(2))
}

/// Scratch for a group of `imgs` images: the transformed input `[Ci][16][tiles]` and the
/// products `[16][Co][tiles]`.
pub(super) fn scratch(s: ConvShape, imgs: usize) -> [usize; 2] {
    let (th, tw) = tiles(s);
    let nt = imgs * th * tw;
    [16 * s.c_in * nt, 16 * s.c_out * nt]
}

/// [`ConvShape::input_grad`] where it is a convolution this module computes.
pub(super) fn input_grad_shape(s: ConvShape) -> Option<ConvShape> {
    s.input_grad().filter(|&b| s.kernel == 3 && suits(b))
}

/// The transformed kernels `U = G g Gᵀ`, `[16][Co][Ci]`, from weights `[Co][Ci][3][3]`.
pub(super) fn weights(wt: &[f32], s: ConvShape) -> Vec<f32> {
    let (co_n, ci_n) = (s.c_out, s.c_in);
    let mut u = vec![0.0; 16 * co_n * ci_n];
    for (j, g) in wt.chunks_exact(9).take(co_n * ci_n).enumerate() {
        // G g: rows g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2 (each row three values).
        let mut a = [[0.0f32; 3]; 4];
        for c in 0..3 {
            let (g0, g1, g2) = (g[c], g[3 + c], g[6 + c]);
            a[0][c] = g0;
            a[1][c] = 0.5 * (g0 + g1 + g2);
            a[2][c] = 0.5 * (g0 - g1 + g2);
            a[3][c] = g2;
        }
        // (G g) Gᵀ: the same on each row.
        for (r, a) in a.iter().enumerate() {
            let row = [
                a[0],
                0.5 * (a[0] + a[1] + a[2]),
                0.5 * (a[0] - a[1] + a[2]),
                a[2],
            ];
            for (c, v) in row.into_iter().enumerate() {
                u[(4 * r + c) * co_n * ci_n + j] = v;
            }
        }
    }
    u
}

/// The convolution `s` of a group of `imgs` images `x` (laid out as `from` says), bias
/// added, into `z` (laid out as `to` says; [`Layout::Channels`] is how
/// [`super::conv_fwd::conv_group`] lays out pre-activations). `u` from [`weights`]; `v` and
/// `m` sized by [`scratch`] for the group.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_group(
    x: &[f32],
    u: &[f32],
    bias: &[f32],
    s: ConvShape,
    [from, to]: [Layout; 2],
    v: &mut [f32],
    m: &mut [f32],
    z: &mut [f32],
) {
    pulp::Arch::new().dispatch(Group {
        x,
        u,
        bias,
        s,
        layouts: [from, to],
        v,
        m,
        z,
    });
}

/// [`conv_group`]'s arguments, so that pulp can compile its transforms for AVX-512 and
/// AVX2 as well as the baseline and pick one at run time (the crate is built for baseline
/// x86-64; see `fast/act.rs`). The helpers are `inline(always)` to be compiled into each.
struct Group<'a> {
    x: &'a [f32],
    u: &'a [f32],
    bias: &'a [f32],
    s: ConvShape,
    layouts: [Layout; 2],
    v: &'a mut [f32],
    m: &'a mut [f32],
    z: &'a mut [f32],
}

impl pulp::WithSimd for Group<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.compute();
    }
}

impl Group<'_> {
    #[inline(always)]
    fn compute(self) {
        let Group {
            x,
            u,
            bias,
            s,
            layouts: [from, to],
            v,
            m,
            z,
        } = self;
        let (in_hw, out_hw) = (s.in_hw(), s.out_hw());
        let imgs = x.len() / (s.c_in * in_hw);
        let (th, tw) = tiles(s);
        let nt = imgs * th * tw;
        // Each transform runs over all the group's tiles at once: rows of a map are only 2 to
        // 14 tiles, too short for vector loops.
        let mut rows = InputRows::new(s);
        let (mut d, mut t) = (vec![0.0; 16 * nt], vec![0.0; 16 * nt]);
        for (ci, planes) in v.chunks_exact_mut(16 * nt).take(s.c_in).enumerate() {
            for i in 0..imgs {
                rows.load(&x[from.at(i, ci, imgs, s.c_in, in_hw)..][..in_hw], s);
                for r in 0..th {
                    rows.gather(r, &mut d, (i * th + r) * tw, nt);
                }
            }
            input_transform(&d, &mut t, planes, nt);
        }
        let (co_n, ci_n) = (s.c_out, s.c_in);
        for e in 0..16 {
            // V_e: rows ci at a stride of 16 tiles' planes.
            let ve = Mat {
                data: &v[e * nt..],
                rows: ci_n,
                cols: nt,
                rs: 16 * nt,
                cs: 1,
            };
            let ue = Mat::row_major(&u[e * co_n * ci_n..][..co_n * ci_n], co_n, ci_n);
            sgemm(&mut m[e * co_n * nt..][..co_n * nt], ue, ve, false);
        }
        let mut y = vec![0.0; 4 * nt];
        for (co, &b) in bias.iter().enumerate().take(co_n) {
            output_transform(m, co * nt, co_n * nt, nt, b, &mut y);
            for i in 0..imgs {
                let z = &mut z[to.at(i, co, imgs, co_n, out_hw)..][..out_hw];
                for r in 0..th {
                    write_rows(&y, (i * th + r) * tw, tw, nt, z, s, r);
                }
            }
        }
    }
}
