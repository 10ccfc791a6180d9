//! A synthetic EfficientNet-Lite0 checkpoint: every tensor of the pretrained one, with the same
//! names and shapes (written out from the architecture table independently of the loader), filled
//! with deterministic pseudo-random values at initialization scale (He-scaled convolutions, batch
//! norms near identity with non-trivial statistics). The tests that check the network's mechanics
//! (loading, training, caching, the command line) run on it everywhere; the pretrained weights in
//! `../shared/models` are only needed where the values matter (ImageNet classes, PyTorch reference
//! outputs).
//!
//! Plain std, so the command-line tests include it too:
//! `#[path = "../../models/tests/common/synthetic_effnet.rs"] mod synthetic_effnet;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use quarry_models::efficientnet::STAGES;

/// One tensor as written: name, safetensors dtype (`"F32"`, `"F64"`, …), shape, little-endian bytes.
pub type Tensor = (String, &'static str, Vec<usize>, Vec<u8>);

/// Every tensor EfficientNet-Lite0's checkpoint holds (but `num_batches_tracked`), with its shape.
pub fn checkpoint_shapes() -> Vec<(String, Vec<usize>)> {
    let mut t = Vec::new();
    let bn = |t: &mut Vec<(String, Vec<usize>)>, name: &str, c: usize| {
        for p in ["weight", "bias", "running_mean", "running_var"] {
            t.push((format!("{name}.{p}"), vec![c]));
        }
    };
    t.push(("_conv_stem.weight".into(), vec![32, 3, 3, 3]));
    bn(&mut t, "_bn0", 32);
    let mut i = 0;
    for s in &STAGES {
        for r in 0..s.repeats {
            let cin = if r == 0 { s.in_channels } else { s.out_channels };
            let hidden = cin * s.expand;
            let b = format!("_blocks.{i}");
            if s.expand != 1 {
                t.push((format!("{b}._expand_conv.weight"), vec![hidden, cin, 1, 1]));
                bn(&mut t, &format!("{b}._bn0"), hidden);
            }
            t.push((format!("{b}._depthwise_conv.weight"), vec![hidden, 1, s.kernel, s.kernel]));
            bn(&mut t, &format!("{b}._bn1"), hidden);
            t.push((format!("{b}._project_conv.weight"), vec![s.out_channels, hidden, 1, 1]));
            bn(&mut t, &format!("{b}._bn2"), s.out_channels);
            i += 1;
        }
    }
    t.push(("_conv_head.weight".into(), vec![1280, 320, 1, 1]));
    bn(&mut t, "_bn1", 1280);
    t.push(("_fc.weight".into(), vec![1000, 1280]));
    t.push(("_fc.bias".into(), vec![1000]));
    t
}

/// Uniform in [-1, 1), a hash of the tensor's name and the element's index.
fn uniform(name: &str, i: usize) -> f32 {
    let mut h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    h = h.wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// The values of one tensor: batch norms with γ in [0.75, 1.25), β and μ in ±0.1, σ² in [0.5, 1.5);
/// weights uniform with the variance of He initialization (2 / fan-in) before a ReLU6, 1 / fan-in
/// before none (projections, classifier); biases in ±0.1.
pub fn synthetic_tensor(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let u = |i: usize| uniform(name, i);
    let is_bn = name.contains("._bn") || name.starts_with("_bn");
    if name.ends_with("running_var") {
        (0..n).map(|i| 1.0 + 0.5 * u(i)).collect()
    } else if is_bn && name.ends_with(".weight") {
        (0..n).map(|i| 1.0 + 0.25 * u(i)).collect()
    } else if name.ends_with(".bias") || name.ends_with("running_mean") {
        (0..n).map(|i| 0.1 * u(i)).collect()
    } else {
        let fan_in: usize = shape[1..].iter().product();
        let gain = if name.contains("_project_conv") || name.starts_with("_fc") { 1.0 } else { 2.0 };
        let half_width = (3.0 * gain / fan_in as f32).sqrt();
        (0..n).map(|i| half_width * u(i)).collect()
    }
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The safetensors bytes of `tensors`: an 8-byte header length, the JSON header (padded with
/// spaces to a multiple of 8), then the data in order.
pub fn safetensors_bytes(tensors: &[Tensor]) -> Vec<u8> {
    let mut entries = Vec::with_capacity(tensors.len());
    let mut offset = 0;
    for (name, dtype, shape, bytes) in tensors {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        entries.push(format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{offset},{}]}}",
            dims.join(","),
            offset + bytes.len()
        ));
        offset += bytes.len();
    }
    let mut header = format!("{{{}}}", entries.join(",")).into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend((header.len() as u64).to_le_bytes());
    out.extend(header);
    for (.., bytes) in tensors {
        out.extend(bytes);
    }
    out
}

/// Writes the synthetic checkpoint to `path`, with `edit` applied to its tensor list first.
pub fn synthetic_checkpoint(path: &Path, edit: impl FnOnce(&mut Vec<Tensor>)) {
    let mut tensors: Vec<Tensor> = checkpoint_shapes()
        .into_iter()
        .map(|(n, s)| {
            let bytes = f32_bytes(&synthetic_tensor(&n, &s));
            (n, "F32", s, bytes)
        })
        .collect();
    edit(&mut tensors);
    std::fs::write(path, safetensors_bytes(&tensors)).expect("write synthetic checkpoint");
}

/// The unedited synthetic checkpoint, written once per test process under the target directory's
/// scratch folder (written to a temporary name and renamed, so concurrent runs never read half a file).
pub fn synthetic_weights() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(dir).expect("create the target's scratch folder");
        let path = dir.join("synthetic-efficientnet-lite0.safetensors");
        let tmp = dir.join(format!("synthetic-efficientnet-lite0.safetensors.tmp-{}", std::process::id()));
        synthetic_checkpoint(&tmp, |_| {});
        std::fs::rename(&tmp, &path).expect("rename synthetic checkpoint");
        path
    })
    .clone()
}
