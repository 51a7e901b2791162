//! The data transforms of [`super`]: input tiles `Bᵀ d B`, outputs `Aᵀ M A`, and the
//! (de)interleaving of planes into tile rows.

use super::ConvShape;
use super::tiles;

/// One input plane, zero-padded and split into even and odd columns, so a row of tiles
/// reads each of its four rows as contiguous runs.
pub(super) struct InputRows {
    even: Vec<f32>,
    odd: Vec<f32>,
    /// Values per row of `even` and `odd`: the tiles of a row, plus one.
    half: usize,
}

impl InputRows {
    pub(super) fn new(s: ConvShape) -> Self {
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
    pub(super) fn load(&mut self, plane: &[f32], s: ConvShape) {
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
    pub(super) fn gather(&self, t: usize, d: &mut [f32], t0: usize, nt: usize) {
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
pub(super) fn input_transform(d: &[f32], t: &mut [f32], v: &mut [f32], nt: usize) {
    // d B along each row r: planes 4r + c of `d` into planes 4r + c of `t`.
    for r in 0..4 {
        let p = |c: usize| &d[(4 * r + c) * nt..][..nt];
        let mut out = t[4 * r * nt..][..4 * nt].chunks_exact_mut(nt);
        let outs = std::array::from_fn(|_| out.next().unwrap_or_default());
        combine(outs, [p(0), p(1), p(2), p(3)]);
    }
    // Bᵀ (d B) down each column c: planes c, 4 + c, 8 + c, 12 + c of `t` into those of `v`.
    for c in 0..4 {
        let p = |r: usize| &t[(4 * r + c) * nt..][..nt];
        let mut out = v.chunks_exact_mut(nt).skip(c).step_by(4);
        let outs = std::array::from_fn(|_| out.next().unwrap_or_default());
        combine(outs, [p(0), p(1), p(2), p(3)]);
    }
}

/// `Bᵀ` on four planes: `x0 - x2`, `x1 + x2`, `x2 - x1`, `x1 - x3`.
#[inline(always)]
fn combine([o0, o1, o2, o3]: [&mut [f32]; 4], [x0, x1, x2, x3]: [&[f32]; 4]) {
    let n = x0.len();
    let (o0, o1, o2, o3) = (&mut o0[..n], &mut o1[..n], &mut o2[..n], &mut o3[..n]);
    for j in 0..n {
        o0[j] = x0[j] - x2[j];
        o1[j] = x1[j] + x2[j];
        o2[j] = x2[j] - x1[j];
        o3[j] = x1[j] - x3[j];
    }
}

/// `Aᵀ M A + b` for `n` tiles whose `M_e` start at `m[e*stride + at]`: `y[(2*dy + dx)*n + j]`,
/// output `(dy, dx)` of tile `j`.
#[inline(always)]
pub(super) fn output_transform(
    m: &[f32],
    at: usize,
    stride: usize,
    n: usize,
    b: f32,
    y: &mut [f32],
) {
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
pub(super) fn write_rows(
    y: &[f32],
    t0: usize,
    n: usize,
    nt: usize,
    z: &mut [f32],
    s: ConvShape,
    t: usize,
) {
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
