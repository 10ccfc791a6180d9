//! ReLU followed by 2×2 max pooling (stride 2), fused: `maxpool(relu(y)) = relu(maxpool(y))`, so
//! the window maximum is taken on the raw convolution output and clamped once. The gradient goes
//! to the window's first maximum (as PyTorch's), and nowhere when that maximum is ≤ 0 (ReLU).

/// Where pooled values are, for sample `s`, channel `c`, row `py`, column `px`:
/// `s·sample + c·channel + (py + pad)·row + (px + pad)` (the padded input layout of the next
/// convolution, its input-gradient layout, or a dense `[s][c·h·w]` feature matrix).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolOut {
    pub sample: usize,
    pub channel: usize,
    pub row: usize,
    pub pad: usize,
}

/// The pooled grid of a convolution output `y[c][s][npos_pad]` whose rows are `wp` wide and whose
/// valid region is `ho × wo` (an odd last row or column is dropped, as PyTorch floors).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pool {
    pub channels: usize,
    pub npos_pad: usize,
    pub wp: usize,
    pub ho: usize,
    pub wo: usize,
}

/// Marks a pooled output whose maximum was ≤ 0: no gradient flows back.
const NO_GRAD: u32 = u32::MAX;

impl Pool {
    /// Pooled values per channel.
    pub fn outputs(&self) -> usize {
        (self.ho / 2) * (self.wo / 2)
    }

    /// Writes `relu(max)` of every window of the chunk's `s` samples to `out` and, for the
    /// backward pass, the flat position (within its plane) of each window's maximum to
    /// `argmax[(s·channels + c)·outputs + p]`.
    pub fn forward(&self, y: &[f32], s: usize, out: &mut [f32], layout: PoolOut, argmax: &mut [u32]) {
        let (ph, pw, wp) = (self.ho / 2, self.wo / 2, self.wp);
        for c in 0..self.channels {
            for si in 0..s {
                let plane = &y[(c * s + si) * self.npos_pad..][..self.npos_pad];
                let dst = &mut out[si * layout.sample + c * layout.channel..];
                let idx = &mut argmax[(si * self.channels + c) * ph * pw..][..ph * pw];
                for py in 0..ph {
                    let top = &plane[2 * py * wp..][..2 * pw];
                    let bottom = &plane[(2 * py + 1) * wp..][..2 * pw];
                    let row = &mut dst[(py + layout.pad) * layout.row + layout.pad..][..pw];
                    let irow = &mut idx[py * pw..][..pw];
                    let (top_at, bottom_at) = ((2 * py * wp) as u32, ((2 * py + 1) * wp) as u32);
                    for px in 0..pw {
                        // The first maximum in PyTorch's scan order (a later value wins only if
                        // strictly larger), without data-dependent branches.
                        let (a, b, c, d) = (top[2 * px], top[2 * px + 1], bottom[2 * px], bottom[2 * px + 1]);
                        let col = 2 * px as u32;
                        let (m1, i1) = if b > a { (b, top_at + col + 1) } else { (a, top_at + col) };
                        let (m2, i2) = if d > c { (d, bottom_at + col + 1) } else { (c, bottom_at + col) };
                        let (best, at) = if m2 > m1 { (m2, i2) } else { (m1, i1) };
                        row[px] = best.max(0.0);
                        irow[px] = if best > 0.0 { at } else { NO_GRAD };
                    }
                }
            }
        }
    }

    /// The convolution output's gradient `dy[c][s][margin + q]` (planes of `plane` floats): each
    /// pooled gradient (read from `dout` in `layout`) at its window's maximum, zero elsewhere.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(&self, dout: &[f32], s: usize, layout: PoolOut, argmax: &[u32], margin: usize, plane: usize, dy: &mut [f32]) {
        let (ph, pw) = (self.ho / 2, self.wo / 2);
        let dy = &mut dy[..self.channels * s * plane];
        dy.fill(0.0);
        for si in 0..s {
            for c in 0..self.channels {
                let src = &dout[si * layout.sample + c * layout.channel..];
                let idx = &argmax[(si * self.channels + c) * ph * pw..][..ph * pw];
                let dst = &mut dy[(c * s + si) * plane + margin..][..plane - margin];
                for py in 0..ph {
                    let row = &src[(py + layout.pad) * layout.row + layout.pad..][..pw];
                    for (&i, &g) in idx[py * pw..][..pw].iter().zip(row) {
                        if i != NO_GRAD {
                            dst[i as usize] = g;
                        }
                    }
                }
            }
        }
    }
}
