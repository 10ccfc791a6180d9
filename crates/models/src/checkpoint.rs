//! The one checkpoint format of quarry's learners ([`Learner::checkpoint`] /
//! [`Learner::restore`]).
//!
//! A checkpoint is a [safetensors](https://huggingface.co/docs/safetensors) file: named
//! little-endian `F32`, `F64` or `U64` tensors (values stored as their exact bits, so a restored
//! learner continues bit for bit), and a `__metadata__` map of strings:
//!
//! | key | value |
//! | --- | --- |
//! | `format` | `quarry-checkpoint` |
//! | `version` | [`VERSION`] |
//! | `learner` | the learner's kind: `logreg`, `mlp`, `lenet5`, `efficientnet-lite0`, `committee` |
//! | anything else | the learner's settings, compared on restore (`hidden`, `seed`, `lr`, …) |
//!
//! Restoring checks the format, the version, the kind and every setting against the learner it
//! goes into, then every tensor's dtype and shape, before anything changes; each mismatch is an
//! error naming both sides ("checkpoint is of a mlp learner, this is logreg", "tensor 'w' has
//! shape [3, 10], expected [3, 64]"). Counters (optimizer steps, epochs, fits) are `U64` scalars
//! (shape `[]`).
//!
//! A learner made of learners (a [`crate::Committee`]) nests each part's checkpoint under a
//! prefix: the part's tensors as `member.3.w`, its metadata as `member.3.learner`, `member.3.c`, …
//! ([`Checkpoint::nest`], [`Checkpoint::member`]), so the whole is still one flat safetensors file.
//!
//! The bytes are deterministic: metadata keys and tensors are written in sorted order (8-byte
//! dtypes first, so every tensor stays aligned), so equal states give equal bytes. Empty bytes are
//! what [`Learner::checkpoint`]'s contract calls the state before the first fit; the learners of
//! this crate write a full checkpoint then too, and accept empty bytes where they can return to
//! that state.
//!
//! [`Learner::checkpoint`]: quarry_core::Learner::checkpoint
//! [`Learner::restore`]: quarry_core::Learner::restore

use quarry_core::{Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::fmt::Display;

/// `__metadata__["format"]` of every quarry checkpoint.
pub const FORMAT: &str = "quarry-checkpoint";
/// `__metadata__["version"]`: the layout this build writes and the newest it reads.
pub const VERSION: u32 = 1;

const FORMAT_KEY: &str = "format";
const VERSION_KEY: &str = "version";
const LEARNER_KEY: &str = "learner";

/// The element types a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    F32,
    F64,
    U64,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::F32 => 4,
            Kind::F64 | Kind::U64 => 8,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::F32 => "F32",
            Kind::F64 => "F64",
            Kind::U64 => "U64",
        }
    }
}

/// One tensor: element type, shape, little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub kind: Kind,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// A learner's checkpoint in memory: its kind, its settings and its tensors. Build one with
/// [`Checkpoint::new`] and the `set` / `put_*` methods and write it with [`Checkpoint::to_bytes`];
/// read one with [`Checkpoint::parse`] and the checking getters.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    learner: String,
    /// Settings (without `format`, `version`, `learner`).
    meta: BTreeMap<String, String>,
    tensors: BTreeMap<String, Tensor>,
}

fn bad(why: impl Display) -> Error {
    Error::Other(format!("checkpoint: {why}"))
}

fn shape_str(shape: &[usize]) -> String {
    format!("{shape:?}")
}

impl Checkpoint {
    /// An empty checkpoint of a `learner` kind.
    pub fn new(learner: &str) -> Self {
        Checkpoint { learner: learner.to_string(), meta: BTreeMap::new(), tensors: BTreeMap::new() }
    }

    /// The kind of learner that wrote it.
    pub fn learner(&self) -> &str {
        &self.learner
    }

    /// The settings (every metadata entry but `format`, `version` and `learner`).
    pub fn settings(&self) -> &BTreeMap<String, String> {
        &self.meta
    }

    /// Tensor names, sorted.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Records a setting (floats as Rust prints them: the shortest text that reads back to the
    /// same bits).
    pub fn set(&mut self, key: &str, value: impl Display) {
        assert!(![FORMAT_KEY, VERSION_KEY, LEARNER_KEY].contains(&key), "`{key}` is reserved");
        self.meta.insert(key.to_string(), value.to_string());
    }

    fn put(&mut self, name: &str, kind: Kind, shape: &[usize], data: Vec<u8>) {
        assert_eq!(shape.iter().product::<usize>() * kind.size(), data.len(), "tensor {name}: shape {shape:?} vs {} bytes", data.len());
        self.tensors.insert(name.to_string(), Tensor { kind, shape: shape.to_vec(), data });
    }

    pub fn put_f32(&mut self, name: &str, shape: &[usize], values: &[f32]) {
        self.put(name, Kind::F32, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect());
    }

    pub fn put_f64(&mut self, name: &str, shape: &[usize], values: &[f64]) {
        self.put(name, Kind::F64, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect());
    }

    pub fn put_u64(&mut self, name: &str, shape: &[usize], values: &[u64]) {
        self.put(name, Kind::U64, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect());
    }

    /// A counter: a `U64` tensor of shape `[]`.
    pub fn put_count(&mut self, name: &str, value: u64) {
        self.put_u64(name, &[], &[value]);
    }

    /// Puts `part` inside this checkpoint under `prefix`: its kind as `<prefix>.learner`, its
    /// settings as `<prefix>.<key>` and its tensors as `<prefix>.<name>`.
    pub fn nest(&mut self, prefix: &str, part: Checkpoint) {
        self.meta.insert(format!("{prefix}.{LEARNER_KEY}"), part.learner);
        for (k, v) in part.meta {
            self.meta.insert(format!("{prefix}.{k}"), v);
        }
        for (name, t) in part.tensors {
            self.tensors.insert(format!("{prefix}.{name}"), t);
        }
    }

    /// The part [`Checkpoint::nest`] put under `prefix`.
    pub fn member(&self, prefix: &str) -> Result<Checkpoint> {
        let learner = self
            .meta
            .get(&format!("{prefix}.{LEARNER_KEY}"))
            .ok_or_else(|| bad(format!("this {} checkpoint has no part '{prefix}'", self.learner)))?;
        let p = format!("{prefix}.");
        let strip = |k: &String| k.strip_prefix(&p).map(str::to_string);
        let meta =
            self.meta.iter().filter_map(|(k, v)| strip(k).filter(|k| k != LEARNER_KEY).map(|k| (k, v.clone()))).collect();
        let tensors = self.tensors.iter().filter_map(|(k, t)| strip(k).map(|k| (k, t.clone()))).collect();
        Ok(Checkpoint { learner: learner.clone(), meta, tensors })
    }

    /// The safetensors bytes (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut header = String::from("{\"__metadata__\":{");
        let mut meta: Vec<(&str, &str)> =
            vec![(FORMAT_KEY, FORMAT), (LEARNER_KEY, &self.learner)];
        let version = VERSION.to_string();
        meta.push((VERSION_KEY, &version));
        meta.extend(self.meta.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        meta.sort();
        for (i, (k, v)) in meta.iter().enumerate() {
            if i > 0 {
                header.push(',');
            }
            json_string(&mut header, k);
            header.push(':');
            json_string(&mut header, v);
        }
        header.push('}');
        // 8-byte elements first, so that every tensor starts aligned to its element size.
        let mut order: Vec<(&String, &Tensor)> = self.tensors.iter().collect();
        order.sort_by(|(a, ta), (b, tb)| tb.kind.size().cmp(&ta.kind.size()).then(a.cmp(b)));
        let mut offset = 0;
        for (name, t) in &order {
            header.push(',');
            json_string(&mut header, name);
            let shape = t.shape.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
            header.push_str(&format!(
                ":{{\"dtype\":\"{}\",\"shape\":[{shape}],\"data_offsets\":[{offset},{}]}}",
                t.kind.name(),
                offset + t.data.len()
            ));
            offset += t.data.len();
        }
        header.push('}');
        while header.len() % 8 != 0 {
            header.push(' ');
        }
        let mut out = Vec::with_capacity(8 + header.len() + offset);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for (_, t) in order {
            out.extend_from_slice(&t.data);
        }
        out
    }

    /// Reads any quarry checkpoint (an error, never a panic, for anything else).
    pub fn parse(bytes: &[u8]) -> Result<Checkpoint> {
        let not_ours = |why: String| {
            bad(format!("not a quarry checkpoint ({why}; the checkpoints of a quarry older than format {FORMAT} version 1 do not restore)"))
        };
        let st = SafeTensors::deserialize(bytes).map_err(|e| not_ours(format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| not_ours(e.to_string()))?;
        let mut meta: BTreeMap<String, String> =
            header.metadata().clone().unwrap_or_default().into_iter().collect();
        match meta.remove(FORMAT_KEY) {
            Some(f) if f == FORMAT => {}
            Some(f) => return Err(not_ours(format!("format is '{f}', expected '{FORMAT}'"))),
            None => return Err(not_ours(format!("its __metadata__ has no format = {FORMAT}"))),
        }
        let version = meta.remove(VERSION_KEY).ok_or_else(|| bad("no version in its __metadata__"))?;
        match version.parse::<u32>() {
            Ok(v) if v == VERSION => {}
            Ok(v) if v > VERSION => {
                return Err(bad(format!("version {v} was written by a newer quarry; this one reads version {VERSION}")));
            }
            _ => return Err(bad(format!("version '{version}' is not one this quarry reads (it reads {VERSION})"))),
        }
        let learner = meta.remove(LEARNER_KEY).ok_or_else(|| bad("no learner kind in its __metadata__"))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let kind = match view.dtype() {
                Dtype::F32 => Kind::F32,
                Dtype::F64 => Kind::F64,
                Dtype::U64 => Kind::U64,
                other => return Err(bad(format!("tensor '{name}' is {other:?}; a quarry checkpoint holds F32, F64 and U64"))),
            };
            tensors.insert(name, Tensor { kind, shape: view.shape().to_vec(), data: view.data().to_vec() });
        }
        Ok(Checkpoint { learner, meta, tensors })
    }

    /// [`Checkpoint::parse`], then checks the checkpoint is of a `kind` learner (`this` names the
    /// learner restoring it in the error).
    pub fn parse_of(bytes: &[u8], kind: &str, this: &str) -> Result<Checkpoint> {
        let ck = Self::parse(bytes)?;
        ck.expect_learner(kind, this)?;
        Ok(ck)
    }

    /// Errors unless the checkpoint is of a `kind` learner.
    pub fn expect_learner(&self, kind: &str, this: &str) -> Result<()> {
        if self.learner != kind {
            return Err(Error::Other(format!("checkpoint is of a {} learner, this is {this}", self.learner)));
        }
        Ok(())
    }

    /// A setting, which must be there.
    pub fn get(&self, key: &str) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| bad(format!("this {} checkpoint has no setting '{key}'", self.learner)))
    }

    /// A setting read as a number.
    pub fn get_parsed<T: std::str::FromStr>(&self, key: &str) -> Result<T>
    where
        T::Err: Display,
    {
        let v = self.get(key)?;
        v.parse().map_err(|e| bad(format!("setting '{key}' = '{v}' of this {} checkpoint: {e}", self.learner)))
    }

    /// Errors unless the checkpoint's setting `key` is `this` (as [`Checkpoint::set`] would
    /// write it): a learner restores only a checkpoint of the same settings.
    pub fn expect(&self, key: &str, this: impl Display) -> Result<()> {
        let this = this.to_string();
        let saved = self.get(key)?;
        if saved != this {
            return Err(bad(format!(
                "the {} checkpoint was saved with {key} = {saved}, this learner has {key} = {this}",
                self.learner
            )));
        }
        Ok(())
    }

    fn raw(&self, name: &str, kind: Kind, shape: &[usize]) -> Result<&[u8]> {
        let t = self.tensors.get(name).ok_or_else(|| bad(format!("tensor '{name}' is missing from this {} checkpoint", self.learner)))?;
        if t.kind != kind {
            return Err(bad(format!("tensor '{name}' is {}, expected {}", t.kind.name(), kind.name())));
        }
        if t.shape != shape {
            return Err(bad(format!("tensor '{name}' has shape {}, expected {}", shape_str(&t.shape), shape_str(shape))));
        }
        Ok(&t.data)
    }

    /// The shape of tensor `name`, which must be there.
    pub fn shape(&self, name: &str) -> Result<&[usize]> {
        self.tensors
            .get(name)
            .map(|t| &t.shape[..])
            .ok_or_else(|| bad(format!("tensor '{name}' is missing from this {} checkpoint", self.learner)))
    }

    /// Tensor `name`, which must be `F32` of this shape.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let b = self.raw(name, Kind::F32, shape)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }

    pub fn f64(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>> {
        let b = self.raw(name, Kind::F64, shape)?;
        Ok(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }

    pub fn u64(&self, name: &str, shape: &[usize]) -> Result<Vec<u64>> {
        let b = self.raw(name, Kind::U64, shape)?;
        Ok(b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }

    /// A counter written by [`Checkpoint::put_count`].
    pub fn count(&self, name: &str) -> Result<u64> {
        Ok(self.u64(name, &[])?[0])
    }
}

/// `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `bytes` with `from` replaced by `to` (as long) in the header: for tests of damaged checkpoints.
#[cfg(test)]
pub(crate) fn edit_header(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "the header keeps its length");
    let n = 8 + u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&bytes[8..n]).expect("a UTF-8 header");
    assert!(header.contains(from), "{from} is not in {header}");
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(header.replace(from, to).as_bytes());
    out.extend_from_slice(&bytes[n..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let mut c = Checkpoint::new("demo");
        c.set("hidden", 64);
        c.set("lr", 1e-3f32);
        c.set("odd \"key\"\n", "va\\lue");
        c.put_f32("w", &[2, 3], &[1.0, -0.0, f32::MIN_POSITIVE, f32::from_bits(0x7fc0_1234), 3.5, 1e-40]);
        c.put_f64("b", &[3], &[0.1, -2.0, f64::from_bits(1)]);
        c.put_count("steps", 7);
        c
    }

    /// The crate's reader reads what we write, and everything comes back bit for bit (NaN
    /// payloads and subnormals included).
    #[test]
    fn round_trips_through_the_safetensors_reader() {
        let c = sample();
        let bytes = c.to_bytes();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("w").unwrap().shape(), &[2, 3]);
        assert_eq!(st.tensor("steps").unwrap().shape(), &[] as &[usize]);
        let (n, header) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(n % 8, 0);
        let m = header.metadata().as_ref().unwrap();
        assert_eq!(m["format"], FORMAT);
        assert_eq!(m["version"], "1");
        assert_eq!(m["learner"], "demo");
        let back = Checkpoint::parse(&bytes).unwrap();
        assert_eq!(back, c);
        let w = back.f32("w", &[2, 3]).unwrap();
        assert_eq!(w[3].to_bits(), 0x7fc0_1234);
        assert_eq!(back.f64("b", &[3]).unwrap()[2].to_bits(), 1);
        assert_eq!(back.count("steps").unwrap(), 7);
        assert_eq!(back.get("odd \"key\"\n").unwrap(), "va\\lue");
        assert_eq!(back.to_bytes(), bytes, "deterministic bytes");
    }

    #[test]
    fn errors_name_both_sides() {
        let c = Checkpoint::parse(&sample().to_bytes()).unwrap();
        let e = c.expect_learner("mlp", "mlp").unwrap_err().to_string();
        assert!(e.contains("checkpoint is of a demo learner, this is mlp"), "{e}");
        let e = c.f32("w", &[3, 2]).unwrap_err().to_string();
        assert!(e.contains("tensor 'w' has shape [2, 3], expected [3, 2]"), "{e}");
        let e = c.f64("w", &[2, 3]).unwrap_err().to_string();
        assert!(e.contains("'w' is F32, expected F64"), "{e}");
        let e = c.f32("v", &[1]).unwrap_err().to_string();
        assert!(e.contains("'v' is missing"), "{e}");
        let e = c.expect("hidden", 32).unwrap_err().to_string();
        assert!(e.contains("hidden = 64") && e.contains("hidden = 32"), "{e}");
        c.expect("lr", 0.001f32).unwrap();
    }

    #[test]
    fn foreign_bytes_are_not_a_quarry_checkpoint() {
        for bytes in [&b""[..], b"not a checkpoint", &[0xff; 64], &sample().to_bytes()[..40]] {
            let e = Checkpoint::parse(bytes).unwrap_err().to_string();
            assert!(e.contains("not a quarry checkpoint"), "{e}");
        }
        // A safetensors file of someone else.
        let data = [0u8; 8];
        let view = safetensors::tensor::TensorView::new(Dtype::F32, vec![2], &data).unwrap();
        let other = safetensors::serialize([("x", view)], None).unwrap();
        let e = Checkpoint::parse(&other).unwrap_err().to_string();
        assert!(e.contains("not a quarry checkpoint") && e.contains("format"), "{e}");
        // A newer version.
        let newer = edit_header(&sample().to_bytes(), "\"version\":\"1\"", "\"version\":\"9\"");
        let e = Checkpoint::parse(&newer).unwrap_err().to_string();
        assert!(e.contains("version 9") && e.contains("newer"), "{e}");
    }

    #[test]
    fn parts_nest_under_a_prefix_and_come_back() {
        let mut whole = Checkpoint::new("committee");
        whole.set("size", 2);
        whole.nest("member.0", sample());
        let mut other = Checkpoint::new("logreg");
        other.put_f64("w", &[1], &[2.0]);
        whole.nest("member.1", other.clone());
        let back = Checkpoint::parse(&whole.to_bytes()).unwrap();
        assert_eq!(back.get("member.0.hidden").unwrap(), "64");
        assert_eq!(back.shape("member.0.w").unwrap(), &[2, 3]);
        assert_eq!(back.member("member.0").unwrap(), sample());
        assert_eq!(back.member("member.1").unwrap(), other);
        assert!(back.member("member.2").unwrap_err().to_string().contains("no part 'member.2'"));
    }
}
