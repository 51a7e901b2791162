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

use super::ConvShape;
use super::gemm::{Mat, sgemm};

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

/// How a group's maps lie in a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// One image after another: `[image][channel][plane]` (a layer's input and output).
    Images,
    /// Channel by channel, the group's images side by side in each: `[channel][image]
    /// [plane]` (the GEMM layout of pre-activations and their gradients).
    Channels,
}

impl Layout {
    /// Where plane `(i, c)` of `imgs` images of `channels` planes of `hw` values starts.
    fn at(self, i: usize, c: usize, imgs: usize, channels: usize, hw: usize) -> usize {
        match self {
            Layout::Images => (i * channels + c) * hw,
            Layout::Channels => (c * imgs + i) * hw,
        }
    }
}

/// The kernels of the convolution that carries an output gradient back to the input of
/// `s` (3x3, stride 1): each kernel turned by 180° and input and output channels swapped,
/// `[Ci][Co][3][3]`, as weights of [`input_grad_shape`]; transform them with [`weights`].
pub(super) fn flipped(wt: &[f32], s: ConvShape) -> Vec<f32> {
    let mut f = vec![0.0; wt.len()];
    for co in 0..s.c_out {
        for ci in 0..s.c_in {
            let (src, dst) = ((co * s.c_in + ci) * 9, (ci * s.c_out + co) * 9);
            for k in 0..9 {
                f[dst + 8 - k] = wt[src + k];
            }
        }
    }
    f
}

/// The convolution of [`flipped`] over the output gradient of `s` that gives its input
/// gradient: from `Co` maps of `OH x OW` to `Ci` maps of `H x W`, padded `2 - pad`. `None`
/// where that is not a convolution this module computes.
pub(super) fn input_grad_shape(s: ConvShape) -> Option<ConvShape> {
    let back = ConvShape {
        c_in: s.c_out,
        c_out: s.c_in,
        h: s.oh(),
        w: s.ow(),
        pad: 2usize.checked_sub(s.pad)?,
        relu: false,
        ..s
    };
    (s.kernel == 3 && s.stride == 1 && suits(back) && back.oh() == s.h && back.ow() == s.w)
        .then_some(back)
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
        let Group {
            x,
            u,
            bias,
            s,
            layouts,
            v,
            m,
            z,
        } = self;
        group(x, u, bias, s, layouts, v, m, z);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn group(
    x: &[f32],
    u: &[f32],
    bias: &[f32],
    s: ConvShape,
    [from, to]: [Layout; 2],
    v: &mut [f32],
    m: &mut [f32],
    z: &mut [f32],
) {
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

/// One input plane, zero-padded and split into even and odd columns, so a row of tiles
/// reads each of its four rows as contiguous runs.
struct InputRows {
    even: Vec<f32>,
    odd: Vec<f32>,
    /// Values per row of `even` and `odd`: the tiles of a row, plus one.
    half: usize,
}

impl InputRows {
    fn new(s: ConvShape) -> Self {
        let (th, tw) = tiles(s);
        let (h, half) = (2 * th + 2, tw + 1);
        Self {
            even: vec![0.0; h * half],
            odd: vec![0.0; h * half],
            half,
        }
    }

    /// Row `r` of the padded plane is input row `r - pad`; column `c` is input column
    /// `c - pad`; zero outside.
    #[inline(always)]
    fn load(&mut self, plane: &[f32], s: ConvShape) {
        let half = self.half;
        self.even.fill(0.0);
        self.odd.fill(0.0);
        // The padded plane, 2 * (tiles + 1) on each side, holds every input value: tiles
        // cover the output, so at least `h + 2 * pad` rows and `w + 2 * pad` columns.
        for (y, row) in plane.chunks_exact(s.w).take(s.h).enumerate() {
            let r = y + s.pad;
            let ev = &mut self.even[r * half..][..half];
            let od = &mut self.odd[r * half..][..half];
            // Input column x lands in padded column x + pad: pairs (x, x + 1) from an even x
            // go to (even, odd) columns for an even padding, (odd, even) for an odd one.
            let (first, second) = if s.pad.is_multiple_of(2) {
                (&mut ev[s.pad / 2..], &mut od[s.pad / 2..])
            } else {
                (&mut od[s.pad / 2..], &mut ev[s.pad / 2 + 1..])
            };
            let n = row.len() / 2;
            if row.len() % 2 == 1 {
                first[n] = row[2 * n];
            }
            deinterleave(&row[..2 * n], &mut first[..n], &mut second[..n]);
        }
    }

    /// The 4x4 inputs `d[4r + c]` of tile row `t`'s tiles, into `d[(4r + c)*nt + t0 + j]`
    /// for tile `j` of the row: row `r` of tile `j` is `ev[j], od[j], ev[j+1], od[j+1]`.
    #[inline(always)]
    fn gather(&self, t: usize, d: &mut [f32], t0: usize, nt: usize) {
        let (half, n) = (self.half, self.half - 1);
        for r in 0..4 {
            let ev = &self.even[(2 * t + r) * half..][..half];
            let od = &self.odd[(2 * t + r) * half..][..half];
            for (c, src) in [&ev[..n], &od[..n], &ev[1..], &od[1..]]
                .into_iter()
                .enumerate()
            {
                d[(4 * r + c) * nt + t0..][..n].copy_from_slice(src);
            }
        }
    }
}

/// `V = Bᵀ d B` for `nt` tiles: `d` and `v` hold 16 planes of `nt` values, `t` is scratch.
#[inline(always)]
fn input_transform(d: &[f32], t: &mut [f32], v: &mut [f32], nt: usize) {
    // d B along each row r: columns d0 - d2, d1 + d2, d2 - d1, d1 - d3.
    for r in 0..4 {
        let p = |c: usize| &d[(4 * r + c) * nt..][..nt];
        let (d0, d1, d2, d3) = (p(0), p(1), p(2), p(3));
        let out = &mut t[4 * r * nt..][..4 * nt];
        combine(out, nt, [d0, d1, d2, d3]);
    }
    // Bᵀ (d B) down each column c: rows t0 - t2, t1 + t2, t2 - t1, t1 - t3.
    for c in 0..4 {
        let p = |r: usize| &t[(4 * r + c) * nt..][..nt];
        let (r0, r1, r2, r3) = (p(0), p(1), p(2), p(3));
        let (a, rest) = v.split_at_mut(4 * nt);
        let (b, rest) = rest.split_at_mut(4 * nt);
        let (e, f) = rest.split_at_mut(4 * nt);
        let rows = [
            &mut a[c * nt..][..nt],
            &mut b[c * nt..][..nt],
            &mut e[c * nt..][..nt],
            &mut f[c * nt..][..nt],
        ];
        let [o0, o1, o2, o3] = rows;
        for j in 0..nt {
            o0[j] = r0[j] - r2[j];
            o1[j] = r1[j] + r2[j];
            o2[j] = r2[j] - r1[j];
            o3[j] = r1[j] - r3[j];
        }
    }
}

/// `out[k*nt + j]` for k = 0..4: `x0 - x2`, `x1 + x2`, `x2 - x1`, `x1 - x3` (`Bᵀ` on four
/// planes).
#[inline(always)]
fn combine(out: &mut [f32], nt: usize, [x0, x1, x2, x3]: [&[f32]; 4]) {
    let (o0, rest) = out.split_at_mut(nt);
    let (o1, rest) = rest.split_at_mut(nt);
    let (o2, o3) = rest.split_at_mut(nt);
    for j in 0..nt {
        o0[j] = x0[j] - x2[j];
        o1[j] = x1[j] + x2[j];
        o2[j] = x2[j] - x1[j];
        o3[j] = x1[j] - x3[j];
    }
}

/// `Aᵀ M A + b` for `n` tiles whose `M_e` start at `m[e*stride + at]`: `y[(2*dy + dx)*n + j]`,
/// output `(dy, dx)` of tile `j`.
#[inline(always)]
fn output_transform(m: &[f32], at: usize, stride: usize, n: usize, b: f32, y: &mut [f32]) {
    let me = |e: usize| &m[e * stride + at..][..n];
    let (y00, rest) = y.split_at_mut(n);
    let (y01, rest) = rest.split_at_mut(n);
    let (y10, y11) = rest.split_at_mut(n);
    let [
        m0,
        m1,
        m2,
        m3,
        m4,
        m5,
        m6,
        m7,
        m8,
        m9,
        m10,
        m11,
        m12,
        m13,
        m14,
        m15,
    ] = std::array::from_fn(me);
    for j in 0..n {
        // Aᵀ M: the sum of rows 0-2, and row 1 less rows 2 and 3, per column.
        let s0 = [
            m0[j] + m4[j] + m8[j],
            m1[j] + m5[j] + m9[j],
            m2[j] + m6[j] + m10[j],
            m3[j] + m7[j] + m11[j],
        ];
        let s1 = [
            m4[j] - m8[j] - m12[j],
            m5[j] - m9[j] - m13[j],
            m6[j] - m10[j] - m14[j],
            m7[j] - m11[j] - m15[j],
        ];
        y00[j] = b + (s0[0] + s0[1] + s0[2]);
        y01[j] = b + (s0[1] - s0[2] - s0[3]);
        y10[j] = b + (s1[0] + s1[1] + s1[2]);
        y11[j] = b + (s1[1] - s1[2] - s1[3]);
    }
}

/// Writes tile row `t`'s outputs (tiles `t0..t0 + n` of `y`, from [`output_transform`] over
/// `nt` tiles) into an image's output plane `z`, leaving out what sticks out past an odd
/// edge.
#[inline(always)]
fn write_rows(y: &[f32], t0: usize, n: usize, nt: usize, z: &mut [f32], s: ConvShape, t: usize) {
    let (oh, ow) = (s.oh(), s.ow());
    for dy in 0..2 {
        let r = 2 * t + dy;
        if r >= oh {
            break;
        }
        let left = &y[2 * dy * nt + t0..][..n];
        let right = &y[(2 * dy + 1) * nt + t0..][..n];
        let row = &mut z[r * ow..][..ow];
        let half = ow / 2;
        if ow % 2 == 1 {
            row[2 * half] = left[half];
        }
        interleave(&left[..half], &right[..half], &mut row[..2 * half]);
    }
}

/// Lanes of [`deinterleave`] and [`interleave`]'s fixed-size steps.
const LANES: usize = 8;

/// `even[k] = pairs[2k]`, `odd[k] = pairs[2k + 1]`. In fixed steps of eight: a plain loop
/// over `k` stayed scalar, a step of known size becomes vector shuffles.
#[inline(always)]
fn deinterleave(pairs: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let mut src = pairs.chunks_exact(2 * LANES);
    let mut ev = even.chunks_exact_mut(LANES);
    let mut od = odd.chunks_exact_mut(LANES);
    for ((s, e), o) in (&mut src).zip(&mut ev).zip(&mut od) {
        let s: &[f32; 2 * LANES] = s.try_into().unwrap_or(&[0.0; 2 * LANES]);
        let (e, o): (&mut [f32; LANES], &mut [f32; LANES]) = match (e.try_into(), o.try_into()) {
            (Ok(e), Ok(o)) => (e, o),
            _ => continue,
        };
        *e = std::array::from_fn(|k| s[2 * k]);
        *o = std::array::from_fn(|k| s[2 * k + 1]);
    }
    let rest = src.remainder().chunks_exact(2);
    for ((p, e), o) in rest.zip(ev.into_remainder()).zip(od.into_remainder()) {
        *e = p[0];
        *o = p[1];
    }
}

/// `pairs[2k] = even[k]`, `pairs[2k + 1] = odd[k]`, in fixed steps as [`deinterleave`].
#[inline(always)]
fn interleave(even: &[f32], odd: &[f32], pairs: &mut [f32]) {
    let mut dst = pairs.chunks_exact_mut(2 * LANES);
    let mut ev = even.chunks_exact(LANES);
    let mut od = odd.chunks_exact(LANES);
    for ((d, e), o) in (&mut dst).zip(&mut ev).zip(&mut od) {
        let (e, o): (&[f32; LANES], &[f32; LANES]) = match (e.try_into(), o.try_into()) {
            (Ok(e), Ok(o)) => (e, o),
            _ => continue,
        };
        let v: [f32; 2 * LANES] =
            std::array::from_fn(|k| if k % 2 == 0 { e[k / 2] } else { o[k / 2] });
        d.copy_from_slice(&v);
    }
    let rest = dst.into_remainder().chunks_exact_mut(2);
    for ((p, &e), &o) in rest.zip(ev.remainder()).zip(od.remainder()) {
        p[0] = e;
        p[1] = o;
    }
}
