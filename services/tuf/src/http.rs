//! Fetching a repository: over HTTP(S), or from a directory (`file:///media/usb/tuf`: a
//! copy made with `sigstackd tuf export` or `tuf mirror` and carried across an air gap).

use crate::client::Fetch;
use crate::metadata::TufError;
use std::path::PathBuf;

/// A repository at `base`: an http(s) URL, or a `file://` directory.
pub struct HttpFetch {
    pub http: reqwest::Client,
    pub base: String,
}

/// The directory of a `file://` mirror.
pub fn mirror_dir(mirror: &str) -> Option<PathBuf> {
    let u = reqwest::Url::parse(mirror).ok()?;
    (u.scheme() == "file")
        .then(|| u.to_file_path().ok())
        .flatten()
}

impl Fetch for HttpFetch {
    async fn fetch(&self, path: &str, max_len: u64) -> Result<Option<Vec<u8>>, TufError> {
        let err = |e: String| TufError::Fetch {
            what: path.to_string(),
            msg: e,
        };
        if let Some(dir) = mirror_dir(&self.base) {
            // the names come from metadata: no way out of the directory
            if path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(err("not a path inside the mirror".into()));
            }
            let file = dir.join(path);
            return match std::fs::metadata(&file) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(err(format!("{}: {e}", file.display()))),
                Ok(m) if m.len() > max_len => Err(err(format!("longer than {max_len} bytes"))),
                Ok(_) => std::fs::read(&file)
                    .map(Some)
                    .map_err(|e| err(format!("{}: {e}", file.display()))),
            };
        }
        let mut r = self
            .http
            .get(format!("{}/{path}", self.base.trim_end_matches('/')))
            .send()
            .await
            .map_err(|e| err(format!("{e:#}")))?;
        if matches!(r.status().as_u16(), 403 | 404) {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(err(format!("HTTP {}", r.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = r.chunk().await.map_err(|e| err(e.to_string()))? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > max_len {
                return Err(err(format!("longer than {max_len} bytes")));
            }
        }
        Ok(Some(body))
    }
}
