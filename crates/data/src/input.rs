//! Opening a data file that may or may not be gzip-compressed.
//!
//! Compression is recognised by the gzip magic bytes (0x1f 0x8b), not by the file extension:
//! people rename files, and the MNIST files are distributed both ways.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use crate::error::{DataError, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A readable data file: the decompressed bytes, and whether they came through gzip (so read
/// errors can be reported as a damaged gzip stream rather than a generic I/O failure).
pub(crate) struct Input {
    pub reader: Box<dyn Read>,
    pub gzip: bool,
    pub path: PathBuf,
}

impl Input {
    /// Opens `path`, transparently decompressing it when it starts with the gzip magic.
    pub fn open(path: &Path) -> Result<Input> {
        let open_err = |error| DataError::Open {
            path: path.to_path_buf(),
            error,
        };
        let file = File::open(path).map_err(open_err)?;
        let mut buffered = BufReader::new(file);
        // A fresh BufReader over a regular file fills as much of its buffer as the file has,
        // so two bytes are there whenever the file holds two bytes.
        let gzip = buffered
            .fill_buf()
            .map_err(open_err)?
            .starts_with(&GZIP_MAGIC);
        // MultiGzDecoder: concatenated gzip members are valid gzip and some tools write them.
        let reader: Box<dyn Read> = if gzip {
            Box::new(MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        Ok(Input {
            reader,
            gzip,
            path: path.to_path_buf(),
        })
    }

    /// The error for a failed read, worded for gzip or raw input.
    pub fn read_error(&self, error: io::Error) -> DataError {
        let path = self.path.clone();
        if self.gzip {
            DataError::Gzip { path, error }
        } else {
            DataError::Read { path, error }
        }
    }

    /// Reads up to `buf.len()` bytes, stopping early only at the end of the data; returns how
    /// many were read. Unlike `read_exact`, a short file is not an error here, so callers can
    /// report how many bytes there were.
    pub fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(e)),
            }
        }
        Ok(filled)
    }
}
